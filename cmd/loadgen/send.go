package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"
)

// jsonHeader is the header of every request with a body. Requests share
// it: neither the client nor the transport writes to a request's header.
var jsonHeader = http.Header{"Content-Type": {"application/json"}}

// do sends request number n and classifies the outcome. buf is the calling
// client's, reused for every response body it reads.
func do(ctx context.Context, client *http.Client, o options, b *bodies, n int64, buf *bytes.Buffer) result {
	method, url, body := b.request(n)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	// The timeout of one request, as a deadline of its context rather than
	// http.Client.Timeout, which costs a timer goroutine per request.
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return result{err: err.Error()}
	}
	if body != nil {
		req.Header = jsonHeader
	}
	res := result{start: time.Now()}
	resp, err := client.Do(req)
	if err != nil {
		res.end = time.Now()
		res.err = classifyErr(err)
		return res
	}
	buf.Reset()
	_, err = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	res.end = time.Now()
	data := buf.Bytes()
	want := http.StatusOK
	if o.target == "assay" {
		want = http.StatusCreated
	}
	switch {
	case err != nil:
		res.err = "reading body: " + classifyErr(err)
	case resp.StatusCode != want:
		res.err = fmt.Sprintf("status %d", resp.StatusCode)
		if t := problemType(data); t != "" {
			res.err += " " + t
		}
	case o.target == "assay":
		cached, kind, ok := evalSummary(data)
		if !ok {
			res.err = "response is not an evaluation"
			break
		}
		res.cached, res.grader = cached, kind
	}
	return res
}

func problemType(data []byte) string {
	var p struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(data, &p) != nil {
		return ""
	}
	return p.Type
}

func classifyErr(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EMFILE):
		return "too many open files (client)"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no free local port"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by server"
	}
	s := err.Error()
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

// evalSummary reads "cached" and "grader"."kind" of an evaluation, what the
// report counts, without decoding the rest of it (about 10 KB, which
// json.Unmarshal scanned in full on every response): it walks the
// top-level object and passes over the other values by their strings and
// brackets. It checks the structure it walks (an object, closed strings
// and brackets, a boolean or null "cached", an object or null "grader", a
// string or null "kind"), not the literals it passes over.
func evalSummary(b []byte) (cached bool, kind string, ok bool) {
	s := &scanner{b: b}
	ok = s.object(func(key []byte) bool {
		switch string(key) {
		case "cached":
			cached = s.literal("true")
			return cached || s.literal("false") || s.literal("null")
		case "grader":
			return s.literal("null") || s.object(func(key []byte) bool {
				if string(key) != "kind" {
					return s.skip()
				}
				var ok bool
				kind, ok = s.str()
				return ok || s.literal("null")
			})
		}
		return s.skip()
	})
	s.ws()
	return cached, kind, ok && s.i == len(b)
}

// scanner walks JSON in b from i.
type scanner struct {
	b []byte
	i int
}

// object reads an object, calling field with each name (its raw bytes) and
// the scanner at the value, which field must pass over.
func (s *scanner) object(field func(key []byte) bool) bool {
	s.ws()
	if !s.eat('{') {
		return false
	}
	if s.ws(); s.eat('}') {
		return true
	}
	for {
		s.ws()
		start := s.i
		if !s.skipString() {
			return false
		}
		key := s.b[start+1 : s.i-1]
		if s.ws(); !s.eat(':') {
			return false
		}
		s.ws()
		if !field(key) {
			return false
		}
		if s.ws(); s.eat('}') {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
}

// skip passes over a value: a string, a container up to its closing
// bracket, or anything else up to the delimiter after it.
func (s *scanner) skip() bool {
	depth := 0
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '"':
			if !s.skipString() {
				return false
			}
			if depth == 0 {
				return true
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return true // the end of the enclosing object
			}
			if depth--; depth == 0 {
				s.i++
				return true
			}
		case ',':
			if depth == 0 {
				return true
			}
		}
		s.i++
	}
	return false
}

// skipString passes over the string at s.i.
func (s *scanner) skipString() bool {
	if !s.eat('"') {
		return false
	}
	for {
		j := bytes.IndexByte(s.b[s.i:], '"')
		if j < 0 {
			return false
		}
		j += s.i
		k := j // the quote is escaped if an odd number of backslashes precede it
		for k > s.i && s.b[k-1] == '\\' {
			k--
		}
		s.i = j + 1
		if (j-k)%2 == 0 {
			return true
		}
	}
}

// str reads a string; the grader kinds are plain ASCII, so escapes only
// take the slow path.
func (s *scanner) str() (string, bool) {
	start := s.i
	if !s.skipString() {
		return "", false
	}
	raw := s.b[start+1 : s.i-1]
	if bytes.IndexByte(raw, '\\') < 0 {
		switch string(raw) { // the usual kinds, without allocating
		case "llm":
			return "llm", true
		case "heuristic":
			return "heuristic", true
		}
		return string(raw), true
	}
	var v string
	err := json.Unmarshal(s.b[start:s.i], &v)
	return v, err == nil
}

func (s *scanner) literal(lit string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return false
	}
	s.i += len(lit)
	return true
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

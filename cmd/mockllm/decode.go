package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
)

// chatRequest is the part of a chat completion request the mock reads.
type chatRequest struct {
	Model          string           `json:"model"`
	Messages       []requestMessage `json:"messages"`
	ResponseFormat *responseFormat  `json:"response_format"`
}

// requestMessage is an alias of an unnamed type, as the field's type was
// before, so that encoding/json's type errors name the same type.
type requestMessage = struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type responseFormat struct {
	Type       string            `json:"type"`
	JSONSchema *jsonSchemaFormat `json:"json_schema"`
}

type jsonSchemaFormat struct {
	Schema json.RawMessage `json:"schema"`
}

// decodeChat reads the body into a pooled buffer and decodes it. Decoding
// with encoding/json was half of the mock's CPU per completion once the
// grading was cheap, so parseChat reads the bodies clients send in practice
// in one pass; whatever it does not take, json.Unmarshal decodes, and when
// that fails a json.Decoder decides, as before: it ignores data after the
// first value, which Unmarshal rejects, and words its errors differently.
func decodeChat(w http.ResponseWriter, r *http.Request, req *chatRequest) error {
	buf := jsonBufs.Get().(*bytes.Buffer)
	defer putBuf(buf)
	buf.Reset()
	_, rerr := buf.ReadFrom(http.MaxBytesReader(w, r.Body, 4<<20))
	if rerr == nil {
		if parseChat(buf.Bytes(), req) {
			return nil
		}
		*req = chatRequest{}
		if json.Unmarshal(buf.Bytes(), req) == nil {
			return nil // the strings are copies: buf can be reused
		}
	}
	*req = chatRequest{}
	var body io.Reader = bytes.NewReader(buf.Bytes())
	if rerr != nil {
		body = io.MultiReader(body, errReader{rerr})
	}
	return json.NewDecoder(body).Decode(req)
}

// errReader fails with err: the read error after the bytes read before it.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// parseChat decodes b into req as json.Unmarshal would, or reports false.
// It takes only the plain case: a valid JSON object, nothing after it but
// spaces, the fields the mock reads named exactly and at most once, with
// the types they have in the API (strings, a non-null array of objects, a
// non-null format object, an object for the schema), strings that are valid
// UTF-8 without escaped surrogates. It leaves everything else, including
// every case where encoding/json's rules (case-insensitive names, the last
// of duplicate fields, nulls, replacement characters) could matter, to
// encoding/json.
func parseChat(b []byte, req *chatRequest) bool {
	scratch := bufPool.Get().(*[]byte)
	p := &parser{b: b, buf: *scratch}
	defer func() { *scratch = p.buf; putBytes(scratch) }()
	var seen [3]bool
	p.ws()
	ok := p.object(func(key []byte) bool {
		switch string(key) {
		case "model":
			return once(&seen[0]) && p.str(&req.Model)
		case "messages":
			return once(&seen[1]) && p.messages(&req.Messages)
		case "response_format":
			req.ResponseFormat = &responseFormat{}
			return once(&seen[2]) && p.format(req.ResponseFormat)
		}
		return p.other(key, "model", "messages", "response_format")
	})
	p.ws()
	return ok && p.i == len(b)
}

func once(seen *bool) bool {
	if *seen {
		return false
	}
	*seen = true
	return true
}

func (p *parser) messages(ms *[]requestMessage) bool {
	if !p.eat('[') {
		return false
	}
	*ms = []requestMessage{}
	p.ws()
	if p.eat(']') {
		return true
	}
	for {
		var m requestMessage
		var seen [2]bool
		ok := p.object(func(key []byte) bool {
			switch string(key) {
			case "role":
				return once(&seen[0]) && p.str(&m.Role)
			case "content":
				return once(&seen[1]) && p.str(&m.Content)
			}
			return p.other(key, "role", "content")
		})
		if !ok {
			return false
		}
		*ms = append(*ms, m)
		p.ws()
		if !p.eat(',') {
			return p.eat(']')
		}
		p.ws()
	}
}

func (p *parser) format(f *responseFormat) bool {
	var seen [2]bool
	return p.object(func(key []byte) bool {
		switch string(key) {
		case "type":
			return once(&seen[0]) && p.str(&f.Type)
		case "json_schema":
			f.JSONSchema = &jsonSchemaFormat{}
			return once(&seen[1]) && p.object(func(key []byte) bool {
				if string(key) != "schema" {
					return p.other(key, "schema")
				}
				start := p.i
				if f.JSONSchema.Schema != nil || p.peek() != '{' || !p.skip(0) {
					return false
				}
				f.JSONSchema.Schema = bytes.Clone(p.b[start:p.i])
				return true
			})
		}
		return p.other(key, "type", "json_schema")
	})
}

// other skips the value of a field the mock does not read, unless its name
// matches one of the mock's fields case-insensitively, as encoding/json
// would take it.
func (p *parser) other(key []byte, fields ...string) bool {
	for _, f := range fields {
		if bytes.EqualFold(key, []byte(f)) {
			return false
		}
	}
	return p.skip(0)
}

package main

import (
	"bytes"
	"encoding/binary"
	"unicode/utf8"
)

// parser reads JSON from b[i:] for parseChat, validating as it goes.
type parser struct {
	b   []byte
	i   int
	buf []byte // unquoting scratch
}

// object reads an object, calling field for each name (plain ASCII without
// escapes) with the parser at the value, which field must read.
func (p *parser) object(field func(key []byte) bool) bool {
	if !p.eat('{') {
		return false
	}
	p.ws()
	if p.eat('}') {
		return true
	}
	for {
		if !p.eat('"') {
			return false
		}
		start := p.i
		for p.i < len(p.b) && p.b[p.i] != '"' {
			if c := p.b[p.i]; c < 0x20 || c == '\\' || c >= utf8.RuneSelf {
				return false
			}
			p.i++
		}
		key := p.b[start:p.i]
		if !p.eat('"') {
			return false
		}
		p.ws()
		if !p.eat(':') {
			return false
		}
		p.ws()
		if !field(key) {
			return false
		}
		p.ws()
		if !p.eat(',') {
			return p.eat('}')
		}
		p.ws()
	}
}

// str reads a string into s. It finds the closing quote and the escapes
// with bytes.IndexByte and checks the bytes between them eight at a time:
// the system prompt alone is several kilobytes.
func (p *parser) str(s *string) bool {
	if !p.eat('"') {
		return false
	}
	p.buf = p.buf[:0]
	ascii, escaped, q := true, false, -1 // q: the next quote, maybe an escaped one
	for {
		if q < p.i {
			if q = bytes.IndexByte(p.b[p.i:], '"'); q < 0 {
				return false
			}
			q += p.i
		}
		chunk := p.b[p.i:q]
		e := bytes.IndexByte(chunk, '\\')
		if e >= 0 {
			chunk = chunk[:e]
		}
		ok, a := plain(chunk)
		if !ok {
			return false // a control character
		}
		ascii = ascii && a
		if e < 0 {
			v := chunk
			if escaped {
				p.buf = append(p.buf, chunk...)
				v = p.buf
			}
			p.i = q + 1
			if !ascii && !utf8.Valid(v) {
				return false // encoding/json would replace the invalid bytes
			}
			*s = string(v)
			return true
		}
		p.buf = append(p.buf, chunk...)
		p.i += e
		if !p.escape() {
			return false
		}
		escaped = true
	}
}

// plain reports whether b has no control characters, and whether it is all
// ASCII, looking at eight bytes at a time.
func plain(b []byte) (ok, ascii bool) {
	const lows, highs = 0x2020202020202020, 0x8080808080808080
	ascii = true
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		if x&highs != 0 {
			ascii = false
			break
		}
		if (x-lows)&highs != 0 { // some byte below 0x20 (the bytes are all ASCII)
			return false, ascii
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < 0x20 {
			return false, ascii
		}
		ascii = ascii && c < utf8.RuneSelf
	}
	return true, ascii
}

// escape appends the escaped character at p.i (a backslash) to p.buf.
func (p *parser) escape() bool {
	if p.i+1 >= len(p.b) {
		return false
	}
	c := p.b[p.i+1]
	p.i += 2
	switch c {
	case '"', '\\', '/':
		p.buf = append(p.buf, c)
	case 'b':
		p.buf = append(p.buf, '\b')
	case 'f':
		p.buf = append(p.buf, '\f')
	case 'n':
		p.buf = append(p.buf, '\n')
	case 'r':
		p.buf = append(p.buf, '\r')
	case 't':
		p.buf = append(p.buf, '\t')
	case 'u':
		r, ok := p.hex4()
		if !ok || utf8.RuneLen(r) < 0 { // surrogates: encoding/json pairs or replaces them
			return false
		}
		p.buf = utf8.AppendRune(p.buf, r)
	default:
		return false
	}
	return true
}

func (p *parser) hex4() (rune, bool) {
	if p.i+4 > len(p.b) {
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.i : p.i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	p.i += 4
	return r, true
}

// maxDepth bounds skip's recursion; deeper values go to encoding/json.
const maxDepth = 100

// skip validates and passes over one value.
func (p *parser) skip(depth int) bool {
	if depth > maxDepth {
		return false
	}
	switch c := p.peek(); {
	case c == '{':
		return p.anyObject(depth)
	case c == '[':
		p.i++
		p.ws()
		if p.eat(']') {
			return true
		}
		for {
			if !p.skip(depth + 1) {
				return false
			}
			p.ws()
			if !p.eat(',') {
				return p.eat(']')
			}
			p.ws()
		}
	case c == '"':
		return p.skipString()
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	}
	return false
}

// anyObject passes over an object whose names may be any strings.
func (p *parser) anyObject(depth int) bool {
	p.i++ // {
	p.ws()
	if p.eat('}') {
		return true
	}
	for {
		if p.peek() != '"' || !p.skipString() {
			return false
		}
		p.ws()
		if !p.eat(':') {
			return false
		}
		p.ws()
		if !p.skip(depth + 1) {
			return false
		}
		p.ws()
		if !p.eat(',') {
			return p.eat('}')
		}
		p.ws()
	}
}

// skipString passes over a string, checking its escapes; encoding/json
// accepts any other bytes but control characters.
func (p *parser) skipString() bool {
	p.i++ // "
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			p.i++
			return true
		case c == '\\':
			if p.i+1 >= len(p.b) {
				return false
			}
			switch p.b[p.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i += 2
			case 'u':
				p.i += 2
				if _, ok := p.hex4(); !ok {
					return false
				}
			default:
				return false
			}
		case c < 0x20:
			return false
		default:
			p.i++
		}
	}
	return false
}

func (p *parser) literal(s string) bool {
	if !bytes.HasPrefix(p.b[p.i:], []byte(s)) {
		return false
	}
	p.i += len(s)
	return true
}

// number passes over -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (p *parser) number() bool {
	p.eat('-')
	switch {
	case p.eat('0'):
	case '1' <= p.peek() && p.peek() <= '9':
		p.digits()
	default:
		return false
	}
	if p.eat('.') && p.digits() == 0 {
		return false
	}
	if p.eat('e') || p.eat('E') {
		if !p.eat('+') {
			p.eat('-')
		}
		if p.digits() == 0 {
			return false
		}
	}
	return true
}

func (p *parser) digits() int {
	start := p.i
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i - start
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// peek is the next byte, or 0 at the end.
func (p *parser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *parser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

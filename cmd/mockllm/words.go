package main

import (
	"math/bits"
	"strings"
	"unicode"
	"unicode/utf8"
)

var stop = set(strings.Fields(`the and for with that this from are was were but not you your its into
than then them they their there what when which while who whom why how can could would should will
also only each other more most such some any all both does did has have had been being about over
under between without within across per via one two level answer names explains says`))

// words returns the lower-case words of s of three letters or more,
// without stop words. It defines the mock's notion of a word; the grading
// of answers uses scanWords, which must split the same way.
func words(s string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		if len(w) >= 3 && !stop[w] {
			out = append(out, w)
		}
	}
	return out
}

func set(ws []string) map[string]bool {
	m := make(map[string]bool, len(ws))
	for _, w := range ws {
		m[w] = true
	}
	return m
}

// scanWords calls fn with every lower-cased run of letters and digits of s
// that is three bytes or longer, and the byte offset in s where it starts:
// the words of words(s) before the stop words are dropped, found in one
// pass without allocating (w is buf's memory, valid only during the call).
// Lower-casing rune by rune is what strings.ToLower does, so the runs and
// their lengths are the same as words'.
func scanWords(s string, buf []byte, fn func(w []byte, start int)) []byte {
	buf, start := buf[:0], -1
	for i, r := range s {
		if r < utf8.RuneSelf {
			c := byte(r)
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if 'a' <= c && c <= 'z' || '0' <= c && c <= '9' {
				if start < 0 {
					start = i
				}
				buf = append(buf, c)
				continue
			}
		} else if lr := unicode.ToLower(r); unicode.IsLetter(lr) || unicode.IsDigit(lr) {
			if start < 0 {
				start = i
			}
			buf = utf8.AppendRune(buf, lr)
			continue
		}
		if len(buf) >= 3 {
			fn(buf, start)
		}
		buf, start = buf[:0], -1
	}
	if len(buf) >= 3 {
		fn(buf, start)
	}
	return buf
}

// span is a sentence of an answer: answer[from:to].
type span struct{ from, to int }

// sentenceSpans splits s at sentence ends and blank lines, each piece
// trimmed of spaces and kept if it has three fields or more; a piece is a
// verbatim substring of s (wrapped lines stay in their sentence). The
// boundaries are ASCII, so a byte scan finds the same ones as a rune scan.
func sentenceSpans(s string, out []span) []span {
	start := 0
	emit := func(end int) {
		left := strings.TrimLeftFunc(s[start:end], unicode.IsSpace)
		from := end - len(left)
		to := from + len(strings.TrimRightFunc(left, unicode.IsSpace))
		if hasFields(s[from:to], 3) {
			out = append(out, span{from, to})
		}
		start = end
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\n':
			if i+1 < len(s) && s[i+1] == '\n' {
				emit(i + 1)
			}
		case '.', '!', '?':
			if i+1 == len(s) {
				emit(i + 1)
			} else if r, _ := utf8.DecodeRuneInString(s[i+1:]); unicode.IsSpace(r) {
				emit(i + 1)
			}
		}
	}
	emit(len(s))
	return out
}

// hasFields reports whether s has at least n space-separated fields, as
// len(strings.Fields(s)) >= n would, without building them.
func hasFields(s string, n int) bool {
	inField := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			inField = false
		} else if !inField {
			inField = true
			if n--; n == 0 {
				return true
			}
		}
	}
	return n <= 0
}

// bitset is a set of word ids of a rubric's vocabulary.
type bitset []uint64

func (b bitset) add(i int32) { b[i>>6] |= 1 << (uint(i) & 63) }

// common is the number of ids in both b and c.
func (b bitset) common(c bitset) int {
	n := 0
	for i, x := range b {
		n += bits.OnesCount64(x & c[i])
	}
	return n
}

// FNV-1a, 64 bits, as hash/fnv computes it, without its allocations.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// fnvAdd hashes s and a zero byte into h.
func fnvAdd(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h * fnvPrime // h ^= 0, then the multiplication
}

package rubric

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"sync"
)

// Sum64 is a fast hash of every field of r, version included, under a
// seed. Work that depends only on a rubric (its rendered prompt, its JSON
// schema, its ContentHash) is memoised by it, so a request does not redo
// that work for a rubric the process has seen. maphash is seeded at random
// per process, so an inline rubric cannot be crafted to collide with
// another caller's.
func Sum64(seed maphash.Seed, r *Rubric) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	str := func(s string) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.WriteString(s)
	}
	num := func(v uint64) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], v)
		h.Write(n[:])
	}
	strs := func(ss []string) {
		num(uint64(len(ss)))
		for _, s := range ss {
			str(s)
		}
	}
	str(r.ID)
	num(uint64(r.Version))
	str(r.Title)
	str(r.Question)
	strs(r.Aliases)
	strs(r.Tags)
	str(r.Level)
	str(r.ReferenceAnswer)
	num(uint64(len(r.Criteria)))
	for _, c := range r.Criteria {
		str(c.ID)
		str(c.Name)
		num(math.Float64bits(c.Weight))
		str(c.Description)
		strs(c.Levels)
		num(uint64(len(c.KeyPoints)))
		for _, kp := range c.KeyPoints {
			str(kp.ID)
			str(kp.Point)
			strs(kp.Terms)
		}
	}
	num(uint64(len(r.Misconceptions)))
	for _, m := range r.Misconceptions {
		str(m.ID)
		str(m.Claim)
		str(m.Why)
		strs(m.Signals)
	}
	num(uint64(len(r.FollowUps)))
	for _, f := range r.FollowUps {
		str(f.Question)
		str(f.Criterion)
		num(uint64(f.Depth))
	}
	return h.Sum64()
}

// Memo remembers a value computed from a rubric, keyed by Sum64 of the
// rubric. It holds at most max entries; when full it starts again empty,
// which is cheap and, for a working set of a few hundred rubrics, rare.
// The zero value is not usable; see NewMemo.
type Memo[V any] struct {
	seed maphash.Seed
	max  int
	mu   sync.RWMutex
	m    map[uint64]V
}

// NewMemo returns a memo of at most max entries.
func NewMemo[V any](max int) *Memo[V] {
	return &Memo[V]{seed: maphash.MakeSeed(), max: max, m: make(map[uint64]V)}
}

// Get returns the value for r, computing it with f on a miss. f's error is
// returned and nothing is remembered. Two callers missing at once both
// compute; the values are equal, so either may win.
func (c *Memo[V]) Get(r *Rubric, f func(*Rubric) (V, error)) (V, error) {
	k := Sum64(c.seed, r)
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v, nil
	}
	v, err := f(r)
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[k] = v
	c.mu.Unlock()
	return v, nil
}

package main

import (
	"encoding/json"
	"hash/maphash"
	"sync"
)

// compiledRubric is a parsed rubric with the word set of every criterion,
// key point and misconception claim turned into a bitset over the rubric's
// own vocabulary. Parsing the prompt and splitting the rubric's texts into
// words on every request was most of the mock's CPU, and a benchmark sends
// the same few system prompts over and over: rubricCache keeps these.
type compiledRubric struct {
	// system and schema are the cache key in full, compared on a hit so
	// that a hash collision cannot serve another rubric.
	system, schema string

	rb mockRubric
	// ids maps the rubric's words to their bit, and stop words to -1, so
	// that one lookup per answer word both filters and numbers it.
	ids       map[string]int32
	size      int // length of every bitset, in uint64s
	criteria  []compiledCriterion
	miscWords []wordSet // by rb.misconceptions
}

type compiledCriterion struct {
	words     wordSet
	keyPoints []wordSet // by the criterion's keyPoints
}

// wordSet is set(words(text)) as ids, with its size.
type wordSet struct {
	bits bitset
	n    int
}

func compileRubric(system string, schema json.RawMessage) *compiledRubric {
	c := &compiledRubric{system: system, schema: string(schema), rb: parseRubric(system, schema),
		ids: make(map[string]int32, len(stop)+256)}
	for w := range stop {
		c.ids[w] = -1
	}
	// Number the vocabulary first, so that every bitset gets its final size.
	var texts []string
	for _, cr := range c.rb.criteria {
		texts = append(texts, cr.text)
		for _, kp := range cr.keyPoints {
			texts = append(texts, kp.point)
		}
	}
	for _, m := range c.rb.misconceptions {
		texts = append(texts, m.claim)
	}
	n := int32(0)
	for _, t := range texts {
		for _, w := range words(t) {
			if _, ok := c.ids[w]; !ok {
				c.ids[w] = n
				n++
			}
		}
	}
	c.size = (int(n) + 63) / 64
	for _, cr := range c.rb.criteria {
		cc := compiledCriterion{words: c.wordSet(cr.text)}
		for _, kp := range cr.keyPoints {
			cc.keyPoints = append(cc.keyPoints, c.wordSet(kp.point))
		}
		c.criteria = append(c.criteria, cc)
	}
	for _, m := range c.rb.misconceptions {
		c.miscWords = append(c.miscWords, c.wordSet(m.claim))
	}
	return c
}

func (c *compiledRubric) wordSet(text string) wordSet {
	ws := wordSet{bits: make(bitset, c.size)}
	for w := range set(words(text)) {
		ws.bits.add(c.ids[w])
		ws.n++
	}
	return ws
}

// rubricCache holds the compiled rubrics by a hash of their system prompt
// and schema. In practice there are a few distinct rubrics; the bound only
// keeps a client that sends a new prompt every time from growing it without
// end: when full, it is emptied and refills with what is still in use.
type rubricCache struct {
	seed maphash.Seed
	mu   sync.RWMutex
	m    map[uint64]*compiledRubric
}

const rubricCacheSize = 1024

func newRubricCache() *rubricCache {
	return &rubricCache{seed: maphash.MakeSeed(), m: map[uint64]*compiledRubric{}}
}

func (rc *rubricCache) get(system string, schema json.RawMessage) *compiledRubric {
	var h maphash.Hash
	h.SetSeed(rc.seed)
	h.WriteString(system)
	h.WriteByte(0)
	h.Write(schema)
	key := h.Sum64()
	rc.mu.RLock()
	c := rc.m[key]
	rc.mu.RUnlock()
	if c != nil && c.system == system && c.schema == string(schema) {
		return c
	}
	c = compileRubric(system, schema)
	rc.mu.Lock()
	if len(rc.m) >= rubricCacheSize {
		clear(rc.m)
	}
	rc.m[key] = c
	rc.mu.Unlock()
	return c
}

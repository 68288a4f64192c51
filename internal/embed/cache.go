package embed

import (
	"context"
	"crypto/sha256"
	"slices"
	"sync"
)

// Embedder is what Cache wraps: evaluation.Embedder, restated so that
// this package need not import the domain.
type Embedder interface {
	Model() string
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// Cache remembers the vectors of single texts. Every grading that names a
// question embeds it to find its rubric, and a question bank's questions
// come back again and again: with a remote model that is a paid round trip
// per request, with the local one a twentieth of a grading's CPU. A vector
// depends only on the model and the text, so a remembered one is exact.
// Calls with several texts (indexing the bank) pass through: they are not
// repeated.
type Cache struct {
	next Embedder
	max  int

	mu sync.RWMutex
	// m is keyed by the text's SHA-256, not the text: a query may be a
	// whole answer (up to tens of KB), which need not stay in memory.
	m map[[sha256.Size]byte][]float32
}

// NewCache returns next with a cache of at most max texts; when full it is
// emptied, which keeps it bounded without bookkeeping on every hit.
func NewCache(next Embedder, max int) *Cache {
	return &Cache{next: next, max: max, m: make(map[[sha256.Size]byte][]float32)}
}

// Model implements Embedder.
func (c *Cache) Model() string { return c.next.Model() }

// Embed implements Embedder. A remembered vector is returned as a copy, so
// no caller can change another's.
func (c *Cache) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if len(texts) != 1 {
		return c.next.Embed(ctx, texts)
	}
	key := sha256.Sum256([]byte(texts[0]))
	c.mu.RLock()
	v, ok := c.m[key]
	c.mu.RUnlock()
	if ok {
		return [][]float32{slices.Clone(v)}, nil
	}
	out, err := c.next.Embed(ctx, texts)
	if err != nil || len(out) != 1 {
		return out, err
	}
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[key] = slices.Clone(out[0])
	c.mu.Unlock()
	return out, nil
}

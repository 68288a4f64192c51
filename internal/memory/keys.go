package memory

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/assay-dev/assay/internal/auth"
	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
)

// Keys is the in-memory auth.Store. Keys made here vanish with the process,
// which suits tests and local use; `api keys create` needs PostgreSQL.
type Keys struct {
	mu   sync.RWMutex
	keys map[string]auth.Key
}

// NewKeys returns an empty key store.
func NewKeys() *Keys { return &Keys{keys: map[string]auth.Key{}} }

var _ auth.Store = (*Keys)(nil)

// CreateKey implements auth.Store.
func (s *Keys) CreateKey(_ context.Context, k auth.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[k.ID]; ok {
		return fault.New(fault.Conflict, "key %q exists", k.ID)
	}
	k.Scopes = slices.Clone(k.Scopes)
	s.keys[k.ID] = k
	return nil
}

// Key implements auth.Store.
func (s *Keys) Key(_ context.Context, id string) (auth.Key, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.keys[id]
	if !ok {
		return auth.Key{}, evaluation.NotFound("key", id)
	}
	return k, nil
}

// ListKeys implements auth.Store.
func (s *Keys) ListKeys(context.Context) ([]auth.Key, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]auth.Key, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// RevokeKey implements auth.Store.
func (s *Keys) RevokeKey(_ context.Context, id string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	if !ok {
		return evaluation.NotFound("key", id)
	}
	if k.RevokedAt == nil {
		k.RevokedAt = &at
		s.keys[id] = k
	}
	return nil
}

// HasKeys implements auth.Store.
func (s *Keys) HasKeys(context.Context) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.keys) > 0, nil
}

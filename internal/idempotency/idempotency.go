// Package idempotency makes POST retries safe, with Stripe's semantics: the
// same Idempotency-Key and body replay the first response; the same key with
// another body is refused; a duplicate that arrives while the first request
// is still running gets a conflict. Keys are kept for TTL.
package idempotency

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"github.com/assay-dev/assay/internal/fault"
)

// TTL is how long a key is remembered.
const TTL = 24 * time.Hour

// MaxKeyLength bounds the header value.
const MaxKeyLength = 255

// Response is a stored response to replay.
type Response struct {
	Status      int
	ContentType string
	Location    string
	Body        []byte
}

// Record is what a store knows about one key.
type Record struct {
	RequestHash string
	Done        bool
	Response    Response
	CreatedAt   time.Time
}

// Store keeps idempotency records per owner (the API key id) and key.
type Store interface {
	// Begin claims owner/key for a request with hash. When the key is
	// already known (and not expired), it returns the existing record and
	// false; otherwise it stores an in-flight record and returns true.
	Begin(ctx context.Context, owner, key, hash string, now time.Time) (Record, bool, error)
	// Finish stores the response of a claimed key.
	Finish(ctx context.Context, owner, key string, r Response) error
	// Abandon forgets a claimed key whose request failed, so that a retry
	// runs again instead of replaying a failure.
	Abandon(ctx context.Context, owner, key string) error
}

// Hash identifies a request by method, path and body.
func Hash(method, path string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(method + " " + path + "\n"))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// Check turns an existing record into the outcome for a new request with
// hash: a replay (the record is done and matches), or an error.
func Check(r Record, hash string) (Response, error) {
	switch {
	case r.RequestHash != hash:
		return Response{}, fault.New(fault.Invalid, "this Idempotency-Key was used with a different request body")
	case !r.Done:
		return Response{}, fault.New(fault.Conflict, "a request with this Idempotency-Key is still in progress; retry later")
	default:
		return r.Response, nil
	}
}

// Memory is an in-process Store.
type Memory struct {
	mu      sync.Mutex
	records map[[2]string]Record
}

// NewMemory returns an empty store.
func NewMemory() *Memory { return &Memory{records: map[[2]string]Record{}} }

// Begin implements Store.
func (m *Memory) Begin(_ context.Context, owner, key, hash string, now time.Time) (Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{owner, key}
	if r, ok := m.records[k]; ok && now.Sub(r.CreatedAt) < TTL {
		return r, false, nil
	}
	if len(m.records) > 10_000 {
		for k, r := range m.records {
			if now.Sub(r.CreatedAt) >= TTL {
				delete(m.records, k)
			}
		}
	}
	m.records[k] = Record{RequestHash: hash, CreatedAt: now}
	return Record{}, true, nil
}

// Finish implements Store.
func (m *Memory) Finish(_ context.Context, owner, key string, resp Response) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{owner, key}
	r := m.records[k]
	r.Done, r.Response = true, resp
	m.records[k] = r
	return nil
}

// Abandon implements Store.
func (m *Memory) Abandon(_ context.Context, owner, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.records, [2]string{owner, key})
	return nil
}

// Package auth is API keys and their scopes: minting a key, storing only its
// hash, and checking a presented key.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/assay-dev/assay/internal/fault"
)

// Scopes a key can hold.
const (
	// ScopeGrade may create evaluations, read its own, and read the
	// candidate's view of rubrics.
	ScopeGrade = "grade"
	// ScopeAdmin may also write rubrics, read every evaluation and see
	// rubrics in full.
	ScopeAdmin = "admin"
)

// Key is a stored API key. The secret itself is never stored: only its
// SHA-256, which is enough because the secret is 256 random bits (a slow
// password hash protects low-entropy secrets, which these are not).
type Key struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	Hash      []byte     `json:"-"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// RateRPS and RateBurst override the server's default rate limit when
	// greater than zero.
	RateRPS   float64 `json:"rate_rps,omitempty"`
	RateBurst int     `json:"rate_burst,omitempty"`
}

// Has reports whether the key holds scope (admin implies grade).
func (k Key) Has(scope string) bool {
	return slices.Contains(k.Scopes, scope) || (scope == ScopeGrade && slices.Contains(k.Scopes, ScopeAdmin))
}

// Store keeps keys.
type Store interface {
	CreateKey(ctx context.Context, k Key) error
	// Key returns a key by id, revoked or not; fault.NotFound if none.
	Key(ctx context.Context, id string) (Key, error)
	ListKeys(ctx context.Context) ([]Key, error)
	RevokeKey(ctx context.Context, id string, at time.Time) error
	// HasKeys reports whether any key was ever created, revoked or not:
	// revoking the last key must not reopen the API to everyone.
	HasKeys(ctx context.Context) (bool, error)
}

// The presented form is "assay_<id>_<secret>": the id finds the row, the
// secret proves possession.
const prefix = "assay_"

// Mint makes a new key with the given name and scopes and returns it with
// the secret to show once.
func Mint(name string, scopes []string, now time.Time) (Key, string, error) {
	if strings.TrimSpace(name) == "" {
		return Key{}, "", fault.Field("/name", "is required")
	}
	if len(scopes) == 0 {
		return Key{}, "", fault.Field("/scopes", "needs at least one of grade, admin")
	}
	for _, s := range scopes {
		if s != ScopeGrade && s != ScopeAdmin {
			return Key{}, "", fault.Field("/scopes", fmt.Sprintf("unknown scope %q (want grade or admin)", s))
		}
	}
	var id [6]byte
	var secret [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		return Key{}, "", err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return Key{}, "", err
	}
	k := Key{ID: hex.EncodeToString(id[:]), Name: name, Scopes: slices.Compact(slices.Sorted(slices.Values(scopes))), CreatedAt: now.UTC()}
	s := base64.RawURLEncoding.EncodeToString(secret[:])
	k.Hash = hash(s)
	return k, prefix + k.ID + "_" + s, nil
}

func hash(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// Authenticator checks presented keys.
type Authenticator struct {
	store   Store
	require bool

	mu        sync.Mutex
	open      bool
	checkedAt time.Time
	now       func() time.Time
}

// NewAuthenticator returns an authenticator. With require false and no
// key ever created in the store, the API runs open (every caller is an anonymous
// admin), for local use.
func NewAuthenticator(store Store, require bool) *Authenticator {
	return &Authenticator{store: store, require: require, now: time.Now}
}

// Anonymous is the caller when the API runs open.
var Anonymous = Key{ID: "", Name: "anonymous", Scopes: []string{ScopeAdmin, ScopeGrade}}

// Open reports whether the API runs without keys. The answer is cached for
// a few seconds, so a key created with `api keys create` takes effect
// without a restart and without a query per request.
func (a *Authenticator) Open(ctx context.Context) (bool, error) {
	if a.require {
		return false, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.now().Sub(a.checkedAt) < 5*time.Second {
		return a.open, nil
	}
	has, err := a.store.HasKeys(ctx)
	if err != nil {
		return false, fmt.Errorf("checking for keys: %w", err)
	}
	a.open, a.checkedAt = !has, a.now()
	return a.open, nil
}

// Authenticate returns the key a bearer token belongs to. Every failure is
// the same fault.Unauthorized, so a caller cannot probe which ids exist.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (Key, error) {
	bad := fault.New(fault.Unauthorized, "the API key is missing, malformed, unknown or revoked")
	rest, ok := strings.CutPrefix(token, prefix)
	if !ok {
		return Key{}, bad
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 12 || secret == "" {
		return Key{}, bad
	}
	k, err := a.store.Key(ctx, id)
	if fault.KindOf(err) == fault.NotFound {
		return Key{}, bad
	}
	if err != nil {
		return Key{}, err
	}
	if subtle.ConstantTimeCompare(k.Hash, hash(secret)) != 1 || k.RevokedAt != nil {
		return Key{}, bad
	}
	return k, nil
}

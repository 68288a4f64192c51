package auth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/assay-dev/assay/internal/auth"
	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/memory"
)

func TestMintAndAuthenticate(t *testing.T) {
	ctx := context.Background()
	store := memory.NewKeys()
	a := auth.NewAuthenticator(store, false)
	if open, err := a.Open(ctx); err != nil || !open {
		t.Fatalf("Open with no keys = %v, %v; want true", open, err)
	}
	k, secret, err := auth.Mint("ci", []string{"grade"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(k.Hash), secret) || len(k.Hash) != 32 {
		t.Fatalf("hash %x looks wrong", k.Hash)
	}
	if err := store.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"valid", secret, true},
		{"empty", "", false},
		{"no prefix", strings.TrimPrefix(secret, "assay_"), false},
		{"wrong secret", secret[:len(secret)-2] + "xx", false},
		{"unknown id", "assay_000000000000_" + strings.SplitN(secret, "_", 3)[2], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := a.Authenticate(ctx, tt.token)
			if tt.ok {
				if err != nil || got.ID != k.ID || !got.Has(auth.ScopeGrade) || got.Has(auth.ScopeAdmin) {
					t.Fatalf("Authenticate = %+v, %v; want key %s with grade only", got, err, k.ID)
				}
				return
			}
			if fault.KindOf(err) != fault.Unauthorized {
				t.Fatalf("Authenticate error kind = %v, want unauthorized", fault.KindOf(err))
			}
		})
	}
	if err := store.RevokeKey(ctx, k.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, secret); fault.KindOf(err) != fault.Unauthorized {
		t.Errorf("revoked key: err = %v, want unauthorized", err)
	}
}

func TestMintRejects(t *testing.T) {
	tests := []struct {
		name   string
		key    string
		scopes []string
	}{
		{"no name", "", []string{"grade"}},
		{"no scopes", "x", nil},
		{"unknown scope", "x", []string{"root"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := auth.Mint(tt.key, tt.scopes, time.Now()); fault.KindOf(err) != fault.Invalid {
				t.Errorf("Mint(%q, %v) err = %v, want invalid", tt.key, tt.scopes, err)
			}
		})
	}
}

func TestRequireAuthIsNeverOpen(t *testing.T) {
	a := auth.NewAuthenticator(memory.NewKeys(), true)
	if open, _ := a.Open(context.Background()); open {
		t.Error("Open = true with ASSAY_REQUIRE_AUTH, want false")
	}
}

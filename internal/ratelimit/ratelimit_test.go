package ratelimit

import (
	"context"
	"testing"
	"time"
)

func TestTake(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := Limit{RPS: 2, Burst: 3}
	type step struct {
		at            time.Duration
		wantAllowed   bool
		wantRemaining int
		wantRetry     time.Duration
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"burst then deny", []step{
			{0, true, 2, 0}, {0, true, 1, 0}, {0, true, 0, 0}, {0, false, 0, 500 * time.Millisecond},
		}},
		{"refill at rate", []step{
			{0, true, 2, 0}, {0, true, 1, 0}, {0, true, 0, 0},
			{250 * time.Millisecond, false, 0, 250 * time.Millisecond},
			{500 * time.Millisecond, true, 0, 0},
		}},
		{"refill caps at burst", []step{
			{0, true, 2, 0}, {time.Hour, true, 2, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Bucket
			for i, s := range tt.steps {
				var d Decision
				b, d = Take(b, l, t0.Add(s.at))
				if d.Allowed != s.wantAllowed || d.Remaining != s.wantRemaining || d.RetryAfter != s.wantRetry || d.Limit != 3 {
					t.Fatalf("step %d: got %+v, want allowed=%v remaining=%d retry=%v limit=3", i, d, s.wantAllowed, s.wantRemaining, s.wantRetry)
				}
			}
		})
	}
}

func TestMemoryKeysAreIndependent(t *testing.T) {
	m := NewMemory()
	l := Limit{RPS: 1, Burst: 1}
	for _, key := range []string{"a", "b"} {
		d, err := m.Take(context.Background(), key, l)
		if err != nil || !d.Allowed {
			t.Fatalf("first take of %s: %+v %v, want allowed", key, d, err)
		}
	}
	if d, _ := m.Take(context.Background(), "a", l); d.Allowed {
		t.Errorf("second take of a allowed, want denied")
	}
}

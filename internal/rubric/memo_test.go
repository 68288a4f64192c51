package rubric

import (
	"errors"
	"fmt"
	"hash/maphash"
	"reflect"
	"testing"
)

func fullRubric() Rubric {
	return Rubric{
		ID: "r", Version: 1, Title: "t", Question: "q", Aliases: []string{"a"}, Tags: []string{"t"},
		Level: "senior", ReferenceAnswer: "ref",
		Criteria: []Criterion{{ID: "c", Name: "n", Weight: 1, Description: "d", Levels: []string{"l0", "l1"},
			KeyPoints: []KeyPoint{{ID: "k", Point: "p", Terms: []string{"term"}}}}},
		Misconceptions: []Misconception{{ID: "m", Claim: "c", Why: "w", Signals: []string{"s"}}},
		FollowUps:      []FollowUp{{Question: "f", Criterion: "c", Depth: 1}},
	}
}

// leaves calls f with a path and a setter for every string, number and
// slice element reachable from v, so that a field added to Rubric and
// forgotten by Sum64 fails TestSum64CoversEveryField.
func leaves(path string, v reflect.Value, f func(path string, change func())) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			leaves(path+"."+v.Type().Field(i).Name, v.Field(i), f)
		}
	case reflect.Slice:
		for i := range v.Len() {
			leaves(fmt.Sprintf("%s[%d]", path, i), v.Index(i), f)
		}
	case reflect.String:
		f(path, func() { v.SetString(v.String() + "x") })
	case reflect.Int:
		f(path, func() { v.SetInt(v.Int() + 1) })
	case reflect.Float64:
		f(path, func() { v.SetFloat(v.Float() + 0.5) })
	default:
		panic("leaves: unhandled kind " + v.Kind().String() + " at " + path)
	}
}

func TestSum64CoversEveryField(t *testing.T) {
	seed := maphash.MakeSeed()
	base := fullRubric()
	want := Sum64(seed, &base)
	n := 0
	probe := fullRubric()
	leaves("Rubric", reflect.ValueOf(&probe).Elem(), func(path string, _ func()) {
		n++
		t.Run(path, func(t *testing.T) {
			r := fullRubric()
			// Find the same leaf in a fresh copy and change only it.
			leaves("Rubric", reflect.ValueOf(&r).Elem(), func(p string, change func()) {
				if p == path {
					change()
				}
			})
			if got := Sum64(seed, &r); got == want {
				t.Errorf("changing %s left Sum64 at %x", path, got)
			}
		})
	})
	if n < 20 {
		t.Fatalf("walked %d fields; the rubric fixture is missing some", n)
	}
	// Moving a string between adjacent fields must change the hash too.
	a, b := fullRubric(), fullRubric()
	a.Title, a.Question = "ab", ""
	b.Title, b.Question = "a", "b"
	if Sum64(seed, &a) == Sum64(seed, &b) {
		t.Error("Sum64 does not separate adjacent fields")
	}
}

func TestMemo(t *testing.T) {
	m := NewMemo[string](2)
	calls := 0
	f := func(r *Rubric) (string, error) { calls++; return r.ID + "!", nil }
	r1, r2, r3 := fullRubric(), fullRubric(), fullRubric()
	r2.ID, r3.ID = "r2", "r3"
	for i, tc := range []struct {
		r         *Rubric
		want      string
		wantCalls int
	}{
		{&r1, "r!", 1},
		{&r1, "r!", 1}, // remembered
		{&r2, "r2!", 2},
		{&r3, "r3!", 3}, // full: starts again
		{&r1, "r!", 4},
	} {
		got, err := m.Get(tc.r, f)
		if err != nil || got != tc.want || calls != tc.wantCalls {
			t.Errorf("step %d: got %q, %v after %d calls; want %q after %d", i, got, err, calls, tc.want, tc.wantCalls)
		}
	}
	boom := errors.New("boom")
	r4 := fullRubric()
	r4.ID = "r4"
	for range 2 {
		if _, err := m.Get(&r4, func(*Rubric) (string, error) { calls++; return "", boom }); !errors.Is(err, boom) {
			t.Errorf("got %v, want boom", err)
		}
	}
	if calls != 6 {
		t.Errorf("an error was remembered: %d calls, want 6", calls)
	}
}

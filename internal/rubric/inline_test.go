package rubric

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/text"
)

func mustInline(t *testing.T, q, ref string, cs []Criterion) Rubric {
	t.Helper()
	r, err := FromReference(q, ref, cs)
	if err != nil {
		t.Fatalf("FromReference(%q, %q): %v", q, ref, err)
	}
	return r
}

func allTerms(r Rubric) []string {
	var out []string
	for _, c := range r.Criteria {
		for _, kp := range c.KeyPoints {
			out = append(out, kp.Terms...)
		}
	}
	return out
}

// The rules a derived rubric keeps: everything the bank's linter checks,
// except the counts that only curated rubrics can meet (3 to 6 criteria, 2
// to 6 key points of 3 to 10 terms, misconceptions, follow-ups).
var countRules = regexp.MustCompile(`^(criteria|misconceptions|follow_ups|criteria\[\d+\]\.key_points|criteria\[\d+\]\.key_points\[\d+\]\.terms)$`)

func checkInlineShape(t *testing.T, r Rubric) {
	t.Helper()
	if !regexp.MustCompile(`^inline-[0-9a-f]{12}$`).MatchString(r.ID) {
		t.Errorf("id %q, want inline- and 12 hex digits", r.ID)
	}
	if r.Version != 1 || r.Level != "mid" || !IsInline(r) {
		t.Errorf("version %d level %q inline %v, want 1, mid, true", r.Version, r.Level, IsInline(r))
	}
	if len(r.Criteria) < 1 || len(r.Criteria) > MaxCriteria {
		t.Errorf("%d criteria, want 1 to %d", len(r.Criteria), MaxCriteria)
	}
	for _, p := range Check(r) {
		if !countRules.MatchString(p.Field) {
			t.Errorf("breaks a rule: %s", p)
		}
	}
	for _, c := range r.Criteria {
		if len(c.KeyPoints) < 1 || len(c.KeyPoints) > MaxKeyPoints {
			t.Errorf("criterion %s: %d key points, want 1 to %d", c.ID, len(c.KeyPoints), MaxKeyPoints)
		}
		for _, kp := range c.KeyPoints {
			if len(kp.Terms) < 1 || len(kp.Terms) > MaxTerms {
				t.Errorf("key point %s: %d terms, want 1 to %d", kp.ID, len(kp.Terms), MaxTerms)
			}
		}
	}
}

func TestFromReferenceDerivesKeyPoints(t *testing.T) {
	r := mustInline(t, "What are the main advantages of object-oriented programming?", "Abstraction and reusability.", nil)
	checkInlineShape(t, r)
	if r.Title != "What are the main advantages of object-oriented programming" {
		t.Errorf("title %q", r.Title)
	}
	if len(r.Criteria) != 1 {
		t.Fatalf("%d criteria, want 1 (one sentence)", len(r.Criteria))
	}
	kps := r.Criteria[0].KeyPoints
	if len(kps) != 2 || kps[0].Point != "Abstraction" || kps[1].Point != "Reusability" {
		t.Fatalf("key points %+v, want one per conjunct: Abstraction, Reusability", kps)
	}
	for _, kp := range kps {
		if !IsDerived(kp) {
			t.Errorf("key point %s is not marked derived", kp.ID)
		}
	}
	if got := allTerms(r); !slices.Equal(got, []string{"abstraction", "reusability"}) {
		t.Errorf("terms %v", got)
	}
}

func TestFromReferenceDemotesQuestionWords(t *testing.T) {
	q := "What is the main advantage of linked lists over arrays?"
	r := mustInline(t, q, "Linked lists can grow and shrink, while an array has a fixed size.", nil)
	checkInlineShape(t, r)
	qStems := map[string]bool{}
	for _, s := range text.Stems(q) {
		qStems[s] = true
	}
	terms := allTerms(r)
	for _, term := range terms {
		if qStems[text.Stem(term)] {
			t.Errorf("term %q is a word of the question", term)
		}
	}
	for _, want := range []string{"grow", "shrink", "fixed", "size"} {
		if !slices.Contains(terms, want) {
			t.Errorf("terms %v lack %q", terms, want)
		}
	}
	// A reference that only restates the question keeps its words: there is
	// nothing else to grade against.
	r = mustInline(t, "What is a binary search tree?", "A binary search tree.", nil)
	if got := allTerms(r); !slices.Equal(got, []string{"binary", "search", "tree"}) {
		t.Errorf("restating reference: terms %v, want the question's words", got)
	}
}

func TestFromReferenceOneCriterionPerSentence(t *testing.T) {
	ref := "A constructor is called whenever an object is created, whereas a function needs to be called explicitly. " +
		"Constructors do not have a return type, but functions have to declare one."
	r := mustInline(t, "What is the difference between a constructor and a function?", ref, nil)
	checkInlineShape(t, r)
	if len(r.Criteria) != 2 {
		t.Fatalf("%d criteria, want 2", len(r.Criteria))
	}
	var points []string
	total := 0.0
	for _, c := range r.Criteria {
		terms := 0
		for _, kp := range c.KeyPoints {
			points = append(points, kp.Point)
			terms += len(kp.Terms)
		}
		if c.Weight != float64(terms) {
			t.Errorf("criterion %s weight %v, want its %d terms", c.ID, c.Weight, terms)
		}
		total += c.Weight
	}
	want := []string{"A constructor is called whenever an object is created", "A function needs to be called explicitly",
		"Constructors do not have a return type", "Functions have to declare one"}
	if !slices.Equal(points, want) {
		t.Errorf("points %q,\nwant %q", points, want)
	}
}

func TestFromReferenceLongReference(t *testing.T) {
	var b strings.Builder
	words := strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu")
	for i := range 10 {
		b.WriteString("Sentence ")
		for j := range 14 {
			fmt.Fprintf(&b, "%s%d ", words[(i*3+j)%len(words)], i)
			if j%3 == 2 {
				b.WriteString(", ")
			}
		}
		b.WriteString(". ")
	}
	r := mustInline(t, "Tell me everything?", b.String(), nil)
	checkInlineShape(t, r)
	if len(r.Criteria) != MaxCriteria {
		t.Errorf("%d criteria, want %d after merging ten sentences", len(r.Criteria), MaxCriteria)
	}
}

func TestFromReferenceIDIsContentHash(t *testing.T) {
	a := mustInline(t, "What is a leaf?", "A node that has no children.", nil)
	b := mustInline(t, "  What is a leaf?  ", "A node that has no children.\n", nil)
	c := mustInline(t, "What is a leaf?", "A node without children.", nil)
	if a.ID != b.ID {
		t.Errorf("same rubric, ids %s and %s", a.ID, b.ID)
	}
	if a.ID == c.ID {
		t.Errorf("different references share the id %s", a.ID)
	}
}

func TestFromReferenceTitle(t *testing.T) {
	long := "Explain in detail how a garbage collector with generations decides which objects to promote and when it runs a full collection?"
	r := mustInline(t, long, "By age and by the fill of the old generation.", nil)
	if n := len([]rune(r.Title)); n > 81 || !strings.HasSuffix(r.Title, "…") || strings.Contains(r.Title, "?") {
		t.Errorf("title %q (%d runes), want at most 80 runes and an ellipsis", r.Title, n)
	}
}

func fieldPointers(t *testing.T, err error) []string {
	t.Helper()
	fe, ok := fault.As(err)
	if !ok || fe.Kind != fault.Invalid {
		t.Fatalf("error %v, want a fault.Invalid", err)
	}
	var out []string
	for _, f := range fe.Fields {
		out = append(out, f.Pointer)
	}
	return out
}

func TestFromReferenceRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, q, ref string
		want         []string
	}{
		{"empty question", " ", "A node.", []string{"/rubric/question"}},
		{"empty reference", "What is a leaf?", "\n", []string{"/rubric/reference_answer"}},
		{"both empty", "", "", []string{"/rubric/question", "/rubric/reference_answer"}},
		{"no content words", "What is it?", "It is what it is.", []string{"/rubric/reference_answer"}},
		{"reference too long", "Q?", strings.Repeat("word ", MaxInlineReference), []string{"/rubric/reference_answer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromReference(tc.q, tc.ref, nil)
			if got := fieldPointers(t, err); !slices.Equal(got, tc.want) {
				t.Errorf("pointers %v, want %v", got, tc.want)
			}
		})
	}
}

func criterion(id string, weight float64, kps ...KeyPoint) Criterion {
	return Criterion{ID: id, Name: "Name of " + id, Weight: weight, Description: "About " + id,
		Levels: []string{"none", "names", "shallow", "solid", "deep"}, KeyPoints: kps}
}

func TestFromReferenceChecksGivenCriteria(t *testing.T) {
	good := KeyPoint{ID: "growth", Point: "Lists grow.", Terms: []string{"grow", "resize"}}
	short := criterion("b", 1)
	short.Levels = short.Levels[:4]
	badKP := criterion("c", 1, KeyPoint{ID: "ref-1", Point: "", Terms: []string{"Grow"}})
	_, err := FromReference("Why lists?", "Lists grow.", []Criterion{criterion("a", 0, good), short, badKP, criterion("a", 1, good)})
	want := []string{
		"/rubric/criteria/0/weight",
		"/rubric/criteria/1/levels",
		"/rubric/criteria/2/key_points/0/id",
		"/rubric/criteria/2/key_points/0/point",
		"/rubric/criteria/2/key_points/0/terms/0",
		"/rubric/criteria/3/id",
	}
	if got := fieldPointers(t, err); !slices.Equal(got, want) {
		t.Errorf("pointers\n%v, want\n%v", got, want)
	}
}

func TestFromReferenceKeepsAndCompletesGivenCriteria(t *testing.T) {
	given := KeyPoint{ID: "growth", Point: "Lists grow as needed.", Terms: []string{"grow", "dynamic size"}}
	cs := []Criterion{criterion("growth", 2, given), criterion("insertion", 1)}
	cs[1].Name, cs[1].Description = "Cheap insertion", "Inserting without shifting elements."
	ref := "Linked lists grow as needed. Inserting in the middle needs no shifting of elements."
	r := mustInline(t, "Why use a linked list?", ref, cs)
	checkInlineShape(t, r)
	if !reflect.DeepEqual(r.Criteria[0].KeyPoints, []KeyPoint{given}) {
		t.Errorf("given key points changed: %+v", r.Criteria[0].KeyPoints)
	}
	kps := r.Criteria[1].KeyPoints
	if len(kps) != 1 || !IsDerived(kps[0]) || !strings.Contains(kps[0].Point, "shifting") {
		t.Errorf("derived key points %+v, want the clause about shifting", kps)
	}
	cs[0].KeyPoints[0].Terms[0] = "changed"
	if r.Criteria[0].KeyPoints[0].Terms[0] != "grow" {
		t.Error("the rubric shares memory with the caller's criteria")
	}
}

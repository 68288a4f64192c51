package calibrate

import (
	"strings"
	"testing"
	"time"
)

func TestProgress(t *testing.T) {
	var b strings.Builder
	clock := time.Unix(0, 0)
	p := newProgress(&b, 4, 2)
	p.now = func() time.Time { return clock }
	p.start = clock
	for i := range 4 {
		clock = clock.Add(50 * time.Millisecond) // redraws at most every 100ms
		p.step(i != 1)
	}
	p.finish()
	out := b.String()
	// 4 answers in 200ms: 20 a second.
	for _, want := range []string{"resuming: 2 answers already graded in the state file, 4 to grade\n",
		"\rgrading [=======                       ] 1/4  25% 20/s ETA 0s   ",
		"\rgrading [======================        ] 3/4  75% 20/s ETA 0s failed 1",
		"\rgrading [==============================] 4/4 100% 20/s ETA 0s failed 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress output lacks %q:\n%q", want, out)
		}
	}
	// Drawn at the first step, 100ms later at the third, and at the end.
	if strings.Count(out, "\r") != 3 || !strings.HasSuffix(out, "\n") {
		t.Errorf("want three redraws and a final newline, got %q", out)
	}
}

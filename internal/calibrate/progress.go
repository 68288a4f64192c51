package calibrate

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress draws a one-line progress bar, redrawn in place with a carriage
// return at most every redrawEvery. It is used from one goroutine.
type progress struct {
	w              io.Writer
	total, resumed int
	done, failed   int
	start, last    time.Time
	drawn          bool
	now            func() time.Time
	width          int
}

const redrawEvery = 100 * time.Millisecond

func newProgress(w io.Writer, todo, resumed int) *progress {
	p := &progress{w: w, total: todo, resumed: resumed, now: time.Now, width: 30}
	p.start = p.now()
	if w != nil && resumed > 0 {
		fmt.Fprintf(w, "resuming: %d answers already graded in the state file, %d to grade\n", resumed, todo)
	}
	return p
}

func (p *progress) step(ok bool) {
	p.done++
	if !ok {
		p.failed++
	}
	if t := p.now(); p.done == p.total || t.Sub(p.last) >= redrawEvery {
		p.last = t
		p.draw()
	}
}

func (p *progress) finish() {
	if p.w == nil {
		return
	}
	if !p.drawn {
		p.draw()
	}
	fmt.Fprintln(p.w)
}

func (p *progress) draw() {
	if p.w == nil {
		return
	}
	p.drawn = true
	frac := 1.0
	if p.total > 0 {
		frac = float64(p.done) / float64(p.total)
	}
	fill := int(frac * float64(p.width))
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", p.width-fill)
	line := fmt.Sprintf("\rgrading [%s] %d/%d %3.0f%%", bar, p.done, p.total, 100*frac)
	if el := p.now().Sub(p.start).Seconds(); el > 0 && p.done > 0 {
		rate := float64(p.done) / el
		eta := time.Duration(float64(p.total-p.done)/rate) * time.Second
		line += fmt.Sprintf(" %.0f/s ETA %s", rate, eta.Round(time.Second))
	}
	if p.failed > 0 {
		line += fmt.Sprintf(" failed %d", p.failed)
	}
	fmt.Fprint(p.w, line+"   ")
}

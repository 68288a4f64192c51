package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/assay-dev/assay/internal/evaluation"
)

// EventSource follows evaluations: internal/jobs.Broker, fed by the
// workers in memory mode and by PostgreSQL NOTIFY otherwise.
type EventSource interface {
	Subscribe(id string) (<-chan evaluation.Event, func())
}

// eventsRoute is exempt from the request deadline (guard.go).
const eventsRoute = "/v1/evaluations/:id/events"

// defaultHeartbeat keeps proxies from closing an idle stream.
const defaultHeartbeat = 15 * time.Second

// CloseStreams ends every open event stream, so that a graceful shutdown
// does not wait for them (register it with http.Server.RegisterOnShutdown).
func (s *Server) CloseStreams() {
	select {
	case <-s.closing:
	default:
		close(s.closing)
	}
}

// stages are the events before the outcome, in order. An evaluation that
// is running with a matched rubric is grading: nothing but a cache lookup
// lies between the two.
var stages = []string{evaluation.EventQueued, evaluation.EventRubricMatched, evaluation.EventGrading}

// stream writes one evaluation's Server-Sent Events.
type stream struct {
	c    *gin.Context
	last int // index in stages of the last stage sent, -1 for none
	n    int // events sent, the SSE id
}

// advance sends the stages e has reached since the last one sent, then
// its outcome if it has one, and reports whether the stream is over. A
// stream that began before the outcome tells every stage; one that began
// after it gets only the outcome.
func (st *stream) advance(e evaluation.Evaluation) (bool, error) {
	reached := 0
	if e.Rubric.ID != "" {
		reached = 2
	}
	done := e.Status == evaluation.StatusCompleted || e.Status == evaluation.StatusFailed
	if !done || st.last >= 0 {
		for ; st.last < reached; st.last++ {
			if err := st.send(stages[st.last+1], e); err != nil {
				return true, err
			}
		}
	}
	if done {
		name := evaluation.EventCompleted
		if e.Status == evaluation.StatusFailed {
			name = evaluation.EventFailed
		}
		return true, st.send(name, e)
	}
	return false, nil
}

func (st *stream) send(name string, e evaluation.Evaluation) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	st.n++
	return st.write(fmt.Sprintf("id: %d\nevent: %s\ndata: %s\n\n", st.n, name, data))
}

func (st *stream) write(s string) error {
	if _, err := st.c.Writer.WriteString(s); err != nil {
		return err
	}
	st.c.Writer.Flush()
	return nil
}

// evaluationEvents streams an evaluation's progress. It subscribes before
// reading the evaluation, so no event falls between, and on every event
// and heartbeat re-reads it: events only say "look again", which makes a
// lost or reordered event harmless.
func (s *Server) evaluationEvents(c *gin.Context) {
	ctx := c.Request.Context()
	id, who := c.Param("id"), owner(c)
	events, unsubscribe := s.cfg.Events.Subscribe(id)
	defer unsubscribe()
	e, err := s.svc.Get(ctx, id, who)
	if err != nil {
		s.fail(c, err)
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx would buffer the stream
	c.Status(http.StatusOK)
	st := &stream{c: c, last: -1}
	if done, err := st.advance(e); done || err != nil {
		return
	}
	beat := s.cfg.Heartbeat
	if beat <= 0 {
		beat = defaultHeartbeat
	}
	ticker := time.NewTicker(beat)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done(): // the client went away
			return
		case <-s.closing:
			return
		case <-events:
		case <-ticker.C:
			if st.write(": heartbeat\n\n") != nil {
				return
			}
		}
		if e, err = s.svc.Get(ctx, id, who); err != nil {
			s.log.WarnContext(ctx, "event stream: re-reading the evaluation", "err", err, "request_id", requestID(c))
			continue
		}
		if done, err := st.advance(e); done || err != nil {
			return
		}
	}
}

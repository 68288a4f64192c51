package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/idempotency"
)

// idempotent makes a POST safe to retry with an Idempotency-Key header: the
// first response is stored and replayed for the same key and body.
func (s *Server) idempotent(c *gin.Context) {
	key := c.GetHeader("Idempotency-Key")
	if key == "" {
		c.Next()
		return
	}
	if len(key) > idempotency.MaxKeyLength {
		s.fail(c, fault.Param("Idempotency-Key", fmt.Sprintf("must be at most %d characters", idempotency.MaxKeyLength)))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.fail(c, &fault.Error{Kind: fault.TooLarge, Message: fmt.Sprintf("the body is over the limit of %d bytes", s.cfg.MaxBodyBytes)})
			return
		}
		s.fail(c, &requestError{kind: malformed, detail: "the body could not be read"})
		return
	}
	c.Request.Body = io.NopCloser(bytes.NewReader(body))
	ctx := c.Request.Context()
	owner := "key:" + caller(c).ID
	hash := idempotency.Hash(c.Request.Method, c.Request.URL.Path, body)
	rec, claimed, err := s.cfg.Idempotency.Begin(ctx, owner, key, hash, time.Now())
	if err != nil {
		s.fail(c, fmt.Errorf("idempotency: %w", err))
		return
	}
	if !claimed {
		resp, err := idempotency.Check(rec, hash)
		if err != nil {
			s.fail(c, err)
			return
		}
		if resp.Location != "" {
			c.Header("Location", resp.Location)
		}
		c.Header("Idempotent-Replayed", "true")
		c.Data(resp.Status, resp.ContentType, resp.Body)
		c.Abort()
		return
	}
	w := &capture{ResponseWriter: c.Writer}
	c.Writer = w
	// The client may be gone; the record must still be settled.
	settleCtx := context.WithoutCancel(ctx)
	finished := false
	defer func() {
		if finished {
			return
		}
		// The handler panicked (recover answers 500 further up): forget the
		// key, or every retry would meet a conflict until the key expires.
		if err := s.cfg.Idempotency.Abandon(settleCtx, owner, key); err != nil {
			s.log.ErrorContext(settleCtx, "settling idempotency key", "err", err, "request_id", requestID(c))
		}
	}()
	c.Next()
	finished = true
	ctx = settleCtx
	status := w.Status()
	if status >= 500 || status == http.StatusTooManyRequests {
		// A failure is not an answer: forget the key so a retry runs again.
		err = s.cfg.Idempotency.Abandon(ctx, owner, key)
	} else {
		err = s.cfg.Idempotency.Finish(ctx, owner, key, idempotency.Response{
			Status: status, ContentType: w.Header().Get("Content-Type"), Location: w.Header().Get("Location"), Body: w.buf.Bytes(),
		})
	}
	if err != nil {
		s.log.ErrorContext(ctx, "settling idempotency key", "err", err, "request_id", requestID(c))
	}
}

// capture keeps a copy of the response body.
type capture struct {
	gin.ResponseWriter
	buf bytes.Buffer
}

func (w *capture) Write(b []byte) (int, error) {
	w.buf.Write(b)
	return w.ResponseWriter.Write(b)
}

func (w *capture) WriteString(s string) (int, error) {
	w.buf.WriteString(s)
	return w.ResponseWriter.WriteString(s)
}

package httpapi

import (
	"time"

	"github.com/gin-gonic/gin"

	"github.com/assay-dev/assay/internal/fault"
)

// admit bounds the gradings in progress (Config.MaxGradings). A request
// over the bound waits, before its body is read, for a grading to finish
// or for its deadline. A burst of ten thousand requests then holds ten
// thousand connections but only MaxGradings decoded requests, embeddings,
// prompts and deep stacks: the waiting ones cost their connection's
// buffers and a shallow goroutine, which is what keeps such a burst in a
// few hundred megabytes.
func (s *Server) admit(c *gin.Context) {
	if s.gradings == nil {
		c.Next()
		return
	}
	if err := s.gradings.Acquire(c.Request.Context(), 1); err != nil {
		s.fail(c, &fault.Error{Kind: fault.Unavailable, Err: err,
			Message: "the server is busy grading; retry later", RetryAfter: time.Second})
		return
	}
	defer s.gradings.Release(1)
	c.Next()
}

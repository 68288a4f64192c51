package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/assay-dev/assay/internal/fault"
)

// requestError is a problem with the request itself (media type, size,
// syntax), found before the body reaches any domain code.
type requestError struct {
	kind    problemKind
	detail  string
	pointer string
}

func (e *requestError) Error() string { return e.detail }

func (e *requestError) problem() Problem {
	p := Problem{Type: ProblemBase + e.kind.slug, Title: e.kind.title, Status: e.kind.status, Detail: e.detail}
	if e.pointer != "" {
		p.Errors = []fault.FieldError{{Pointer: e.pointer, Detail: e.detail}}
	}
	return p
}

// decodeJSON reads the body into v: JSON only, within the size limit, no
// unknown fields, exactly one value.
func (s *Server) decodeJSON(c *gin.Context, v any) error {
	ct := c.GetHeader("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return &requestError{kind: unsupportedMedia, detail: fmt.Sprintf("Content-Type must be application/json, got %q", ct)}
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &fault.Error{Kind: fault.TooLarge, Message: fmt.Sprintf("the body is over the limit of %d bytes", s.cfg.MaxBodyBytes)}
		}
		return &requestError{kind: malformed, detail: "the body could not be read"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return &requestError{kind: malformed, detail: "the body must hold one JSON value"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &requestError{kind: malformed, detail: "the body must hold one JSON value"}
	}
	return nil
}

func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return &requestError{kind: malformed, detail: "the body is empty; send a JSON object"}
	case errors.As(err, &syntax):
		return &requestError{kind: malformed, detail: fmt.Sprintf("malformed JSON at byte %d", syntax.Offset)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &requestError{kind: malformed, detail: "malformed JSON: the body ends too early"}
	case errors.As(err, &typ):
		ptr := "/" + strings.ReplaceAll(typ.Field, ".", "/")
		if typ.Field == "" {
			ptr = ""
		}
		return &requestError{kind: malformed, pointer: ptr, detail: fmt.Sprintf("must be a JSON %s", jsonType(typ.Type.Kind().String()))}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &requestError{kind: malformed, pointer: "/" + name, detail: fmt.Sprintf("unknown field %q", name)}
	default:
		return &requestError{kind: malformed, detail: "malformed JSON"}
	}
}

func jsonType(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "map", "struct":
		return "object"
	case "slice", "array":
		return "array"
	case "bool":
		return "boolean"
	default:
		return "number"
	}
}

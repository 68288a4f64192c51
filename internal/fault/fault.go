// Package fault defines the kinds of failure Assay reports. Packages return
// *fault.Error values (or wrap them); the HTTP layer maps each Kind to a
// status and a problem type in one table, so no other package needs to know
// about HTTP.
package fault

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind classifies an error by what the caller can do about it.
type Kind int

const (
	// Internal is a bug or an unexpected failure: the client can do nothing.
	Internal Kind = iota
	// Invalid means the input breaks a rule; Fields says which.
	Invalid
	// NotFound means the named thing does not exist.
	NotFound
	// NoMatch means no rubric is similar enough to the question or answer.
	NoMatch
	// Conflict means the request clashes with the current state.
	Conflict
	// Unavailable means a dependency (database, LLM) is down; retry later.
	Unavailable
	// Upstream means a dependency answered with something unusable.
	Upstream
	// TooLarge means the request or a field is over a size limit.
	TooLarge
	// Unauthorized means credentials are missing or wrong.
	Unauthorized
	// Forbidden means the credentials lack the scope for the action.
	Forbidden
	// RateLimited means the caller sent too many requests; see RetryAfter.
	RateLimited
)

var kindNames = [...]string{"internal", "invalid", "not_found", "no_match", "conflict", "unavailable", "upstream", "too_large", "unauthorized", "forbidden", "rate_limited"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// FieldError names one bad field of the body by its JSON pointer (RFC
// 6901), or one bad query or path parameter by its name.
type FieldError struct {
	Pointer   string `json:"pointer,omitempty"`
	Parameter string `json:"parameter,omitempty"`
	Detail    string `json:"detail"`
}

// Error is a classified error with a message that is safe to show a client.
// Err, if set, is the cause: it is logged, never shown.
type Error struct {
	Kind    Kind
	Message string
	Fields  []FieldError
	// Extra holds additional members for the problem body, such as the
	// candidate rubrics of a NoMatch error.
	Extra map[string]any
	// RetryAfter, when set, tells the client when to try again (sent as
	// the Retry-After header).
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of kind k with a client-safe message.
func New(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// Wrap classifies err as kind k with a client-safe message.
func Wrap(err error, k Kind, message string) *Error {
	return &Error{Kind: k, Message: message, Err: err}
}

// Field returns an Invalid error about the field at pointer.
func Field(pointer, detail string) *Error {
	return &Error{Kind: Invalid, Message: strings.TrimPrefix(pointer, "/") + " " + detail, Fields: []FieldError{{Pointer: pointer, Detail: detail}}}
}

// Param returns an Invalid error about the query or path parameter name.
func Param(name, detail string) *Error {
	return &Error{Kind: Invalid, Message: name + " " + detail, Fields: []FieldError{{Parameter: name, Detail: detail}}}
}

// KindOf returns the kind of the first *Error in err's chain, or Internal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// As returns the first *Error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

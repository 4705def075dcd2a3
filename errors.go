package llmgw

import (
	"errors"
	"strconv"
	"time"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrNotFound means the named account or key does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a name is already taken.
	ErrConflict = errors.New("already exists")
	// ErrInvalid means input failed validation.
	ErrInvalid = errors.New("invalid")
	// ErrNoAccount means no account can serve a request.
	ErrNoAccount = errors.New("no account can serve this request")
	// ErrLoginRequired means an account's credentials are dead (a rejected
	// refresh token) and only a new login brings it back.
	ErrLoginRequired = errors.New("account needs a new login")
)

// UpstreamError is an error response from Anthropic, carried to the client
// unchanged where possible.
type UpstreamError struct {
	Status     int
	Type       string
	Message    string
	RetryAfter time.Duration
}

func (e *UpstreamError) Error() string {
	return "upstream " + strconv.Itoa(e.Status) + " " + e.Type + ": " + e.Message
}

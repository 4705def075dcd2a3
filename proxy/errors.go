package proxy

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/sse"
)

// requestError is an error the gateway itself answers with, in the client's
// dialect: bad input, authentication, unknown routes.
type requestError struct {
	status int
	typ    string
	msg    string
	param  string // the request field at fault, for dialects that report it
}

func (e *requestError) Error() string { return e.msg }

func clientErr(status int, typ, msg string) error {
	return &requestError{status: status, typ: typ, msg: msg}
}

// fieldErr is a 400 invalid_request_error about one request field.
func fieldErr(param, msg string) error {
	return &requestError{status: http.StatusBadRequest, typ: "invalid_request_error", msg: msg, param: param}
}

// errUnreachable means no attempt got an HTTP answer from the upstream.
type errUnreachable struct {
	account string
	err     error
}

func (e *errUnreachable) Error() string {
	return fmt.Sprintf("could not reach the upstream of account %s: %s", e.account, rootCause(e.err))
}

func (e *errUnreachable) Unwrap() error { return e.err }

// errLocal is a failure that is the gateway's own, not an account's: it ran
// out of file descriptors or memory, or the upstream sent something the
// gateway will not hold. No account is blamed and no other is tried.
type errLocal struct {
	err    error
	status int // default 503
}

func (e *errLocal) Error() string {
	if errors.Is(e.err, sse.ErrFrameTooLarge) {
		return "the upstream sent an event larger than llmgw accepts"
	}
	return "llmgw is out of resources and cannot reach the upstream right now: " + rootCause(e.err)
}

func (e *errLocal) Unwrap() error { return e.err }

// isLocalExhaustion reports whether err comes from this machine running out
// of something (descriptors, memory, ephemeral ports) rather than from the
// network or the upstream.
func isLocalExhaustion(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.EADDRNOTAVAIL} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// errBusy means every fitting account stayed at its concurrency limit for the
// whole configured timeout.
type errBusy struct{ wait time.Duration }

func (e *errBusy) Error() string {
	return fmt.Sprintf("every account that can serve this model stayed at its concurrency limit for %s", e.wait)
}

// withParam sets error.param in an OpenAI-shaped error body; other bodies
// are returned unchanged.
func withParam(body []byte, param string) []byte {
	if param == "" {
		return body
	}
	var doc map[string]map[string]any
	if json.Unmarshal(body, &doc) != nil || doc["error"] == nil {
		return body
	}
	if _, ok := doc["error"]["param"]; !ok {
		return body // not OpenAI's shape (Gemini's has no param)
	}
	doc["error"]["param"] = param
	out, err := json.Marshal(doc)
	if err != nil {
		return body
	}
	return out
}

// writeError is the one place request errors are turned into responses and
// logged. Internal details go to the log, never to the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := entryFrom(r.Context())
	e.errMsg = err.Error()
	var (
		re  *requestError
		na  *errNoAccount
		un  *errUnreachable
		bz  *errBusy
		qf  *errQueueFull
		sat *errSaturated
		lo  *errLocal
	)
	status, typ, msg, param := http.StatusInternalServerError, "api_error", "internal error in llmgw; the request id is "+e.id, ""
	switch {
	case errors.As(err, &re):
		status, typ, msg, param = re.status, re.typ, re.msg, re.param
	case errors.As(err, &na):
		status, typ, msg = http.StatusServiceUnavailable, "overloaded_error", na.Error()
		if na.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(na.retryAfter.Seconds()))))
		}
	case errors.As(err, &bz), errors.As(err, &qf), errors.As(err, &sat):
		status, typ, msg = http.StatusServiceUnavailable, "overloaded_error", err.Error()
		w.Header().Set("Retry-After", "1")
	case errors.As(err, &lo):
		status, typ, msg = cmp.Or(lo.status, http.StatusServiceUnavailable), "api_error", lo.Error()
		if status == http.StatusServiceUnavailable {
			typ = "overloaded_error"
			w.Header().Set("Retry-After", "1")
		}
	case errors.As(err, &un):
		status, typ, msg = http.StatusBadGateway, "api_error", un.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			status, typ = http.StatusGatewayTimeout, "timeout_error"
		}
	case errors.Is(err, errClientGone), errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away: there is nobody to answer.
		if u := e.usage; u != nil {
			u.Status, u.ErrorType = statusClientClosed, "client_closed_request"
		}
		w.Header().Set("Connection", "close")
		return
	case errors.Is(err, errPanic): // logged with its stack where it was caught
	default:
		s.log.LogAttrs(r.Context(), slog.LevelError, "internal error", slog.String("request_id", e.id), slog.String("err", err.Error()))
	}
	if u := e.usage; u != nil {
		u.Status, u.ErrorType, u.ErrorMessage = status, typ, msg
	}
	if !e.bodyRead && r.ContentLength != 0 {
		// Refused before its body was read: rather than drain a body nobody
		// wants (Go would, for up to 256 KiB), end the connection; the
		// deadline stops the read Go still makes when it closes the body.
		w.Header().Set("Connection", "close")
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	}
	if o := e.open; o != nil && o.endCommitted() {
		// A stream already open for keep-alives: the error is its last event.
		if u := e.usage; u != nil {
			u.Status, u.EndedEarly = http.StatusOK, true
		}
		o.failWith(typ, msg)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if e.dialect != "" && e.dialect != llmgw.DialectAnthropic {
		code, body := renderError(e.dialect, status, typ, msg)
		body = withParam(body, param)
		w.WriteHeader(code)
		_, _ = w.Write(body)
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write(anthropic.MarshalError(typ, msg, e.id))
}

// statusClientClosed is what the request log says when the client left
// before its answer (nginx's convention; never sent).
const statusClientClosed = 499

// errClientGone means the client went away while sending its request.
var errClientGone = errors.New("the client closed the connection while sending its request")

// errSaturated means the request bodies in flight fill the gateway's memory
// budget for them.
type errSaturated struct{ limit int64 }

func (e *errSaturated) Error() string {
	return fmt.Sprintf("llmgw is saturated: request bodies in flight use its memory limit of %d bytes; retry shortly", e.limit)
}

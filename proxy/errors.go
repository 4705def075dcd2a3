package proxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"syscall"
	"time"

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

// writeError is the one place errors reach clients and the one place a
// failure is recorded in the request log (status, error type, message). It
// renders through the request's dialect: as a whole answer with its status,
// or, once a stream's headers are out, as the stream's last event. Internal
// details go to the log, never to the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := entryFrom(r.Context())
	e.errMsg = err.Error()
	info := ErrorInfo{Status: http.StatusInternalServerError, Type: "api_error",
		Message: "internal error in llmgw; the request id is " + e.id, RequestID: e.id}
	var (
		re  *requestError
		ue  *upstreamError
		se  *streamError
		na  *errNoAccount
		un  *errUnreachable
		bz  *errBusy
		qf  *errQueueFull
		sat *errSaturated
		lo  *errLocal
		lim *errLimited
	)
	gone := false
	switch {
	case errors.As(err, &re):
		info.Status, info.Type, info.Message, info.Param = re.status, re.typ, re.msg, re.param
	case errors.As(err, &ue):
		info.Status, info.Type, info.Message = ue.status, ue.typ, ue.msg
		if ue.status < 400 { // an error event in a stream's opening
			info.Status = anthropic.ErrorStatus(ue.typ)
		}
		info.Upstream, info.UpstreamStatus = ue.raw, ue.status
	case errors.As(err, &se):
		info.Status, info.Type, info.Message = http.StatusBadGateway, se.typ, se.msg
	case errors.As(err, &na):
		info.Status, info.Type, info.Message = http.StatusServiceUnavailable, "overloaded_error", na.Error()
		if na.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(na.retryAfter)))
		}
	case errors.As(err, &lim):
		info.Status, info.Type, info.Message = http.StatusTooManyRequests, "rate_limit_error", lim.msg
		if lim.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(lim.retryAfter)))
		}
	case errors.As(err, &bz), errors.As(err, &qf), errors.As(err, &sat):
		info.Status, info.Type, info.Message = http.StatusServiceUnavailable, "overloaded_error", err.Error()
		w.Header().Set("Retry-After", "1")
	case errors.As(err, &lo):
		info.Status, info.Type, info.Message = cmp.Or(lo.status, http.StatusServiceUnavailable), "api_error", lo.Error()
		if info.Status == http.StatusServiceUnavailable {
			info.Type = "overloaded_error"
			w.Header().Set("Retry-After", "1")
		}
	case errors.As(err, &un):
		info.Status, info.Type, info.Message = http.StatusBadGateway, "api_error", un.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			info.Status, info.Type = http.StatusGatewayTimeout, "timeout_error"
		}
	case errors.Is(err, errClientGone), errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		gone = true // there is nobody to answer
		info.Status, info.Type, info.Message = statusClientClosed, "client_closed_request", ""
	case errors.Is(err, errPanic): // logged with its stack where it was caught
	default:
		s.log.LogAttrs(r.Context(), slog.LevelError, "internal error", slog.String("request_id", e.id), slog.String("err", err.Error()))
	}
	u := e.usage
	if u != nil {
		u.ErrorType, u.ErrorMessage = info.Type, info.Message
	}

	e.open.end()
	if e.sw != nil && e.sw.status != 0 {
		// A stream's headers are out (its first content, or keep-alives
		// while its opening was held): the error is the stream's last event,
		// unless the upstream's own error event already was.
		if u != nil {
			u.EndedEarly = true
		}
		if !gone && (se == nil || !se.sent) && e.stream != nil {
			_ = e.stream.Fail(w, info.Type, info.Message)
			_ = http.NewResponseController(w).Flush()
		}
		return
	}
	if gone || (!e.bodyRead && r.ContentLength != 0) {
		// Refused before its body was read: rather than drain a body nobody
		// wants (Go would, for up to 256 KiB), end the connection; the
		// deadline stops the read Go still makes when it closes the body.
		w.Header().Set("Connection", "close")
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	}
	if gone {
		if u != nil {
			u.Status = statusClientClosed
		}
		return
	}
	status, body := e.dialect.Error(info)
	if u != nil {
		u.Status = status
		u.EndedEarly = u.EndedEarly || info.UpstreamStatus != 0 && info.UpstreamStatus < 400
	}
	if w.Header().Get("Content-Type") == "" || info.Upstream == nil {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// statusClientClosed is what the request log says when the client left
// before its answer (nginx's convention; never sent).
const statusClientClosed = 499

// errClientGone means the client went away: while sending its request, or
// while its answer was being sent.
var errClientGone = errors.New("the client closed the connection")

// errSaturated means the request bodies in flight fill the gateway's memory
// budget for them.
type errSaturated struct{ limit int64 }

func (e *errSaturated) Error() string {
	return fmt.Sprintf("llmgw is saturated: request bodies in flight use its memory limit of %d bytes; retry shortly", e.limit)
}

// retrySeconds rounds a wait up to whole seconds, as Retry-After and the
// messages that name a wait give it.
func retrySeconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }

package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
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
		re *requestError
		na *errNoAccount
		un *errUnreachable
		bz *errBusy
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
	case errors.As(err, &bz):
		status, typ, msg = http.StatusServiceUnavailable, "overloaded_error", bz.Error()
		w.Header().Set("Retry-After", "1")
	case errors.As(err, &un):
		status, typ, msg = http.StatusBadGateway, "api_error", un.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			status, typ = http.StatusGatewayTimeout, "timeout_error"
		}
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away: there is nobody to answer.
		return
	default:
		s.log.LogAttrs(r.Context(), slog.LevelError, "internal error", slog.String("request_id", e.id), slog.String("err", err.Error()))
	}
	if u := e.usage; u != nil {
		u.Status, u.ErrorType, u.ErrorMessage = status, typ, msg
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

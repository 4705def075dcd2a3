// Package upstreamtest is a fake of Anthropic's Messages API for tests.
//
// NewServer starts an httptest server on 127.0.0.1 that answers
// POST /v1/messages (streaming and not), POST /v1/messages/count_tokens,
// GET /v1/models and GET /v1/models/{id} with the shapes, headers and SSE
// event sequence of the real API. Replies are derived deterministically from
// the request unless a test scripts them, per credential, with Script and the
// Step helpers (OK, Fail, FailMidStream, AbortMidStream, HangMidStream, Hang,
// Replay, ReplayFile). Every request is recorded, and the usage the fake sent
// is summed so a test can compare it with the gateway's accounting.
//
// The package uses only the standard library and is meant to be imported by
// _test.go files only.
package upstreamtest

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// maxBodyBytes is the real API's request size limit on standard endpoints;
// larger bodies get 413 request_too_large.
const maxBodyBytes = 32 << 20

// Server is a running fake upstream. Its methods are safe for concurrent use.
// It is closed by the cleanup NewServer registers; closing first ends every
// request still waiting (Hang, Hold, delays), so cleanup never blocks on them.
type Server struct {
	// URL is the base URL of the fake, such as "http://127.0.0.1:41234",
	// without a trailing slash. Point the gateway's upstream base URL here.
	URL string

	srv     *httptest.Server
	keys    map[string]bool // nil: any non-empty credential is accepted
	reply   Step            // default reply when a credential has no script left
	toolUse bool
	models  []Model
	cache   map[[32]byte]bool // cached prompt prefixes, with PromptCache; guarded by mu

	mu       sync.Mutex
	scripts  map[string][]Step
	requests []Request
	sent     Usage
	inFlight int
	held     int
	changed  chan struct{} // closed and replaced whenever inFlight or held changes
}

// Option configures a Server in NewServer. A Step is also an Option: passed
// to NewServer it becomes the default reply, as with Reply.
type Option interface {
	apply(*Server)
}

type optionFunc func(*Server)

func (f optionFunc) apply(s *Server) { f(s) }

// Keys makes the fake accept only the given credentials (compared with the
// x-api-key header, or else the Authorization bearer token); any other gets
// 401 authentication_error "invalid x-api-key". Without Keys every non-empty
// credential is accepted. Keys may be given more than once; the sets add up.
func Keys(keys ...string) Option {
	return optionFunc(func(s *Server) {
		if s.keys == nil {
			s.keys = make(map[string]bool)
		}
		for _, k := range keys {
			s.keys[k] = true
		}
	})
}

// Reply sets the default reply of POST /v1/messages: the hook is called for
// every request whose credential has no scripted step left. Fields of the
// returned Response left zero are derived from the request (see Response).
// The hook may be called concurrently and must not modify the Request.
func Reply(fn func(req *Request) Response) Option {
	return optionFunc(func(s *Server) { s.reply = fn })
}

// ToolUse makes every derived reply to a request that has tools a tool_use
// block, not only those whose last user text contains "use a tool".
func ToolUse() Option {
	return optionFunc(func(s *Server) { s.toolUse = true })
}

// Script queues steps for one credential (the account's API key or OAuth
// access token). Each POST /v1/messages made with that credential consumes the
// next step; when they run out the default reply is used again. Scripts apply
// only to /v1/messages; count_tokens and models always answer normally.
// See also (*Server).Script, which queues steps on a running server.
func Script(key string, steps ...Step) Option {
	return optionFunc(func(s *Server) { s.Script(key, steps...) })
}

// Models replaces the list GET /v1/models returns, in the order given (the
// real API lists the newest first).
func Models(models ...Model) Option {
	return optionFunc(func(s *Server) { s.models = slices.Clone(models) })
}

// Model is one entry of GET /v1/models.
type Model struct {
	ID          string
	DisplayName string    // ID if empty
	CreatedAt   time.Time // 2025-01-01 if zero
}

// defaultModels is what GET /v1/models returns without the Models option.
var defaultModels = []Model{
	{ID: "claude-sonnet-4-5-20250929", DisplayName: "Claude Sonnet 4.5", CreatedAt: time.Date(2025, 9, 29, 0, 0, 0, 0, time.UTC)},
	{ID: "claude-haiku-4-5-20251001", DisplayName: "Claude Haiku 4.5", CreatedAt: time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)},
	{ID: "claude-opus-4-1-20250805", DisplayName: "Claude Opus 4.1", CreatedAt: time.Date(2025, 8, 5, 0, 0, 0, 0, time.UTC)},
}

// NewServer starts a fake upstream on 127.0.0.1 and closes it in tb.Cleanup.
func NewServer(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{
		reply:   OK(),
		models:  defaultModels,
		scripts: make(map[string][]Step),
		changed: make(chan struct{}),
	}
	for _, o := range opts {
		o.apply(s)
	}
	// Every request context derives from base, so cancelling it at cleanup
	// releases handlers that wait for their context (Hang, Hold, delays);
	// httptest.Server.Close would otherwise wait for them forever.
	base, cancel := context.WithCancel(context.Background())
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.handle))
	s.srv.Config.BaseContext = func(net.Listener) context.Context { return base }
	s.srv.Start()
	s.URL = s.srv.URL
	tb.Cleanup(func() {
		cancel()
		s.srv.Close()
	})
	return s
}

// Script queues steps for a credential after the ones already queued; see the
// Script option.
func (s *Server) Script(key string, steps ...Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[key] = append(s.scripts[key], steps...)
}

// Requests returns a copy of every request received so far, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		r.Header = r.Header.Clone()
		r.Body = slices.Clone(r.Body)
		r.ToolNames = slices.Clone(r.ToolNames)
		out[i] = r
	}
	return out
}

// Count returns the number of requests received so far, on every path and
// including rejected ones.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// SentUsage returns the sum of the usage the fake emitted: for each
// /v1/messages response that got as far as sending a usage object, the last
// usage numbers it sent (the final message_delta's for a complete stream, the
// message_start's for one cut before that, the body's for a JSON reply).
// Error responses and count_tokens are not included.
//
// A stream's final numbers are added right after its message_delta is
// flushed and before message_stop is written, so once a client has read
// message_stop, SentUsage includes that response.
func (s *Server) SentUsage() Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

// InFlight returns the number of POST /v1/messages requests being answered
// right now (including those delayed, held or hanging).
func (s *Server) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight
}

// AwaitInFlight blocks until at least n POST /v1/messages requests are being
// answered at once, or ctx ends, in which case it returns ctx.Err().
func (s *Server) AwaitInFlight(ctx context.Context, n int) error {
	return s.await(ctx, func() bool { return s.inFlight >= n })
}

// Held returns the number of replies paused by Hold right now: streams that
// have sent message_start, or JSON replies that have sent nothing.
func (s *Server) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// AwaitHeld blocks until at least n replies are paused by Hold at once, or ctx
// ends, in which case it returns ctx.Err(). With Hold it tells a test that n
// streams are open, without sleeping.
func (s *Server) AwaitHeld(ctx context.Context, n int) error {
	return s.await(ctx, func() bool { return s.held >= n })
}

// await waits until cond, called with s.mu held, is true.
func (s *Server) await(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ok, ch := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// addGauge adds d to *g, one of the counters await watches, and wakes waiters.
func (s *Server) addGauge(g *int, d int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*g += d
	close(s.changed)
	s.changed = make(chan struct{})
}

// nextStep pops the credential's next scripted step, or returns the default.
func (s *Server) nextStep(key string) Step {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.scripts[key]; len(q) > 0 {
		s.scripts[key] = q[1:]
		return q[0]
	}
	return s.reply
}

// account moves a response's contribution to SentUsage from prev (nil if it
// had none yet) to now.
func (s *Server) account(prev *Tokens, now Tokens) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev == nil {
		s.sent.Responses++
		prev = &Tokens{}
	}
	s.sent.Input += now.Input - prev.Input
	s.sent.Output += now.Output - prev.Output
	s.sent.CacheRead += now.CacheRead - prev.CacheRead
	s.sent.CacheWrite += now.CacheWrite - prev.CacheWrite
	s.sent.CacheWrite5m += now.CacheWrite5m - prev.CacheWrite5m
	s.sent.CacheWrite1h += now.CacheWrite1h - prev.CacheWrite1h
}

// handle is the single entry point: it records the request, checks
// authentication and the version header, then routes.
func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	reqID := newID("req_")
	w.Header().Set("request-id", reqID)

	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	req := Request{
		Method:    r.Method,
		Path:      r.URL.Path,
		RawQuery:  r.URL.RawQuery,
		Header:    r.Header.Clone(),
		Body:      body,
		Key:       credential(r.Header),
		Time:      time.Now(),
		RequestID: reqID,
	}
	req.parseBody()
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.mu.Unlock()

	switch {
	case readErr != nil:
		if _, ok := errors.AsType[*http.MaxBytesError](readErr); ok {
			writeError(w, reqID, &Error{Status: http.StatusRequestEntityTooLarge, Message: "Request exceeds the maximum allowed number of bytes."})
			return
		}
		writeError(w, reqID, &Error{Status: http.StatusBadRequest, Message: "could not read request body"})
		return
	case req.Key == "":
		writeError(w, reqID, &Error{Status: http.StatusUnauthorized, Message: "x-api-key header is required"})
		return
	case s.keys != nil && !s.keys[req.Key]:
		writeError(w, reqID, &Error{Status: http.StatusUnauthorized, Message: "invalid x-api-key"})
		return
	case r.Header.Get("anthropic-version") == "":
		writeError(w, reqID, &Error{Status: http.StatusBadRequest, Message: "anthropic-version: header is required"})
		return
	}

	switch {
	case r.Method == http.MethodPost && req.Path == "/v1/messages":
		s.messages(w, r, &req)
	case r.Method == http.MethodPost && req.Path == "/v1/messages/count_tokens":
		s.countTokens(w, &req)
	case r.Method == http.MethodGet && req.Path == "/v1/models":
		s.listModels(w, r, reqID)
	case r.Method == http.MethodGet && strings.HasPrefix(req.Path, "/v1/models/"):
		s.getModel(w, reqID, strings.TrimPrefix(req.Path, "/v1/models/"))
	default:
		writeError(w, reqID, &Error{Status: http.StatusNotFound, Message: "Not Found"})
	}
}

// credential returns the x-api-key header, or else the bearer token.
func credential(h http.Header) string {
	if k := h.Get("x-api-key"); k != "" {
		return k
	}
	auth := h.Get("Authorization")
	if len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		return strings.TrimSpace(auth[7:])
	}
	return ""
}

// messages answers POST /v1/messages with the credential's next step.
func (s *Server) messages(w http.ResponseWriter, r *http.Request, req *Request) {
	if msg := validateMessages(req.Body); msg != "" {
		writeError(w, req.RequestID, &Error{Status: http.StatusBadRequest, Message: msg})
		return
	}
	s.addGauge(&s.inFlight, 1)
	defer s.addGauge(&s.inFlight, -1)

	step := s.nextStep(req.Key)
	resp := step(req)
	s.derive(&resp, req)
	ctx := r.Context()

	if !wait(ctx, resp.Delay) {
		return
	}
	if resp.Hang {
		<-ctx.Done()
		return
	}
	for k, vs := range resp.Header {
		w.Header()[http.CanonicalHeaderKey(k)] = slices.Clone(vs)
	}
	switch {
	case resp.Error != nil:
		writeError(w, req.RequestID, resp.Error)
	case resp.Raw != nil:
		s.replay(ctx, w, &resp)
	case req.Stream:
		s.stream(ctx, w, &resp)
	default:
		s.nonStream(ctx, w, &resp, req.RequestID)
	}
}

// wait waits for d, or until ctx ends; it reports whether d elapsed.
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// hold waits until ch is closed or ctx ends, counted in Held; it reports
// whether ch was closed. A nil ch means no hold.
func (s *Server) hold(ctx context.Context, ch <-chan struct{}) bool {
	if ch == nil {
		return true
	}
	s.addGauge(&s.held, 1)
	defer s.addGauge(&s.held, -1)
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}

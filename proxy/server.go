// Package proxy serves the gateway's HTTP API. It answers clients from an
// in-memory snapshot of accounts and keys, chooses an account per request,
// fails over before the first byte reaches the client, and hands a usage
// record for every inference request to a UsageRecorder. It never touches
// the database.
package proxy

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/gemini"
	"github.com/llmgw/llmgw/proxy/openai"
	"github.com/llmgw/llmgw/proxy/policy"
	"github.com/llmgw/llmgw/proxy/responses"
)

// UsageRecorder receives what the proxy learns: one record per inference
// request, after the client has its answer, account state changes, and the
// subscription windows of OAuth accounts. No call may block for long, and
// records and states must never be lost.
type UsageRecorder interface {
	Record(llmgw.Usage)
	RecordState(accountID int64, st llmgw.AccountState)
	RecordWindows(accountID int64, ws llmgw.Windows)
}

// Config tunes a Server. Zero values take the defaults noted.
type Config struct {
	// MaxAttempts is how many accounts one request may try. Default 3.
	MaxAttempts int
	// MaxBodyBytes limits a request body. Default 32 MiB, as Anthropic.
	MaxBodyBytes int64
	// Timeout bounds the wait for upstream response headers and for a free
	// concurrency slot. Default 10 minutes.
	Timeout time.Duration
	// StaticKeys are client keys from the config file, accepted in addition
	// to those in the snapshot. Only Name and Hash are used.
	StaticKeys []llmgw.ClientKey
	// Kinds maps each account type to its Kind. Default: api_key only.
	Kinds map[llmgw.AccountType]Kind
	// Transport carries upstream requests. Default: a tuned http.Transport.
	Transport http.RoundTripper
	// Logger receives one line per request and the proxy's warnings.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// KeepAlive is the silence after which a stream gets a ping event, so
	// clients and proxies in between do not time out. Default 15 s.
	KeepAlive time.Duration
	// Aliases map model names that converted clients insist on (gpt-4o) to
	// Anthropic model ids. Unknown names pass through unchanged.
	Aliases map[string]string
	// Catalog is the model catalog: the models GET /v1/models (when no
	// account answers) and /v1beta/models list, and the max_tokens defaults,
	// caps and thinking modes converted requests get. Default: the built-in
	// catalog.
	Catalog *anthropic.Catalog
	// BodyReadTimeout bounds the time to read a request's body (and to drain
	// it after an early refusal). The deadline is lifted before the answer
	// streams. Default 60 s.
	BodyReadTimeout time.Duration
	// FirstByteTimeout bounds, for requests answered as streams upstream, the
	// wait for the upstream's headers and first content; past it the attempt
	// fails over. Non-stream requests wait up to Timeout, since the upstream
	// sends nothing before the whole answer. Default 60 s.
	FirstByteTimeout time.Duration
	// MaxBodyMemory bounds the memory request bodies take at once across
	// the process, waiters for a slot included. A converted request (OpenAI,
	// Gemini) counts convertedBodyFactor times its body's size. Past it
	// requests are refused with 503 until memory frees; a body that could
	// never fit gets 413. Default 512 MiB.
	MaxBodyMemory int64
	// MaxWaiting bounds how many requests may wait at once for a concurrency
	// slot; past it requests are refused with 503. Default 1024.
	MaxWaiting int
	// MaxHeaderCount bounds the number of request header fields; more is
	// refused with 431. Default 200.
	MaxHeaderCount int
	// Location is the time zone of the calendar windows of limits (a day
	// starts at midnight there). Default UTC.
	Location *time.Location
	// Notify receives the events an operator is alerted to (an account put
	// in error, a window past its threshold, a key near its limit, no
	// account left). It must not block: the alerts sender queues. Nil drops
	// them.
	Notify func(llmgw.Event)
	// NoAffinity turns session affinity off: every request is routed as if
	// it were a conversation's first.
	NoAffinity bool
	// WindowThreshold is the utilization (0..1) of a subscription window
	// past which Notify hears of it. Default DefaultWindowThreshold.
	WindowThreshold float64
	// TrustedProxies are the peers whose X-Forwarded-For is believed: the
	// request log's client is then the first address in it, from the right,
	// that is not itself a trusted proxy. Empty: the peer is the client.
	TrustedProxies []netip.Prefix
	// UsageLog is the request log, read when a key's or an account's limits
	// are set or changed to sum the use in their windows. Without it, use
	// counts from zero.
	UsageLog policy.Source
	// Metrics, when set, count every inference request and report the
	// server's state at scrape time (see Metrics). Nil collects nothing.
	Metrics *Metrics
	// MetricsToken opens GET /metrics on this handler to requests that send
	// it as a Bearer token. Empty: /metrics answers 404 here.
	MetricsToken string
	// AuthFailuresPerMinute is how many requests with a wrong client key
	// one client address (the request log's, so behind TrustedProxies the
	// real client) may send per minute before its requests get 429.
	// Default DefaultAuthFailuresPerMinute.
	AuthFailuresPerMinute int
}

// Server is the gateway's HTTP handler. It is safe for concurrent use.
type Server struct {
	cfg      Config
	rec      UsageRecorder
	log      *slog.Logger
	view     atomic.Pointer[view]
	pool     *pool
	client   *http.Client
	handler  http.Handler
	active   activity            // requests being served, for Drain
	bodyMem  *semaphore.Weighted // request-body bytes held, MaxBodyMemory in all
	dialects dialects
	ledger   *policy.Ledger // use against limits
	affinity *bindings      // sessions and the accounts that serve them
	idPrefix string         // starts every request id this Server makes (newIDPrefix)
	keySlots keySlots       // requests in flight per client key
	outage   atomic.Bool    // a no_account alert went out and no request was served since
	authFail *authFailures  // failed authentications per client address
}

// view is a snapshot with the indexes the hot path needs.
type view struct {
	snap *llmgw.Snapshot
	keys map[string]*llmgw.ClientKey // by hash
}

// NewServer returns a Server that records usage to rec. It serves nothing
// until SetSnapshot is called: /readyz says so.
func NewServer(cfg Config, rec UsageRecorder) *Server {
	if rec == nil {
		panic("proxy: NewServer needs a UsageRecorder")
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 32 << 20
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if cfg.Kinds == nil {
		cfg.Kinds = map[llmgw.AccountType]Kind{llmgw.AccountAPIKey: APIKeyKind{}}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BodyReadTimeout <= 0 {
		cfg.BodyReadTimeout = time.Minute
	}
	if cfg.FirstByteTimeout <= 0 {
		cfg.FirstByteTimeout = time.Minute
	}
	if cfg.MaxBodyMemory <= 0 {
		cfg.MaxBodyMemory = 512 << 20
	}
	if cfg.MaxWaiting <= 0 {
		cfg.MaxWaiting = 1024
	}
	if cfg.MaxHeaderCount <= 0 {
		cfg.MaxHeaderCount = 200
	}
	if cfg.Transport == nil {
		cfg.Transport = NewTransport(cfg.Timeout)
	}
	if cfg.Catalog == nil {
		cfg.Catalog = anthropic.Builtin()
	}
	if cfg.WindowThreshold <= 0 {
		cfg.WindowThreshold = DefaultWindowThreshold
	}
	s := &Server{
		cfg:      cfg,
		rec:      rec,
		log:      cfg.Logger.With("component", "proxy"),
		pool:     newPool(cfg.Now),
		client:   &http.Client{Transport: cfg.Transport, CheckRedirect: noRedirect}, // no Client.Timeout: it would cut streams
		bodyMem:  semaphore.NewWeighted(cfg.MaxBodyMemory),
		ledger:   policy.NewLedger(cfg.Now, cfg.Location),
		affinity: newBindings(),
		idPrefix: newIDPrefix(),
		authFail: newAuthFailures(cfg.AuthFailuresPerMinute, cfg.Now),
	}
	s.pool.maxWaiting = cfg.MaxWaiting
	s.pool.familyOf = cfg.Catalog.Family
	s.dialects = dialects{
		anthropic: anthropicDialect{},
		chat:      chatDialect{openai.DecodeOptions{Aliases: cfg.Aliases, Models: cfg.Catalog, Now: cfg.Now}},
		responses: responsesDialect{responses.DecodeOptions{Aliases: cfg.Aliases, Models: cfg.Catalog, Now: cfg.Now}},
		gemini:    geminiDialect{gemini.DecodeOptions{Aliases: cfg.Aliases, Models: cfg.Catalog}},
	}
	if cfg.Metrics != nil {
		cfg.Metrics.reg.MustRegister(liveCollector{s})
	}
	s.handler = s.routes()
	return s
}

// NewTransport returns the transport llmgw uses upstream: many idle
// connections per host (the default of 2 would make every burst dial), and a
// bound on the wait for response headers, but none on the body, which for a
// stream may take many minutes.
func NewTransport(headerTimeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: headerTimeout,
		ExpectContinueTimeout: time.Second,
	}
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// SetSnapshot makes snap the one requests are served from. Requests already
// running keep the snapshot they started with.
func (s *Server) SetSnapshot(snap *llmgw.Snapshot) {
	v := &view{snap: snap, keys: make(map[string]*llmgw.ClientKey, len(snap.Keys)+len(s.cfg.StaticKeys))}
	for i := range s.cfg.StaticKeys {
		k := &s.cfg.StaticKeys[i]
		v.keys[k.Hash] = k
	}
	for i := range snap.Keys {
		k := &snap.Keys[i]
		v.keys[k.Hash] = k
	}
	keep := make(map[int64]bool, len(snap.Accounts))
	for _, a := range snap.Accounts {
		keep[a.ID] = true
	}
	s.syncLimits(snap)
	s.view.Store(v)
	s.pool.forget(keep)
	s.pool.wake() // waiters may fit an account that was added or changed
}

// Snapshot returns the snapshot being served, or nil before the first.
func (s *Server) Snapshot() *llmgw.Snapshot {
	if v := s.view.Load(); v != nil {
		return v.snap
	}
	return nil
}

// AccountState returns the state the server currently holds for an account:
// the newer of the snapshot's and what it learned while serving.
func (s *Server) AccountState(a *llmgw.Account) llmgw.AccountState {
	h := s.pool.health(a.ID)
	h.mu.Lock()
	defer h.mu.Unlock()
	return effectiveState(a, h)
}

// Drain waits until every request being served has finished and recorded
// its usage, or ctx ends. http.Server.Close does not wait for handlers, so
// call Drain after it and before closing the usage recorder.
func (s *Server) Drain(ctx context.Context) error {
	select {
	case <-s.active.idle():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("requests still running: %w", ctx.Err())
	}
}

// activity counts requests being served. Unlike a WaitGroup it can be
// waited on in a select, so giving up on the wait leaves nothing behind.
type activity struct {
	mu   sync.Mutex
	n    int
	done chan struct{} // closed when n drops to 0; nil while n is 0
}

func (a *activity) add() {
	a.mu.Lock()
	if a.n == 0 {
		a.done = make(chan struct{})
	}
	a.n++
	a.mu.Unlock()
}

func (a *activity) sub() {
	a.mu.Lock()
	a.n--
	if a.n == 0 {
		close(a.done)
	}
	a.mu.Unlock()
}

// idle returns a channel that is closed once no request is being served.
func (a *activity) idle() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == 0 {
		c := make(chan struct{})
		close(c)
		return c
	}
	return a.done
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok"}`))
}

// root answers HEAD / and GET / (Claude Code's reachability probe): 200,
// with a small JSON body for GET and none for HEAD.
func (s *Server) root(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write([]byte(`{"status":"ok","service":"llmgw"}`))
}

// readyz answers 200 once a snapshot is loaded, at least one account is
// usable (active, even if cooling down) and at least one client key is
// (a stored key neither revoked nor expired, or a static key): without one
// no request can be served either.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	v := s.view.Load()
	if v == nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"not ready","reason":"no snapshot loaded yet"}`))
		return
	}
	var reasons []string
	if !s.anyUsableAccount(v) {
		reasons = append(reasons, "no usable account")
	}
	if !s.anyLiveKey(v) {
		reasons = append(reasons, "no client key")
	}
	if len(reasons) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(w, `{"status":"not ready","reason":%q}`, strings.Join(reasons, "; "))
		return
	}
	_, _ = w.Write([]byte(`{"status":"ready"}`))
}

func (s *Server) anyUsableAccount(v *view) bool {
	for i := range v.snap.Accounts {
		a := &v.snap.Accounts[i]
		if _, ok := s.cfg.Kinds[a.Type]; ok && s.AccountState(a).Status == llmgw.StatusActive {
			return true
		}
	}
	return false
}

func (s *Server) anyLiveKey(v *view) bool {
	if len(s.cfg.StaticKeys) > 0 {
		return true
	}
	now := s.cfg.Now()
	for i := range v.snap.Keys {
		k := &v.snap.Keys[i]
		if k.RevokedAt.IsZero() && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt)) {
			return true
		}
	}
	return false
}

type ctxKey int

const entryKey ctxKey = iota

// entry is the per-request log line, filled in by handlers and written by
// accessLog when the request ends.
type entry struct {
	id       string
	dialect  Dialect // the client's API dialect, from the path
	sw       *statusWriter
	key      *llmgw.ClientKey
	usage    *llmgw.Usage // set by inference handlers
	account  string
	model    string
	errMsg   string
	bodyRead bool          // the request body was read to its end
	memHeld  int64         // bytes of bodyMem this request holds
	open     *opening      // keep-alives of a stream whose opening is held
	stream   StreamEncoder // writes the answer's stream, and its error at the end
	reserved policy.Charge // what the request reserved against its key's limits
	client   string        // the client's address (clientOf), once worked out
}

func entryFrom(ctx context.Context) *entry {
	e, _ := ctx.Value(entryKey).(*entry)
	if e == nil {
		e = &entry{}
	}
	return e
}

func (s *Server) newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return s.idPrefix + hex.EncodeToString(b[:])
}

// newIDPrefix is the start of every request id a Server makes: "llmgw_"
// and 8 hex digits drawn once per Server, then 16 per request. A server
// tells its own rows in a shared request log by it (CatchUp), so it need
// not remember which request ids were its own.
func newIDPrefix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "llmgw_" + hex.EncodeToString(b[:])
}

// serveRequest is the frame around every request: it gives the request its
// id and entry, bounds the time to read its body, turns a panic into a 500
// in the client's dialect, completes and records the usage row once the
// client has its answer, and writes one log line. It keeps Flush and Unwrap
// on the writer so streams are not buffered.
func (s *Server) serveRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.active.add()
		defer s.active.sub()
		start := s.cfg.Now()
		e := &entry{id: s.newRequestID(), dialect: s.dialectFor(r.Method, r.URL.Path)}
		w.Header().Set("X-Request-Id", e.id)
		sw := &statusWriter{ResponseWriter: w}
		e.sw = sw
		if r.ContentLength != 0 {
			// The body must arrive in time; readBody lifts the deadline once
			// it has, and a request refused early drains under it.
			_ = http.NewResponseController(w).SetReadDeadline(start.Add(s.cfg.BodyReadTimeout))
		}
		r = r.WithContext(context.WithValue(r.Context(), entryKey, e))
		smuggled := ambiguousFraming(r.Context())
		defer func() {
			p := recover()
			perr, _ := p.(error)
			abort := errors.Is(perr, http.ErrAbortHandler) // net/http's way to drop the connection
			if p != nil && !abort {
				s.log.LogAttrs(r.Context(), slog.LevelError, "panic serving request", slog.String("request_id", e.id),
					slog.String("panic", fmt.Sprint(p)), slog.String("stack", string(debug.Stack())))
				s.writeError(sw, r, errPanic)
				if u := e.usage; u != nil {
					u.Status = http.StatusInternalServerError
				}
			}
			e.open.end()
			s.releaseBody(r)
			if e.usage != nil {
				s.finishUsage(e, e.usage)
			}
			if r.URL.Path != "/healthz" && r.URL.Path != "/readyz" {
				s.logRequest(r, e, sw.status, start)
			}
			if abort {
				panic(p)
			}
		}()
		if smuggled {
			s.writeError(sw, r, clientErr(http.StatusBadRequest, "invalid_request_error",
				"the request has both Content-Length and Transfer-Encoding; send one of them"))
			return
		}
		next.ServeHTTP(sw, r)
	})
}

// errPanic is what the client of a request whose handler panicked is told;
// the panic and its stack go to the log.
var errPanic = errors.New("internal error in llmgw")

// maxLoggedUserAgent bounds the User-Agent the request log line carries.
const maxLoggedUserAgent = 256

// logRequest writes a request's log line.
func (s *Server) logRequest(r *http.Request, e *entry, status int, start time.Time) {
	if status == 0 {
		status = statusClientClosed // the client went away before an answer
	}
	attrs := []slog.Attr{
		slog.String("request_id", e.id),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Int64("dur_ms", s.cfg.Now().Sub(start).Milliseconds()),
		slog.String("client", s.clientOf(r)),
	}
	if ua := r.UserAgent(); ua != "" {
		if len(ua) > maxLoggedUserAgent {
			ua = strings.ToValidUTF8(ua[:maxLoggedUserAgent], "") + "…" // a client must not grow the log at will
		}
		attrs = append(attrs, slog.String("user_agent", ua))
	}
	if e.key != nil {
		attrs = append(attrs, slog.String("key", e.key.Name))
	}
	if e.account != "" {
		attrs = append(attrs, slog.String("account", e.account))
	}
	if e.model != "" {
		attrs = append(attrs, slog.String("model", e.model))
	}
	if u := e.usage; u != nil {
		attrs = append(attrs,
			slog.String("dialect", u.Dialect),
			slog.Bool("stream", u.Stream),
			slog.Int("attempts", len(u.Attempts)),
			slog.Int64("in_tok", u.Tokens.Input),
			slog.Int64("out_tok", u.Tokens.Output),
			slog.Int64("cache_read_tok", u.Tokens.CacheRead),
			slog.Int64("cache_write_tok", u.Tokens.CacheWrite),
		)
		if u.EndedEarly {
			attrs = append(attrs, slog.Bool("ended_early", true))
		}
	}
	if e.errMsg != "" {
		attrs = append(attrs, slog.String("err", e.errMsg))
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}

// statusWriter remembers the status written. It keeps Flush and exposes
// Unwrap for http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// keyName is the name of the client key that authenticated r.
func keyName(r *http.Request) string {
	if k := entryFrom(r.Context()).key; k != nil {
		return k.Name
	}
	return ""
}

// clientKey returns the key a client presented, wherever it put it.
func clientKey(r *http.Request) string {
	if k := r.Header.Get("X-Api-Key"); k != "" {
		return k
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		if scheme, tok, ok := strings.Cut(auth, " "); ok && strings.EqualFold(scheme, "bearer") {
			return strings.TrimSpace(tok)
		}
	}
	if k := r.Header.Get("X-Goog-Api-Key"); k != "" {
		return k
	}
	return r.URL.Query().Get("key")
}

// authenticate admits requests that carry a known, usable client key.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := s.view.Load()
		if v == nil {
			s.writeError(w, r, clientErr(http.StatusServiceUnavailable, "overloaded_error", "llmgw is starting: no snapshot loaded yet"))
			return
		}
		if n := headerFields(r.Header); n > s.cfg.MaxHeaderCount {
			s.writeError(w, r, clientErr(http.StatusRequestHeaderFieldsTooLarge, "invalid_request_error",
				fmt.Sprintf("the request has %d header fields; llmgw accepts at most %d", n, s.cfg.MaxHeaderCount)))
			return
		}
		presented := clientKey(r)
		if presented == "" {
			s.writeError(w, r, clientErr(http.StatusUnauthorized, "authentication_error",
				"missing client key: send it as x-api-key or Authorization: Bearer"))
			return
		}
		client := s.clientOf(r)
		if wait := s.authFail.wait(client); wait > 0 {
			s.writeError(w, r, errAuthLimited(wait))
			return
		}
		// The map is keyed by the SHA-256 of the key, so the lookup's timing
		// depends on a hash the client cannot steer toward a stored one, not
		// on how much of a real key it guessed; the constant-time compare
		// then confirms the match without an early exit.
		hash := llmgw.HashKey(presented)
		k, ok := v.keys[hash]
		if !ok || subtle.ConstantTimeCompare([]byte(k.Hash), []byte(hash)) != 1 {
			s.authFailed(r, client, hash)
			s.writeError(w, r, clientErr(http.StatusUnauthorized, "authentication_error", "invalid client key"))
			return
		}
		if usable, why := k.Usable(s.cfg.Now()); !usable {
			s.authFailed(r, client, hash)
			s.writeError(w, r, clientErr(http.StatusUnauthorized, "authentication_error", why))
			return
		}
		entryFrom(r.Context()).key = k
		next.ServeHTTP(w, r)
	})
}

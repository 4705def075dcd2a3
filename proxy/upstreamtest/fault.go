package upstreamtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// FaultKind is what a FaultProxy does to one request.
type FaultKind int

const (
	// Pass forwards the request and its answer untouched.
	Pass FaultKind = iota
	// Overloaded answers 529 overloaded_error without forwarding.
	Overloaded
	// RateLimited answers 429 rate_limit_error with retry-after without
	// forwarding.
	RateLimited
	// Reset drops the connection with a TCP reset before any response
	// headers, without forwarding.
	Reset
	// HangUp forwards the answer's first Fault.AfterEvents SSE events (for a
	// JSON body, half of it when AfterEvents > 0; with BeforeHeaders
	// nothing, not even headers), then closes the connection abruptly: the
	// client sees an unexpected EOF.
	HangUp
	// Stall forwards like HangUp, then stops for Fault.Duration (until the
	// request ends if zero) and carries on forwarding.
	Stall

	numFaultKinds
	// forwardError counts, in FaultCounts.Errors, a request the proxy could
	// not forward: not a fault it chose, the target failed.
	forwardError = numFaultKinds
)

var faultKindNames = [numFaultKinds]string{"pass", "overloaded", "rate_limited", "reset", "hang_up", "stall"}

func (k FaultKind) String() string {
	if k < 0 || k >= numFaultKinds {
		return "FaultKind(" + strconv.Itoa(int(k)) + ")"
	}
	return faultKindNames[k]
}

// BeforeHeaders as Fault.AfterEvents makes HangUp and Stall act before the
// response headers are forwarded.
const BeforeHeaders = -1

// Fault is what a FaultProxy does to one request.
type Fault struct {
	Kind FaultKind
	// RetryAfter is RateLimited's retry-after header, in seconds; 1 if zero.
	RetryAfter int
	// AfterEvents is, for HangUp and Stall, how many SSE events of the
	// upstream's answer are forwarded before the fault (0: the headers
	// only). For a JSON answer any positive value means half the body.
	// BeforeHeaders acts before the headers. If the answer ends first, the
	// fault never happens and the request counts as passed.
	AfterEvents int
	// Duration is Stall's length; zero stalls until the request ends (the
	// client gives up) or the proxy closes.
	Duration time.Duration
}

// Policy chooses the fault for one request. It is called concurrently, once
// per request, and must not read the request body.
type Policy func(r *http.Request) Fault

// Always is a Policy that applies f to every request.
func Always(f Fault) Policy { return func(*http.Request) Fault { return f } }

// Weighted is one choice of Mix: Fault is drawn with probability Weight
// over the sum of all weights.
type Weighted struct {
	Weight int
	Fault  Fault
}

// Mix is a Policy that draws each request's fault from choices with a
// generator seeded by seed: for one seed, the n-th request drawn always gets
// the same fault. It is safe for concurrent use.
//
//	upstreamtest.Mix(1, upstreamtest.Weighted{Weight: 3},
//		upstreamtest.Weighted{Weight: 1, Fault: upstreamtest.Fault{Kind: upstreamtest.Overloaded}})
func Mix(seed uint64, choices ...Weighted) Policy {
	total := 0
	for _, c := range choices {
		if c.Weight < 0 {
			panic("upstreamtest: Mix: negative weight")
		}
		total += c.Weight
	}
	if total == 0 {
		panic("upstreamtest: Mix: no weight")
	}
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func(*http.Request) Fault {
		mu.Lock()
		n := rng.IntN(total)
		mu.Unlock()
		for _, c := range choices {
			if n < c.Weight {
				return c.Fault
			}
			n -= c.Weight
		}
		panic("unreachable")
	}
}

// ByKey is a Policy that applies the policy of the request's credential (the
// x-api-key header, or else the bearer token), or def for other
// credentials; a nil def passes them.
func ByKey(policies map[string]Policy, def Policy) Policy {
	if def == nil {
		def = Always(Fault{})
	}
	return func(r *http.Request) Fault {
		if p, ok := policies[credential(r.Header)]; ok {
			return p(r)
		}
		return def(r)
	}
}

// FaultCounts says how many requests a FaultProxy treated each way, by
// what actually happened: a HangUp or Stall drawn for an answer that ended
// before its AfterEvents counts as Pass. Requests it could not forward (the
// target failed, or the client left first) are in Errors.
type FaultCounts struct {
	Pass, Overloaded, RateLimited, Reset, HangUp, Stall int
	Errors                                              int
}

// Faults is the number of faults injected: every kind but Pass.
func (c FaultCounts) Faults() int {
	return c.Overloaded + c.RateLimited + c.Reset + c.HangUp + c.Stall
}

// Requests is the number of requests received.
func (c FaultCounts) Requests() int { return c.Pass + c.Faults() + c.Errors }

func (c *FaultCounts) add(k FaultKind) {
	switch k {
	case Pass:
		c.Pass++
	case Overloaded:
		c.Overloaded++
	case RateLimited:
		c.RateLimited++
	case Reset:
		c.Reset++
	case HangUp:
		c.HangUp++
	case Stall:
		c.Stall++
	default:
		c.Errors++
	}
}

func (c *FaultCounts) plus(o FaultCounts) {
	c.Pass += o.Pass
	c.Overloaded += o.Overloaded
	c.RateLimited += o.RateLimited
	c.Reset += o.Reset
	c.HangUp += o.HangUp
	c.Stall += o.Stall
	c.Errors += o.Errors
}

// FaultProxy is an HTTP proxy on 127.0.0.1 in front of an upstream (a
// Server, normally) that injects faults into the requests it forwards, as
// its Policy says. Its methods are safe for concurrent use. It is closed by
// the cleanup NewFaultProxy registers, or by Close; closing ends every stall
// and waits for every request being served.
type FaultProxy struct {
	// URL is the proxy's base URL, such as "http://127.0.0.1:41234".
	URL string

	target    *url.URL
	policy    atomic.Pointer[Policy]
	transport *http.Transport
	srv       *http.Server
	served    chan struct{} // closed when Serve returns
	cancel    context.CancelFunc
	closeOnce sync.Once

	mu     sync.Mutex
	counts map[string]*FaultCounts // by credential
}

// NewFaultProxy starts a FaultProxy forwarding to target, a base URL such
// as a Server's URL, and closes it in tb.Cleanup. A nil policy passes every
// request.
func NewFaultProxy(tb testing.TB, target string, policy Policy) *FaultProxy {
	tb.Helper()
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		tb.Fatalf("upstreamtest: fault proxy target %q: %v", target, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("upstreamtest: fault proxy: %v", err)
	}
	base, cancel := context.WithCancel(context.Background())
	p := &FaultProxy{
		URL:    "http://" + ln.Addr().String(),
		target: u,
		transport: &http.Transport{
			Proxy:               nil, // always straight to the target on 127.0.0.1
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     30 * time.Second,
		},
		served: make(chan struct{}),
		cancel: cancel,
		counts: make(map[string]*FaultCounts),
	}
	p.SetPolicy(policy)
	p.srv = &http.Server{
		Handler:           http.HandlerFunc(p.handle),
		BaseContext:       func(net.Listener) context.Context { return base },
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		defer close(p.served)
		_ = p.srv.Serve(ln) // returns http.ErrServerClosed on Close
	}()
	tb.Cleanup(p.Close)
	return p
}

// SetPolicy makes policy apply to the requests that arrive from now on. A
// nil policy passes every request.
func (p *FaultProxy) SetPolicy(policy Policy) {
	if policy == nil {
		policy = Always(Fault{})
	}
	p.policy.Store(&policy)
}

// Counts returns what the proxy did so far, over every credential.
func (p *FaultProxy) Counts() FaultCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	var sum FaultCounts
	for _, c := range p.counts {
		sum.plus(*c)
	}
	return sum
}

// KeyCounts returns what the proxy did so far to requests made with one
// credential.
func (p *FaultProxy) KeyCounts(key string) FaultCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.counts[key]; c != nil {
		return *c
	}
	return FaultCounts{}
}

func (p *FaultProxy) count(key string, k FaultKind) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.counts[key]
	if c == nil {
		c = &FaultCounts{}
		p.counts[key] = c
	}
	c.add(k)
}

// CloseIdleConnections closes the idle keep-alive connections on both sides
// of the proxy: those its clients keep open to it, and its own to the
// target. A test calls it once traffic has stopped, so that connection pools
// do not count as leaked goroutines or file descriptors. A request that
// arrives on a connection just as it is closed may fail.
func (p *FaultProxy) CloseIdleConnections() {
	p.srv.SetKeepAlivesEnabled(false) // closes the idle HTTP/1 connections
	p.srv.SetKeepAlivesEnabled(true)
	p.transport.CloseIdleConnections()
}

// Close stops the proxy: it ends every stall, waits (up to 10 s) for the
// requests being served and closes every connection. It is idempotent.
func (p *FaultProxy) Close() {
	p.closeOnce.Do(func() {
		p.cancel() // ends stalls and requests to the target
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if p.srv.Shutdown(ctx) != nil {
			_ = p.srv.Close()
		}
		<-p.served
		p.transport.CloseIdleConnections()
	})
}

// hopHeaders are hop-by-hop and not forwarded either way.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// handle serves one request: it draws the fault, then answers, drops or
// forwards the request, cutting or pausing the answer as the fault says.
func (p *FaultProxy) handle(w http.ResponseWriter, r *http.Request) {
	f := (*p.policy.Load())(r)
	key := credential(r.Header)
	ctx := r.Context()
	counted := false // whether the request is in Counts already

	// Read the body first, as an upstream does before it answers: only then
	// does net/http notice a client that hangs up, and end ctx.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		hangUp(w, false)
		return
	}

	switch f.Kind {
	case Overloaded:
		p.count(key, Overloaded)
		writeError(w, newID("req_"), &Error{Status: 529})
		return
	case RateLimited:
		p.count(key, RateLimited)
		ra := f.RetryAfter
		if ra <= 0 {
			ra = 1
		}
		w.Header().Set("retry-after", strconv.Itoa(ra))
		writeError(w, newID("req_"), &Error{Status: http.StatusTooManyRequests})
		return
	case Reset:
		p.count(key, Reset)
		hangUp(w, true)
		return
	case HangUp, Stall:
		if f.AfterEvents < 0 {
			p.count(key, f.Kind)
			if f.Kind == HangUp {
				hangUp(w, false)
				return
			}
			if !stall(ctx, f.Duration) {
				hangUp(w, false) // never an empty 200 when the stall is cut short
				return
			}
			f, counted = Fault{}, true // the stall is over: forward the rest untouched
		}
	}

	resp, err := p.forward(r, body)
	if err != nil {
		p.count(key, forwardError)
		if ctx.Err() != nil {
			hangUp(w, false)
			return
		}
		writeError(w, newID("req_"), &Error{Status: http.StatusBadGateway, Message: "upstreamtest: fault proxy: " + err.Error()})
		return
	}
	defer func() { _ = resp.Body.Close() }() // a response body's Close error tells us nothing
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = vs
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
	sseBody := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	if !sseBody && resp.ContentLength >= 0 {
		// Declared, so that a JSON body cut short shows as short.
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	_ = rc.Flush()

	fire := func() bool { // reports whether to go on forwarding
		counted = true
		p.count(key, f.Kind)
		if f.Kind == HangUp || !stall(ctx, f.Duration) {
			hangUp(w, false)
			return false
		}
		return true
	}
	faulty := f.Kind == HangUp || f.Kind == Stall
	if sseBody {
		br := bufio.NewReader(resp.Body)
		for n := 0; ; n++ {
			if faulty && !counted && n == f.AfterEvents && !fire() {
				return
			}
			ev, err := readEvent(br)
			if len(ev) > 0 {
				if _, werr := w.Write(ev); werr != nil {
					return
				}
				_ = rc.Flush()
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil { // the target broke off, or the proxy is closing: pass it on
				hangUp(w, false)
				return
			}
		}
	} else {
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			hangUp(w, false)
			return
		}
		rest := body
		if faulty && f.AfterEvents >= 0 {
			half := 0
			if f.AfterEvents > 0 {
				half = len(body) / 2
			}
			_, _ = w.Write(body[:half])
			_ = rc.Flush()
			if !fire() {
				return
			}
			rest = body[half:]
		}
		_, _ = w.Write(rest)
	}
	if !counted {
		p.count(key, Pass)
	}
}

// forward sends r, whose body has been read into body, to the target.
func (p *FaultProxy) forward(r *http.Request, body []byte) (*http.Response, error) {
	out := r.Clone(r.Context())
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	out.RequestURI = ""
	out.URL.Scheme = p.target.Scheme
	out.URL.Host = p.target.Host
	out.URL.Path = strings.TrimRight(p.target.Path, "/") + r.URL.Path
	out.URL.RawPath = ""
	out.Host = p.target.Host
	for _, k := range hopHeaders {
		out.Header.Del(k)
	}
	if len(body) == 0 {
		out.Body = nil
	}
	return p.transport.RoundTrip(out)
}

// readEvent reads one SSE event, up to and including the blank line that
// ends it. At the end of the body it returns what is left (maybe a partial
// event) and the read error.
func readEvent(br *bufio.Reader) ([]byte, error) {
	var ev []byte
	for {
		line, err := br.ReadBytes('\n')
		ev = append(ev, line...)
		if err != nil {
			return ev, err
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 && len(bytes.TrimSpace(ev)) > 0 {
			return ev, nil
		}
	}
}

// hangUp takes over the connection and closes it: with a TCP reset if rst,
// else with an ordinary FIN, so the client sees its answer end early.
func hangUp(w http.ResponseWriter, rst bool) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // cannot hijack: have net/http drop the connection
	}
	if tc, ok := conn.(*net.TCPConn); ok && rst {
		_ = tc.SetLinger(0) // close sends RST instead of FIN
	}
	_ = conn.Close()
}

// stall waits for d, or until ctx ends if d is zero; it reports whether it
// is over with ctx still live.
func stall(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		<-ctx.Done()
		return false
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

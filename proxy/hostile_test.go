package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// Regression tests for the hostile-input defects of issue 9: clients that
// stall, lie about their bodies, smuggle headers or paths, and handlers that
// panic. Clients that must misbehave speak raw TCP.

const hostileMessages = `{"model":"claude-sonnet-4-5-20250929","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`

func hostileParams() anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     "claude-sonnet-4-5-20250929",
		MaxTokens: 16,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
	}
}

// hostileLog is a slog destination the tests can read back.
type hostileLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *hostileLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *hostileLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *hostileLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// requestLine waits up to d for the access-log line of a request to path and
// returns it.
func (l *hostileLog) requestLine(t *testing.T, path string, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, line := range strings.Split(l.String(), "\n") {
			if strings.Contains(line, "msg=request ") && strings.Contains(line, " path="+path+" ") {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request log line for %s within %s; log:\n%s", path, d, l.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// noErrorLines fails the test if the log has an ERROR-level line.
func (l *hostileLog) noErrorLines(t *testing.T) {
	t.Helper()
	if s := l.String(); strings.Contains(s, "level=ERROR") {
		t.Errorf("log has an ERROR line:\n%s", s)
	}
}

// hostileDial opens a raw TCP connection to the gateway and writes head.
func hostileDial(t *testing.T, gwURL, head string) net.Conn {
	t.Helper()
	u, err := url.Parse(gwURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() }) // the gateway may have hung up first
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	return c
}

// hostileResponse reads one response from c, giving up after d, and returns
// it with its body and how long it took.
func hostileResponse(t *testing.T, c net.Conn, br *bufio.Reader, d time.Duration) (*http.Response, []byte, time.Duration) {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(d))
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response within %s: %v", d, err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatalf("reading the response body: %v", err)
	}
	return res, body, time.Since(start)
}

// anthropicErr decodes an Anthropic error body.
type anthropicErr struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

func decodeAnthropicErr(t *testing.T, body []byte) anthropicErr {
	t.Helper()
	var e anthropicErr
	if err := json.Unmarshal(body, &e); err != nil || e.Type != "error" || e.Error.Type == "" {
		t.Fatalf("not an Anthropic error body: %s", body)
	}
	return e
}

// openaiErr decodes an OpenAI error body.
type openaiErr struct {
	Type  *string `json:"type"` // absent in OpenAI's shape
	Error struct {
		Message string `json:"message"`
		Type    string `json:"type"`
	} `json:"error"`
}

func decodeOpenAIErr(t *testing.T, body []byte) openaiErr {
	t.Helper()
	var e openaiErr
	if err := json.Unmarshal(body, &e); err != nil || e.Type != nil || e.Error.Message == "" || e.Error.Type == "" {
		t.Fatalf("not an OpenAI error body: %s", body)
	}
	return e
}

func TestHostile_BodyStall_ValidKeyGets408(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{BodyReadTimeout: 300 * time.Millisecond}, account(1, "a", "sk-a", up.URL))
	c := hostileDial(t, g.URL, "POST /v1/messages HTTP/1.1\r\nHost: gw\r\nX-Api-Key: "+testKey+
		"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
	res, body, took := hostileResponse(t, c, bufio.NewReader(c), 5*time.Second)
	if res.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("status %d, want 408: %s", res.StatusCode, body)
	}
	if e := decodeAnthropicErr(t, body); e.Error.Type != "invalid_request_error" {
		t.Errorf("error type %q, want invalid_request_error", e.Error.Type)
	}
	if took > 4*time.Second {
		t.Errorf("the 408 took %s with a 300ms body read limit", took)
	}
	if n := up.Count(); n != 0 {
		t.Errorf("upstream got %d requests, want 0", n)
	}
}

func TestHostile_BodyStall_InvalidKeyAnsweredAtOnceAndClosed(t *testing.T) {
	up := upstreamtest.NewServer(t)
	// A long body limit: the refusal must not wait for it.
	g := newGateway(t, Config{BodyReadTimeout: 10 * time.Second}, account(1, "a", "sk-a", up.URL))
	c := hostileDial(t, g.URL, "POST /v1/messages HTTP/1.1\r\nHost: gw\r\nX-Api-Key: sk-llmgw-wrong"+
		"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
	br := bufio.NewReader(c)
	res, body, took := hostileResponse(t, c, br, 5*time.Second)
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401: %s", res.StatusCode, body)
	}
	if e := decodeAnthropicErr(t, body); e.Error.Type != "authentication_error" {
		t.Errorf("error type %q, want authentication_error", e.Error.Type)
	}
	if took > 5*time.Second { // half the body read limit: it did not wait for the body
		t.Errorf("the 401 took %s", took)
	}
	if !res.Close { // ReadResponse moves Connection: close into res.Close
		t.Errorf("the 401 does not say Connection: close")
	}
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(5 * time.Second))
	n, err := br.Read(make([]byte, 1))
	if n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("read after the 401: %d bytes, %v; want EOF", n, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the connection was closed after %s", d)
	}
}

func TestHostile_BodyStall_ChunkedWithoutChunksAnswered(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{BodyReadTimeout: 300 * time.Millisecond}, account(1, "a", "sk-a", up.URL))
	c := hostileDial(t, g.URL, "POST /v1/messages HTTP/1.1\r\nHost: gw\r\nX-Api-Key: "+testKey+
		"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
	res, body, took := hostileResponse(t, c, bufio.NewReader(c), 5*time.Second)
	if res.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("status %d, want 408: %s", res.StatusCode, body)
	}
	if took > 4*time.Second {
		t.Errorf("the answer took %s with a 300ms body read limit", took)
	}
	if n := up.Count(); n != 0 {
		t.Errorf("upstream got %d requests, want 0", n)
	}
}

func TestHostile_BadChunked_Gets400WithoutErrorLog(t *testing.T) {
	up := upstreamtest.NewServer(t)
	var log hostileLog
	g := newGateway(t, Config{Logger: log.logger(), BodyReadTimeout: time.Second}, account(1, "a", "sk-a", up.URL))
	c := hostileDial(t, g.URL, "POST /v1/messages HTTP/1.1\r\nHost: gw\r\nX-Api-Key: "+testKey+
		"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
	res, body, _ := hostileResponse(t, c, bufio.NewReader(c), 5*time.Second)
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400: %s", res.StatusCode, body)
	}
	if e := decodeAnthropicErr(t, body); e.Error.Type != "invalid_request_error" {
		t.Errorf("error type %q, want invalid_request_error", e.Error.Type)
	}
	if line := log.requestLine(t, "/v1/messages", 5*time.Second); !strings.Contains(line, " status=400 ") {
		t.Errorf("request logged as %q, want status=400", line)
	}
	log.noErrorLines(t)
	if n := up.Count(); n != 0 {
		t.Errorf("upstream got %d requests, want 0", n)
	}
}

func TestHostile_AbortedBody_Logged499WithoutErrorOrUsage(t *testing.T) {
	up := upstreamtest.NewServer(t)
	var log hostileLog
	g := newGateway(t, Config{Logger: log.logger(), BodyReadTimeout: time.Second}, account(1, "a", "sk-a", up.URL))
	c := hostileDial(t, g.URL, "POST /v1/messages HTTP/1.1\r\nHost: gw\r\nX-Api-Key: "+testKey+
		"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"+hostileMessages[:10])
	if err := c.Close(); err != nil { // the client leaves mid-body
		t.Fatal(err)
	}
	if line := log.requestLine(t, "/v1/messages", 5*time.Second); !strings.Contains(line, " status=499 ") {
		t.Errorf("request logged as %q, want status=499", line)
	}
	log.noErrorLines(t)
	if n := g.rec.count(); n != 0 {
		t.Errorf("%d usage rows for a request whose body never arrived, want 0", n)
	}
	if n := up.Count(); n != 0 {
		t.Errorf("upstream got %d requests, want 0", n)
	}
}

func TestHostile_HopByHop_ConnectionNamedHeadersNotForwarded(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{}, account(1, "a", "sk-a", up.URL))
	req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, g.URL+"/v1/messages", strings.NewReader(hostileMessages))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Api-Key", testKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	req.Header.Set("Connection", "keep-alive, X-Hop-Secret")
	req.Header.Set("X-Hop-Secret", "s3cret")
	req.Header.Set("X-End-To-End", "visible")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	reqs := up.Requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream got %d requests, want 1", len(reqs))
	}
	h := reqs[0].Header
	if v := h.Values("X-Hop-Secret"); len(v) != 0 {
		t.Errorf("X-Hop-Secret, named in Connection, reached the upstream: %q", v)
	}
	for k, vs := range h {
		for _, v := range vs {
			if strings.Contains(v, "s3cret") {
				t.Errorf("the secret reached the upstream in %s: %q", k, v)
			}
		}
	}
	if got := h.Get("X-End-To-End"); got != "visible" {
		t.Errorf("X-End-To-End upstream = %q, want visible (end-to-end headers still go)", got)
	}
}

func TestHostile_HeaderCount_431InClientDialect(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{MaxHeaderCount: 20}, account(1, "a", "sk-a", up.URL))
	send := func(t *testing.T, path, body string, auth func(http.Header)) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, g.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		auth(req.Header)
		for i := range 40 {
			req.Header.Set(fmt.Sprintf("X-Filler-%d", i), "x")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res, b
	}
	t.Run("anthropic", func(t *testing.T) {
		res, body := send(t, "/v1/messages", hostileMessages, func(h http.Header) { h.Set("X-Api-Key", testKey) })
		if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d, want 431: %s", res.StatusCode, body)
		}
		if e := decodeAnthropicErr(t, body); e.Error.Type != "invalid_request_error" {
			t.Errorf("error type %q, want invalid_request_error", e.Error.Type)
		}
	})
	t.Run("openai", func(t *testing.T) {
		chat := `{"model":"claude-sonnet-4-5-20250929","messages":[{"role":"user","content":"hi"}]}`
		res, body := send(t, "/v1/chat/completions", chat, func(h http.Header) { h.Set("Authorization", "Bearer "+testKey) })
		if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d, want 431: %s", res.StatusCode, body)
		}
		decodeOpenAIErr(t, body)
	})
	if n := up.Count(); n != 0 {
		t.Errorf("upstream got %d requests, want 0", n)
	}
}

func TestHostile_PathTraversal_ModelIDRefused(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{}, account(1, "a", "sk-a", up.URL))
	get := func(t *testing.T, path string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx(t), http.MethodGet, g.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if req.URL.EscapedPath() != path {
			t.Fatalf("the client would send %q, not %q", req.URL.EscapedPath(), path)
		}
		req.Header.Set("X-Api-Key", testKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res, b
	}
	for _, path := range []string{
		"/v1/models/..%2Ffiles",
		"/v1/models/%2E%2E%2Ffiles",
		"/v1/models/claude%2F..%2F..%2Ffiles",
	} {
		res, body := get(t, path)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404: %s", path, res.StatusCode, body)
			continue
		}
		if e := decodeAnthropicErr(t, body); e.Error.Type != "not_found_error" {
			t.Errorf("GET %s: error type %q, want not_found_error", path, e.Error.Type)
		}
	}
	for _, r := range up.Requests() {
		if strings.Contains(r.Path, "..") || strings.Contains(r.Path, "files") {
			t.Errorf("upstream got %s %s", r.Method, r.Path)
		}
	}

	// A valid id still goes upstream, as exactly one segment.
	const id = "claude-sonnet-4-5-20250929"
	before := up.Count()
	res, body := get(t, "/v1/models/"+id)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/models/%s: status %d: %s", id, res.StatusCode, body)
	}
	reqs := up.Requests()[before:]
	if len(reqs) != 1 || reqs[0].Method != http.MethodGet || reqs[0].Path != "/v1/models/"+id {
		t.Errorf("upstream requests for a valid id: %+v, want one GET /v1/models/%s", reqs, id)
	}
}

func TestHostile_PathTraversal_GeminiModelRefused(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{}, account(1, "a", "sk-a", up.URL))
	const path = "/v1beta/models/..%2Ffoo:generateContent"
	req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, g.URL+path,
		strings.NewReader(`{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if req.URL.EscapedPath() != path {
		t.Fatalf("the client would send %q", req.URL.EscapedPath())
	}
	req.Header.Set("X-Goog-Api-Key", testKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d, want 404: %s", res.StatusCode, body)
	}
	var ge struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Status  string `json:"status"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &ge); err != nil || ge.Error.Code != 404 || ge.Error.Status != "NOT_FOUND" || ge.Error.Message == "" {
		t.Errorf("not a Gemini 404 body: %s", body)
	}
	if n := up.Count(); n != 0 {
		t.Errorf("upstream got %d requests, want 0", n)
	}
}

func TestHostile_NoAccount_Recorded503(t *testing.T) {
	g := newGateway(t, Config{})
	res, err := g.client().Messages.New(ctx(t), hostileParams())
	if err == nil {
		t.Fatalf("got an answer with no account configured: %+v", res)
	}
	rows := g.rec.wait(t, 1)
	u := rows[0]
	if u.Status != http.StatusServiceUnavailable {
		t.Errorf("row status %d (%s), want 503", u.Status, u.ErrorType)
	}
	if u.ErrorMessage == "" {
		t.Errorf("row has no error message (type %q)", u.ErrorType)
	}
	if u.ErrorType == "client_closed_request" {
		t.Errorf("row says the client closed the request")
	}
}

// hostilePanicKind is an account kind whose Prepare panics.
type hostilePanicKind struct{}

func (hostilePanicKind) Prepare(context.Context, *llmgw.Account, *http.Request, []byte) ([]byte, error) {
	panic("hostile kind: boom")
}

func (hostilePanicKind) Classify(a *llmgw.Account, res *http.Response, body []byte, _ time.Time) Verdict {
	return ClassifyCommon(res, body, time.Now())
}

func TestHostile_Panic_AnsweredInDialectAndRecorded500(t *testing.T) {
	up := upstreamtest.NewServer(t)
	var log hostileLog
	g := newGateway(t, Config{Logger: log.logger(), Kinds: map[llmgw.AccountType]Kind{llmgw.AccountAPIKey: hostilePanicKind{}}},
		account(1, "a", "sk-a", up.URL))
	post := func(t *testing.T, path, body string, auth func(http.Header)) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, g.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		auth(req.Header)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res, b
	}

	res, body := post(t, "/v1/messages", hostileMessages, func(h http.Header) { h.Set("X-Api-Key", testKey) })
	id := res.Header.Get("X-Request-Id")
	if res.StatusCode != http.StatusInternalServerError {
		t.Errorf("anthropic: status %d, want 500: %s", res.StatusCode, body)
	}
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Errorf("anthropic: Content-Type %q, want JSON", res.Header.Get("Content-Type"))
	}
	if e := decodeAnthropicErr(t, body); e.Error.Type != "api_error" || id == "" ||
		(e.RequestID != id && !strings.Contains(e.Error.Message, id)) {
		t.Errorf("anthropic: error %+v, want api_error naming request id %q", e, id)
	}

	chat := `{"model":"claude-sonnet-4-5-20250929","messages":[{"role":"user","content":"hi"}]}`
	res, body = post(t, "/v1/chat/completions", chat, func(h http.Header) { h.Set("Authorization", "Bearer "+testKey) })
	id = res.Header.Get("X-Request-Id")
	if res.StatusCode != http.StatusInternalServerError {
		t.Errorf("openai: status %d, want 500: %s", res.StatusCode, body)
	}
	if e := decodeOpenAIErr(t, body); id == "" || !strings.Contains(e.Error.Message, id) {
		t.Errorf("openai: error %+v, want the request id %q in the message", e, id)
	}

	rows := g.rec.wait(t, 2)
	for _, u := range rows {
		if u.Status != http.StatusInternalServerError || u.ErrorType == "client_closed_request" {
			t.Errorf("%s row: status %d %s, want 500", u.Dialect, u.Status, u.ErrorType)
		}
	}
	logs := log.String()
	if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "panic") || !strings.Contains(logs, "goroutine") {
		t.Errorf("log has no ERROR line with the panic's stack:\n%s", logs)
	}
	if n := up.Count(); n != 0 {
		t.Errorf("upstream got %d requests, want 0", n)
	}
}

func TestHostile_Drain_GivesUpWithoutLeak(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Hold(release)))
	g := newGateway(t, Config{}, account(1, "a", "sk-a", up.URL))

	done := make(chan error, 1)
	go func() {
		_, err := g.client().Messages.New(context.Background(), hostileParams())
		done <- err
	}()
	if err := up.AwaitHeld(ctx(t), 1); err != nil {
		t.Fatal(err)
	}

	dctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	err := g.Drain(dctx)
	cancel()
	if err == nil {
		t.Errorf("Drain returned nil while a request was still running")
	}
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	if strings.Contains(stacks, "(*Server).Drain") {
		t.Errorf("a goroutine of Drain outlived it:\n%s", stacks)
	}

	free()
	if err := <-done; err != nil {
		t.Fatalf("the held request failed: %v", err)
	}
	dctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.Drain(dctx); err != nil {
		t.Errorf("Drain after the request ended: %v", err)
	}
}

// guardedGateway serves g's handler the way llmgw serve does: behind
// GuardFraming, with ConnContext set.
func guardedGateway(t *testing.T, g *gateway) string {
	t.Helper()
	ts := httptest.NewUnstartedServer(g.Server)
	ts.Listener = GuardFraming(ts.Listener)
	ts.Config.ConnContext = ConnContext
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

// Defect 13: a request with both Content-Length and chunked encoding is
// refused, and its connection closed; ordinary requests on a kept-alive
// connection (a Content-Length body, a chunked body with a trailer, no body)
// are not mistaken for it.
func TestHostile_ContentLengthAndChunkedRefused(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{}, account(1, "a", "key-a", up.URL))
	addr := guardedGateway(t, g)

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }() // the gateway may have hung up first
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	send := func(head, body string) *http.Response {
		t.Helper()
		if _, err := io.WriteString(conn, head+body); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		res.Body = io.NopCloser(bytes.NewReader(b))
		return res
	}
	chunked := "5\r\n" + jsonBody[:5] + "\r\n" + strconv.FormatInt(int64(len(jsonBody)-5), 16) + "\r\n" + jsonBody[5:] + "\r\n0\r\nX-Trailer: 1\r\n\r\n"
	heads := []struct{ head, body string }{
		{"POST /v1/messages HTTP/1.1\r\nHost: x\r\nX-Api-Key: " + testKey + "\r\nContent-Length: " + strconv.Itoa(len(jsonBody)) + "\r\n\r\n", jsonBody},
		{"POST /v1/messages HTTP/1.1\r\nHost: x\r\nX-Api-Key: " + testKey + "\r\nTransfer-Encoding: chunked\r\nTrailer: X-Trailer\r\n\r\n", chunked},
		{"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", ""},
	}
	for i, h := range heads {
		if res := send(h.head, h.body); res.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(res.Body)
			t.Fatalf("ordinary request %d on a kept-alive connection: %d %s", i, res.StatusCode, b)
		}
	}
	res := send("POST /v1/messages HTTP/1.1\r\nHost: x\r\nX-Api-Key: "+testKey+"\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n", chunked)
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusBadRequest || !res.Close || !bytes.Contains(b, []byte("Content-Length and Transfer-Encoding")) {
		t.Errorf("ambiguous request: %d close=%v %s; want 400 naming both headers, connection closed", res.StatusCode, res.Close, b)
	}
	if n := up.Count(); n != 2 {
		t.Errorf("upstream got %d requests, want the 2 ordinary inference requests only", n)
	}
}

package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// events collects what Config.Notify hears.
type events struct {
	mu  sync.Mutex
	got []llmgw.Event
}

func (e *events) notify(ev llmgw.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, ev)
}

// summary is each event as kind/subject/scope.
func (e *events) summary() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.got {
		out = append(out, string(ev.Kind)+"/"+ev.Subject()+"/"+ev.Scope)
	}
	return out
}

func window5h(utilization, status string) upstreamtest.Step {
	const p = "anthropic-ratelimit-unified-"
	return upstreamtest.OK(upstreamtest.Header(p+"5h-utilization", utilization), upstreamtest.Header(p+"5h-status", status),
		upstreamtest.Header(p+"5h-reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)))
}

// A window alerts once when it passes the threshold and once when it is
// rejected; staying past the threshold alerts nothing more.
func TestNotify_WindowThreshold(t *testing.T) {
	t.Parallel()
	const key = "sk-ant-window"
	up := upstreamtest.NewServer(t, upstreamtest.Script(key,
		window5h("0.5", "allowed"), window5h("0.85", "allowed"), window5h("0.86", "allowed_warning"),
		window5h("0.9", "allowed_warning"), window5h("1", "rejected"), window5h("1", "rejected")))
	var ev events
	g := newGateway(t, Config{Notify: ev.notify, WindowThreshold: 0.86}, account(1, "max", key, up.URL))
	for range 6 {
		_, _ = g.client().Messages.New(ctx(t), hello()) // the last two may be refused: only the alerts count here
	}
	want := []string{"window/account max/5h threshold", "window/account max/5h rejected"}
	if diff := cmp.Diff(want, ev.summary()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if r := ev.got[0].Reason; !strings.Contains(r, "5h subscription window is 86% used (alert threshold 86%)") {
		t.Errorf("threshold reason %q", r)
	}
}

// An account put in error alerts once, with its kind's fix; every account
// unavailable alerts once, and recovery once.
func TestNotify_AccountErrorAndOutage(t *testing.T) {
	t.Parallel()
	const key = "sk-ant-broken"
	up := upstreamtest.NewServer(t, upstreamtest.Script(key, upstreamtest.Fail(http.StatusUnauthorized)))
	var ev events
	a := account(1, "team", key, up.URL)
	g := newGateway(t, Config{Notify: ev.notify}, a)
	for range 3 {
		if _, err := g.client().Messages.New(ctx(t), hello()); err == nil {
			t.Fatal("served by a broken account")
		}
	}
	// The operator fixes the account: a newer snapshot state.
	a.State = llmgw.AccountState{Status: llmgw.StatusActive, At: time.Now().Add(time.Minute)}
	g.SetSnapshot(&llmgw.Snapshot{Version: 2, Accounts: []llmgw.Account{a},
		Keys: []llmgw.ClientKey{{ID: 7, Name: "alice", Hash: llmgw.HashKey(testKey)}}})
	for range 2 {
		if _, err := g.client().Messages.New(ctx(t), hello()); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"account_error/account team/", "no_account/pool/", "recovered/pool/"}
	if diff := cmp.Diff(want, ev.summary()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if fix := ev.got[0].Fix; fix != `echo "$NEW_KEY" | llmgw account edit team --api-key - && llmgw account enable team` {
		t.Errorf("fix %q", fix)
	}
	if ev.got[0].Time.IsZero() {
		t.Error("event without a time")
	}
}

// A request for a model no account serves is the request's trouble, not an
// outage.
func TestNotify_NoOutageForTheRequestsOwnFault(t *testing.T) {
	t.Parallel()
	up := upstreamtest.NewServer(t)
	var ev events
	a := account(1, "sonnet-only", "sk-ant-x", up.URL)
	a.Models = []string{"claude-sonnet-*"}
	g := newGateway(t, Config{Notify: ev.notify}, a)
	p := hello()
	p.Model = "claude-opus-4-5"
	if _, err := g.client().Messages.New(ctx(t), p); err == nil {
		t.Fatal("served a model no account serves")
	}
	if got := ev.summary(); len(got) != 0 {
		t.Errorf("events = %v, want none", got)
	}
}

func TestClientAddr(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
	for _, tt := range []struct {
		name, peer string
		xff        []string
		trusted    []netip.Prefix
		want       string
	}{
		{"no proxies configured", "127.0.0.1:5000", []string{"203.0.113.9"}, nil, "127.0.0.1"},
		{"untrusted peer", "198.51.100.2:5000", []string{"203.0.113.9"}, trusted, "198.51.100.2"},
		{"trusted peer", "127.0.0.1:5000", []string{"203.0.113.9"}, trusted, "203.0.113.9"},
		{"spoofed left part", "127.0.0.1:5000", []string{"1.2.3.4, 203.0.113.9, 10.1.2.3"}, trusted, "203.0.113.9"},
		{"several headers", "127.0.0.1:5000", []string{"1.2.3.4", "203.0.113.9"}, trusted, "203.0.113.9"},
		{"all trusted", "127.0.0.1:5000", []string{"10.0.0.7"}, trusted, "10.0.0.7"},
		{"garbage", "127.0.0.1:5000", []string{"unknown, 10.0.0.7"}, trusted, "10.0.0.7"},
		{"no header", "127.0.0.1:5000", nil, trusted, "127.0.0.1"},
		{"ipv6 peer", "[::1]:5000", nil, nil, "::1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/v1/messages", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientAddr(r, tt.trusted); got != tt.want {
				t.Errorf("clientAddr = %q, want %q", got, tt.want)
			}
		})
	}
}

// syncWriter is a log sink safe for the server's goroutines.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) lines(t *testing.T) []map[string]any {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(w.b.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %s: %v", sc.Bytes(), err)
		}
		out = append(out, m)
	}
	return out
}

// The request log line names the client (behind a trusted proxy, from
// X-Forwarded-For) and its User-Agent; failover warnings carry the
// request's id.
func TestNotify_LogLineClientAndFailoverRequestID(t *testing.T) {
	t.Parallel()
	up := upstreamtest.NewServer(t, upstreamtest.Script("sk-ant-first", upstreamtest.Fail(529)))
	var w syncWriter
	second := account(2, "second", "sk-ant-second", up.URL)
	second.Priority = 1 // tried after first
	g := newGateway(t, Config{Logger: slog.New(slog.NewJSONHandler(&w, nil)),
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		account(1, "first", "sk-ant-first", up.URL), second)
	if _, err := g.client(optHeader("X-Forwarded-For", "203.0.113.9"), optHeader("User-Agent", "claude-cli/2.0 (test)")).
		Messages.New(ctx(t), hello()); err != nil {
		t.Fatal(err)
	}
	if err := g.Drain(ctx(t)); err != nil { // the log line is written after the answer
		t.Fatal(err)
	}
	var req, warn map[string]any
	for _, l := range w.lines(t) {
		switch l["msg"] {
		case "request":
			req = l
		case "upstream refused, failing over":
			warn = l
		}
	}
	if req == nil || warn == nil {
		t.Fatalf("request line %v, failover warning %v", req, warn)
	}
	if req["client"] != "203.0.113.9" || req["user_agent"] != "claude-cli/2.0 (test)" {
		t.Errorf("request line client %v, user_agent %v", req["client"], req["user_agent"])
	}
	if id, _ := req["request_id"].(string); id == "" || warn["request_id"] != id {
		t.Errorf("failover warning request_id %v, request line's %v", warn["request_id"], req["request_id"])
	}
}

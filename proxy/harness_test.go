package proxy

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"go.uber.org/goleak"

	"github.com/llmgw/llmgw"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"))
}

// testKey is the client key every test gateway accepts.
const testKey = "sk-llmgw-0123456789abcdef0123456789abcdef0123456789abcdef"

// recorder is a UsageRecorder that keeps everything in memory.
type recorder struct {
	mu      sync.Mutex
	rows    []llmgw.Usage
	states  map[int64]llmgw.AccountState
	windows map[int64]llmgw.Windows
	added   chan struct{}
}

func newRecorder() *recorder {
	return &recorder{states: map[int64]llmgw.AccountState{}, windows: map[int64]llmgw.Windows{}, added: make(chan struct{}, 1<<16)}
}

func (r *recorder) Record(u llmgw.Usage) {
	r.mu.Lock()
	r.rows = append(r.rows, u)
	r.mu.Unlock()
	r.added <- struct{}{}
}

func (r *recorder) RecordWindows(id int64, ws llmgw.Windows) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.windows[id] = ws
}

func (r *recorder) RecordState(id int64, st llmgw.AccountState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states[id] = st
}

// wait returns the rows once there are n of them.
func (r *recorder) wait(t *testing.T, n int) []llmgw.Usage {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		if len(r.rows) >= n {
			rows := append([]llmgw.Usage(nil), r.rows...)
			r.mu.Unlock()
			return rows
		}
		r.mu.Unlock()
		select {
		case <-r.added:
		case <-deadline:
			t.Fatalf("waited for %d usage rows, have %d", n, len(r.rows))
		}
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.rows)
}

func (r *recorder) state(id int64) (llmgw.AccountState, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.states[id]
	return st, ok
}

// gateway is a proxy.Server on a real HTTP server.
type gateway struct {
	*Server
	URL string
	rec *recorder
}

// account returns an active API-key account on baseURL.
func account(id int64, name, apiKey, baseURL string) llmgw.Account {
	return llmgw.Account{
		ID: id, Name: name, Type: llmgw.AccountAPIKey, APIKey: apiKey, BaseURL: baseURL, Weight: 1,
		State: llmgw.AccountState{Status: llmgw.StatusActive},
	}
}

func newGateway(t *testing.T, cfg Config, accts ...llmgw.Account) *gateway {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	rec := newRecorder()
	s := NewServer(cfg, rec)
	s.SetSnapshot(&llmgw.Snapshot{
		Version:  1,
		Accounts: accts,
		Keys:     []llmgw.ClientKey{{ID: 7, Name: "alice", Hash: llmgw.HashKey(testKey), Prefix: "sk-llmgw-0123"}},
	})
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		hs.Close()
		if tr, ok := s.cfg.Transport.(interface{ CloseIdleConnections() }); ok {
			tr.CloseIdleConnections()
		}
	})
	return &gateway{Server: s, URL: hs.URL, rec: rec}
}

// client returns an official Anthropic SDK client aimed at the gateway, with
// the SDK's own retries off so tests see the gateway's behaviour.
func (g *gateway) client(opts ...option.RequestOption) *anthropic.Client {
	c := anthropic.NewClient(append([]option.RequestOption{
		option.WithBaseURL(g.URL), option.WithAPIKey(testKey), option.WithMaxRetries(0),
	}, opts...)...)
	return &c
}

// deadURL returns a base URL where nothing listens.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err) // the address might still answer
	}
	return "http://" + addr
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func listen(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return ln
}

func optHeader(k, v string) option.RequestOption { return option.WithHeader(k, v) }

func optKey(k string) option.RequestOption { return option.WithAPIKey(k) }

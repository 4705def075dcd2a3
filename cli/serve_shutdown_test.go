package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy"
	"github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// usageRequests returns the number of requests "usage report" counts in
// the last hour.
func usageRequests(t *testing.T, db string) int64 {
	t.Helper()
	out, _ := mustRun(t, "--db", db, "usage", "report", "--since", "1h", "--format", "json")
	var rep struct {
		Total struct {
			Requests int64 `json:"requests"`
		} `json:"total"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	return rep.Total.Requests
}

// dial opens a raw TCP connection to addr, closed when the test ends.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestServe_ListenerFailureExitsNonZero: when the listener fails after
// start, serve still writes the usage rows of what it served, and returns
// an error, so the process exits non-zero and systemd restarts it.
func TestServe_ListenerFailureExitsNonZero(t *testing.T) {
	up := upstreamtest.NewServer(t)
	db := newDB(t)
	mustRun(t, "--db", db, "account", "add", "--name", "a", "--api-key", "sk-ant-aaaaaaaaaaaaaaaa", "--base-url", up.URL)
	key := createKey(t, db, "alice")
	cfg, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logging.Format = "json"
	stderr := newSyncBuffer()
	env := &appEnv{stdout: io.Discard, stderr: stderr, dbPath: db, cfg: cfg, now: time.Now}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, env, func() (net.Listener, error) { return ln, nil }) }()
	t.Cleanup(func() {
		cancel()
		<-done //nolint:errcheck // only waiting for serve to return; the test checks its error itself
	})
	url := "http://" + stderr.await(t, listeningRE)[1]
	if _, err := sdk(url, key).Messages.New(context.Background(), hello()); err != nil {
		t.Fatal(err)
	}

	// The listening socket fails under the server, as it would if its
	// file descriptor were lost.
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err // for Cleanup
		wantErr(t, err, "serve: ", "use of closed network connection")
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not return after its listener failed")
	}
	if got := usageRequests(t, db); got != 1 {
		t.Errorf("usage rows after the failure = %d, want 1", got)
	}
}

// TestServe_ShutdownWhileTokenRefreshHangs: a background token refresh
// stuck on a token endpoint that never answers neither holds up the
// shutdown nor keeps the usage rows of finished requests from being
// written.
func TestServe_ShutdownWhileTokenRefreshHangs(t *testing.T) {
	s := newOAuthSetup(t)
	arrived, _ := s.tokens.Hold() // takes token requests and answers none until the test ends
	access, refresh, _ := s.tokens.Mint()
	// Valid for ten more minutes: inside the 30-minute lead, so the
	// refresher starts on it at once.
	s.importAccount(t, "alice-max", access, refresh, time.Now().Add(10*time.Minute))
	key := createKey(t, s.db, "alice")
	srv := startServe(t, s.db, "--config", s.config)
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the background refresh never reached the token endpoint")
	}

	const n = 20
	concurrently(t, n, func(int) error {
		_, err := sdk(srv.URL, key).Messages.New(context.Background(), hello())
		return err
	})
	start := time.Now()
	if err := srv.stopAndWait(t); err != nil {
		t.Fatalf("serve returned %v, want nil", err)
	}
	// Waiting for the refresh would take the token request timeout (30 s).
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("shutdown took %v while a token refresh hung", d)
	}
	if got := usageRequests(t, s.db); got != n {
		t.Errorf("usage rows = %d, want %d", got, n)
	}
	if a, r := s.storedTokens(t, "alice-max"); a != access || r != refresh {
		t.Error("the abandoned refresh changed the stored pair")
	}
	if !strings.Contains(srv.stderr.String(), "token refresh abandoned") {
		t.Errorf("the log does not say the refresh was abandoned:\n%s", srv.stderr.String())
	}
}

// TestServe_MaxConnectionsQueuesPastTheCap: with server.max_connections N
// and N connections open, the next one waits unanswered in the accept queue
// and is served as soon as one of the N closes.
func TestServe_MaxConnectionsQueuesPastTheCap(t *testing.T) {
	db := newDB(t)
	config := writeFile(t, "cap.yaml", "server:\n  max_connections: 4\n")
	srv := startServe(t, db, "--config", config)
	srv.stderr.await(t, regexp.MustCompile(`"msg":"listening".*"max_connections":4[,}]`))
	addr := strings.TrimPrefix(srv.URL, "http://")

	idle := make([]net.Conn, 4)
	for i := range idle {
		idle[i] = dial(t, addr) // connected and silent, as a slow client
	}
	c := dial(t, addr)
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: llmgw\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	if err := c.SetReadDeadline(time.Now().Add(300 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := br.Peek(1); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a fifth connection was answered (read err %v) while the cap of 4 was reached", err)
	}

	if err := idle[0].Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the queued connection was not served once a slot freed: %v", err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("status %d, want 200", res.StatusCode)
	}
	for _, c := range idle[1:] {
		_ = c.Close() // so the shutdown need not wait for them
	}
}

// TestServe_MaxConnectionsDefault: server.max_connections 0 takes a share of
// the open-file limit, and the default is logged.
func TestServe_MaxConnectionsDefault(t *testing.T) {
	t.Parallel()
	tests := []struct {
		configured int
		limit      uint64
		known      bool
		want       int
	}{
		{configured: 10, limit: 65536, known: true, want: 10},
		{limit: 65536, known: true, want: 32640},
		{limit: 1024, known: true, want: 384},
		{limit: 300, known: true, want: 64},
		{limit: 0, known: true, want: 64},
		{limit: ^uint64(0), known: true, want: 1 << 20}, // unlimited
		{known: false, want: 4096},
	}
	for _, tt := range tests {
		if got := maxConnections(tt.configured, tt.limit, tt.known); got != tt.want {
			t.Errorf("maxConnections(%d, %d, %v) = %d, want %d", tt.configured, tt.limit, tt.known, got, tt.want)
		}
	}
}

// TestServe_MaxHeaderBytes: a 200 KiB header is refused with 431 before any
// handler, unless server.max_header_bytes allows it.
func TestServe_MaxHeaderBytes(t *testing.T) {
	tests := []struct {
		name   string
		config string
		want   int
	}{
		{"default 64 KiB", "", http.StatusRequestHeaderFieldsTooLarge},
		{"raised to 1 MiB", "server:\n  max_header_bytes: 1048576\n", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var args []string
			if tt.config != "" {
				args = []string{"--config", writeFile(t, "headers.yaml", tt.config)}
			}
			srv := startServe(t, newDB(t), args...)
			c := dial(t, strings.TrimPrefix(srv.URL, "http://"))
			if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			// Write while reading: the server may answer and hang up
			// before it has read the whole request.
			wrote := make(chan struct{})
			go func() {
				defer close(wrote)
				_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: llmgw\r\nX-Big: "+strings.Repeat("a", 200<<10)+"\r\n\r\n")
			}()
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			_ = res.Body.Close()
			_ = c.Close()
			<-wrote
			if res.StatusCode != tt.want {
				t.Errorf("status %d, want %d", res.StatusCode, tt.want)
			}
		})
	}
}

// TestServe_ProxyConfig: the config file's limits reach the proxy.
func TestServe_ProxyConfig(t *testing.T) {
	t.Parallel()
	p := writeFile(t, "llmgw.yaml", `server:
  timeout_seconds: 90
  body_read_timeout_seconds: 15
  max_body_memory_bytes: 67108864
  max_waiting: 50
  max_header_count: 80
  timezone: Europe/Berlin
routing:
  affinity: off
upstream:
  max_attempts: 2
  max_body_bytes: 1048576
  first_byte_timeout_seconds: 20
models:
  aliases: {gpt-4o: claude-sonnet-4-5}
`)
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	want := proxy.Config{
		MaxAttempts:      2,
		MaxBodyBytes:     1 << 20,
		Timeout:          90 * time.Second,
		StaticKeys:       []llmgw.ClientKey{},
		Aliases:          map[string]string{"gpt-4o": "claude-sonnet-4-5"},
		BodyReadTimeout:  15 * time.Second,
		FirstByteTimeout: 20 * time.Second,
		MaxBodyMemory:    64 << 20,
		MaxWaiting:       50,
		MaxHeaderCount:   80,
		Catalog:          cfg.Catalog(),
		Location:         cfg.Location(),
		NoAffinity:       true,
		WindowThreshold:  0.9,
	}
	if cfg.Location().String() != "Europe/Berlin" {
		t.Errorf("server.timezone loaded as %s", cfg.Location())
	}
	samePointer := cmp.Comparer(func(a, b *anthropic.Catalog) bool { return a == b })
	sameZone := cmp.Comparer(func(a, b *time.Location) bool { return a == b })
	if diff := cmp.Diff(want, proxyConfig(cfg), cmpopts.EquateEmpty(), samePointer, sameZone); diff != "" {
		t.Errorf("proxy config (-want +got):\n%s", diff)
	}
}

package cli

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
)

func TestListenAddr(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"8080", ":8080"},
		{" 8080 ", ":8080"},
		{"127.0.0.1:8080", "127.0.0.1:8080"},
		{":8080", ":8080"},
		{"[::1]:8080", "[::1]:8080"},
		{"localhost:0", "localhost:0"},
		{"", ""},
	} {
		if got := listenAddr(tt.in); got != tt.want {
			t.Errorf("listenAddr(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// startServeArgs runs "llmgw --db db serve args..." like startServe, but
// with the listen address left to args and the environment.
func startServeArgs(t *testing.T, db string, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{stderr: newSyncBuffer(), stop: cancel, done: make(chan error, 1)}
	argv := append([]string{"llmgw", "--db", db, "--log-format", "json", "serve"}, args...)
	go func() {
		var out bytes.Buffer
		s.done <- New(&out, s.stderr).RunContext(ctx, argv)
	}()
	s.URL = "http://" + s.stderr.await(t, listeningRE)[1]
	t.Cleanup(func() {
		cancel()
		<-s.done //nolint:errcheck // only waiting
	})
	return s
}

// No t.Parallel: the test sets LLMGW_LISTEN.
func TestServe_ListenFromEnv(t *testing.T) {
	db := newDB(t)
	t.Setenv(listenEnv, "127.0.0.1:0")
	srv := startServeArgs(t, db)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") || strings.HasSuffix(srv.URL, ":8080") {
		t.Errorf("listening on %s, want 127.0.0.1 and a free port (LLMGW_LISTEN)", srv.URL)
	}
	if err := srv.stopAndWait(t); err != nil {
		t.Fatal(err)
	}

	// The flag wins over the environment.
	t.Setenv(listenEnv, "203.0.113.1:1")
	srv = startServeArgs(t, db, "--listen", "127.0.0.1:0")
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Errorf("listening on %s, want --listen's 127.0.0.1", srv.URL)
	}
}

func TestServe_ListenBarePortMeansEveryInterface(t *testing.T) {
	t.Parallel()
	srv := startServeArgs(t, newDB(t), "--listen", "0")
	host, _, err := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		t.Errorf("--listen 0 listens on %s, want every interface", host)
	}
}

func TestServe_ListenErrors(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = taken.Close() }()
	db := newDB(t)

	_, _, err = run(t, "--db", db, "serve", "--listen", taken.Addr().String())
	wantErr(t, err, "address already in use", "is another llmgw running?")

	for _, addr := range []string{"203.0.113.1:0", "127.0.0.1:99999"} {
		_, _, err := run(t, "--db", db, "serve", "--listen", addr)
		if err == nil {
			t.Errorf("--listen %s: no error", addr)
			continue
		}
		if strings.Contains(err.Error(), "another llmgw") {
			t.Errorf("--listen %s: %v: the hint is only for a port in use", addr, err)
		}
		t.Logf("--listen %s: %v", addr, err)
	}
}

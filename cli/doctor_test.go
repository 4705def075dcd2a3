package cli

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
	"github.com/llmgw/llmgw/store"
)

// freeAddr returns a 127.0.0.1 address nothing listens on (as far as a
// test can tell).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// doctorJSON runs doctor --json and returns its findings by check and
// detail, and its error.
func doctorJSON(t *testing.T, args ...string) ([]checkResult, error) {
	t.Helper()
	stdout, stderr, err := run(t, append(args, "--json")...)
	var got struct {
		OK     bool          `json:"ok"`
		Checks []checkResult `json:"checks"`
	}
	if jerr := json.Unmarshal([]byte(stdout), &got); jerr != nil {
		t.Fatalf("doctor --json: %v\nstdout: %s\nstderr: %s", jerr, stdout, stderr)
	}
	if got.OK != (err == nil) {
		t.Errorf("doctor ok = %v with error %v", got.OK, err)
	}
	return got.Checks, err
}

// finding returns the first result for check whose detail contains detail.
func finding(t *testing.T, results []checkResult, check, detail string) checkResult {
	t.Helper()
	for _, r := range results {
		if r.Check == check && strings.Contains(r.Detail, detail) {
			return r
		}
	}
	t.Fatalf("no %q finding with %q in %+v", check, detail, results)
	return checkResult{}
}

func TestDoctor_Healthy(t *testing.T) {
	t.Parallel()
	up := upstreamtest.NewServer(t, upstreamtest.Keys(testAPIKey, "sk-ant-oat01-doctor-FAKE"))
	p := newDB(t)
	mustRun(t, "--db", p, "account", "add", "--name", "main", "--api-key", testAPIKey, "--base-url", up.URL)
	withStore(t, p, func(ctx context.Context, db *store.DB) {
		a := llmgw.Account{Name: "sub", Type: llmgw.AccountOAuth, BaseURL: up.URL, Weight: 1,
			AccessToken: "sk-ant-oat01-doctor-FAKE", RefreshToken: "sk-ant-ort01-doctor-FAKE", ExpiresAt: time.Now().Add(3 * time.Hour)}
		if err := db.InsertAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}
	})
	listen := freeAddr(t)

	stdout, stderr := mustRun(t, "--db", p, "doctor", "--listen", listen)
	for _, want := range []string{
		"ok    config", "schema up to date", "integrity check ok", "file mode 0600",
		"opens every account's secrets",
		listen + " is free for serve",
		"account main  GET /v1/models answered 200 (3 models)",
		"account sub   OAuth access token valid until",
		"account sub   GET /v1/models answered 200",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "FAIL") || stderr != "" {
		t.Errorf("doctor on a healthy setup printed:\n%s\nstderr: %s", stdout, stderr)
	}

	// The OAuth probe carried the bearer token and the OAuth beta flag, as
	// the proxy sends them.
	var sawOAuth bool
	for _, r := range up.Requests() {
		if r.Path == "/v1/models" && r.Key == "sk-ant-oat01-doctor-FAKE" {
			sawOAuth = true
			if !strings.Contains(r.Header.Get("Anthropic-Beta"), "oauth-2025-04-20") || r.Header.Get("X-Api-Key") != "" {
				t.Errorf("OAuth probe headers = %v", r.Header)
			}
		}
	}
	if !sawOAuth {
		t.Error("no GET /v1/models with the OAuth token")
	}

	results, err := doctorJSON(t, "doctor", "--offline", "--listen", listen, "--db", p)
	if err != nil {
		t.Fatalf("doctor --offline: %v", err)
	}
	if r := finding(t, results, "account main", "not tried"); r.Status != checkSkip {
		t.Errorf("offline account finding = %+v, want skip", r)
	}
}

func TestDoctor_Failures(t *testing.T) {
	t.Parallel()
	up := upstreamtest.NewServer(t, upstreamtest.Keys(testAPIKey))
	p := newDB(t)
	mustRun(t, "--db", p, "account", "add", "--name", "badkey", "--api-key", testAPIKey+"-revoked", "--base-url", up.URL)
	mustRun(t, "--db", p, "account", "add", "--name", "off", "--api-key", testAPIKey, "--base-url", up.URL)
	mustRun(t, "--db", p, "account", "disable", "off")
	withStore(t, p, func(ctx context.Context, db *store.DB) {
		a := llmgw.Account{Name: "stale", Type: llmgw.AccountOAuth, BaseURL: up.URL, Weight: 1,
			AccessToken: "sk-ant-oat01-stale-FAKE", RefreshToken: "sk-ant-ort01-stale-FAKE", ExpiresAt: time.Now().Add(-2 * time.Hour)}
		if err := db.InsertAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}
	})
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	// Something that is not llmgw holds the listen address.
	other := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(other.Close)
	listen := strings.TrimPrefix(other.URL, "http://")

	results, err := doctorJSON(t, "--db", p, "doctor", "--listen", listen)
	wantErr(t, err, "doctor found 4 problems")
	for _, want := range []struct{ check, detail, fix string }{
		{"database", "has mode 0644", "chmod 600 " + p},
		{"listen", listen + " is in use by another program", "serve --listen"},
		{"account badkey", "GET /v1/models answered 401 authentication_error: invalid x-api-key", `"llmgw account edit badkey --api-key -"`},
		{"account stale", "OAuth access token expired at", `"llmgw account refresh stale"`},
	} {
		r := finding(t, results, want.check, want.detail)
		if r.Status != checkFail || !strings.Contains(r.Fix, want.fix) {
			t.Errorf("%s finding = %+v, want a failure whose fix says %q", want.check, r, want.fix)
		}
	}
	if r := finding(t, results, "account off", "disabled"); r.Status != checkSkip {
		t.Errorf("disabled account finding = %+v, want skip", r)
	}
	for _, r := range up.Requests() {
		if r.Key == "sk-ant-oat01-stale-FAKE" {
			t.Error("doctor sent the expired OAuth token upstream")
		}
	}
}

func TestDoctor_RunningServer(t *testing.T) {
	t.Parallel()
	p := newDB(t)
	mustRun(t, "--db", p, "account", "add", "--name", "main", "--api-key", testAPIKey)
	srv := startServe(t, p)
	stdout, _, _ := run(t, "--db", p, "doctor", "--offline", "--listen", strings.TrimPrefix(srv.URL, "http://"))
	if !strings.Contains(stdout, "is in use by a running llmgw (GET /healthz answered)") {
		t.Errorf("doctor with serve running printed:\n%s", stdout)
	}
}

func TestDoctor_DatabaseAndConfigProblems(t *testing.T) {
	t.Parallel()
	cfg := writeFile(t, "config.yaml", "server:\n  prot: 8080\n")
	missing := filepath.Join(t.TempDir(), "missing.db")
	results, err := doctorJSON(t, "--config", cfg, "--db", missing, "doctor", "--listen", freeAddr(t))
	wantErr(t, err, "doctor found 2 problems")
	if r := finding(t, results, "config", cfg); r.Status != checkFail || !strings.Contains(r.Detail, "prot") {
		t.Errorf("config finding = %+v", r)
	}
	if r := finding(t, results, "database", "does not exist"); !strings.Contains(r.Fix, "llmgw db migrate") {
		t.Errorf("database finding = %+v", r)
	}
	finding(t, results, "accounts", "not checked")

	unmigrated := filepath.Join(t.TempDir(), "llmgw.db")
	withStore(t, unmigrated, func(context.Context, *store.DB) {})
	results, err = doctorJSON(t, "--db", unmigrated, "doctor", "--listen", freeAddr(t))
	wantErr(t, err, "doctor found 1 problem")
	if r := finding(t, results, "database", "pending migration"); !strings.Contains(r.Fix, `"llmgw db migrate"`) {
		t.Errorf("pending finding = %+v", r)
	}
}

// A key that does not open the secrets fails the secret-key check with its
// fix, and the account checks are skipped rather than sent with nothing.
func TestDoctor_WrongSecretKey(t *testing.T) {
	t.Parallel()
	up := upstreamtest.NewServer(t, upstreamtest.Keys(testAPIKey))
	p := newDB(t)
	mustRun(t, "--db", p, "account", "add", "--name", "main", "--api-key", testAPIKey, "--base-url", up.URL)
	other := filepath.Join(t.TempDir(), "other.key")
	if err := os.WriteFile(other, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, "llmgw.yaml", "server:\n  secret_key_file: "+other+"\n")
	results, err := doctorJSON(t, "--db", p, "--config", cfg, "doctor", "--offline", "--listen", freeAddr(t))
	wantErr(t, err, "doctor found")
	if r := finding(t, results, "secret key", "the key does not match"); r.Status != checkFail || !strings.Contains(r.Fix, "Secrets at rest") {
		t.Errorf("secret key finding = %+v", r)
	}
	if up.Count() != 0 {
		t.Errorf("doctor sent %d requests with secrets it could not read", up.Count())
	}
}

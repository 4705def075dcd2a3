package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmgw/llmgw/proxy/upstreamtest"
	"github.com/llmgw/llmgw/store"
	"github.com/llmgw/llmgw/store/storetest"
)

// TestPostgres_MigrateAddServeReport runs the CLI against a PostgreSQL
// database: migrate, account add, key create and account list, then one
// request through llmgw serve to the fake upstream, counted by usage
// report.
func TestPostgres_MigrateAddServeReport(t *testing.T) {
	t.Parallel()
	db := storetest.Postgres(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "llmgw.key")
	key, err := store.NewSecretKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, "llmgw.yaml", "server:\n  secret_key_file: "+keyFile+"\n")

	// Without a key there is no default file beside a URL.
	_, _, err = run(t, "--db", db, "db", "migrate")
	wantErr(t, err, "PostgreSQL database needs one configured", secretKeyFileEnv)

	g := []string{"--db", db, "--config", cfg}
	mustRun(t, append(g, "db", "migrate")...)
	up := upstreamtest.NewServer(t, upstreamtest.OK())
	mustRun(t, append(g, "account", "add", "--name", "main", "--api-key", "sk-ant-"+strings.Repeat("m", 16), "--base-url", up.URL)...)
	out, _ := mustRun(t, append(g, "key", "create", "--name", "alice")...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	clientKey := lines[len(lines)-1]
	out, _ = mustRun(t, append(g, "account", "list")...)
	if !strings.Contains(out, "main") {
		t.Errorf("account list does not show main:\n%s", out)
	}

	out, stderr, err := run(t, append(g, "doctor")...)
	for _, want := range []string{"schema up to date", "integrity check ok"} {
		if !strings.Contains(out+stderr, want) {
			t.Errorf("doctor (err %v) lacks %q:\n%s%s", err, want, out, stderr)
		}
	}

	srv := startServe(t, db, "--config", cfg)
	if _, err := streamOnce(context.Background(), sdk(srv.URL, clientKey), hello()); err != nil {
		t.Fatalf("request through serve: %v", err)
	}
	if err := srv.stopAndWait(t); err != nil {
		t.Fatalf("serve: %v", err)
	}

	out, _ = mustRun(t, append(g, "usage", "report", "--since", "1h", "--by", "key", "--format", "json")...)
	var rep struct {
		Total struct {
			Requests int64 `json:"requests"`
			Output   int64 `json:"output_tokens"`
		} `json:"total"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out)
	}
	if sent := up.SentUsage(); rep.Total.Requests != 1 || rep.Total.Output != sent.Output {
		t.Errorf("report requests=%d output=%d, want 1 and %d", rep.Total.Requests, rep.Total.Output, sent.Output)
	}
}

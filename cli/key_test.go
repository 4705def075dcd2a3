package cli

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/store"
)

func TestKey_CreateStoresOnlyTheHash(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	stdout, stderr := mustRun(t, "--db", db, "key", "create", "--name", "alice", "--expires", "30d")

	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	key := lines[len(lines)-1]
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(llmgw.KeyPrefix) + `[0-9a-f]{48}$`).MatchString(key) {
		t.Fatalf("last line of stdout = %q, want the key alone", key)
	}
	if len(lines) < 2 || strings.Contains(lines[0], key) {
		t.Errorf("stdout = %q, want a short line before the key", stdout)
	}
	if strings.Contains(stderr, key) {
		t.Errorf("stderr shows the key: %q", stderr)
	}

	s, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := s.ListKeys(context.Background())
	if cerr := s.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("store has %d keys, want 1", len(keys))
	}
	k := keys[0]
	if k.Name != "alice" || k.Hash != llmgw.HashKey(key) || k.Prefix != llmgw.VisiblePrefix(key) {
		t.Errorf("stored key = {%q %q %q}, want alice, HashKey(key), VisiblePrefix(key)", k.Name, k.Hash, k.Prefix)
	}
	if d := time.Until(k.ExpiresAt); d < 29*24*time.Hour || d > 30*24*time.Hour {
		t.Errorf("key expires in %v, want about 30 days", d)
	}

	// Neither the database file nor its WAL holds the key itself.
	for _, f := range []string{db, db + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if strings.Contains(string(b), key) {
			t.Errorf("%s contains the key", f)
		}
	}

	stdout, _ = mustRun(t, "--db", db, "key", "list")
	if strings.Contains(stdout, key) || !strings.Contains(stdout, llmgw.VisiblePrefix(key)) {
		t.Errorf("key list = %q, want the prefix and not the key", stdout)
	}
}

func TestKey_ListAndRevoke(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	mustRun(t, "--db", db, "key", "create", "--name", "alice")
	mustRun(t, "--db", db, "key", "create", "--name", "bob", "--expires", "1h")
	_, _, err := run(t, "--db", db, "key", "create", "--name", "alice")
	wantErr(t, err, `client key "alice" already exists`)

	stdout, _ := mustRun(t, "--db", db, "key", "revoke", "alice")
	if stdout != "revoked client key alice\n" {
		t.Errorf("revoke printed %q", stdout)
	}
	_, _, err = run(t, "--db", db, "key", "revoke", "carol")
	wantErr(t, err, `client key "carol" not found: see "llmgw key list"`)

	stdout, _ = mustRun(t, "--db", db, "key", "list", "--json")
	var keys []keyJSON
	if err := json.Unmarshal([]byte(stdout), &keys); err != nil {
		t.Fatalf("key list --json: %v\n%s", err, stdout)
	}
	var got []string
	for _, k := range keys {
		got = append(got, k.Name+" "+k.Status+" "+
			strings.Repeat("E", btoi(k.ExpiresAt != nil))+strings.Repeat("R", btoi(k.RevokedAt != nil)))
	}
	if diff := cmp.Diff([]string{"alice revoked R", "bob active E"}, got); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	if strings.Contains(stdout, `"hash"`) {
		t.Errorf("key list --json shows hashes:\n%s", stdout)
	}

	table, _ := mustRun(t, "--db", db, "key", "list")
	for _, want := range []string{"NAME", "PREFIX", "LAST USED", "EXPIRES", "alice", "revoked", "bob", "active", "never"} {
		if !strings.Contains(table, want) {
			t.Errorf("key list lacks %q:\n%s", want, table)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestKey_CreateRejectsBadInput(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "--name is required"},
		{[]string{"--name", "a b"}, "must not contain spaces"},
		{[]string{"--name", "a", "--expires", "soon"}, `--expires: "soon" is not a duration`},
		{[]string{"--name", "a", "--expires", "-1h"}, "must be positive"},
	} {
		_, _, err := run(t, append([]string{"--db", db, "key", "create"}, tt.args...)...)
		wantErr(t, err, tt.want)
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"30d", 30 * 24 * time.Hour},
		{"1d12h", 36 * time.Hour},
		{"90m", 90 * time.Minute},
		{"24h", 24 * time.Hour},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "d", "30x", "2026-01-01", "1.5d"} {
		if got, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", bad, got)
		}
	}
}

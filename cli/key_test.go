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
)

func TestKey_CreateStoresOnlyTheHash(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	stdout, stderr := mustRun(t, "--db", db, "key", "create", "--name", "alice", "--expires", "30d")

	// Standard output is the key alone, so KEY=$(llmgw key create ...) works;
	// the note goes to standard error.
	key := strings.TrimSuffix(stdout, "\n")
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(llmgw.KeyPrefix) + `[0-9a-f]{48}$`).MatchString(key) {
		t.Fatalf("stdout = %q, want the key alone", stdout)
	}
	if strings.Contains(stderr, key) || !strings.Contains(stderr, "created client key alice") {
		t.Errorf("stderr = %q, want the note without the key", stderr)
	}

	s, err := openStore(context.Background(), db)
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
		want []string
	}{
		{nil, []string{"--name is required"}},
		{[]string{"--name", "a b"}, []string{"must not contain spaces"}},
		{[]string{"--name", "a", "--expires", "soon"}, []string{`--expires: "soon" is not a date (2027-01-31), an RFC 3339 time or a duration (90m, 30d)`}},
		{[]string{"--name", "a", "--expires", "-1h"}, []string{"is not in the future"}},
		{[]string{"--name", "a", "--expires", "2001-01-01"}, []string{"is not in the future"}},
		{[]string{"--name", "a", "--limit", "usd=20/fortnight"}, []string{`--limit: malformed limit "usd=20/fortnight"`, "KIND=AMOUNT/WINDOW"}},
		{[]string{"--name", "a", "--limit", "usd=20/day", "--limit", "usd=30/day"}, []string{"two usd limits per day"}},
		{[]string{"--name", "a", "--models", "claude-["}, []string{`model pattern "claude-[" is malformed`}},
		{[]string{"--name", "a", "--max-concurrency", "-2"}, []string{"max concurrency must be 0 (unlimited) or more"}},
	} {
		_, _, err := run(t, append([]string{"--db", db, "key", "create"}, tt.args...)...)
		wantErr(t, err, tt.want...)
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("error %q is more than one line", err)
		}
	}
}

// The lifecycle an admin lives with: edit changes only what is named,
// rotate keeps the name and history with a new secret, show reports use
// against each limit, and a revoked name can be created again.
func TestKey_EditRotateShowRecreate(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	first, _ := mustRun(t, "--db", db, "key", "create", "--name", "alice", "--models", "claude-sonnet-*,claude-haiku-*",
		"--expires", "2099-01-31", "--max-concurrency", "4", "--limit", "usd=20/day", "--limit", "tokens=2M/5h")
	first = strings.TrimSpace(first)

	stdout, _ := mustRun(t, "--db", db, "key", "edit", "alice", "--limit", "usd=40/day", "--limit", "requests=60/1m")
	if !strings.Contains(stdout, "usd=40.00/day; tokens=2M/5h") && !strings.Contains(stdout, "tokens=2M/5h; usd=40.00/day") {
		t.Errorf("edit printed %q, want the usd limit replaced and the token limit kept", stdout)
	}
	show := func() keyJSON {
		t.Helper()
		out, _ := mustRun(t, "--db", db, "key", "show", "alice", "--json")
		var k keyJSON
		if err := json.Unmarshal([]byte(out), &k); err != nil {
			t.Fatalf("key show --json: %v\n%s", err, out)
		}
		return k
	}
	k := show()
	var limits []string
	for _, l := range k.Limits {
		limits = append(limits, l.Limit)
		if l.Used != 0 || l.Spent {
			t.Errorf("limit %s shows use %v before any request", l.Limit, l.Used)
		}
	}
	if diff := cmp.Diff([]string{"usd=40/day", "tokens=2M/5h", "requests=60/1m"}, limits); diff != "" {
		t.Errorf("limits after edit (-want +got):\n%s", diff)
	}
	if k.MaxConcurrency != 4 || strings.Join(k.Models, ",") != "claude-sonnet-*,claude-haiku-*" || k.ExpiresAt == nil || !strings.HasPrefix(*k.ExpiresAt, "2099-01-31") {
		t.Errorf("edit touched what it was not told to: %+v", k)
	}
	if r := k.Limits[0].ResetsAt; r == nil || !strings.HasSuffix(*r, "T00:00:00Z") {
		t.Errorf("the day window resets at %v, want the next midnight UTC", r)
	}
	if r := k.Limits[1].ResetsAt; r != nil {
		t.Errorf("a sliding window with nothing used names a reset: %v", *r)
	}

	mustRun(t, "--db", db, "key", "edit", "alice", "--clear-limits", "--clear-models", "--no-expiry", "--max-concurrency", "0")
	k = show()
	if len(k.Limits) != 0 || len(k.Models) != 0 || k.ExpiresAt != nil || k.MaxConcurrency != 0 {
		t.Errorf("after clearing: %+v", k)
	}
	_, _, err := run(t, "--db", db, "key", "edit", "nobody", "--max-concurrency", "1")
	wantErr(t, err, `client key "nobody" not found`)

	second, stderr := mustRun(t, "--db", db, "key", "rotate", "alice")
	second = strings.TrimSpace(second)
	if second == first || !strings.HasPrefix(second, llmgw.KeyPrefix) || strings.Contains(stderr, second) {
		t.Fatalf("rotate printed %q (stderr %q)", second, stderr)
	}
	s, err := openStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := s.ListKeys(context.Background())
	_ = s.Close()
	if err != nil || len(keys) != 1 || keys[0].Hash != llmgw.HashKey(second) || keys[0].RotatedAt.IsZero() {
		t.Fatalf("after rotate the store has %+v, %v", keys, err)
	}

	mustRun(t, "--db", db, "key", "revoke", "alice")
	third, _ := mustRun(t, "--db", db, "key", "create", "--name", "alice")
	if strings.TrimSpace(third) == second {
		t.Error("the recreated key has the old secret")
	}
	out, _ := mustRun(t, "--db", db, "key", "list", "--json")
	var list []keyJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range list {
		got = append(got, k.Name+" "+k.Status)
	}
	if diff := cmp.Diff([]string{"alice revoked", "alice active"}, got); diff != "" {
		t.Errorf("key list (-want +got):\n%s", diff)
	}
	if k := show(); k.Status != "active" {
		t.Errorf("key show picks the %s alice, want the live one", k.Status)
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

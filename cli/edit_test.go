package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// addFull adds account main with every setting away from its default.
func addFull(t *testing.T, db string) {
	t.Helper()
	createKeys(t, db, "alice", "bob")
	mustRun(t, "--db", db, "account", "add", "--name", "main", "--api-key", testAPIKey,
		"--base-url", "http://127.0.0.1:9999", "--priority", "2", "--weight", "3", "--max-concurrency", "4",
		"--models", "claude-sonnet-*,claude-haiku-*", "--owner-key", "alice",
		"--limit", "usd=100/day", "--limit", "tokens=2M/5h")
}

func TestAccountEdit_ChangesOnlyGivenFields(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	addFull(t, db)
	mustRun(t, "--db", db, "account", "disable", "main")
	before := listJSON(t, db)[0]

	stdout, _ := mustRun(t, "--db", db, "account", "edit", "--priority", "0", "main")
	if want := "edited account main: priority\n"; stdout != want {
		t.Errorf("edit printed %q, want %q", stdout, want)
	}
	after := listJSON(t, db)[0]
	if after.Priority != 0 {
		t.Errorf("priority = %d, want 0", after.Priority)
	}
	// Everything else, the status and the secret included, is as it was.
	if diff := cmp.Diff(before, after, cmpopts.IgnoreFields(accountJSON{}, "Priority", "UpdatedAt")); diff != "" {
		t.Errorf("edit --priority changed more (-before +after):\n%s", diff)
	}
	if got := getAccount(t, db, "main").APIKey; got != testAPIKey {
		t.Error("edit --priority changed the API key")
	}

	mustRun(t, "--db", db, "account", "edit", "--weight", "7", "--max-concurrency", "0", "--models", "claude-opus-*",
		"--base-url", "", "main")
	a := listJSON(t, db)[0]
	got := []any{a.Weight, a.MaxConcurrency, a.Models, a.BaseURL, a.Priority, a.OwnerKeys, a.Limits, a.Status}
	want := []any{7, 0, []string{"claude-opus-*"}, "https://api.anthropic.com", 0, []string{"alice"},
		[]string{"usd=100.00/day", "tokens=2M/5h"}, "disabled"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after the second edit (-want +got):\n%s", diff)
	}

	mustRun(t, "--db", db, "account", "edit", "--owner-key", "bob", "main")
	if a := listJSON(t, db)[0]; !cmp.Equal(a.OwnerKeys, []string{"bob"}) {
		t.Errorf("owner keys after --owner-key bob = %v, want [bob] (replaced, as on add)", a.OwnerKeys)
	}
	stdout, _ = mustRun(t, "--db", db, "account", "edit", "--clear-models", "--clear-owner-keys", "main")
	if want := "edited account main: models, owner keys\n"; stdout != want {
		t.Errorf("edit printed %q, want %q", stdout, want)
	}
	if a := listJSON(t, db)[0]; len(a.Models) != 0 || len(a.OwnerKeys) != 0 {
		t.Errorf("after --clear-models --clear-owner-keys: models %v, owner keys %v; want none", a.Models, a.OwnerKeys)
	}
}

func TestAccountEdit_Rename(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	addFull(t, db)
	mustRun(t, "--db", db, "account", "add", "--name", "other", "--api-key", testAPIKey)
	id := listJSON(t, db)[0].ID

	stdout, _ := mustRun(t, "--db", db, "account", "edit", "--rename", "team-1", "--priority", "5", "main")
	if want := "edited account main: renamed to team-1, priority\n"; stdout != want {
		t.Errorf("edit printed %q, want %q", stdout, want)
	}
	a := listJSON(t, db)[0]
	if a.Name != "team-1" || a.ID != id || a.Priority != 5 || a.BaseURL != "http://127.0.0.1:9999" {
		t.Errorf("renamed account = %s (id %d, priority %d, %s); want team-1, id %d, priority 5, base URL kept", a.Name, a.ID, a.Priority, a.BaseURL, id)
	}
	_, _, err := run(t, "--db", db, "account", "show", "main")
	wantErr(t, err, `account "main" not found`)

	_, _, err = run(t, "--db", db, "account", "edit", "--rename", "other", "team-1")
	wantErr(t, err, `account "other" already exists: choose another name for --rename`)
	_, _, err = run(t, "--db", db, "account", "edit", "--rename", "has space", "team-1")
	wantErr(t, err, "must not contain spaces")
	if n := listJSON(t, db)[0].Name; n != "team-1" {
		t.Errorf("name after refused renames = %q, want team-1", n)
	}
}

func TestAccountEdit_Limits(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	addFull(t, db)
	limits := func() []string { return listJSON(t, db)[0].Limits }

	// A given limit replaces the one of its kind and window and keeps the others.
	mustRun(t, "--db", db, "account", "edit", "--limit", "usd=50/day", "--limit", "requests=60/1m", "main")
	if diff := cmp.Diff([]string{"usd=50.00/day", "tokens=2M/5h", "requests=60/1m"}, limits()); diff != "" {
		t.Errorf("limits after --limit (-want +got):\n%s", diff)
	}
	// The same kind over another window is another limit.
	mustRun(t, "--db", db, "account", "edit", "--limit", "usd=1000/month", "main")
	if diff := cmp.Diff([]string{"usd=50.00/day", "tokens=2M/5h", "requests=60/1m", "usd=1000.00/month"}, limits()); diff != "" {
		t.Errorf("limits after a monthly usd limit (-want +got):\n%s", diff)
	}
	mustRun(t, "--db", db, "account", "edit", "--clear-limits", "--limit", "tokens=1M/day", "main")
	if diff := cmp.Diff([]string{"tokens=1M/day"}, limits()); diff != "" {
		t.Errorf("limits after --clear-limits --limit (-want +got):\n%s", diff)
	}
	mustRun(t, "--db", db, "account", "edit", "--clear-limits", "main")
	if got := limits(); len(got) != 0 {
		t.Errorf("limits after --clear-limits = %v, want none", got)
	}

	_, _, err := run(t, "--db", db, "account", "edit", "--limit", "usd=5/fortnight", "main")
	wantErr(t, err, "--limit: ", "want KIND=AMOUNT/WINDOW")
	_, _, err = run(t, "--db", db, "account", "edit", "--limit", "usd=5/day", "--limit", "usd=6/day", "main")
	wantErr(t, err, "two usd limits per day")
	if got := limits(); len(got) != 0 {
		t.Errorf("limits after refused edits = %v, want none", got)
	}
}

func TestAccountEdit_APIKeyFromStdin(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	addFull(t, db)
	const newKey = "sk-ant-test-FAKE-rotated-0123456789abcdef"
	var out, errOut strings.Builder
	app := New(&out, &errOut)
	app.Reader = strings.NewReader(newKey + "\n")
	if err := app.RunContext(context.Background(), []string{"llmgw", "--db", db, "account", "edit", "--api-key", "-", "main"}); err != nil {
		t.Fatal(err)
	}
	a := getAccount(t, db, "main")
	if a.APIKey != newKey {
		t.Errorf("API key after edit --api-key - is not the one from stdin")
	}
	if a.BaseURL != "http://127.0.0.1:9999" || a.Priority != 2 || len(a.Models) != 2 {
		t.Errorf("edit --api-key changed settings: %s priority %d models %v", a.BaseURL, a.Priority, a.Models)
	}
	if strings.Contains(out.String()+errOut.String(), "FAKE") {
		t.Errorf("output shows the key: %q %q", out.String(), errOut.String())
	}
	if want := "edited account main: api key\n"; out.String() != want {
		t.Errorf("edit printed %q, want %q", out.String(), want)
	}

	// An empty stdin changes nothing.
	app = New(&out, &errOut)
	app.Reader = strings.NewReader("")
	err := app.RunContext(context.Background(), []string{"llmgw", "--db", db, "account", "edit", "--api-key", "-", "main"})
	wantErr(t, err, "read api key from stdin: stdin is empty")
	if getAccount(t, db, "main").APIKey != newKey {
		t.Error("a failed edit changed the key")
	}
}

func TestAccountEdit_OAuthAccount(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	mustRun(t, "--db", db, "account", "import", writeFile(t, "a.yaml", `accounts:
  - name: sub
    type: oauth
    access_token: sk-ant-oat-test-FAKE-0123456789
    refresh_token: sk-ant-ort-test-FAKE-0123456789
`))
	before := getAccount(t, db, "sub")
	_, _, err := run(t, "--db", db, "account", "edit", "--api-key", testAPIKey, "sub")
	wantErr(t, err, "account sub is an oauth account: --api-key is only for api_key accounts")

	mustRun(t, "--db", db, "account", "edit", "--weight", "9", "sub")
	after := getAccount(t, db, "sub")
	if after.Weight != 9 || after.APIKey != "" || after.AccessToken != before.AccessToken ||
		after.RefreshToken != before.RefreshToken || after.TokenGeneration != before.TokenGeneration {
		t.Errorf("after edit --weight: weight %d, api key set %v, tokens kept %v, generation %d -> %d; want 9, false, true, unchanged",
			after.Weight, after.APIKey != "", after.AccessToken == before.AccessToken, before.TokenGeneration, after.TokenGeneration)
	}
}

func TestAccountEdit_Refused(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	addFull(t, db)
	before := listJSON(t, db)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing account", []string{"--priority", "1", "nope"}, `account "nope" not found: see "llmgw account list"`},
		{"no flags", []string{"main"}, "nothing to change"},
		{"no name", []string{"--priority", "1"}, "missing account name"},
		{"unknown flag after the name", []string{"main", "--prority", "1"}, `unknown flag "--prority" after account name`},
		{"owner key typo", []string{"--owner-key", "alcie", "main"}, `--owner-key "alcie": no live client key has that name: see "llmgw key list"`},
		{"zero weight", []string{"--weight", "0", "main"}, "weight must be at least 1"},
		{"bad url", []string{"--base-url", "ftp://x", "main"}, "must be an http or https URL"},
		{"bad pattern", []string{"--models", "claude-[", "main"}, "malformed"},
		{"empty api key", []string{"--api-key", "", "main"}, "--api-key is empty"},
		{"empty rename", []string{"--rename", "", "main"}, "--rename is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := run(t, append([]string{"--db", db, "account", "edit"}, tt.args...)...)
			wantErr(t, err, tt.want)
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
	if diff := cmp.Diff(before, listJSON(t, db)); diff != "" {
		t.Errorf("refused edits changed accounts (-before +after):\n%s", diff)
	}
}

func TestServe_AccountEditFollowsWithinASecond(t *testing.T) {
	up := upstreamtest.NewServer(t)
	db := newDB(t)
	mustRun(t, "--db", db, "account", "add", "--name", "a", "--api-key", "sk-ant-aaaaaaaaaaaaaaaa", "--base-url", up.URL)
	mustRun(t, "--db", db, "account", "add", "--name", "b", "--api-key", "sk-ant-bbbbbbbbbbbbbbbb", "--base-url", up.URL, "--priority", "1")
	key := createKey(t, db, "alice")
	srv := startServe(t, db)
	c := sdk(srv.URL, key)
	lastKey := func() (string, bool) {
		before := up.Count()
		if _, err := c.Messages.New(context.Background(), hello()); err != nil {
			return "", false
		}
		return up.Requests()[before].Key, true
	}
	if k, ok := lastKey(); !ok || k != "sk-ant-aaaaaaaaaaaaaaaa" {
		t.Fatalf("first request went with key %q, want account a's", k)
	}

	// a drops behind b, then b gets a new key: requests follow each edit.
	for _, step := range []struct {
		args    []string
		wantKey string
	}{
		{[]string{"--priority", "2", "a"}, "sk-ant-bbbbbbbbbbbbbbbb"},
		{[]string{"--api-key", "sk-ant-cccccccccccccccc", "b"}, "sk-ant-cccccccccccccccc"},
	} {
		mustRun(t, append([]string{"--db", db, "account", "edit"}, step.args...)...)
		lag, err := visibleAfter(time.Now(), func() bool {
			k, ok := lastKey()
			return ok && k == step.wantKey
		})
		if err != nil {
			t.Fatalf("after edit %v requests never used %s", step.args, step.wantKey)
		}
		if lag > time.Second {
			t.Errorf("edit %v took %v to show, want under a second", step.args, lag)
		}
	}
}

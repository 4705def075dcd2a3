package cli

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testAPIKey is an obviously fake upstream key. Tests assert it never shows
// up in any output.
const testAPIKey = "sk-ant-test-FAKE-0123456789abcdefghijklmnop"

// listJSON returns "account list --json" decoded.
func listJSON(t *testing.T, db string) []accountJSON {
	t.Helper()
	stdout, _ := mustRun(t, "--db", db, "account", "list", "--json")
	var out []accountJSON
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("account list --json: %v\n%s", err, stdout)
	}
	return out
}

func TestAccount_Lifecycle(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	var outputs []string
	do := func(args ...string) string {
		t.Helper()
		stdout, stderr := mustRun(t, append([]string{"--db", db}, args...)...)
		outputs = append(outputs, stdout, stderr)
		return stdout
	}

	got := do("account", "add", "--name", "main", "--api-key", testAPIKey)
	if want := "added account main (api_key, https://api.anthropic.com)\n"; got != want {
		t.Errorf("add printed %q, want %q", got, want)
	}
	do("account", "add", "--name", "backup", "--api-key", testAPIKey+"2", "--base-url", "http://127.0.0.1:9999",
		"--priority", "2", "--weight", "3", "--max-concurrency", "4", "--models", "claude-sonnet-*, claude-haiku-*")

	_, _, err := run(t, "--db", db, "account", "add", "--name", "main", "--api-key", testAPIKey)
	wantErr(t, err, `account "main" already exists`)

	accts := listJSON(t, db)
	if len(accts) != 2 {
		t.Fatalf("list has %d accounts, want 2", len(accts))
	}
	b := accts[1]
	gotB := []any{b.Name, b.Type, b.Status, b.BaseURL, b.Priority, b.Weight, b.MaxConcurrency, b.Models, b.APIKey}
	wantB := []any{"backup", "api_key", "active", "http://127.0.0.1:9999", 2, 3, 4,
		[]string{"claude-sonnet-*", "claude-haiku-*"}, "sk-ant…(44 chars)"}
	if diff := cmp.Diff(wantB, gotB); diff != "" {
		t.Errorf("backup account (-want +got):\n%s", diff)
	}

	table := do("account", "list")
	for _, want := range []string{"NAME", "IN FLIGHT", "COOLDOWN", "AVG LATENCY", "main", "backup"} {
		if !strings.Contains(table, want) {
			t.Errorf("list table lacks %q:\n%s", want, table)
		}
	}

	do("account", "disable", "main")
	if a := listJSON(t, db)[0]; a.Status != "disabled" || a.Reason != "disabled by operator" {
		t.Errorf("after disable: status %q reason %q, want disabled, \"disabled by operator\"", a.Status, a.Reason)
	}
	if table := do("account", "list"); !strings.Contains(table, "disabled: disabled by operator") {
		t.Errorf("list table lacks the status reason:\n%s", table)
	}
	show := do("account", "show", "main")
	for _, want := range []string{"name:", "main", "status:", "disabled: disabled by operator", "api key:", "sk-ant…(43 chars)", "requests:"} {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %q:\n%s", want, show)
		}
	}

	do("account", "enable", "main")
	if a := listJSON(t, db)[0]; a.Status != "active" || a.Reason != "" {
		t.Errorf("after enable: status %q reason %q, want active and no reason", a.Status, a.Reason)
	}

	do("account", "remove", "backup")
	if accts := listJSON(t, db); len(accts) != 1 || accts[0].Name != "main" {
		t.Errorf("after remove: %+v, want only main", accts)
	}

	for _, args := range [][]string{{"show", "backup"}, {"enable", "backup"}, {"disable", "backup"}, {"remove", "backup"}} {
		_, _, err := run(t, append([]string{"--db", db, "account"}, args...)...)
		wantErr(t, err, `account "backup" not found: see "llmgw account list"`)
	}

	for _, out := range outputs {
		if strings.Contains(out, testAPIKey) {
			t.Errorf("output shows the API key:\n%s", out)
		}
	}
}

func TestAccount_AddRejectsBadInput(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no name", []string{"--api-key", testAPIKey}, "--name is required"},
		{"no key", []string{"--name", "a"}, "--api-key is required"},
		{"space in name", []string{"--name", "a b", "--api-key", testAPIKey}, "must not contain spaces"},
		{"bad url", []string{"--name", "a", "--api-key", testAPIKey, "--base-url", "ftp://x"}, "must be an http or https URL"},
		{"zero weight", []string{"--name", "a", "--api-key", testAPIKey, "--weight", "0"}, "weight must be at least 1"},
		{"bad pattern", []string{"--name", "a", "--api-key", testAPIKey, "--models", "claude-["}, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, err := run(t, append([]string{"--db", db, "account", "add"}, tt.args...)...)
			wantErr(t, err, tt.want)
			if strings.Contains(err.Error()+stderr, testAPIKey) {
				t.Errorf("error shows the API key: %v", err)
			}
		})
	}
	if accts := listJSON(t, db); len(accts) != 0 {
		t.Errorf("accounts = %+v, want none", accts)
	}
}

func TestAccount_AddKeyFromStdin(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	var out, errOut strings.Builder
	app := New(&out, &errOut)
	app.Reader = strings.NewReader(testAPIKey + "\n")
	if err := app.Run([]string{"llmgw", "--db", db, "account", "add", "--name", "piped", "--api-key", "-"}); err != nil {
		t.Fatal(err)
	}
	if got, want := listJSON(t, db)[0].APIKey, "sk-ant…(43 chars)"; got != want {
		t.Errorf("masked key = %q, want %q", got, want)
	}
}

func TestAccount_BaseURLDefaults(t *testing.T) {
	// Not parallel: sets an environment variable. The order is flag,
	// environment, file, default.
	db := newDB(t)
	cfg := writeFile(t, "llmgw.yaml", "upstream:\n  base_url: http://config.example\n")
	mustRun(t, "--db", db, "--config", cfg, "account", "add", "--name", "conf", "--api-key", testAPIKey)
	t.Setenv(baseURLEnv, "http://env.example:8443")
	mustRun(t, "--db", db, "--config", cfg, "account", "add", "--name", "env", "--api-key", testAPIKey)
	mustRun(t, "--db", db, "--config", cfg, "account", "add", "--name", "flag", "--api-key", testAPIKey, "--base-url", "http://flag.example")
	var got []string
	for _, a := range listJSON(t, db) {
		got = append(got, a.Name+" "+a.BaseURL)
	}
	want := []string{"conf http://config.example", "env http://env.example:8443", "flag http://flag.example"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("base URLs (-want +got):\n%s", diff)
	}
}

func TestAccount_AddWithLimits(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	mustRun(t, "--db", db, "account", "add", "--name", "capped", "--api-key", testAPIKey,
		"--limit", "usd=100/day", "--limit", "tokens=2000000/5h,requests=60/1m")
	mustRun(t, "--db", db, "account", "add", "--name", "free", "--api-key", testAPIKey)

	accts := listJSON(t, db)
	got := [][]string{accts[0].Limits, accts[1].Limits}
	want := [][]string{{"usd=100.00/day", "tokens=2M/5h", "requests=60/1m"}, {}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("limits in list --json (-want +got):\n%s", diff)
	}
	if show, _ := mustRun(t, "--db", db, "account", "show", "capped"); !strings.Contains(show, "usd=100.00/day, tokens=2M/5h, requests=60/1m") {
		t.Errorf("show lacks the limits:\n%s", show)
	}
	if show, _ := mustRun(t, "--db", db, "account", "show", "free"); !strings.Contains(show, "limits:") || !strings.Contains(show, "none") {
		t.Errorf("show of an unlimited account lacks \"limits: none\":\n%s", show)
	}
	table, _ := mustRun(t, "--db", db, "account", "list")
	for _, want := range []string{"LIMITS", "usd 0.00/100.00 per day, tokens 0/2M per 5h, requests 0/60 per 1m"} {
		if !strings.Contains(table, want) {
			t.Errorf("list table lacks %q:\n%s", want, table)
		}
	}

	for _, tt := range []struct{ limit, want string }{
		{"usd=100", "malformed limit"},
		{"usd=100/fortnight", "want KIND=AMOUNT/WINDOW"},
		{"usd=1/day,usd=2/day", "two usd limits per day"},
	} {
		_, _, err := run(t, "--db", db, "account", "add", "--name", "bad", "--api-key", testAPIKey, "--limit", tt.limit)
		wantErr(t, err, "--limit: ", tt.want)
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("error for --limit %s is not one line: %q", tt.limit, err)
		}
	}
	if n := len(listJSON(t, db)); n != 2 {
		t.Errorf("%d accounts after bad --limit adds, want 2", n)
	}
}

// createKeys creates a client key for each name.
func createKeys(t *testing.T, db string, names ...string) {
	t.Helper()
	for _, n := range names {
		mustRun(t, "--db", db, "key", "create", "--name", n)
	}
}

func TestAccount_OwnerKeyMustExist(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	createKeys(t, db, "alice", "gone")
	mustRun(t, "--db", db, "key", "revoke", "gone")
	cfg := writeFile(t, "llmgw.yaml", "auth:\n  api_keys:\n    - name: ci\n      key: sk-static-FAKE-0123456789\n")

	tests := []struct {
		name  string
		flags []string
		want  string // "" for success
	}{
		{"live key", []string{"--owner-key", "alice"}, ""},
		{"static key from the config file", []string{"--config", cfg, "--owner-key", "ci"}, ""},
		{"typo", []string{"--owner-key", "alcie"}, `--owner-key "alcie": no live client key has that name: see "llmgw key list"`},
		{"typo after a good one", []string{"--owner-key", "alice,alcie"}, `--owner-key "alcie"`},
		{"revoked key", []string{"--owner-key", "gone"}, `--owner-key "gone"`},
		{"static key without its config file", []string{"--owner-key", "ci"}, `--owner-key "ci"`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var global, local []string
			for j := 0; j < len(tt.flags); j += 2 {
				if tt.flags[j] == "--config" {
					global = append(global, tt.flags[j:j+2]...)
				} else {
					local = append(local, tt.flags[j:j+2]...)
				}
			}
			name := "acct-" + strconv.Itoa(i)
			args := append(append(append([]string{"--db", db}, global...), "account", "add", "--name", name, "--api-key", testAPIKey), local...)
			_, _, err := run(t, args...)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("add: %v", err)
				}
				return
			}
			wantErr(t, err, tt.want)
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if _, _, err := run(t, "--db", db, "account", "show", name); err == nil {
				t.Errorf("account %s was added despite the error", name)
			}
		})
	}

	// login refuses before it shows the authorize URL, and --claude-credentials
	// before it stores anything.
	stdout, _, err := run(t, "--db", db, "account", "login", "--name", "sub", "--owner-key", "alcie")
	wantErr(t, err, `--owner-key "alcie"`)
	if stdout != "" {
		t.Errorf("login printed %q before refusing", stdout)
	}
	creds := writeFile(t, ".credentials.json", `{"claudeAiOauth":{"accessToken":"sk-ant-oat-test-FAKE","refreshToken":"sk-ant-ort-test-FAKE"}}`)
	_, _, err = run(t, "--db", db, "account", "import", "--claude-credentials", creds, "--name", "sub", "--owner-key", "alcie")
	wantErr(t, err, `--owner-key "alcie"`)
	if _, _, err := run(t, "--db", db, "account", "show", "sub"); err == nil {
		t.Error("account sub was stored despite the error")
	}
}

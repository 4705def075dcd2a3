package cli

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/llmgw/llmgw"
)

const importGood = `# two accounts
accounts:
  - name: main
    api_key: sk-ant-test-FAKE-main-0123456789
    priority: 1
    weight: 2
    max_concurrency: 8
    models: [claude-sonnet-*, claude-haiku-*]
  - name: sub
    type: oauth
    access_token: sk-ant-oat-test-FAKE-0123456789
    refresh_token: sk-ant-ort-test-FAKE-0123456789
    expires_at: 2020-01-02T03:04:05Z
    base_url: http://127.0.0.1:9999
    models: "claude-opus-*, claude-sonnet-*"
`

func TestImport_CreatesThenUpdates(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	file := writeFile(t, "accounts.yaml", importGood)

	stdout, stderr := mustRun(t, "--db", db, "account", "import", file)
	if want := "imported 2 accounts (2 created, 0 updated)\n"; stdout != want {
		t.Errorf("first import printed %q, want %q", stdout, want)
	}
	first := listJSON(t, db)
	type view struct {
		Name, Type, BaseURL               string
		Priority, Weight, MaxConcurrency  int
		Models                            []string
		APIKey, AccessToken, RefreshToken string
		ExpiresAt                         string
	}
	var got []view
	for _, a := range first {
		v := view{a.Name, a.Type, a.BaseURL, a.Priority, a.Weight, a.MaxConcurrency, a.Models,
			a.APIKey, a.AccessToken, a.RefreshToken, ""}
		if a.ExpiresAt != nil {
			v.ExpiresAt = *a.ExpiresAt
		}
		got = append(got, v)
	}
	want := []view{
		{"main", "api_key", "https://api.anthropic.com", 1, 2, 8, []string{"claude-sonnet-*", "claude-haiku-*"},
			"sk-ant…(32 chars)", "", "", ""},
		{"sub", "oauth", "http://127.0.0.1:9999", 0, 1, 0, []string{"claude-opus-*", "claude-sonnet-*"},
			"", "sk-ant…(31 chars)", "sk-ant…(31 chars)", "2020-01-02T03:04:05Z"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("imported accounts (-want +got):\n%s", diff)
	}

	// Importing the same file again changes nothing but counts updates.
	stdout2, stderr2 := mustRun(t, "--db", db, "account", "import", file)
	if want := "imported 2 accounts (0 created, 2 updated)\n"; stdout2 != want {
		t.Errorf("second import printed %q, want %q", stdout2, want)
	}
	second := listJSON(t, db)
	if diff := cmp.Diff(first, second, cmp.FilterPath(func(p cmp.Path) bool {
		return p.Last().String() == ".UpdatedAt"
	}, cmp.Ignore())); diff != "" {
		t.Errorf("re-import changed accounts (-first +second):\n%s", diff)
	}

	for _, out := range []string{stdout, stderr, stdout2, stderr2} {
		if strings.Contains(out, "FAKE") {
			t.Errorf("output shows a secret: %q", out)
		}
	}
}

func TestImport_KeepsOperatorState(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	file := writeFile(t, "accounts.yaml", importGood)
	mustRun(t, "--db", db, "account", "import", file)
	mustRun(t, "--db", db, "account", "disable", "main")
	mustRun(t, "--db", db, "account", "import", file)
	if a := listJSON(t, db)[0]; a.Status != "disabled" {
		t.Errorf("after re-import status = %q, want disabled (import must not undo disable)", a.Status)
	}
}

func TestImport_ExpandsEnv(t *testing.T) {
	// Not parallel: sets environment variables.
	db := newDB(t)
	t.Setenv("LLMGW_TEST_KEY", "sk-ant-test-FAKE-from-env-0123456789")
	t.Setenv("LLMGW_TEST_PRIORITY", "7")
	t.Setenv("LLMGW_TEST_HOST", "127.0.0.1:9")
	file := writeFile(t, "accounts.yaml", `accounts:
  - name: env
    api_key: ${LLMGW_TEST_KEY}
    priority: ${LLMGW_TEST_PRIORITY}
    base_url: http://${LLMGW_TEST_HOST}/v1
`)
	mustRun(t, "--db", db, "account", "import", file)
	a := listJSON(t, db)[0]
	got := []any{a.APIKey, a.Priority, a.BaseURL}
	want := []any{"sk-ant…(36 chars)", 7, "http://127.0.0.1:9/v1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("expanded fields (-want +got):\n%s", diff)
	}
}

func TestImport_MergeKeysAndTimes(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "accounts.yaml", `defaults: &d
  base_url: http://127.0.0.1:1
  weight: 5
accounts:
  - <<: *d
    name: a
    api_key: sk-ant-test-FAKE-a-0123456789
    weight: 6
  - name: ms
    type: oauth
    refresh_token: sk-ant-ort-test-FAKE-0123456789
    expires_at: 1767225600000
  - name: s
    type: oauth
    refresh_token: sk-ant-ort-test-FAKE-0123456789
    expires_at: 1767225600
`)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, err = parseAccounts("accounts.yaml", data, "https://api.anthropic.com", os.LookupEnv)
	// "defaults" is not a known top-level key: anchors live inside accounts.
	wantErr(t, err, `accounts.yaml:1: unknown key "defaults"`)

	data = []byte(strings.Replace(string(data), "defaults: &d\n  base_url: http://127.0.0.1:1\n  weight: 5\naccounts:\n",
		"accounts:\n  - &d\n    name: base\n    api_key: sk-ant-test-FAKE-base-0123456789\n    base_url: http://127.0.0.1:1\n    weight: 5\n", 1))
	accts, err := parseAccounts("accounts.yaml", data, "https://api.anthropic.com", os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(accts))
	for i, a := range accts {
		got[i] = a.Name + " " + a.BaseURL + " " + strings.Repeat("w", a.Weight) + " " + a.ExpiresAt.UTC().Format(time.RFC3339)
	}
	want := []string{
		"base http://127.0.0.1:1 wwwww 0001-01-01T00:00:00Z",
		"a http://127.0.0.1:1 wwwwww 0001-01-01T00:00:00Z",
		"ms https://api.anthropic.com w 2026-01-01T00:00:00Z",
		"s https://api.anthropic.com w 2026-01-01T00:00:00Z",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("accounts (-want +got):\n%s", diff)
	}
}

func TestImport_RejectsBadFilesWithLineNumbers(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	mustRun(t, "--db", db, "account", "import", writeFile(t, "accounts.yaml", importGood))
	before := listJSON(t, db)

	const unset = "LLMGW_TEST_SURELY_UNSET_VARIABLE"
	if _, ok := os.LookupEnv(unset); ok {
		t.Fatalf("%s is set", unset)
	}
	// Each file changes main's priority first, so a partial import would show.
	const head = "accounts:\n  - name: main\n    api_key: sk-ant-test-FAKE-main-0123456789\n    priority: 9\n"
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"unknown field", head + "  - name: b\n    api_key: sk-ant-test-FAKE-b-0123456789\n    apikey: x\n",
			[]string{"accounts.yaml:7:", `unknown field "apikey"`}},
		{"unknown top-level key", head + "acounts: []\n",
			[]string{"accounts.yaml:5:", `unknown key "acounts"`}},
		{"bad type: list for a string", head + "  - name: b\n    api_key: [sk-ant-test-FAKE-b]\n",
			[]string{"accounts.yaml:6:", "api_key must be a single value"}},
		{"bad type: word for a number", head + "  - name: b\n    api_key: sk-ant-test-FAKE-b-0123456789\n    weight: heavy\n",
			[]string{"accounts.yaml:7:", `weight must be a whole number, not "heavy"`}},
		{"bad type: mapping for models", head + "  - name: b\n    api_key: sk-ant-test-FAKE-b-0123456789\n    models: {a: b}\n",
			[]string{"accounts.yaml:7:", "models must be a list"}},
		{"entry not a mapping", head + "  - just-a-name\n",
			[]string{"accounts.yaml:5:", "must be a mapping"}},
		{"missing name", head + "  - api_key: sk-ant-test-FAKE-b-0123456789\n    priority: 2\n",
			[]string{"accounts.yaml:5:", "account name is required"}},
		{"missing api_key", head + "  - name: b\n    priority: 2\n",
			[]string{"accounts.yaml:5:", "api_key is required"}},
		{"missing oauth tokens", head + "  - name: b\n    type: oauth\n",
			[]string{"accounts.yaml:5:", "access_token or refresh_token is required"}},
		{"bad type value", head + "  - name: b\n    type: password\n    api_key: sk-ant-test-FAKE-b-0123456789\n",
			[]string{"accounts.yaml:5:", `type must be api_key or oauth, not "password"`}},
		{"bad expires_at", head + "  - name: b\n    type: oauth\n    refresh_token: sk-ant-ort-test-FAKE\n    expires_at: next tuesday\n",
			[]string{"accounts.yaml:8:", `expires_at "next tuesday" is not an RFC 3339 time`}},
		{"negative expires_at", head + "  - name: b\n    type: oauth\n    refresh_token: sk-ant-ort-test-FAKE\n    expires_at: -5\n",
			[]string{"accounts.yaml:8:", "expires_at -5 is negative"}},
		{"unset env var", head + "  - name: b\n    api_key: ${" + unset + "}\n",
			[]string{"accounts.yaml:6:", "environment variable " + unset + " is not set"}},
		{"repeated field", head + "  - name: b\n    api_key: sk-ant-test-FAKE-b-0123456789\n    name: c\n",
			[]string{"accounts.yaml:7:", `field "name" repeats line 5`}},
		{"repeated account", head + "  - name: main\n    api_key: sk-ant-test-FAKE-b-0123456789\n",
			[]string{"accounts.yaml:5:", `account "main" is listed twice (first at line 2)`}},
		{"bad url", head + "  - name: b\n    api_key: sk-ant-test-FAKE-b-0123456789\n    base_url: api.anthropic.com\n",
			[]string{"accounts.yaml:5:", "must be an http or https URL"}},
		{"yaml syntax", head + "  - name: [b\n",
			[]string{"accounts.yaml:", "line"}},
		{"empty file", "", []string{"no accounts"}},
		{"empty list", "accounts: []\n", []string{"accounts.yaml:1:", "no accounts"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeFile(t, "accounts.yaml", tt.body)
			stdout, stderr, err := run(t, "--db", db, "account", "import", file)
			if err == nil {
				t.Fatalf("import succeeded: %q", stdout)
			}
			// Name the file by its base name in expectations.
			msg := strings.ReplaceAll(err.Error(), file, "accounts.yaml")
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("err = %q, want it to contain %q", msg, w)
				}
			}
			if strings.Contains(msg+stdout+stderr, "FAKE") {
				t.Errorf("output or error shows a secret: %q", msg)
			}
		})
	}
	if diff := cmp.Diff(before, listJSON(t, db)); diff != "" {
		t.Errorf("a rejected import changed the database (-before +after):\n%s", diff)
	}
}

func TestParseExpiresAt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Time
	}{
		{"", time.Time{}},
		{"2026-01-01T00:00:00Z", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"2026-01-01T01:00:00+01:00", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"1767225600", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"1767225600123", time.Date(2026, 1, 1, 0, 0, 0, 123e6, time.UTC)},
		{"999999999999", time.Unix(999999999999, 0)},
		{"1000000000000", time.UnixMilli(1e12)},
	}
	for _, tt := range tests {
		got, err := parseExpiresAt(tt.in)
		if err != nil {
			t.Errorf("parseExpiresAt(%q): %v", tt.in, err)
			continue
		}
		if !got.Equal(tt.want) {
			t.Errorf("parseExpiresAt(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// importStdin runs "account import -" (with extra flags before the -) with
// body on stdin.
func importStdin(t *testing.T, db, body string, flags ...string) (string, error) {
	t.Helper()
	var out, errOut strings.Builder
	app := New(&out, &errOut)
	app.Reader = strings.NewReader(body)
	args := append(append([]string{"llmgw", "--db", db, "account", "import"}, flags...), "-")
	err := app.RunContext(context.Background(), args)
	return out.String(), err
}

const importFull = `accounts:
  - name: main
    api_key: sk-ant-test-FAKE-main-0123456789
    base_url: http://127.0.0.1:9999
    priority: 3
    weight: 2
    max_concurrency: 8
    models: [claude-sonnet-*]
    owner_keys: [alice]
    limits: [usd=100/day, tokens=2M/5h]
`

func TestImport_MergeKeepsAbsentFields(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	createKeys(t, db, "alice")
	mustRun(t, "--db", db, "account", "import", writeFile(t, "accounts.yaml", importFull))
	mustRun(t, "--db", db, "account", "disable", "main")
	before := listJSON(t, db)[0]

	// Rotating the key through import changes the key and nothing else.
	const rotated = "sk-ant-test-FAKE-rotated-0123456789"
	stdout, _ := mustRun(t, "--db", db, "account", "import", writeFile(t, "rotate.yaml",
		"accounts:\n  - name: main\n    api_key: "+rotated+"\n"))
	if want := "imported 1 account (0 created, 1 updated)\n"; stdout != want {
		t.Errorf("import printed %q, want %q", stdout, want)
	}
	after := listJSON(t, db)[0]
	if diff := cmp.Diff(before, after, cmpopts.IgnoreFields(accountJSON{}, "APIKey", "UpdatedAt")); diff != "" {
		t.Errorf("a key rotation changed more (-before +after):\n%s", diff)
	}
	if got := getAccount(t, db, "main").APIKey; got != rotated {
		t.Error("the key was not rotated")
	}

	// A field given empty or zero sets it.
	mustRun(t, "--db", db, "account", "import", writeFile(t, "zero.yaml", `accounts:
  - name: main
    priority: 0
    base_url: ''
    models: []
    owner_keys: []
    limits: []
`))
	a := listJSON(t, db)[0]
	got := []any{a.Priority, a.BaseURL, a.Models, a.OwnerKeys, a.Limits, a.Weight, a.MaxConcurrency, a.Status}
	want := []any{0, "https://api.anthropic.com", []string{}, []string{}, []string{}, 2, 8, "disabled"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after importing empty fields (-want +got):\n%s", diff)
	}
}

func TestImport_MergeKeepsOAuthTokens(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	mustRun(t, "--db", db, "account", "import", writeFile(t, "accounts.yaml", importGood))
	before := getAccount(t, db, "sub")

	// No type and no tokens: still oauth, same tokens, same generation.
	mustRun(t, "--db", db, "account", "import", writeFile(t, "p.yaml", "accounts:\n  - name: sub\n    priority: 4\n"))
	a := getAccount(t, db, "sub")
	if a.Type != "oauth" || a.Priority != 4 || a.AccessToken != before.AccessToken || a.RefreshToken != before.RefreshToken ||
		!a.ExpiresAt.Equal(before.ExpiresAt) || a.TokenGeneration != before.TokenGeneration || a.BaseURL != before.BaseURL {
		t.Errorf("after a priority-only import: type %s priority %d base URL %s, tokens kept %v, generation %d -> %d",
			a.Type, a.Priority, a.BaseURL, a.AccessToken == before.AccessToken && a.RefreshToken == before.RefreshToken,
			before.TokenGeneration, a.TokenGeneration)
	}

	// A new refresh token alone replaces the whole token set.
	mustRun(t, "--db", db, "account", "import", writeFile(t, "r.yaml",
		"accounts:\n  - name: sub\n    refresh_token: sk-ant-ort-test-FAKE-new-0123456789\n"))
	a = getAccount(t, db, "sub")
	if a.RefreshToken != "sk-ant-ort-test-FAKE-new-0123456789" || a.AccessToken != "" || !a.ExpiresAt.IsZero() ||
		a.TokenGeneration != before.TokenGeneration+1 || a.Priority != 4 {
		t.Errorf("after a refresh-token import: access token kept %v, expiry %v, generation %d, priority %d; want the set replaced, generation %d, priority 4",
			a.AccessToken != "", a.ExpiresAt, a.TokenGeneration, a.Priority, before.TokenGeneration+1)
	}
}

func TestImport_TypeChangeNeedsReplace(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	createKeys(t, db, "alice")
	mustRun(t, "--db", db, "account", "import", writeFile(t, "accounts.yaml", importFull+
		"  - name: sub\n    type: oauth\n    refresh_token: sk-ant-ort-test-FAKE-0123456789\n"))
	before := listJSON(t, db)

	toOAuth := `accounts:
  - name: fresh
    api_key: sk-ant-test-FAKE-fresh-0123456789
  - name: main
    type: oauth
    refresh_token: sk-ant-ort-test-FAKE-main-0123456789
`
	tests := []struct {
		name, body string
		want       []string
	}{
		{"explicit type", toOAuth, []string{"accounts.yaml:4:", `account "main" is api_key in the database and oauth in the file`, "--replace"}},
		{"tokens on an api_key account", "accounts:\n  - name: main\n    refresh_token: sk-ant-ort-test-FAKE-0123456789\n",
			[]string{"accounts.yaml:2:", `account "main" is an api_key account and access_token, refresh_token and expires_at are for oauth accounts`, "type: oauth", "--replace"}},
		{"api key on an oauth account", "accounts:\n  - name: sub\n    api_key: sk-ant-test-FAKE-0123456789\n",
			[]string{"accounts.yaml:2:", `account "sub" is an oauth account and api_key is for api_key accounts`, "type: api_key", "--replace"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeFile(t, "accounts.yaml", tt.body)
			_, _, err := run(t, "--db", db, "account", "import", file)
			if err == nil {
				t.Fatal("import succeeded")
			}
			msg := strings.ReplaceAll(err.Error(), file, "accounts.yaml")
			if !strings.HasPrefix(msg, tt.want[0]) {
				t.Errorf("err = %q, want it to start with %q", msg, tt.want[0])
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("err = %q, want it to contain %q", msg, w)
				}
			}
			if strings.Contains(msg, "FAKE") {
				t.Errorf("error shows a secret: %q", msg)
			}
		})
	}
	// Nothing was written, not even the other account of the file.
	if diff := cmp.Diff(before, listJSON(t, db)); diff != "" {
		t.Errorf("refused imports changed accounts (-before +after):\n%s", diff)
	}

	// With --replace the file's account replaces the stored one whole.
	stdout, _ := mustRun(t, "--db", db, "account", "import", "--replace", writeFile(t, "accounts.yaml", toOAuth))
	if want := "imported 2 accounts (1 created, 1 updated)\n"; stdout != want {
		t.Errorf("import --replace printed %q, want %q", stdout, want)
	}
	a := getAccount(t, db, "main")
	got := []any{a.Type, a.APIKey, a.RefreshToken, a.BaseURL, a.Priority, a.Weight, a.Models, a.OwnerKeys, a.Limits}
	want := []any{llmgw.AccountOAuth, "", "sk-ant-ort-test-FAKE-main-0123456789", "https://api.anthropic.com", 0, 1,
		[]string(nil), []string(nil), []llmgw.Limit(nil)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("main after import --replace (-want +got):\n%s", diff)
	}
	if a.ID != before[0].ID {
		t.Errorf("ID %d after --replace, want %d (kept)", a.ID, before[0].ID)
	}
}

func TestImport_FromStdin(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	stdout, err := importStdin(t, db, importGood)
	if err != nil {
		t.Fatal(err)
	}
	if want := "imported 2 accounts (2 created, 0 updated)\n"; stdout != want {
		t.Errorf("import - printed %q, want %q", stdout, want)
	}
	if n := len(listJSON(t, db)); n != 2 {
		t.Errorf("%d accounts after import -, want 2", n)
	}
	_, err = importStdin(t, db, "accounts:\n  - name: x\n    wieght: 2\n")
	wantErr(t, err, "stdin:3:", `unknown field "wieght"`)
	_, err = importStdin(t, db, "accounts:\n  - name: main\n    type: oauth\n    refresh_token: sk-ant-ort-test-FAKE-0123456789\n", "--replace")
	if err != nil {
		t.Fatalf("import --replace -: %v", err)
	}
	if a := getAccount(t, db, "main"); a.Type != llmgw.AccountOAuth {
		t.Errorf("type after import --replace - = %s, want oauth", a.Type)
	}
}

func TestImport_Limits(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	mustRun(t, "--db", db, "account", "import", writeFile(t, "accounts.yaml", `accounts:
  - name: list
    api_key: sk-ant-test-FAKE-list-0123456789
    limits: [usd=100/day, tokens=2M/5h]
  - name: string
    api_key: sk-ant-test-FAKE-string-0123456789
    limits: "requests=60/1m, usd=1000/month"
  - name: none
    api_key: sk-ant-test-FAKE-none-0123456789
`))
	var got [][]string
	for _, a := range listJSON(t, db) {
		got = append(got, a.Limits)
	}
	want := [][]string{{"usd=100.00/day", "tokens=2M/5h"}, {"requests=60/1m", "usd=1000.00/month"}, {}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("imported limits (-want +got):\n%s", diff)
	}
	before := listJSON(t, db)

	for _, tt := range []struct{ body, want string }{
		{"accounts:\n  - name: list\n    limits: [usd=1/fortnight]\n", `accounts.yaml:3: limits: malformed limit "usd=1/fortnight"`},
		{"accounts:\n  - name: list\n    limits: usd=1/day,usd=2/day\n", "accounts.yaml:3: limits: invalid: two usd limits per day"},
		{"accounts:\n  - name: list\n    limits: {usd: 1}\n", "accounts.yaml:3: limits must be a list"},
	} {
		file := writeFile(t, "accounts.yaml", tt.body)
		_, _, err := run(t, "--db", db, "account", "import", file)
		if err == nil {
			t.Fatalf("import of %q succeeded", tt.body)
		}
		if msg := strings.ReplaceAll(err.Error(), file, "accounts.yaml"); !strings.Contains(msg, tt.want) {
			t.Errorf("err = %q, want it to contain %q", msg, tt.want)
		}
	}
	if diff := cmp.Diff(before, listJSON(t, db)); diff != "" {
		t.Errorf("refused imports changed accounts (-before +after):\n%s", diff)
	}
}

func TestImport_OwnerKeyMustExist(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	createKeys(t, db, "alice")
	body := `accounts:
  - name: a
    api_key: sk-ant-test-FAKE-a-0123456789
    owner_keys: [alice]
  - name: b
    api_key: sk-ant-test-FAKE-b-0123456789
    owner_keys: [alice, alcie]
`
	file := writeFile(t, "accounts.yaml", body)
	_, _, err := run(t, "--db", db, "account", "import", file)
	if err == nil {
		t.Fatal("import succeeded")
	}
	msg := strings.ReplaceAll(err.Error(), file, "accounts.yaml")
	if want := `accounts.yaml:7: account "b": owner_keys "alcie": no live client key has that name: see "llmgw key list"`; !strings.Contains(msg, want) {
		t.Errorf("err = %q, want it to contain %q", msg, want)
	}
	if n := len(listJSON(t, db)); n != 0 {
		t.Errorf("%d accounts after a refused import, want 0", n)
	}
	// A static key of the config file counts.
	cfg := writeFile(t, "llmgw.yaml", "auth:\n  api_keys:\n    - name: alcie\n      key: sk-static-FAKE-0123456789\n")
	mustRun(t, "--db", db, "--config", cfg, "account", "import", file)
}

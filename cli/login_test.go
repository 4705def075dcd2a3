package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/oauth"
	"github.com/llmgw/llmgw/oauth/oauthtest"
	"github.com/llmgw/llmgw/store"
)

// oauthConfigFile writes a config file whose oauth section aims at s.
func oauthConfigFile(t *testing.T, s *oauthtest.Server) string {
	t.Helper()
	c := s.Config()
	return writeFile(t, "llmgw.yaml", fmt.Sprintf("oauth:\n  authorize_url: %s\n  token_url: %s\n  client_id: %s\n  redirect_uri: %s\n",
		c.AuthorizeURL, c.TokenURL, c.ClientID, c.RedirectURI))
}

// loginRun is "llmgw account login" running in the background, with its
// stdin and stdout connected to the test.
type loginRun struct {
	url    string         // the first line of stdout
	stdin  *io.PipeWriter // what the user types
	done   chan error     // the command's result
	rest   chan string    // the rest of stdout, once the command is done
	stderr *bytes.Buffer  // read only after done
}

// startLogin runs llmgw with args (a login) and waits for the authorize URL.
func startLogin(t *testing.T, args ...string) *loginRun {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	r := &loginRun{stdin: inW, done: make(chan error, 1), rest: make(chan string, 1), stderr: &bytes.Buffer{}}
	app := New(outW, r.stderr)
	app.Reader = inR
	go func() {
		err := app.RunContext(context.Background(), append([]string{"llmgw"}, args...))
		_ = outW.Close()
		r.done <- err
	}()
	t.Cleanup(func() { _ = inW.Close() }) // ends the command's stdin reader
	br := bufio.NewReader(outR)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("no authorize URL on stdout: %v (command: %v)", err, <-r.done)
	}
	r.url = strings.TrimRight(line, "\n")
	go func() {
		b, _ := io.ReadAll(br)
		r.rest <- string(b)
	}()
	return r
}

// finish waits for the command and returns its error and remaining stdout.
func (r *loginRun) finish(t *testing.T) (string, error) {
	t.Helper()
	select {
	case err := <-r.done:
		return <-r.rest, err
	case <-time.After(30 * time.Second):
		t.Fatal("login did not finish")
		return "", nil
	}
}

// dbHandle opens the test database through the store, closed at the end.
func dbHandle(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := openStore(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func getAccount(t *testing.T, path, name string) *llmgw.Account {
	t.Helper()
	a, err := dbHandle(t, path).GetAccount(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAccountLogin_PastedCode(t *testing.T) {
	t.Parallel()
	forms := []struct {
		name  string
		paste func(code, state, redirect string) string
	}{
		{"code#state", func(code, state, _ string) string { return code + "#" + state }},
		{"callback URL", func(code, state, redirect string) string {
			return redirect + "?" + url.Values{"code": {code}, "state": {state}}.Encode()
		}},
		{"bare code", func(code, _, _ string) string { return code }},
	}
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			s := oauthtest.NewServer(t)
			db, cfg := newDB(t), oauthConfigFile(t, s)
			createKeys(t, db, "alice")
			r := startLogin(t, "--db", db, "--config", cfg, "account", "login", "--name", "alice-max",
				"--owner-key", "alice", "--priority", "2", "--models", "claude-*")

			u, err := url.Parse(r.url)
			if err != nil || u.Scheme != "http" || !strings.HasPrefix(r.url, s.URL+oauthtest.AuthorizePath+"?") {
				t.Fatalf("first stdout line %q is not the authorize URL", r.url)
			}
			code, state := s.Authorize(t, r.url) // the user approves in a browser
			if _, err := fmt.Fprintln(r.stdin, f.paste(code, state, u.Query().Get("redirect_uri"))); err != nil {
				t.Fatalf("paste the code: %v", err)
			}
			out, err := r.finish(t)
			if err != nil {
				t.Fatalf("login: %v\nstderr: %s", err, r.stderr)
			}
			if !strings.Contains(out, "logged in as "+oauthtest.Email+": added account alice-max (oauth") {
				t.Errorf("login printed %q", out)
			}

			a := getAccount(t, db, "alice-max")
			if a.Type != llmgw.AccountOAuth || !s.AccessTokenValid(a.AccessToken) || !s.RefreshTokenValid(a.RefreshToken) {
				t.Errorf("stored account %s type %s with tokens the server does not know", a.Name, a.Type)
			}
			got := []any{a.Email, a.AccountUUID, a.OrganizationUUID, a.Priority, a.Models, a.OwnerKeys, a.Scopes, a.State.Status}
			want := []any{oauthtest.Email, oauthtest.AccountUUID, oauthtest.OrganizationUUID, 2, []string{"claude-*"},
				[]string{"alice"}, oauth.DefaultScopes(), llmgw.StatusActive}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("stored account (-want +got):\n%s", diff)
			}
			if d := time.Until(a.ExpiresAt); d <= 50*time.Minute || d > time.Hour {
				t.Errorf("expiry in %v, want about the fake server's hour", d)
			}
			for _, o := range []string{out, r.stderr.String()} {
				if strings.Contains(o, a.AccessToken) || strings.Contains(o, a.RefreshToken) || strings.Contains(o, code) {
					t.Errorf("output shows a secret: %q", o)
				}
			}
		})
	}
}

func TestAccountLogin_WrongStateRefused(t *testing.T) {
	t.Parallel()
	s := oauthtest.NewServer(t)
	db, cfg := newDB(t), oauthConfigFile(t, s)
	r := startLogin(t, "--db", db, "--config", cfg, "account", "login", "--name", "mallory")
	code, _ := s.Authorize(t, r.url)
	if _, err := fmt.Fprintln(r.stdin, code+"#state-of-another-login"); err != nil {
		t.Fatalf("paste the code: %v", err)
	}
	_, err := r.finish(t)
	wantErr(t, err, "state does not match")
	if accts := listJSON(t, db); len(accts) != 0 {
		t.Errorf("accounts after a refused login: %+v, want none", accts)
	}
	if n := s.ExchangeCalls(); n != 0 {
		t.Errorf("%d code exchanges, want 0", n)
	}
}

func TestAccountLogin_EmptyStdin(t *testing.T) {
	t.Parallel()
	s := oauthtest.NewServer(t)
	db := newDB(t)
	var out, errOut bytes.Buffer
	app := New(&out, &errOut)
	app.Reader = strings.NewReader("")
	err := app.RunContext(context.Background(), []string{"llmgw", "--db", db, "--config", oauthConfigFile(t, s),
		"account", "login", "--name", "x"})
	wantErr(t, err, "no code on stdin")
}

func TestAccountLogin_Listen(t *testing.T) {
	t.Parallel()
	s := oauthtest.NewServer(t)
	db, cfg := newDB(t), oauthConfigFile(t, s)
	r := startLogin(t, "--db", db, "--config", cfg, "account", "login", "--name", "desk", "--listen", "0")
	u, err := url.Parse(r.url)
	if err != nil {
		t.Fatal(err)
	}
	redirect := u.Query().Get("redirect_uri")
	if !regexp.MustCompile(`^http://localhost:[1-9][0-9]*/callback$`).MatchString(redirect) {
		t.Fatalf("redirect_uri = %q, want http://localhost:PORT/callback", redirect)
	}
	code, state := s.Authorize(t, r.url)
	// The browser comes back to the loopback listener (on 127.0.0.1).
	cb := strings.Replace(redirect, "localhost", "127.0.0.1", 1) + "?" + url.Values{"code": {code}, "state": {state}}.Encode()
	res, err := http.Get(cb)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "close this window") {
		t.Errorf("callback answered %d %q", res.StatusCode, body)
	}
	if _, err := r.finish(t); err != nil {
		t.Fatalf("login: %v\nstderr: %s", err, r.stderr)
	}
	if a := getAccount(t, db, "desk"); !s.AccessTokenValid(a.AccessToken) {
		t.Error("stored access token is not the one the server issued")
	}
	if !strings.Contains(r.stderr.String(), redirect) {
		t.Errorf("stderr does not say where it waits: %q", r.stderr)
	}
}

// login runs a whole login for name against s and returns the stored account.
func loginAccount(t *testing.T, s *oauthtest.Server, db, cfg, name string, extra ...string) *llmgw.Account {
	t.Helper()
	r := startLogin(t, append([]string{"--db", db, "--config", cfg, "account", "login", "--name", name}, extra...)...)
	code, state := s.Authorize(t, r.url)
	if _, err := fmt.Fprintln(r.stdin, code+"#"+state); err != nil {
		t.Fatalf("paste the code: %v", err)
	}
	if _, err := r.finish(t); err != nil {
		t.Fatalf("login: %v\nstderr: %s", err, r.stderr)
	}
	return getAccount(t, db, name)
}

func TestAccountLogin_AgainReplacesTokens(t *testing.T) {
	t.Parallel()
	s := oauthtest.NewServer(t)
	db, cfg := newDB(t), oauthConfigFile(t, s)
	createKeys(t, db, "alice")
	first := loginAccount(t, s, db, cfg, "max", "--weight", "4", "--owner-key", "alice")
	// The refresh token died meanwhile and the account went to error.
	if err := dbHandle(t, db).SetAccountStatus(context.Background(), "max", llmgw.StatusError, "refresh token rejected"); err != nil {
		t.Fatal(err)
	}
	second := loginAccount(t, s, db, cfg, "max")
	if second.AccessToken == first.AccessToken || second.TokenGeneration != first.TokenGeneration+1 {
		t.Errorf("generation %d -> %d; want new tokens and the generation moved on", first.TokenGeneration, second.TokenGeneration)
	}
	if second.Weight != 4 || !cmp.Equal(second.OwnerKeys, []string{"alice"}) || second.State.Status != llmgw.StatusActive {
		t.Errorf("after re-login weight %d owners %v status %s; want settings kept and active", second.Weight, second.OwnerKeys, second.State.Status)
	}

	mustRun(t, "--db", db, "account", "add", "--name", "key", "--api-key", testAPIKey)
	// Refused before any URL is shown.
	stdout, _, err := run(t, "--db", db, "--config", cfg, "account", "login", "--name", "key")
	wantErr(t, err, `account "key" is an api_key account`)
	if stdout != "" {
		t.Errorf("login printed %q before refusing", stdout)
	}
}

func TestAccountRefresh(t *testing.T) {
	t.Parallel()
	s := oauthtest.NewServer(t)
	db, cfg := newDB(t), oauthConfigFile(t, s)
	before := loginAccount(t, s, db, cfg, "max")
	stdout, stderr := mustRun(t, "--db", db, "--config", cfg, "account", "refresh", "max")
	if !regexp.MustCompile(`^refreshed account max: token expires in \d+m\n$`).MatchString(stdout) {
		t.Errorf("refresh printed %q", stdout)
	}
	after := getAccount(t, db, "max")
	if after.AccessToken == before.AccessToken || after.RefreshToken == before.RefreshToken ||
		!s.RefreshTokenValid(after.RefreshToken) || after.TokenGeneration != before.TokenGeneration+1 {
		t.Error("refresh did not store a new valid pair")
	}
	if s.RefreshCalls() != 1 || strings.Contains(stdout+stderr, after.AccessToken) {
		t.Errorf("%d refresh calls (want 1), or the token was printed", s.RefreshCalls())
	}

	// A dead refresh token: status error, with the fix in the reason.
	s.Revoke(after.RefreshToken)
	_, _, err := run(t, "--db", db, "--config", cfg, "account", "refresh", "max")
	wantErr(t, err, `refresh token rejected (invalid_grant): run "llmgw account login --name max"`)
	if a := listJSON(t, db)[0]; a.Status != "error" || !strings.Contains(a.Reason, "llmgw account login --name max") {
		t.Errorf("after invalid_grant: status %q reason %q", a.Status, a.Reason)
	}

	mustRun(t, "--db", db, "account", "add", "--name", "key", "--api-key", testAPIKey)
	_, _, err = run(t, "--db", db, "account", "refresh", "key")
	wantErr(t, err, "only oauth accounts")
	_, _, err = run(t, "--db", db, "account", "refresh", "nope")
	wantErr(t, err, `account "nope" not found`)
}

func TestAccountRefresh_EnvironmentEndpoints(t *testing.T) {
	// Not parallel: sets environment variables.
	s := oauthtest.NewServer(t)
	c := s.Config()
	db := newDB(t)
	access, refresh, _ := s.Mint()
	creds := writeFile(t, "credentials.json", fmt.Sprintf(`{"claudeAiOauth":{"accessToken":%q,"refreshToken":%q,"expiresAt":%d,"scopes":["user:inference","user:profile"],"subscriptionType":"max"}}`,
		access, refresh, time.Now().Add(time.Hour).UnixMilli()))
	mustRun(t, "--db", db, "account", "import", "--claude-credentials", creds, "--name", "cc")
	// Only the token URL matters for a refresh; the client id comes from a
	// config file, as the fake server does not accept the real one.
	cfg := writeFile(t, "llmgw.yaml", "oauth:\n  client_id: "+c.ClientID+"\n")
	t.Setenv(oauthTokenURLEnv, c.TokenURL)
	t.Setenv(oauthAuthorizeURLEnv, c.AuthorizeURL)
	mustRun(t, "--db", db, "--config", cfg, "account", "refresh", "cc")
	if s.RefreshCalls() != 1 {
		t.Errorf("%d refresh calls at the environment's token URL, want 1", s.RefreshCalls())
	}
}

func TestConfig_OAuthPrecedence(t *testing.T) {
	// Not parallel: sets environment variables.
	t.Setenv(oauthAuthorizeURLEnv, "http://env.example/authorize")
	t.Setenv(oauthTokenURLEnv, "http://env.example/token")
	cfg, err := LoadConfig(writeFile(t, "llmgw.yaml", "oauth:\n  token_url: http://file.example/token\n  scopes: [user:inference]\n  refresh_lead_seconds: 600\n"))
	if err != nil {
		t.Fatal(err)
	}
	oc := cfg.OAuthConfig()
	got := []any{oc.AuthorizeURL, oc.TokenURL, oc.ClientID, oc.RedirectURI, oc.Scopes, oc.RefreshLead}
	// The environment wins over the file.
	want := []any{"http://env.example/authorize", "http://env.example/token", oauth.DefaultClientID, oauth.DefaultRedirectURI,
		[]string{"user:inference"}, 10 * time.Minute}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("OAuthConfig (-want +got):\n%s", diff)
	}

	for body, msg := range map[string]string{
		"oauth:\n  token_ur: http://x\n":          `line 2: unknown key "token_ur"`,
		"oauth:\n  token_url: ftp://x\n":          "oauth.token_url",
		"oauth:\n  refresh_lead_seconds: -1\n":    "oauth.refresh_lead_seconds",
		"oauth:\n  scopes: [\"user:a user:b\"]\n": "oauth.scopes",
	} {
		_, err := LoadConfig(writeFile(t, "bad.yaml", body))
		wantErr(t, err, msg)
	}
}

func TestAccountImport_ClaudeCredentials(t *testing.T) {
	t.Parallel()
	s := oauthtest.NewServer(t)
	db, cfg := newDB(t), oauthConfigFile(t, s)
	access, refresh, _ := s.Mint()
	expires := time.Now().Add(5 * time.Hour).Truncate(time.Millisecond)
	createKeys(t, db, "alice")
	creds := writeFile(t, ".credentials.json", fmt.Sprintf(`{"claudeAiOauth":{"accessToken":%q,"refreshToken":%q,"expiresAt":%d,"scopes":["user:inference","user:profile"],"subscriptionType":"max","rateLimitTier":"default_claude_max_20x"}}`,
		access, refresh, expires.UnixMilli()))
	stdout, stderr := mustRun(t, "--db", db, "--config", cfg, "account", "import", "--claude-credentials", creds,
		"--name", "cc", "--owner-key", "alice", "--priority", "3")
	if !strings.Contains(stdout, "imported Claude Code credentials into account cc (oauth, max subscription); token expires in 4h59m") {
		t.Errorf("import printed %q", stdout)
	}
	if !strings.Contains(stderr, "share one rotating refresh token") {
		t.Errorf("no note about the shared refresh token: %q", stderr)
	}
	if strings.Contains(stdout+stderr, access) || strings.Contains(stdout+stderr, refresh) {
		t.Error("import printed a token")
	}
	a := getAccount(t, db, "cc")
	got := []any{a.Type, a.AccessToken == access, a.RefreshToken == refresh, a.ExpiresAt.Equal(expires), a.Scopes, a.OwnerKeys, a.Priority}
	want := []any{llmgw.AccountOAuth, true, true, true, []string{"user:inference", "user:profile"}, []string{"alice"}, 3}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("imported account (-want +got):\n%s", diff)
	}
	// The imported tokens work.
	mustRun(t, "--db", db, "--config", cfg, "account", "refresh", "cc")
	if a := getAccount(t, db, "cc"); a.Email != oauthtest.Email {
		t.Errorf("email after the first refresh = %q, want it learnt", a.Email)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--claude-credentials", creds}, "--name is required"},
		{[]string{"--claude-credentials", writeFile(t, "x.json", `{"other":{}}`), "--name", "x"}, "no claudeAiOauth tokens"},
		{[]string{"--claude-credentials", writeFile(t, "y.json", `not json `+access), "--name", "x"}, "not a Claude Code credentials file"},
		{[]string{"--name", "x", writeFile(t, "a.yaml", "accounts: []\n")}, "--name only goes with --claude-credentials"},
	} {
		_, _, err := run(t, append([]string{"--db", db, "account", "import"}, tt.args...)...)
		wantErr(t, err, tt.want)
		if err != nil && strings.Contains(err.Error(), access) {
			t.Errorf("error shows a token: %v", err)
		}
	}
}

func TestAccountList_OAuthDetails(t *testing.T) {
	t.Parallel()
	s := oauthtest.NewServer(t)
	db, cfg := newDB(t), oauthConfigFile(t, s)
	createKeys(t, db, "alice", "bob")
	a := loginAccount(t, s, db, cfg, "max", "--owner-key", "alice", "--owner-key", "bob")
	mustRun(t, "--db", db, "account", "add", "--name", "plain", "--api-key", testAPIKey)

	// The server saw the subscription windows on a response.
	h := dbHandle(t, db)
	w := store.NewUsageWriter(h, store.UsageWriterOptions{})
	now := time.Now()
	w.RecordWindows(a.ID, llmgw.Windows{
		Status:   "allowed_warning",
		FiveHour: llmgw.Window{Status: "allowed_warning", Utilization: 0.91, ResetsAt: now.Add(2*time.Hour + 30*time.Minute)},
		SevenDay: llmgw.Window{Status: "allowed", Utilization: 0.4, ResetsAt: now.Add(72 * time.Hour)},
		At:       now,
	})
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	table, _ := mustRun(t, "--db", db, "account", "list")
	for _, want := range []string{"EXPIRES IN", "LAST REFRESH", "5H WINDOW", "7D WINDOW", "OWNER KEYS",
		oauthtest.Email, "91% allowed_warning, resets in 2h", "40% allowed, resets in 2d23h", "alice,bob"} {
		if !strings.Contains(table, want) {
			t.Errorf("list lacks %q:\n%s", want, table)
		}
	}
	if !regexp.MustCompile(`(?m)^max\s+\S+\s+\d+m\s`).MatchString(table) {
		t.Errorf("list has no expiry for max:\n%s", table)
	}
	show, _ := mustRun(t, "--db", db, "account", "show", "max")
	for _, want := range []string{"expires in:", "last refresh:", "5h window:", "91% allowed_warning", "7d window:", "owner keys:", "alice,bob", "email:"} {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %q:\n%s", want, show)
		}
	}

	var got []accountJSON
	stdout, _ := mustRun(t, "--db", db, "account", "list", "--json")
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	m, p := got[0], got[1]
	if m.Windows == nil || m.Windows.FiveHour.Utilization != 0.91 || m.Windows.SevenDay.Status != "allowed" ||
		!regexp.MustCompile(`^\d+m$`).MatchString(m.ExpiresIn) || m.LastRefresh == nil || m.Email != oauthtest.Email ||
		!cmp.Equal(m.OwnerKeys, []string{"alice", "bob"}) {
		t.Errorf("oauth account JSON = %+v", m)
	}
	if p.Windows != nil || p.ExpiresIn != "" || p.LastRefresh != nil || !cmp.Equal(p.OwnerKeys, []string{}) {
		t.Errorf("api-key account JSON has OAuth fields: %+v", p)
	}
	for _, out := range []string{table, show, stdout} {
		if strings.Contains(out, a.AccessToken) || strings.Contains(out, a.RefreshToken) {
			t.Error("output shows a token")
		}
	}
}

func TestAccount_OwnerKeys(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	createKeys(t, db, "alice", "bob", "carol", "dave")
	mustRun(t, "--db", db, "account", "add", "--name", "bound", "--api-key", testAPIKey, "--owner-key", "bob", "--owner-key", "alice")
	mustRun(t, "--db", db, "account", "import", writeFile(t, "a.yaml", `accounts:
  - name: team
    api_key: sk-ant-test-FAKE-team-0123456789
    owner_keys: [carol, dave]
  - name: open
    api_key: sk-ant-test-FAKE-open-0123456789
`))
	var got [][]string
	for _, a := range listJSON(t, db) {
		got = append(got, a.OwnerKeys)
	}
	if diff := cmp.Diff([][]string{{"alice", "bob"}, {"carol", "dave"}, {}}, got); diff != "" {
		t.Errorf("owner keys (-want +got):\n%s", diff)
	}
	table, _ := mustRun(t, "--db", db, "account", "list")
	if !strings.Contains(table, "alice,bob") || !strings.Contains(table, "carol,dave") {
		t.Errorf("list does not show owner keys:\n%s", table)
	}
	_, _, err := run(t, "--db", db, "account", "add", "--name", "x", "--api-key", testAPIKey, "--owner-key", "a b")
	// Key names have no spaces, so this is an unknown key before it is a
	// malformed name.
	wantErr(t, err, `--owner-key "a b": no live client key has that name`)
}

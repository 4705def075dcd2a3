package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/oauth"
	"github.com/llmgw/llmgw/store"
)

// The store is the oauth package's TokenStore; store does not import oauth,
// so the check lives here, where both are wired.
var _ oauth.TokenStore = (*store.DB)(nil)

// oauthHelp is the part of the login, refresh and import help about where
// the OAuth endpoints come from, and about the terms.
const oauthHelp = `The authorize and token endpoints, client id, scopes and redirect URI are the
real Claude Code ones unless overridden: command-line flags (--listen) first,
then the config file's "oauth:" section (authorize_url, token_url,
client_id, redirect_uri, scopes, refresh_lead_seconds), then the environment
variables LLMGW_OAUTH_AUTHORIZE_URL and LLMGW_OAUTH_TOKEN_URL.

Anthropic's terms restrict Free/Pro/Max subscription credentials to the
subscriber's own use of Claude Code and Claude.ai: bind such an account to its
owner's client keys with --owner-key, and use API-key accounts for pooled team
use.`

// oauthConfig is the OAuth configuration for a CLI command: the config
// file's (see Config.OAuthConfig) with the command's logger.
func (e *appEnv) oauthConfig(log *slog.Logger) oauth.Config {
	cfg := e.cfg.OAuthConfig()
	cfg.Logger = log
	return cfg
}

// accountFlags are the configuration flags login and import share with add.
func accountFlags() []urfave.Flag {
	return []urfave.Flag{
		&urfave.StringFlag{Name: "base-url", Usage: "upstream base `URL` (default: config, else $LLMGW_ANTHROPIC_BASE_URL, else https://api.anthropic.com)"},
		&urfave.IntFlag{Name: "priority", Usage: "priority `N`; lower is tried first"},
		&urfave.IntFlag{Name: "weight", Value: 1, Usage: "relative share `N` of traffic within a priority"},
		&urfave.IntFlag{Name: "max-concurrency", Usage: "most simultaneous requests `N`; 0 is unlimited"},
		&urfave.StringFlag{Name: "models", Usage: "comma-separated model glob `PATTERNS`; empty allows every model"},
		ownerKeyFlag(),
	}
}

func ownerKeyFlag() urfave.Flag {
	return &urfave.StringSliceFlag{Name: "owner-key", Usage: "serve only the client key named `KEYNAME` (repeatable); default: every key"}
}

// applyAccountFlags sets the configuration of a from the flags: every flag
// for a new account, only the flags given for an existing one.
func applyAccountFlags(c *urfave.Context, a *llmgw.Account, isNew bool, defaultBaseURL string) {
	set := func(name string) bool { return isNew || c.IsSet(name) }
	if set("base-url") {
		a.BaseURL = c.String("base-url")
	}
	if a.BaseURL == "" {
		a.BaseURL = defaultBaseURL
	}
	if set("priority") {
		a.Priority = c.Int("priority")
	}
	if set("weight") {
		a.Weight = c.Int("weight")
	}
	if set("max-concurrency") {
		a.MaxConcurrency = c.Int("max-concurrency")
	}
	if set("models") {
		a.Models = splitList(c.String("models"))
	}
	if set("owner-key") {
		a.OwnerKeys = ownerKeys(c)
	}
}

// ownerKeys returns the --owner-key values, commas also splitting.
func ownerKeys(c *urfave.Context) []string {
	var out []string
	for _, v := range c.StringSlice("owner-key") {
		out = append(out, splitList(v)...)
	}
	return out
}

// keyNames returns the names an account may be bound to: every live
// (unrevoked) client key in db and every static key of the config file.
// Expired keys count: renewing one brings its accounts back.
func (e *appEnv) keyNames(ctx context.Context, db *store.DB) (map[string]bool, error) {
	keys, err := db.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("check owner keys: %w", err)
	}
	names := make(map[string]bool, len(keys)+len(e.cfg.Auth.APIKeys))
	for _, k := range keys {
		if k.RevokedAt.IsZero() {
			names[k.Name] = true
		}
	}
	for _, k := range e.cfg.Auth.APIKeys {
		names[k.Name] = true
	}
	return names, nil
}

// unknownOwnerKey returns an error naming the first of owners that is not
// in known, or nil. where says which input named it (--owner-key,
// owner_keys). The store takes any name (a binding may outlive its key);
// the CLI refuses new ones no key has, because an account bound only to
// such a name silently serves nobody.
func unknownOwnerKey(known map[string]bool, owners []string, where string) error {
	for _, o := range owners {
		if !known[o] {
			return fmt.Errorf("%s %q: no live client key has that name: see \"llmgw key list\" (or the config file's auth.api_keys)", where, o)
		}
	}
	return nil
}

// checkOwnerKeyFlag refuses --owner-key names no client key has.
func (e *appEnv) checkOwnerKeyFlag(c *urfave.Context, db *store.DB) error {
	owners := ownerKeys(c)
	if len(owners) == 0 {
		return nil
	}
	known, err := e.keyNames(c.Context, db)
	if err != nil {
		return err
	}
	return unknownOwnerKey(known, owners, "--owner-key")
}

// existingOAuth returns the named account if it exists (and is OAuth), nil
// if there is none.
func existingOAuth(ctx context.Context, db *store.DB, name string) (*llmgw.Account, error) {
	a, err := db.GetAccount(ctx, name)
	switch {
	case errors.Is(err, llmgw.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("account %s: %w", name, err)
	case a.Type != llmgw.AccountOAuth:
		return nil, fmt.Errorf("account %q is an %s account: choose another name, or remove it first", name, a.Type)
	}
	return a, nil
}

// storeOAuth stores an OAuth account (new or with replaced tokens) and, if
// its last status was error (a dead refresh token), makes it active again:
// the new tokens are the fix.
func storeOAuth(ctx context.Context, db *store.DB, a *llmgw.Account, old *llmgw.Account) error {
	if _, _, err := db.UpsertAccounts(ctx, []llmgw.Account{*a}); err != nil {
		return fmt.Errorf("store account %s: %w", a.Name, err)
	}
	if old != nil && old.State.Status == llmgw.StatusError {
		if err := db.SetAccountStatus(ctx, a.Name, llmgw.StatusActive, ""); err != nil {
			return fmt.Errorf("enable account %s: %w", a.Name, err)
		}
	}
	return nil
}

func accountLoginCommand(env *appEnv) *urfave.Command {
	return &urfave.Command{
		Name:      "login",
		Usage:     "log a Claude subscription (Claude Code OAuth) account in",
		UsageText: "llmgw account login --name NAME [--listen PORT] [--base-url URL] [--priority N] [--weight N] [--max-concurrency N] [--models PATTERN,...] [--owner-key KEYNAME]...",
		Description: `Logs in with Claude Code's OAuth flow (PKCE) and stores the account as type
oauth. It prints the authorize URL alone on one line of stdout: open it in any
browser, sign in and approve, then paste the code the page shows (CODE#STATE)
on stdin and press Enter. A full callback URL or a bare code also works. Stdin
need not be a terminal.

--listen PORT also waits for the browser on http://localhost:PORT/callback
(listening on 127.0.0.1:PORT), for a desktop browser on the same machine;
pasting still works, whichever comes first. PORT 0 picks a free port.

Running login again for an existing name replaces its tokens (and clears an
error status); other settings change only where a flag is given. A running
server picks the new tokens up within a second, and from then on refreshes
them by itself.

` + oauthHelp + `

Example:
  llmgw account login --name alice-max --owner-key alice
  llmgw account login --name bob-pro --listen 54545`,
		Flags: append([]urfave.Flag{
			&urfave.StringFlag{Name: "name", Usage: "unique account `NAME` (no spaces)"},
			&urfave.IntFlag{Name: "listen", Usage: "also take the browser's callback on 127.0.0.1:`PORT` (redirect http://localhost:PORT/callback)"},
		}, accountFlags()...),
		Action: func(c *urfave.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			name := c.String("name")
			if name == "" {
				return errors.New("--name is required: llmgw account login --name NAME")
			}
			log, closeLog, err := env.logger()
			if err != nil {
				return err
			}
			defer closeLog() //nolint:errcheck // the command's own error matters more
			return env.withDB(c.Context, func(db *store.DB) error {
				return login(c, env, db, log, name)
			})
		},
	}
}

// login runs "account login" on an open database.
func login(c *urfave.Context, env *appEnv, db *store.DB, log *slog.Logger, name string) error {
	ctx := c.Context
	old, err := existingOAuth(ctx, db, name)
	if err != nil {
		return err
	}
	if err := env.checkOwnerKeyFlag(c, db); err != nil {
		return err
	}
	a := llmgw.Account{Name: name, Type: llmgw.AccountOAuth}
	if old != nil {
		a = *old
	}
	applyAccountFlags(c, &a, old == nil, env.cfg.DefaultBaseURL())
	// Check the settings before the user goes through the browser.
	check := a
	check.RefreshToken = "placeholder"
	if err := check.Validate(); err != nil {
		return err
	}

	cfg := env.oauthConfig(log)
	var ln net.Listener
	if c.IsSet("listen") {
		port := c.Int("listen")
		if port < 0 || port > 65535 {
			return fmt.Errorf("--listen %d is not a port", port)
		}
		if ln, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err != nil {
			return fmt.Errorf("listen for the callback: %w", err)
		}
		defer func() { _ = ln.Close() }() // srv.Close may have closed it already
		cfg.RedirectURI = oauth.LoopbackRedirectURI(ln.Addr().(*net.TCPAddr).Port)
	}
	l, err := oauth.NewLogin(cfg)
	if err != nil {
		return err
	}

	// The prompts go to stderr, the URL to stdout: only the URL must get out.
	_, _ = fmt.Fprintln(c.App.ErrWriter, "Open this URL in a browser, sign in with the Claude account and approve:")
	if _, err := fmt.Fprintln(c.App.Writer, l.URL); err != nil {
		return err
	}
	if ln != nil {
		_, _ = fmt.Fprintf(c.App.ErrWriter, "Waiting for the browser on %s, or paste the code the page shows (CODE#STATE) and press Enter:\n", cfg.RedirectURI)
	} else {
		_, _ = fmt.Fprintln(c.App.ErrWriter, "Then paste the code the page shows (CODE#STATE) here and press Enter:")
	}
	code, err := awaitCode(ctx, l, c.App.Reader, ln)
	if err != nil {
		return err
	}
	g, err := l.Exchange(ctx, code)
	if err != nil {
		return err
	}

	now := env.now()
	a.AccessToken, a.RefreshToken, a.ExpiresAt = g.Token.AccessToken, g.Token.RefreshToken, g.Token.Expiry
	a.Scopes, a.Email, a.AccountUUID, a.OrganizationUUID = g.Scopes, g.Email, g.AccountUUID, g.OrganizationUUID
	a.LastRefresh = now
	if err := a.Validate(); err != nil {
		return err
	}
	if err := storeOAuth(ctx, db, &a, old); err != nil {
		return err
	}
	verb := "added"
	if old != nil {
		verb = "replaced the tokens of"
	}
	who := ""
	if a.Email != "" {
		who = " as " + a.Email
	}
	_, err = fmt.Fprintf(c.App.Writer, "logged in%s: %s account %s (oauth, %s); token expires in %s\n",
		who, verb, a.Name, a.BaseURL, expiresIn(a.ExpiresAt, now))
	return err
}

// awaitCode returns the authorization code from the first of: a line on in,
// or (if ln is not nil) the browser's callback on ln. An empty stdin is an
// error only without a listener.
//
// The goroutine reading in cannot be stopped if the callback wins; it ends
// when the process does (or when in reaches its end).
func awaitCode(ctx context.Context, l *oauth.Login, in io.Reader, ln net.Listener) (string, error) {
	type result struct {
		code string
		err  error
	}
	results := make(chan result, 1)
	deliver := func(r result) { // the first result wins; later ones are dropped
		select {
		case results <- r:
		default:
		}
	}
	if in == nil {
		in = os.Stdin
	}
	go func() {
		line, err := bufio.NewReader(in).ReadString('\n')
		if strings.TrimSpace(line) == "" {
			if ln != nil {
				return // no paste: wait for the browser
			}
			if err == nil || errors.Is(err, io.EOF) {
				err = errors.New("no code on stdin: paste the code the page shows (CODE#STATE)")
			}
			deliver(result{err: fmt.Errorf("read code: %w", err)})
			return
		}
		code, err := l.ParseCode(line)
		deliver(result{code, err})
	}()
	if ln != nil {
		srv := &http.Server{
			ReadHeaderTimeout: 10 * time.Second,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/callback" {
					http.NotFound(w, r)
					return
				}
				code, err := l.ParseCode(r.URL.RequestURI())
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				// The browser tab may be gone; the terminal hears the outcome anyway.
				if err != nil {
					w.WriteHeader(http.StatusBadRequest)
					_, _ = fmt.Fprintf(w, "<p>llmgw login failed: %s</p>\n", html.EscapeString(err.Error()))
				} else {
					_, _ = fmt.Fprintln(w, "<p>llmgw: login received. You can close this window and return to the terminal.</p>")
				}
				deliver(result{code, err})
			}),
		}
		go func() { _ = srv.Serve(ln) }()  // ends with Close below
		defer func() { _ = srv.Close() }() // the wait is over; nothing to do about a close error
	}
	select {
	case r := <-results:
		return r.code, r.err
	case <-ctx.Done():
		return "", fmt.Errorf("waiting for the code: %w", ctx.Err())
	}
}

// expiresIn is how long until t, for people: "7h12m", "3d4h", "45s",
// "expired", or "unknown" for a zero time.
func expiresIn(t, now time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	d := t.Sub(now)
	switch {
	case d <= 0:
		return "expired"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

func accountRefreshCommand(env *appEnv) *urfave.Command {
	return &urfave.Command{
		Name:      "refresh",
		Usage:     "refresh an OAuth account's access token now",
		UsageText: "llmgw account refresh NAME",
		Description: `Refreshes the access token (and the rotating refresh token) of an oauth
account at once. It is safe while the server runs: both take the same
database lease, so only one refresh ever happens at a time and neither
invalidates the other's token. If the refresh token has been rejected, the
account is put in status error and you need "llmgw account login" again.

` + oauthHelp + `

Example:
  llmgw account refresh alice-max`,
		Action: func(c *urfave.Context) error {
			name, err := oneArg(c, "account name")
			if err != nil {
				return err
			}
			log, closeLog, err := env.logger()
			if err != nil {
				return err
			}
			defer closeLog() //nolint:errcheck // the command's own error matters more
			return env.withDB(c.Context, func(db *store.DB) error {
				a, err := db.GetAccount(c.Context, name)
				if err != nil {
					return accountError(name, err)
				}
				if a.Type != llmgw.AccountOAuth {
					return fmt.Errorf("account %s is an %s account: only oauth accounts have tokens to refresh", name, a.Type)
				}
				if err := oauth.RefreshNow(c.Context, env.oauthConfig(log), db, a.ID); err != nil {
					return fmt.Errorf("refresh account %s: %w", name, err)
				}
				if a, err = db.GetAccount(c.Context, name); err != nil {
					return accountError(name, err)
				}
				_, err = fmt.Fprintf(c.App.Writer, "refreshed account %s: token expires in %s\n", name, expiresIn(a.ExpiresAt, env.now()))
				return err
			})
		},
	}
}

// claudeCredentials is Claude Code's credentials file
// (~/.claude/.credentials.json, where Claude Code keeps its login on Linux).
// Only the claudeAiOauth object matters.
type claudeCredentials struct {
	ClaudeAiOauth *struct {
		AccessToken      string   `json:"accessToken"`
		RefreshToken     string   `json:"refreshToken"`
		ExpiresAt        int64    `json:"expiresAt"` // unix milliseconds
		Scopes           []string `json:"scopes"`
		SubscriptionType string   `json:"subscriptionType"`
	} `json:"claudeAiOauth"`
}

// importClaudeCredentials is "account import --claude-credentials PATH".
func importClaudeCredentials(c *urfave.Context, env *appEnv, path string) error {
	name := c.String("name")
	if name == "" {
		return errors.New("--name is required with --claude-credentials: llmgw account import --claude-credentials PATH --name NAME")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read Claude Code credentials: %w", err)
	}
	var cc claudeCredentials
	if err := json.Unmarshal(data, &cc); err != nil {
		// Not %w: the JSON error may quote the file, which holds tokens.
		return fmt.Errorf("%s: not a Claude Code credentials file (invalid JSON)", path)
	}
	o := cc.ClaudeAiOauth
	if o == nil || (o.AccessToken == "" && o.RefreshToken == "") {
		return fmt.Errorf("%s: no claudeAiOauth tokens in the file (is this ~/.claude/.credentials.json?)", path)
	}
	return env.withDB(c.Context, func(db *store.DB) error {
		old, err := existingOAuth(c.Context, db, name)
		if err != nil {
			return err
		}
		if err := env.checkOwnerKeyFlag(c, db); err != nil {
			return err
		}
		a := llmgw.Account{Name: name, Type: llmgw.AccountOAuth}
		if old != nil {
			a = *old
		}
		applyAccountFlags(c, &a, old == nil, env.cfg.DefaultBaseURL())
		a.AccessToken, a.RefreshToken, a.Scopes = o.AccessToken, o.RefreshToken, o.Scopes
		a.ExpiresAt, a.LastRefresh = time.Time{}, time.Time{}
		if o.ExpiresAt > 0 {
			a.ExpiresAt = time.UnixMilli(o.ExpiresAt)
		}
		a.Email, a.AccountUUID, a.OrganizationUUID = "", "", "" // learnt at the first refresh
		if err := a.Validate(); err != nil {
			return err
		}
		if err := storeOAuth(c.Context, db, &a, old); err != nil {
			return err
		}
		kind := "oauth"
		if o.SubscriptionType != "" {
			kind += ", " + o.SubscriptionType + " subscription"
		}
		// A note on stderr; the line on stdout is the answer.
		_, _ = fmt.Fprintln(c.App.ErrWriter, `note: Claude Code and llmgw now share one rotating refresh token; whichever refreshes first
leaves the other with a dead one. Log Claude Code in again afterwards, or use "llmgw account login"
to give llmgw a login of its own.`)
		_, err = fmt.Fprintf(c.App.Writer, "imported Claude Code credentials into account %s (%s); token expires in %s\n",
			name, kind, expiresIn(a.ExpiresAt, env.now()))
		return err
	})
}

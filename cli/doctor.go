package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy"
	"github.com/llmgw/llmgw/store"
)

// probeTimeout bounds each account's GET /v1/models, and the /healthz probe
// of a listen address in use.
const probeTimeout = 10 * time.Second

func doctorCommand(env *appEnv) *urfave.Command {
	return &urfave.Command{
		Name:      "doctor",
		Usage:     "check the database, config, listen address and every account, and say how to fix what is wrong",
		UsageText: "llmgw doctor [--listen ADDR] [--offline] [--json]",
		Description: `Checks, printing ok, FAIL or skip for each, with the fix for each failure:
  - the config file (--config) loads;
  - the database opens, has no pending migrations, passes PRAGMA
    integrity_check, is readable by its owner only and sits in a directory
    others cannot write;
  - the listen address can be bound, or is in use by a running llmgw
    (GET /healthz answers);
  - each OAuth account's access token has not expired;
  - each active account's credentials work: GET {base_url}/v1/models with
    them (10 s timeout), reporting what answered. --offline skips this.
Exits non-zero if any check fails. It changes nothing.

Example:
  llmgw doctor
  llmgw --config /etc/llmgw/config.yaml doctor --listen 0.0.0.0:8080
  llmgw doctor --json | jq '.checks[] | select(.status == "fail")'`,
		Flags: []urfave.Flag{
			&urfave.StringFlag{Name: "listen", Usage: "`ADDR` serve would listen on (default: server.host:server.port from the config)"},
			&urfave.BoolFlag{Name: "offline", Usage: "do not call the upstream for each account"},
			&urfave.BoolFlag{Name: "json", Usage: "print one JSON document"},
		},
		Action: func(c *urfave.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			return env.doctor(c)
		},
	}
}

// checkStatus is the outcome of one finding.
type checkStatus string

const (
	checkOK   checkStatus = "ok"
	checkFail checkStatus = "fail"
	checkSkip checkStatus = "skip" // not checked, and why; not a failure
)

// checkResult is one finding of "llmgw doctor".
type checkResult struct {
	Check  string      `json:"check"` // what was checked: "database", "account main", …
	Status checkStatus `json:"status"`
	Detail string      `json:"detail"`
	Fix    string      `json:"fix,omitempty"` // what to do, for a failure
}

// doctorRun is what the checks share while doctor runs.
type doctorRun struct {
	env     *appEnv
	listen  string
	offline bool
	now     time.Time
	client  *http.Client
	kinds   map[llmgw.AccountType]proxy.Kind

	// db is the open database, or nil when the database check could not
	// open it. accountsOK is false when its schema cannot be read (pending
	// migrations), so the account checks skip.
	db         *store.DB
	accountsOK bool

	results []checkResult
}

func (r *doctorRun) ok(check, format string, args ...any) {
	r.results = append(r.results, checkResult{Check: check, Status: checkOK, Detail: fmt.Sprintf(format, args...)})
}

func (r *doctorRun) skip(check, format string, args ...any) {
	r.results = append(r.results, checkResult{Check: check, Status: checkSkip, Detail: fmt.Sprintf(format, args...)})
}

func (r *doctorRun) fail(check, detail, fix string) {
	r.results = append(r.results, checkResult{Check: check, Status: checkFail, Detail: detail, Fix: fix})
}

// doctorCheck is one check of "llmgw doctor": it adds its findings to r.
type doctorCheck func(ctx context.Context, r *doctorRun)

// doctorChecks returns the checks in the order doctor runs them. This is
// the place to add one: a check reports through r.ok, r.fail and r.skip, and
// may use r.db (nil when the database did not open). A check of the secret
// key file that seals the stored credentials belongs after checkDatabase.
func doctorChecks() []doctorCheck {
	return []doctorCheck{
		checkConfig,
		checkDatabase,
		checkSecretKey,
		checkListen,
		checkAccounts,
	}
}

func (e *appEnv) doctor(c *urfave.Context) (err error) {
	ctx := c.Context
	r := &doctorRun{
		env:     e,
		listen:  e.cfg.Listen(),
		offline: c.Bool("offline"),
		now:     e.now(),
		// Its own client and transport: nothing shared, no global client,
		// and every request bounded by its context rather than a client
		// timeout.
		client: &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}},
		kinds: map[llmgw.AccountType]proxy.Kind{
			llmgw.AccountAPIKey: proxy.APIKeyKind{},
			llmgw.AccountOAuth:  proxy.OAuthKind{Tokens: storedToken{}},
		},
	}
	if v := listenAddr(os.Getenv(listenEnv)); v != "" { // as serve: the flag, else LLMGW_LISTEN, else the config
		r.listen = v
	}
	if c.IsSet("listen") {
		r.listen = listenAddr(c.String("listen"))
	}
	defer r.client.CloseIdleConnections()
	defer func() {
		if r.db != nil {
			closeDB(r.db, &err)
		}
	}()
	for _, check := range doctorChecks() {
		check(ctx, r)
	}

	failed := 0
	for _, res := range r.results {
		if res.Status == checkFail {
			failed++
		}
	}
	if c.Bool("json") {
		err = writeJSON(c.App.Writer, struct {
			OK     bool          `json:"ok"`
			Checks []checkResult `json:"checks"`
		}{failed == 0, r.results})
	} else {
		err = writeDoctor(c.App.Writer, r.results)
	}
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("doctor found %d %s", failed, plural(failed, "problem", "problems"))
	}
	return nil
}

func writeDoctor(w io.Writer, results []checkResult) error {
	width := 0
	for _, res := range results {
		width = max(width, len(res.Check))
	}
	for _, res := range results {
		label := map[checkStatus]string{checkOK: "ok", checkFail: "FAIL", checkSkip: "skip"}[res.Status]
		if _, err := fmt.Fprintf(w, "%-4s  %-*s  %s\n", label, width, res.Check, oneLine(res.Detail)); err != nil {
			return err
		}
		if res.Fix != "" {
			if _, err := fmt.Fprintf(w, "      %-*s  fix: %s\n", width, "", res.Fix); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkConfig reports the config file. A file that fails to load does not
// stop doctor (see the App's Before hook): the other checks run on the
// defaults.
func checkConfig(_ context.Context, r *doctorRun) {
	switch {
	case r.env.cfgErr != nil:
		r.fail("config", r.env.cfgErr.Error(), "correct the file; the other checks used the defaults")
	case r.env.configPath == "":
		r.ok("config", "no config file (--config, LLMGW_CONFIG): defaults and environment")
	default:
		r.ok("config", "%s loads", r.env.configPath)
	}
}

// checkDatabase opens the database into r.db and checks its schema,
// integrity and file modes.
func checkDatabase(ctx context.Context, r *doctorRun) {
	const check = "database"
	path := r.env.dbPath
	if store.IsPostgresURL(path) {
		checkPostgres(ctx, r)
		return
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		r.fail(check, path+" does not exist", `run "llmgw db migrate" to create it, or pass --db PATH`)
		return
	}
	if err != nil {
		r.fail(check, err.Error(), "check --db and the permissions of the path")
		return
	}
	db, err := store.Open(ctx, path)
	if errors.Is(err, store.ErrNewerSchema) {
		r.fail(check, err.Error(), "run the llmgw version that migrated it, or restore a backup made before")
		return
	}
	if err != nil {
		r.fail(check, err.Error(), "check that --db points at the llmgw database")
		return
	}
	r.db = db

	switch n, err := db.Pending(ctx); {
	case err != nil:
		r.fail(check, err.Error(), "check that --db points at the llmgw database")
	case n > 0:
		r.fail(check, fmt.Sprintf("%s has %d pending %s", path, n, plural(n, "migration", "migrations")),
			`back it up ("llmgw db backup FILE"), then run "llmgw db migrate"`)
	default:
		r.accountsOK = true
		r.ok(check, "%s: schema up to date", path)
	}

	checkIntegrity(ctx, r, "stop serve and restore the latest backup (see the README)")

	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		r.fail(check, fmt.Sprintf("%s has mode %04o: others may read the credentials in it", path, perm), "chmod 600 "+path)
	} else {
		r.ok(check, "file mode %04o", perm)
	}
	dir := filepath.Dir(path)
	if di, err := os.Stat(dir); err == nil && di.Mode().Perm()&0o002 != 0 && di.Mode()&fs.ModeSticky == 0 {
		r.fail(check, fmt.Sprintf("directory %s is writable by everyone: anyone may replace the database", dir), "chmod o-w "+dir)
	}
}

// checkIntegrity runs the store's integrity check on r.db; fix is what to
// do about a problem it finds.
func checkIntegrity(ctx context.Context, r *doctorRun, fix string) {
	const check = "database"
	switch problems, err := r.db.IntegrityCheck(ctx); {
	case err != nil:
		r.fail(check, err.Error(), fix)
	case len(problems) > 0:
		r.fail(check, fmt.Sprintf("integrity check found %d %s, the first: %s", len(problems), plural(len(problems), "problem", "problems"), problems[0]), fix)
	default:
		r.ok(check, "integrity check ok")
	}
}

// checkPostgres is checkDatabase for a PostgreSQL database: it opens it
// and checks its schema and integrity. There is no file whose mode to
// check.
func checkPostgres(ctx context.Context, r *doctorRun) {
	const check = "database"
	name := r.env.dbName()
	db, err := store.Open(ctx, r.env.dbPath)
	if errors.Is(err, store.ErrNewerSchema) {
		r.fail(check, err.Error(), "run the llmgw version that migrated it")
		return
	}
	if err != nil {
		r.fail(check, err.Error(), "check that --db is the URL of the llmgw database and that the server runs")
		return
	}
	r.db = db
	switch n, err := db.Pending(ctx); {
	case err != nil:
		r.fail(check, err.Error(), "check that --db is the URL of the llmgw database")
	case n > 0:
		r.fail(check, fmt.Sprintf("%s has %d pending %s", name, n, plural(n, "migration", "migrations")),
			`back it up (pg_dump), then run "llmgw db migrate"`)
	default:
		r.accountsOK = true
		r.ok(check, "%s: schema up to date", name)
	}
	checkIntegrity(ctx, r, "REINDEX or restore from your PostgreSQL backups (see the README)")
}

// checkSecretKey checks the key that encrypts account secrets: it is found
// where serve would look, and it opens the key check and every account's
// secrets. The account checks need it.
func checkSecretKey(ctx context.Context, r *doctorRun) {
	const check = "secret key"
	if r.db == nil || !r.accountsOK {
		r.skip(check, "the database could not be checked")
		return
	}
	if err := r.env.useSecretKey(ctx, r.db); err != nil {
		r.accountsOK = false
		r.fail(check, err.Error(), "see \"Secrets at rest\" in the README: the key must be the one the database was encrypted with")
		return
	}
	r.ok(check, "%s opens every account's secrets", r.env.secretKeySource())
}

// checkListen checks that serve could listen on r.listen, or that an llmgw
// already does.
func checkListen(ctx context.Context, r *doctorRun) {
	check := "listen"
	ln, err := net.Listen("tcp", r.listen)
	if err == nil {
		if err := ln.Close(); err != nil {
			r.fail(check, err.Error(), "")
			return
		}
		r.ok(check, "%s is free for serve", r.listen)
		return
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		r.fail(check, err.Error(), "pick an address this user may bind (server.host and server.port, or serve --listen): ports below 1024 need root or CAP_NET_BIND_SERVICE")
		return
	}
	if r.isLLMGW(ctx) {
		r.ok(check, "%s is in use by a running llmgw (GET /healthz answered)", r.listen)
		return
	}
	r.fail(check, r.listen+" is in use by another program",
		"stop that program, or give serve another address (server.host and server.port, or serve --listen)")
}

// isLLMGW reports whether what listens on r.listen answers GET /healthz as
// llmgw does.
func (r *doctorRun) isLLMGW(ctx context.Context) bool {
	host, port, err := net.SplitHostPort(r.listen)
	if err != nil {
		return false
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return false
	}
	res, err := r.client.Do(req)
	if err != nil {
		return false
	}
	defer func() { _ = res.Body.Close() }() // read what we wanted; its Close error tells us nothing
	var body struct {
		Status string `json:"status"`
	}
	return res.StatusCode == http.StatusOK && json.NewDecoder(io.LimitReader(res.Body, 4<<10)).Decode(&body) == nil && body.Status == "ok"
}

// checkAccounts checks each account: its status, an OAuth token's expiry,
// and (unless offline) that the upstream accepts its credentials.
func checkAccounts(ctx context.Context, r *doctorRun) {
	if r.db == nil || !r.accountsOK {
		r.skip("accounts", "not checked: the database check failed")
		return
	}
	accts, err := r.db.ListAccounts(ctx)
	if err != nil {
		r.fail("accounts", err.Error(), "see the database findings")
		return
	}
	if len(accts) == 0 {
		r.fail("accounts", "no accounts: serve would answer every request 503",
			`add one: "llmgw account add", "llmgw account login" or "llmgw account import"`)
		return
	}
	for i := range accts {
		r.checkAccount(ctx, &accts[i])
	}
}

func (r *doctorRun) checkAccount(ctx context.Context, a *llmgw.Account) {
	check := "account " + a.Name
	switch a.State.Status {
	case llmgw.StatusDisabled:
		r.skip(check, "disabled, not checked")
		return
	case llmgw.StatusError:
		r.fail(check, "in status error: "+a.State.Reason,
			fmt.Sprintf(`correct the cause, then "llmgw account enable %s"`, a.Name))
		return
	}
	if a.Type == llmgw.AccountOAuth {
		if !a.ExpiresAt.IsZero() && !a.ExpiresAt.After(r.now) {
			r.fail(check, "OAuth access token expired at "+formatTime(a.ExpiresAt),
				fmt.Sprintf(`"llmgw account refresh %s"; if its refresh token is rejected, "llmgw account login --name %s"`, a.Name, a.Name))
			return // the models call would only repeat it
		}
		if !a.ExpiresAt.IsZero() {
			r.ok(check, "OAuth access token valid until %s (in %s)", formatTime(a.ExpiresAt), a.ExpiresAt.Sub(r.now).Round(time.Minute))
		}
	}
	if r.offline {
		r.skip(check, "credentials not tried (--offline)")
		return
	}
	r.probe(ctx, check, a)
}

// probe calls GET {base_url}/v1/models with the account's credentials, set
// by the same Kind the proxy uses, and reports what answered.
func (r *doctorRun) probe(ctx context.Context, check string, a *llmgw.Account) {
	kind := r.kinds[a.Type]
	if kind == nil {
		r.fail(check, fmt.Sprintf("unknown account type %q", a.Type), "upgrade llmgw, or remove the account")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	endpoint := strings.TrimRight(a.BaseURL, "/") + "/v1/models"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		r.fail(check, fmt.Sprintf("base url %q: %v", a.BaseURL, err), fmt.Sprintf(`"llmgw account edit %s --base-url URL"`, a.Name))
		return
	}
	req.Header.Set("Anthropic-Version", "2023-06-01")
	if _, err := kind.Prepare(ctx, a, req, nil); err != nil {
		r.fail(check, err.Error(), "")
		return
	}
	res, err := r.client.Do(req)
	if err != nil {
		r.fail(check, fmt.Sprintf("GET %s: %v", endpoint, unwrapURLError(err)),
			"check the base URL and that this host reaches it (DNS, firewall, HTTPS_PROXY)")
		return
	}
	defer func() { _ = res.Body.Close() }()                 // read what we wanted; its Close error tells us nothing
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10)) // a short read only shortens the report

	if res.StatusCode == http.StatusOK {
		var list struct {
			Data []json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			r.fail(check, fmt.Sprintf("GET %s answered 200 but not a model list", endpoint), "check the base URL: it should be the Anthropic API's")
			return
		}
		r.ok(check, "GET /v1/models answered 200 (%d %s)", len(list.Data), plural(len(list.Data), "model", "models"))
		return
	}
	what := fmt.Sprintf("GET /v1/models answered %d", res.StatusCode)
	var e struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Type != "" {
		what += " " + e.Error.Type + ": " + truncate(oneLine(e.Error.Message), 120)
	}
	switch {
	case res.StatusCode == http.StatusTooManyRequests:
		r.ok(check, "%s (rate limited now; the credentials are accepted)", what)
	case res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden:
		fix := fmt.Sprintf(`replace the key: "llmgw account edit %s --api-key -" (the key on stdin)`, a.Name)
		if a.Type == llmgw.AccountOAuth {
			fix = fmt.Sprintf(`"llmgw account refresh %s"; if that fails, "llmgw account login --name %s"`, a.Name, a.Name)
		}
		r.fail(check, what, fix)
	case res.StatusCode >= 500:
		r.fail(check, what, "the upstream's own trouble: try again later")
	default:
		r.fail(check, what, "check the account's base URL and settings")
	}
}

// unwrapURLError drops *url.Error's repetition of the method and URL.
func unwrapURLError(err error) error {
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// storedToken hands the OAuth kind the access token as stored: doctor tries
// it as is and never refreshes (that is "llmgw account refresh").
type storedToken struct{}

func (storedToken) AccessToken(_ context.Context, a *llmgw.Account) (string, error) {
	return a.AccessToken, nil
}

func (storedToken) Refresh(context.Context, *llmgw.Account, string) error {
	return errors.New("doctor does not refresh tokens")
}

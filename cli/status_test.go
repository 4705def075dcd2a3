package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
	"github.com/llmgw/llmgw/store"
)

// statusOf runs "status --json" and decodes it.
func statusOf(t *testing.T, db string) statusJSON {
	t.Helper()
	stdout, _ := mustRun(t, "--db", db, "status", "--json")
	var st statusJSON
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, stdout)
	}
	return st
}

func TestStatus_ThroughRunningServe(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	const apiKey = "sk-ant-aaaaaaaaaaaaaaaa"
	// The first request answers, the second is held until release.
	up := upstreamtest.NewServer(t, upstreamtest.Script(apiKey, upstreamtest.OK(), upstreamtest.OK(upstreamtest.Hold(release))))
	db := newDB(t)
	mustRun(t, "--db", db, "account", "add", "--name", "a", "--api-key", apiKey, "--base-url", up.URL, "--max-concurrency", "3")
	out, _ := mustRun(t, "--db", db, "key", "create", "--name", "alice", "--limit", "requests=100/day")
	key := strings.TrimSpace(out)
	srv := startServe(t, db)
	c := sdk(srv.URL, key)
	if _, err := c.Messages.New(context.Background(), hello()); err != nil {
		t.Fatal(err)
	}
	held := make(chan error, 1)
	go func() {
		_, err := streamOnce(context.Background(), c, hello())
		held <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := up.AwaitHeld(ctx, 1); err != nil {
		t.Fatal(err)
	}

	// The server publishes within a second. The first request is settled
	// just after its answer reached the client: wait for that too.
	var st statusJSON
	if err := eventually(func() bool {
		st = statusOf(t, db)
		return st.Source == "server" && len(st.Accounts) == 1 && st.Accounts[0].InFlight != nil && *st.Accounts[0].InFlight == 1 &&
			len(st.Keys) == 1 && len(st.Keys[0].Limits) == 1 && st.Keys[0].Limits[0].Used == 1
	}); err != nil {
		t.Fatalf("status never showed the held request in flight and the first one used: %+v", st)
	}
	a := st.Accounts[0]
	if a.Name != "a" || a.Type != "api_key" || a.Status != "active" || a.MaxConcurrency != 3 || a.Waiting == nil || *a.Waiting != 0 {
		t.Errorf("account = %+v", a)
	}
	if len(st.Servers) != 1 || st.Servers[0].Addr != strings.TrimPrefix(srv.URL, "http://") {
		t.Errorf("servers = %+v, want the one on %s", st.Servers, srv.URL)
	}
	if st.Totals.InFlight == nil || *st.Totals.InFlight != 1 {
		t.Errorf("totals = %+v, want 1 in flight", st.Totals)
	}
	if len(st.Keys) != 1 || st.Keys[0].Name != "alice" || len(st.Keys[0].Limits) != 1 ||
		st.Keys[0].Limits[0].Limit != "requests=100/day" || st.Keys[0].Limits[0].Used != 1 {
		t.Errorf("keys = %+v, want alice with 1 of requests=100/day used", st.Keys)
	}

	text, _ := mustRun(t, "--db", db, "status")
	for _, want := range []string{"llmgw serve on", "published", "ACCOUNT", "IN FLIGHT", "1/3", "key alice",
		"requests=100/day", "1 of 100 (+1 in flight)", "total: 1 in flight, 0 waiting"} {
		if !strings.Contains(text, want) {
			t.Errorf("status lacks %q:\n%s", want, text)
		}
	}
	list, _ := mustRun(t, "--db", db, "account", "list")
	if !regexp.MustCompile(`IN FLIGHT[\s\S]*\ba\s+api_key\s+active\s+0\s+1\s+1/3\s`).MatchString(list) {
		t.Errorf("account list does not show 1/3 in flight:\n%s", list)
	}
	if got := listJSON(t, db)[0].InFlight; got == nil || *got != 1 {
		t.Errorf("account list --json in_flight = %v, want 1", got)
	}

	// A clean shutdown deletes the row: no server, at once.
	release <- struct{}{}
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if err := srv.stopAndWait(t); err != nil {
		t.Fatal(err)
	}
	text, _ = mustRun(t, "--db", db, "status")
	if !strings.Contains(text, "no llmgw serve is publishing") {
		t.Errorf("after shutdown status says:\n%s", text)
	}
	if got := listJSON(t, db)[0].InFlight; got != nil {
		t.Errorf("account list --json in_flight = %d with no server, want null", *got)
	}
}

func TestStatus_NoServerShowsTheStoredState(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	mustRun(t, "--db", db, "account", "add", "--name", "a", "--api-key", "sk-ant-aaaaaaaaaaaaaaaa", "--max-concurrency", "2")
	mustRun(t, "--db", db, "key", "create", "--name", "alice", "--limit", "usd=20/day")
	createKey(t, db, "bob") // no limits: not listed

	text, _ := mustRun(t, "--db", db, "status")
	for _, want := range []string{"no llmgw serve is publishing", "showing the stored state", "a ", "api_key", "active",
		"key alice", "usd=20/day", "0.00 of 20.00", "total: in flight and waiting are known only to a running server"} {
		if !strings.Contains(text, want) {
			t.Errorf("status lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "bob") {
		t.Errorf("status lists a key without limits:\n%s", text)
	}

	// A server that crashed left its row: it is stale.
	sdb, err := openStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	gone := time.Now().Add(-2*time.Minute - 13*time.Second)
	err = sdb.UpsertServerStatus(context.Background(), store.ServerStatus{ID: "x", StartedAt: gone, UpdatedAt: gone, Doc: []byte(`{}`)})
	if cerr := sdb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	text, _ = mustRun(t, "--db", db, "status")
	if !strings.Contains(text, "no llmgw serve has published for 2m13s; showing the stored state") {
		t.Errorf("status with a stale row says:\n%s", text)
	}

	st := statusOf(t, db)
	if st.Source != "database" || len(st.Servers) != 0 || st.Totals.InFlight != nil || st.Totals.Waiting != nil {
		t.Errorf("status --json = %+v, want source database, no servers, null totals", st)
	}
	if len(st.Accounts) != 1 || st.Accounts[0].InFlight != nil || st.Accounts[0].MaxConcurrency != 2 || st.Accounts[0].Limits == nil {
		t.Errorf("accounts = %+v", st.Accounts)
	}
	if len(st.Keys) != 1 || st.Keys[0].Name != "alice" || st.Keys[0].Limits[0].Limit != "usd=20/day" {
		t.Errorf("keys = %+v", st.Keys)
	}
	// The JSON keys scripts rely on.
	stdout, _ := mustRun(t, "--db", db, "status", "--json")
	var raw map[string]any
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"at", "source", "note", "servers", "accounts", "keys", "totals"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("status --json has no %q:\n%s", k, stdout)
		}
	}
	acct := raw["accounts"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "type", "status", "reason", "cooldown_until", "cooldown_reason", "family_cooldowns",
		"in_flight", "max_concurrency", "waiting", "latency_ms", "recent_errors", "limits"} {
		if _, ok := acct[k]; !ok {
			t.Errorf("status --json account has no %q", k)
		}
	}
}

func TestStatus_WatchPrintsSnapshotsUntilInterrupted(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	mustRun(t, "--db", db, "account", "add", "--name", "a", "--api-key", "sk-ant-aaaaaaaaaaaaaaaa")
	for _, tt := range []struct {
		name string
		args []string
		want *regexp.Regexp // two snapshots
	}{
		{"text", nil, regexp.MustCompile(`(?s)showing the stored state.*total:.*\n\n.*showing the stored state.*total:`)},
		{"json", []string{"--json"}, regexp.MustCompile(`(?m)^\{"at":.*\}\n\{"at":.*\}\n`)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			out := newSyncBuffer()
			done := make(chan error, 1)
			go func() {
				done <- New(out, &bytes.Buffer{}).RunContext(ctx, append([]string{"llmgw", "--db", db, "status", "--watch"}, tt.args...))
			}()
			out.await(t, tt.want)
			cancel()
			if err := <-done; err != nil {
				t.Errorf("status --watch ended with %v, want nil on interrupt", err)
			}
			if strings.Contains(out.String(), "\x1b[") {
				t.Errorf("escape sequences written to a non-terminal:\n%q", out.String())
			}
		})
	}
}

func TestAccount_ListShowsCooldownReason(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	mustRun(t, "--db", db, "account", "add", "--name", "a", "--api-key", "sk-ant-aaaaaaaaaaaaaaaa")
	sdb, err := openStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(10 * time.Minute)
	err = sdb.SaveAccountStates(context.Background(), map[int64]llmgw.AccountState{1: {
		Status: llmgw.StatusActive, CooldownUntil: until, LastError: "429 rate_limit_error: slow down", At: time.Now(),
	}})
	if cerr := sdb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	out, _ := mustRun(t, "--db", db, "account", "list")
	want := "until " + formatTime(until) + " (429 rate_limit_error: slow down)"
	if !strings.Contains(out, "COOLDOWN") || !strings.Contains(out, want) {
		t.Errorf("account list lacks %q:\n%s", want, out)
	}
	a := listJSON(t, db)[0]
	if a.CooldownReason != "429 rate_limit_error: slow down" || a.CooldownUntil == nil || a.InFlight != nil {
		t.Errorf("account list --json: cooldown_reason %q, cooldown_until %v, in_flight %v", a.CooldownReason, a.CooldownUntil, a.InFlight)
	}
	st := statusOf(t, db)
	if st.Accounts[0].CooldownReason != "429 rate_limit_error: slow down" {
		t.Errorf("status --json cooldown_reason = %q", st.Accounts[0].CooldownReason)
	}
	text, _ := mustRun(t, "--db", db, "status")
	if !strings.Contains(text, "active, cooling down "+want) {
		t.Errorf("status lacks the cooldown:\n%s", text)
	}
}

func TestServe_FirstRunHints(t *testing.T) {
	db := newDB(t)
	srv := startServe(t, db)
	if err := srv.stopAndWait(t); err != nil {
		t.Fatal(err)
	}
	log := srv.stderr.String()
	for _, want := range []string{
		`"level":"WARN","msg":"no upstream account`,
		`"fix":"llmgw --db ` + db + ` account add --name NAME --api-key -"`,
		`"fix_subscription":"llmgw --db ` + db + ` account login --name NAME"`,
		`"level":"WARN","msg":"no client key`,
		`"fix":"llmgw --db ` + db + ` key create --name NAME"`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("serve log lacks %s:\n%s", want, log)
		}
	}

	// With both, no hint.
	mustRun(t, "--db", db, "account", "add", "--name", "a", "--api-key", "sk-ant-aaaaaaaaaaaaaaaa")
	createKey(t, db, "alice")
	srv = startServe(t, db)
	if err := srv.stopAndWait(t); err != nil {
		t.Fatal(err)
	}
	if log := srv.stderr.String(); strings.Contains(log, `"fix"`) {
		t.Errorf("serve hints with an account and a key:\n%s", log)
	}
}

func TestShellQuote(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/var/lib/llmgw/llmgw.db": "/var/lib/llmgw/llmgw.db",
		"/tmp/my db":              "'/tmp/my db'",
		"it's":                    `'it'\''s'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestMergeLive_AddsInFlightAcrossServers(t *testing.T) {
	t.Parallel()
	newest := proxy.Live{InFlight: 2, Waiting: 1, Accounts: []proxy.LiveAccount{
		{ID: 1, Name: "a", InFlight: 2, Waiting: 1, RecentErrors: 0.5, LatencyMs: 100},
		{ID: 2, Name: "b"},
	}}
	older := proxy.Live{InFlight: 4, Waiting: 0, Accounts: []proxy.LiveAccount{
		{ID: 1, Name: "a", InFlight: 1, RecentErrors: 1, LatencyMs: 900},
		{ID: 3, Name: "removed", InFlight: 3},
	}}
	got := mergeLive([]proxy.Live{newest, older})
	if got.InFlight != 6 || got.Waiting != 1 {
		t.Errorf("totals = %d in flight, %d waiting; want 6 and 1", got.InFlight, got.Waiting)
	}
	if a := got.Accounts[0]; a.InFlight != 3 || a.Waiting != 1 || a.RecentErrors != 1.5 || a.LatencyMs != 100 {
		t.Errorf("account a = %+v, want 3 in flight, 1 waiting, 1.5 errors, the newest latency", a)
	}
	if len(got.Accounts) != 2 || newest.Accounts[0].InFlight != 2 {
		t.Errorf("accounts = %+v (newest's own slice changed: %v)", got.Accounts, newest.Accounts[0].InFlight != 2)
	}
}

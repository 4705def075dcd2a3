package oauth_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/oauth"
	"github.com/llmgw/llmgw/oauth/oauthtest"
	"github.com/llmgw/llmgw/store"
	"github.com/llmgw/llmgw/store/storetest"
)

// The store is what the Manager runs against in production.
var _ oauth.TokenStore = (*store.DB)(nil)

// env is one fake authorization server, one database and one OAuth account
// whose tokens the server issued.
type env struct {
	s   *oauthtest.Server
	db  *store.DB
	clk *clock
	cfg oauth.Config
	a   llmgw.Account
}

// newEnv stores an account named "max" whose access token expires at
// clock+expiresIn (negative: already expired), issued an hour before.
func newEnv(t *testing.T, expiresIn time.Duration) *env {
	t.Helper()
	s := oauthtest.NewServer(t)
	db := storetest.Open(t)
	clk := newClock()
	cfg := s.Config()
	cfg.Now, cfg.Logger = clk.Now, quiet
	access, refresh, _ := s.Mint()
	a := llmgw.Account{
		Name: "max", Type: llmgw.AccountOAuth, BaseURL: llmgw.DefaultBaseURL, Weight: 1,
		AccessToken: access, RefreshToken: refresh,
		ExpiresAt: clk.Now().Add(expiresIn), LastRefresh: clk.Now().Add(expiresIn - time.Hour),
	}
	if err := db.InsertAccount(context.Background(), &a); err != nil {
		t.Fatal(err)
	}
	return &env{s: s, db: db, clk: clk, cfg: cfg, a: a}
}

// openAgain opens a second handle on the same database file, as another
// process would.
func (e *env) openAgain(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), e.db.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.SetSecretKey([]byte(storetest.SecretKey)); err != nil {
		t.Fatal(err)
	}
	return db
}

// manager returns a Manager synced with a snapshot of db.
func (e *env) manager(t *testing.T, db *store.DB) *oauth.Manager {
	t.Helper()
	m := oauth.NewManager(e.cfg, db)
	m.Sync(snapshot(t, db))
	return m
}

func snapshot(t *testing.T, db *store.DB) *llmgw.Snapshot {
	t.Helper()
	snap, err := db.LoadSnapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// stored returns the account as the database has it.
func (e *env) stored(t *testing.T) *llmgw.Account {
	t.Helper()
	a, err := e.db.GetAccount(context.Background(), e.a.Name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// runUntil starts m.Run and returns a function that stops it and waits for
// it to return (after its refreshes have finished).
func runUntil(m *oauth.Manager) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// wait receives from ch or fails the test after a generous deadline.
func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestManager_ConcurrentExpiredTokenRefreshesOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, -time.Minute)
	m := e.manager(t, e.db)
	arrived, release := e.s.Hold()

	const n = 200
	var wg sync.WaitGroup
	got := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { got[i], errs[i] = m.AccessToken(context.Background(), &e.a) })
	}
	wait(t, arrived, "the refresh request")
	release()
	wg.Wait()

	if c := e.s.RefreshCalls(); c != 1 {
		t.Errorf("%d refresh calls reached the token endpoint, want 1", c)
	}
	st := e.stored(t)
	for i := range n {
		if errs[i] != nil || got[i] != st.AccessToken {
			t.Fatalf("caller %d got %q, %v; want the stored new token", i, got[i], errs[i])
		}
	}
	if st.AccessToken == e.a.AccessToken || !e.s.AccessTokenValid(st.AccessToken) || !e.s.RefreshTokenValid(st.RefreshToken) {
		t.Error("the stored pair is not the new, valid one")
	}
	if st.TokenGeneration != e.a.TokenGeneration+1 || !st.LastRefresh.Equal(e.clk.Now()) {
		t.Errorf("generation %d, last refresh %v; want %d, %v", st.TokenGeneration, st.LastRefresh, e.a.TokenGeneration+1, e.clk.Now())
	}
	if st.Email != oauthtest.Email || st.AccountUUID != oauthtest.AccountUUID || st.OrganizationUUID != oauthtest.OrganizationUUID {
		t.Errorf("identity not stored from the refresh: %q %q %q", st.Email, st.AccountUUID, st.OrganizationUUID)
	}
	// The next call is served from memory.
	if tok, err := m.AccessToken(context.Background(), &e.a); err != nil || tok != st.AccessToken || e.s.RefreshCalls() != 1 {
		t.Errorf("AccessToken after refresh = %q, %v with %d calls", tok, err, e.s.RefreshCalls())
	}
}

func TestManager_ValidTokenNeverRefreshesInline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Minute) // well inside the lead, but not expired
	m := e.manager(t, e.db)
	tok, err := m.AccessToken(context.Background(), &e.a)
	if err != nil || tok != e.a.AccessToken {
		t.Errorf("AccessToken = %q, %v; want the current token", tok, err)
	}
	if c := e.s.RefreshCalls(); c != 0 {
		t.Errorf("%d refresh calls on the request path, want 0", c)
	}
}

func TestManager_RefreshAfter401IsSingleFlight(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Hour)
	m := e.manager(t, e.db)
	rejected := e.a.AccessToken
	arrived, release := e.s.Hold()
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range errs {
		wg.Go(func() { errs[i] = m.Refresh(context.Background(), &e.a, rejected) })
	}
	wait(t, arrived, "the refresh request")
	release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Refresh %d: %v", i, err)
		}
	}
	tok, err := m.AccessToken(context.Background(), &e.a)
	if err != nil || tok == rejected || tok != e.stored(t).AccessToken {
		t.Errorf("AccessToken after Refresh = %q, %v; want the new stored token", tok, err)
	}
	// A late 401 for the old token: someone already refreshed.
	if err := m.Refresh(context.Background(), &e.a, rejected); err != nil {
		t.Fatal(err)
	}
	if c := e.s.RefreshCalls(); c != 1 {
		t.Errorf("%d refresh calls, want 1", c)
	}
}

func TestManager_RunRefreshesAheadOfExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Hour) // issued an hour ago, 2 h life: lead 30 min
	m := e.manager(t, e.db)
	arrived, release := e.s.Hold()
	stop := runUntil(m)
	defer stop()
	m.Sync(snapshot(t, e.db)) // let the loop plan with the clock as it is
	select {
	case <-arrived:
		t.Fatal("refreshed an hour before expiry; the lead is 30 minutes")
	default:
	}
	e.clk.Advance(31 * time.Minute)
	m.Sync(snapshot(t, e.db)) // wakes the loop to look at the clock again
	wait(t, arrived, "the background refresh")
	release()
	stop()

	st := e.stored(t)
	if c := e.s.RefreshCalls(); c != 1 || st.AccessToken == e.a.AccessToken {
		t.Fatalf("%d refresh calls, stored token new = %v; want 1 and a new token", c, st.AccessToken != e.a.AccessToken)
	}
	if tok, err := m.AccessToken(context.Background(), &e.a); err != nil || tok != st.AccessToken {
		t.Errorf("AccessToken = %q, %v; want the refreshed token", tok, err)
	}
}

func TestManager_RunBacksOffAndKeepsServing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 10*time.Minute) // due now
	m := e.manager(t, e.db)
	e.s.Script(oauthtest.Reply{Status: 503})
	arrived, release := e.s.Hold()

	stop := runUntil(m)
	wait(t, arrived, "the first background refresh")
	release()
	stop() // Run returns once its refresh has finished
	if tok, err := m.AccessToken(context.Background(), &e.a); err != nil || tok != e.a.AccessToken {
		t.Errorf("AccessToken after a failed refresh = %q, %v; want the current token", tok, err)
	}
	if st := e.stored(t); !strings.Contains(st.RefreshError, "503") || st.AccessToken != e.a.AccessToken {
		t.Errorf("stored refresh error %q, want the 503 recorded and the pair unchanged", st.RefreshError)
	}

	// Within the backoff nothing is tried, even with the loop running.
	e.clk.Advance(3 * time.Second) // below the first backoff (5 s -20 %)
	arrived, release = e.s.Hold()
	stop = runUntil(m)
	select {
	case <-arrived:
		t.Fatal("retried inside the backoff")
	default:
	}
	e.clk.Advance(10 * time.Second) // past it (5 s +20 %)
	m.Sync(snapshot(t, e.db))
	wait(t, arrived, "the retry")
	release()
	stop()
	st := e.stored(t)
	if c := e.s.RefreshCalls(); c != 2 || st.AccessToken == e.a.AccessToken || st.RefreshError != "" {
		t.Errorf("%d calls, refresh error %q; want 2 calls, a new token and the error cleared", c, st.RefreshError)
	}
}

// TestManager_RunStopsWhileTokenEndpointHangs: a background refresh whose
// token request gets no answer does not hold up Run's return (a shutdown)
// beyond the grace period, and is not recorded as the account's failure.
func TestManager_RunStopsWhileTokenEndpointHangs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 10*time.Minute) // due now
	m := e.manager(t, e.db)
	arrived, _ := e.s.Hold() // never answers; released when the test ends
	stop := runUntil(m)
	wait(t, arrived, "the background refresh")
	start := time.Now()
	stopped := make(chan struct{})
	go func() {
		stop()
		close(stopped)
	}()
	wait(t, stopped, "Run to return") // 10 s: the token request timeout is 30 s
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run returned %v after its ctx ended, want within the 2 s grace", d)
	}
	st := e.stored(t)
	if st.RefreshError != "" || st.AccessToken != e.a.AccessToken {
		t.Errorf("stored refresh error %q, new token %v; want no error recorded and the pair unchanged",
			st.RefreshError, st.AccessToken != e.a.AccessToken)
	}
	if tok, err := m.AccessToken(context.Background(), &e.a); err != nil || tok != e.a.AccessToken {
		t.Errorf("AccessToken after the abandoned refresh = %q, %v; want the current token", tok, err)
	}
}

func TestManager_InlineBackoffHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, -time.Minute)
	m := e.manager(t, e.db)
	ctx := context.Background()
	e.s.Script(oauthtest.Reply{Status: 429, RetryAfter: 10 * time.Minute})
	_, err := m.AccessToken(ctx, &e.a)
	var te *oauth.TokenError
	if !errors.As(err, &te) || te.Status != 429 {
		t.Fatalf("AccessToken with a 429 from the token endpoint: err = %v", err)
	}
	// Past the longest backoff but before retry-after: no new request.
	e.clk.Advance(6 * time.Minute)
	if _, err := m.AccessToken(ctx, &e.a); err == nil || !strings.Contains(err.Error(), "next try at") {
		t.Errorf("AccessToken during retry-after: err = %v, want the backoff", err)
	}
	if c := e.s.RefreshCalls(); c != 1 {
		t.Errorf("%d refresh calls during retry-after, want 1", c)
	}
	e.clk.Advance(5 * time.Minute)
	tok, err := m.AccessToken(ctx, &e.a)
	if err != nil || tok != e.stored(t).AccessToken || e.s.RefreshCalls() != 2 {
		t.Errorf("AccessToken after retry-after = %q, %v (%d calls); want the new token after 2 calls", tok, err, e.s.RefreshCalls())
	}
}

func TestManager_InvalidGrantPutsAccountInError(t *testing.T) {
	t.Parallel()
	e := newEnv(t, -time.Minute)
	m := e.manager(t, e.db)
	e.s.Revoke(e.a.RefreshToken)
	_, err := m.AccessToken(context.Background(), &e.a)
	const want = `refresh token rejected (invalid_grant): run "llmgw account login --name max"`
	if !errors.Is(err, oauth.ErrLoginRequired) || !errors.Is(err, oauth.ErrInvalidGrant) || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	st := e.stored(t)
	if st.State.Status != llmgw.StatusError || st.State.Reason != want {
		t.Errorf("stored state = %+v, want status error with the reason", st.State)
	}
	// Until new tokens arrive, nothing more is sent.
	if err := m.Refresh(context.Background(), &e.a, e.a.AccessToken); !errors.Is(err, oauth.ErrLoginRequired) {
		t.Errorf("Refresh after invalid_grant: err = %v", err)
	}
	if c := e.s.RefreshCalls(); c != 1 {
		t.Errorf("%d refresh calls, want 1", c)
	}
}

func TestManager_InvalidGrantAfterAnotherProcessRotated(t *testing.T) {
	t.Parallel()
	e := newEnv(t, -time.Minute)
	m := e.manager(t, e.db)
	arrived, release := e.s.Hold()
	result := make(chan error, 1)
	var tok string
	go func() {
		var err error
		tok, err = m.AccessToken(context.Background(), &e.a)
		result <- err
	}()
	wait(t, arrived, "the refresh request")
	// Meanwhile another process stores newer tokens (a login), and the old
	// refresh token dies.
	access, refresh, _ := e.s.Mint()
	login := e.a
	login.AccessToken, login.RefreshToken, login.ExpiresAt = access, refresh, e.clk.Now().Add(8*time.Hour)
	if _, _, err := e.openAgain(t).UpsertAccounts(context.Background(), []llmgw.Account{login}); err != nil {
		t.Fatal(err)
	}
	e.s.Revoke(e.a.RefreshToken)
	release()
	if err := <-result; err != nil {
		t.Fatalf("AccessToken: %v; want the other process's token", err)
	}
	if tok != access {
		t.Errorf("token = %q, want the one the other process stored", tok)
	}
	if st := e.stored(t); st.State.Status != llmgw.StatusActive || st.RefreshToken != refresh {
		t.Errorf("stored state %+v refresh %q; want active with the login's pair", st.State, llmgw.Mask(st.RefreshToken))
	}
}

func TestManager_RefreshWithoutRotationKeepsRefreshToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, -time.Minute)
	e.s.SetRotation(false)
	m := e.manager(t, e.db)
	tok, err := m.AccessToken(context.Background(), &e.a)
	if err != nil {
		t.Fatal(err)
	}
	st := e.stored(t)
	if st.RefreshToken != e.a.RefreshToken || st.AccessToken != tok || tok == e.a.AccessToken {
		t.Fatalf("after a refresh without refresh_token: refresh kept = %v, access new = %v",
			st.RefreshToken == e.a.RefreshToken, tok != e.a.AccessToken)
	}
	// And the kept one still works.
	if err := m.Refresh(context.Background(), &e.a, tok); err != nil {
		t.Fatal(err)
	}
	if c, inv := e.s.RefreshCalls(), e.s.InvalidGrants(); c != 2 || inv != 0 {
		t.Errorf("%d calls, %d invalid_grant; want 2, 0", c, inv)
	}
}

func TestManager_TwoProcessesRefreshOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, -time.Minute)
	m1 := e.manager(t, e.db)
	m2 := e.manager(t, e.openAgain(t))
	arrived, release := e.s.Hold()
	var wg sync.WaitGroup
	var tok1, tok2 string
	var err1, err2 error
	wg.Go(func() { tok1, err1 = m1.AccessToken(context.Background(), &e.a) })
	wg.Go(func() { tok2, err2 = m2.AccessToken(context.Background(), &e.a) })
	wait(t, arrived, "the refresh request")
	release()
	wg.Wait()
	if err1 != nil || err2 != nil {
		t.Fatalf("errors: %v, %v", err1, err2)
	}
	st := e.stored(t)
	if tok1 != st.AccessToken || tok2 != st.AccessToken {
		t.Errorf("the two processes ended with different tokens, or not the stored one")
	}
	if c, inv := e.s.RefreshCalls(), e.s.InvalidGrants(); c != 1 || inv != 0 {
		t.Errorf("%d refresh calls, %d invalid_grant; want 1, 0", c, inv)
	}
}

func TestRefreshNow_DuringLoad(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Hour)
	m := e.manager(t, e.db)
	ctx := context.Background()
	stop := runUntil(m)
	defer stop()

	var wg sync.WaitGroup
	errc := make(chan error, 64)
	for range 8 {
		wg.Go(func() {
			for i := range 50 {
				tok, err := m.AccessToken(ctx, &e.a)
				if err != nil {
					errc <- err
					return
				}
				if i%10 == 9 { // the upstream said 401 for this token
					if err := m.Refresh(ctx, &e.a, tok); err != nil {
						errc <- err
						return
					}
				}
			}
		})
	}
	// The CLI, in other processes, refreshes meanwhile.
	for range 5 {
		wg.Go(func() {
			if err := oauth.RefreshNow(ctx, e.cfg, e.openAgain(t), e.a.ID); err != nil {
				errc <- err
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Errorf("during load: %v", err)
	}
	if inv := e.s.InvalidGrants(); inv != 0 {
		t.Errorf("%d invalid_grant answers, want 0", inv)
	}
	st := e.stored(t)
	if !e.s.RefreshTokenValid(st.RefreshToken) || !e.s.AccessTokenValid(st.AccessToken) {
		t.Error("the stored pair is not valid: a refresh token was lost")
	}
	if st.State.Status != llmgw.StatusActive {
		t.Errorf("status %q, want active", st.State.Status)
	}
	m.Sync(snapshot(t, e.db))
	if tok, err := m.AccessToken(ctx, &e.a); err != nil || tok != st.AccessToken {
		t.Errorf("after Sync the Manager serves %q, %v; want the stored token", tok, err)
	}
}

func TestManager_RestartUsesRefreshedTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, -time.Minute)
	tok, err := e.manager(t, e.db).AccessToken(context.Background(), &e.a)
	if err != nil {
		t.Fatal(err)
	}
	// A new process: new handle, new Manager, the account as the snapshot
	// has it.
	db := e.openAgain(t)
	snap := snapshot(t, db)
	m := oauth.NewManager(e.cfg, db)
	m.Sync(snap)
	got, err := m.AccessToken(context.Background(), &snap.Accounts[0])
	if err != nil || got != tok {
		t.Errorf("after restart AccessToken = %q, %v; want the refreshed token", got, err)
	}
	if c := e.s.RefreshCalls(); c != 1 {
		t.Errorf("%d refresh calls, want 1", c)
	}
}

func TestManager_SyncNeverTakesOlderTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, -time.Minute)
	old := snapshot(t, e.db)
	m := oauth.NewManager(e.cfg, e.db)
	m.Sync(old)
	tok, err := m.AccessToken(context.Background(), &e.a)
	if err != nil {
		t.Fatal(err)
	}
	m.Sync(old) // a reload that raced the refresh
	if got, err := m.AccessToken(context.Background(), &old.Accounts[0]); err != nil || got != tok {
		t.Errorf("after an old snapshot AccessToken = %q, %v; want the refreshed token", got, err)
	}

	// A newer generation from elsewhere (CLI refresh) is taken.
	if err := oauth.RefreshNow(context.Background(), e.cfg, e.openAgain(t), e.a.ID); err != nil {
		t.Fatal(err)
	}
	m.Sync(snapshot(t, e.db))
	if got, err := m.AccessToken(context.Background(), &e.a); err != nil || got == tok || got != e.stored(t).AccessToken {
		t.Errorf("after a newer snapshot AccessToken = %q, %v; want the CLI's token", got, err)
	}
	if c := e.s.RefreshCalls(); c != 2 {
		t.Errorf("%d refresh calls, want 2", c)
	}
}

func TestRefreshNow_APIKeyAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Hour)
	k := llmgw.Account{Name: "key", Type: llmgw.AccountAPIKey, APIKey: "sk-ant-api03-fake-0123456789", BaseURL: llmgw.DefaultBaseURL, Weight: 1}
	if err := e.db.InsertAccount(context.Background(), &k); err != nil {
		t.Fatal(err)
	}
	err := oauth.RefreshNow(context.Background(), e.cfg, e.db, k.ID)
	if !errors.Is(err, llmgw.ErrInvalid) {
		t.Errorf("RefreshNow of an API-key account: err = %v, want ErrInvalid", err)
	}
}

// notifications collects what Config.Notify hears.
type notifications struct {
	mu  sync.Mutex
	got []llmgw.Event
}

func (n *notifications) notify(e llmgw.Event) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, e)
}

func (n *notifications) kinds() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, e := range n.got {
		out = append(out, string(e.Kind)+" "+e.Account)
	}
	return out
}

// Three transient failures in a row are told once; the refresh that works
// again is told once too.
func TestManager_NotifiesRefreshFailing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, -time.Minute)
	var n notifications
	e.cfg.Notify = n.notify
	m := e.manager(t, e.db)
	ctx := context.Background()
	e.s.Script(oauthtest.Reply{Status: 503}, oauthtest.Reply{Status: 503}, oauthtest.Reply{Status: 503}, oauthtest.Reply{Status: 503})
	for i := range 4 {
		if _, err := m.AccessToken(ctx, &e.a); err == nil {
			t.Fatalf("refresh %d worked through a 503", i+1)
		}
		if got := len(n.kinds()); got != min(i/2, 1) {
			t.Errorf("after %d failures: %d notifications, want %d", i+1, got, min(i/2, 1))
		}
		e.clk.Advance(maxBackoffForTest)
	}
	if _, err := m.AccessToken(ctx, &e.a); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"refresh_failing max", "recovered max"}, n.kinds()); diff != "" {
		t.Errorf("notifications (-want +got):\n%s", diff)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if r := n.got[0].Reason; !strings.Contains(r, "3 token refreshes in a row failed") || !strings.Contains(r, "503") {
		t.Errorf("reason %q", r)
	}
}

// maxBackoffForTest is past the longest backoff between refresh tries.
const maxBackoffForTest = 6 * time.Minute

// A dead refresh token puts the account in error and says how to log in.
func TestManager_NotifiesInvalidGrant(t *testing.T) {
	t.Parallel()
	e := newEnv(t, -time.Minute)
	var n notifications
	e.cfg.Notify = n.notify
	m := e.manager(t, e.db)
	e.s.Revoke(e.a.RefreshToken)
	for range 2 {
		_, _ = m.AccessToken(context.Background(), &e.a) // fails: the token is dead
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.got) != 1 || n.got[0].Kind != llmgw.EventAccountError || n.got[0].Fix != "llmgw account login --name max" ||
		!strings.Contains(n.got[0].Reason, "invalid_grant") || n.got[0].Time.IsZero() {
		t.Errorf("notifications = %+v, want one account_error with the login fix", n.got)
	}
}

func TestManager_OnRefreshReportsOutcomes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, -time.Minute)
	var (
		mu  sync.Mutex
		got []string
	)
	e.cfg.OnRefresh = func(account, outcome string) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, account+" "+outcome)
	}
	m := e.manager(t, e.db)
	if _, err := m.AccessToken(context.Background(), &e.a); err != nil {
		t.Fatal(err)
	}
	rejected, err := m.AccessToken(context.Background(), &e.a)
	if err != nil {
		t.Fatal(err)
	}
	e.s.Revoke(e.stored(t).RefreshToken)
	if err := m.Refresh(context.Background(), &e.a, rejected); !errors.Is(err, oauth.ErrLoginRequired) {
		t.Fatalf("Refresh with a revoked refresh token: err = %v, want ErrLoginRequired", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"max ok", "max login_required"}, got); diff != "" {
		t.Errorf("OnRefresh calls (-want +got):\n%s", diff)
	}
}

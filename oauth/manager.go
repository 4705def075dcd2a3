package oauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/llmgw/llmgw"
)

// Backoff of the background refresh after a transient failure.
const (
	minBackoff = 5 * time.Second
	maxBackoff = 5 * time.Minute
	// flightTimeout bounds one shared refresh, waiting for another
	// process's lease included.
	flightTimeout = leaseTTL + httpBudget + saveBudget
	// defaultLifetime is assumed for a token whose issue time is unknown
	// (imported), when working out the default refresh lead.
	defaultLifetime = 8 * time.Hour
	// stopGrace is how long a background token request already under way
	// when Run's ctx ends may still take to answer before it is cancelled.
	// A healthy endpoint answers well within it, and its answer (a rotated
	// refresh token) is then stored rather than lost; a hanging one no
	// longer holds up a shutdown for the whole token request timeout.
	stopGrace = 2 * time.Second
	// failingRefreshes and failingFor say when transient refresh failures
	// become an llmgw.EventRefreshFailing, whichever comes first: three in
	// a row (about 35 s with the backoff), or a streak that has lasted ten
	// minutes (a long retry-after from the token endpoint). One failure is
	// common and heals by itself; a streak means the token may expire
	// before a refresh succeeds.
	failingRefreshes = 3
	failingFor       = 10 * time.Minute
)

// Manager holds the access tokens of every OAuth account in memory, hands
// them to the proxy without touching the database, and refreshes them: in
// the background ahead of expiry (Run), inline only for a token that has
// already expired (AccessToken), and after an upstream 401 (Refresh). One
// refresh per account at a time: single flight here, lease and
// compare-and-swap across processes (TokenStore).
//
// The methods are safe for concurrent use. Sync must be called with every
// snapshot the server loads, the first before serving.
type Manager struct {
	cfg  Config
	r    *refresher
	log  *slog.Logger
	sf   singleflight.Group
	wake chan struct{} // tells Run to plan again; capacity 1

	mu    sync.Mutex
	accts map[int64]*entry
}

// entry is what the Manager knows about one account. Guarded by Manager.mu.
type entry struct {
	name       string
	status     llmgw.AccountStatus
	access     string
	expires    time.Time // zero if unknown
	issued     time.Time // last refresh; zero if unknown
	gen        int64
	hasRefresh bool

	failures int       // transient refresh failures in a row
	since    time.Time // when the streak of failures began
	alerted  bool      // the streak was told to Config.Notify
	retryAt  time.Time // no refresh before this while failures > 0
	lastErr  error
	dead     error          // a *LoginRequiredError until a newer generation arrives
	pending  *unsavedError  // a refreshed pair still to be stored
	running  bool           // Run has a refresh of this account under way
	lastLog  refreshOutcome // what was last logged, so a streak logs once
}

type refreshOutcome int

const (
	outcomeOK refreshOutcome = iota
	outcomeFailing
	outcomeDead
)

// NewManager returns a Manager that stores refreshed tokens through st. It
// panics if st is nil.
func NewManager(cfg Config, st TokenStore) *Manager {
	r := newRefresher(cfg, st)
	return &Manager{
		cfg:   cfg,
		r:     r,
		log:   r.log,
		wake:  make(chan struct{}, 1),
		accts: make(map[int64]*entry),
	}
}

// take copies a's tokens into e, forgetting any refresh trouble: they are
// new tokens.
func (e *entry) take(a *llmgw.Account) {
	e.access, e.expires, e.issued = a.AccessToken, a.ExpiresAt, a.LastRefresh
	e.gen, e.hasRefresh = a.TokenGeneration, a.RefreshToken != ""
	e.failures, e.retryAt, e.lastErr, e.dead, e.pending = 0, time.Time{}, nil, nil, nil
	e.since = time.Time{}
}

// Sync takes the tokens of every OAuth account in snap whose generation is
// newer than the one held (a login, an import or a CLI refresh in another
// process), and forgets accounts that are gone. A snapshot never replaces
// newer tokens: a refresh this Manager stored may be newer than the
// snapshot.
func (m *Manager) Sync(snap *llmgw.Snapshot) {
	m.mu.Lock()
	seen := make(map[int64]bool, len(snap.Accounts))
	for i := range snap.Accounts {
		a := &snap.Accounts[i]
		if a.Type != llmgw.AccountOAuth {
			continue
		}
		seen[a.ID] = true
		m.lookup(a).status = a.State.Status
	}
	for id := range m.accts {
		if !seen[id] {
			delete(m.accts, id)
		}
	}
	m.mu.Unlock()
	m.poke()
}

// lookup returns a's entry, creating it or taking a's tokens if they are
// newer. The caller holds m.mu.
func (m *Manager) lookup(a *llmgw.Account) *entry {
	e := m.accts[a.ID]
	switch {
	case e == nil:
		e = &entry{status: a.State.Status}
		e.take(a)
		m.accts[a.ID] = e
	case a.TokenGeneration > e.gen:
		e.take(a)
	}
	e.name = a.Name
	return e
}

func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// AccessToken returns a's access token from memory. Only if it has already
// expired does it refresh inline, once for all callers (single flight), and
// the token is stored before it is returned. While refreshes of the account
// are failing and backing off, an expired token gives an error at once
// rather than another try. It returns a *LoginRequiredError if the
// account's refresh token is dead.
func (m *Manager) AccessToken(ctx context.Context, a *llmgw.Account) (string, error) {
	now := m.cfg.now()
	m.mu.Lock()
	e := m.lookup(a)
	tok, exp := e.access, e.expires
	blocked := e.blocked(now)
	m.mu.Unlock()
	if tok != "" && (exp.IsZero() || now.Before(exp)) {
		return tok, nil
	}
	if blocked != nil {
		return "", blocked
	}
	got, err := m.inline(ctx, a.ID, func(row *llmgw.Account) bool {
		return row.AccessToken == "" || (!row.ExpiresAt.IsZero() && !m.cfg.now().Before(row.ExpiresAt))
	})
	if err != nil {
		return "", err
	}
	return got.AccessToken, nil
}

// blocked returns why no refresh should be tried now, or nil. The caller
// holds m.mu.
func (e *entry) blocked(now time.Time) error {
	switch {
	case e.dead != nil:
		return e.dead
	case e.failures > 0 && now.Before(e.retryAt):
		return fmt.Errorf("account %s: token refresh is failing, next try at %s: %w",
			e.name, e.retryAt.Format(time.RFC3339), e.lastErr)
	}
	return nil
}

// Refresh renews a's access token after the upstream rejected rejected (a
// 401). If the token held is no longer rejected, someone has refreshed it
// already and Refresh returns nil at once; otherwise one refresh runs,
// shared with every other caller (single flight, and lease plus
// compare-and-swap across processes). Call AccessToken afterwards for the
// new token. It returns a *LoginRequiredError if the refresh token is dead.
func (m *Manager) Refresh(ctx context.Context, a *llmgw.Account, rejected string) error {
	m.mu.Lock()
	e := m.lookup(a)
	cur := e.access
	blocked := e.blocked(m.cfg.now())
	m.mu.Unlock()
	if cur != rejected {
		return nil
	}
	if blocked != nil {
		return blocked
	}
	_, err := m.inline(ctx, a.ID, func(row *llmgw.Account) bool { return row.AccessToken == rejected })
	return err
}

// flight runs one refresh of account id shared by every concurrent caller
// and records its outcome. The refresh runs under runCtx (if this call
// starts it) and the caller waits until waitCtx ends.
func (m *Manager) flight(runCtx, waitCtx context.Context, id int64, need func(*llmgw.Account) bool) (*llmgw.Account, error) {
	ch := m.sf.DoChan(strconv.FormatInt(id, 10), func() (any, error) {
		ctx, cancel := context.WithTimeout(runCtx, flightTimeout)
		defer cancel()
		got, err := m.r.refresh(ctx, id, need)
		m.record(id, got, err)
		return got, err
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*llmgw.Account), nil
	case <-waitCtx.Done():
		return nil, fmt.Errorf("refresh token: %w", waitCtx.Err())
	}
}

// inline runs a refresh on the request path: it outlives the caller's ctx,
// since other callers may be waiting for it, and the caller stops waiting
// when its ctx ends.
func (m *Manager) inline(ctx context.Context, id int64, need func(*llmgw.Account) bool) (*llmgw.Account, error) {
	return m.flight(context.WithoutCancel(ctx), ctx, id, need)
}

// record keeps the outcome of a refresh of account id.
func (m *Manager) record(id int64, got *llmgw.Account, err error) {
	now := m.cfg.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.poke()
	e := m.accts[id]
	if e == nil {
		if got == nil {
			return // removed meanwhile, and nothing to keep
		}
		e = &entry{name: got.Name, status: got.State.Status}
		m.accts[id] = e
	}
	var (
		lre *LoginRequiredError
		ue  *unsavedError
	)
	m.reportRefresh(e.name, err)
	switch {
	case err == nil:
		if got.TokenGeneration >= e.gen {
			e.take(got)
		}
		if e.lastLog != outcomeOK {
			m.log.Info("token refresh works again", "account", e.name)
			e.lastLog = outcomeOK
		}
		if e.alerted {
			e.alerted = false
			m.notify(llmgw.Event{Kind: llmgw.EventRecovered, Account: e.name, Reason: "token refresh works again"})
		}
	case errors.Is(err, context.Canceled):
		// Run's ctx ended (a shutdown) during the refresh: not a failure of
		// the account; the next Run tries again.
		m.log.Info("token refresh abandoned: stopping", "account", e.name)
	case errors.As(err, &lre):
		e.dead = lre
		if e.lastLog != outcomeDead {
			m.log.Error("account needs a new login", "account", e.name, "reason", lre.Reason)
			e.lastLog = outcomeDead
			e.alerted = false // the account_error below ends the refresh_failing episode
			m.notify(llmgw.Event{Kind: llmgw.EventAccountError, Account: e.name, Reason: lre.Reason,
				Fix: "llmgw account login --name " + e.name})
		}
	default:
		if errors.As(err, &ue) {
			e.pending = ue
		}
		if e.failures == 0 {
			e.since = now
		}
		e.failures++
		e.lastErr = err
		e.retryAt = now.Add(backoff(e.failures, err))
		if !e.alerted && (e.failures >= failingRefreshes || now.Sub(e.since) >= failingFor) {
			e.alerted = true
			m.notify(llmgw.Event{Kind: llmgw.EventRefreshFailing, Account: e.name,
				Reason: fmt.Sprintf("%d token refreshes in a row failed since %s; the last: %v",
					e.failures, e.since.UTC().Format(time.RFC3339), err),
				Fix: "llmgw account refresh " + e.name})
		}
		if e.lastLog != outcomeFailing {
			// Logged once per streak; the account keeps its current token
			// while it is valid.
			m.log.Warn("token refresh failed: retrying with backoff", "account", e.name,
				"retry_in", e.retryAt.Sub(now).Round(time.Second).String(), "err", err)
			e.lastLog = outcomeFailing
		}
	}
}

// notify hands e to Config.Notify, stamped with the Manager's clock.
func (m *Manager) notify(e llmgw.Event) {
	if m.cfg.Notify == nil {
		return
	}
	e.Time = m.cfg.now()
	m.cfg.Notify(e)
}

// reportRefresh hands a refresh's outcome to Config.OnRefresh.
func (m *Manager) reportRefresh(account string, err error) {
	if m.cfg.OnRefresh == nil {
		return
	}
	var lre *LoginRequiredError
	switch {
	case err == nil:
		m.cfg.OnRefresh(account, "ok")
	case errors.Is(err, context.Canceled):
	case errors.As(err, &lre):
		m.cfg.OnRefresh(account, "login_required")
	default:
		m.cfg.OnRefresh(account, "failed")
	}
}

// backoff is how long to wait after the n-th failure in a row: 5 s doubling
// to 5 min, ±20 % jitter, and never less than the token endpoint's
// retry-after.
func backoff(n int, err error) time.Duration {
	d := maxBackoff
	if n <= 7 {
		d = min(minBackoff<<(n-1), maxBackoff)
	}
	d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	d = min(max(d, minBackoff), maxBackoff)
	var te *TokenError
	if errors.As(err, &te) && te.RetryAfter > d {
		d = te.RetryAfter
	}
	return d
}

// lead is how long before expiry a token is refreshed.
func (m *Manager) lead(expires, issued time.Time) time.Duration {
	if m.cfg.RefreshLead > 0 {
		return m.cfg.RefreshLead
	}
	life := defaultLifetime
	if !issued.IsZero() && expires.After(issued) {
		life = expires.Sub(issued)
	}
	return min(30*time.Minute, life/2)
}

// dueAt is when the background loop should refresh e, and whether it should
// at all. The caller holds m.mu.
func (m *Manager) dueAt(e *entry, now time.Time) (time.Time, bool) {
	switch {
	case e.running || e.dead != nil || e.status == llmgw.StatusError:
		return time.Time{}, false
	case e.pending != nil:
		return e.retryAt, true
	case !e.hasRefresh:
		return time.Time{}, false
	}
	var at time.Time
	switch {
	case e.expires.IsZero() && e.issued.IsZero():
		at = now // an imported token of unknown age: refresh once to learn
	case e.expires.IsZero():
		return time.Time{}, false // the server gives no expiry: nothing to plan
	default:
		at = e.expires.Add(-m.lead(e.expires, e.issued))
	}
	if e.failures > 0 && e.retryAt.After(at) {
		at = e.retryAt
	}
	return at, true
}

// Run refreshes every OAuth account's token ahead of its expiry until ctx
// ends. Then it starts no new refresh, gives a token request under way
// stopGrace (2 s) to answer before cancelling it, and returns once its
// refreshes have finished; a pair already received is still stored. A
// transient failure (network, 5xx, 429) is retried with exponential backoff
// from 5 s to 5 min with jitter, honouring retry-after, and the account
// keeps its current token while it is valid. An account in status error,
// or whose refresh token is dead, is left alone until new tokens arrive
// through Sync. Run must be called at most once at a time.
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		now := m.cfg.now()
		next := now.Add(time.Hour)
		var due []int64
		m.mu.Lock()
		for id, e := range m.accts {
			at, ok := m.dueAt(e, now)
			switch {
			case !ok:
			case !at.After(now):
				e.running = true
				due = append(due, id)
			case at.Before(next):
				next = at
			}
		}
		m.mu.Unlock()
		for _, id := range due {
			wg.Go(func() { m.background(ctx, id) })
		}
		timer.Reset(next.Sub(now))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-m.wake:
		}
	}
}

// graceful returns a context that ends grace after ctx does, or when its
// cancel func is called.
func graceful(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-gctx.Done():
		}
	})
	return gctx, func() {
		stop()
		cancel()
	}
}

// background is one refresh the Run loop decided on: storing a pending pair,
// or refreshing a token near its expiry.
func (m *Manager) background(ctx context.Context, id int64) {
	defer func() {
		m.mu.Lock()
		if e := m.accts[id]; e != nil {
			e.running = false
		}
		m.mu.Unlock()
		m.poke()
	}()
	m.mu.Lock()
	e := m.accts[id]
	if e == nil {
		m.mu.Unlock()
		return
	}
	pending := e.pending
	m.mu.Unlock()
	if pending != nil {
		m.savePending(ctx, pending)
		return
	}
	// When ctx ends, the refresh (or the wait for one that a request
	// started) gets stopGrace before it is cancelled: long enough for a
	// healthy token endpoint to answer, so that a rotated pair is not
	// lost, and short enough that a hanging one does not hold up the
	// shutdown (and the database) for the token request timeout.
	gctx, cancel := graceful(ctx, stopGrace)
	defer cancel()
	_, _ = m.flight(gctx, gctx, id, func(row *llmgw.Account) bool {
		if row.RefreshToken == "" {
			return false
		}
		if row.ExpiresAt.IsZero() {
			return row.LastRefresh.IsZero()
		}
		return !m.cfg.now().Before(row.ExpiresAt.Add(-m.lead(row.ExpiresAt, row.LastRefresh)))
	}) // the outcome is recorded (and logged) by flight
}

// savePending retries storing a refreshed pair the database refused.
func (m *Manager) savePending(ctx context.Context, p *unsavedError) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveBudget)
	defer cancel()
	saved, _, err := m.r.st.SaveRefresh(sctx, p.accountID, p.generation, p.tok)
	if err != nil {
		m.record(p.accountID, nil, &unsavedError{accountID: p.accountID, generation: p.generation, tok: p.tok, err: err})
		return
	}
	// Stored, or the generation moved (new tokens from a login): either
	// way the stored row is the one to use.
	m.record(p.accountID, saved, nil)
}

package oauth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/llmgw/llmgw"
)

// TokenStore is what refreshing needs from the database. store.DB implements
// it. Every method is one short transaction; none is held across the HTTP
// call to the token endpoint.
//
// Accounts pass through it as *llmgw.Account with the token fields filled
// (AccessToken, RefreshToken, ExpiresAt, Scopes, Email, AccountUUID,
// OrganizationUUID, TokenGeneration, LastRefresh, RefreshError), plus ID,
// Name, Type and State.
type TokenStore interface {
	// ClaimRefresh, in one write transaction, takes the refresh lease of the
	// account's token row for owner for ttl, unless another owner holds a
	// lease that has not run out; a lease owner already holds is renewed.
	// It returns the account as stored and whether the lease is owner's.
	// An account without a token row is an error wrapping llmgw.ErrNotFound.
	ClaimRefresh(ctx context.Context, accountID int64, owner string, ttl time.Duration) (*llmgw.Account, bool, error)
	// SaveRefresh is the compare-and-swap of a refreshed pair: if the row's
	// generation is still generation, it stores tok's AccessToken,
	// ExpiresAt and LastRefresh, and its RefreshToken, Scopes, Email,
	// AccountUUID and OrganizationUUID where they are not empty (keeping
	// the stored ones otherwise); it moves the generation on, clears the
	// refresh error and any lease, and returns the stored account and true.
	// If the generation has moved, it writes nothing and returns the stored
	// account and false.
	SaveRefresh(ctx context.Context, accountID, generation int64, tok *llmgw.Account) (*llmgw.Account, bool, error)
	// ReleaseRefresh ends owner's lease, if owner still holds it, and
	// records failure as the row's refresh error when failure is not
	// empty.
	ReleaseRefresh(ctx context.Context, accountID int64, owner, failure string) error
	// OAuthAccount reads the account with its token row. An unknown
	// account is an error wrapping llmgw.ErrNotFound.
	OAuthAccount(ctx context.Context, accountID int64) (*llmgw.Account, error)
	// MarkAccountError puts the account in status error with reason, stamped
	// with the current time, so that a running server reloads and stops
	// using it.
	MarkAccountError(ctx context.Context, accountID int64, reason string) error
}

const (
	// leaseTTL is how long a refresh lease lasts. It covers the token
	// request (at most httpBudget) and the save after it, so a lease never
	// runs out while its holder is still using the refresh token.
	leaseTTL = 2 * time.Minute
	// httpBudget bounds the token requests of one refresh: a JSON request
	// and possibly its form retry.
	httpBudget = 70 * time.Second
	// saveBudget bounds storing the result (with retries).
	saveBudget = 20 * time.Second
	// leasePoll is how often a process waiting for another's refresh looks
	// again.
	leasePoll = 100 * time.Millisecond
)

// refresher runs one refresh under the lease-and-swap rules. Manager and
// RefreshNow share it.
type refresher struct {
	cfg    Config
	st     TokenStore
	client *tokenClient
	owner  string // this refresher's lease owner id, unique per process and refresher
	log    *slog.Logger
}

func newRefresher(cfg Config, st TokenStore) *refresher {
	if st == nil {
		panic("oauth: a TokenStore is required")
	}
	return &refresher{cfg: cfg, st: st, client: newTokenClient(cfg), owner: newOwner(), log: cfg.logger()}
}

// newOwner returns a lease owner id: host, pid and a random part, so that
// two refreshers in one process differ too.
func newOwner() string {
	host, _ := os.Hostname() // only a label
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand does not fail on supported platforms
	return host + "/" + strconv.Itoa(os.Getpid()) + "/" + hex.EncodeToString(b)
}

// unsavedError is a refresh whose new pair could not be stored. The old
// refresh token is spent, so the pair must not be dropped: the Manager keeps
// it and retries the compare-and-swap; it does not use it before then.
type unsavedError struct {
	accountID  int64
	generation int64
	tok        *llmgw.Account
	err        error
}

func (e *unsavedError) Error() string {
	return "store refreshed tokens: " + e.err.Error()
}

func (e *unsavedError) Unwrap() error { return e.err }

// refresh brings account id's stored tokens up to date. need reports whether
// a stored row still needs a refresh; it is asked again every time the row is
// read, so a refresh that another goroutine or process finished meanwhile is
// taken rather than repeated. It returns the account as stored afterwards.
//
// Waiting for another process's lease and the token request follow ctx.
// Once the token endpoint has answered, the save does not: the old refresh
// token may be spent, so the new pair must be stored. A token request
// cancelled half way may also have been rotated by the server already, so a
// caller that must not abandon one passes a ctx that is never cancelled
// (inline refreshes do), and Run gives one a grace period.
func (r *refresher) refresh(ctx context.Context, id int64, need func(*llmgw.Account) bool) (*llmgw.Account, error) {
	row, claimed, err := r.claim(ctx, id, need)
	if err != nil || !claimed {
		return row, err
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), httpBudget+saveBudget)
	defer cancel()
	if row.RefreshToken == "" {
		return nil, r.loginRequired(sctx, row, "no refresh token", nil)
	}
	hctx, hcancel := context.WithTimeout(ctx, httpBudget)
	g, err := r.client.refresh(hctx, row.RefreshToken, row.Scopes)
	hcancel()
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		// The caller stopped (a shutdown): not the account's fault, so no
		// refresh error is recorded.
		r.release(sctx, id, "")
		return nil, fmt.Errorf("refresh token of account %s: %w", row.Name, ctx.Err())
	}
	if errors.Is(err, ErrInvalidGrant) {
		// Another process may have rotated the token after all (a login,
		// an import, a lease that ran out): then its pair is the good one.
		cur, rerr := r.st.OAuthAccount(sctx, id)
		if rerr == nil && cur.TokenGeneration != row.TokenGeneration {
			r.release(sctx, id, "")
			return cur, nil
		}
		return nil, r.loginRequired(sctx, row, "refresh token rejected (invalid_grant)", err)
	}
	if err != nil {
		r.release(sctx, id, err.Error())
		return nil, fmt.Errorf("refresh token of account %s: %w", row.Name, err)
	}
	tok := &llmgw.Account{
		AccessToken:      g.Token.AccessToken,
		RefreshToken:     g.Token.RefreshToken,
		ExpiresAt:        g.Token.Expiry,
		Scopes:           g.Scopes,
		Email:            g.Email,
		AccountUUID:      g.AccountUUID,
		OrganizationUUID: g.OrganizationUUID,
		LastRefresh:      r.cfg.now(),
	}
	saved, ok, err := r.save(sctx, id, row.TokenGeneration, tok)
	if err != nil {
		r.release(sctx, id, "refreshed tokens not saved")
		return nil, &unsavedError{accountID: id, generation: row.TokenGeneration, tok: tok, err: err}
	}
	if !ok {
		// A login or import replaced the tokens while we refreshed; the
		// operator's tokens win.
		r.release(sctx, id, "")
		r.log.Info("tokens were replaced during a refresh: keeping the replacement", "account", row.Name)
		return saved, nil
	}
	r.log.Info("access token refreshed", "account", row.Name, "expires_at", saved.ExpiresAt,
		"rotated", g.Token.RefreshToken != "", "generation", saved.TokenGeneration)
	return saved, nil
}

// claim takes the lease of account id unless the stored row no longer needs
// a refresh, waiting while another owner holds it. It returns the row and
// whether this refresher now holds the lease; a row returned without the
// lease needs no refresh.
func (r *refresher) claim(ctx context.Context, id int64, need func(*llmgw.Account) bool) (*llmgw.Account, bool, error) {
	for {
		row, claimed, err := r.st.ClaimRefresh(ctx, id, r.owner, leaseTTL)
		if err != nil {
			return nil, false, fmt.Errorf("claim refresh of account %d: %w", id, err)
		}
		if row.Type != llmgw.AccountOAuth {
			if claimed {
				r.release(ctx, id, "")
			}
			return nil, false, fmt.Errorf("account %s is not an oauth account: %w", row.Name, llmgw.ErrInvalid)
		}
		if !need(row) {
			if claimed {
				r.release(ctx, id, "")
			}
			return row, false, nil
		}
		if claimed {
			return row, true, nil
		}
		t := time.NewTimer(leasePoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, false, fmt.Errorf("wait for another refresh of account %s: %w", row.Name, ctx.Err())
		case <-t.C:
		}
	}
}

// save runs the compare-and-swap, retrying a failing database a few times:
// the pair it holds is the only one that works.
func (r *refresher) save(ctx context.Context, id, gen int64, tok *llmgw.Account) (*llmgw.Account, bool, error) {
	delay := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		saved, ok, err := r.st.SaveRefresh(ctx, id, gen, tok)
		if err == nil {
			return saved, ok, nil
		}
		if attempt == 4 || ctx.Err() != nil {
			return nil, false, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		delay *= 2
	}
}

// loginRequired puts the account in status error and returns the error that
// says so.
func (r *refresher) loginRequired(ctx context.Context, row *llmgw.Account, why string, cause error) error {
	reason := loginReason(row.Name, why)
	if err := r.st.MarkAccountError(ctx, row.ID, reason); err != nil {
		r.log.Error("account not marked as broken", "account", row.Name, "err", err)
	}
	r.release(ctx, row.ID, reason)
	return &LoginRequiredError{AccountID: row.ID, Reason: reason, Err: cause}
}

// release gives the lease back. If it fails, the lease runs out on its own
// within leaseTTL, so this is only logged.
func (r *refresher) release(ctx context.Context, id int64, failure string) {
	if err := r.st.ReleaseRefresh(ctx, id, r.owner, failure); err != nil {
		r.log.Warn("refresh lease not released", "account_id", id, "err", err)
	}
}

// RefreshNow refreshes one account's tokens at once, under the same lease
// and compare-and-swap rules as a running Manager, so it is safe while a
// server in another process uses the account: if a refresh is under way
// there, RefreshNow waits for it and counts it as its own. It is what
// "llmgw account refresh" runs. It returns a *LoginRequiredError (after
// putting the account in status error) if the refresh token is dead.
func RefreshNow(ctx context.Context, cfg Config, st TokenStore, accountID int64) error {
	r := newRefresher(cfg, st)
	a, err := st.OAuthAccount(ctx, accountID)
	if err != nil {
		return fmt.Errorf("refresh account %d: %w", accountID, err)
	}
	gen := a.TokenGeneration
	_, err = r.refresh(ctx, accountID, func(row *llmgw.Account) bool { return row.TokenGeneration == gen })
	return err
}

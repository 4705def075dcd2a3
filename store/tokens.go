package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/llmgw/llmgw"
)

// The methods in this file are the oauth package's TokenStore: the refresh
// lease and the compare-and-swap that let several processes share one
// account's rotating refresh token. The store does not import oauth; cli
// asserts that *DB satisfies the interface.

// ClaimRefresh takes the refresh lease of the account's token row for owner
// for ttl, in one write transaction, unless another owner holds a lease that
// has not run out; owner's own lease is renewed. It returns the account as
// stored (after the claim) and whether the lease is owner's. An API-key
// account has no token row: it is returned, never claimed. An unknown
// account is an error wrapping llmgw.ErrNotFound.
func (db *DB) ClaimRefresh(ctx context.Context, accountID int64, owner string, ttl time.Duration) (*llmgw.Account, bool, error) {
	tx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, fmt.Errorf("claim refresh of account %d: %w", accountID, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	now := ms(db.now())
	res, err := tx.ExecContext(ctx, `
		UPDATE oauth_tokens SET lease_owner = ?, lease_until = ?
		WHERE account_id = ? AND (lease_owner = '' OR lease_owner = ? OR lease_until <= ?)`,
		owner, now+ttl.Milliseconds(), accountID, owner, now)
	if err != nil {
		return nil, false, fmt.Errorf("claim refresh of account %d: %w", accountID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, false, fmt.Errorf("claim refresh of account %d: %w", accountID, err)
	}
	a, err := db.getAccountByID(ctx, tx, accountID)
	if err != nil {
		return nil, false, err
	}
	if err := tx.Commit(); err != nil {
		return nil, false, fmt.Errorf("claim refresh of account %d: %w", accountID, err)
	}
	return a, n == 1, nil
}

// SaveRefresh stores a refreshed token pair if the row's generation is still
// generation (the compare-and-swap): tok's AccessToken, ExpiresAt and
// LastRefresh always, its RefreshToken, Scopes, Email, AccountUUID and
// OrganizationUUID only where not empty (a refresh that did not rotate keeps
// the old refresh token). It moves the generation on, clears the refresh
// error and the lease, and returns the stored account and true. If the
// generation has moved (someone stored newer tokens), it writes nothing and
// returns the stored account and false.
func (db *DB) SaveRefresh(ctx context.Context, accountID, generation int64, tok *llmgw.Account) (*llmgw.Account, bool, error) {
	tx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, fmt.Errorf("save refreshed tokens of account %d: %w", accountID, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	s, err := db.sealFor(ctx, tx)
	if err != nil {
		return nil, false, fmt.Errorf("save refreshed tokens of account %d: %w", accountID, err)
	}
	// The compare-and-swap is on generation, never on the sealed tokens,
	// whose random nonces make equal tokens differ.
	access, err := sealAccount(s, accountID, colAccessToken, tok.AccessToken)
	if err != nil {
		return nil, false, fmt.Errorf("save refreshed tokens of account %d: %w", accountID, err)
	}
	refresh, err := sealAccount(s, accountID, colRefreshToken, tok.RefreshToken)
	if err != nil {
		return nil, false, fmt.Errorf("save refreshed tokens of account %d: %w", accountID, err)
	}
	scopes := strings.Join(tok.Scopes, " ")
	res, err := tx.ExecContext(ctx, `
		UPDATE oauth_tokens SET
			access_token = ?,
			refresh_token = CASE WHEN ? = '' THEN refresh_token ELSE ? END,
			expires_at = ?,
			scopes = CASE WHEN ? = '' THEN scopes ELSE ? END,
			email = CASE WHEN ? = '' THEN email ELSE ? END,
			account_uuid = CASE WHEN ? = '' THEN account_uuid ELSE ? END,
			organization_uuid = CASE WHEN ? = '' THEN organization_uuid ELSE ? END,
			generation = generation + 1,
			last_refresh_at = ?,
			refresh_error = '',
			lease_owner = '',
			lease_until = 0,
			updated_at = ?
		WHERE account_id = ? AND generation = ?`,
		access,
		refresh, refresh,
		ms(tok.ExpiresAt),
		scopes, scopes,
		tok.Email, tok.Email,
		tok.AccountUUID, tok.AccountUUID,
		tok.OrganizationUUID, tok.OrganizationUUID,
		ms(tok.LastRefresh), ms(db.now()),
		accountID, generation)
	if err != nil {
		return nil, false, fmt.Errorf("save refreshed tokens of account %d: %w", accountID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, false, fmt.Errorf("save refreshed tokens of account %d: %w", accountID, err)
	}
	a, err := db.getAccountByID(ctx, tx, accountID)
	if err != nil {
		return nil, false, err
	}
	if err := tx.Commit(); err != nil {
		return nil, false, fmt.Errorf("save refreshed tokens of account %d: %w", accountID, err)
	}
	return a, n == 1, nil
}

// ReleaseRefresh ends owner's lease on the account's token row, if owner
// still holds it, and records failure as the row's refresh error when it is
// not empty (a successful SaveRefresh clears it).
func (db *DB) ReleaseRefresh(ctx context.Context, accountID int64, owner, failure string) error {
	_, err := db.wdb.ExecContext(ctx, `
		UPDATE oauth_tokens SET
			lease_owner = CASE WHEN lease_owner = ? THEN '' ELSE lease_owner END,
			lease_until = CASE WHEN lease_owner = ? THEN 0 ELSE lease_until END,
			refresh_error = CASE WHEN ? = '' THEN refresh_error ELSE ? END
		WHERE account_id = ?`,
		owner, owner, failure, failure, accountID)
	if err != nil {
		return fmt.Errorf("release refresh of account %d: %w", accountID, err)
	}
	return nil
}

// OAuthAccount returns the account with the given ID, with its tokens,
// windows and owner keys. An unknown account is an error wrapping
// llmgw.ErrNotFound.
func (db *DB) OAuthAccount(ctx context.Context, accountID int64) (*llmgw.Account, error) {
	return db.getAccountByID(ctx, db.rdb, accountID)
}

// MarkAccountError puts the account in status error with reason, clears its
// cooldown and stamps the state with the current time, so that it beats
// every state the server decided earlier; the change counter moves, so a
// running server reloads. It is what a dead refresh token leads to. An
// unknown account is an error wrapping llmgw.ErrNotFound.
func (db *DB) MarkAccountError(ctx context.Context, accountID int64, reason string) error {
	now := ms(db.now())
	res, err := db.wdb.ExecContext(ctx, `
		UPDATE accounts SET status = 'error', status_reason = ?, cooldown_until = 0, state_at = ?, updated_at = ?
		WHERE id = ?`,
		reason, now, now, accountID)
	if err != nil {
		return fmt.Errorf("mark account %d broken: %w", accountID, err)
	}
	return mustAffect(res, "account", fmt.Sprint(accountID))
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/llmgw/llmgw"
)

// accountColumns are read by scanAccount, in this order. The LEFT JOINs give
// NULLs for accounts without tokens or windows, hence the COALESCEs. Owner
// keys are read separately (attachOwners).
const accountColumns = `
	a.id, a.name, a.type, a.status, a.status_reason, a.api_key, a.base_url,
	a.priority, a.weight, a.max_concurrency, a.models, a.cooldown_until,
	a.last_error, a.state_at, a.created_at, a.updated_at, a.limits,
	COALESCE(t.access_token, ''), COALESCE(t.refresh_token, ''), COALESCE(t.expires_at, 0),
	COALESCE(t.scopes, ''), COALESCE(t.email, ''), COALESCE(t.account_uuid, ''),
	COALESCE(t.organization_uuid, ''), COALESCE(t.generation, 0), COALESCE(t.last_refresh_at, 0),
	COALESCE(t.refresh_error, ''),
	COALESCE(w.status, ''), COALESCE(w.h5_status, ''), COALESCE(w.h5_utilization, 0), COALESCE(w.h5_reset, 0),
	COALESCE(w.d7_status, ''), COALESCE(w.d7_utilization, 0), COALESCE(w.d7_reset, 0), COALESCE(w.observed_at, 0),
	a.family_cooldowns, COALESCE(w.representative_claim, '')
	FROM accounts a
	LEFT JOIN oauth_tokens t ON t.account_id = a.id
	LEFT JOIN account_windows w ON w.account_id = a.id`

type scanner interface{ Scan(dest ...any) error }

func scanAccount(s scanner) (llmgw.Account, error) {
	var (
		a                                  llmgw.Account
		models, scopes, limits             string
		cooldown, stateAt, created, update int64
		expires, lastRefresh               int64
		h5Reset, d7Reset, observed         int64
		familyCooldowns                    string
	)
	w := &a.Windows
	err := s.Scan(&a.ID, &a.Name, &a.Type, &a.State.Status, &a.State.Reason, &a.APIKey, &a.BaseURL,
		&a.Priority, &a.Weight, &a.MaxConcurrency, &models, &cooldown,
		&a.State.LastError, &stateAt, &created, &update, &limits,
		&a.AccessToken, &a.RefreshToken, &expires,
		&scopes, &a.Email, &a.AccountUUID,
		&a.OrganizationUUID, &a.TokenGeneration, &lastRefresh,
		&a.RefreshError,
		&w.Status, &w.FiveHour.Status, &w.FiveHour.Utilization, &h5Reset,
		&w.SevenDay.Status, &w.SevenDay.Utilization, &d7Reset, &observed,
		&familyCooldowns, &w.Claim)
	if err != nil {
		return a, err
	}
	a.Models = splitModels(models)
	if a.Limits, err = llmgw.ParseLimits(limits); err != nil {
		return a, fmt.Errorf("account %s: stored limits: %w", a.Name, err)
	}
	a.Scopes = strings.Fields(scopes)
	if len(a.Scopes) == 0 {
		a.Scopes = nil
	}
	a.State.CooldownUntil = fromMs(cooldown)
	if a.State.FamilyCooldowns, err = decodeFamilyCooldowns(familyCooldowns); err != nil {
		return a, fmt.Errorf("account %s: %w", a.Name, err)
	}
	a.State.At = fromMs(stateAt)
	a.CreatedAt = fromMs(created)
	a.UpdatedAt = fromMs(update)
	a.ExpiresAt = fromMs(expires)
	a.LastRefresh = fromMs(lastRefresh)
	w.FiveHour.ResetsAt, w.SevenDay.ResetsAt, w.At = fromMs(h5Reset), fromMs(d7Reset), fromMs(observed)
	return a, nil
}

// attachOwners fills in the owner keys of accts from account_owners.
func attachOwners(ctx context.Context, q queryer, accts []llmgw.Account) error {
	if len(accts) == 0 {
		return nil
	}
	query, args := `SELECT account_id, key_name FROM account_owners ORDER BY account_id, key_name`, []any(nil)
	if len(accts) == 1 {
		query, args = `SELECT account_id, key_name FROM account_owners WHERE account_id = ? ORDER BY key_name`, []any{accts[0].ID}
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("read owner keys: %w", err)
	}
	defer rows.Close()
	owners := map[int64][]string{}
	for rows.Next() {
		var (
			id   int64
			name string
		)
		if err := rows.Scan(&id, &name); err != nil {
			return fmt.Errorf("read owner keys: %w", err)
		}
		owners[id] = append(owners[id], name)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read owner keys: %w", err)
	}
	for i := range accts {
		accts[i].OwnerKeys = owners[accts[i].ID]
	}
	return nil
}

// splitModels and joinModels convert the allowlist to and from its stored
// form, a comma-separated list; checkModels keeps commas out of patterns.
func splitModels(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func joinModels(models []string) string { return strings.Join(models, ",") }

// validate runs the domain checks plus the one the storage format adds.
func validate(a *llmgw.Account) error {
	if err := a.Validate(); err != nil {
		return err
	}
	for _, p := range a.Models {
		if p == "" || strings.Contains(p, ",") {
			return fmt.Errorf("%w: account %s: model pattern %q must be non-empty and contain no comma", llmgw.ErrInvalid, a.Name, p)
		}
	}
	for _, k := range a.OwnerKeys {
		if strings.TrimSpace(k) == "" || strings.ContainsAny(k, " \t\r\n,") {
			return fmt.Errorf("%w: account %s: owner key name %q must be non-empty, without spaces or commas", llmgw.ErrInvalid, a.Name, k)
		}
	}
	if st := a.State.Status; st != "" && !validStatus(st) {
		return fmt.Errorf("%w: account %s: status must be active, disabled or error, not %q", llmgw.ErrInvalid, a.Name, st)
	}
	return nil
}

func validStatus(st llmgw.AccountStatus) bool {
	return st == llmgw.StatusActive || st == llmgw.StatusDisabled || st == llmgw.StatusError
}

// InsertAccount validates and stores a new account, and for an OAuth account
// its tokens. It sets a.ID, a.CreatedAt, a.UpdatedAt and a.State.At; the
// status is active unless a.State.Status says otherwise. It returns an error
// wrapping llmgw.ErrInvalid if validation fails and llmgw.ErrConflict if the
// name is taken.
func (db *DB) InsertAccount(ctx context.Context, a *llmgw.Account) error {
	if err := validate(a); err != nil {
		return err
	}
	tx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("insert account %s: %w", a.Name, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	b := *a
	if err := db.insertAccount(ctx, tx, &b); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("insert account %s: %w", a.Name, err)
	}
	*a = b // only once it is stored
	return nil
}

// insertAccount inserts a validated account and fills in what the store
// decides: ID, times and the initial state.
func (db *DB) insertAccount(ctx context.Context, tx *sql.Tx, a *llmgw.Account) error {
	now := db.now()
	if a.State.Status == "" {
		a.State.Status = llmgw.StatusActive
	}
	a.State.At = now
	s, err := db.sealFor(ctx, tx)
	if err != nil {
		return fmt.Errorf("insert account %s: %w", a.Name, err)
	}
	// RETURNING rather than LastInsertId, which PostgreSQL's driver lacks.
	err = tx.QueryRowContext(ctx, `
		INSERT INTO accounts (name, type, status, status_reason, api_key, base_url,
			priority, weight, max_concurrency, models, cooldown_until, last_error,
			state_at, created_at, updated_at, limits)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id`,
		a.Name, a.Type, a.State.Status, a.State.Reason, "", a.BaseURL,
		a.Priority, a.Weight, a.MaxConcurrency, joinModels(a.Models), ms(a.State.CooldownUntil), a.State.LastError,
		ms(now), ms(now), ms(now), llmgw.FormatLimits(a.Limits)).Scan(&a.ID)
	if err != nil {
		return fmt.Errorf("insert account %s: %w", a.Name, conflict(err))
	}
	// The ID is part of the sealed key's associated data, so the key goes
	// in once the row has one.
	if a.APIKey != "" {
		key, err := sealAccount(s, a.ID, colAPIKey, a.APIKey)
		if err != nil {
			return fmt.Errorf("insert account %s: %w", a.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET api_key = ? WHERE id = ?`, key, a.ID); err != nil {
			return fmt.Errorf("insert account %s: %w", a.Name, err)
		}
	}
	a.CreatedAt, a.UpdatedAt = fromMs(ms(now)), fromMs(ms(now)) // as they will read back
	if err := putOwners(ctx, tx, a); err != nil {
		return err
	}
	if a.Type == llmgw.AccountOAuth {
		return db.putTokens(ctx, tx, a)
	}
	return nil
}

// putOwners replaces the account's owner keys with a.OwnerKeys, sorted and
// without repeats (as they read back).
func putOwners(ctx context.Context, tx *sql.Tx, a *llmgw.Account) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM account_owners WHERE account_id = ?`, a.ID); err != nil {
		return fmt.Errorf("store owner keys of account %s: %w", a.Name, err)
	}
	if len(a.OwnerKeys) == 0 {
		a.OwnerKeys = nil
		return nil
	}
	keys := slices.Clone(a.OwnerKeys)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	for _, k := range keys {
		if _, err := tx.ExecContext(ctx, `INSERT INTO account_owners (account_id, key_name) VALUES (?, ?)`, a.ID, k); err != nil {
			return fmt.Errorf("store owner keys of account %s: %w", a.Name, err)
		}
	}
	a.OwnerKeys = keys
	return nil
}

// putTokens stores an account's OAuth tokens and the facts that came with
// them (scopes, e-mail, account and organization ids, last refresh) as the
// operator gave them, and sets a.TokenGeneration to the stored generation.
// A replacement moves the generation on, so that a refresh that started
// from the old tokens loses its compare-and-swap instead of overwriting the
// new ones.
//
// Replacing is skipped when it would change nothing (the same access and
// refresh token: re-importing a file) or when the given tokens are older
// than the stored ones (their expiry is earlier): the server has refreshed
// since the file was written, and the file's refresh token is spent. An
// expiry of zero counts as unknown and replaces.
func (db *DB) putTokens(ctx context.Context, tx *sql.Tx, a *llmgw.Account) error {
	s, err := db.sealFor(ctx, tx)
	if err != nil {
		return fmt.Errorf("store tokens of account %s: %w", a.Name, err)
	}
	// Sealing uses a random nonce, so equal tokens are told apart from new
	// ones by their plain text, not in SQL.
	var (
		stored       llmgw.Account
		expires, gen int64
	)
	stored.ID, stored.Name = a.ID, a.Name
	err = tx.QueryRowContext(ctx, `SELECT access_token, refresh_token, expires_at, generation FROM oauth_tokens WHERE account_id = ?`,
		a.ID).Scan(&stored.AccessToken, &stored.RefreshToken, &expires, &gen)
	switch {
	case errors.Is(err, sql.ErrNoRows): // a new token row
	case err != nil:
		return fmt.Errorf("store tokens of account %s: %w", a.Name, err)
	default:
		if err := db.openSecrets(&stored); err != nil {
			return fmt.Errorf("store tokens of account %s: %w", a.Name, err)
		}
		same := stored.AccessToken == a.AccessToken && stored.RefreshToken == a.RefreshToken
		older := ms(a.ExpiresAt) != 0 && ms(a.ExpiresAt) < expires
		if same || older { // kept the stored tokens
			a.TokenGeneration = gen
			return nil
		}
	}
	access, err := sealAccount(s, a.ID, colAccessToken, a.AccessToken)
	if err != nil {
		return fmt.Errorf("store tokens of account %s: %w", a.Name, err)
	}
	refresh, err := sealAccount(s, a.ID, colRefreshToken, a.RefreshToken)
	if err != nil {
		return fmt.Errorf("store tokens of account %s: %w", a.Name, err)
	}
	err = tx.QueryRowContext(ctx, `
		INSERT INTO oauth_tokens (account_id, access_token, refresh_token, expires_at, scopes, email,
			account_uuid, organization_uuid, generation, last_refresh_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)
		ON CONFLICT (account_id) DO UPDATE SET
			access_token = excluded.access_token,
			refresh_token = excluded.refresh_token,
			expires_at = excluded.expires_at,
			scopes = excluded.scopes,
			email = excluded.email,
			account_uuid = excluded.account_uuid,
			organization_uuid = excluded.organization_uuid,
			last_refresh_at = excluded.last_refresh_at,
			updated_at = excluded.updated_at,
			generation = oauth_tokens.generation + 1,
			refresh_error = ''
		RETURNING generation`,
		a.ID, access, refresh, ms(a.ExpiresAt), strings.Join(a.Scopes, " "), a.Email,
		a.AccountUUID, a.OrganizationUUID, ms(a.LastRefresh), ms(db.now()),
	).Scan(&a.TokenGeneration)
	if err != nil {
		return fmt.Errorf("store tokens of account %s: %w", a.Name, err)
	}
	return nil
}

// UpsertAccounts creates or updates accounts by name, all in one
// transaction: either every account is stored or, on any error, nothing
// changes. Every account is validated before anything is written; the error
// then wraps llmgw.ErrInvalid and lists every problem.
//
// An update replaces the configuration, the owner keys and the secrets, and
// keeps the account's ID, state and statistics. OAuth tokens are replaced
// as putTokens says: not by identical or older ones. Storing the same
// accounts twice is harmless and counts them as updated. accts is not
// modified.
func (db *DB) UpsertAccounts(ctx context.Context, accts []llmgw.Account) (created, updated int, err error) {
	if err := validateAll(accts); err != nil {
		return 0, 0, err
	}
	tx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("upsert accounts: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if created, updated, err = db.upsertAccounts(ctx, tx, accts); err != nil {
		return 0, 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, fmt.Errorf("upsert accounts: %w", err)
	}
	return created, updated, nil
}

// MergeAccounts is UpsertAccounts for accounts computed from the stored
// ones: build gets every stored account (as ListAccounts returns them), read
// in the same write transaction, and returns the accounts to upsert. Nothing
// can change between the read and the write, so an account build copies
// keeps the tokens it was given even if the server refreshes meanwhile (the
// refresh waits, then sees the new generation). An error from build is
// returned as it is, and nothing is written.
func (db *DB) MergeAccounts(ctx context.Context, build func(stored []llmgw.Account) ([]llmgw.Account, error)) (created, updated int, err error) {
	tx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("merge accounts: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	stored, err := db.listAccounts(ctx, tx)
	if err != nil {
		return 0, 0, err
	}
	accts, err := build(stored)
	if err != nil {
		return 0, 0, err
	}
	if err := validateAll(accts); err != nil {
		return 0, 0, err
	}
	if created, updated, err = db.upsertAccounts(ctx, tx, accts); err != nil {
		return 0, 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, fmt.Errorf("merge accounts: %w", err)
	}
	return created, updated, nil
}

// validateAll validates every account and refuses a name given twice; the
// error wraps llmgw.ErrInvalid and lists every problem.
func validateAll(accts []llmgw.Account) error {
	var errs []error
	seen := make(map[string]bool, len(accts))
	for i := range accts {
		a := &accts[i]
		if err := validate(a); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[a.Name] {
			errs = append(errs, fmt.Errorf("%w: account %s appears more than once", llmgw.ErrInvalid, a.Name))
		}
		seen[a.Name] = true
	}
	return errors.Join(errs...)
}

// upsertAccounts stores validated accounts inside tx; see UpsertAccounts.
func (db *DB) upsertAccounts(ctx context.Context, tx *sql.Tx, accts []llmgw.Account) (created, updated int, err error) {
	for i := range accts {
		a := accts[i] // a copy: the caller's slice is not ours to fill in
		ok, err := db.updateAccount(ctx, tx, &a)
		switch {
		case err != nil:
			return 0, 0, err
		case ok:
			updated++
		default:
			if err := db.insertAccount(ctx, tx, &a); err != nil {
				return 0, 0, err
			}
			created++
		}
	}
	return created, updated, nil
}

// updateAccount replaces the configuration and secrets of the account named
// a.Name, leaving its state alone. It reports false if there is no such
// account.
func (db *DB) updateAccount(ctx context.Context, tx *sql.Tx, a *llmgw.Account) (bool, error) {
	err := tx.QueryRowContext(ctx, `SELECT id FROM accounts WHERE name = ?`, a.Name).Scan(&a.ID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("update account %s: %w", a.Name, err)
	}
	s, err := db.sealFor(ctx, tx)
	if err != nil {
		return false, fmt.Errorf("update account %s: %w", a.Name, err)
	}
	key, err := sealAccount(s, a.ID, colAPIKey, a.APIKey)
	if err != nil {
		return false, fmt.Errorf("update account %s: %w", a.Name, err)
	}
	_, err = tx.ExecContext(ctx, `
		UPDATE accounts SET type = ?, api_key = ?, base_url = ?, priority = ?, weight = ?,
			max_concurrency = ?, models = ?, limits = ?, updated_at = ?
		WHERE id = ?`,
		a.Type, key, a.BaseURL, a.Priority, a.Weight,
		a.MaxConcurrency, joinModels(a.Models), llmgw.FormatLimits(a.Limits), ms(db.now()), a.ID)
	if err != nil {
		return false, fmt.Errorf("update account %s: %w", a.Name, err)
	}
	if err := putOwners(ctx, tx, a); err != nil {
		return false, err
	}
	if a.Type == llmgw.AccountOAuth {
		return true, db.putTokens(ctx, tx, a)
	}
	// An account that was OAuth and now holds an API key keeps no tokens.
	if _, err := tx.ExecContext(ctx, `DELETE FROM oauth_tokens WHERE account_id = ?`, a.ID); err != nil {
		return false, fmt.Errorf("update account %s: %w", a.Name, err)
	}
	return true, nil
}

// GetAccount returns the named account with its tokens and state. It returns
// an error wrapping llmgw.ErrNotFound if there is none.
func (db *DB) GetAccount(ctx context.Context, name string) (*llmgw.Account, error) {
	return db.getAccount(ctx, db.rdb, name)
}

// getAccount reads the named account, with tokens, windows and owner keys.
func (db *DB) getAccount(ctx context.Context, q queryer, name string) (*llmgw.Account, error) {
	a, err := scanAccount(q.QueryRowContext(ctx, `SELECT `+accountColumns+` WHERE a.name = ?`, name))
	if err == nil {
		err = db.openSecrets(&a)
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("account %s: %w", name, llmgw.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("get account %s: %w", name, err)
	}
	one := []llmgw.Account{a}
	if err := attachOwners(ctx, q, one); err != nil {
		return nil, fmt.Errorf("get account %s: %w", name, err)
	}
	if err := attachScoped(ctx, q, one); err != nil {
		return nil, fmt.Errorf("get account %s: %w", name, err)
	}
	return &one[0], nil
}

// UpdateAccount changes the account named name in one transaction: change
// gets the stored account and edits it in place; the result is validated
// and its name, configuration (base URL, priority, weight, concurrency,
// models), API key, owner keys and limits are written back, with a new
// updated_at, which makes a running server reload. The ID, type, state,
// statistics and OAuth tokens stay as stored whatever change does to them:
// tokens change through login, import and refresh, and a type only by
// replacing the account (UpsertAccounts).
//
// It returns the account as stored. It returns an error wrapping
// llmgw.ErrNotFound if there is no such account, llmgw.ErrInvalid if the
// edited account is invalid, llmgw.ErrConflict if a new name is taken, and
// change's own error as it is.
func (db *DB) UpdateAccount(ctx context.Context, name string, change func(*llmgw.Account) error) (*llmgw.Account, error) {
	tx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("update account %s: %w", name, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	old, err := db.getAccount(ctx, tx, name)
	if err != nil {
		return nil, err
	}
	a := *old
	a.Models, a.OwnerKeys, a.Limits = slices.Clone(old.Models), slices.Clone(old.OwnerKeys), slices.Clone(old.Limits)
	if err := change(&a); err != nil {
		return nil, err
	}
	// What UpdateAccount does not write stays as it is stored.
	a.ID, a.Type, a.CreatedAt, a.State, a.Windows = old.ID, old.Type, old.CreatedAt, old.State, old.Windows
	a.AccessToken, a.RefreshToken, a.ExpiresAt, a.TokenGeneration = old.AccessToken, old.RefreshToken, old.ExpiresAt, old.TokenGeneration
	a.Scopes, a.Email, a.AccountUUID, a.OrganizationUUID = old.Scopes, old.Email, old.AccountUUID, old.OrganizationUUID
	a.LastRefresh, a.RefreshError = old.LastRefresh, old.RefreshError
	if err := validate(&a); err != nil {
		return nil, err
	}
	s, err := db.sealFor(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("update account %s: %w", name, err)
	}
	key, err := sealAccount(s, a.ID, colAPIKey, a.APIKey)
	if err != nil {
		return nil, fmt.Errorf("update account %s: %w", name, err)
	}
	now := db.now()
	_, err = tx.ExecContext(ctx, `
		UPDATE accounts SET name = ?, api_key = ?, base_url = ?, priority = ?, weight = ?,
			max_concurrency = ?, models = ?, limits = ?, updated_at = ?
		WHERE id = ?`,
		a.Name, key, a.BaseURL, a.Priority, a.Weight,
		a.MaxConcurrency, joinModels(a.Models), llmgw.FormatLimits(a.Limits), ms(now), a.ID)
	if err != nil {
		return nil, fmt.Errorf("update account %s: %w", name, conflict(err))
	}
	if err := putOwners(ctx, tx, &a); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("update account %s: %w", name, err)
	}
	a.UpdatedAt = fromMs(ms(now)) // as it reads back
	return &a, nil
}

// getAccountByID reads one account, with tokens, windows and owner keys.
func (db *DB) getAccountByID(ctx context.Context, q queryer, id int64) (*llmgw.Account, error) {
	a, err := scanAccount(q.QueryRowContext(ctx, `SELECT `+accountColumns+` WHERE a.id = ?`, id))
	if err == nil {
		err = db.openSecrets(&a)
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("account %d: %w", id, llmgw.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("get account %d: %w", id, err)
	}
	one := []llmgw.Account{a}
	if err := attachOwners(ctx, q, one); err != nil {
		return nil, fmt.Errorf("get account %d: %w", id, err)
	}
	if err := attachScoped(ctx, q, one); err != nil {
		return nil, fmt.Errorf("get account %d: %w", id, err)
	}
	return &one[0], nil
}

// ListAccounts returns every account, with tokens and state, ordered by ID.
func (db *DB) ListAccounts(ctx context.Context) ([]llmgw.Account, error) {
	return db.listAccounts(ctx, db.rdb)
}

func (db *DB) listAccounts(ctx context.Context, q queryer) ([]llmgw.Account, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+accountColumns+` ORDER BY a.id`)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	var out []llmgw.Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err == nil {
			err = db.openSecrets(&a)
		}
		if err != nil {
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	if err := attachOwners(ctx, q, out); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	if err := attachScoped(ctx, q, out); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return out, nil
}

// AccountStats returns the running totals of every account that has served
// at least one attempt, by account ID.
func (db *DB) AccountStats(ctx context.Context) (map[int64]llmgw.AccountStats, error) {
	rows, err := db.rdb.QueryContext(ctx, `
		SELECT account_id, requests, errors, last_used_at, last_error, last_error_at,
			latency_ms_sum, latency_samples
		FROM account_stats`)
	if err != nil {
		return nil, fmt.Errorf("account stats: %w", err)
	}
	defer rows.Close()
	out := make(map[int64]llmgw.AccountStats)
	for rows.Next() {
		var (
			id, lastUsed, lastErrAt, sum, samples int64
			s                                     llmgw.AccountStats
		)
		if err := rows.Scan(&id, &s.Requests, &s.Errors, &lastUsed, &s.LastError, &lastErrAt, &sum, &samples); err != nil {
			return nil, fmt.Errorf("account stats: %w", err)
		}
		s.LastUsed, s.LastErrorAt = fromMs(lastUsed), fromMs(lastErrAt)
		if samples > 0 {
			s.AvgLatencyMs = float64(sum) / float64(samples)
		}
		out[id] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("account stats: %w", err)
	}
	return out, nil
}

// SetAccountStatus is the operator's override: it sets the named account's
// status and reason, clears any cooldown (family cooldowns too) and stamps the state with the
// current time, so that it beats every state the server decided earlier. It
// returns an error wrapping llmgw.ErrNotFound if there is no such account
// and llmgw.ErrInvalid for an unknown status.
func (db *DB) SetAccountStatus(ctx context.Context, name string, st llmgw.AccountStatus, reason string) error {
	if !validStatus(st) {
		return fmt.Errorf("%w: status must be active, disabled or error, not %q", llmgw.ErrInvalid, st)
	}
	now := ms(db.now())
	res, err := db.wdb.ExecContext(ctx, `
		UPDATE accounts SET status = ?, status_reason = ?, cooldown_until = 0, family_cooldowns = '', state_at = ?, updated_at = ?
		WHERE name = ?`,
		st, reason, now, now, name)
	if err != nil {
		return fmt.Errorf("set status of account %s: %w", name, err)
	}
	return mustAffect(res, "account", name)
}

// DeleteAccount removes the named account with its tokens and statistics.
// Its request_log rows stay: the ledger outlives accounts. It returns an
// error wrapping llmgw.ErrNotFound if there is no such account.
func (db *DB) DeleteAccount(ctx context.Context, name string) error {
	res, err := db.wdb.ExecContext(ctx, `DELETE FROM accounts WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete account %s: %w", name, err)
	}
	return mustAffect(res, "account", name)
}

// mustAffect turns an UPDATE or DELETE that matched no row into ErrNotFound.
func mustAffect(res sql.Result, kind, name string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s %s: %w", kind, name, err)
	}
	if n == 0 {
		return fmt.Errorf("%s %s: %w", kind, name, llmgw.ErrNotFound)
	}
	return nil
}

// SaveAccountStates writes back states the server decided while serving,
// by account ID. A state is written only if it is at least as new as the
// stored one (by At), so the server never undoes a later operator change;
// states of removed accounts are ignored. It returns an error wrapping
// llmgw.ErrInvalid, and writes nothing, if a status is unknown.
func (db *DB) SaveAccountStates(ctx context.Context, states map[int64]llmgw.AccountState) error {
	if len(states) == 0 {
		return nil
	}
	for id, st := range states {
		if !validStatus(st.Status) {
			return fmt.Errorf("%w: account %d: status must be active, disabled or error, not %q", llmgw.ErrInvalid, id, st.Status)
		}
	}
	tx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save account states: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := saveStates(ctx, tx, states); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save account states: %w", err)
	}
	return nil
}

// saveStates writes valid states inside tx; see SaveAccountStates.
func saveStates(ctx context.Context, tx *sql.Tx, states map[int64]llmgw.AccountState) error {
	if len(states) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, `
		UPDATE accounts SET status = ?, status_reason = ?, cooldown_until = ?, last_error = ?, state_at = ?,
			family_cooldowns = ?
		WHERE id = ? AND state_at <= ?`)
	if err != nil {
		return fmt.Errorf("save account states: %w", err)
	}
	defer stmt.Close()
	for id, st := range states {
		at := ms(st.At)
		if _, err := stmt.ExecContext(ctx, st.Status, st.Reason, ms(st.CooldownUntil), st.LastError, at,
			encodeFamilyCooldowns(st.FamilyCooldowns), id, at); err != nil {
			return fmt.Errorf("save state of account %d: %w", id, err)
		}
	}
	return nil
}

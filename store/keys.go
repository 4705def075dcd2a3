package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/llmgw/llmgw"
)

// InsertKey stores a new client key and sets k.ID, and k.CreatedAt if it is
// zero. Only k.Hash is stored, never the key. It returns an error wrapping
// llmgw.ErrConflict if a live (unrevoked) key has the name (or, by
// astronomically bad luck, the hash), and llmgw.ErrInvalid if the name or
// hash is empty or the policy is invalid. A revoked key's name may be used
// again; its history keeps its own id.
func (db *DB) InsertKey(ctx context.Context, k *llmgw.ClientKey) error {
	if k.Name == "" || k.Hash == "" {
		return fmt.Errorf("%w: client key needs a name and a hash", llmgw.ErrInvalid)
	}
	if err := k.Validate(); err != nil {
		return err
	}
	created := k.CreatedAt
	if created.IsZero() {
		created = db.now()
	}
	// RETURNING rather than LastInsertId, which PostgreSQL's driver lacks.
	var id int64
	err := db.wdb.QueryRowContext(ctx, `
		INSERT INTO client_keys (name, prefix, key_hash, created_at, last_used_at, expires_at, revoked_at,
			rotated_at, models, max_concurrency, limits)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id`,
		k.Name, k.Prefix, k.Hash, ms(created), ms(k.LastUsed), ms(k.ExpiresAt), ms(k.RevokedAt),
		ms(k.RotatedAt), joinModels(k.Models), k.MaxConcurrency, llmgw.FormatLimits(k.Limits)).Scan(&id)
	if err != nil {
		return fmt.Errorf("client key %s: %w", k.Name, conflict(err))
	}
	k.ID, k.CreatedAt = id, fromMs(ms(created))
	return nil
}

// ListKeys returns every client key, revoked and expired ones included,
// ordered by ID.
func (db *DB) ListKeys(ctx context.Context) ([]llmgw.ClientKey, error) {
	return listKeys(ctx, db.rdb)
}

func listKeys(ctx context.Context, q queryer) ([]llmgw.ClientKey, error) {
	rows, err := q.QueryContext(ctx, `
		SELECT id, name, prefix, key_hash, created_at, last_used_at, expires_at, revoked_at,
			rotated_at, models, max_concurrency, limits
		FROM client_keys ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list client keys: %w", err)
	}
	defer rows.Close()
	var out []llmgw.ClientKey
	for rows.Next() {
		var (
			k                                          llmgw.ClientKey
			created, used, expires, revokedAt, rotated int64
			models, limits                             string
		)
		if err := rows.Scan(&k.ID, &k.Name, &k.Prefix, &k.Hash, &created, &used, &expires, &revokedAt,
			&rotated, &models, &k.MaxConcurrency, &limits); err != nil {
			return nil, fmt.Errorf("list client keys: %w", err)
		}
		k.CreatedAt, k.LastUsed, k.ExpiresAt, k.RevokedAt = fromMs(created), fromMs(used), fromMs(expires), fromMs(revokedAt)
		k.RotatedAt, k.Models = fromMs(rotated), splitModels(models)
		var err error
		if k.Limits, err = llmgw.ParseLimits(limits); err != nil {
			return nil, fmt.Errorf("client key %s: stored limits: %w", k.Name, err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list client keys: %w", err)
	}
	return out, nil
}

// RevokeKey revokes the named client key. Revoking a revoked key succeeds
// and keeps the first revocation time. It returns an error wrapping
// llmgw.ErrNotFound if there is no such key.
func (db *DB) RevokeKey(ctx context.Context, name string) error {
	res, err := db.wdb.ExecContext(ctx, `UPDATE client_keys SET revoked_at = ? WHERE name = ? AND revoked_at = 0`,
		ms(db.now()), name)
	if err != nil {
		return fmt.Errorf("revoke client key %s: %w", name, err)
	}
	if n, err := res.RowsAffected(); err == nil && n > 0 {
		return nil
	}
	// Nothing live by that name: already revoked is fine, unknown is not.
	var n int
	if err := db.wdb.QueryRowContext(ctx, `SELECT count(*) FROM client_keys WHERE name = ?`, name).Scan(&n); err != nil {
		return fmt.Errorf("revoke client key %s: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("client key %s: %w", name, llmgw.ErrNotFound)
	}
	return nil
}

// UpdateKey changes the live (unrevoked) client key named name: change gets
// the stored key and edits it in place. Its name, hash, prefix, policy and
// expiry are written back in one transaction; the ID, creation and use times
// stay. It returns an error wrapping llmgw.ErrNotFound if no live key has
// the name, llmgw.ErrInvalid if the edited policy is invalid, and
// llmgw.ErrConflict if a new name or hash is taken.
func (db *DB) UpdateKey(ctx context.Context, name string, change func(*llmgw.ClientKey) error) (llmgw.ClientKey, error) {
	tx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return llmgw.ClientKey{}, fmt.Errorf("update client key %s: %w", name, err)
	}
	defer func() { _ = tx.Rollback() }()
	keys, err := listKeys(ctx, tx)
	if err != nil {
		return llmgw.ClientKey{}, err
	}
	i := slices.IndexFunc(keys, func(k llmgw.ClientKey) bool { return k.Name == name && k.RevokedAt.IsZero() })
	if i < 0 {
		return llmgw.ClientKey{}, fmt.Errorf("client key %s: %w", name, llmgw.ErrNotFound)
	}
	k := keys[i]
	if err := change(&k); err != nil {
		return llmgw.ClientKey{}, err
	}
	if err := k.Validate(); err != nil {
		return llmgw.ClientKey{}, err
	}
	_, err = tx.ExecContext(ctx, `
		UPDATE client_keys SET name = ?, prefix = ?, key_hash = ?, expires_at = ?, rotated_at = ?,
			models = ?, max_concurrency = ?, limits = ?
		WHERE id = ?`,
		k.Name, k.Prefix, k.Hash, ms(k.ExpiresAt), ms(k.RotatedAt),
		joinModels(k.Models), k.MaxConcurrency, llmgw.FormatLimits(k.Limits), k.ID)
	if err != nil {
		return llmgw.ClientKey{}, fmt.Errorf("client key %s: %w", name, conflict(err))
	}
	if err := tx.Commit(); err != nil {
		return llmgw.ClientKey{}, fmt.Errorf("update client key %s: %w", name, err)
	}
	return k, nil
}

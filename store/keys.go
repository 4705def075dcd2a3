package store

import (
	"context"
	"fmt"

	"github.com/llmgw/llmgw"
)

// InsertKey stores a new client key and sets k.ID, and k.CreatedAt if it is
// zero. Only k.Hash is stored, never the key. It returns an error wrapping
// llmgw.ErrConflict if the name (or, by astronomically bad luck, the hash)
// is taken, and llmgw.ErrInvalid if the name or hash is empty.
func (db *DB) InsertKey(ctx context.Context, k *llmgw.ClientKey) error {
	if k.Name == "" || k.Hash == "" {
		return fmt.Errorf("%w: client key needs a name and a hash", llmgw.ErrInvalid)
	}
	created := k.CreatedAt
	if created.IsZero() {
		created = db.now()
	}
	res, err := db.wdb.ExecContext(ctx, `
		INSERT INTO client_keys (name, prefix, key_hash, created_at, last_used_at, expires_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		k.Name, k.Prefix, k.Hash, ms(created), ms(k.LastUsed), ms(k.ExpiresAt), ms(k.RevokedAt))
	if err != nil {
		return fmt.Errorf("client key %s: %w", k.Name, conflict(err))
	}
	id, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("client key %s: %w", k.Name, err)
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
		SELECT id, name, prefix, key_hash, created_at, last_used_at, expires_at, revoked_at
		FROM client_keys ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list client keys: %w", err)
	}
	defer rows.Close()
	var out []llmgw.ClientKey
	for rows.Next() {
		var (
			k                                 llmgw.ClientKey
			created, used, expires, revokedAt int64
		)
		if err := rows.Scan(&k.ID, &k.Name, &k.Prefix, &k.Hash, &created, &used, &expires, &revokedAt); err != nil {
			return nil, fmt.Errorf("list client keys: %w", err)
		}
		k.CreatedAt, k.LastUsed, k.ExpiresAt, k.RevokedAt = fromMs(created), fromMs(used), fromMs(expires), fromMs(revokedAt)
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
	// The CASE keeps the first time; the row still counts as affected, so
	// a second revoke is not mistaken for a missing key.
	res, err := db.wdb.ExecContext(ctx, `
		UPDATE client_keys SET revoked_at = CASE WHEN revoked_at = 0 THEN ? ELSE revoked_at END
		WHERE name = ?`,
		ms(db.now()), name)
	if err != nil {
		return fmt.Errorf("revoke client key %s: %w", name, err)
	}
	return mustAffect(res, "client key", name)
}

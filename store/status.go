package store

import (
	"context"
	"fmt"
	"time"
)

// ServerStatus is what one running server published about itself: the row
// "llmgw serve" refreshes every second. The store does not read Doc.
type ServerStatus struct {
	ID        string // the server's instance id
	StartedAt time.Time
	UpdatedAt time.Time
	Doc       []byte // a JSON document
}

// UpsertServerStatus writes s, replacing the row with its ID. It is one
// statement, cheap enough to run every second, and does not move the change
// counter (a server does not reload for its own status).
func (db *DB) UpsertServerStatus(ctx context.Context, s ServerStatus) error {
	_, err := db.wdb.ExecContext(ctx, `
		INSERT INTO server_status (id, started_at, updated_at, doc) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, updated_at = excluded.updated_at,
			doc = excluded.doc`,
		s.ID, ms(s.StartedAt), ms(s.UpdatedAt), string(s.Doc))
	if err != nil {
		return fmt.Errorf("write server status: %w", err)
	}
	return nil
}

// ListServerStatus returns every published row, the most recently updated
// first; stale rows (of servers that did not stop cleanly) included: the
// caller decides what is fresh.
func (db *DB) ListServerStatus(ctx context.Context) ([]ServerStatus, error) {
	rows, err := db.rdb.QueryContext(ctx, `
		SELECT id, started_at, updated_at, doc FROM server_status ORDER BY updated_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("read server status: %w", err)
	}
	defer rows.Close()
	var out []ServerStatus
	for rows.Next() {
		var s ServerStatus
		var started, updated int64
		var doc string
		if err := rows.Scan(&s.ID, &started, &updated, &doc); err != nil {
			return nil, fmt.Errorf("read server status: %w", err)
		}
		s.StartedAt, s.UpdatedAt, s.Doc = fromMs(started), fromMs(updated), []byte(doc)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read server status: %w", err)
	}
	return out, nil
}

// DeleteServerStatus deletes the row with id, and every row not updated
// since before (servers that are long gone); a zero before deletes only id.
// Deleting a missing row is not an error.
func (db *DB) DeleteServerStatus(ctx context.Context, id string, before time.Time) error {
	_, err := db.wdb.ExecContext(ctx, `DELETE FROM server_status WHERE id = ? OR updated_at < ?`, id, ms(before))
	if err != nil {
		return fmt.Errorf("delete server status: %w", err)
	}
	return nil
}

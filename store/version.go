package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/pressly/goose/v3"

	"github.com/llmgw/llmgw/migrations"
)

// ErrNewerSchema is what Open returns (wrapped in a *NewerSchemaError) for a
// database that a newer llmgw migrated: it has a migration this binary does
// not embed.
var ErrNewerSchema = errors.New("database migrated by a newer llmgw")

// NewerSchemaError says which applied migration this binary does not know.
type NewerSchemaError struct {
	Path    string
	Unknown int64 // the highest applied version this binary does not embed
	Known   int64 // the highest version this binary embeds
}

func (e *NewerSchemaError) Error() string {
	return fmt.Sprintf("database %s was migrated by a newer llmgw (migration %d unknown to this binary, which knows up to %d): upgrade llmgw",
		e.Path, e.Unknown, e.Known)
}

// Unwrap makes errors.Is(err, ErrNewerSchema) hold.
func (e *NewerSchemaError) Unwrap() error { return ErrNewerSchema }

// knownVersions returns the versions of the embedded migrations, from their
// NNNNN_name.sql file names.
func knownVersions(d dialect) (map[int64]bool, int64, error) {
	fsys := fs.FS(migrations.FS)
	if d == dialectPostgres {
		fsys = migrations.Postgres
	}
	files, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, 0, fmt.Errorf("migrations: %w", err)
	}
	known := make(map[int64]bool, len(files))
	var maxV int64
	for _, f := range files {
		prefix, _, _ := strings.Cut(f, "_")
		v, err := strconv.ParseInt(prefix, 10, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("migrations: file %s: version: %w", f, err)
		}
		known[v] = true
		maxV = max(maxV, v)
	}
	return known, maxV, nil
}

// checkNotNewer returns a *NewerSchemaError if goose's version table records
// an applied migration that the binary does not embed. A file without the
// table (new, or not an llmgw database) passes: Pending and Migrate judge it.
func (db *DB) checkNotNewer(ctx context.Context) error {
	query := `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`
	if db.dialect == dialectPostgres {
		query = `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?`
	}
	var n int
	err := db.rdb.QueryRowContext(ctx, query, goose.DefaultTablename).Scan(&n)
	if err != nil {
		return fmt.Errorf("%s: read schema: %w", db.path, err)
	}
	if n == 0 {
		return nil
	}
	known, maxKnown, err := knownVersions(db.dialect)
	if err != nil {
		return err
	}
	// The table name is goose's constant, not user input. goose writes
	// version 0 as its own marker row.
	rows, err := db.rdb.QueryContext(ctx,
		`SELECT DISTINCT version_id FROM `+goose.DefaultTablename+` WHERE version_id > 0 AND is_applied`)
	if err != nil {
		return fmt.Errorf("%s: read applied migrations: %w", db.path, err)
	}
	defer rows.Close()
	var unknown int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return fmt.Errorf("%s: read applied migrations: %w", db.path, err)
		}
		if !known[v] {
			unknown = max(unknown, v)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: read applied migrations: %w", db.path, err)
	}
	if unknown > 0 {
		return &NewerSchemaError{Path: db.path, Unknown: unknown, Known: maxKnown}
	}
	return nil
}

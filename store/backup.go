package store

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// Backup writes a consistent copy of the database to path with SQLite's
// VACUUM INTO, which reads one snapshot and so works while the server
// writes (in WAL mode it does not block the writer). path must not exist:
// Backup creates it with mode 0600 first, since VACUUM INTO would create it
// with the umask's mode and the copy holds the same credentials. On failure
// it removes what it created.
//
// On PostgreSQL it returns an error wrapping ErrPostgresUnsupported that
// says to use pg_dump.
func (db *DB) Backup(ctx context.Context, path string) (err error) {
	if db.dialect == dialectPostgres {
		return fmt.Errorf("back up database %s: %w: use pg_dump", db.path, ErrPostgresUnsupported)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("back up database %s: %w", db.path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("back up database %s: %w", db.path, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, removeIfExists(path))
		}
	}()
	// VACUUM INTO accepts an empty file as its target and keeps its mode.
	// It only reads this database (in one read transaction, so another
	// process's writer goes on), but the read pool's query_only forbids it,
	// so it runs on the write pool, whose connection it holds meanwhile.
	if _, err := db.wdb.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		return fmt.Errorf("back up database %s to %s: %w", db.path, path, err)
	}
	return nil
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// IntegrityCheck runs PRAGMA integrity_check and returns the problems it
// reports; none means the file is sound. On PostgreSQL it returns an error
// wrapping ErrPostgresUnsupported.
func (db *DB) IntegrityCheck(ctx context.Context) ([]string, error) {
	if db.dialect == dialectPostgres {
		return nil, fmt.Errorf("integrity check of %s: %w", db.path, ErrPostgresUnsupported)
	}
	rows, err := db.rdb.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return nil, fmt.Errorf("integrity check of %s: %w", db.path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("integrity check of %s: %w", db.path, err)
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("integrity check of %s: %w", db.path, err)
	}
	return problems, nil
}

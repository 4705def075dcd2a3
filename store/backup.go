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

// IntegrityCheck returns the problems an integrity check finds; none means
// the database is sound. On SQLite it is PRAGMA integrity_check; on
// PostgreSQL, integrityCheckPostgres.
func (db *DB) IntegrityCheck(ctx context.Context) ([]string, error) {
	if db.dialect == dialectPostgres {
		return db.integrityCheckPostgres(ctx)
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

// integrityCheckPostgres is what PostgreSQL offers in place of SQLite's
// integrity_check without extensions or superuser rights, in the schema
// llmgw's tables live in: every table read whole (a damaged page fails its
// read), no index left invalid (a failed concurrent build leaves one that
// queries silently ignore) and no constraint left unvalidated. With the
// amcheck extension installed, every B-tree index is checked too.
func (db *DB) integrityCheckPostgres(ctx context.Context) ([]string, error) {
	fail := func(err error) ([]string, error) {
		return nil, fmt.Errorf("integrity check of %s: %w", db.path, err)
	}
	var problems []string
	tables, err := queryStrings(ctx, db.rdb, `SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename`)
	if err != nil {
		return fail(err)
	}
	for _, t := range tables {
		var n int64
		// Table names come from the catalog, quoted by quote_ident.
		if err := db.rdb.QueryRowContext(ctx, `SELECT count(*) FROM `+t).Scan(&n); err != nil {
			if ctx.Err() != nil {
				return fail(err)
			}
			problems = append(problems, fmt.Sprintf("table %s cannot be read: %v", t, err))
		}
	}
	invalid, err := queryStrings(ctx, db.rdb, `SELECT c.relname FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND NOT i.indisvalid ORDER BY c.relname`)
	if err != nil {
		return fail(err)
	}
	for _, ix := range invalid {
		problems = append(problems, fmt.Sprintf("index %s is invalid (rebuild it with REINDEX)", ix))
	}
	unvalidated, err := queryStrings(ctx, db.rdb, `SELECT con.conname FROM pg_constraint con
		JOIN pg_namespace n ON n.oid = con.connamespace
		WHERE n.nspname = current_schema() AND NOT con.convalidated ORDER BY con.conname`)
	if err != nil {
		return fail(err)
	}
	for _, c := range unvalidated {
		problems = append(problems, fmt.Sprintf("constraint %s is not validated", c))
	}
	amcheck, err := queryStrings(ctx, db.rdb, `SELECT extname FROM pg_extension WHERE extname = 'amcheck'`)
	if err != nil {
		return fail(err)
	}
	if len(amcheck) == 0 {
		return problems, nil
	}
	btrees, err := queryStrings(ctx, db.rdb, `SELECT c.oid::regclass::text FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_am am ON am.oid = c.relam
		WHERE n.nspname = current_schema() AND am.amname = 'btree' AND i.indisvalid ORDER BY 1`)
	if err != nil {
		return fail(err)
	}
	for _, ix := range btrees {
		if _, err := db.rdb.ExecContext(ctx, `SELECT bt_index_check(?::regclass)`, ix); err != nil {
			if ctx.Err() != nil {
				return fail(err)
			}
			problems = append(problems, fmt.Sprintf("index %s: %v", ix, err))
		}
	}
	return problems, nil
}

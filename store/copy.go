package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Copying a whole database, between SQLite and PostgreSQL in either
// direction ("llmgw db copy"). Every row keeps its id: request_log names
// accounts and keys by id, and account secrets are sealed with the account
// id in their associated data.

// ErrCopyTargetNotEmpty is wrapped by Copy and CheckCopyTarget when the
// target database already holds accounts, keys, statistics or usage.
var ErrCopyTargetNotEmpty = errors.New("the copy target is not empty")

// copyTable is one table that Copy copies, with every column it has: Copy
// refuses a database whose table has columns not listed here, so that a
// migration that adds one cannot make the copy drop it silently.
type copyTable struct {
	name    string
	cols    []string
	orderBy string
	// idCol is the account id of a table with secrets, or the id column
	// of a table with an identity (id), whose sequence Copy carries over.
	idCol    string
	identity bool
	secrets  []string // sealed columns, re-encrypted per row
}

// copyTables are in the order Copy inserts them: accounts before the rows
// that refer to them.
var copyTables = []copyTable{
	{
		name: "accounts",
		cols: []string{"id", "name", "type", "status", "status_reason", "api_key", "base_url", "priority",
			"weight", "max_concurrency", "models", "cooldown_until", "last_error", "state_at", "created_at",
			"updated_at", "limits", "family_cooldowns"},
		orderBy: "id", idCol: "id", identity: true, secrets: []string{colAPIKey},
	},
	{
		name: "oauth_tokens",
		cols: []string{"account_id", "access_token", "refresh_token", "expires_at", "scopes", "email",
			"account_uuid", "organization_uuid", "generation", "lease_owner", "lease_until", "last_refresh_at",
			"refresh_error", "updated_at"},
		orderBy: "account_id", idCol: "account_id", secrets: []string{colAccessToken, colRefreshToken},
	},
	{
		name:    "account_owners",
		cols:    []string{"account_id", "key_name"},
		orderBy: "account_id, key_name",
	},
	{
		name: "account_windows",
		cols: []string{"account_id", "status", "h5_status", "h5_utilization", "h5_reset", "d7_status",
			"d7_utilization", "d7_reset", "observed_at", "representative_claim"},
		orderBy: "account_id",
	},
	{
		name:    "account_scoped_windows",
		cols:    []string{"account_id", "name", "family", "status", "utilization", "reset"},
		orderBy: "account_id, name, family",
	},
	{
		name: "account_stats",
		cols: []string{"account_id", "requests", "errors", "last_used_at", "last_error", "last_error_at",
			"latency_ms_sum", "latency_samples"},
		orderBy: "account_id",
	},
	{
		name: "client_keys",
		cols: []string{"id", "name", "prefix", "key_hash", "created_at", "last_used_at", "expires_at",
			"revoked_at", "rotated_at", "models", "max_concurrency", "limits"},
		orderBy: "id", idCol: "id", identity: true,
	},
	{
		name: "request_log",
		cols: []string{"id", "ts", "request_id", "key_id", "key_name", "account_id", "account_name", "model",
			"dialect", "stream", "status", "error_type", "attempts", "input_tokens", "output_tokens",
			"cache_read_tokens", "cache_write_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens",
			"ttfb_ms", "duration_ms", "ended_early", "upstream_request_id", "attempt_detail", "error_message",
			"speed", "inference_geo", "iterations", "affinity"},
		orderBy: "id", idCol: "id", identity: true,
	},
}

// copySkipped are the tables Copy leaves alone: what a running server
// writes about itself, the key check (the target has its own, for its own
// key), the change counter (bumped on the target instead) and the
// bookkeeping of goose and SQLite.
var copySkipped = []string{"server_status", "secret_key", "change_counter", "goose_db_version", "sqlite_sequence"}

// copyBatchRows is how many rows one INSERT carries at most. A batch also
// stays under SQLite's 32766 bound variables.
const copyBatchRows = 1000

// TableRows is how many rows Copy copied into one table.
type TableRows struct {
	Table string
	Rows  int64
}

// CopyStats is what Copy copied: the rows of each table, in copy order, and
// how many account secrets it re-encrypted.
type CopyStats struct {
	Tables  []TableRows
	Secrets int
}

// Copy copies every account, OAuth token, owner binding, subscription
// window, statistic, client key and request-log row from one database into
// another, either of which may be SQLite or PostgreSQL, keeping their ids.
// It reads from one snapshot of from and writes to in one transaction, so
// either all of it is copied or nothing is.
//
// Both databases must be fully migrated and have their secret keys set;
// from's key must open its key check and its secrets, which are written
// sealed with to's key. to must hold no rows in the copied tables (an error
// wrapping ErrCopyTargetNotEmpty); it gets a key check for its key if it has
// none. server_status is not copied. to's id sequences continue past the
// highest id from used or handed out, so new rows never reuse a copied id,
// and its change counter moves past from's, so a server running on to
// reloads.
func Copy(ctx context.Context, from, to *DB) (CopyStats, error) {
	var stats CopyStats
	for _, db := range []*DB{from, to} {
		n, err := db.Pending(ctx)
		if err != nil {
			return stats, err
		}
		if n > 0 {
			return stats, fmt.Errorf("copy: %s has %d pending migrations: run \"llmgw db migrate\"", db.path, n)
		}
	}
	src, dst := from.secrets.Load(), to.secrets.Load()
	if src == nil {
		return stats, fmt.Errorf("copy: %s: %w", from.path, ErrNoSecretKey)
	}
	if dst == nil {
		return stats, fmt.Errorf("copy: %s: %w", to.path, ErrNoSecretKey)
	}

	rtx, err := from.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return stats, fmt.Errorf("copy: read %s: %w", from.path, err)
	}
	defer rtx.Rollback() //nolint:errcheck // read-only; nothing to undo
	if err := checkSourceKey(ctx, rtx, src); err != nil {
		return stats, fmt.Errorf("copy: %s: %w", from.path, err)
	}
	if err := from.checkCopyTables(ctx, rtx); err != nil {
		return stats, fmt.Errorf("copy: %s: %w", from.path, err)
	}

	wtx, err := to.wdb.BeginTx(ctx, nil)
	if err != nil {
		return stats, fmt.Errorf("copy: write %s: %w", to.path, err)
	}
	defer wtx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := to.checkEmpty(ctx, wtx); err != nil {
		return stats, fmt.Errorf("copy: %w", err)
	}
	if _, err := to.ensureKeyCheck(ctx, wtx, dst); err != nil {
		return stats, fmt.Errorf("copy: %s: %w", to.path, err)
	}
	for _, t := range copyTables {
		res, err := copyRows(ctx, rtx, wtx, t, src, dst)
		if err != nil {
			return stats, fmt.Errorf("copy %s: %w", t.name, err)
		}
		stats.Tables = append(stats.Tables, TableRows{Table: t.name, Rows: res.rows})
		stats.Secrets += res.secrets
		if t.identity {
			seq, err := from.sequence(ctx, rtx, t.name)
			if err != nil {
				return stats, fmt.Errorf("copy %s: read id sequence: %w", t.name, err)
			}
			if err := to.advanceSequence(ctx, wtx, t.name, max(seq, res.maxID)); err != nil {
				return stats, fmt.Errorf("copy %s: set id sequence: %w", t.name, err)
			}
		}
	}
	n, err := changeCounter(ctx, rtx)
	if err != nil {
		return stats, fmt.Errorf("copy: read change counter: %w", err)
	}
	bump := `UPDATE change_counter SET n = max(n, ?) + 1 WHERE id = 1`
	if to.dialect == dialectPostgres {
		bump = `UPDATE change_counter SET n = greatest(n, ?) + 1 WHERE id = 1`
	}
	if _, err := wtx.ExecContext(ctx, bump, n); err != nil {
		return stats, fmt.Errorf("copy: bump change counter: %w", err)
	}
	if err := wtx.Commit(); err != nil {
		return stats, fmt.Errorf("copy: commit %s: %w", to.path, err)
	}
	return stats, nil
}

// CheckCopyTarget returns an error wrapping ErrCopyTargetNotEmpty if the
// database holds rows in any table Copy writes; the database must be
// migrated. Copy checks again in its own transaction.
func (db *DB) CheckCopyTarget(ctx context.Context) error {
	tx, err := db.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // read-only; nothing to undo
	return db.checkEmpty(ctx, tx)
}

func (db *DB) checkEmpty(ctx context.Context, tx *sql.Tx) error {
	for _, t := range copyTables {
		var n int
		// Only the table name, from copyTables, reaches the query text.
		q := `SELECT count(*) FROM (SELECT 1 FROM ` + t.name + ` LIMIT 1) AS t`
		if err := tx.QueryRowContext(ctx, q).Scan(&n); err != nil {
			return fmt.Errorf("%s: read %s: %w", db.path, t.name, err)
		}
		if n > 0 {
			return fmt.Errorf("%w: %s has rows in %s; copy only into a new or just-migrated database", ErrCopyTargetNotEmpty, db.path, t.name)
		}
	}
	return nil
}

// checkSourceKey checks the source's key check against its key.
func checkSourceKey(ctx context.Context, tx *sql.Tx, s *sealer) error {
	var check string
	err := tx.QueryRowContext(ctx, `SELECT key_check FROM secret_key WHERE id = 1`).Scan(&check)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ErrSecretsNotEncrypted
	case err != nil:
		return fmt.Errorf("read key check: %w", err)
	}
	return s.verify(check)
}

// checkCopyTables refuses a database with a table or a column that Copy
// does not know: copying it would lose data.
func (db *DB) checkCopyTables(ctx context.Context, tx *sql.Tx) error {
	q := `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`
	if db.dialect == dialectPostgres {
		q = `SELECT table_name FROM information_schema.tables
			WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	}
	names, err := queryStrings(ctx, tx, q)
	if err != nil {
		return fmt.Errorf("read schema: %w", err)
	}
	for _, name := range names {
		if !slices.Contains(copySkipped, name) && !slices.ContainsFunc(copyTables, func(t copyTable) bool { return t.name == name }) {
			return fmt.Errorf("table %s is not known to this llmgw's copy", name)
		}
	}
	for _, t := range copyTables {
		cols, err := tableColumns(ctx, tx, t.name)
		if err != nil {
			return err
		}
		for _, c := range cols {
			if !slices.Contains(t.cols, c) {
				return fmt.Errorf("column %s.%s is not known to this llmgw's copy", t.name, c)
			}
		}
		if len(cols) != len(t.cols) {
			return fmt.Errorf("table %s has %d columns, want %d", t.name, len(cols), len(t.cols))
		}
	}
	return nil
}

func tableColumns(ctx context.Context, tx *sql.Tx, table string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT * FROM `+table+` LIMIT 0`) // a name from copyTables
	if err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", table, err)
	}
	return cols, rows.Err()
}

// querier is a pool or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// queryStrings returns the one text column of q's rows.
func queryStrings(ctx context.Context, tx querier, q string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// copyResult is what copyRows did to one table.
type copyResult struct {
	rows    int64
	maxID   int64
	secrets int
}

// copyRows streams t's rows from rtx into wtx in batches of copyBatchRows,
// re-sealing its secrets from src's key to dst's.
func copyRows(ctx context.Context, rtx, wtx *sql.Tx, t copyTable, src, dst *sealer) (copyResult, error) {
	var res copyResult
	idIdx := slices.Index(t.cols, t.idCol)
	var secretIdx []int
	for _, c := range t.secrets {
		secretIdx = append(secretIdx, slices.Index(t.cols, c))
	}
	cols := strings.Join(t.cols, ", ")
	rows, err := rtx.QueryContext(ctx, `SELECT `+cols+` FROM `+t.name+` ORDER BY `+t.orderBy)
	if err != nil {
		return res, err
	}
	defer rows.Close()
	perBatch := min(copyBatchRows, 32766/len(t.cols))
	batch := make([]any, 0, perBatch*len(t.cols))
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if _, err := wtx.ExecContext(ctx, insertQuery(t, len(batch)/len(t.cols)), batch...); err != nil {
			return err
		}
		batch = batch[:0]
		return nil
	}
	for rows.Next() {
		vals := make([]any, len(t.cols))
		ptrs := make([]any, len(t.cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return res, err
		}
		if idIdx >= 0 {
			id, ok := vals[idIdx].(int64)
			if !ok {
				return res, fmt.Errorf("%s is %T, want an integer", t.idCol, vals[idIdx])
			}
			res.maxID = max(res.maxID, id)
			for i, col := range t.secrets {
				n, err := reseal(src, dst, id, col, &vals[secretIdx[i]])
				if err != nil {
					return res, err
				}
				res.secrets += n
			}
		}
		batch = append(batch, vals...)
		res.rows++
		if len(batch) == perBatch*len(t.cols) {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return res, err
	}
	return res, flush()
}

// reseal replaces a stored secret of account id, sealed with src, by the
// same secret sealed with dst. It returns 1 if there was a secret.
func reseal(src, dst *sealer, id int64, col string, v *any) (int, error) {
	var stored string
	switch x := (*v).(type) {
	case string:
		stored = x
	case []byte:
		stored = string(x)
	default:
		return 0, fmt.Errorf("%s of account %d is %T, want text", col, id, *v)
	}
	if stored == "" {
		return 0, nil
	}
	if !sealed(stored) {
		return 0, fmt.Errorf("%s of account %d is stored in plain text: %w", col, id, ErrSecretsNotEncrypted)
	}
	plain, err := src.open(secretAD(id, col), stored)
	if err != nil {
		return 0, fmt.Errorf("cannot decrypt %s of account %d: %w", col, id, err)
	}
	if *v, err = dst.seal(secretAD(id, col), plain); err != nil {
		return 0, err
	}
	return 1, nil
}

// insertQuery is an INSERT of n rows of t. Only the names from copyTables
// and placeholders reach the query text.
func insertQuery(t copyTable, n int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(t.cols)), ", ") + ")"
	var b strings.Builder
	b.WriteString("INSERT INTO " + t.name + " (" + strings.Join(t.cols, ", ") + ") VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}

// sequence returns the highest id table's id sequence has handed out, which
// may belong to a row since deleted (0 if none). SQLite's request_log has
// no sequence: its ids continue from the highest row.
func (db *DB) sequence(ctx context.Context, tx *sql.Tx, table string) (int64, error) {
	q := `SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = ?`
	if db.dialect == dialectPostgres {
		q = `SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence(?, 'id')::regclass), 0)`
	}
	var n int64
	err := tx.QueryRowContext(ctx, q, table).Scan(&n)
	return n, err
}

// advanceSequence makes table's next id greater than id, unless it already
// is.
func (db *DB) advanceSequence(ctx context.Context, tx *sql.Tx, table string, id int64) error {
	if id <= 0 {
		return nil
	}
	if db.dialect == dialectPostgres {
		_, err := tx.ExecContext(ctx, `
			SELECT setval(seq, greatest(?, coalesce(pg_sequence_last_value(seq), 0)))
			FROM (SELECT pg_get_serial_sequence(?, 'id')::regclass AS seq) AS s`, id, table)
		return err
	}
	if table == "request_log" {
		return nil // INTEGER PRIMARY KEY without AUTOINCREMENT: max(id) + 1
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO sqlite_sequence (name, seq)
		SELECT ?1, ?2 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?1)`, table, id); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?`, id, table)
	return err
}

// Package store keeps llmgw's state in one SQLite file, or in a PostgreSQL
// database (postgres.go): accounts and their OAuth tokens, client keys,
// per-account statistics and the request log.
//
// The store is concrete and all SQL lives here. Every exported method is one
// transaction; unexported helpers take a *sql.Tx so that operations compose.
// Times are stored as INTEGER unix milliseconds, with 0 for the zero time.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/migrations"
)

// DB is an open llmgw database. It is safe for concurrent use by multiple
// goroutines, and by several processes on the same file (a CLI command while
// the server runs).
//
// It holds two pools on the one file, so that our own writers queue in Go
// rather than meeting SQLITE_BUSY: rdb for reads, with several connections,
// and wdb for writes, with one connection whose transactions begin
// IMMEDIATE (taking the write lock up front, so a transaction never has to
// upgrade a read lock and fail).
type DB struct {
	// Now returns the current time. Tests replace it; it must be set before
	// the DB is shared between goroutines.
	Now func() time.Time

	path    string // the file, or the PostgreSQL URL without its password
	dialect dialect
	rdb     *sql.DB
	wdb     *sql.DB

	// secrets seals and opens account secrets; nil until SetSecretKey.
	// keyCheck is the stored key check it last verified (see sealFor).
	secrets  atomic.Pointer[sealer]
	keyCheck atomic.Pointer[string]
}

// Open opens the llmgw database at path, creating the file with mode 0600 if
// it does not exist; it does not create missing directories. It does not
// migrate: callers check Pending and call Migrate.
//
// Open fails with an error naming the file if the file cannot be opened or
// is not an SQLite database. A file that is an SQLite database but not an
// llmgw one opens, and Migrate, MigrationStatus and Pending then refuse it.
//
// A path that is a postgres:// or postgresql:// URL (IsPostgresURL) opens
// that PostgreSQL database instead, which must exist; errors name the URL
// without its password.
func Open(ctx context.Context, path string) (*DB, error) {
	if IsPostgresURL(path) {
		return openPostgres(ctx, path)
	}
	// Create the file ourselves so that it gets mode 0600 whatever the umask
	// allows: it holds upstream credentials. SQLite would use 0644.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the PathError repeats the path we are about to name
		}
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}

	// busy_timeout comes first so that the pragmas after it wait for a lock
	// another process holds instead of failing; it also covers a CLI import
	// while the server runs. WAL lets readers run alongside the writer.
	// synchronous(NORMAL) is durable across application crashes in WAL mode
	// and only risks the last transactions on power loss.
	u := url.URL{Scheme: "file", OmitHost: true, Path: path}
	pragmas := "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(on)&_pragma=synchronous(NORMAL)"
	db := &DB{Now: time.Now, path: path}
	// The writer only appends usage rows and updates small tables: the
	// pages it touches are the right edges of a few B-trees, so a 512 KiB
	// page cache serves it as well as the default 2 MiB, which was a tenth
	// of a serving gateway's resident memory (make load). Readers keep the
	// default: reports scan.
	if db.wdb, err = sql.Open("sqlite", u.String()+"?"+pragmas+"&_pragma=cache_size(-512)&_txlock=immediate"); err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db.wdb.SetMaxOpenConns(1)
	// query_only makes an accidental write through the read pool an error
	// instead of a second writer competing with wdb.
	if db.rdb, err = sql.Open("sqlite", u.String()+"?"+pragmas+"&_pragma=query_only(1)"); err != nil {
		_ = db.wdb.Close() // nothing was opened yet; the Open error is what matters
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	db.rdb.SetMaxOpenConns(n)
	db.rdb.SetMaxIdleConns(n)

	// sql.Open connects lazily; ping so that a bad file fails here. The
	// write pool goes first because it may switch the file to WAL.
	for _, p := range []*sql.DB{db.wdb, db.rdb} {
		if err := p.PingContext(ctx); err != nil {
			_ = db.Close() // report the ping error, not the close error
			return nil, fmt.Errorf("open database %s: %w", path, openError(err))
		}
	}
	// Refuse a schema this binary does not know before anyone reads or
	// writes it: an older llmgw would misread newer tables, and its goose
	// Provider would not notice.
	if err := db.checkNotNewer(ctx); err != nil {
		_ = db.Close() // the version error is the one worth reporting
		return nil, err
	}
	return db, nil
}

// openError shortens the driver's error for a file that is not a database,
// the one failure users meet often (a wrong --db path).
func openError(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_NOTADB {
		return errNotADatabase
	}
	return err
}

var errNotADatabase = errors.New("file is not a database")

// Close closes both pools. Callers must not use the DB afterwards.
func (db *DB) Close() error {
	return errors.Join(db.wdb.Close(), db.rdb.Close())
}

// Path returns the file path the DB was opened with, or for PostgreSQL the
// URL with its password hidden.
func (db *DB) Path() string { return db.path }

// now returns the current time from the injectable clock.
func (db *DB) now() time.Time {
	if db.Now == nil {
		return time.Now()
	}
	return db.Now()
}

// errNotLLMGW is what Migrate, MigrationStatus and Pending say about an
// SQLite file that some other program made: migrating it would add our
// tables to someone else's database.
var errNotLLMGW = errors.New("not an llmgw database (it has tables but no llmgw migrations)")

// provider returns a goose Provider over wdb. The Provider runs everything on
// one *sql.Conn, so the one-connection write pool is enough. It never uses
// goose's global state (registered Go migrations, logger, dialect).
func (db *DB) provider(ctx context.Context) (*goose.Provider, error) {
	// A file with tables but no goose table belongs to another program.
	query := `
		SELECT count(*), count(*) FILTER (WHERE name = ?)
		FROM sqlite_schema
		WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`
	gooseDialect, fsys := goose.DialectSQLite3, fs.FS(migrations.FS)
	if db.dialect == dialectPostgres {
		// The tables of the schema that unqualified names resolve to.
		query = `
			SELECT count(*), count(*) FILTER (WHERE table_name = ?)
			FROM information_schema.tables
			WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
		gooseDialect, fsys = goose.DialectPostgres, migrations.Postgres
	}
	var tables, ours int
	if err := db.rdb.QueryRowContext(ctx, query, goose.DefaultTablename).Scan(&tables, &ours); err != nil {
		return nil, fmt.Errorf("%s: read schema: %w", db.path, err)
	}
	if tables > 0 && ours == 0 {
		return nil, fmt.Errorf("%s: %w", db.path, errNotLLMGW)
	}
	p, err := goose.NewProvider(gooseDialect, db.wdb, fsys,
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

// Migrate applies every pending migration and returns what it applied. It
// refuses a file that is not an llmgw database.
func (db *DB) Migrate(ctx context.Context) ([]*goose.MigrationResult, error) {
	p, err := db.provider(ctx)
	if err != nil {
		return nil, err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return res, fmt.Errorf("migrate %s: %w", db.path, err)
	}
	return res, nil
}

// MigrationStatus reports every known migration, applied or pending, in
// version order. On a new, empty file it creates goose's version table, so
// that the file is recognised as an llmgw database from then on.
func (db *DB) MigrationStatus(ctx context.Context) ([]*goose.MigrationStatus, error) {
	p, err := db.provider(ctx)
	if err != nil {
		return nil, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status of %s: %w", db.path, err)
	}
	return st, nil
}

// Pending returns how many migrations are not yet applied. The server
// refuses to start unless it is 0.
func (db *DB) Pending(ctx context.Context) (int, error) {
	st, err := db.MigrationStatus(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range st {
		if s.State == goose.StatePending {
			n++
		}
	}
	return n, nil
}

// ChangeCounter returns a number that grows with every change to accounts,
// OAuth tokens and client keys (but not with the usage writer's updates). It
// is one primary-key read, cheap enough to poll every second.
func (db *DB) ChangeCounter(ctx context.Context) (int64, error) {
	n, err := changeCounter(ctx, db.rdb)
	if err != nil {
		return 0, fmt.Errorf("read change counter: %w", err)
	}
	return n, nil
}

// queryer is what *sql.DB and *sql.Tx have in common for reads.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func changeCounter(ctx context.Context, q queryer) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT n FROM change_counter WHERE id = 1`).Scan(&n)
	return n, err
}

// LoadSnapshot reads everything the proxy needs to serve: every account
// (ordered by ID, with its OAuth tokens and persisted state) and every client
// key. It reads in one transaction, so Version is the change counter that
// matches the contents exactly.
func (db *DB) LoadSnapshot(ctx context.Context) (*llmgw.Snapshot, error) {
	tx, err := db.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("load snapshot: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only; nothing to undo

	snap := &llmgw.Snapshot{LoadedAt: db.now()}
	if snap.Version, err = changeCounter(ctx, tx); err != nil {
		return nil, fmt.Errorf("load snapshot: read change counter: %w", err)
	}
	if snap.Accounts, err = db.listAccounts(ctx, tx); err != nil {
		return nil, fmt.Errorf("load snapshot: %w", err)
	}
	if snap.Keys, err = listKeys(ctx, tx); err != nil {
		return nil, fmt.Errorf("load snapshot: %w", err)
	}
	return snap, nil
}

// conflict maps a UNIQUE constraint failure to llmgw.ErrConflict and returns
// any other error unchanged. It is the only place that interprets SQLite
// errors; it uses the extended result code, which the driver turns on. On
// PostgreSQL the failure is SQLSTATE 23505, unique_violation.
func conflict(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
		return llmgw.ErrConflict
	}
	if pgConflict(err) {
		return llmgw.ErrConflict
	}
	return err
}

// ms converts a time to the stored form: unix milliseconds, 0 for zero.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMs is the inverse of ms. Times come back in the local time zone, as
// time.Unix returns them.
func fromMs(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

// boolInt stores a bool as SQLite's 0 or 1 (a BIGINT on PostgreSQL too).
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

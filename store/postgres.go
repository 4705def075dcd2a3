package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgreSQL support. The store's SQL is written once, with SQLite's "?"
// placeholders; the PostgreSQL pools run it through a driver wrapper that
// rewrites the placeholders (rebind), so that no query can reach the server
// un-rewritten, and that gives transactions the meaning they have on SQLite:
// a write transaction holds the database's one write lock from its start (as
// BEGIN IMMEDIATE does), and a read-only transaction reads one snapshot.

// ErrPostgresUnsupported is wrapped by the operations that work on SQLite
// files only (so far): Backup and IntegrityCheck.
var ErrPostgresUnsupported = errors.New("not supported on PostgreSQL yet")

// dialect says which database a DB runs on.
type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

// IsPostgresURL reports whether dsn names a PostgreSQL database (a
// postgres:// or postgresql:// URL) rather than an SQLite file.
func IsPostgresURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// RedactURL returns a PostgreSQL URL with any password replaced, for
// messages.
func RedactURL(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://…" // an unparsable URL may hold a password anywhere
	}
	return u.Redacted()
}

// writeLockKey is the advisory lock every write transaction takes first:
// llmgw's equivalent of SQLite's one write lock. Advisory locks belong to
// one database, so databases on the same server do not share it.
const writeLockKey int64 = 0x6c6c6d6777 // "llmgw"

// openPostgres opens two pools on the database at dsn, as Open does on a
// file: rdb, whose sessions are read-only (as SQLite's query_only), and wdb,
// with one connection, whose transactions take writeLockKey first.
func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	name := RedactURL(dsn)
	rcfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors repeat the URL, password included: say
		// only that it is wrong.
		return nil, fmt.Errorf("open database %s: invalid PostgreSQL URL", name)
	}
	wcfg := rcfg.Copy()
	rcfg.RuntimeParams["default_transaction_read_only"] = "on"
	db := &DB{Now: time.Now, path: name, dialect: dialectPostgres}
	db.wdb = sql.OpenDB(pgConnector{Connector: stdlib.GetConnector(*wcfg)})
	db.wdb.SetMaxOpenConns(1)
	db.rdb = sql.OpenDB(pgConnector{Connector: stdlib.GetConnector(*rcfg), readOnly: true})
	n := max(4, runtime.GOMAXPROCS(0))
	db.rdb.SetMaxOpenConns(n)
	db.rdb.SetMaxIdleConns(n)
	for _, p := range []*sql.DB{db.wdb, db.rdb} {
		if err := p.PingContext(ctx); err != nil {
			_ = db.Close() // report the ping error, not the close error
			return nil, fmt.Errorf("open database %s: %w", name, err)
		}
	}
	if err := db.checkNotNewer(ctx); err != nil {
		_ = db.Close() // the version error is the one worth reporting
		return nil, err
	}
	return db, nil
}

// pgConnector makes pgConns.
type pgConnector struct {
	driver.Connector
	readOnly bool
}

func (c pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := conn.(*stdlib.Conn)
	if !ok {
		_ = conn.Close()
		return nil, fmt.Errorf("unexpected driver connection %T", conn)
	}
	return &pgConn{Conn: sc, readOnly: c.readOnly}, nil
}

// pgConn is a pgx connection that rebinds every query it is given and
// begins transactions as openPostgres says. The methods it does not
// override (Ping, ResetSession, IsValid, CheckNamedValue, Close) are pgx's.
type pgConn struct {
	*stdlib.Conn
	readOnly bool
}

func (c *pgConn) Prepare(query string) (driver.Stmt, error) {
	return c.Conn.Prepare(rebind(query))
}

func (c *pgConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, rebind(query))
}

func (c *pgConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, rebind(query), args)
}

func (c *pgConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, rebind(query), args)
}

// BeginTx begins a read-only transaction at REPEATABLE READ, so that all of
// it reads one snapshot (LoadSnapshot's change counter must match what it
// reads), and a write transaction by taking the write lock, so that writers
// queue as they do on SQLite instead of interleaving read-modify-write
// steps. A write transaction stays READ COMMITTED: each statement then sees
// everything committed before the lock was granted.
func (c *pgConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.readOnly && opts.Isolation == driver.IsolationLevel(sql.LevelDefault) {
		opts.Isolation = driver.IsolationLevel(sql.LevelRepeatableRead)
	}
	tx, err := c.Conn.BeginTx(ctx, opts)
	if err != nil || c.readOnly || opts.ReadOnly {
		return tx, err
	}
	args := []driver.NamedValue{{Ordinal: 1, Value: writeLockKey}}
	if _, err := c.Conn.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, args); err != nil {
		_ = tx.Rollback() // the lock error is the one to report
		return nil, fmt.Errorf("take write lock: %w", err)
	}
	return tx, nil
}

// rebind rewrites SQLite placeholders for PostgreSQL: each "?" becomes the
// next "$n", and "?n" becomes "$n". Placeholders inside string literals,
// quoted identifiers, comments and dollar-quoted bodies are left alone, as
// is a query that has none.
func rebind(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); {
		c := query[i]
		switch {
		case c == '\'' || c == '"':
			j := skipQuoted(query, i, c)
			b.WriteString(query[i:j])
			i = j
		case c == '-' && strings.HasPrefix(query[i:], "--"):
			j := strings.IndexByte(query[i:], '\n')
			if j < 0 {
				j = len(query) - i
			}
			b.WriteString(query[i : i+j])
			i += j
		case c == '/' && strings.HasPrefix(query[i:], "/*"):
			j := strings.Index(query[i+2:], "*/")
			if j < 0 {
				j = len(query) - i - 2
			} else {
				j += 2
			}
			b.WriteString(query[i : i+2+j])
			i += 2 + j
		case c == '$':
			j := skipDollarQuoted(query, i)
			b.WriteString(query[i:j])
			i = j
		case c == '?':
			j := i + 1
			for j < len(query) && query[j] >= '0' && query[j] <= '9' {
				j++
			}
			b.WriteByte('$')
			if j > i+1 {
				b.WriteString(query[i+1 : j])
			} else {
				n++
				b.WriteString(strconv.Itoa(n))
			}
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// skipQuoted returns the index after the literal or identifier quoted with
// q that starts at i; a doubled quote stays inside it.
func skipQuoted(s string, i int, q byte) int {
	for j := i + 1; j < len(s); j++ {
		if s[j] == q {
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(s)
}

// skipDollarQuoted returns the index after the dollar-quoted string
// ($tag$...$tag$) that starts at i, or i+1 if the "$" at i starts none (a
// "$1" placeholder, say).
func skipDollarQuoted(s string, i int) int {
	j := i + 1
	for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' ||
		j > i+1 && s[j] >= '0' && s[j] <= '9') {
		j++
	}
	if j >= len(s) || s[j] != '$' {
		return i + 1
	}
	tag := s[i : j+1]
	end := strings.Index(s[j+1:], tag)
	if end < 0 {
		return len(s)
	}
	return j + 1 + end + len(tag)
}

// pgConflict reports whether err is PostgreSQL's unique_violation.
func pgConflict(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

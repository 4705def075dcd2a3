package store_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw/store"
	"github.com/llmgw/llmgw/store/storetest"
)

func TestRebind(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`SELECT a FROM t WHERE b = ? AND c IN (?, ?)`, `SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)`},
		{`SELECT ?1, ?2 WHERE id = ?1`, `SELECT $1, $2 WHERE id = $1`},
		{`SELECT '?', "a?b", ? -- what?` + "\n" + `/* ? */ FROM t`, `SELECT '?', "a?b", $1 -- what?` + "\n" + `/* ? */ FROM t`},
		{`SELECT 'it''s ?', ?`, `SELECT 'it''s ?', $1`},
		{`SELECT $$ ? $$, $tag$ ? $tag$, ?`, `SELECT $$ ? $$, $tag$ ? $tag$, $1`},
		{`SELECT $1, ?`, `SELECT $1, $1`}, // never mixed in the store; shown to pin the rule
	}
	for _, tt := range tests {
		if got := store.Rebind(tt.in); got != tt.want {
			t.Errorf("rebind(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestPostgres_QueriesAreRebound checks that the pools the store opens on
// PostgreSQL rewrite every query: a "?" that reached the server would be a
// syntax error.
func TestPostgres_QueriesAreRebound(t *testing.T) {
	t.Parallel()
	url := storetest.Postgres(t)
	raw := rawDB(t, url)
	if got := queryInt(t, raw, `SELECT ?::bigint + ?::bigint`, 40, 2); got != 42 {
		t.Errorf("SELECT ? + ? = %d, want 42", got)
	}
}

func TestPostgres_Unsupported(t *testing.T) {
	t.Parallel()
	db := storetest.Stores[1].Open(t)
	ctx := context.Background()
	if err := db.Backup(ctx, t.TempDir()+"/b.db"); !errors.Is(err, store.ErrPostgresUnsupported) || !strings.Contains(err.Error(), "pg_dump") {
		t.Errorf("Backup error = %v, want ErrPostgresUnsupported naming pg_dump", err)
	}
}

func TestPostgres_PathHidesPassword(t *testing.T) {
	t.Parallel()
	url := strings.Replace(storetest.Postgres(t), "postgres@", "postgres:hunter2@", 1)
	db, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err) // trust authentication ignores the password
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	}()
	if strings.Contains(db.Path(), "hunter2") {
		t.Errorf("Path() = %q, shows the password", db.Path())
	}
}

// TestPostgres_SameSchema checks that the PostgreSQL schema has the same
// tables, columns and indexes as SQLite's once both are migrated.
func TestPostgres_SameSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lite, pg := storetest.Open(t), storetest.Stores[1].Open(t)
	read := func(raw *sql.DB, query string) []string {
		t.Helper()
		rows, err := raw.QueryContext(ctx, query)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var a, b string
			if err := rows.Scan(&a, &b); err != nil {
				t.Fatal(err)
			}
			out = append(out, a+"."+b)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	liteCols := read(rawDB(t, lite.Path()), `
		SELECT m.name, p.name FROM sqlite_schema m, pragma_table_info(m.name) p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\' AND m.name != 'goose_db_version'
		ORDER BY 1, 2`)
	pgCols := read(rawDB(t, pg.Path()), `
		SELECT table_name::text, column_name::text FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name != 'goose_db_version'
		ORDER BY table_name COLLATE "C", column_name COLLATE "C"`)
	if diff := cmp.Diff(liteCols, pgCols); diff != "" {
		t.Errorf("columns (-sqlite +postgres):\n%s", diff)
	}
	liteIdx := read(rawDB(t, lite.Path()), `
		SELECT tbl_name, name FROM sqlite_schema
		WHERE type = 'index' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
		ORDER BY 1, 2`)
	// PostgreSQL names the indexes behind PRIMARY KEY and UNIQUE itself;
	// SQLite's are the sqlite_autoindex ones left out above.
	pgIdx := read(rawDB(t, pg.Path()), `
		SELECT tablename::text, indexname::text FROM pg_indexes
		WHERE schemaname = current_schema() AND tablename != 'goose_db_version'
			AND indexname NOT LIKE '%\_pkey' AND indexname NOT LIKE '%\_key'
		ORDER BY tablename COLLATE "C", indexname COLLATE "C"`)
	if diff := cmp.Diff(liteIdx, pgIdx); diff != "" {
		t.Errorf("indexes (-sqlite +postgres):\n%s", diff)
	}
}

package migrations_test

import (
	"context"
	"database/sql"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite"

	"github.com/llmgw/llmgw/migrations"
	"github.com/llmgw/llmgw/store/storetest"
)

// TestMain stops the PostgreSQL cluster that storetest.Postgres started,
// if any.
func TestMain(m *testing.M) {
	code := m.Run()
	storetest.StopPostgres()
	os.Exit(code)
}

// TestMigrations_UpDownUp checks that every migration applies, reverts
// cleanly (Down leaves no tables behind) and applies again.
func TestMigrations_UpDownUp(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "m.db")+"?_pragma=foreign_keys(on)")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	}()
	p, err := goose.NewProvider(goose.DialectSQLite3, db, migrations.FS, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.ListSources()) == 0 {
		t.Fatal("no migrations embedded")
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 0); err != nil {
		t.Fatal(err)
	}
	var n int
	err = db.QueryRowContext(ctx, `
		SELECT count(*) FROM sqlite_schema
		WHERE type IN ('table', 'index', 'trigger') AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name != ?`,
		goose.DefaultTablename).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d schema objects left after migrating down, want 0", n)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("Up after Down: %v", err)
	}
}

// TestMigrations_Postgres_UpDownUp is TestMigrations_UpDownUp for the
// PostgreSQL migrations.
func TestMigrations_Postgres_UpDownUp(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("pgx", storetest.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	}()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.Postgres, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.ListSources()) == 0 {
		t.Fatal("no migrations embedded")
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 0); err != nil {
		t.Fatal(err)
	}
	var n int
	err = db.QueryRowContext(ctx, `
		SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
			WHERE s.nspname = current_schema() AND c.relname NOT LIKE $1 || '%')
		     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace
			WHERE s.nspname = current_schema())`,
		goose.DefaultTablename).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d schema objects left after migrating down, want 0", n)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("Up after Down: %v", err)
	}
}

// TestMigrations_SameVersions checks that the PostgreSQL migrations end at
// the same version as SQLite's: a schema change is one file, with the same
// number, in each directory.
func TestMigrations_SameVersions(t *testing.T) {
	t.Parallel()
	last := func(fsys fs.FS) string {
		files, err := fs.Glob(fsys, "*.sql")
		if err != nil || len(files) == 0 {
			t.Fatalf("Glob = %v, %v", files, err)
		}
		return files[len(files)-1][:5]
	}
	if s, p := last(migrations.FS), last(migrations.Postgres); s != p {
		t.Errorf("last SQLite migration is %s, last PostgreSQL one %s; want the same", s, p)
	}
}

// TestMigrations_RequestIDUnique checks 00010 on both databases: of the rows
// a batch written twice left, it keeps the first of each request id, it
// leaves rows without a request id alone, and from then on the log refuses a
// second row with an id it holds but takes any number without one.
func TestMigrations_RequestIDUnique(t *testing.T) {
	for _, tt := range []struct {
		name    string
		dialect goose.Dialect
		fsys    fs.FS
		open    func(t *testing.T) *sql.DB
	}{
		{"sqlite", goose.DialectSQLite3, migrations.FS, func(t *testing.T) *sql.DB {
			db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "m.db"))
			if err != nil {
				t.Fatal(err)
			}
			return db
		}},
		{"postgres", goose.DialectPostgres, migrations.Postgres, func(t *testing.T) *sql.DB {
			db, err := sql.Open("pgx", storetest.Postgres(t))
			if err != nil {
				t.Fatal(err)
			}
			return db
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			db := tt.open(t)
			defer func() {
				if err := db.Close(); err != nil {
					t.Error(err)
				}
			}()
			p, err := goose.NewProvider(tt.dialect, db, tt.fsys, goose.WithDisableGlobalRegistry(true))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.UpTo(ctx, 9); err != nil {
				t.Fatal(err)
			}
			exec := func(q string) error {
				_, err := db.ExecContext(ctx, q)
				return err
			}
			// req_a and req_b each written twice, the copy of req_a after
			// req_b's first row; ids 1 to 7 in this order.
			for _, row := range []string{`(1, 'req_a')`, `(2, '')`, `(3, 'req_b')`, `(1, 'req_a')`,
				`(5, '')`, `(3, 'req_b')`, `(7, 'req_c')`} {
				if err := exec(`INSERT INTO request_log (ts, request_id) VALUES ` + row); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := p.UpTo(ctx, 10); err != nil {
				t.Fatal(err)
			}
			rows, err := db.QueryContext(ctx, `SELECT id FROM request_log ORDER BY id`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var got []int64
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				got = append(got, id)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if want := []int64{1, 2, 3, 5, 7}; !slices.Equal(got, want) {
				t.Errorf("rows left = %v, want %v", got, want)
			}
			if err := exec(`INSERT INTO request_log (ts, request_id) VALUES (8, 'req_c')`); err == nil || !strings.Contains(err.Error(), "request_id") {
				t.Errorf("a second row for req_c: %v, want a unique violation of request_id", err)
			}
			if err := exec(`INSERT INTO request_log (ts, request_id) VALUES (8, ''), (9, '')`); err != nil {
				t.Errorf("rows without a request id: %v", err)
			}
			if _, err := p.DownTo(ctx, 9); err != nil {
				t.Fatalf("Down: %v", err)
			}
		})
	}
}

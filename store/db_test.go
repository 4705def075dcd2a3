package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/llmgw/llmgw/store"
	"github.com/llmgw/llmgw/store/storetest"
)

func TestDB_Migrate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		testMigrate(t, s.DSN(t))
	})
}

func testMigrate(t *testing.T, dsn string) {
	ctx := context.Background()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	}()

	pending, err := db.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pending == 0 {
		t.Fatal("Pending = 0 on a new database, want > 0")
	}
	res, err := db.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != pending {
		t.Errorf("Migrate applied %d migrations, want %d", len(res), pending)
	}
	if got, err := db.Pending(ctx); err != nil || got != 0 {
		t.Errorf("Pending after Migrate = %d, %v; want 0, nil", got, err)
	}
	st, err := db.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != pending {
		t.Errorf("MigrationStatus has %d entries, want %d", len(st), pending)
	}
	for _, s := range st {
		if s.State != goose.StateApplied {
			t.Errorf("migration %s is %s, want applied", s.Source.Path, s.State)
		}
	}
	if res, err := db.Migrate(ctx); err != nil || len(res) != 0 {
		t.Errorf("second Migrate = %d results, %v; want 0, nil", len(res), err)
	}
	if n, err := db.ChangeCounter(ctx); err != nil || n != 0 {
		t.Errorf("ChangeCounter on a new database = %d, %v; want 0, nil", n, err)
	}
}

func TestOpen_CreatesFilePrivate(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "llmgw.db")
	db, err := store.Open(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	}()
	if db.Path() != p {
		t.Errorf("Path() = %q, want %q", db.Path(), p)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("mode = %v, want 0600", got)
	}
}

func TestOpen_NotADatabase(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "notes.db")
	text := strings.Repeat("this is a text file, not an SQLite database\n", 100)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(context.Background(), p)
	if err == nil {
		_ = db.Close() // the test fails anyway
		t.Fatal("Open of a text file succeeded")
	}
	want := "open database " + p + ": file is not a database"
	if err.Error() != want {
		t.Errorf("Open error = %q, want %q", err, want)
	}
}

func TestOpen_MissingDirectory(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "missing", "llmgw.db")
	_, err := store.Open(context.Background(), p)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), p) || strings.Count(err.Error(), p) != 1 {
		t.Errorf("Open error = %v, want one naming %s once and wrapping os.ErrNotExist", err, p)
	}
}

func TestDB_ForeignDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "other.db")
	raw := rawDB(t, p)
	if _, err := raw.ExecContext(ctx, `CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)`); err != nil {
		t.Fatal(err)
	}

	db, err := store.Open(ctx, p)
	if err != nil {
		t.Fatalf("Open of a foreign SQLite database: %v, want success", err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	}()
	want := p + ": not an llmgw database (it has tables but no llmgw migrations)"
	if _, err := db.Pending(ctx); err == nil || err.Error() != want {
		t.Errorf("Pending error = %v, want %q", err, want)
	}
	if _, err := db.MigrationStatus(ctx); err == nil || err.Error() != want {
		t.Errorf("MigrationStatus error = %v, want %q", err, want)
	}
	if _, err := db.Migrate(ctx); err == nil || err.Error() != want {
		t.Errorf("Migrate error = %v, want %q", err, want)
	}
	if n := queryInt(t, raw, `SELECT count(*) FROM sqlite_schema WHERE type = 'table'`); n != 1 {
		t.Errorf("foreign database has %d tables after the attempts, want 1 (untouched)", n)
	}
}

func TestStoretest_Open(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		db := s.Open(t)
		if n, err := db.Pending(context.Background()); err != nil || n != 0 {
			t.Errorf("Pending = %d, %v; want 0, nil", n, err)
		}
	})
}

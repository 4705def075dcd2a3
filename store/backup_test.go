package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmgw/llmgw/store"
	"github.com/llmgw/llmgw/store/storetest"
)

func TestDB_BackupDuringWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Open(t)

	// A writer inserts accounts until told to stop, as a serving gateway
	// would write while "llmgw db backup" runs.
	stop := make(chan struct{})
	done := make(chan int)
	wrote := make(chan struct{}, 1)
	go func() {
		n := 0
		defer func() { done <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			a := apiKeyAccount(fmt.Sprintf("acct-%d", n))
			if err := db.InsertAccount(ctx, &a); err != nil {
				t.Errorf("InsertAccount: %v", err)
				return
			}
			n++
			select {
			case wrote <- struct{}{}:
			default:
			}
		}
	}()
	<-wrote // the writer is under way

	dir := t.TempDir()
	var backups []string
	for i := range 3 {
		p := filepath.Join(dir, fmt.Sprintf("backup-%d.db", i))
		if err := db.Backup(ctx, p); err != nil {
			t.Fatalf("Backup: %v", err)
		}
		backups = append(backups, p)
	}
	close(stop)
	total := <-done

	prev := 0
	for _, p := range backups {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s: mode = %v, want 0600", p, got)
		}
		b, err := store.Open(ctx, p)
		if err != nil {
			t.Fatalf("open backup: %v", err)
		}
		// A backup's secrets open with the database's key, as the README says.
		if err := b.SetSecretKey([]byte(storetest.SecretKey)); err != nil {
			t.Fatal(err)
		}
		if n, err := b.Pending(ctx); err != nil || n != 0 {
			t.Errorf("backup Pending = %d, %v; want 0, nil", n, err)
		}
		if problems, err := b.IntegrityCheck(ctx); err != nil || len(problems) > 0 {
			t.Errorf("backup IntegrityCheck = %q, %v; want none", problems, err)
		}
		accts, err := b.ListAccounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if len(accts) < prev || len(accts) > total {
			t.Errorf("backup %s has %d accounts, want between %d and %d", p, len(accts), prev, total)
		}
		prev = len(accts)
	}
}

func TestDB_BackupRefusesExistingFile(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t)
	p := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(p, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := db.Backup(context.Background(), p)
	if !errors.Is(err, os.ErrExist) {
		t.Errorf("Backup over an existing file: err = %v, want os.ErrExist", err)
	}
	if got, _ := os.ReadFile(p); string(got) != "keep me" {
		t.Errorf("existing file now holds %q", got)
	}
}

func TestOpen_RefusesNewerSchema(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		raw := rawDB(t, db.Path())
		if _, err := raw.ExecContext(ctx, `INSERT INTO goose_db_version (version_id, is_applied) VALUES (99, true)`); err != nil {
			t.Fatal(err)
		}
		_, err := store.Open(ctx, db.Path())
		var ne *store.NewerSchemaError
		if !errors.As(err, &ne) || !errors.Is(err, store.ErrNewerSchema) {
			t.Fatalf("Open: err = %v, want a *NewerSchemaError", err)
		}
		want := fmt.Sprintf("database %s was migrated by a newer llmgw (migration 99 unknown to this binary, which knows up to %d): upgrade llmgw", db.Path(), ne.Known)
		if err.Error() != want {
			t.Errorf("err = %q, want %q", err, want)
		}
		if ne.Known < 8 || strings.Contains(err.Error(), "\n") {
			t.Errorf("Known = %d, want the highest embedded version", ne.Known)
		}
	})
}

func TestDB_IntegrityCheck(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t)
	problems, err := db.IntegrityCheck(context.Background())
	if err != nil || len(problems) != 0 {
		t.Errorf("IntegrityCheck = %q, %v; want none", problems, err)
	}
}

// TestDB_IntegrityCheckPostgres damages what PostgreSQL lets a test damage
// without touching its files: an index marked invalid (what a failed
// concurrent build leaves) and a constraint added NOT VALID. The check
// finds both, and with amcheck installed it checks every B-tree index.
func TestDB_IntegrityCheckPostgres(t *testing.T) {
	t.Parallel()
	url := storetest.Postgres(t)
	db := storetest.Store{Name: "postgres", DSN: func(testing.TB) string { return url }}.Open(t)
	ctx := context.Background()
	raw, err := store.OpenPostgresRaw(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	// amcheck ships with PostgreSQL's contrib modules, which Debian's
	// postgresql package includes.
	if _, err := raw.ExecContext(ctx, `CREATE EXTENSION IF NOT EXISTS amcheck`); err != nil {
		t.Fatalf("create extension amcheck: %v", err)
	}
	if problems, err := db.IntegrityCheck(ctx); err != nil || len(problems) != 0 {
		t.Fatalf("IntegrityCheck of a sound database = %q, %v; want none", problems, err)
	}
	for _, stmt := range []string{
		`CREATE INDEX llmgw_test_broken ON accounts (name)`,
		`UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'llmgw_test_broken'::regclass`,
		`ALTER TABLE accounts ADD CONSTRAINT llmgw_test_unchecked CHECK (id > 0) NOT VALID`,
	} {
		if _, err := raw.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	problems, err := db.IntegrityCheck(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"index llmgw_test_broken is invalid", "constraint llmgw_test_unchecked is not validated"}
	if len(problems) != len(want) {
		t.Fatalf("problems = %q; want %d", problems, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(problems[i], w) {
			t.Errorf("problem %d = %q, want %q…", i, problems[i], w)
		}
	}
}

package cli

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmgw/llmgw/migrations"
)

func TestDB_Backup(t *testing.T) {
	t.Parallel()
	p := newDB(t)
	mustRun(t, "--db", p, "account", "add", "--name", "main", "--api-key", testAPIKey)
	dir := t.TempDir()
	backup := filepath.Join(dir, "llmgw-backup.db")

	stdout, _ := mustRun(t, "--db", p, "db", "backup", backup)
	if want := "backed up " + p + " to " + backup + "\n"; stdout != want {
		t.Errorf("backup printed %q, want %q", stdout, want)
	}
	fi, err := os.Stat(backup)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("backup mode = %v, want 0600", got)
	}
	// A backup needs its database's key: with the key file beside it, it
	// opens as the database did.
	key, err := os.ReadFile(p + ".key")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(backup+".key", key, 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, _ = mustRun(t, "--db", backup, "account", "list")
	if !strings.Contains(stdout, "main") {
		t.Errorf("account list on the backup printed:\n%s", stdout)
	}

	_, _, err = run(t, "--db", p, "db", "backup", backup)
	wantErr(t, err, backup+" exists: pass --force to replace it")

	mustRun(t, "--db", p, "account", "add", "--name", "second", "--api-key", testAPIKey+"2")
	mustRun(t, "--db", p, "db", "backup", backup, "--force") // the flag after the file
	stdout, _ = mustRun(t, "--db", backup, "account", "list")
	if !strings.Contains(stdout, "second") {
		t.Errorf("account list on the forced backup printed:\n%s", stdout)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("backup directory holds %d entries, want only the backup and the key copied beside it", len(entries))
	}
}

func TestDB_BackupWhileServing(t *testing.T) {
	t.Parallel()
	p := newDB(t)
	mustRun(t, "--db", p, "account", "add", "--name", "main", "--api-key", testAPIKey)
	startServe(t, p)
	backup := filepath.Join(t.TempDir(), "b.db")
	mustRun(t, "--db", p, "db", "backup", backup)
	db, err := openStore(context.Background(), backup)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	if problems, err := db.IntegrityCheck(context.Background()); err != nil || len(problems) > 0 {
		t.Errorf("IntegrityCheck = %q, %v", problems, err)
	}
}

func TestDB_StatusJSON(t *testing.T) {
	t.Parallel()
	p := newDB(t)
	stdout, _ := mustRun(t, "--db", p, "db", "status", "--json")
	var got struct {
		Version    int64 `json:"version"`
		Pending    int   `json:"pending"`
		Migrations []struct {
			Version   int64   `json:"version"`
			Name      string  `json:"name"`
			AppliedAt *string `json:"applied_at"`
		} `json:"migrations"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("db status --json: %v\n%s", err, stdout)
	}
	n := migrationCount(t, migrations.FS)
	if got.Version != int64(n) || got.Pending != 0 || len(got.Migrations) != n {
		t.Errorf("db status --json = version %d, pending %d, %d migrations; want %d, 0, %d", got.Version, got.Pending, len(got.Migrations), n, n)
	}
	if m := got.Migrations[0]; m.Version != 1 || m.Name != "00001_init.sql" || m.AppliedAt == nil {
		t.Errorf("first migration = %+v", m)
	}
}

func TestDB_RefusesNewerSchema(t *testing.T) {
	t.Parallel()
	p := newDB(t)
	raw := openRaw(t, p)
	if _, err := raw.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (99, 1)`); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("database %s was migrated by a newer llmgw (migration 99 unknown to this binary, which knows up to %d): upgrade llmgw", p, migrationCount(t, migrations.FS))
	for _, args := range [][]string{{"account", "list"}, {"db", "status"}, {"db", "migrate"}, {"serve", "--listen", "127.0.0.1:0"}} {
		_, _, err := run(t, append([]string{"--db", p}, args...)...)
		if err == nil || err.Error() != want {
			t.Errorf("%s: err = %v, want %q", args, err, want)
		}
	}
}

// openRaw opens a plain handle on the database file, for changes no command
// makes.
func openRaw(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

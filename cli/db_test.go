package cli

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/llmgw/llmgw/migrations"
)

func TestDB_MigrateAndStatus(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "llmgw.db")

	stdout, _ := mustRun(t, "--db", p, "db", "migrate")
	if !regexp.MustCompile(`(?m)^applied 1 00001_init\.sql$`).MatchString(stdout) {
		t.Errorf("first migrate printed %q, want a line \"applied 1 00001_init.sql\"", stdout)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("database mode = %v, want 0600", got)
	}

	stdout, _ = mustRun(t, "--db", p, "db", "migrate")
	if stdout != "database is up to date\n" {
		t.Errorf("second migrate printed %q, want \"database is up to date\"", stdout)
	}

	stdout, _ = mustRun(t, "--db", p, "db", "status")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "VERSION") {
		t.Fatalf("status printed %q, want a header and a row per migration", stdout)
	}
	if f := strings.Fields(lines[1]); len(f) < 3 || f[0] != "1" || f[1] != "00001_init.sql" || f[2] == "pending" {
		t.Errorf("status row = %q, want version 1, 00001_init.sql, applied", lines[1])
	}
}

func TestDB_StatusShowsPending(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "llmgw.db")
	db, err := openStore(context.Background(), p) // an empty, unmigrated file
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	stdout, _, err := run(t, "--db", p, "db", "status")
	wantErr(t, err, fmt.Sprintf("database %s has %d pending migrations", p, migrationCount(t, migrations.FS)), `run "llmgw db migrate"`)
	if !regexp.MustCompile(`(?m)^1\s+00001_init\.sql\s+pending$`).MatchString(stdout) {
		t.Errorf("status printed %q, want 00001_init.sql pending", stdout)
	}
}

func TestCommands_RefuseBeforeMigrate(t *testing.T) {
	t.Parallel()
	unmigrated := filepath.Join(t.TempDir(), "llmgw.db")
	db, err := openStore(context.Background(), unmigrated)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.db")
	commands := [][]string{
		{"account", "list"},
		{"account", "add", "--name", "a", "--api-key", "sk-ant-test-0123456789abcdef"},
		{"account", "show", "a"},
		{"account", "disable", "a"},
		{"key", "create", "--name", "alice"},
		{"key", "list"},
		{"usage", "report"},
	}
	for _, args := range commands {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			_, _, err := run(t, append([]string{"--db", unmigrated}, args...)...)
			wantErr(t, err, fmt.Sprintf("database %s has %d pending migrations", unmigrated, migrationCount(t, migrations.FS)), `run "llmgw db migrate"`)

			_, _, err = run(t, append([]string{"--db", missing}, args...)...)
			wantErr(t, err, "database "+missing+" does not exist", `run "llmgw db migrate"`)
		})
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("a command created %s: stat error %v", missing, err)
	}
}

func TestDB_NotADatabase(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(p, []byte(strings.Repeat("not a database\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := run(t, "--db", p, "account", "list")
	wantErr(t, err, p)
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("err = %q, want one line", err)
	}
}

// migrationCount is the number of migrations embedded in the binary for
// one database: migrations.FS (SQLite) or migrations.Postgres.
func migrationCount(t *testing.T, fsys fs.FS) int {
	t.Helper()
	files, err := fs.Glob(fsys, "*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("embedded migrations: %v", err)
	}
	return len(files)
}

package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw/migrations"
	"github.com/llmgw/llmgw/store"
	"github.com/llmgw/llmgw/store/storetest"
)

// TestDBCopy_SQLiteToPostgresAndBack copies a populated SQLite database to
// PostgreSQL and back with "db copy", and checks that account list, key
// list and usage report say the same on every copy, and that a non-empty
// target is refused.
func TestDBCopy_SQLiteToPostgresAndBack(t *testing.T) {
	t.Parallel()
	lite := usageDB(t) // accounts a1 and a2, seven request_log rows
	accounts := writeFile(t, "accounts.yaml", `accounts:
  - name: sub
    type: oauth
    access_token: sk-ant-oat-test-FAKE-0123456789
    refresh_token: sk-ant-ort-test-FAKE-0123456789
    expires_at: 2030-01-02T03:04:05Z
    models: [claude-opus-*]
    owner_keys: [alice]
    limits: [usd=100/day, tokens=2M/5h]
`)
	mustRun(t, "--db", lite, "key", "create", "--name", "alice", "--models", "claude-sonnet-*", "--limit", "usd=20/day",
		"--max-concurrency", "3", "--expires", "2031-01-31")
	mustRun(t, "--db", lite, "key", "create", "--name", "bob")
	mustRun(t, "--db", lite, "key", "revoke", "bob")
	mustRun(t, "--db", lite, "account", "import", accounts)

	pg := storetest.Postgres(t)
	keyFile := filepath.Join(t.TempDir(), "pg.key")
	key, err := store.NewSecretKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, encodeSecretKey(key), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, "llmgw.yaml", "server:\n  secret_key_file: "+keyFile+"\n")

	// A PostgreSQL target with no key configured needs --to-key-file.
	_, _, err = run(t, "db", "copy", "--from", lite, "--to", pg)
	wantErr(t, err, "no secret key for", "--to-key-file")

	out, stderr := mustRun(t, "db", "copy", "--from", lite, "--to", pg, "--to-key-file", keyFile)
	for _, want := range []string{"accounts                3", "oauth_tokens            1", "account_owners          1",
		"client_keys             2", "request_log             7", "re-encrypted 4 account secrets with the key from " + keyFile} {
		if !strings.Contains(out, want) {
			t.Errorf("db copy printed no %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr, "migrated ") || !strings.Contains(stderr, fmt.Sprintf("applied %d migration", migrationCount(t, migrations.Postgres))) {
		t.Errorf("db copy did not say it migrated the target:\n%s", stderr)
	}

	// Back to a new file, with the configured key, which --db on the file
	// would use too.
	back := filepath.Join(t.TempDir(), "back.db")
	mustRun(t, "--config", cfg, "db", "copy", "--from", pg, "--to", back)
	if _, err := os.Stat(back + ".key"); err == nil {
		t.Errorf("%s.key was created, though a key is configured", back)
	}
	// And to a new file with its default key, created.
	plain := filepath.Join(t.TempDir(), "plain.db")
	_, stderr = mustRun(t, "db", "copy", "--from", lite, "--to", plain)
	if !strings.Contains(stderr, "created secret key file "+plain+".key") {
		t.Errorf("db copy to a new file did not create its key:\n%s", stderr)
	}

	dbs := [][]string{{"--db", lite}, {"--db", pg, "--config", cfg}, {"--db", back, "--config", cfg}, {"--db", plain}}
	for _, cmd := range [][]string{
		{"account", "list", "--json"},
		{"account", "show", "sub", "--json"},
		{"key", "list", "--json"},
		{"usage", "report", "--since", "2026-03-01", "--until", "2026-03-05", "--by", "account", "--format", "json"},
		{"usage", "report", "--since", "2026-03-01", "--until", "2026-03-05", "--by", "key", "--format", "json"},
	} {
		want, _ := mustRun(t, append(dbs[0], cmd...)...)
		for _, db := range dbs[1:] {
			got, _ := mustRun(t, append(db, cmd...)...)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s on %s (-sqlite +copy):\n%s", strings.Join(cmd, " "), db[1], diff)
			}
		}
	}

	// Every target now holds rows.
	for _, db := range []string{pg, back, plain} {
		_, _, err = run(t, "db", "copy", "--from", lite, "--to", db, "--to-key-file", keyFile)
		wantErr(t, err, "not empty", "accounts")
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("the refusal is more than one line: %q", err)
		}
	}
	_, _, err = run(t, "db", "copy", "--from", lite, "--to", lite)
	wantErr(t, err, "same database")
}

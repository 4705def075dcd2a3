package cli

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/llmgw/llmgw/migrations"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
	"github.com/llmgw/llmgw/store"
)

// openStore opens the database at path as another process would, with the
// default key file next to it when there is one (as "llmgw db migrate"
// leaves it), so that tests can set up accounts directly.
func openStore(ctx context.Context, path string) (*store.DB, error) {
	db, err := store.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	key, err := readSecretKey(keySource{path: path + ".key", from: "test", managed: true})
	switch {
	case errors.Is(err, errKeyMissing), errors.Is(err, fs.ErrNotExist):
		return db, nil
	case err != nil:
		_ = db.Close()
		return nil, err
	}
	if err := db.SetSecretKey(key); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// assertNoSecret fails if any of secrets is in data; what names the data.
func assertNoSecret(t *testing.T, what string, data []byte, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if bytes.Contains(data, []byte(s)) {
			t.Errorf("%s contains a secret (%.12s…)", what, s)
		}
	}
}

// readIfExists returns the file's content, or nil if there is none.
func readIfExists(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return data
}

// TestSecretKey_NoSecretAnywhere runs accounts of both kinds through the
// server and looks for their secrets everywhere they could leak.
func TestSecretKey_NoSecretAnywhere(t *testing.T) {
	s := newOAuthSetup(t)
	if fi, err := os.Stat(s.db + ".key"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file after db migrate: %v, mode %v; want mode 0600", err, fi.Mode())
	}
	access, refresh, _ := s.tokens.Mint()
	s.tokens.ExpireAccessTokens() // the server refreshes: new tokens get stored too
	s.importAccount(t, "alice-max", access, refresh, time.Now().Add(-time.Hour))
	apiUp := upstreamtest.NewServer(t)
	const apiKey = "sk-ant-api03-fake-secret-key-0123456789"
	var cliOut bytes.Buffer
	record := func(args ...string) {
		t.Helper()
		out, errOut := mustRun(t, args...)
		cliOut.WriteString(out + errOut)
	}
	record("--db", s.db, "--log-level", "debug", "account", "add", "--name", "team", "--api-key", apiKey, "--base-url", apiUp.URL)
	key := createKey(t, s.db, "alice")

	srv := startServe(t, s.db, "--config", s.config, "--log-level", "debug")
	for range 4 {
		if _, err := sdk(srv.URL, key).Messages.New(context.Background(), hello()); err != nil {
			t.Fatal(err)
		}
	}
	newAccess, newRefresh := s.storedTokens(t, "alice-max")
	if newAccess == access {
		t.Fatal("the server did not refresh the expired token")
	}
	secrets := []string{apiKey, access, refresh, newAccess, newRefresh}
	// While the server runs, the WAL holds the latest pages.
	assertNoSecret(t, "the database file while serving", readIfExists(t, s.db), secrets)
	assertNoSecret(t, "the WAL while serving", readIfExists(t, s.db+"-wal"), secrets)

	record("--db", s.db, "--log-level", "debug", "account", "show", "alice-max")
	record("--db", s.db, "--log-level", "debug", "account", "show", "team")
	record("--db", s.db, "--log-level", "debug", "account", "list", "--json")
	record("--db", s.db, "--log-level", "debug", "account", "show", "alice-max", "--json")
	record("--db", s.db, "--log-level", "debug", "account", "show", "team", "--json")
	if err := srv.stopAndWait(t); err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "the debug log of serve", []byte(srv.stderr.String()), secrets)
	assertNoSecret(t, "the output of account show and list", cliOut.Bytes(), secrets)

	// An error about an account does not echo its key.
	_, errOut, err := run(t, "--db", s.db, "account", "add", "--name", "bad", "--api-key", apiKey, "--base-url", "ftp://nowhere")
	if err == nil {
		t.Fatal("account add with an ftp base URL succeeded")
	}
	assertNoSecret(t, "an account add error", []byte(err.Error()+errOut), secrets)

	// Force the WAL into the file, then look at both and at a backup made
	// by the command.
	raw, err := sql.Open("sqlite", "file:"+s.db+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = raw.Close() }()
	if _, err := raw.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	record("--db", s.db, "--log-level", "debug", "db", "backup", backup)
	assertNoSecret(t, "the output of db backup", cliOut.Bytes(), secrets)
	assertNoSecret(t, "the database file", readIfExists(t, s.db), secrets)
	assertNoSecret(t, "the WAL", readIfExists(t, s.db+"-wal"), secrets)
	assertNoSecret(t, "the backup", readIfExists(t, backup), secrets)
}

func TestSecretKey_WrongKeyRefusesServe(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	mustRun(t, "--db", db, "account", "add", "--name", "team", "--api-key", "sk-ant-api03-fake-0000000000000000")
	keyFile := db + ".key"
	good, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	other := writeFile(t, "other.key", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
	if err := os.Chmod(other, 0o600); err != nil {
		t.Fatal(err)
	}
	config := writeFile(t, "llmgw.yaml", "server:\n  secret_key_file: "+other+"\n")
	_, _, err = run(t, "--db", db, "--config", config, "serve", "--listen", "127.0.0.1:0")
	wantErr(t, err, "cannot decrypt account secrets with the key from "+other, "server.secret_key_file", "does not match", "restore the key file")
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}

	// A missing default key file.
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	_, _, err = run(t, "--db", db, "serve", "--listen", "127.0.0.1:0")
	wantErr(t, err, "no secret key", keyFile, "does not exist", "restore it")
	// db migrate does not make a new key for a database that has secrets.
	_, _, err = run(t, "--db", db, "db", "migrate")
	wantErr(t, err, "holds encrypted secrets", keyFile, "restore the key file")

	// A key file others can read is refused.
	if err := os.WriteFile(keyFile, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = run(t, "--db", db, "account", "list")
	wantErr(t, err, "readable by others", "chmod 600 "+keyFile)
	if err := os.Chmod(keyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "--db", db, "account", "list")
}

func TestSecretKey_EnvAndCredentialSources(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "llmgw.db")
	keyFile := writeFile(t, "env.key", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
	if err := os.Chmod(keyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(secretKeyFileEnv, keyFile)
	mustRun(t, "--db", db, "db", "migrate")
	if _, err := os.Stat(db + ".key"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("db migrate made a default key file although %s is set", secretKeyFileEnv)
	}
	mustRun(t, "--db", db, "account", "add", "--name", "team", "--api-key", "sk-ant-api03-fake-1111111111111111")

	// The same key as a systemd credential (mode 0400, as systemd makes it).
	creds := t.TempDir()
	data, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(creds, secretKeyCredName), data, 0o400); err != nil {
		t.Fatal(err)
	}
	t.Setenv(secretKeyFileEnv, "")
	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	mustRun(t, "--db", db, "account", "list")

	// Rotating a credential's key writes the new key next to the database
	// for the operator to install.
	out, _ := mustRun(t, "--db", db, "db", "rotate-key")
	if !strings.Contains(out, db+".key.new") || !strings.Contains(out, "install it") {
		t.Errorf("rotate-key with a credential said:\n%s", out)
	}
	_, _, err = run(t, "--db", db, "account", "list")
	wantErr(t, err, "systemd credential llmgw-secret-key", "does not match")
	newKey, err := os.ReadFile(db + ".key.new")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(creds, secretKeyCredName), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(creds, secretKeyCredName), newKey, 0o400); err != nil {
		t.Fatal(err)
	}
	if out, _ := mustRun(t, "--db", db, "account", "show", "team"); !strings.Contains(out, "team") {
		t.Errorf("account show after installing the new key:\n%s", out)
	}
}

func TestSecretKey_RotateKey(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	const apiKey = "sk-ant-api03-fake-2222222222222222"
	mustRun(t, "--db", db, "account", "add", "--name", "team", "--api-key", apiKey)
	keyFile := db + ".key"
	oldKey, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}

	out, _ := mustRun(t, "--db", db, "db", "rotate-key")
	if !strings.Contains(out, "re-encrypted 1 account secret") || !strings.Contains(out, "kept the old key") {
		t.Errorf("rotate-key said:\n%s", out)
	}
	olds, err := filepath.Glob(keyFile + ".*.old")
	if err != nil || len(olds) != 1 {
		t.Fatalf("old key backups = %v (%v), want one", olds, err)
	}
	if fi, err := os.Stat(olds[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("old key backup: %v, mode %v; want 0600", err, fi.Mode())
	}
	if kept, err := os.ReadFile(olds[0]); err != nil || !bytes.Equal(kept, oldKey) {
		t.Errorf("the backup is not the old key (%v)", err)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("new key file: %v, mode %v; want 0600", err, fi.Mode())
	}
	// The new key works, from another process.
	sdb, err := openStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sdb.Close() }()
	if a, err := sdb.GetAccount(context.Background(), "team"); err != nil || a.APIKey != apiKey {
		t.Errorf("GetAccount with the new key: err %v", err)
	}
	// The old key opens nothing any more.
	config := writeFile(t, "old.yaml", "server:\n  secret_key_file: "+olds[0]+"\n")
	_, _, err = run(t, "--db", db, "--config", config, "account", "list")
	wantErr(t, err, "cannot decrypt account secrets", olds[0], "does not match")
	mustRun(t, "--db", db, "db", "rotate-key", "--remove-old")
	if olds, _ := filepath.Glob(keyFile + ".*.old"); len(olds) != 1 {
		t.Errorf("after --remove-old there are %d old key backups, want still 1", len(olds))
	}
	mustRun(t, "--db", db, "account", "show", "team")
}

// TestSecretKey_LegacyDatabase: a database from before encryption, with
// plain-text secrets, works after "llmgw db migrate".
func TestSecretKey_LegacyDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "llmgw.db")
	sdb, err := store.Open(ctx, db) // creates the file as llmgw does
	if err != nil {
		t.Fatal(err)
	}
	if err := sdb.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", "file:"+db+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = raw.Close() }()
	// What the binary before 00009 left: the schema up to 00008, so no
	// key check, and a plain key.
	p, err := goose.NewProvider(goose.DialectSQLite3, raw, migrations.FS, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 8); err != nil {
		t.Fatal(err)
	}
	const apiKey = "sk-ant-api03-fake-legacy-3333333333"
	if _, err := raw.Exec(`INSERT INTO accounts (name, type, api_key, base_url, created_at, updated_at) VALUES ('old', 'api_key', '` + apiKey + `', 'https://api.anthropic.com', 1, 1)`); err != nil {
		t.Fatal(err)
	}
	_, _, err = run(t, "--db", db, "account", "list")
	wantErr(t, err, "pending", "llmgw db migrate")

	_, errOut := mustRun(t, "--db", db, "db", "migrate")
	if !strings.Contains(errOut, "created secret key file "+db+".key") || !strings.Contains(errOut, "encrypted 1 account secret") {
		t.Errorf("db migrate said:\n%s", errOut)
	}
	if got := listJSON(t, db); len(got) != 1 || got[0].Name != "old" {
		t.Errorf("accounts after migrate: %+v", got)
	}
	if _, err := raw.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "the migrated database", readIfExists(t, db), []string{apiKey})
	assertNoSecret(t, "the migrated database's WAL", readIfExists(t, db+"-wal"), []string{apiKey})
}

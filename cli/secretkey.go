package cli

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	urfave "github.com/urfave/cli/v2"

	"github.com/llmgw/llmgw/store"
)

// The key that encrypts account secrets in the database comes from, in
// order: the file LLMGW_SECRET_KEY_FILE (or server.secret_key_file) names;
// the systemd credential llmgw-secret-key ($CREDENTIALS_DIRECTORY, for
// LoadCredential=); else the default key file, the database path plus
// ".key", which "llmgw db migrate" creates. A key file holds 32 random bytes
// in base64 (or hex) and must not be readable by group or others; a
// systemd credential is not checked, systemd guards its directory.
const (
	secretKeyFileEnv  = "LLMGW_SECRET_KEY_FILE"
	secretKeyCredName = "llmgw-secret-key"
)

// keySource is where the secret key comes from.
type keySource struct {
	path string
	from string // how messages name the source, after the path
	// managed is the default key file: db migrate creates it and
	// db rotate-key replaces it in place.
	managed bool
	// credential is a systemd credential, whose mode systemd decides.
	credential bool
	// postgres: no key was configured for a PostgreSQL database, which has
	// no file for a default key to sit beside; path is empty.
	postgres bool
}

func (k keySource) String() string { return k.path + " (" + k.from + ")" }

// secretKeySource says where the key comes from; every command that opens
// the database for accounts resolves it here.
func (e *appEnv) secretKeySource() keySource {
	if e.keyFile != "" {
		return keySource{path: e.keyFile, from: "--to-key-file"}
	}
	if v, ok := os.LookupEnv(secretKeyFileEnv); ok && v != "" {
		return keySource{path: v, from: secretKeyFileEnv}
	}
	if p := e.cfg.Server.SecretKeyFile; p != "" {
		from := "server.secret_key_file"
		if e.configPath != "" {
			from += " in " + e.configPath
		}
		return keySource{path: p, from: from}
	}
	if dir := os.Getenv("CREDENTIALS_DIRECTORY"); dir != "" {
		p := filepath.Join(dir, secretKeyCredName)
		if _, err := os.Stat(p); err == nil {
			return keySource{path: p, from: "systemd credential " + secretKeyCredName, credential: true}
		}
	}
	if store.IsPostgresURL(e.dbPath) {
		return keySource{from: "no key configured", postgres: true}
	}
	return keySource{path: e.dbPath + ".key", from: "the default key file", managed: true}
}

// errKeyMissing is what readSecretKey says about a key file that does not
// exist.
var errKeyMissing = errors.New("does not exist")

// readSecretKey reads and checks the key file of src. Its errors name the
// file and, where there is one, the fix; they never hold key material.
func readSecretKey(src keySource) ([]byte, error) {
	if src.postgres {
		return nil, errKeyMissing
	}
	fi, err := os.Stat(src.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errKeyMissing
	}
	if err != nil {
		return nil, fmt.Errorf("secret key %s: %w", src, pathErr(err))
	}
	if perm := fi.Mode().Perm(); !src.credential && runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("secret key %s is readable by others (mode %04o): run \"chmod 600 %s\"", src, perm, src.path)
	}
	data, err := os.ReadFile(src.path)
	if err != nil {
		return nil, fmt.Errorf("secret key %s: %w", src, pathErr(err))
	}
	key, err := decodeSecretKey(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("secret key %s: %w", src, err)
	}
	return key, nil
}

// pathErr drops the path from a *fs.PathError: the message names it
// already.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// decodeSecretKey accepts the key as base64 (padded or not) or hex.
func decodeSecretKey(s string) ([]byte, error) {
	for _, dec := range []func(string) ([]byte, error){
		base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString, hex.DecodeString,
	} {
		if k, err := dec(s); err == nil && len(k) == store.SecretKeySize {
			return k, nil
		}
	}
	return nil, fmt.Errorf("not a key: want %d random bytes in base64 or hex (\"openssl rand -base64 %d\")", store.SecretKeySize, store.SecretKeySize)
}

// encodeSecretKey is the key file's content.
func encodeSecretKey(key []byte) []byte {
	return []byte(base64.StdEncoding.EncodeToString(key) + "\n")
}

// writeKeyFile writes a new key file at path with mode 0600, synced to
// disk; it never replaces an existing file.
func writeKeyFile(path string, key []byte) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write secret key: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("write secret key %s: %w", path, cerr)
		}
		if err != nil {
			_ = os.Remove(path) // a partial key file would only mislead
		}
	}()
	if _, err := f.Write(encodeSecretKey(key)); err != nil {
		return fmt.Errorf("write secret key %s: %w", path, pathErr(err))
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write secret key %s: %w", path, pathErr(err))
	}
	return nil
}

// missingKeyError says what to do about a key file that is not there.
func (e *appEnv) missingKeyError(src keySource) error {
	if src.postgres {
		return fmt.Errorf("no secret key: a PostgreSQL database needs one configured: set %s or server.secret_key_file to a key file, or pass the systemd credential %s (create the file with \"openssl rand -base64 32\", mode 0600, before \"llmgw db migrate\", and keep it apart from the database)", secretKeyFileEnv, secretKeyCredName)
	}
	if src.managed {
		return fmt.Errorf("no secret key: %s does not exist: run \"llmgw db migrate\" to create it, restore it from the backup of this database, or set %s", src, secretKeyFileEnv)
	}
	return fmt.Errorf("no secret key: %s does not exist: restore the key file, or create one with \"openssl rand -base64 32\" (mode 0600) before \"llmgw db migrate\"", src)
}

// keyError turns the store's key errors into one line that names the key
// source and the fix.
func (e *appEnv) keyError(src keySource, err error) error {
	switch {
	case err == store.ErrSecretKeyMismatch: //nolint:errorlint // bare: the key check failed, not one account
		return fmt.Errorf("cannot decrypt account secrets with the key from %s (the key does not match): restore the key file that was used with %s", src, e.dbName())
	case errors.Is(err, store.ErrSecretKeyMismatch):
		return fmt.Errorf("%w, with the key from %s: the stored value is damaged or was moved; add the account again", err, src)
	case errors.Is(err, store.ErrSecretsNotEncrypted):
		return fmt.Errorf("database %s: %w: run \"llmgw db migrate\"", e.dbName(), err)
	}
	return err
}

// useSecretKey resolves the key, gives it to db and checks it against the
// database: the key check and every account's secrets must open. Errors
// are one line naming the source and the fix.
func (e *appEnv) useSecretKey(ctx context.Context, db *store.DB) error {
	src := e.secretKeySource()
	key, err := readSecretKey(src)
	if errors.Is(err, errKeyMissing) {
		return e.missingKeyError(src)
	}
	if err != nil {
		return err
	}
	if err := db.SetSecretKey(key); err != nil {
		return fmt.Errorf("secret key %s: %w", src, err)
	}
	if err := db.CheckSecretKey(ctx); err != nil {
		return e.keyError(src, err)
	}
	return nil
}

// migrateSecrets is db migrate's last step: it resolves the key, creating
// the default key file when no key exists yet and the database holds no
// encrypted secrets, and encrypts any plain-text secrets. Notes go to
// stderr.
func (e *appEnv) migrateSecrets(ctx context.Context, db *store.DB) error {
	src := e.secretKeySource()
	key, err := readSecretKey(src)
	switch {
	case errors.Is(err, errKeyMissing) && src.managed:
		encrypted, err := db.SecretsEncrypted(ctx)
		if err != nil {
			return err
		}
		if encrypted {
			return fmt.Errorf("database %s holds encrypted secrets but %s does not exist: restore the key file from the backup of this database, or set %s to it", e.dbName(), src, secretKeyFileEnv)
		}
		if key, err = store.NewSecretKey(); err != nil {
			return err
		}
		if err := writeKeyFile(src.path, key); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(e.stderr, "created secret key file %s: back it up, apart from the database; a backup needs both\n", src.path); err != nil {
			return err
		}
	case errors.Is(err, errKeyMissing):
		return e.missingKeyError(src)
	case err != nil:
		return err
	}
	if err := db.SetSecretKey(key); err != nil {
		return fmt.Errorf("secret key %s: %w", src, err)
	}
	n, err := db.EncryptSecrets(ctx)
	if err != nil {
		return e.keyError(src, err)
	}
	if n > 0 {
		_, err = fmt.Fprintf(e.stderr, "encrypted %d account %s with the key from %s\n", n, plural(n, "secret", "secrets"), src)
	}
	return err
}

func rotateKeyCommand(env *appEnv) *urfave.Command {
	return &urfave.Command{
		Name:      "rotate-key",
		Usage:     "re-encrypt every account secret under a new key",
		UsageText: "llmgw db rotate-key [--remove-old]",
		Description: `Makes a new secret key and re-encrypts every account secret with it in one
transaction. With the default key file (the database path plus ".key") the new
key replaces it and the old one is kept next to it as
<keyfile>.<YYYYMMDD-HHMMSS>.old (mode 0600), for backups made with it, unless
--remove-old. With a key from LLMGW_SECRET_KEY_FILE, server.secret_key_file or
the systemd credential llmgw-secret-key, the new key is written to a new file
that you then install in place of the old key. Stop the server first, or
restart it right after: a server holding the old key cannot read or save
secrets any more.

Example:
  llmgw db rotate-key`,
		Flags: []urfave.Flag{
			&urfave.BoolFlag{Name: "remove-old", Usage: "delete the old default key file instead of keeping a dated copy"},
		},
		Action: func(c *urfave.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			return env.rotateKey(c)
		},
	}
}

func (e *appEnv) rotateKey(c *urfave.Context) (err error) {
	db, err := e.openDB(c.Context) // resolves and checks the current key
	if err != nil {
		return err
	}
	defer closeDB(db, &err)
	src := e.secretKeySource()
	key, err := store.NewSecretKey()
	if err != nil {
		return err
	}
	// The new key is on disk before the database uses it, so that no
	// failure leaves secrets under a key that exists nowhere.
	newPath := src.path + ".new"
	if !src.managed {
		newPath = e.dbPath + ".key.new" // a credential directory is read-only
		if src.credential && store.IsPostgresURL(e.dbPath) {
			return fmt.Errorf("rotate key: the key is a systemd credential and a PostgreSQL database has no directory to write the new key to: set %s to a writable copy of the key and rotate again", secretKeyFileEnv)
		}
		if !src.credential {
			newPath = src.path + ".new"
		}
	}
	if err := os.Remove(newPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale %s: %w", newPath, pathErr(err))
	}
	if err := writeKeyFile(newPath, key); err != nil {
		return err
	}
	n, err := db.RotateSecretKey(c.Context, key)
	if err != nil {
		_ = os.Remove(newPath) // nothing uses it
		return e.keyError(src, err)
	}
	w := c.App.Writer
	if !src.managed {
		_, err = fmt.Fprintf(w, "re-encrypted %d account %s under a new key, written to %s\ninstall it in place of %s before the server next starts; the old key no longer opens the database\n",
			n, plural(n, "secret", "secrets"), newPath, src)
		return err
	}
	old := ""
	if c.Bool("remove-old") {
		if err := os.Remove(src.path); err != nil {
			return fmt.Errorf("re-encrypted; remove old key %s: %w (the new key is %s)", src.path, pathErr(err), newPath)
		}
	} else {
		old = fmt.Sprintf("%s.%s.old", src.path, e.now().Format("20060102-150405"))
		if err := os.Rename(src.path, old); err != nil {
			return fmt.Errorf("re-encrypted; keep old key as %s: %w (the new key is %s)", old, pathErr(err), newPath)
		}
	}
	if err := os.Rename(newPath, src.path); err != nil {
		return fmt.Errorf("re-encrypted; install new key %s: %w (move it to %s)", newPath, pathErr(err), src.path)
	}
	if _, err := fmt.Fprintf(w, "re-encrypted %d account %s under a new key in %s\n", n, plural(n, "secret", "secrets"), src.path); err != nil {
		return err
	}
	if old != "" {
		_, err = fmt.Fprintf(w, "kept the old key as %s: it opens only backups made before now; delete it when they are gone\n", old)
	}
	return err
}

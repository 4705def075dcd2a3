package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/llmgw/llmgw"
)

// Account secrets (accounts.api_key, oauth_tokens.access_token and
// oauth_tokens.refresh_token) are stored sealed with AES-256-GCM under a key
// that lives outside the database. A stored value is
//
//	llmgw:v1:<base64 of nonce || ciphertext>
//
// with "account:<id>:<column>" as associated data, so a value moved to
// another row or another column fails to open. An empty secret is stored
// empty. A table of one row, secret_key, holds a constant sealed with the
// key: it tells a wrong key from a damaged value, and lets a writer notice
// that another process has rotated the key before it writes under the old
// one.
//
// Plain text (a value without the prefix) is what a database from before
// migration 00009 holds. A DB with a key refuses it with
// ErrSecretsNotEncrypted (run "llmgw db migrate", which encrypts it); a DB
// without a key reads it as it is, and refuses to write any secret.

// SecretKeySize is the length in bytes of the key SetSecretKey takes.
const SecretKeySize = 32

// The errors of the secret key. The store wraps them with the account and
// column concerned, never with the value.
var (
	// ErrNoSecretKey is returned when a secret must be sealed or opened and
	// the DB has no key.
	ErrNoSecretKey = errors.New("no secret key")
	// ErrSecretKeyMismatch is returned when the key does not open the
	// stored key check or a stored secret.
	ErrSecretKeyMismatch = errors.New("the key does not match")
	// ErrSecretsNotEncrypted is returned by a DB with a key that meets
	// plain-text secrets, or no key check: "llmgw db migrate" encrypts them.
	ErrSecretsNotEncrypted = errors.New("account secrets are not encrypted yet")
)

const (
	secretPrefix = "llmgw:v1:"
	// keyCheckPlain is what the key check seals; keyCheckAD binds it to
	// its one use.
	keyCheckPlain = "llmgw secret key check"
	keyCheckAD    = "llmgw:key-check"
)

// The secret columns, as named in the associated data.
const (
	colAPIKey       = "api_key"
	colAccessToken  = "access_token"
	colRefreshToken = "refresh_token"
)

// sealer seals and opens secrets with one key. It is immutable and safe for
// concurrent use.
type sealer struct {
	aead cipher.AEAD
}

func newSealer(key []byte) (*sealer, error) {
	if len(key) != SecretKeySize {
		return nil, fmt.Errorf("secret key is %d bytes, want %d", len(key), SecretKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// secretAD is the associated data of an account secret.
func secretAD(accountID int64, column string) []byte {
	return []byte("account:" + strconv.FormatInt(accountID, 10) + ":" + column)
}

// seal returns the stored form of plain; an empty plain stays empty.
func (s *sealer) seal(ad []byte, plain string) (string, error) {
	if plain == "" {
		return "", nil
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal secret: %w", err)
	}
	out := s.aead.Seal(nonce, nonce, []byte(plain), ad)
	return secretPrefix + base64.StdEncoding.EncodeToString(out), nil
}

// open returns the plain text of a stored value that seal made. It never
// puts the value in its errors.
func (s *sealer) open(ad []byte, stored string) (string, error) {
	if stored == "" {
		return "", nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(stored, secretPrefix))
	if !strings.HasPrefix(stored, secretPrefix) || err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return "", errors.New("stored value is not in llmgw:v1 form")
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], ad)
	if err != nil {
		return "", ErrSecretKeyMismatch // GCM's error says nothing more
	}
	return string(plain), nil
}

// sealed reports whether a stored value is in sealed form.
func sealed(stored string) bool { return strings.HasPrefix(stored, secretPrefix) }

// SetSecretKey gives the DB the key that seals and opens account secrets
// (SecretKeySize bytes). It must be called before the DB is shared between
// goroutines; it does not check the key against the database (CheckSecretKey
// does).
func (db *DB) SetSecretKey(key []byte) error {
	s, err := newSealer(key)
	if err != nil {
		return err
	}
	db.secrets.Store(s)
	return nil
}

// NewSecretKey returns a new random key for SetSecretKey.
func NewSecretKey() ([]byte, error) {
	key := make([]byte, SecretKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("new secret key: %w", err)
	}
	return key, nil
}

// openSecrets replaces the stored forms of a's secrets by their plain text.
func (db *DB) openSecrets(a *llmgw.Account) error {
	s := db.secrets.Load()
	for _, f := range []struct {
		col string
		v   *string
	}{{colAPIKey, &a.APIKey}, {colAccessToken, &a.AccessToken}, {colRefreshToken, &a.RefreshToken}} {
		switch {
		case *f.v == "":
		case s == nil && sealed(*f.v):
			return fmt.Errorf("account %s: %s: %w", a.Name, f.col, ErrNoSecretKey)
		case s == nil:
			// A database from before 00009, read without a key.
		case !sealed(*f.v):
			return fmt.Errorf("account %s: %s is stored in plain text: %w", a.Name, f.col, ErrSecretsNotEncrypted)
		default:
			plain, err := s.open(secretAD(a.ID, f.col), *f.v)
			if err != nil {
				return fmt.Errorf("cannot decrypt %s of account %s: %w", f.col, a.Name, err)
			}
			*f.v = plain
		}
	}
	return nil
}

// sealFor returns the sealer for a write in tx, after checking that the
// stored key check is the one this key opens: a process that still holds a
// key another process rotated away must not write under it. The check value
// last verified is remembered, so the usual cost is one primary-key read.
func (db *DB) sealFor(ctx context.Context, tx *sql.Tx) (*sealer, error) {
	s := db.secrets.Load()
	if s == nil {
		return nil, ErrNoSecretKey
	}
	var check string
	err := tx.QueryRowContext(ctx, `SELECT key_check FROM secret_key WHERE id = 1`).Scan(&check)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, ErrSecretsNotEncrypted
	case err != nil:
		return nil, fmt.Errorf("read key check: %w", err)
	}
	if p := db.keyCheck.Load(); p != nil && *p == check {
		return s, nil
	}
	if err := s.verify(check); err != nil {
		return nil, err
	}
	db.keyCheck.Store(&check)
	return s, nil
}

// verify checks a stored key check against the key.
func (s *sealer) verify(check string) error {
	plain, err := s.open([]byte(keyCheckAD), check)
	if err != nil || plain != keyCheckPlain {
		return ErrSecretKeyMismatch
	}
	return nil
}

// sealAccount returns the stored form of a secret of account id.
func sealAccount(s *sealer, id int64, column, plain string) (string, error) {
	v, err := s.seal(secretAD(id, column), plain)
	if err != nil {
		return "", err
	}
	return v, nil
}

// CheckSecretKey checks the DB's key against the database: the key check
// must open, and so must every account's secrets. It returns an error
// wrapping ErrNoSecretKey, ErrSecretKeyMismatch or ErrSecretsNotEncrypted
// (with the account and column it concerns). The server calls it before it
// serves, so that it never serves with accounts it cannot read.
func (db *DB) CheckSecretKey(ctx context.Context) error {
	s := db.secrets.Load()
	if s == nil {
		return ErrNoSecretKey
	}
	tx, err := db.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("check secret key: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only; nothing to undo
	var check string
	err = tx.QueryRowContext(ctx, `SELECT key_check FROM secret_key WHERE id = 1`).Scan(&check)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ErrSecretsNotEncrypted
	case err != nil:
		return fmt.Errorf("check secret key: %w", err)
	}
	if err := s.verify(check); err != nil {
		return err
	}
	_, err = db.listAccounts(ctx, tx) // opens every secret
	return err
}

// secretRow is one stored secret, for the whole-table passes below.
type secretRow struct {
	table, column string
	id            int64
	value         string
}

// readSecrets returns every non-empty stored secret.
func readSecrets(ctx context.Context, tx *sql.Tx) ([]secretRow, error) {
	var out []secretRow
	for _, q := range []struct{ table, column, query string }{
		{"accounts", colAPIKey, `SELECT id, api_key FROM accounts WHERE api_key != ''`},
		{"oauth_tokens", colAccessToken, `SELECT account_id, access_token FROM oauth_tokens WHERE access_token != ''`},
		{"oauth_tokens", colRefreshToken, `SELECT account_id, refresh_token FROM oauth_tokens WHERE refresh_token != ''`},
	} {
		if err := func() error {
			rows, err := tx.QueryContext(ctx, q.query)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				r := secretRow{table: q.table, column: q.column}
				if err := rows.Scan(&r.id, &r.value); err != nil {
					return err
				}
				out = append(out, r)
			}
			return rows.Err()
		}(); err != nil {
			return nil, fmt.Errorf("read secrets: %w", err)
		}
	}
	return out, nil
}

// writeSecret stores a secret's new stored form. Only the three known
// column names reach the query text.
func writeSecret(ctx context.Context, tx *sql.Tx, r secretRow, value string) error {
	var q string
	switch r.column {
	case colAPIKey:
		q = `UPDATE accounts SET api_key = ? WHERE id = ?`
	case colAccessToken:
		q = `UPDATE oauth_tokens SET access_token = ? WHERE account_id = ?`
	case colRefreshToken:
		q = `UPDATE oauth_tokens SET refresh_token = ? WHERE account_id = ?`
	default:
		return fmt.Errorf("unknown secret column %s", r.column)
	}
	if _, err := tx.ExecContext(ctx, q, value, r.id); err != nil {
		return fmt.Errorf("write %s of account %d: %w", r.column, r.id, err)
	}
	return nil
}

// withSecureDelete runs fn in a write transaction on a connection with
// secure_delete on, so that the plain text or old ciphertext the
// transaction overwrites is zeroed in the file rather than left in free
// space, and then checkpoints the WAL (TRUNCATE) so that the old pages
// leave it too. Once the transaction has committed nothing else is an
// error: a checkpoint that cannot finish (a reader holds the WAL) leaves
// the pages to the next one, and the caller must learn that its change is
// stored.
//
// PostgreSQL has neither: it keeps the old row versions until VACUUM
// reclaims them (and its WAL holds them for as long as it is kept), so
// there fn simply runs in a write transaction.
func (db *DB) withSecureDelete(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if db.dialect == dialectPostgres {
		tx, err := db.wdb.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // a no-op after Commit
		if err := fn(tx); err != nil {
			return err
		}
		return tx.Commit()
	}
	conn, err := db.wdb.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() {
		// Leave the pooled connection as Open made it; failing that it
		// only zeroes more than it needs to.
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA secure_delete = OFF`)
		_ = conn.Close()
	}()
	if _, err := conn.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
		return err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	var busy, logPages, done int
	_ = conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logPages, &done) // see above
	return nil
}

// ensureKeyCheck writes the key check of s in tx if the database has none,
// and otherwise verifies the stored one against s (ErrSecretKeyMismatch). It
// returns the stored check.
func (db *DB) ensureKeyCheck(ctx context.Context, tx *sql.Tx, s *sealer) (string, error) {
	var check string
	err := tx.QueryRowContext(ctx, `SELECT key_check FROM secret_key WHERE id = 1`).Scan(&check)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if check, err = s.seal([]byte(keyCheckAD), keyCheckPlain); err != nil {
			return "", err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO secret_key (id, key_check, created_at) VALUES (1, ?, ?)`,
			check, ms(db.now())); err != nil {
			return "", err
		}
	case err != nil:
		return "", err
	default:
		if err := s.verify(check); err != nil {
			return "", err
		}
	}
	return check, nil
}

// EncryptSecrets seals every plain-text secret with the DB's key and
// writes the key check if there is none, in one transaction; it is the step
// of "llmgw db migrate" that SQL migrations cannot do, and it is safe to
// run again (it returns 0 then). Every secret already sealed must open with
// the key, or nothing is written. It returns how many secrets it sealed,
// and an error wrapping ErrNoSecretKey or ErrSecretKeyMismatch if the key
// is missing or not the one in use.
func (db *DB) EncryptSecrets(ctx context.Context) (int, error) {
	s := db.secrets.Load()
	if s == nil {
		return 0, fmt.Errorf("encrypt secrets: %w", ErrNoSecretKey)
	}
	n := 0
	err := db.withSecureDelete(ctx, func(tx *sql.Tx) error {
		check, err := db.ensureKeyCheck(ctx, tx, s)
		if err != nil {
			return err
		}
		rows, err := readSecrets(ctx, tx)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if sealed(r.value) {
				if _, err := s.open(secretAD(r.id, r.column), r.value); err != nil {
					return fmt.Errorf("cannot decrypt %s of account %d: %w", r.column, r.id, err)
				}
				continue
			}
			v, err := sealAccount(s, r.id, r.column, r.value)
			if err != nil {
				return err
			}
			if err := writeSecret(ctx, tx, r, v); err != nil {
				return err
			}
			n++
		}
		db.keyCheck.Store(&check)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("encrypt secrets: %w", err)
	}
	return n, nil
}

// RotateSecretKey re-encrypts every secret under newKey in one transaction,
// replaces the key check, and from then on uses newKey. The DB's current
// key must open the key check and every secret, or nothing is written (an
// error wrapping ErrSecretKeyMismatch or ErrSecretsNotEncrypted). It
// returns how many secrets it re-encrypted. Another process still holding
// the old key cannot write secrets afterwards (its writes fail with
// ErrSecretKeyMismatch) until it is restarted with the new key.
func (db *DB) RotateSecretKey(ctx context.Context, newKey []byte) (int, error) {
	old := db.secrets.Load()
	if old == nil {
		return 0, fmt.Errorf("rotate secret key: %w", ErrNoSecretKey)
	}
	next, err := newSealer(newKey)
	if err != nil {
		return 0, fmt.Errorf("rotate secret key: %w", err)
	}
	n := 0
	var check string
	err = db.withSecureDelete(ctx, func(tx *sql.Tx) error {
		var stored string
		err := tx.QueryRowContext(ctx, `SELECT key_check FROM secret_key WHERE id = 1`).Scan(&stored)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return ErrSecretsNotEncrypted
		case err != nil:
			return err
		}
		if err := old.verify(stored); err != nil {
			return err
		}
		rows, err := readSecrets(ctx, tx)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if !sealed(r.value) {
				return fmt.Errorf("%s of account %d is stored in plain text: %w", r.column, r.id, ErrSecretsNotEncrypted)
			}
			plain, err := old.open(secretAD(r.id, r.column), r.value)
			if err != nil {
				return fmt.Errorf("cannot decrypt %s of account %d: %w", r.column, r.id, err)
			}
			v, err := sealAccount(next, r.id, r.column, plain)
			if err != nil {
				return err
			}
			if err := writeSecret(ctx, tx, r, v); err != nil {
				return err
			}
			n++
		}
		if check, err = next.seal([]byte(keyCheckAD), keyCheckPlain); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE secret_key SET key_check = ?, created_at = ? WHERE id = 1`, check, ms(db.now()))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("rotate secret key: %w", err)
	}
	db.secrets.Store(next)
	db.keyCheck.Store(&check)
	return n, nil
}

// SecretsEncrypted reports whether the database has a key check, that is
// whether its secrets have been encrypted (EncryptSecrets has run). It
// needs no key.
func (db *DB) SecretsEncrypted(ctx context.Context) (bool, error) {
	var n int
	if err := db.rdb.QueryRowContext(ctx, `SELECT count(*) FROM secret_key`).Scan(&n); err != nil {
		return false, fmt.Errorf("read key check: %w", err)
	}
	return n > 0, nil
}

package store_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/migrations"
	"github.com/llmgw/llmgw/store"
	"github.com/llmgw/llmgw/store/storetest"
)

// secretsOf returns the three secrets of a.
func secretsOf(a llmgw.Account) []string {
	var out []string
	for _, s := range []string{a.APIKey, a.AccessToken, a.RefreshToken} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// assertNoSecrets fails if any of secrets appears in the database file or
// its WAL.
func assertNoSecrets(tb testing.TB, path string, secrets []string) {
	tb.Helper()
	for _, p := range []string{path, path + "-wal"} {
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			tb.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(data, []byte(s)) {
				tb.Errorf("%s holds a secret in plain text", filepath.Base(p))
			}
		}
	}
}

func TestSecrets_StoredSealed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		k, o := apiKeyAccount("k"), oauthAccount("o")
		for _, a := range []*llmgw.Account{&k, &o} {
			if err := db.InsertAccount(ctx, a); err != nil {
				t.Fatal(err)
			}
		}

		raw := rawDB(t, db.Path())
		var apiKey, access, refresh string
		if err := raw.QueryRow(`SELECT api_key FROM accounts WHERE id = ?`, k.ID).Scan(&apiKey); err != nil {
			t.Fatal(err)
		}
		if err := raw.QueryRow(`SELECT access_token, refresh_token FROM oauth_tokens WHERE account_id = ?`, o.ID).Scan(&access, &refresh); err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{apiKey, access, refresh} {
			if !strings.HasPrefix(v, "llmgw:v1:") {
				t.Errorf("stored secret does not start with llmgw:v1:")
			}
		}

		got, err := db.GetAccount(ctx, "o")
		if err != nil {
			t.Fatal(err)
		}
		if got.AccessToken != o.AccessToken || got.RefreshToken != o.RefreshToken {
			t.Error("OAuth tokens do not read back as stored")
		}
		if got, err := db.GetAccount(ctx, "k"); err != nil || got.APIKey != k.APIKey {
			t.Errorf("GetAccount(k) = key ok %v, err %v; want the key back", err == nil && got.APIKey == k.APIKey, err)
		}

		// Re-storing the same tokens keeps the generation: the comparison is on
		// plain text, not on the (randomly sealed) stored form.
		same := o
		if _, _, err := db.UpsertAccounts(ctx, []llmgw.Account{same}); err != nil {
			t.Fatal(err)
		}
		if again, err := db.GetAccount(ctx, "o"); err != nil || again.TokenGeneration != got.TokenGeneration {
			t.Errorf("generation after re-storing the same tokens = %d (err %v), want %d", again.TokenGeneration, err, got.TokenGeneration)
		}

		// Moving a sealed value to another row or column makes it unreadable.
		if _, err := raw.Exec(`UPDATE accounts SET api_key = ? WHERE id = ?`, refresh, k.ID); err != nil {
			t.Fatal(err)
		}
		_, err = db.GetAccount(ctx, "k")
		if !errors.Is(err, store.ErrSecretKeyMismatch) {
			t.Errorf("GetAccount after moving a token = %v, want ErrSecretKeyMismatch", err)
		}
		if err := db.CheckSecretKey(ctx); !errors.Is(err, store.ErrSecretKeyMismatch) {
			t.Errorf("CheckSecretKey after moving a token = %v, want ErrSecretKeyMismatch", err)
		}
		if _, err := db.LoadSnapshot(ctx); err == nil {
			t.Error("LoadSnapshot with an unreadable account succeeded")
		}
		assertNoSecrets(t, db.Path(), append(secretsOf(k), secretsOf(o)...))
	})
}

func TestSecrets_WrongKey(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		a := oauthAccount("o")
		if err := db.InsertAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}

		other, err := store.Open(ctx, db.Path())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = other.Close() })
		if _, err := other.ListAccounts(ctx); !errors.Is(err, store.ErrNoSecretKey) {
			t.Errorf("ListAccounts without a key = %v, want ErrNoSecretKey", err)
		}
		wrong, err := store.NewSecretKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := other.SetSecretKey(wrong); err != nil {
			t.Fatal(err)
		}
		if err := other.CheckSecretKey(ctx); !errors.Is(err, store.ErrSecretKeyMismatch) {
			t.Errorf("CheckSecretKey with a wrong key = %v, want ErrSecretKeyMismatch", err)
		}
		if _, err := other.ListAccounts(ctx); !errors.Is(err, store.ErrSecretKeyMismatch) {
			t.Errorf("ListAccounts with a wrong key = %v, want ErrSecretKeyMismatch", err)
		}
		b := apiKeyAccount("b")
		if err := other.InsertAccount(ctx, &b); !errors.Is(err, store.ErrSecretKeyMismatch) {
			t.Errorf("InsertAccount with a wrong key = %v, want ErrSecretKeyMismatch", err)
		}
		if _, err := other.EncryptSecrets(ctx); !errors.Is(err, store.ErrSecretKeyMismatch) {
			t.Errorf("EncryptSecrets with a wrong key = %v, want ErrSecretKeyMismatch", err)
		}
		if err := other.SetSecretKey([]byte("short")); err == nil {
			t.Error("SetSecretKey took a 5-byte key")
		}
	})
}

func TestSecrets_LegacyPlainTextMigrated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "llmgw.db")

	// A database from before encryption: migrations up to 00008, secrets
	// in plain text.
	raw := rawDB(t, path)
	p, err := goose.NewProvider(goose.DialectSQLite3, raw, migrations.FS, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 8); err != nil {
		t.Fatal(err)
	}
	k, o := apiKeyAccount("k"), oauthAccount("o")
	for _, q := range []string{
		`INSERT INTO accounts (id, name, type, api_key, base_url, created_at, updated_at) VALUES (1, 'k', 'api_key', '` + k.APIKey + `', 'https://api.anthropic.com', 1, 1)`,
		`INSERT INTO accounts (id, name, type, base_url, created_at, updated_at) VALUES (2, 'o', 'oauth', 'https://api.anthropic.com', 1, 1)`,
		`INSERT INTO oauth_tokens (account_id, access_token, refresh_token, generation) VALUES (2, '` + o.AccessToken + `', '` + o.RefreshToken + `', 4)`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}

	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.SetSecretKey([]byte(storetest.SecretKey)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.CheckSecretKey(ctx); !errors.Is(err, store.ErrSecretsNotEncrypted) {
		t.Errorf("CheckSecretKey before encrypting = %v, want ErrSecretsNotEncrypted", err)
	}
	n, err := db.EncryptSecrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("EncryptSecrets sealed %d secrets, want 3", n)
	}
	if n, err := db.EncryptSecrets(ctx); err != nil || n != 0 {
		t.Errorf("EncryptSecrets again = %d, %v; want 0, nil", n, err)
	}
	if err := db.CheckSecretKey(ctx); err != nil {
		t.Fatal(err)
	}
	accts, err := db.ListAccounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(accts) != 2 || accts[0].APIKey != k.APIKey || accts[1].AccessToken != o.AccessToken ||
		accts[1].RefreshToken != o.RefreshToken || accts[1].TokenGeneration != 4 {
		t.Error("secrets did not survive encryption unchanged")
	}
	// A plain-text value written later (an old binary still running) is
	// refused until db migrate runs again.
	if _, err := raw.Exec(`UPDATE accounts SET api_key = 'sk-ant-api03-plain' WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ListAccounts(ctx); !errors.Is(err, store.ErrSecretsNotEncrypted) {
		t.Errorf("ListAccounts with a plain-text key = %v, want ErrSecretsNotEncrypted", err)
	}
	if n, err := db.EncryptSecrets(ctx); err != nil || n != 1 {
		t.Errorf("EncryptSecrets after a plain-text write = %d, %v; want 1, nil", n, err)
	}
	if err := raw.Close(); err != nil { // lets the checkpoint truncate the WAL
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, path, append(append(secretsOf(k), secretsOf(o)...), "sk-ant-api03-plain"))
}

func TestSecrets_Rotate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		k, o := apiKeyAccount("k"), oauthAccount("o")
		for _, a := range []*llmgw.Account{&k, &o} {
			if err := db.InsertAccount(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		// A second process that keeps the old key.
		stale, err := store.Open(ctx, db.Path())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = stale.Close() })
		if err := stale.SetSecretKey([]byte(storetest.SecretKey)); err != nil {
			t.Fatal(err)
		}
		if err := stale.CheckSecretKey(ctx); err != nil {
			t.Fatal(err)
		}

		newKey, err := store.NewSecretKey()
		if err != nil {
			t.Fatal(err)
		}
		n, err := db.RotateSecretKey(ctx, newKey)
		if err != nil {
			t.Fatal(err)
		}
		if n != 3 {
			t.Errorf("RotateSecretKey re-encrypted %d secrets, want 3", n)
		}
		if err := db.CheckSecretKey(ctx); err != nil {
			t.Errorf("CheckSecretKey after rotating: %v", err)
		}
		if got, err := db.GetAccount(ctx, "o"); err != nil || got.RefreshToken != o.RefreshToken {
			t.Errorf("GetAccount after rotating: err %v, token kept %v", err, err == nil && got.RefreshToken == o.RefreshToken)
		}
		// The old key no longer opens anything, and cannot write.
		if err := stale.CheckSecretKey(ctx); !errors.Is(err, store.ErrSecretKeyMismatch) {
			t.Errorf("CheckSecretKey with the old key = %v, want ErrSecretKeyMismatch", err)
		}
		tok := o
		tok.AccessToken = "sk-ant-oat01-new"
		if _, _, err := stale.SaveRefresh(ctx, o.ID, o.TokenGeneration, &tok); !errors.Is(err, store.ErrSecretKeyMismatch) {
			t.Errorf("SaveRefresh with the old key = %v, want ErrSecretKeyMismatch", err)
		}
		// Another process with the new key reads everything.
		fresh, err := store.Open(ctx, db.Path())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = fresh.Close() })
		if err := fresh.SetSecretKey(newKey); err != nil {
			t.Fatal(err)
		}
		if err := fresh.CheckSecretKey(ctx); err != nil {
			t.Errorf("CheckSecretKey with the new key: %v", err)
		}
	})
}

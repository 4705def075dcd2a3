// Package storetest opens real, migrated SQLite databases for tests.
package storetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/llmgw/llmgw/store"
)

// SecretKey is the key Open gives every database: tests that open the same
// file a second time give it to store.DB.SetSecretKey. It is fixed and
// obviously fake.
const SecretKey = "storetest-secret-key-32-bytes!!!"

// Open returns a migrated database in a fresh temporary file, with
// SecretKey set and the key check written (as "llmgw db migrate" leaves
// it), closed when the test ends.
func Open(tb testing.TB) *store.DB {
	tb.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(tb.TempDir(), "llmgw.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	if err := db.SetSecretKey([]byte(SecretKey)); err != nil {
		tb.Fatal(err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	if _, err := db.EncryptSecrets(ctx); err != nil {
		tb.Fatal(err)
	}
	return db
}

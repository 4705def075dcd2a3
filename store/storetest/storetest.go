// Package storetest opens real, migrated SQLite databases for tests.
package storetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/llmgw/llmgw/store"
)

// Open returns a migrated database in a fresh temporary file, closed when the
// test ends.
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
	if _, err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return db
}

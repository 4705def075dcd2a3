// Package storetest opens real, migrated llmgw databases for tests: SQLite
// files, and PostgreSQL databases on a throwaway cluster (postgres.go).
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

// Store is one kind of database the store runs on.
type Store struct {
	Name string // "sqlite" or "postgres"
	// DSN returns what store.Open takes for a new, empty database: a file
	// path in a temporary directory, or a PostgreSQL URL. It may skip the
	// test (Postgres says when).
	DSN func(tb testing.TB) string
}

// Postgres reports whether s is PostgreSQL.
func (s Store) Postgres() bool { return s.Name == "postgres" }

// Stores is the table of stores that Each runs a test against.
var Stores = []Store{
	{Name: "sqlite", DSN: func(tb testing.TB) string { return filepath.Join(tb.TempDir(), "llmgw.db") }},
	{Name: "postgres", DSN: Postgres},
}

// Each runs fn as a subtest for each of Stores, named after it.
func Each(t *testing.T, fn func(t *testing.T, s Store)) {
	t.Helper()
	for _, s := range Stores {
		t.Run(s.Name, func(t *testing.T) { fn(t, s) })
	}
}

// Open returns a migrated database of this kind, with SecretKey set and the
// key check written (as "llmgw db migrate" leaves it), closed when the test
// ends.
func (s Store) Open(tb testing.TB) *store.DB {
	tb.Helper()
	return open(tb, s.DSN(tb))
}

// Open returns a migrated SQLite database in a fresh temporary file, as
// Store.Open does.
func Open(tb testing.TB) *store.DB {
	tb.Helper()
	return Stores[0].Open(tb)
}

func open(tb testing.TB, dsn string) *store.DB {
	tb.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, dsn)
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

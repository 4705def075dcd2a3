package store_test

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/store"
	"github.com/llmgw/llmgw/store/storetest"
)

// TestMain checks for leaked goroutines and then stops the PostgreSQL
// cluster that storetest.Postgres started, if any.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { storetest.StopPostgres() }))
}

// clock is a settable time source for DB.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.UnixMilli(1_750_000_000_000)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// rawDB opens a second, plain handle on the file (or the PostgreSQL
// database, with "?" placeholders rewritten as the store does), for checks
// the store's API does not offer and for holding locks.
func rawDB(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	var (
		db  *sql.DB
		err error
	)
	if store.IsPostgresURL(path) {
		db, err = store.OpenPostgresRaw(path)
	} else {
		db, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	return db
}

// queryInt runs a query that returns one integer.
func queryInt(tb testing.TB, db *sql.DB, query string, args ...any) int64 {
	tb.Helper()
	var n int64
	if err := db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

func apiKeyAccount(name string) llmgw.Account {
	return llmgw.Account{
		Name:     name,
		Type:     llmgw.AccountAPIKey,
		BaseURL:  llmgw.DefaultBaseURL,
		Weight:   1,
		APIKey:   "sk-ant-api03-" + name,
		Priority: 1,
		Models:   []string{"claude-*", "claude-sonnet-4-5"},
	}
}

func oauthAccount(name string) llmgw.Account {
	return llmgw.Account{
		Name:           name,
		Type:           llmgw.AccountOAuth,
		BaseURL:        llmgw.DefaultBaseURL,
		Weight:         3,
		MaxConcurrency: 4,
		AccessToken:    "sk-ant-oat01-" + name,
		RefreshToken:   "sk-ant-ort01-" + name,
		ExpiresAt:      time.UnixMilli(1_760_000_000_000),
	}
}

package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/store"
	"github.com/llmgw/llmgw/store/storetest"
)

// TestCopy_RoundTrip copies a populated SQLite database to PostgreSQL and
// back to a new SQLite file, each under its own key, and compares every
// copied table row by row, column by column, with the secrets compared as
// plain text.
func TestCopy_RoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	orig := storetest.Open(t)
	fillForCopy(t, orig)

	pgURL := storetest.Postgres(t)
	pgKey, backKey := testKey(t), testKey(t)
	pg := openForCopy(t, pgURL, pgKey)
	stats, err := store.Copy(ctx, orig, pg)
	if err != nil {
		t.Fatal(err)
	}
	wantStats := []store.TableRows{
		{Table: "accounts", Rows: 3}, {Table: "oauth_tokens", Rows: 1}, {Table: "account_owners", Rows: 2},
		{Table: "account_windows", Rows: 1}, {Table: "account_scoped_windows", Rows: 2},
		{Table: "account_stats", Rows: 2}, {Table: "client_keys", Rows: 3}, {Table: "request_log", Rows: 2345},
	}
	if diff := cmp.Diff(wantStats, stats.Tables); diff != "" {
		t.Errorf("CopyStats.Tables (-want +got):\n%s", diff)
	}
	if stats.Secrets != 4 {
		t.Errorf("CopyStats.Secrets = %d, want 4 (two API keys, one token pair)", stats.Secrets)
	}
	backPath := filepath.Join(t.TempDir(), "back.db")
	back := openForCopy(t, backPath, backKey)
	if _, err := store.Copy(ctx, pg, back); err != nil {
		t.Fatal(err)
	}

	want := dumpTables(t, orig.Path(), []byte(storetest.SecretKey))
	if len(want["request_log"]) != 2345 || len(want["accounts"]) != 3 {
		t.Fatalf("the original holds %d accounts and %d request_log rows, want 3 and 2345", len(want["accounts"]), len(want["request_log"]))
	}
	if diff := cmp.Diff(want, dumpTables(t, pgURL, pgKey)); diff != "" {
		t.Errorf("PostgreSQL copy (-sqlite +postgres):\n%s", diff)
	}
	if diff := cmp.Diff(want, dumpTables(t, backPath, backKey)); diff != "" {
		t.Errorf("copied back (-original +copy):\n%s", diff)
	}

	// Through the store too: accounts with their secrets, state, windows
	// and owners, and keys with their policy.
	for _, db := range []*store.DB{pg, back} {
		wantAccts, err := orig.ListAccounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		gotAccts, err := db.ListAccounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(wantAccts, gotAccts); diff != "" {
			t.Errorf("%s: ListAccounts (-original +copy):\n%s", db.Path(), diff)
		}
		wantKeys, _ := orig.ListKeys(ctx)
		gotKeys, err := db.ListKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(wantKeys, gotKeys); diff != "" {
			t.Errorf("%s: ListKeys (-original +copy):\n%s", db.Path(), diff)
		}
		if err := db.CheckSecretKey(ctx); err != nil {
			t.Errorf("%s: CheckSecretKey: %v", db.Path(), err)
		}
	}

	// New ids continue past every id the original handed out, including
	// the deleted account's, whose history request_log keeps.
	origCounter, _ := orig.ChangeCounter(ctx)
	for _, tc := range []struct {
		db  *store.DB
		dsn string
	}{{pg, pgURL}, {back, backPath}} {
		a := apiKeyAccount("new")
		if err := tc.db.InsertAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}
		if a.ID <= 4 {
			t.Errorf("%s: new account id = %d, want > 4 (the deleted account's)", tc.db.Path(), a.ID)
		}
		k := llmgw.ClientKey{Name: "new", Prefix: "sk-llmgw-nnnn", Hash: llmgw.HashKey("new")}
		if err := tc.db.InsertKey(ctx, &k); err != nil {
			t.Fatal(err)
		}
		if k.ID <= 3 {
			t.Errorf("%s: new key id = %d, want > 3", tc.db.Path(), k.ID)
		}
		raw := rawDB(t, tc.dsn)
		if _, err := raw.ExecContext(ctx, `INSERT INTO request_log (ts) VALUES (1)`); err != nil {
			t.Fatal(err)
		}
		if got := queryInt(t, raw, `SELECT max(id) FROM request_log`); got != 2346 {
			t.Errorf("%s: new request_log id = %d, want 2346", tc.db.Path(), got)
		}
		if n, _ := tc.db.ChangeCounter(ctx); n <= origCounter {
			t.Errorf("%s: change counter = %d, want > %d (the original's)", tc.db.Path(), n, origCounter)
		}
	}
}

// TestCopy_Refuses covers the targets and sources Copy will not touch.
func TestCopy_Refuses(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		src := storetest.Open(t)
		a := apiKeyAccount("main")
		if err := src.InsertAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}

		// A target with any row is refused, and keeps what it had.
		full := s.Open(t)
		k := llmgw.ClientKey{Name: "alice", Prefix: "sk-llmgw-aaaa", Hash: llmgw.HashKey("alice")}
		if err := full.InsertKey(ctx, &k); err != nil {
			t.Fatal(err)
		}
		_, err := store.Copy(ctx, src, full)
		if !errors.Is(err, store.ErrCopyTargetNotEmpty) || !strings.Contains(err.Error(), "client_keys") || strings.Contains(err.Error(), "\n") {
			t.Errorf("Copy into a database with a key: %v, want one line wrapping ErrCopyTargetNotEmpty naming client_keys", err)
		}
		if err := full.CheckCopyTarget(ctx); !errors.Is(err, store.ErrCopyTargetNotEmpty) {
			t.Errorf("CheckCopyTarget = %v, want ErrCopyTargetNotEmpty", err)
		}
		if accts, _ := full.ListAccounts(ctx); len(accts) != 0 {
			t.Errorf("the refused target has %d accounts, want 0", len(accts))
		}

		// A target whose key check is another key's.
		other := s.Open(t)
		if err := other.SetSecretKey(testKey(t)); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Copy(ctx, src, other); !errors.Is(err, store.ErrSecretKeyMismatch) {
			t.Errorf("Copy into a database with another key check: %v, want ErrSecretKeyMismatch", err)
		}

		// A source opened with the wrong key.
		wrong, err := store.Open(ctx, src.Path())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = wrong.Close() })
		if err := wrong.SetSecretKey(testKey(t)); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Copy(ctx, wrong, s.Open(t)); !errors.Is(err, store.ErrSecretKeyMismatch) {
			t.Errorf("Copy from a database with the wrong key: %v, want ErrSecretKeyMismatch", err)
		}

		// A target that is not migrated.
		bare, err := store.Open(ctx, s.DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = bare.Close() })
		if err := bare.SetSecretKey(testKey(t)); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Copy(ctx, src, bare); err == nil || !strings.Contains(err.Error(), "pending migrations") {
			t.Errorf("Copy into an unmigrated database: %v, want pending migrations", err)
		}
	})
}

// fillForCopy puts something in every column of every copied table.
func fillForCopy(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	api := apiKeyAccount("api")
	api.Limits = []llmgw.Limit{mustLimit(t, "usd=20/day"), mustLimit(t, "tokens=2M/5h")}
	api.MaxConcurrency = 7
	if err := db.InsertAccount(ctx, &api); err != nil {
		t.Fatal(err)
	}
	sub := oauthAccount("sub")
	sub.Scopes = []string{"user:inference", "user:profile"}
	sub.Email, sub.AccountUUID, sub.OrganizationUUID = "sub@example.com", "acct-uuid", "org-uuid"
	sub.OwnerKeys = []string{"alice", "bob"}
	sub.Priority = 2
	if err := db.InsertAccount(ctx, &sub); err != nil {
		t.Fatal(err)
	}
	gone := apiKeyAccount("gone")
	if err := db.InsertAccount(ctx, &gone); err != nil {
		t.Fatal(err)
	}
	bare := llmgw.Account{Name: "bare", Type: llmgw.AccountAPIKey, BaseURL: "https://example.invalid", Weight: 1, APIKey: "sk-ant-bare"}
	if err := db.InsertAccount(ctx, &bare); err != nil {
		t.Fatal(err)
	}
	// The highest account id now belongs to no account, but request_log
	// still names it.
	if err := db.DeleteAccount(ctx, "bare"); err != nil {
		t.Fatal(err)
	}
	if err := db.SetAccountStatus(ctx, "gone", llmgw.StatusDisabled, "left the team"); err != nil {
		t.Fatal(err)
	}
	at := time.UnixMilli(1_750_000_100_000)
	if err := db.SaveAccountStates(ctx, map[int64]llmgw.AccountState{sub.ID: {
		Status: llmgw.StatusActive, CooldownUntil: at.Add(time.Minute), LastError: "429 rate_limit_error",
		FamilyCooldowns: []llmgw.FamilyCooldown{{Family: "opus", Until: at.Add(time.Hour)}, {Family: "sonnet", Until: at.Add(2 * time.Hour)}},
		At:              at,
	}}); err != nil {
		t.Fatal(err)
	}

	limits, err := llmgw.ParseLimits("usd=20/day,requests=60/1m")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []llmgw.ClientKey{
		{Name: "alice", Prefix: "sk-llmgw-aaaa", Hash: llmgw.HashKey("alice"), Models: []string{"claude-sonnet-*"},
			MaxConcurrency: 3, Limits: limits, ExpiresAt: time.UnixMilli(1_900_000_000_000)},
		{Name: "bob", Prefix: "sk-llmgw-bbbb", Hash: llmgw.HashKey("bob")},
		{Name: "carol", Prefix: "sk-llmgw-cccc", Hash: llmgw.HashKey("carol"), RotatedAt: at},
	} {
		if err := db.InsertKey(ctx, &k); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.RevokeKey(ctx, "bob"); err != nil {
		t.Fatal(err)
	}

	// The tables the server writes, with a value in every column.
	raw := rawDB(t, db.Path())
	for _, q := range []struct {
		query string
		args  []any
	}{
		{`UPDATE oauth_tokens SET generation = 5, lease_owner = 'host-1', lease_until = ?, last_refresh_at = ?,
			refresh_error = 'timeout', updated_at = ? WHERE account_id = ?`, []any{at.UnixMilli() + 1, at.UnixMilli() + 2, at.UnixMilli() + 3, sub.ID}},
		{`UPDATE client_keys SET last_used_at = ? WHERE name = 'alice'`, []any{at.UnixMilli() + 4}},
		{`INSERT INTO account_windows VALUES (?, 'allowed_warning', 'allowed', 0.625, ?, 'allowed_warning', 0.875, ?, ?, 'seven_day')`,
			[]any{sub.ID, at.UnixMilli() + 5, at.UnixMilli() + 6, at.UnixMilli() + 7}},
		{`INSERT INTO account_scoped_windows VALUES (?, '7d_oi', 'opus', 'rejected', 1.0, ?), (?, '7d-sonnet', 'sonnet', 'allowed', 0.3333333333333333, ?)`,
			[]any{sub.ID, at.UnixMilli() + 8, sub.ID, at.UnixMilli() + 9}},
		{`INSERT INTO account_stats VALUES (?, 100, 3, ?, 'overloaded', ?, 123456, 97), (?, 5, 0, ?, '', 0, 900, 5)`,
			[]any{api.ID, at.UnixMilli() + 10, at.UnixMilli() + 11, sub.ID, at.UnixMilli() + 12}},
	} {
		if _, err := raw.ExecContext(ctx, q.query, q.args...); err != nil {
			t.Fatalf("%s: %v", q.query, err)
		}
	}
	// More than two batches of request_log, with every column set.
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	accts := []struct {
		id   int64
		name string
	}{{api.ID, "api"}, {sub.ID, "sub"}, {gone.ID, "gone"}, {bare.ID, "bare"}}
	for i := range 2345 {
		a := accts[i%len(accts)]
		if _, err := tx.ExecContext(ctx, `INSERT INTO request_log VALUES
			(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			i+1, at.UnixMilli()+int64(i)*1000, fmt.Sprintf("req_%04d", i), i%3+1, []string{"alice", "bob", "carol"}[i%3],
			a.id, a.name, "claude-sonnet-4-5", []string{"anthropic", "openai", "gemini"}[i%3], i%2, []int{200, 429, 529}[i%3],
			[]string{"", "rate_limit_error", "overloaded_error"}[i%3], i%3+1, 1000+i, 200+i, 50+i, 25+i, 10+i, 15+i,
			100+i, 2000+i, i%5/4, fmt.Sprintf("req_up_%d", i), `[{"account":"api","status":429}]`, "slow down",
			[]string{"standard", "fast"}[i%2], "us", `[{"type":"message","model":"claude-opus-4-1","input_tokens":7}]`,
			[]string{"new", "followed", "moved:cooldown"}[i%3]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// openForCopy opens and migrates a new database at dsn with key, without
// the key check: Copy writes it.
func openForCopy(t *testing.T, dsn string, key []byte) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.SetSecretKey(key); err != nil {
		t.Fatal(err)
	}
	return db
}

func testKey(t *testing.T) []byte {
	t.Helper()
	k, err := store.NewSecretKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// copyIgnored are the tables Copy does not copy.
var copyIgnored = []string{"goose_db_version", "server_status", "secret_key", "change_counter"}

// dumpTables reads every row of every table but copyIgnored with SELECT *,
// each as one line of column=type:value pairs in column-name order, the
// values normalised across the two databases and the secrets opened with
// key. Rows are sorted, so that collation does not matter.
func dumpTables(t *testing.T, dsn string, key []byte) map[string][]string {
	t.Helper()
	raw := rawDB(t, dsn)
	q := `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`
	if store.IsPostgresURL(dsn) {
		q = `SELECT table_name::text FROM information_schema.tables
			WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	}
	var tables []string
	for _, name := range queryStrings(t, raw, q) {
		if !slices.Contains(copyIgnored, name) {
			tables = append(tables, name)
		}
	}
	out := map[string][]string{}
	for _, table := range tables {
		out[table] = dumpTable(t, raw, table, key)
	}
	return out
}

func queryStrings(t *testing.T, raw *sql.DB, q string) []string {
	t.Helper()
	rows, err := raw.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func dumpTable(t *testing.T, raw *sql.DB, table string, key []byte) []string {
	t.Helper()
	rows, err := raw.QueryContext(context.Background(), `SELECT * FROM `+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := map[string]any{}
		for i, c := range cols {
			switch v := vals[i].(type) {
			case []byte:
				row[c] = string(v)
			case int32:
				row[c] = int64(v)
			default:
				row[c] = v
			}
		}
		for _, c := range []string{"api_key", "access_token", "refresh_token"} {
			stored, ok := row[c].(string)
			if !ok || stored == "" {
				continue
			}
			id := row["id"]
			if table == "oauth_tokens" {
				id = row["account_id"]
			}
			plain, err := store.OpenSecret(key, id.(int64), c, stored)
			if err != nil {
				t.Fatalf("%s.%s of %v: %v", table, c, id, err)
			}
			row[c] = "opened:" + plain
		}
		names := slices.Sorted(maps.Keys(row))
		var b strings.Builder
		for _, c := range names {
			fmt.Fprintf(&b, "%s=%T:%v ", c, row[c], row[c])
		}
		out = append(out, b.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/store"
	"github.com/llmgw/llmgw/store/storetest"
)

func TestDB_InsertAccount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		clk := newClock()
		db.Now = clk.Now

		a := apiKeyAccount("team-a")
		if err := db.InsertAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}
		if a.ID == 0 {
			t.Error("ID not set")
		}
		now := clk.Now()
		if !a.CreatedAt.Equal(now) || !a.UpdatedAt.Equal(now) || !a.State.At.Equal(now) {
			t.Errorf("times = %v, %v, %v; want %v", a.CreatedAt, a.UpdatedAt, a.State.At, now)
		}
		if a.State.Status != llmgw.StatusActive {
			t.Errorf("Status = %q, want active", a.State.Status)
		}
		got, err := db.GetAccount(ctx, "team-a")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&a, got); diff != "" {
			t.Errorf("GetAccount (-want +got):\n%s", diff)
		}

		o := oauthAccount("max-1")
		o.State = llmgw.AccountState{Status: llmgw.StatusDisabled, Reason: "not yet"}
		if err := db.InsertAccount(ctx, &o); err != nil {
			t.Fatal(err)
		}
		got, err = db.GetAccount(ctx, "max-1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&o, got); diff != "" {
			t.Errorf("GetAccount of OAuth account (-want +got):\n%s", diff)
		}

		list, err := db.ListAccounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]llmgw.Account{a, o}, list); diff != "" {
			t.Errorf("ListAccounts (-want +got):\n%s", diff)
		}
	})
}

func TestDB_InsertAccount_Errors(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		a := apiKeyAccount("dup")
		if err := db.InsertAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			acct llmgw.Account
			want error
		}{
			{"duplicate name", apiKeyAccount("dup"), llmgw.ErrConflict},
			{"duplicate name, other type", oauthAccount("dup"), llmgw.ErrConflict},
			{"no key", llmgw.Account{Name: "x", Type: llmgw.AccountAPIKey, BaseURL: llmgw.DefaultBaseURL, Weight: 1}, llmgw.ErrInvalid},
			{"comma in model pattern", func() llmgw.Account {
				a := apiKeyAccount("comma")
				a.Models = []string{"claude-[a,b]*"}
				return a
			}(), llmgw.ErrInvalid},
			{"unknown status", func() llmgw.Account {
				a := apiKeyAccount("status")
				a.State.Status = "paused"
				return a
			}(), llmgw.ErrInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				a := tt.acct
				err := db.InsertAccount(ctx, &a)
				if !errors.Is(err, tt.want) {
					t.Errorf("InsertAccount error = %v, want %v", err, tt.want)
				}
				if a.ID != 0 {
					t.Errorf("ID = %d after a failed insert, want 0", a.ID)
				}
			})
		}
		list, err := db.ListAccounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 {
			t.Errorf("%d accounts after failed inserts, want 1", len(list))
		}
	})
}

func TestDB_GetAccount_NotFound(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		db := s.Open(t)
		_, err := db.GetAccount(context.Background(), "nope")
		if !errors.Is(err, llmgw.ErrNotFound) {
			t.Errorf("GetAccount error = %v, want ErrNotFound", err)
		}
		if want := "account nope: not found"; err == nil || err.Error() != want {
			t.Errorf("GetAccount error = %q, want %q", err, want)
		}
	})
}

func TestDB_SetAccountStatus(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		clk := newClock()
		db.Now = clk.Now
		a := apiKeyAccount("a")
		if err := db.InsertAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}
		// The server put it in a cooldown.
		cooling := llmgw.AccountState{
			Status: llmgw.StatusActive, CooldownUntil: clk.Now().Add(time.Hour),
			LastError: "429 rate_limit_error", At: clk.Advance(time.Second),
		}
		if err := db.SaveAccountStates(ctx, map[int64]llmgw.AccountState{a.ID: cooling}); err != nil {
			t.Fatal(err)
		}

		at := clk.Advance(time.Second)
		if err := db.SetAccountStatus(ctx, "a", llmgw.StatusDisabled, "maintenance"); err != nil {
			t.Fatal(err)
		}
		got, err := db.GetAccount(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		want := llmgw.AccountState{Status: llmgw.StatusDisabled, Reason: "maintenance", LastError: "429 rate_limit_error", At: at}
		if diff := cmp.Diff(want, got.State); diff != "" {
			t.Errorf("State (-want +got):\n%s", diff)
		}

		if err := db.SetAccountStatus(ctx, "missing", llmgw.StatusActive, ""); !errors.Is(err, llmgw.ErrNotFound) {
			t.Errorf("SetAccountStatus of a missing account = %v, want ErrNotFound", err)
		}
		if err := db.SetAccountStatus(ctx, "a", "paused", ""); !errors.Is(err, llmgw.ErrInvalid) {
			t.Errorf("SetAccountStatus to an unknown status = %v, want ErrInvalid", err)
		}
	})
}

func TestDB_DeleteAccount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		raw := rawDB(t, db.Path())
		o := oauthAccount("o")
		if err := db.InsertAccount(ctx, &o); err != nil {
			t.Fatal(err)
		}
		w := store.NewUsageWriter(db, store.UsageWriterOptions{})
		w.Record(llmgw.Usage{Time: time.Now(), AccountID: o.ID, AccountName: "o", Status: 200,
			Attempts: []llmgw.Attempt{{AccountID: o.ID, Status: 200}}})
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}

		if err := db.DeleteAccount(ctx, "o"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.GetAccount(ctx, "o"); !errors.Is(err, llmgw.ErrNotFound) {
			t.Errorf("GetAccount after delete = %v, want ErrNotFound", err)
		}
		if err := db.DeleteAccount(ctx, "o"); !errors.Is(err, llmgw.ErrNotFound) {
			t.Errorf("second DeleteAccount = %v, want ErrNotFound", err)
		}
		for _, table := range []string{"oauth_tokens", "account_stats"} {
			if n := queryInt(t, raw, `SELECT count(*) FROM `+table); n != 0 {
				t.Errorf("%s has %d rows after delete, want 0 (cascade)", table, n)
			}
		}
		if n := queryInt(t, raw, `SELECT count(*) FROM request_log WHERE account_id = ?`, o.ID); n != 1 {
			t.Errorf("request_log has %d rows of the deleted account, want 1 (the ledger stays)", n)
		}

		// A new account never reuses the ID, so it cannot inherit the ledger.
		n := apiKeyAccount("new")
		if err := db.InsertAccount(ctx, &n); err != nil {
			t.Fatal(err)
		}
		if n.ID == o.ID {
			t.Errorf("new account reused ID %d of a deleted one", n.ID)
		}
	})
}

func TestDB_UpsertAccounts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		raw := rawDB(t, db.Path())
		clk := newClock()
		db.Now = clk.Now

		in := []llmgw.Account{apiKeyAccount("a"), oauthAccount("b"), apiKeyAccount("c")}
		created, updated, err := db.UpsertAccounts(ctx, in)
		if err != nil || created != 3 || updated != 0 {
			t.Fatalf("UpsertAccounts = %d, %d, %v; want 3, 0, nil", created, updated, err)
		}
		if in[0].ID != 0 {
			t.Error("UpsertAccounts modified its input")
		}
		first, err := db.ListAccounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ignore := []cmp.Option{
			cmpopts.IgnoreFields(llmgw.Account{}, "ID", "CreatedAt", "UpdatedAt", "State", "TokenGeneration"),
			cmpopts.EquateEmpty(),
		}
		if diff := cmp.Diff(in, first, ignore...); diff != "" {
			t.Errorf("accounts after UpsertAccounts (-want +got):\n%s", diff)
		}

		// Idempotent: the same input again changes nothing but updated_at.
		clk.Advance(time.Minute)
		created, updated, err = db.UpsertAccounts(ctx, in)
		if err != nil || created != 0 || updated != 3 {
			t.Fatalf("second UpsertAccounts = %d, %d, %v; want 0, 3, nil", created, updated, err)
		}
		second, err := db.ListAccounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(first, second, cmpopts.IgnoreFields(llmgw.Account{}, "UpdatedAt")); diff != "" {
			t.Errorf("accounts after second UpsertAccounts (-want +got):\n%s", diff)
		}

		// An update keeps state and statistics and replaces config and tokens.
		if err := db.SetAccountStatus(ctx, "b", llmgw.StatusDisabled, "paused by ops"); err != nil {
			t.Fatal(err)
		}
		w := store.NewUsageWriter(db, store.UsageWriterOptions{})
		w.Record(llmgw.Usage{Time: clk.Now(), Attempts: []llmgw.Attempt{{AccountID: second[1].ID, Status: 200}}})
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		gen := queryInt(t, raw, `SELECT generation FROM oauth_tokens WHERE account_id = ?`, second[1].ID)
		b := oauthAccount("b")
		b.AccessToken, b.RefreshToken, b.Weight = "new-access", "new-refresh", 7
		created, updated, err = db.UpsertAccounts(ctx, []llmgw.Account{b, apiKeyAccount("d")})
		if err != nil || created != 1 || updated != 1 {
			t.Fatalf("third UpsertAccounts = %d, %d, %v; want 1, 1, nil", created, updated, err)
		}
		got, err := db.GetAccount(ctx, "b")
		if err != nil {
			t.Fatal(err)
		}
		if got.State.Status != llmgw.StatusDisabled || got.State.Reason != "paused by ops" {
			t.Errorf("State after update = %+v, want the operator's disabled state kept", got.State)
		}
		if got.AccessToken != "new-access" || got.RefreshToken != "new-refresh" || got.Weight != 7 || got.ID != second[1].ID {
			t.Errorf("account after update = %+v, want new tokens and weight, same ID", got)
		}
		if g := queryInt(t, raw, `SELECT generation FROM oauth_tokens WHERE account_id = ?`, got.ID); g != gen+1 {
			t.Errorf("token generation = %d, want %d", g, gen+1)
		}
		stats, err := db.AccountStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if stats[got.ID].Requests != 1 {
			t.Errorf("Requests after update = %d, want 1 (kept)", stats[got.ID].Requests)
		}

		// OAuth to API key drops the tokens.
		bk := apiKeyAccount("b")
		if _, _, err := db.UpsertAccounts(ctx, []llmgw.Account{bk}); err != nil {
			t.Fatal(err)
		}
		if n := queryInt(t, raw, `SELECT count(*) FROM oauth_tokens WHERE account_id = ?`, got.ID); n != 0 {
			t.Errorf("%d token rows after the account became api_key, want 0", n)
		}
	})
}

func TestDB_UpsertAccounts_AllOrNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		if _, _, err := db.UpsertAccounts(ctx, []llmgw.Account{apiKeyAccount("a"), oauthAccount("b")}); err != nil {
			t.Fatal(err)
		}
		before, err := db.ListAccounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		counter, err := db.ChangeCounter(ctx)
		if err != nil {
			t.Fatal(err)
		}

		changed := apiKeyAccount("a")
		changed.Weight = 9
		bad := apiKeyAccount("bad")
		bad.BaseURL = "ftp://example.com"
		tests := []struct {
			name string
			in   []llmgw.Account
		}{
			{"invalid entry last", []llmgw.Account{changed, apiKeyAccount("new"), bad}},
			{"invalid entry first", []llmgw.Account{bad, changed}},
			{"name twice", []llmgw.Account{changed, apiKeyAccount("new"), apiKeyAccount("new")}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				created, updated, err := db.UpsertAccounts(ctx, tt.in)
				if !errors.Is(err, llmgw.ErrInvalid) || created != 0 || updated != 0 {
					t.Errorf("UpsertAccounts = %d, %d, %v; want 0, 0, ErrInvalid", created, updated, err)
				}
				after, err := db.ListAccounts(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(before, after); diff != "" {
					t.Errorf("accounts changed by a failed upsert (-want +got):\n%s", diff)
				}
				if n, err := db.ChangeCounter(ctx); err != nil || n != counter {
					t.Errorf("ChangeCounter = %d, %v; want %d (unchanged)", n, err, counter)
				}
			})
		}
	})
}

func TestDB_SaveAccountStates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		clk := newClock()
		db.Now = clk.Now
		a, b := apiKeyAccount("a"), apiKeyAccount("b")
		for _, acct := range []*llmgw.Account{&a, &b} {
			if err := db.InsertAccount(ctx, acct); err != nil {
				t.Fatal(err)
			}
		}
		// The operator disables a; the server decided its cooldown a second
		// earlier but writes it back later. That write must lose.
		serverAt := clk.Advance(time.Second)
		clk.Advance(time.Second)
		if err := db.SetAccountStatus(ctx, "a", llmgw.StatusDisabled, "ops"); err != nil {
			t.Fatal(err)
		}
		stale := llmgw.AccountState{Status: llmgw.StatusActive, CooldownUntil: serverAt.Add(time.Minute), LastError: "429 rate_limit_error", At: serverAt}
		newer := llmgw.AccountState{Status: llmgw.StatusError, Reason: "invalid x-api-key", LastError: "401 authentication_error", At: clk.Advance(time.Second)}
		err := db.SaveAccountStates(ctx, map[int64]llmgw.AccountState{a.ID: stale, b.ID: newer, 9999: newer})
		if err != nil {
			t.Fatal(err)
		}
		gotA, err := db.GetAccount(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if gotA.State.Status != llmgw.StatusDisabled || !gotA.State.CooldownUntil.IsZero() {
			t.Errorf("a's state = %+v, want the operator's newer disabled state", gotA.State)
		}
		gotB, err := db.GetAccount(ctx, "b")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(newer, gotB.State); diff != "" {
			t.Errorf("b's state (-want +got):\n%s", diff)
		}

		err = db.SaveAccountStates(ctx, map[int64]llmgw.AccountState{b.ID: {Status: "", At: clk.Advance(time.Second)}})
		if !errors.Is(err, llmgw.ErrInvalid) {
			t.Errorf("SaveAccountStates with an empty status = %v, want ErrInvalid", err)
		}
	})
}

func TestDB_ChangeCounter(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		last, err := db.ChangeCounter(ctx)
		if err != nil {
			t.Fatal(err)
		}
		check := func(t *testing.T, what string, wantMoved bool) {
			t.Helper()
			n, err := db.ChangeCounter(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if moved := n != last; moved != wantMoved {
				t.Errorf("after %s: counter %d -> %d, moved = %v, want %v", what, last, n, moved, wantMoved)
			}
			last = n
		}

		a := oauthAccount("a")
		if err := db.InsertAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}
		check(t, "InsertAccount", true)
		if _, _, err := db.UpsertAccounts(ctx, []llmgw.Account{oauthAccount("a")}); err != nil {
			t.Fatal(err)
		}
		check(t, "UpsertAccounts", true)
		if err := db.SetAccountStatus(ctx, "a", llmgw.StatusDisabled, ""); err != nil {
			t.Fatal(err)
		}
		check(t, "SetAccountStatus", true)
		k := llmgw.ClientKey{Name: "alice", Prefix: "sk-llmgw-abcd", Hash: llmgw.HashKey("sk-llmgw-abcd-secret")}
		if err := db.InsertKey(ctx, &k); err != nil {
			t.Fatal(err)
		}
		check(t, "InsertKey", true)

		// The server's own bookkeeping must not make it reload.
		w := store.NewUsageWriter(db, store.UsageWriterOptions{})
		w.Record(llmgw.Usage{Time: time.Now(), KeyID: k.ID, KeyName: "alice", AccountID: a.ID,
			Attempts: []llmgw.Attempt{{AccountID: a.ID, Status: 200}}})
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		check(t, "usage (key last_used_at and account stats)", false)

		if err := db.RevokeKey(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		check(t, "RevokeKey", true)
		if err := db.DeleteAccount(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		check(t, "DeleteAccount", true)
	})
}

func TestDB_LoadSnapshot(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		clk := newClock()
		db.Now = clk.Now
		a, o := apiKeyAccount("a"), oauthAccount("o")
		for _, acct := range []*llmgw.Account{&a, &o} {
			if err := db.InsertAccount(ctx, acct); err != nil {
				t.Fatal(err)
			}
		}
		cooling := llmgw.AccountState{Status: llmgw.StatusActive, CooldownUntil: clk.Now().Add(time.Minute),
			LastError: "529 overloaded_error", At: clk.Advance(time.Second)}
		if err := db.SaveAccountStates(ctx, map[int64]llmgw.AccountState{o.ID: cooling}); err != nil {
			t.Fatal(err)
		}
		o.State = cooling
		k1 := llmgw.ClientKey{Name: "alice", Prefix: "sk-llmgw-aaaa", Hash: llmgw.HashKey("k1"), ExpiresAt: clk.Now().Add(24 * time.Hour)}
		k2 := llmgw.ClientKey{Name: "bob", Prefix: "sk-llmgw-bbbb", Hash: llmgw.HashKey("k2")}
		for _, k := range []*llmgw.ClientKey{&k1, &k2} {
			if err := db.InsertKey(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.RevokeKey(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
		k2.RevokedAt = clk.Now()
		version, err := db.ChangeCounter(ctx)
		if err != nil {
			t.Fatal(err)
		}

		clk.Advance(time.Second)
		got, err := db.LoadSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := &llmgw.Snapshot{
			Version:  version,
			Accounts: []llmgw.Account{a, o},
			Keys:     []llmgw.ClientKey{k1, k2},
			LoadedAt: clk.Now(),
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("LoadSnapshot (-want +got):\n%s", diff)
		}
	})
}

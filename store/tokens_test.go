package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/store"
	"github.com/llmgw/llmgw/store/storetest"
)

// counter returns the change counter.
func counter(t *testing.T, db *store.DB) int64 {
	t.Helper()
	n, err := db.ChangeCounter(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDB_ClaimRefresh_Lease(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		clk := newClock()
		db.Now = clk.Now
		a := oauthAccount("a")
		if err := db.InsertAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}
		before := counter(t, db)

		claim := func(owner string) bool {
			t.Helper()
			got, ok, err := db.ClaimRefresh(ctx, a.ID, owner, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if got.RefreshToken != a.RefreshToken || got.TokenGeneration != a.TokenGeneration || got.Name != "a" {
				t.Errorf("ClaimRefresh returned %s gen %d, want the stored account", got.Name, got.TokenGeneration)
			}
			return ok
		}
		if !claim("p1") {
			t.Fatal("first claim failed")
		}
		if claim("p2") {
			t.Error("p2 took a lease p1 holds")
		}
		if !claim("p1") {
			t.Error("p1 could not renew its own lease")
		}
		clk.Advance(59 * time.Second)
		if claim("p2") {
			t.Error("p2 took p1's lease before it ran out")
		}
		clk.Advance(2 * time.Second)
		if !claim("p2") {
			t.Error("p2 could not take a lease that ran out")
		}
		// p1 releasing late must not end p2's lease, but records its failure.
		if err := db.ReleaseRefresh(ctx, a.ID, "p1", "token endpoint answered 503"); err != nil {
			t.Fatal(err)
		}
		if claim("p3") {
			t.Error("p1's release ended p2's lease")
		}
		got, err := db.GetAccount(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if got.RefreshError != "token endpoint answered 503" {
			t.Errorf("RefreshError = %q, want the recorded failure", got.RefreshError)
		}
		if err := db.ReleaseRefresh(ctx, a.ID, "p2", ""); err != nil {
			t.Fatal(err)
		}
		if !claim("p3") {
			t.Error("p3 could not claim after p2 released")
		}
		if after := counter(t, db); after != before {
			t.Errorf("leases moved the change counter %d -> %d; the server would reload for nothing", before, after)
		}

		k := apiKeyAccount("k")
		if err := db.InsertAccount(ctx, &k); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := db.ClaimRefresh(ctx, k.ID, "p1", time.Minute); err != nil || ok || got.Type != llmgw.AccountAPIKey {
			t.Errorf("ClaimRefresh of an API-key account = %v, %v, %v; want it returned, not claimed", got, ok, err)
		}
		if _, _, err := db.ClaimRefresh(ctx, 9999, "p1", time.Minute); !errors.Is(err, llmgw.ErrNotFound) {
			t.Errorf("ClaimRefresh of an unknown account: err = %v, want ErrNotFound", err)
		}
	})
}

func TestDB_SaveRefresh_CompareAndSwap(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		clk := newClock()
		db.Now = clk.Now
		a := oauthAccount("a")
		a.Scopes, a.Email = []string{"user:inference"}, "old@example.com"
		if err := db.InsertAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}
		gen := a.TokenGeneration
		if _, ok, err := db.ClaimRefresh(ctx, a.ID, "p1", time.Minute); err != nil || !ok {
			t.Fatalf("ClaimRefresh = %v, %v", ok, err)
		}
		if err := db.ReleaseRefresh(ctx, a.ID, "nobody", "an old failure"); err != nil {
			t.Fatal(err)
		}
		before := counter(t, db)

		refreshed := clk.Advance(time.Minute)
		tok := &llmgw.Account{
			AccessToken: "sk-ant-oat01-new", RefreshToken: "sk-ant-ort01-new",
			ExpiresAt: refreshed.Add(8 * time.Hour), LastRefresh: refreshed,
			Scopes: []string{"user:inference", "user:profile"}, AccountUUID: "acct-uuid",
		}
		got, ok, err := db.SaveRefresh(ctx, a.ID, gen, tok)
		if err != nil || !ok {
			t.Fatalf("SaveRefresh = %v, %v; want stored", ok, err)
		}
		want := a
		want.AccessToken, want.RefreshToken, want.ExpiresAt, want.LastRefresh = tok.AccessToken, tok.RefreshToken, tok.ExpiresAt, refreshed
		want.Scopes, want.AccountUUID = tok.Scopes, "acct-uuid" // Email was empty: kept
		want.TokenGeneration = gen + 1
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("stored account (-want +got):\n%s", diff)
		}
		if counter(t, db) == before {
			t.Error("a stored refresh did not move the change counter")
		}
		// The lease went with the save: another owner can claim at once.
		if _, ok, err := db.ClaimRefresh(ctx, a.ID, "p2", time.Minute); err != nil || !ok {
			t.Errorf("claim after save = %v, %v; want the lease free", ok, err)
		}

		// A stale generation writes nothing: never an older pair over a newer.
		stale := &llmgw.Account{AccessToken: "sk-ant-oat01-stale", RefreshToken: "sk-ant-ort01-stale", ExpiresAt: refreshed.Add(9 * time.Hour)}
		got, ok, err = db.SaveRefresh(ctx, a.ID, gen, stale)
		if err != nil || ok {
			t.Fatalf("SaveRefresh with a stale generation = %v, %v; want refused", ok, err)
		}
		if got.AccessToken != tok.AccessToken || got.TokenGeneration != gen+1 {
			t.Errorf("after a refused save: access %q gen %d, want the stored pair", got.AccessToken, got.TokenGeneration)
		}

		// No refresh_token in the answer keeps the old one.
		got, ok, err = db.SaveRefresh(ctx, a.ID, gen+1, &llmgw.Account{AccessToken: "sk-ant-oat01-third", ExpiresAt: refreshed.Add(10 * time.Hour)})
		if err != nil || !ok {
			t.Fatalf("SaveRefresh without a refresh token = %v, %v", ok, err)
		}
		if got.RefreshToken != "sk-ant-ort01-new" || got.AccessToken != "sk-ant-oat01-third" {
			t.Errorf("tokens = %q, %q; want the new access token and the kept refresh token", got.AccessToken, got.RefreshToken)
		}
	})
}

func TestDB_MarkAccountError(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		clk := newClock()
		db.Now = clk.Now
		a := oauthAccount("a")
		if err := db.InsertAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}
		// The server cooled it down earlier.
		cooling := llmgw.AccountState{Status: llmgw.StatusActive, CooldownUntil: clk.Now().Add(time.Hour), At: clk.Advance(time.Second)}
		if err := db.SaveAccountStates(ctx, map[int64]llmgw.AccountState{a.ID: cooling}); err != nil {
			t.Fatal(err)
		}
		before := counter(t, db)
		at := clk.Advance(time.Second)
		if err := db.MarkAccountError(ctx, a.ID, "refresh token rejected"); err != nil {
			t.Fatal(err)
		}
		got, err := db.OAuthAccount(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := llmgw.AccountState{Status: llmgw.StatusError, Reason: "refresh token rejected", At: at}
		if diff := cmp.Diff(want, got.State); diff != "" {
			t.Errorf("state (-want +got):\n%s", diff)
		}
		if counter(t, db) == before {
			t.Error("MarkAccountError did not move the change counter")
		}
		if err := db.MarkAccountError(ctx, 9999, "x"); !errors.Is(err, llmgw.ErrNotFound) {
			t.Errorf("MarkAccountError of an unknown account: err = %v, want ErrNotFound", err)
		}
		if _, err := db.OAuthAccount(ctx, 9999); !errors.Is(err, llmgw.ErrNotFound) {
			t.Errorf("OAuthAccount of an unknown account: err = %v, want ErrNotFound", err)
		}
	})
}

func TestDB_UpsertAccounts_NeverOlderTokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		file := oauthAccount("a") // what an accounts file says
		if _, _, err := db.UpsertAccounts(ctx, []llmgw.Account{file}); err != nil {
			t.Fatal(err)
		}
		a, err := db.GetAccount(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		// The server refreshes: the file's refresh token is now spent.
		tok := &llmgw.Account{AccessToken: "sk-ant-oat01-r", RefreshToken: "sk-ant-ort01-r", ExpiresAt: file.ExpiresAt.Add(time.Hour)}
		if _, ok, err := db.SaveRefresh(ctx, a.ID, a.TokenGeneration, tok); err != nil || !ok {
			t.Fatalf("SaveRefresh = %v, %v", ok, err)
		}
		// Re-importing the file (say, to change the weight) keeps the newer pair.
		file.Weight = 9
		if _, _, err := db.UpsertAccounts(ctx, []llmgw.Account{file}); err != nil {
			t.Fatal(err)
		}
		got, err := db.GetAccount(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if got.RefreshToken != "sk-ant-ort01-r" || got.Weight != 9 || got.TokenGeneration != a.TokenGeneration+1 {
			t.Errorf("after re-import: refresh %q weight %d gen %d; want the refreshed token kept, weight 9, gen %d",
				got.RefreshToken, got.Weight, got.TokenGeneration, a.TokenGeneration+1)
		}
		// Newer tokens (a later expiry) replace and move the generation on.
		file.AccessToken, file.RefreshToken, file.ExpiresAt = "sk-ant-oat01-login", "sk-ant-ort01-login", tok.ExpiresAt.Add(time.Hour)
		file.Email, file.LastRefresh = "new@example.com", time.UnixMilli(1_760_000_000_000)
		if _, _, err := db.UpsertAccounts(ctx, []llmgw.Account{file}); err != nil {
			t.Fatal(err)
		}
		got, err = db.GetAccount(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if got.RefreshToken != "sk-ant-ort01-login" || got.Email != "new@example.com" || got.TokenGeneration != a.TokenGeneration+2 ||
			!got.LastRefresh.Equal(file.LastRefresh) {
			t.Errorf("after a newer import: refresh %q email %q gen %d last refresh %v", got.RefreshToken, got.Email, got.TokenGeneration, got.LastRefresh)
		}
	})
}

func TestDB_OwnerKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		raw := rawDB(t, db.Path())
		a := apiKeyAccount("a")
		a.OwnerKeys = []string{"bob", "alice", "bob"}
		if err := db.InsertAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"alice", "bob"}, a.OwnerKeys); diff != "" {
			t.Errorf("OwnerKeys after insert (-want +got):\n%s", diff)
		}
		got, err := db.GetAccount(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a.OwnerKeys, got.OwnerKeys); diff != "" {
			t.Errorf("GetAccount owner keys (-want +got):\n%s", diff)
		}

		before := counter(t, db)
		b := apiKeyAccount("a")
		b.OwnerKeys = []string{"carol"}
		if _, _, err := db.UpsertAccounts(ctx, []llmgw.Account{b, apiKeyAccount("free")}); err != nil {
			t.Fatal(err)
		}
		if counter(t, db) == before {
			t.Error("changing owner keys did not move the change counter")
		}
		snap, err := db.LoadSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var owners [][]string
		for _, acct := range snap.Accounts {
			owners = append(owners, acct.OwnerKeys)
		}
		if diff := cmp.Diff([][]string{{"carol"}, nil}, owners); diff != "" {
			t.Errorf("snapshot owner keys (-want +got):\n%s", diff)
		}

		bad := apiKeyAccount("bad")
		bad.OwnerKeys = []string{"has space"}
		if err := db.InsertAccount(ctx, &bad); !errors.Is(err, llmgw.ErrInvalid) {
			t.Errorf("owner key with a space: err = %v, want ErrInvalid", err)
		}

		if err := db.DeleteAccount(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if n := queryInt(t, raw, `SELECT count(*) FROM account_owners`); n != 0 {
			t.Errorf("%d owner rows after the account was deleted, want 0", n)
		}
	})
}

func TestUsageWriter_RecordWindows(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		a, gone := oauthAccount("a"), oauthAccount("gone")
		for _, acct := range []*llmgw.Account{&a, &gone} {
			if err := db.InsertAccount(ctx, acct); err != nil {
				t.Fatal(err)
			}
		}
		w := newWriter(t, db, noAutoFlush)
		at := time.UnixMilli(1_750_000_000_000)
		newer := llmgw.Windows{
			Status:   "allowed_warning",
			FiveHour: llmgw.Window{Status: "allowed_warning", Utilization: 0.91, ResetsAt: at.Add(2 * time.Hour)},
			SevenDay: llmgw.Window{Status: "allowed", Utilization: 0.4, ResetsAt: at.Add(72 * time.Hour)},
			At:       at.Add(time.Second),
		}
		older := llmgw.Windows{Status: "allowed", FiveHour: llmgw.Window{Status: "allowed", Utilization: 0.5}, At: at}
		w.RecordWindows(a.ID, newer)
		w.RecordWindows(a.ID, older) // arrives later, but is older: coalesced away
		w.RecordWindows(gone.ID, newer)
		if err := db.DeleteAccount(ctx, "gone"); err != nil {
			t.Fatal(err)
		}
		before := counter(t, db)
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := db.GetAccount(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(newer, got.Windows); diff != "" {
			t.Errorf("stored windows (-want +got):\n%s", diff)
		}
		if after := counter(t, db); after != before {
			t.Errorf("windows moved the change counter %d -> %d", before, after)
		}

		// Windows older than the stored ones are not written.
		w.RecordWindows(a.ID, older)
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if got, err = db.GetAccount(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(newer, got.Windows); diff != "" {
			t.Errorf("windows after an older write (-want +got):\n%s", diff)
		}
	})
}

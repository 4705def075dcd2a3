package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/store/storetest"
)

func mustLimit(tb testing.TB, s string) llmgw.Limit {
	tb.Helper()
	l, err := llmgw.ParseLimit(s)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

func TestDB_UpdateAccount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		clk := newClock()
		db.Now = clk.Now
		o := oauthAccount("max")
		o.OwnerKeys = []string{"alice"}
		o.Email = "alice@example.com"
		if err := db.InsertAccount(ctx, &o); err != nil {
			t.Fatal(err)
		}
		if err := db.SetAccountStatus(ctx, "max", llmgw.StatusDisabled, "paused by ops"); err != nil {
			t.Fatal(err)
		}
		before, err := db.GetAccount(ctx, "max")
		if err != nil {
			t.Fatal(err)
		}
		counter, err := db.ChangeCounter(ctx)
		if err != nil {
			t.Fatal(err)
		}

		at := clk.Advance(time.Minute)
		got, err := db.UpdateAccount(ctx, "max", func(a *llmgw.Account) error {
			a.Name = "max-2"
			a.Priority = 5
			a.OwnerKeys = append(a.OwnerKeys, "bob")
			a.Limits = []llmgw.Limit{mustLimit(t, "usd=100/day"), mustLimit(t, "tokens=2M/5h")}
			// None of these is UpdateAccount's to write.
			a.Type = llmgw.AccountAPIKey
			a.AccessToken, a.RefreshToken = "changed", "changed"
			a.State.Status = llmgw.StatusActive
			a.ID = 999
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := *before
		want.Name, want.Priority, want.UpdatedAt = "max-2", 5, at
		want.OwnerKeys = []string{"alice", "bob"}
		want.Limits = []llmgw.Limit{mustLimit(t, "usd=100/day"), mustLimit(t, "tokens=2M/5h")}
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("UpdateAccount returned (-want +got):\n%s", diff)
		}
		stored, err := db.GetAccount(ctx, "max-2")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&want, stored); diff != "" {
			t.Errorf("stored account (-want +got):\n%s", diff)
		}
		if _, err := db.GetAccount(ctx, "max"); !errors.Is(err, llmgw.ErrNotFound) {
			t.Errorf("GetAccount of the old name = %v, want ErrNotFound", err)
		}
		if n, err := db.ChangeCounter(ctx); err != nil || n == counter {
			t.Errorf("ChangeCounter = %d, %v; want it moved from %d (a running server reloads)", n, err, counter)
		}
	})
}

func TestDB_UpdateAccount_Errors(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		for _, name := range []string{"a", "b"} {
			a := apiKeyAccount(name)
			if err := db.InsertAccount(ctx, &a); err != nil {
				t.Fatal(err)
			}
		}
		before, err := db.ListAccounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		counter, err := db.ChangeCounter(ctx)
		if err != nil {
			t.Fatal(err)
		}
		errStop := errors.New("stop")
		tests := []struct {
			name   string
			acct   string
			change func(*llmgw.Account) error
			want   error
		}{
			{"missing account", "nope", func(*llmgw.Account) error { return nil }, llmgw.ErrNotFound},
			{"name taken", "a", func(a *llmgw.Account) error { a.Name = "b"; return nil }, llmgw.ErrConflict},
			{"invalid weight", "a", func(a *llmgw.Account) error { a.Weight = 0; return nil }, llmgw.ErrInvalid},
			{"empty api key", "a", func(a *llmgw.Account) error { a.APIKey = ""; return nil }, llmgw.ErrInvalid},
			{"repeated limit", "a", func(a *llmgw.Account) error {
				a.Limits = []llmgw.Limit{mustLimit(t, "usd=1/day"), mustLimit(t, "usd=2/day")}
				return nil
			}, llmgw.ErrInvalid},
			{"change fails", "a", func(a *llmgw.Account) error { a.Priority = 7; return errStop }, errStop},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if _, err := db.UpdateAccount(ctx, tt.acct, tt.change); !errors.Is(err, tt.want) {
					t.Errorf("UpdateAccount error = %v, want %v", err, tt.want)
				}
			})
		}
		after, err := db.ListAccounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before, after); diff != "" {
			t.Errorf("failed updates changed accounts (-before +after):\n%s", diff)
		}
		if n, err := db.ChangeCounter(ctx); err != nil || n != counter {
			t.Errorf("ChangeCounter = %d, %v; want %d (unchanged)", n, err, counter)
		}
	})
}

func TestDB_MergeAccounts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		a := apiKeyAccount("a")
		a.Limits = []llmgw.Limit{mustLimit(t, "requests=60/1m")}
		if err := db.InsertAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}

		// build sees the stored accounts and decides what to write.
		var seen []string
		created, updated, err := db.MergeAccounts(ctx, func(stored []llmgw.Account) ([]llmgw.Account, error) {
			for _, s := range stored {
				seen = append(seen, s.Name+" "+llmgw.FormatLimits(s.Limits))
			}
			up := stored[0]
			up.Priority = 4
			return []llmgw.Account{up, apiKeyAccount("b")}, nil
		})
		if err != nil || created != 1 || updated != 1 {
			t.Fatalf("MergeAccounts = %d, %d, %v; want 1, 1, nil", created, updated, err)
		}
		if diff := cmp.Diff([]string{"a requests=60/1m"}, seen); diff != "" {
			t.Errorf("build saw (-want +got):\n%s", diff)
		}
		got, err := db.GetAccount(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if got.Priority != 4 || llmgw.FormatLimits(got.Limits) != "requests=60/1m" {
			t.Errorf("a = priority %d, limits %q; want 4, requests=60/1m", got.Priority, llmgw.FormatLimits(got.Limits))
		}

		// An error from build, or an invalid account, writes nothing.
		before, err := db.ListAccounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		errStop := errors.New("stop")
		if _, _, err := db.MergeAccounts(ctx, func([]llmgw.Account) ([]llmgw.Account, error) {
			return nil, errStop
		}); !errors.Is(err, errStop) {
			t.Errorf("MergeAccounts error = %v, want the build error", err)
		}
		bad := apiKeyAccount("c")
		bad.Weight = 0
		if _, _, err := db.MergeAccounts(ctx, func([]llmgw.Account) ([]llmgw.Account, error) {
			return []llmgw.Account{apiKeyAccount("d"), bad}, nil
		}); !errors.Is(err, llmgw.ErrInvalid) {
			t.Errorf("MergeAccounts error = %v, want ErrInvalid", err)
		}
		after, err := db.ListAccounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before, after); diff != "" {
			t.Errorf("failed merges changed accounts (-before +after):\n%s", diff)
		}
	})
}

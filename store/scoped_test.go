package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/store/storetest"
)

func TestUsageWriter_ScopedWindowsRoundTrip(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		a := oauthAccount("a")
		if err := db.InsertAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}
		w := newWriter(t, db, noAutoFlush)
		at := time.UnixMilli(time.Now().Add(time.Minute).UnixMilli()) // newer than the account's own state
		ws := llmgw.Windows{
			Status:   "rejected",
			Claim:    "seven_day_oi",
			FiveHour: llmgw.Window{Status: "allowed", Utilization: 0.2, ResetsAt: at.Add(time.Hour)},
			SevenDay: llmgw.Window{Status: "allowed", Utilization: 0.5, ResetsAt: at.Add(72 * time.Hour)},
			Scoped: []llmgw.ScopedWindow{
				{Name: "7d-sonnet", Family: "sonnet", Window: llmgw.Window{Status: "allowed_warning", Utilization: 0.8, ResetsAt: at.Add(50 * time.Hour)}},
				{Name: "7d_oi", Family: "fable", Window: llmgw.Window{Status: "rejected", Utilization: 1, ResetsAt: at.Add(51 * time.Hour)}},
			},
			At: at,
		}
		st := llmgw.AccountState{
			Status:    llmgw.StatusActive,
			LastError: "429 rate_limit_error: weekly limit",
			FamilyCooldowns: []llmgw.FamilyCooldown{
				{Family: "fable", Until: at.Add(51 * time.Hour)},
				{Family: "sonnet", Until: at.Add(time.Hour)},
			},
			At: at,
		}
		before := counter(t, db) // the state may be written at once
		w.RecordWindows(a.ID, ws)
		w.RecordState(a.ID, st)
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := db.GetAccount(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ws, got.Windows); diff != "" {
			t.Errorf("stored windows (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(st, got.State); diff != "" {
			t.Errorf("stored state (-want +got):\n%s", diff)
		}
		if after := counter(t, db); after != before+1 {
			t.Errorf("change counter %d -> %d, want one bump (the state; windows never bump it)", before, after)
		}
		snap, err := db.LoadSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ws.Scoped, snap.Accounts[0].Windows.Scoped); diff != "" {
			t.Errorf("snapshot scoped windows (-want +got):\n%s", diff)
		}

		// Newer windows replace the scoped set as a whole; older ones are not
		// written.
		newer := ws
		newer.At, newer.Claim = at.Add(time.Minute), "five_hour"
		newer.Scoped = ws.Scoped[1:]
		w.RecordWindows(a.ID, newer)
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		w.RecordWindows(a.ID, ws)
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		list, err := db.ListAccounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(newer, list[0].Windows); diff != "" {
			t.Errorf("windows after a newer and an older write (-want +got):\n%s", diff)
		}

		// The operator's enable clears family cooldowns with the cooldown.
		if err := db.SetAccountStatus(ctx, "a", llmgw.StatusActive, ""); err != nil {
			t.Fatal(err)
		}
		if got, err = db.GetAccount(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if len(got.State.FamilyCooldowns) != 0 {
			t.Errorf("family cooldowns after enable = %+v, want none", got.State.FamilyCooldowns)
		}

		if err := db.DeleteAccount(ctx, "a"); err != nil {
			t.Fatal(err)
		}
	})
}

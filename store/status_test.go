package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw/store"
	"github.com/llmgw/llmgw/store/storetest"
)

func TestDB_ServerStatus_RoundTrip(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		db := s.Open(t)
		ctx := context.Background()
		start := time.UnixMilli(1_750_000_000_000)
		before, err := db.ChangeCounter(ctx)
		if err != nil {
			t.Fatal(err)
		}

		a := store.ServerStatus{ID: "a", StartedAt: start, UpdatedAt: start.Add(time.Second), Doc: []byte(`{"n":1}`)}
		old := store.ServerStatus{ID: "old", StartedAt: start.Add(-time.Hour), UpdatedAt: start.Add(-time.Hour), Doc: []byte(`{}`)}
		for _, s := range []store.ServerStatus{a, old} {
			if err := db.UpsertServerStatus(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		// A refresh replaces the row.
		a.UpdatedAt, a.Doc = start.Add(2*time.Second), []byte(`{"n":2}`)
		if err := db.UpsertServerStatus(ctx, a); err != nil {
			t.Fatal(err)
		}
		got, err := db.ListServerStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]store.ServerStatus{a, old}, got); diff != "" {
			t.Errorf("ListServerStatus (-want +got):\n%s", diff)
		}
		if after, err := db.ChangeCounter(ctx); err != nil || after != before {
			t.Errorf("change counter %d → %d (%v), want unchanged: a server must not reload for its own status", before, after, err)
		}

		// Deleting a's row also drops rows older than before.
		if err := db.DeleteServerStatus(ctx, "a", start.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got, err = db.ListServerStatus(ctx); err != nil || len(got) != 0 {
			t.Errorf("after delete: %+v, %v; want none", got, err)
		}
		if err := db.DeleteServerStatus(ctx, "a", time.Time{}); err != nil {
			t.Errorf("deleting a missing row: %v", err)
		}
	})
}

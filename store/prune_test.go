package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/store"
	"github.com/llmgw/llmgw/store/storetest"
)

func TestDB_PruneUsage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		db := s.Open(t)
		ctx := context.Background()
		w := store.NewUsageWriter(db, store.UsageWriterOptions{})
		now := time.Now()
		for i := range 12000 {
			w.Record(llmgw.Usage{Time: now.Add(-time.Duration(i) * time.Minute), RequestID: fmt.Sprint("r", i), Model: "m", Status: 200})
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		before := now.Add(-100 * time.Hour) // rows 6000..11999 are older
		n, err := db.PruneUsage(ctx, before, true)
		if err != nil || n != 5999 {
			t.Fatalf("dry run = %d, %v; want 5999", n, err)
		}
		if n, err = db.PruneUsage(ctx, before, false); err != nil || n != 5999 {
			t.Fatalf("prune = %d, %v; want 5999", n, err)
		}
		rows, err := db.ListUsage(ctx, now.Add(-1000*time.Hour), now.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 6001 {
			t.Errorf("%d rows left, want 6001", len(rows))
		}
		for _, r := range rows {
			if r.Time.Before(before.Truncate(time.Millisecond)) {
				t.Fatalf("row at %v survived a prune before %v", r.Time, before)
			}
		}
	})
}

func TestDB_GetRequest(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		db := s.Open(t)
		ctx := context.Background()
		w := store.NewUsageWriter(db, store.UsageWriterOptions{})
		want := llmgw.Usage{
			Time: time.Now().Truncate(time.Millisecond), RequestID: "llmgw_x", KeyName: "alice", Model: "m",
			Status: 429, ErrorType: "rate_limit_error", ErrorMessage: "slow down",
			Attempts: []llmgw.Attempt{
				{AccountID: 1, AccountName: "a", Status: 529, ErrorType: "overloaded_error", TTFB: 3 * time.Millisecond},
				{AccountID: 2, AccountName: "b", Status: 429, ErrorType: "rate_limit_error", TTFB: 4 * time.Millisecond},
			},
		}
		w.Record(want)
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := db.GetRequest(ctx, "llmgw_x")
		if err != nil {
			t.Fatal(err)
		}
		if got.ErrorMessage != "slow down" || got.AttemptCount != 2 || len(got.Attempts) != 2 ||
			got.Attempts[0] != want.Attempts[0] || got.Attempts[1] != want.Attempts[1] {
			t.Errorf("GetRequest = %+v", got)
		}
		if _, err := db.GetRequest(ctx, "nope"); !errors.Is(err, llmgw.ErrNotFound) {
			t.Errorf("unknown id: err = %v, want ErrNotFound", err)
		}
	})
}

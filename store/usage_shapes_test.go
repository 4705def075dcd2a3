package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/store"
	"github.com/llmgw/llmgw/store/storetest"
)

// Speed, inference_geo and iterations survive the request log: in
// ListUsage and GetRequest rows (reports and explain) and in UseSince rows
// (the sums of use against limits), which price them.
func TestUsageWriter_RoundTripUsageShapes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		w := store.NewUsageWriter(db, store.UsageWriterOptions{})
		iters := []llmgw.Iteration{
			{Type: "compaction", Tokens: llmgw.Tokens{Input: 1000, Output: 100}},
			{Type: "message", Tokens: llmgw.Tokens{Input: 10, Output: 30, CacheWrite: 500}},
			{Type: "advisor_message", Model: "claude-opus-4-8", Tokens: llmgw.Tokens{Input: 300, Output: 40, CacheRead: 7, CacheWrite: 60, CacheWrite5m: 20, CacheWrite1h: 40}},
		}
		u := llmgw.Usage{
			Time: time.UnixMilli(1_750_000_000_123), RequestID: "req_shapes", KeyID: 7, KeyName: "alice",
			Model: "claude-sonnet-4-6", Dialect: llmgw.DialectAnthropic, Status: 200,
			Tokens:     llmgw.Tokens{Input: 10, Output: 30, CacheWrite: 500},
			Iterations: iters, Speed: llmgw.SpeedFast, InferenceGeo: "us",
		}
		plain := u
		plain.RequestID, plain.Iterations, plain.Speed, plain.InferenceGeo = "req_plain", nil, "", ""
		plain.Time = u.Time.Add(time.Millisecond)
		w.Record(u)
		w.Record(plain)
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}

		got, err := db.GetRequest(ctx, "req_shapes")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&store.UsageRow{Usage: u}, got); diff != "" {
			t.Errorf("GetRequest (-want +got):\n%s", diff)
		}
		rows, err := db.ListUsage(ctx, u.Time, u.Time.Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]store.UsageRow{{Usage: u}, {Usage: plain}}, rows); diff != "" {
			t.Errorf("ListUsage (-want +got):\n%s", diff)
		}
		use, err := db.UseSince(ctx, false, 7, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		wantUse := []store.UseRow{
			{ID: 1, RequestID: "req_shapes", KeyID: 7, Time: u.Time, Model: u.Model, Tokens: u.Tokens, Iterations: iters, Speed: llmgw.SpeedFast},
			{ID: 2, RequestID: "req_plain", KeyID: 7, Time: plain.Time, Model: u.Model, Tokens: u.Tokens},
		}
		if diff := cmp.Diff(wantUse, use); diff != "" {
			t.Errorf("UseSince (-want +got):\n%s", diff)
		}
		// UseAfter returns the rows written after a row id, in id order.
		after, last, err := db.UseAfter(ctx, 1, "", []int64{7}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(wantUse[1:], after); diff != "" || last != 2 {
			t.Errorf("UseAfter (-want +got), last %d:\n%s", last, diff)
		}
	})
}

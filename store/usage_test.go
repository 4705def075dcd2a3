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

func TestDB_ListUsageMatching(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		w := store.NewUsageWriter(db, store.UsageWriterOptions{})
		base := time.UnixMilli(1_750_000_000_000)
		// Rows r0..r5, one millisecond apart. The account names belong to no
		// account in the database: the filter reads the log's own columns.
		for i, kv := range [][2]string{
			{"alice", "a1"},
			{"bob", "a1"},
			{"alice", "a2"},
			{"alice", ""}, // reached no account
			{"", "a2"},    // no client key (a static key, say)
			{"Alice", "A1"},
		} {
			w.Record(llmgw.Usage{Time: base.Add(time.Duration(i) * time.Millisecond), RequestID: "r" + string(rune('0'+i)),
				KeyName: kv[0], AccountName: kv[1], Model: "m", Status: 200})
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		all := store.UsageFilter{Since: base, Until: base.Add(time.Second)}
		tests := []struct {
			name     string
			keys     []string
			accounts []string
			until    time.Time
			want     []string
		}{
			{name: "no filter", want: []string{"r0", "r1", "r2", "r3", "r4", "r5"}},
			{name: "one key", keys: []string{"alice"}, want: []string{"r0", "r2", "r3"}},
			{name: "two keys", keys: []string{"bob", "Alice"}, want: []string{"r1", "r5"}},
			{name: "one account", accounts: []string{"a2"}, want: []string{"r2", "r4"}},
			{name: "two accounts", accounts: []string{"a1", "a2"}, want: []string{"r0", "r1", "r2", "r4"}},
			{name: "key and account", keys: []string{"alice"}, accounts: []string{"a1"}, want: []string{"r0"}},
			{name: "no such key", keys: []string{"carol"}, want: nil},
			{name: "filter and time range", keys: []string{"alice"}, until: base.Add(2 * time.Millisecond), want: []string{"r0"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				f := all
				f.KeyNames, f.AccountNames = tt.keys, tt.accounts
				if !tt.until.IsZero() {
					f.Until = tt.until
				}
				rows, err := db.ListUsageMatching(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, r := range rows {
					got = append(got, r.RequestID)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("request ids (-want +got):\n%s", diff)
				}
			})
		}
	})
}

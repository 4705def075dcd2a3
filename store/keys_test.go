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

func TestDB_Keys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Open(t)
	clk := newClock()
	db.Now = clk.Now

	k := llmgw.ClientKey{Name: "alice", Prefix: "sk-llmgw-abcd", Hash: llmgw.HashKey("secret")}
	if err := db.InsertKey(ctx, &k); err != nil {
		t.Fatal(err)
	}
	if k.ID == 0 || !k.CreatedAt.Equal(clk.Now()) {
		t.Errorf("InsertKey set ID %d, CreatedAt %v; want non-zero, %v", k.ID, k.CreatedAt, clk.Now())
	}
	dup := llmgw.ClientKey{Name: "alice", Prefix: "sk-llmgw-efgh", Hash: llmgw.HashKey("other")}
	if err := db.InsertKey(ctx, &dup); !errors.Is(err, llmgw.ErrConflict) {
		t.Errorf("InsertKey with a taken name = %v, want ErrConflict", err)
	}
	if err := db.InsertKey(ctx, &llmgw.ClientKey{Name: "nohash"}); !errors.Is(err, llmgw.ErrInvalid) {
		t.Errorf("InsertKey without a hash = %v, want ErrInvalid", err)
	}

	revokedAt := clk.Advance(time.Minute)
	if err := db.RevokeKey(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if err := db.RevokeKey(ctx, "alice"); err != nil {
		t.Errorf("second RevokeKey = %v, want nil", err)
	}
	if err := db.RevokeKey(ctx, "bob"); !errors.Is(err, llmgw.ErrNotFound) {
		t.Errorf("RevokeKey of a missing key = %v, want ErrNotFound", err)
	}
	k.RevokedAt = revokedAt
	got, err := db.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]llmgw.ClientKey{k}, got); diff != "" {
		t.Errorf("ListKeys (-want +got):\n%s", diff)
	}
}

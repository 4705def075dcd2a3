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
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
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
	})
}

// A key's policy is stored and read back whole; UpdateKey changes a live
// key in place (rotation keeps the id, so the history stays one); a
// revoked name can be created again, and revoking then hits the live key.
func TestDB_KeyPolicyAndLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		limits, err := llmgw.ParseLimits("usd=20/day,tokens=2M/5h,requests=60/1m")
		if err != nil {
			t.Fatal(err)
		}
		k := llmgw.ClientKey{Name: "alice", Prefix: "sk-llmgw-aaaa", Hash: llmgw.HashKey("one"),
			Models: []string{"claude-sonnet-*", "claude-haiku-*"}, MaxConcurrency: 4, Limits: limits,
			ExpiresAt: time.UnixMilli(1_900_000_000_000)}
		if err := db.InsertKey(ctx, &k); err != nil {
			t.Fatal(err)
		}
		keys, err := db.ListKeys(ctx)
		if err != nil || len(keys) != 1 {
			t.Fatalf("ListKeys = %v, %v", keys, err)
		}
		if diff := cmp.Diff(k, keys[0]); diff != "" {
			t.Errorf("stored key differs (-put +got):\n%s", diff)
		}
		if err := db.InsertKey(ctx, &llmgw.ClientKey{Name: "bad", Hash: "h", Models: []string{"a,b"}}); !errors.Is(err, llmgw.ErrInvalid) {
			t.Errorf("a pattern with a comma: %v, want ErrInvalid", err)
		}

		rotated, err := db.UpdateKey(ctx, "alice", func(k *llmgw.ClientKey) error {
			k.Hash, k.Prefix, k.RotatedAt = llmgw.HashKey("two"), "sk-llmgw-bbbb", time.UnixMilli(1_800_000_000_000)
			k.Limits = k.Limits[:1]
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		keys, _ = db.ListKeys(ctx)
		if len(keys) != 1 || keys[0].ID != k.ID || keys[0].Hash != llmgw.HashKey("two") || len(keys[0].Limits) != 1 || keys[0].Models[0] != "claude-sonnet-*" {
			t.Errorf("after rotation: %+v (returned %+v)", keys, rotated)
		}
		if _, err := db.UpdateKey(ctx, "nobody", func(*llmgw.ClientKey) error { return nil }); !errors.Is(err, llmgw.ErrNotFound) {
			t.Errorf("UpdateKey of a missing key: %v, want ErrNotFound", err)
		}
		if _, err := db.UpdateKey(ctx, "alice", func(k *llmgw.ClientKey) error { k.MaxConcurrency = -1; return nil }); !errors.Is(err, llmgw.ErrInvalid) {
			t.Errorf("UpdateKey to an invalid policy: %v, want ErrInvalid", err)
		}

		if err := db.RevokeKey(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		again := llmgw.ClientKey{Name: "alice", Prefix: "sk-llmgw-cccc", Hash: llmgw.HashKey("three")}
		if err := db.InsertKey(ctx, &again); err != nil {
			t.Fatalf("creating a revoked name again: %v", err)
		}
		if again.ID == k.ID {
			t.Error("the new alice took the old one's id")
		}
		dup := llmgw.ClientKey{Name: "alice", Prefix: "sk-llmgw-dddd", Hash: llmgw.HashKey("four")}
		if err := db.InsertKey(ctx, &dup); !errors.Is(err, llmgw.ErrConflict) {
			t.Errorf("a second live alice: %v, want ErrConflict", err)
		}
		if err := db.RevokeKey(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		keys, _ = db.ListKeys(ctx)
		for _, k := range keys {
			if k.RevokedAt.IsZero() {
				t.Errorf("key %d (%s) still live after revoking its name", k.ID, k.Name)
			}
		}
		if err := db.RevokeKey(ctx, "alice"); err != nil {
			t.Errorf("revoking a revoked name again: %v", err)
		}
		if err := db.RevokeKey(ctx, "nobody"); !errors.Is(err, llmgw.ErrNotFound) {
			t.Errorf("revoking an unknown name: %v, want ErrNotFound", err)
		}
	})
}

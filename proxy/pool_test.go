package proxy

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmgw/llmgw"
)

func testPool(seed uint64) *pool {
	p := newPool(time.Now)
	r := rand.New(rand.NewPCG(seed, seed))
	var mu sync.Mutex
	p.rand = func() float64 { mu.Lock(); defer mu.Unlock(); return r.Float64() }
	return p
}

func accts(weights ...int) []llmgw.Account {
	out := make([]llmgw.Account, len(weights))
	for i, w := range weights {
		out[i] = llmgw.Account{ID: int64(i + 1), Name: string(rune('a' + i)), Type: llmgw.AccountAPIKey, Weight: w,
			State: llmgw.AccountState{Status: llmgw.StatusActive}}
	}
	return out
}

// pickN picks n times in sequence, releasing each slot at once, and counts
// picks per account ID.
func pickN(t *testing.T, p *pool, as []llmgw.Account, n int) map[int64]int {
	t.Helper()
	got := map[int64]int{}
	for range n {
		c, err := p.pick(context.Background(), as, "claude-x", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		got[c.a.ID]++
		p.release(c.h)
	}
	return got
}

func TestPool_PrefersLowerLatency(t *testing.T) {
	p := testPool(1)
	as := accts(1, 1)
	p.observe(p.health(1), 10*time.Millisecond, false, false)
	p.observe(p.health(2), 100*time.Millisecond, false, false)
	got := pickN(t, p, as, 1000)
	if got[1] < 800 {
		t.Errorf("fast account got %d of 1000 picks, want at least 800", got[1])
	}
	if got[2] == 0 {
		t.Errorf("slow account got no picks: the choice must stay randomised")
	}
}

func TestPool_WeightsAtEqualLatency(t *testing.T) {
	p := testPool(2)
	as := accts(3, 1)
	p.observe(p.health(1), 50*time.Millisecond, false, false)
	p.observe(p.health(2), 50*time.Millisecond, false, false)
	got := pickN(t, p, as, 1000)
	if share := float64(got[1]) / 1000; share < 0.70 || share > 0.80 {
		t.Errorf("heavier account got %.0f%% of picks, want 70-80%%", share*100)
	}
}

func TestPool_BurstSpreads(t *testing.T) {
	p := testPool(3)
	as := accts(1, 1)
	var mu sync.Mutex
	got := map[int64]int{}
	var held []choice
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := p.pick(context.Background(), as, "m", nil, nil)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			got[c.a.ID]++
			held = append(held, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for id, n := range got {
		if n > 65 {
			t.Errorf("account %d got %d of 100 simultaneous picks, want at most 65", id, n)
		}
	}
	for _, c := range held {
		p.release(c.h)
	}
}

func TestPool_NoHistoryCreationOrder(t *testing.T) {
	p := testPool(4)
	as := accts(1, 1, 1)
	c, err := p.pick(context.Background(), as, "m", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.a.ID != 1 {
		t.Errorf("first pick with no history = account %d, want 1 (oldest)", c.a.ID)
	}
}

func TestPool_ErrorsAvoided(t *testing.T) {
	p := testPool(5)
	as := accts(1, 1)
	for range 3 {
		p.observe(p.health(1), 0, true, false)
	}
	p.observe(p.health(2), 20*time.Millisecond, false, false)
	got := pickN(t, p, as, 1000)
	if got[2] < 800 {
		t.Errorf("healthy account got %d of 1000, want at least 800", got[2])
	}
}

func TestPool_PriorityAndExclusions(t *testing.T) {
	p := testPool(6)
	as := accts(1, 1, 1, 1)
	as[0].Priority = 1
	as[1].Priority = 0
	as[1].State.Status = llmgw.StatusDisabled
	as[2].Priority = 0
	as[2].Models = []string{"claude-haiku-*"}
	as[3].Priority = 0
	for range 20 {
		c, err := p.pick(context.Background(), as, "claude-opus-4", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.a.ID != 4 {
			t.Fatalf("picked %d, want 4 (only eligible account of the best priority)", c.a.ID)
		}
		p.release(c.h)
	}
}

func TestPool_AllCoolingTriesEarliest(t *testing.T) {
	p := testPool(7)
	as := accts(1, 1)
	now := time.Now()
	as[0].State.CooldownUntil = now.Add(time.Minute)
	as[1].State.CooldownUntil = now.Add(10 * time.Second)
	c, err := p.pick(context.Background(), as, "m", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.a.ID != 2 {
		t.Errorf("picked %d, want 2 (its cooldown ends first)", c.a.ID)
	}
}

func TestPool_NoAccountExplains(t *testing.T) {
	p := testPool(8)
	as := accts(1, 1, 1)
	as[0].State.Status = llmgw.StatusDisabled
	as[1].State = llmgw.AccountState{Status: llmgw.StatusError, Reason: "invalid x-api-key"}
	as[2].State.CooldownUntil = time.Now().Add(time.Minute)
	_, err := p.pick(context.Background(), as, "m", nil, map[int64]bool{3: true})
	var na *errNoAccount
	if !errors.As(err, &na) || !errors.Is(err, llmgw.ErrNoAccount) {
		t.Fatalf("err = %v, want errNoAccount", err)
	}
	msg := err.Error()
	for _, want := range []string{"disabled (a)", "in error: invalid x-api-key (b)", "cooling down until"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if na.retryAfter != 0 {
		t.Errorf("retryAfter = %v, want 0: not every account is only cooling", na.retryAfter)
	}
}

func TestPool_WaitsForSlot(t *testing.T) {
	p := testPool(9)
	as := accts(1)
	as[0].MaxConcurrency = 1
	first, err := p.pick(context.Background(), as, "m", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan choice)
	go func() {
		c, err := p.pick(context.Background(), as, "m", nil, nil)
		if err != nil {
			t.Error(err)
		}
		done <- c
	}()
	select {
	case <-done:
		t.Fatal("second pick got a slot while the only one was taken")
	case <-time.After(50 * time.Millisecond):
	}
	p.release(first.h)
	select {
	case c := <-done:
		p.release(c.h)
	case <-time.After(5 * time.Second):
		t.Fatal("second pick did not get the freed slot")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	held, _ := p.pick(context.Background(), as, "m", nil, nil)
	if _, err := p.pick(ctx, as, "m", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want deadline exceeded while the slot is held", err)
	}
	p.release(held.h)
}

func TestPool_AllCoolingAndTriedGivesRetryAfter(t *testing.T) {
	p := testPool(10)
	as := accts(1, 1)
	now := time.Now()
	as[0].State.CooldownUntil = now.Add(40 * time.Second)
	as[1].State.CooldownUntil = now.Add(20 * time.Second)
	_, err := p.pick(context.Background(), as, "m", nil, map[int64]bool{1: true, 2: true})
	var na *errNoAccount
	if !errors.As(err, &na) {
		t.Fatalf("err = %v, want errNoAccount", err)
	}
	if na.retryAfter < 15*time.Second || na.retryAfter > 20*time.Second {
		t.Errorf("retryAfter = %v, want about 20s (the earliest cooldown end)", na.retryAfter)
	}
}

func TestPool_PrefersRoomInBindingWindow(t *testing.T) {
	p := testPool(11)
	as := accts(1, 1)
	reset := time.Now().Add(time.Hour)
	as[0].Windows = llmgw.Windows{Status: "allowed", At: time.Now(), FiveHour: llmgw.Window{Status: "allowed", Utilization: 0.9, ResetsAt: reset}}
	as[1].Windows = llmgw.Windows{Status: "allowed", At: time.Now(), FiveHour: llmgw.Window{Status: "allowed", Utilization: 0.2, ResetsAt: reset}}
	// Fresh: the emptier account comes first, though it is the newer one.
	if got := pickN(t, p, as, 1); got[2] != 1 {
		t.Errorf("with no history the pick went to %v, want b, the emptier subscription", got)
	}
	// With history: equal latency, so room decides the shares (0.1 : 0.8).
	p.observe(p.health(1), 50*time.Millisecond, false, false)
	p.observe(p.health(2), 50*time.Millisecond, false, false)
	got := pickN(t, p, as, 1000)
	if got[2] < 800 {
		t.Errorf("emptier account got %d of 1000 picks, want at least 800", got[2])
	}
	if got[1] == 0 {
		t.Errorf("fuller account got no picks: the choice must stay randomised")
	}
}

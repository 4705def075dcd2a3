package proxy

import (
	"testing"
	"time"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// quiet is how long a test watches for something that must not happen.
const quiet = 150 * time.Millisecond

// An account's cap counts the slots other servers hold: with one of two
// held elsewhere, one request goes upstream and the next waits until the
// other server's slot is published free. Live reports this server's own
// slots only, so that servers do not count each other's twice.
func TestElsewhere_AccountCapCountsOtherServers(t *testing.T) {
	release := make(chan struct{})
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Hold(release)))
	a := account(1, "a", "sk-ant-a", up.URL)
	a.MaxConcurrency = 2
	g := newGateway(t, Config{}, a)
	g.SetElsewhere(Elsewhere{Accounts: map[int64]int{1: 1}})
	c := g.client()
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := c.Messages.New(ctx(t), userMsg("hi"))
			errs <- err
		}()
	}
	if err := up.AwaitHeld(ctx(t), 1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(quiet)
	if n := up.InFlight(); n != 1 {
		t.Fatalf("upstream has %d requests in flight, want 1: another server holds 1 of the cap of 2", n)
	}
	g.SetElsewhere(Elsewhere{})
	if err := up.AwaitHeld(ctx(t), 2); err != nil {
		t.Fatal(err)
	}
	if l := g.Live(); l.Accounts[0].InFlight != 2 {
		t.Errorf("Live in flight = %d, want this server's 2", l.Accounts[0].InFlight)
	}
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("request failed instead of waiting for a slot: %v", err)
		}
	}
}

// A client key's cap counts the slots other servers hold, and Live
// publishes the key's own slots for them.
func TestElsewhere_KeyCapCountsOtherServers(t *testing.T) {
	release := make(chan struct{})
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Hold(release)))
	g := newGateway(t, Config{}, account(1, "a", "sk-ant-a", up.URL))
	snap := *g.Snapshot()
	snap.Version++
	snap.Keys = []llmgw.ClientKey{snap.Keys[0]}
	snap.Keys[0].MaxConcurrency = 2
	g.SetSnapshot(&snap)
	g.SetElsewhere(Elsewhere{Keys: map[int64]int{7: 2}})

	errs := make(chan error, 1)
	go func() {
		_, err := g.client().Messages.New(ctx(t), userMsg("hi"))
		errs <- err
	}()
	time.Sleep(quiet)
	if n := up.Count(); n != 0 {
		t.Fatalf("upstream got %d requests while other servers hold both of the key's slots", n)
	}
	if l := g.Live(); len(l.KeySlots) != 0 {
		t.Errorf("Live key slots = %v while the request waits, want none", l.KeySlots)
	}
	g.SetElsewhere(Elsewhere{Keys: map[int64]int{7: 1}})
	if err := up.AwaitHeld(ctx(t), 1); err != nil {
		t.Fatal(err)
	}
	if l := g.Live(); l.KeySlots[7] != 1 {
		t.Errorf("Live key slots = %v, want key 7 holding 1", l.KeySlots)
	}
	close(release)
	if err := <-errs; err != nil {
		t.Errorf("request: %v", err)
	}
	if l := g.Live(); len(l.KeySlots) != 0 {
		t.Errorf("Live key slots = %v after the request, want none", l.KeySlots)
	}
}

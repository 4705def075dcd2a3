package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// Concurrency caps across replicas: each server publishes the slots it
// holds every second and counts those the others published against every
// account's and key's cap. These tests hold requests at the fake upstream
// through one replica and check that the other one, once it has read what
// the first published, waits instead of going past the cap.

// accountLive is account name's in-flight and waiting counts as `llmgw
// status --json` shows them, summed over the running servers.
func (s *replicaSetup) accountLive(t *testing.T, name string) (inFlight, waiting int) {
	t.Helper()
	var st struct {
		Accounts []struct {
			Name     string `json:"name"`
			InFlight *int   `json:"in_flight"`
			Waiting  *int   `json:"waiting"`
		} `json:"accounts"`
	}
	out := s.run(t, "status", "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	for _, a := range st.Accounts {
		if a.Name == name && a.InFlight != nil && a.Waiting != nil {
			return *a.InFlight, *a.Waiting
		}
	}
	return 0, 0
}

// awaitLive polls status until ok holds for account name, for up to 5 s.
func (s *replicaSetup) awaitLive(t *testing.T, name, what string, ok func(inFlight, waiting int) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f, w := s.accountLive(t, name)
		if ok(f, w) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed %s: account %s has %d in flight, %d waiting", what, name, f, w)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// publishLag is how long, once one server's row shows its slots, until
// every other server has read it: their next look, at most one publish
// interval later, and some slack for a loaded machine.
const publishLag = publishInterval + 500*time.Millisecond

// TestReplicas_AccountCapAcrossReplicas: an account with max concurrency 2
// has both slots taken through replica 0; a request through replica 1 waits
// (status shows it waiting, the upstream never sees a third) until those
// two end, then succeeds.
func TestReplicas_AccountCapAcrossReplicas(t *testing.T) {
	release := make(chan struct{})
	s := newReplicaSetup(t, upstreamtest.OK(upstreamtest.Hold(release)))
	s.run(t, "account", "add", "--name", "a", "--api-key", "sk-ant-aaaaaaaaaaaaaaaa", "--base-url", s.up.URL, "--max-concurrency", "2")
	key := s.createKey(t, "alice")
	srv := s.replicas(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errs := make(chan error, 3)
	send := func(r *server) {
		_, err := sdk(r.URL, key).Messages.New(ctx, hello())
		errs <- err
	}

	go send(srv[0])
	go send(srv[0])
	if err := s.up.AwaitHeld(ctx, 2); err != nil {
		t.Fatal(err)
	}
	s.awaitLive(t, "a", "replica 0's two slots", func(f, _ int) bool { return f == 2 })
	time.Sleep(publishLag) // the lag under test: replica 1 reads what replica 0 published

	go send(srv[1])
	s.awaitLive(t, "a", "the request through replica 1 waiting", func(f, w int) bool { return f == 2 && w == 1 })
	if n := s.up.Count(); n != 2 {
		t.Fatalf("upstream got %d requests on an account whose cap of 2 replica 0 holds", n)
	}
	close(release)
	for range 3 {
		if err := <-errs; err != nil {
			t.Errorf("request: %v", err)
		}
	}
	if n := s.up.Count(); n != 3 {
		t.Errorf("upstream got %d requests, want 3", n)
	}
}

// TestReplicas_KeyCapAcrossReplicas: a key with max concurrency 1 has its
// slot taken through replica 0; a request with it through replica 1 does
// not reach the upstream until that one ends, then succeeds.
func TestReplicas_KeyCapAcrossReplicas(t *testing.T) {
	release := make(chan struct{})
	s := newReplicaSetup(t, upstreamtest.OK(upstreamtest.Hold(release)))
	s.addAccount(t, "a", "sk-ant-aaaaaaaaaaaaaaaa", 1)
	key := strings.TrimSpace(s.run(t, "key", "create", "--name", "alice", "--max-concurrency", "1"))
	srv := s.replicas(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errs := make(chan error, 2)
	send := func(r *server) {
		_, err := sdk(r.URL, key).Messages.New(ctx, hello())
		errs <- err
	}

	go send(srv[0])
	if err := s.up.AwaitHeld(ctx, 1); err != nil {
		t.Fatal(err)
	}
	s.awaitLive(t, "a", "replica 0's request", func(f, _ int) bool { return f == 1 })
	time.Sleep(publishLag) // the lag under test: replica 1 reads what replica 0 published

	go send(srv[1])
	time.Sleep(time.Second) // a request that got past the key's cap reaches the upstream well within this
	if n := s.up.Count(); n != 1 {
		t.Fatalf("upstream got %d requests for a key whose one slot replica 0 holds", n)
	}
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("request: %v", err)
		}
	}
	if n := s.up.Count(); n != 2 {
		t.Errorf("upstream got %d requests, want 2", n)
	}
}

package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/policy"
)

// This file is the team policy on the request path: the one place a
// decoded request meets its client key's model allowlist, limits and
// concurrency cap (admit), and where a finished request's use is counted
// against its key and account (settle). Everything is decided from memory:
// the snapshot and the policy ledger.

// admit checks a decoded request against its client key's policy, in the
// order a refusal is cheapest to explain: the model, then the limits, then a
// concurrency slot (which may wait). The caller must call the returned
// release when the request is over, whatever happened.
func (s *Server) admit(ctx context.Context, e *entry, x *Exchange, bodyLen int) (release func(), err error) {
	k := e.key
	if k == nil || k.ID == 0 {
		return noop, nil // a static key from the config file has no policy
	}
	if len(k.Models) > 0 && !s.keyAllows(k, x.Model) {
		return noop, clientErr(http.StatusForbidden, "permission_error",
			fmt.Sprintf("key %s may not use model %s; it may use %s", k.Name, x.Model, strings.Join(k.Models, ", ")))
	}
	if len(k.Limits) > 0 {
		maxTokens := x.MaxTokens
		if x.Request != nil {
			maxTokens = x.Request.MaxTokens
		}
		if maxTokens <= 0 {
			maxTokens = s.cfg.Catalog.DefaultMaxTokens(x.Model)
		}
		res, ref := s.ledger.Reserve(keySubject(k), policy.Estimate(s.cfg.Catalog, x.Model, bodyLen, maxTokens))
		if ref != nil {
			return noop, &errLimited{msg: ref.Message, retryAfter: ref.RetryAfter}
		}
		e.reserved = res
	}
	if k.MaxConcurrency > 0 {
		return s.keySlots.acquire(ctx, k, s.cfg.Timeout, s.cfg.MaxWaiting)
	}
	return noop, nil
}

// keyAllows reports whether k's model allowlist admits model, by the name
// the client sent or, for a model the catalog knows, by its id or dated id:
// a key limited to claude-sonnet-* may use the sonnet aliases too.
func (s *Server) keyAllows(k *llmgw.ClientKey, model string) bool {
	if k.Allows(model) {
		return true
	}
	m, ok := s.cfg.Catalog.Lookup(model)
	return ok && (k.Allows(m.ID) || m.DatedID != "" && k.Allows(m.DatedID))
}

func keySubject(k *llmgw.ClientKey) policy.Subject { return policy.Subject{ID: k.ID} }

func accountSubject(id int64) policy.Subject { return policy.Subject{Account: true, ID: id} }

// settle counts a finished request against its key and its account, in
// place of what it reserved. Every request of a stored key settles, so a
// limit set while it ran still sees it.
func (s *Server) settle(e *entry, u *llmgw.Usage) {
	if u.KeyID == 0 && u.AccountID == 0 {
		return
	}
	used := policy.ChargeOf(s.cfg.Catalog, policy.UsedBy(u), len(u.Attempts))
	if u.KeyID != 0 {
		cs := s.ledger.Settle(policy.Subject{ID: u.KeyID}, e.reserved, u.RequestID, u.Time, used)
		if len(cs) > 0 && e.key != nil && e.key.ID == u.KeyID {
			s.limitsPassed(e.key.Name, cs)
		}
	}
	if u.AccountID != 0 {
		s.ledger.Settle(accountSubject(u.AccountID), policy.Charge{}, u.RequestID, u.Time, used)
	}
}

// accountSpent says why an account's own limit keeps it from serving, or
// "" if it may serve.
func (s *Server) accountSpent(a *llmgw.Account) string {
	if len(a.Limits) == 0 {
		return ""
	}
	if why := s.ledger.Spent(accountSubject(a.ID)); why != "" {
		return "own limit spent: " + why
	}
	return ""
}

// syncLimits hands the snapshot's limits to the ledger, which sums the use
// of new or changed ones from the request log.
func (s *Server) syncLimits(snap *llmgw.Snapshot) {
	var specs []policy.Spec
	for i := range snap.Keys {
		k := &snap.Keys[i]
		if len(k.Limits) > 0 && k.RevokedAt.IsZero() {
			specs = append(specs, policy.Spec{Subject: keySubject(k), Name: "key " + k.Name, Limits: k.Limits})
		}
	}
	for i := range snap.Accounts {
		a := &snap.Accounts[i]
		if len(a.Limits) > 0 {
			specs = append(specs, policy.Spec{Subject: accountSubject(a.ID), Name: "account " + a.Name, Limits: a.Limits})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var src policy.Source
	if s.cfg.UsageLog != nil {
		src = s.cfg.UsageLog
	}
	if err := s.ledger.Sync(ctx, specs, src); err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "summing use for limits failed; the limits concerned keep their previous use until the next reload",
			slog.String("err", err.Error()))
	}
}

// CatchUpLimits counts the use other servers on the same database wrote to
// the request log since the last call (see policy.Ledger.CatchUp). serve
// calls it every 250 ms while other servers run; it never runs on the
// request path.
func (s *Server) CatchUpLimits(ctx context.Context) error {
	if s.cfg.UsageLog == nil {
		return nil
	}
	return s.ledger.CatchUp(ctx, s.cfg.UsageLog, s.idPrefix)
}

// PassOwnLimitRows tells the limits that the request log rows up to id are
// all this server's own (counted when they settled), so that the next
// CatchUpLimits starts after them (see policy.Ledger.Pass). serve calls it
// while no other server runs.
func (s *Server) PassOwnLimitRows(id int64) { s.ledger.Pass(id) }

// Limits reports a subject's use against its limits as the server counts
// it now, reservations of requests in flight included; nil if it has none.
func (s *Server) Limits(account bool, id int64) []policy.Use {
	return s.ledger.Use(policy.Subject{Account: account, ID: id})
}

// errLimited refuses a request that a limit has no room for.
type errLimited struct {
	msg        string
	retryAfter time.Duration // 0: the limit never frees
}

func (e *errLimited) Error() string { return e.msg }

// keySlots bound each client key's requests in flight, counting those other
// servers on the same database hold (setElsewhere), so that a key's cap
// holds across replicas. Waiters are served in arrival order.
type keySlots struct {
	mu        sync.Mutex
	byKey     map[int64]*keySlot
	elsewhere map[int64]int // slots other servers hold, per key id
	waiting   atomic.Int64
}

type keySlot struct {
	max      int // the key's cap as its latest request saw it
	inflight int
	waiters  []chan struct{} // granted a slot by a send; buffered
}

// grantLocked hands free slots of key id to its waiters, oldest first. The
// caller holds ks.mu.
func (ks *keySlots) grantLocked(id int64, sl *keySlot) {
	for len(sl.waiters) > 0 && sl.inflight+ks.elsewhere[id] < sl.max {
		sl.inflight++
		sl.waiters[0] <- struct{}{}
		sl.waiters = slices.Delete(sl.waiters, 0, 1)
	}
}

func (ks *keySlots) release(id int64, sl *keySlot) {
	ks.mu.Lock()
	sl.inflight--
	ks.grantLocked(id, sl)
	ks.mu.Unlock()
}

// setElsewhere records the slots other servers hold, per key id, and lets
// waiters take what that frees.
func (ks *keySlots) setElsewhere(held map[int64]int) {
	ks.mu.Lock()
	ks.elsewhere = held
	for id, sl := range ks.byKey {
		ks.grantLocked(id, sl)
	}
	ks.mu.Unlock()
}

// held returns the slots taken per key, for the keys with any.
func (ks *keySlots) held() map[int64]int {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	var out map[int64]int
	for id, sl := range ks.byKey {
		if sl.inflight > 0 {
			if out == nil {
				out = make(map[int64]int)
			}
			out[id] = sl.inflight
		}
	}
	return out
}

// acquire takes one of k's slots, waiting up to timeout for one; more than
// maxWaiting requests waiting (across keys) are refused at once. A new cap
// applies at once to the requests in flight under the old one.
func (ks *keySlots) acquire(ctx context.Context, k *llmgw.ClientKey, timeout time.Duration, maxWaiting int) (func(), error) {
	ks.mu.Lock()
	if ks.byKey == nil {
		ks.byKey = map[int64]*keySlot{}
	}
	sl := ks.byKey[k.ID]
	if sl == nil {
		sl = &keySlot{}
		ks.byKey[k.ID] = sl
	}
	sl.max = k.MaxConcurrency
	ks.grantLocked(k.ID, sl) // a raised cap frees slots for those waiting
	release := sync.OnceFunc(func() { ks.release(k.ID, sl) })
	if len(sl.waiters) == 0 && sl.inflight+ks.elsewhere[k.ID] < sl.max {
		sl.inflight++
		ks.mu.Unlock()
		return release, nil
	}
	if n := ks.waiting.Add(1); maxWaiting > 0 && n > int64(maxWaiting) {
		ks.waiting.Add(-1)
		ks.mu.Unlock()
		return noop, &errQueueFull{waiting: int(n - 1)}
	}
	defer ks.waiting.Add(-1)
	got := make(chan struct{}, 1)
	sl.waiters = append(sl.waiters, got)
	ks.mu.Unlock()

	t := time.NewTimer(timeout)
	defer t.Stop()
	var err error
	select {
	case <-got:
		return release, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-t.C:
		err = &errLimited{retryAfter: time.Second, msg: fmt.Sprintf(
			"key %s: %d requests in flight, its max concurrency, and none finished within %s", k.Name, k.MaxConcurrency, timeout)}
	}
	ks.mu.Lock()
	if i := slices.Index(sl.waiters, got); i >= 0 {
		sl.waiters = slices.Delete(sl.waiters, i, i+1)
		ks.mu.Unlock()
		return noop, err
	}
	ks.mu.Unlock()
	release() // granted as the wait ended: give the slot straight back
	return noop, err
}

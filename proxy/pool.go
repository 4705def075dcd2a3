package proxy

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/llmgw/llmgw"
)

// health is what the proxy learns about one account while serving. It lives
// in memory only; the parts worth keeping (state) are also handed to the
// usage recorder, which writes them back to the database.
type health struct {
	mu       sync.Mutex
	inflight int
	// elsewhere is how many of the account's slots other servers on the
	// same database hold, as they last published it (SetElsewhere): the cap
	// counts them too, so that it holds across replicas.
	elsewhere  int
	latencyMs  float64 // moving average of time to first byte; 0 = no samples
	errs       float64 // recent errors, decaying
	errsAt     time.Time
	transients int                // consecutive 5xx/529 answers
	state      llmgw.AccountState // zero At: nothing learned
	windows    llmgw.Windows      // subscription windows last seen
}

// Tuning of the account choice.
const (
	latencyAlpha    = 0.3              // weight of a new latency sample
	errorHalfLife   = 30 * time.Second // how fast recent errors are forgiven
	errorPenalty    = 3.0              // each recent error multiplies cost by 1+3
	transientStreak = 3                // 5xx in a row before a brief cooldown
	transientCool   = 10 * time.Second
)

// full reports whether a has no free concurrency slot, counting those held
// elsewhere. The caller holds h.mu.
func (h *health) full(a *llmgw.Account) bool {
	return a.MaxConcurrency > 0 && h.inflight+h.elsewhere >= a.MaxConcurrency
}

func (h *health) decayedErrs(now time.Time) float64 {
	if h.errs == 0 {
		return 0
	}
	dt := now.Sub(h.errsAt)
	return h.errs * math.Exp2(-dt.Seconds()/errorHalfLife.Seconds())
}

// pool tracks in-flight requests and health per account and chooses accounts.
type pool struct {
	now  func() time.Time
	rand func() float64
	// maxWaiting bounds the queue of requests waiting for a slot; 0 means
	// no bound.
	maxWaiting int
	// familyOf maps a model to its family, for model-scoped windows;
	// nil counts each model as its own family.
	familyOf func(model string) string

	mu   sync.Mutex
	byID map[int64]*health

	// qmu orders every slot hand-out: the fast path, the queue and the
	// dispatch on release all take slots under it, so a request that arrives
	// while others wait queues behind them instead of barging in.
	qmu   sync.Mutex
	queue []*waiter
}

// waiter is a request waiting for a concurrency slot.
type waiter struct {
	want pickRequest
	got  chan pickResult // buffered: dispatch never blocks on it
}

type pickRequest struct {
	accts   []llmgw.Account
	model   string
	allowed func(*llmgw.Account) string
	tried   map[int64]bool
	session *sessionPick // nil: no session affinity for this request
}

type pickResult struct {
	c   choice
	err error
}

// errQueueFull means too many requests already wait for a slot.
type errQueueFull struct{ waiting int }

func (e *errQueueFull) Error() string {
	return fmt.Sprintf("llmgw is saturated: %d requests already wait for an account slot", e.waiting)
}

func newPool(now func() time.Time) *pool {
	return &pool{now: now, rand: rand.Float64, byID: make(map[int64]*health)}
}

func (p *pool) health(id int64) *health {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.byID[id]
	if h == nil {
		h = &health{}
		p.byID[id] = h
	}
	return h
}

// effectiveState is the newer of what the database says (the snapshot) and
// what this process learned since.
func effectiveState(a *llmgw.Account, h *health) llmgw.AccountState {
	if h.state.At.After(a.State.At) {
		return h.state
	}
	return a.State
}

// exclusion says why an account was not chosen.
type exclusion struct {
	name    string
	reason  string
	cooling time.Time // set when the only reason is a cooldown
	// unavailable marks an account that serves no request in its state
	// (disabled, in error), for the no_account alert.
	unavailable bool
}

// candidate is an account that may serve, with what the choice needs.
type candidate struct {
	a     *llmgw.Account
	h     *health
	until time.Time // cooldown end, zero if not cooling
	room  float64   // share left in the binding subscription window, 0..1
}

// choice is the result of one pick.
type choice struct {
	a *llmgw.Account
	h *health
}

// errNoAccount carries why no account could serve.
type errNoAccount struct {
	exclusions []exclusion
	retryAfter time.Duration // set when every account is only cooling down
}

func (e *errNoAccount) Error() string {
	if len(e.exclusions) == 0 {
		return "no accounts are configured: add one with \"llmgw account add\""
	}
	// Group identical reasons: "2 accounts cooling down until 14:05:10".
	type group struct {
		reason string
		names  []string
	}
	var groups []group
	for _, x := range e.exclusions {
		i := slices.IndexFunc(groups, func(g group) bool { return g.reason == x.reason })
		if i < 0 {
			groups = append(groups, group{reason: x.reason})
			i = len(groups) - 1
		}
		groups[i].names = append(groups[i].names, x.name)
	}
	parts := make([]string, len(groups))
	for i, g := range groups {
		parts[i] = fmt.Sprintf("%s (%s)", g.reason, strings.Join(g.names, ", "))
	}
	return "no account can serve this request: " + strings.Join(parts, "; ")
}

func (e *errNoAccount) Unwrap() error { return llmgw.ErrNoAccount }

// pick chooses an account for model among accts, skipping those in tried and
// those for which allowed gives a reason, and takes one of its concurrency
// slots. When every fitting account is at its cap it waits for a slot, in
// arrival order, until ctx ends. The caller must call release.
func (p *pool) pick(ctx context.Context, accts []llmgw.Account, model string, allowed func(*llmgw.Account) string, tried map[int64]bool) (choice, error) {
	return p.pickFor(ctx, pickRequest{accts: accts, model: model, allowed: allowed, tried: tried})
}

// pickFor is pick for a whole request, session included.
func (p *pool) pickFor(ctx context.Context, want pickRequest) (choice, error) {
	p.qmu.Lock()
	if len(p.queue) == 0 {
		c, full, err := p.tryPick(want)
		if err != nil || !full {
			p.qmu.Unlock()
			return c, err
		}
	}
	if p.maxWaiting > 0 && len(p.queue) >= p.maxWaiting {
		n := len(p.queue)
		p.qmu.Unlock()
		return choice{}, &errQueueFull{waiting: n}
	}
	w := &waiter{want: want, got: make(chan pickResult, 1)}
	p.queue = append(p.queue, w)
	p.dispatchLocked() // a slot may have freed since the fast path looked
	p.qmu.Unlock()

	select {
	case r := <-w.got:
		return r.c, r.err
	case <-ctx.Done():
	}
	p.qmu.Lock()
	if i := slices.Index(p.queue, w); i >= 0 {
		p.queue = slices.Delete(p.queue, i, i+1)
		p.qmu.Unlock()
		return choice{}, fmt.Errorf("every account is at its concurrency limit: %w", ctx.Err())
	}
	p.qmu.Unlock()
	// Dispatch served us as ctx ended: hand the slot straight back.
	if r := <-w.got; r.err == nil {
		p.release(r.c.h)
	}
	return choice{}, fmt.Errorf("every account is at its concurrency limit: %w", ctx.Err())
}

// dispatchLocked serves waiters in arrival order: each takes a slot if one
// that fits it is free. A waiter that no account can serve any more (the
// account it waited for was disabled) gets that error. The caller holds qmu.
func (p *pool) dispatchLocked() {
	keep := p.queue[:0]
	for _, w := range p.queue {
		c, full, err := p.tryPick(w.want)
		if full {
			keep = append(keep, w)
			continue
		}
		w.got <- pickResult{c, err}
	}
	clear(p.queue[len(keep):])
	p.queue = keep
}

// tryPick makes one attempt at a choice. full reports that fitting accounts
// exist but all are at their concurrency cap.
func (p *pool) tryPick(want pickRequest) (c choice, full bool, err error) {
	accts, model, allowed, tried := want.accts, want.model, want.allowed, want.tried
	now := p.now()
	fam := p.family(model)
	var ready, cooling []candidate
	var excl []exclusion
	anyFull, boundFull := false, false
	for i := range accts {
		a := &accts[i]
		h := p.health(a.ID)
		h.mu.Lock()
		st := effectiveState(a, h)
		full := h.full(a)
		h.mu.Unlock()
		cool, coolReason := coolingFor(st, fam, now)
		switch {
		case st.Status == llmgw.StatusDisabled:
			excl = append(excl, exclusion{a.Name, "disabled", time.Time{}, true})
		case st.Status == llmgw.StatusError:
			excl = append(excl, exclusion{a.Name, "in error: " + st.Reason, time.Time{}, true})
		case !a.Serves(model):
			excl = append(excl, exclusion{a.Name, "model " + model + " not allowed", time.Time{}, false})
		case allowed != nil && allowed(a) != "":
			excl = append(excl, exclusion{a.Name, allowed(a), time.Time{}, false})
		case tried[a.ID] && cool.After(now):
			excl = append(excl, exclusion{a.Name, coolReason, cool, false})
		case tried[a.ID]:
			reason := "failed for this request"
			if st.LastError != "" {
				reason += ": " + st.LastError
			}
			excl = append(excl, exclusion{a.Name, reason, time.Time{}, false})
		case full:
			anyFull = true
			boundFull = boundFull || want.session != nil && a.ID == want.session.prefer
		case cool.After(now):
			cooling = append(cooling, candidate{a: a, h: h, until: cool})
		default:
			ready = append(ready, candidate{a: a, h: h})
		}
	}
	if len(ready) == 0 && len(cooling) > 0 {
		// Every fitting account is cooling down: rather than refuse, try the one
		// whose cooldown ends first.
		first := slices.MinFunc(cooling, func(x, y candidate) int { return x.until.Compare(y.until) })
		ready = []candidate{first}
	}
	if len(ready) == 0 {
		if anyFull {
			return choice{}, true, nil
		}
		e := &errNoAccount{exclusions: excl}
		for i, x := range excl {
			if x.cooling.IsZero() {
				e.retryAfter = 0
				break
			}
			if d := x.cooling.Sub(now); i == 0 || d < e.retryAfter {
				e.retryAfter = max(d, time.Second)
			}
		}
		return choice{}, false, e
	}
	// The lowest priority number wins.
	best := slices.MinFunc(ready, func(x, y candidate) int { return x.a.Priority - y.a.Priority }).a.Priority
	group := ready[:0:0]
	var warned []candidate
	for _, c := range ready {
		if c.a.Priority != best {
			continue
		}
		c.h.mu.Lock()
		ws := c.h.windows
		c.h.mu.Unlock()
		if ws.At.IsZero() {
			ws = c.a.Windows
		}
		c.room = roomLeft(ws, fam, now)
		if nearLimit(ws, fam) {
			warned = append(warned, c) // near its limit: after every other account of its priority
			continue
		}
		group = append(group, c)
	}
	if len(group) == 0 {
		group = warned
	}
	cands := p.order(group, now)
	sp := want.session
	if sp != nil {
		cands = sp.arrange(cands, boundFull)
	}
	for _, c := range cands {
		if p.acquire(c.a, c.h) {
			if sp != nil {
				// Bound as it is chosen, so that sessions arriving together
				// spread over the accounts.
				sp.table.bind(sp.key, c.a.ID, now, sp.ttl)
			}
			return choice{a: c.a, h: c.h}, false, nil
		}
	}
	return choice{}, true, nil // every candidate's slots are taken
}

// order ranks a priority group: the first account is the one to use. With no
// history at all the account with the most room left in its binding
// subscription window comes first, the oldest among equals. Otherwise one
// account is drawn at random with probability proportional to weight × room
// / cost, where cost grows with recent latency, recent errors and requests
// in flight, so a burst spreads out instead of stampeding the currently best
// account, and the emptier subscription takes the larger share.
func (p *pool) order(group []candidate, now time.Time) []candidate {
	if len(group) == 1 {
		return group
	}
	type scored struct {
		candidate
		lat, errs float64
		inflight  int
	}
	ss := make([]scored, len(group))
	fresh := true
	minLat := math.Inf(1)
	for i, c := range group {
		c.h.mu.Lock()
		ss[i] = scored{candidate: c, lat: c.h.latencyMs, errs: c.h.decayedErrs(now), inflight: c.h.inflight + c.h.elsewhere}
		c.h.mu.Unlock()
		if ss[i].lat > 0 || ss[i].errs > 0.01 || ss[i].inflight > 0 {
			fresh = false
		}
		if ss[i].lat > 0 {
			minLat = min(minLat, ss[i].lat)
		}
	}
	out := make([]candidate, 0, len(group))
	if fresh {
		sort.SliceStable(group, func(i, j int) bool {
			if group[i].room != group[j].room {
				return group[i].room > group[j].room
			}
			return group[i].a.ID < group[j].a.ID
		})
		return append(out, group...)
	}
	if math.IsInf(minLat, 1) {
		minLat = 1
	}
	score := make([]float64, len(ss))
	total := 0.0
	for i, s := range ss {
		lat := s.lat
		if lat <= 0 {
			lat = minLat // an account without samples counts as fast
		}
		cost := max(lat, 0.1) * (1 + errorPenalty*s.errs) * float64(1+s.inflight)
		score[i] = float64(max(s.a.Weight, 1)) * max(s.room, minRoom) / cost
		total += score[i]
	}
	// Draw without replacement, so the rest of the order is a sensible
	// fallback when the first choice has no free slot.
	for len(out) < len(ss) {
		r := p.rand() * total
		k := -1
		for i := range ss {
			if score[i] < 0 {
				continue
			}
			k = i
			if r < score[i] {
				break
			}
			r -= score[i]
		}
		out = append(out, ss[k].candidate)
		total -= score[k]
		score[k] = -1
	}
	return out
}

// acquire takes a concurrency slot if one is free.
func (p *pool) acquire(a *llmgw.Account, h *health) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.full(a) {
		return false
	}
	h.inflight++
	return true
}

// release gives a slot back and hands it to the first waiter it fits.
func (p *pool) release(h *health) {
	// Under qmu, so that no slot frees in the middle of a dispatch: one that
	// did could go to a later waiter the loop had not passed yet.
	p.qmu.Lock()
	defer p.qmu.Unlock()
	h.mu.Lock()
	h.inflight--
	h.mu.Unlock()
	if len(p.queue) > 0 {
		p.dispatchLocked()
	}
}

// setElsewhere records the slots other servers hold, per account id (an
// account missing from held has none), and lets waiters take what that
// frees.
func (p *pool) setElsewhere(held map[int64]int) {
	p.mu.Lock()
	for id, h := range p.byID {
		h.mu.Lock()
		h.elsewhere = held[id]
		h.mu.Unlock()
	}
	for id, n := range held {
		if p.byID[id] == nil {
			p.byID[id] = &health{elsewhere: n}
		}
	}
	p.mu.Unlock()
	p.wake()
}

// wake lets waiters take whatever slots are free now (after a release, or
// when the accounts changed).
func (p *pool) wake() {
	p.qmu.Lock()
	if len(p.queue) > 0 {
		p.dispatchLocked()
	}
	p.qmu.Unlock()
}

// observe records the outcome of one attempt.
func (p *pool) observe(h *health, ttfb time.Duration, failed, transient bool) {
	now := p.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if failed {
		h.errs = h.decayedErrs(now) + 1
		h.errsAt = now
	}
	if transient {
		h.transients++
	} else {
		h.transients = 0
	}
	if !failed && ttfb > 0 {
		ms := float64(ttfb) / float64(time.Millisecond)
		if h.latencyMs == 0 {
			h.latencyMs = ms
		} else {
			h.latencyMs += latencyAlpha * (ms - h.latencyMs)
		}
	}
}

// setState records a state learned while serving and returns it.
func (p *pool) setState(a *llmgw.Account, h *health, change func(*llmgw.AccountState)) llmgw.AccountState {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := effectiveState(a, h)
	change(&st)
	st.At = p.now()
	if !st.At.After(effectiveState(a, h).At) {
		st.At = effectiveState(a, h).At.Add(time.Millisecond)
	}
	h.state = st
	return st
}

// forget drops health for accounts that no longer exist.
func (p *pool) forget(keep map[int64]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id := range p.byID {
		if !keep[id] {
			delete(p.byID, id)
		}
	}
}

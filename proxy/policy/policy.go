// Package policy holds the use of client keys and accounts against their
// limits (usd, tokens and requests per window) in memory, so the request
// path checks a limit without a database call.
//
// The request log is the only record of use: when a subject's limits are
// set or changed, its use is summed again from the log (Sync), and from then
// on every finished request is added as it settles. A request reserves an
// estimate before it is sent (Reserve) and settles to what it really used
// (Hold.Settle), so concurrent requests cannot all slip under the same
// limit: a request is admitted only while settled use plus what requests in
// flight reserved is below the limit, which bounds the overshoot by what was
// in flight when the limit was reached.
package policy

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
)

// Charge is what one request uses, in each kind a limit can count.
type Charge struct {
	USD      float64
	Tokens   int64
	Requests int64
}

func (c Charge) of(k llmgw.LimitKind) float64 {
	switch k {
	case llmgw.LimitUSD:
		return c.USD
	case llmgw.LimitTokens:
		return float64(c.Tokens)
	}
	return float64(c.Requests)
}

func (c Charge) minus(d Charge) Charge {
	return Charge{USD: max(c.USD-d.USD, 0), Tokens: max(c.Tokens-d.Tokens, 0), Requests: max(c.Requests-d.Requests, 0)}
}

func (c Charge) plus(d Charge) Charge {
	return Charge{USD: c.USD + d.USD, Tokens: c.Tokens + d.Tokens, Requests: c.Requests + d.Requests}
}

// Billed returns t in Anthropic's billing categories. Cache writes the
// upstream did not split count as 5-minute writes.
func Billed(t llmgw.Tokens) anthropic.Tokens {
	w1h := t.CacheWrite1h
	w5m := max(t.CacheWrite-w1h, t.CacheWrite5m)
	return anthropic.Tokens{Input: t.Input, Output: t.Output, CacheRead: t.CacheRead, CacheWrite5m: w5m, CacheWrite1h: w1h}
}

// Used is what one request used, as its price needs it: the model it asked
// for, its top-level tokens, its iterations when the upstream reported
// them, and the speed it was served at (usage.speed).
type Used struct {
	Model      string
	Tokens     llmgw.Tokens
	Iterations []llmgw.Iteration
	Speed      string
}

// UsedBy returns what the request u used.
func UsedBy(u *llmgw.Usage) Used {
	return Used{Model: u.Model, Tokens: u.Tokens, Iterations: u.Iterations, Speed: u.Speed}
}

// Part is one part of a request's bill: tokens at one model's rates, at one
// speed.
type Part struct {
	Model  string
	Speed  string
	Tokens llmgw.Tokens
}

// Parts returns what a request is billed for; this is the one rule, for
// the server's limits and for the usage report alike.
//
// Without iterations it is one part: the top-level tokens at the request's
// model and speed. With iterations it is one part per iteration, at the
// iteration's own model (the request's when it names none), and the
// top-level figures are not billed. Anthropic's top-level usage counts
// only the "message" iterations: a compaction's tokens (per the compaction
// docs, "sum across all entries in usage.iterations" for the total) and
// an advisor's (its own model, its own rates) appear in iterations alone.
// Billing both would charge the message iterations twice; billing the top
// level alone would miss the rest.
//
// The speed is the request's: it prices the parts run by the request's
// model (no model of their own, or the same one), not an advisor's or a
// fallback's run on another model.
func Parts(u Used) []Part {
	if len(u.Iterations) == 0 {
		return []Part{{Model: u.Model, Speed: u.Speed, Tokens: u.Tokens}}
	}
	parts := make([]Part, len(u.Iterations))
	for i, it := range u.Iterations {
		p := Part{Model: it.Model, Tokens: it.Tokens}
		if p.Model == "" || p.Model == u.Model {
			p.Model, p.Speed = u.Model, u.Speed
		}
		parts[i] = p
	}
	return parts
}

// ScaledCost returns what a request costs at the catalog's prices, in USD
// times one million (see anthropic.Price.ScaledCost): each part at its
// model's rates, fast mode's premium included. unpriced lists the models
// of parts that used tokens but have no known price; those parts add
// nothing to cost.
func ScaledCost(c *anthropic.Catalog, u Used) (cost float64, unpriced []string) {
	for _, p := range Parts(u) {
		pr, ok := c.PriceOf(p.Model)
		if !ok {
			if p.Tokens != (llmgw.Tokens{}) {
				unpriced = append(unpriced, p.Model)
			}
			continue
		}
		cost += pr.AtSpeed(p.Speed).ScaledCost(Billed(p.Tokens))
	}
	return cost, unpriced
}

// ChargeOf is what a finished request charges its key and its account: its
// cost at the catalog's prices (nothing for a part without a price), all
// its billed tokens (see Parts), and one request if it reached an account.
// The server's live use, the sums from the request log and the usage
// report all come from here.
func ChargeOf(c *anthropic.Catalog, u Used, attempts int) Charge {
	var ch Charge
	for _, p := range Parts(u) {
		b := Billed(p.Tokens)
		ch.Tokens += b.Input + b.Output + b.CacheRead + b.CacheWrite5m + b.CacheWrite1h
	}
	cost, _ := ScaledCost(c, u)
	ch.USD = cost / 1e6
	if attempts > 0 {
		ch.Requests = 1
	}
	return ch
}

// Estimate is what a request is expected to use at most before it is sent:
// its input (about four bytes of body per token) and max_tokens of output,
// at the model's prices.
func Estimate(c *anthropic.Catalog, model string, bodyBytes, maxTokens int) Charge {
	t := anthropic.Tokens{Input: int64(bodyBytes / 4), Output: int64(maxTokens)}
	ch := Charge{Tokens: t.Input + t.Output, Requests: 1}
	if cost, ok := c.ScaledCost(model, t); ok {
		ch.USD = cost / 1e6
	}
	return ch
}

// Subject is what limits apply to: a client key or an account, by id.
type Subject struct {
	Account bool
	ID      int64
}

// Spec is a subject's limits, from the snapshot. Name is how refusals name
// it: "key alice", "account team-a".
type Spec struct {
	Subject Subject
	Name    string
	Limits  []llmgw.Limit
}

// Row is one request of the request log, as the use sums need it.
type Row struct {
	ID        int64 // the log row's id; 0 for a request settled in this process
	RequestID string
	Key       int64 // the client key's id (CatchUp only; 0 for none)
	Account   int64 // the account's id (CatchUp only; 0 for none)
	Time      time.Time
	Charge    Charge
}

// Source reads the request log for Sync. Flush must write every request
// settled so far to the log before it returns.
type Source interface {
	Flush(ctx context.Context) error
	Rows(ctx context.Context, s Subject, since time.Time) ([]Row, error)
	// LastID returns the highest id in the log: a subject summed from the
	// log now has every row up to it counted (for Sync).
	LastID(ctx context.Context) (int64, error)
	// RowsAfter returns the rows of any of subjects with an id above
	// afterID, in id order, with Key and Account set, leaving out those
	// whose request id starts with skip; and last, the highest id the log
	// held, which the rows bring every subject up to (for CatchUp).
	RowsAfter(ctx context.Context, afterID int64, skip string, subjects []Subject) (rows []Row, last int64, err error)
}

// Use is a limit with the use counted against it now.
type Use struct {
	Limit llmgw.Limit
	Used  float64
	// Reserved is held by requests in flight (in the server only).
	Reserved float64
	// Resets is when the calendar window ends or, for a sliding window, when
	// the oldest use in it leaves it; zero for a total limit or no use.
	Resets time.Time
}

// Spent reports whether no more requests are admitted under this limit.
func (u Use) Spent() bool { return u.Used+u.Reserved >= u.Limit.Amount }

// Ledger holds the use of every subject that has limits. It is safe for
// concurrent use.
type Ledger struct {
	now func() time.Time
	loc *time.Location

	syncMu     sync.Mutex // one Sync at a time
	mu         sync.Mutex
	subs       map[Subject]*meters
	rebuilding map[Subject]*meters // being summed from the log: settles are kept aside
}

// NewLedger returns an empty ledger; calendar windows are in loc (nil: UTC).
func NewLedger(now func() time.Time, loc *time.Location) *Ledger {
	if loc == nil {
		loc = time.UTC
	}
	return &Ledger{now: now, loc: loc, subs: map[Subject]*meters{}, rebuilding: map[Subject]*meters{}}
}

// meters are one subject's limits and use.
type meters struct {
	name     string
	limits   []llmgw.Limit
	m        []meter
	reserved Charge
	pending  []Row // settled while being rebuilt
	// lastID is the highest request log id counted; CatchUp adds the rows
	// above it that other processes wrote.
	lastID int64
}

// meter is the use against one limit.
type meter struct {
	limit      llmgw.Limit
	start, end time.Time // the calendar window counted; zero for total and sliding
	used       float64
	events     []event // sliding windows only: use in buckets, oldest first
}

// event is the use of one bucket of a sliding window: the uses whose times
// fall in [key, key+bucketWidth). It leaves the window when its latest use
// (at) does, so a bucket never frees room early, and a window holds at most
// about maxBuckets of them however many requests it counts.
type event struct {
	key time.Time
	at  time.Time
	n   float64
}

// maxBuckets bounds the buckets of a sliding window; a bucket spans at
// least a second.
const maxBuckets = 1000

func bucketWidth(span time.Duration) time.Duration { return max(time.Second, span/maxBuckets) }

func newMeters(name string, limits []llmgw.Limit, now time.Time, loc *time.Location) *meters {
	ms := &meters{name: name, limits: limits, m: make([]meter, len(limits))}
	for i, l := range limits {
		ms.m[i].limit = l
		ms.m[i].roll(now, loc)
	}
	return ms
}

// since is the earliest time whose use any of the limits counts now.
func since(limits []llmgw.Limit, now time.Time, loc *time.Location) time.Time {
	earliest := now
	for _, l := range limits {
		if l.Window.Calendar == llmgw.WindowTotal {
			return time.Time{}
		}
		start, _ := l.Window.Period(now, loc)
		if start.Before(earliest) {
			earliest = start
		}
	}
	return earliest
}

// roll moves a calendar meter to the window containing now, and drops the
// use that left a sliding window.
func (m *meter) roll(now time.Time, loc *time.Location) {
	w := m.limit.Window
	switch {
	case w.Calendar == llmgw.WindowTotal:
	case w.Calendar != "":
		if m.end.IsZero() || !now.Before(m.end) {
			m.start, m.end = w.Period(now, loc)
			m.used = 0
		}
	default:
		cut := now.Add(-w.Span)
		i := sort.Search(len(m.events), func(i int) bool { return m.events[i].at.After(cut) })
		for _, e := range m.events[:i] {
			m.used -= e.n
		}
		m.events = slices.Delete(m.events, 0, i)
		if len(m.events) == 0 {
			m.used = 0 // no drift from float sums
		}
	}
}

// add counts n used at time at, if at falls in the window counted now.
func (m *meter) add(at time.Time, n float64, now time.Time) {
	if n == 0 {
		return
	}
	w := m.limit.Window
	switch {
	case w.Calendar == llmgw.WindowTotal:
		m.used += n
	case w.Calendar != "":
		if !at.Before(m.start) && at.Before(m.end) {
			m.used += n
		}
	default:
		if !at.After(now.Add(-w.Span)) {
			return
		}
		key := at.Truncate(bucketWidth(w.Span))
		i := sort.Search(len(m.events), func(i int) bool { return !m.events[i].key.Before(key) })
		if i < len(m.events) && m.events[i].key.Equal(key) {
			e := &m.events[i]
			e.n += n
			if at.After(e.at) {
				e.at = at
			}
		} else {
			m.events = slices.Insert(m.events, i, event{key: key, at: at, n: n})
		}
		m.used += n
	}
}

// use reports the meter's use with reserved held by requests in flight.
func (m *meter) use(reserved float64) Use {
	u := Use{Limit: m.limit, Used: m.used, Reserved: reserved}
	switch {
	case m.limit.Window.Calendar == llmgw.WindowTotal:
	case m.limit.Window.Calendar != "":
		u.Resets = m.end
	case len(m.events) > 0:
		u.Resets = m.events[0].at.Add(m.limit.Window.Span)
	}
	return u
}

// freesAt is when a spent meter admits requests again, or zero if never
// (a total limit).
func (m *meter) freesAt(now time.Time) time.Time {
	w := m.limit.Window
	switch {
	case w.Calendar == llmgw.WindowTotal:
		return time.Time{}
	case w.Calendar != "":
		return m.end
	}
	// The oldest uses leave the window first: find the one whose leaving
	// brings use below the limit.
	left := m.used
	for _, e := range m.events {
		left -= e.n
		if left < m.limit.Amount {
			return e.at.Add(w.Span)
		}
	}
	return now
}

func (ms *meters) add(r Row, now time.Time, loc *time.Location) {
	for i := range ms.m {
		ms.m[i].roll(now, loc)
		ms.m[i].add(r.Time, r.Charge.of(ms.m[i].limit.Kind), now)
	}
}

// Refusal says why a request is not admitted: the message names the
// subject, the limit, its use and when it frees. RetryAfter is zero when the
// limit never frees.
type Refusal struct {
	Message    string
	RetryAfter time.Duration
	Limit      llmgw.Limit
}

func (r *Refusal) Error() string { return r.Message }

// Reserve admits a request of subject s expected to use est and returns
// what it reserved, or refuses it when a limit has no room left. A subject
// without limits reserves nothing. Whatever happens to the request, Settle
// it once with the reservation.
func (l *Ledger) Reserve(s Subject, est Charge) (Charge, *Refusal) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	ms := l.subs[s]
	if ms == nil {
		return Charge{}, nil
	}
	for i := range ms.m {
		m := &ms.m[i]
		m.roll(now, l.loc)
		if u := m.use(ms.reserved.of(m.limit.Kind)); u.Spent() {
			return Charge{}, refusal(ms.name, m, u, now)
		}
	}
	ms.reserved = ms.reserved.plus(est)
	return est, nil
}

// Spent says why subject s admits nothing now, or "" if it does (or has no
// limits). Routing uses it to skip an account whose own limit is spent.
func (l *Ledger) Spent(s Subject) string {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	ms := l.subs[s]
	if ms == nil {
		return ""
	}
	for i := range ms.m {
		m := &ms.m[i]
		m.roll(now, l.loc)
		if u := m.use(ms.reserved.of(m.limit.Kind)); u.Spent() {
			return refusal("", m, u, now).Message
		}
	}
	return ""
}

func refusal(name string, m *meter, u Use, now time.Time) *Refusal {
	l := m.limit
	var b strings.Builder
	if name != "" {
		b.WriteString(name + ": ")
	}
	fmt.Fprintf(&b, "%s limit %s/%s reached (%s used", l.Kind, l.FormatAmount(l.Amount), l.Window, l.FormatAmount(u.Used))
	r := &Refusal{Limit: l}
	if u.Used < l.Amount {
		// Only what requests in flight reserved is in the way: it settles
		// as they finish.
		fmt.Fprintf(&b, ", %s held by requests in flight); retry in a moment", l.FormatAmount(u.Reserved))
		r.RetryAfter = time.Second
		r.Message = b.String()
		return r
	}
	b.WriteString(")")
	if at := m.freesAt(now); at.IsZero() {
		b.WriteString("; it does not reset")
	} else {
		verb := "resets"
		if l.Window.Calendar == "" {
			verb = "frees room at"
		}
		fmt.Fprintf(&b, "; %s %s", verb, at.UTC().Format(time.RFC3339))
		r.RetryAfter = max(at.Sub(now), time.Second)
	}
	r.Message = b.String()
	return r
}

// Crossing is a limit whose use passed one of the Levels with one settled
// request.
type Crossing struct {
	Limit llmgw.Limit
	Level float64 // the highest of Levels passed
	Used  float64 // the use after the request
}

// Levels are the shares of a limit whose passing Settle reports: 80% and
// 100%.
var Levels = [...]float64{0.8, 1}

// Settle counts what a finished request of subject s used, at time at
// (when it arrived, as the request log has it), in place of what it
// reserved. Every request that may count against a subject settles, those
// that reserved nothing included: a limit set while it ran must see it. It
// returns the limits whose use passed one of Levels with this request (the
// highest level passed, once per limit); nil for a subject without limits.
func (l *Ledger) Settle(s Subject, reserved Charge, requestID string, at time.Time, used Charge) []Crossing {
	return l.settle(s, reserved, Row{RequestID: requestID, Time: at, Charge: used})
}

func (l *Ledger) settle(s Subject, est Charge, r Row) []Crossing {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if nb := l.rebuilding[s]; nb != nil && r.Charge != (Charge{}) {
		nb.pending = append(nb.pending, r)
	}
	ms := l.subs[s]
	if ms == nil {
		return nil
	}
	ms.reserved = ms.reserved.minus(est)
	if r.Charge == (Charge{}) {
		return nil
	}
	before := make([]float64, len(ms.m))
	for i := range ms.m {
		ms.m[i].roll(now, l.loc)
		before[i] = ms.m[i].used
	}
	ms.add(r, now, l.loc)
	var out []Crossing
	for i := range ms.m {
		m := &ms.m[i]
		for j := len(Levels) - 1; j >= 0; j-- {
			mark := Levels[j] * m.limit.Amount
			if before[i] < mark && m.used >= mark {
				out = append(out, Crossing{Limit: m.limit, Level: Levels[j], Used: m.used})
				break
			}
		}
	}
	return out
}

// Use reports subject s's use against each of its limits, or nil if it has
// none.
func (l *Ledger) Use(s Subject) []Use {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	ms := l.subs[s]
	if ms == nil {
		return nil
	}
	out := make([]Use, len(ms.m))
	for i := range ms.m {
		ms.m[i].roll(now, l.loc)
		out[i] = ms.m[i].use(ms.reserved.of(ms.m[i].limit.Kind))
	}
	return out
}

// Sync makes the ledger's subjects those of specs. A subject whose limits
// are new or changed has its use summed again from the request log (src; a
// nil src starts it at zero); the others keep counting. Requests settled
// while the log is read are neither lost nor counted twice. On error the
// subjects not yet summed keep their previous limits, and Sync may be called
// again.
func (l *Ledger) Sync(ctx context.Context, specs []Spec, src Source) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	now := l.now()
	var changed []Spec
	l.mu.Lock()
	keep := make(map[Subject]bool, len(specs))
	for _, sp := range specs {
		keep[sp.Subject] = true
		if ms := l.subs[sp.Subject]; ms != nil && slices.Equal(ms.limits, sp.Limits) {
			ms.name = sp.Name
			continue
		}
		l.rebuilding[sp.Subject] = newMeters(sp.Name, slices.Clone(sp.Limits), now, l.loc)
		changed = append(changed, sp)
	}
	for s := range l.subs {
		if !keep[s] {
			delete(l.subs, s)
		}
	}
	l.mu.Unlock()
	if len(changed) == 0 {
		return nil
	}
	defer func() {
		l.mu.Lock()
		for _, sp := range changed {
			delete(l.rebuilding, sp.Subject)
		}
		l.mu.Unlock()
	}()
	var mark int64 // the log's highest id before the rows are read
	if src != nil {
		// Everything settled before the rebuild began is in the log after
		// this; what settles later is kept aside in pending.
		if err := src.Flush(ctx); err != nil {
			return fmt.Errorf("limits: write pending usage: %w", err)
		}
		// Rows are committed in id order, so each subject's rows read below
		// hold all of its rows up to mark: CatchUp starts after it, rather
		// than from the log's start for a subject without rows.
		var err error
		if mark, err = src.LastID(ctx); err != nil {
			return fmt.Errorf("limits: read the request log: %w", err)
		}
	}
	for _, sp := range changed {
		l.mu.Lock()
		nb := l.rebuilding[sp.Subject]
		l.mu.Unlock()
		var rows []Row
		if src != nil {
			var err error
			if rows, err = src.Rows(ctx, sp.Subject, since(sp.Limits, now, l.loc)); err != nil {
				return fmt.Errorf("limits of %s: read the request log: %w", sp.Name, err)
			}
		}
		seen := make(map[string]bool, len(rows))
		nb.lastID = mark
		for _, r := range rows {
			nb.add(r, now, l.loc)
			nb.lastID = max(nb.lastID, r.ID)
			seen[r.RequestID] = true
		}
		l.mu.Lock()
		for _, r := range nb.pending {
			if r.RequestID == "" || !seen[r.RequestID] {
				nb.add(r, l.now(), l.loc) // its row may come later: CatchUp knows it as this process's
			}
		}
		nb.pending = nil
		if old := l.subs[sp.Subject]; old != nil {
			nb.reserved = old.reserved // requests in flight settle against the new meters
		}
		l.subs[sp.Subject] = nb
		delete(l.rebuilding, sp.Subject)
		l.mu.Unlock()
	}
	return nil
}

// Measure sums rows against limits at time now, as the ledger would after a
// Sync: for showing a subject's use outside the server.
func Measure(limits []llmgw.Limit, rows []Row, now time.Time, loc *time.Location) []Use {
	if loc == nil {
		loc = time.UTC
	}
	ms := newMeters("", limits, now, loc)
	for _, r := range rows {
		ms.add(r, now, loc)
	}
	out := make([]Use, len(ms.m))
	for i := range ms.m {
		out[i] = ms.m[i].use(0)
	}
	return out
}

// Since is the earliest time whose use any of limits counts at now: the rows
// Measure and Sync need start there (zero for a total limit).
func Since(limits []llmgw.Limit, now time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	return since(limits, now, loc)
}

// Pass moves every subject's place in the request log up to id without
// reading the rows: the caller knows they hold nothing to count (they are
// its own, settled already). A subject being rebuilt keeps its place.
func (l *Ledger) Pass(id int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.passLocked(id)
}

func (l *Ledger) passLocked(id int64) {
	for s, ms := range l.subs {
		if l.rebuilding[s] == nil {
			ms.lastID = max(ms.lastID, id)
		}
	}
}

// CatchUp adds, for every subject with limits, the request log rows other
// processes on the same database wrote since the last look: one read of the
// log from the oldest look of any subject, leaving out the rows whose
// request id starts with own (this process's, counted when settled).
// Servers sharing a database call it every 250 ms, so a budget spent
// through one is seen by the others within about half a second (their
// usage writers' batch interval plus this period): the overshoot across
// servers is bounded by what the others served in that time plus what they
// had in flight. It runs off the request path and does nothing when no
// subject has limits.
func (l *Ledger) CatchUp(ctx context.Context, src Source, own string) error {
	if src == nil {
		return nil
	}
	l.mu.Lock()
	var from int64
	var subjects []Subject
	for s, ms := range l.subs {
		if l.rebuilding[s] == nil {
			if len(subjects) == 0 || ms.lastID < from {
				from = ms.lastID
			}
			subjects = append(subjects, s)
		}
	}
	l.mu.Unlock()
	if len(subjects) == 0 {
		return nil
	}
	rows, last, err := src.RowsAfter(ctx, from, own, subjects)
	if err != nil {
		return fmt.Errorf("limits: read the request log: %w", err)
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	// Against the meters as they are now: a Sync that replaced a subject's
	// meters meanwhile counted its rows up to their lastID already, and one
	// still rebuilding counts them itself.
	for _, r := range rows {
		for _, s := range [2]Subject{{ID: r.Key}, {Account: true, ID: r.Account}} {
			if ms := l.subs[s]; s.ID != 0 && ms != nil && l.rebuilding[s] == nil && r.ID > ms.lastID {
				ms.add(r, now, l.loc)
			}
		}
	}
	l.passLocked(last)
	return nil
}

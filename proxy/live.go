package proxy

import (
	"time"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/policy"
)

// Live is what the server is doing right now, read from memory: for
// metrics, for the state row `llmgw status` reads, and for alerts. Taking it
// costs a walk over the accounts and the wait queue; it is meant for a
// scrape or a once-a-second publisher, not for every request.
type Live struct {
	At       time.Time
	Accounts []LiveAccount
	Keys     []LiveKey
	InFlight int // requests holding an account slot
	Waiting  int // requests waiting for an account slot
	// KeySlots counts, per client key id, the requests holding one of the
	// key's concurrency slots (keys with a cap only): the share of each
	// cap another server on the database counts as held (SetElsewhere).
	KeySlots map[int64]int `json:",omitempty"`
}

// LiveAccount is one account as the server sees it now.
type LiveAccount struct {
	ID             int64
	Name           string
	Type           llmgw.AccountType
	State          llmgw.AccountState // the newer of the stored and the learned state
	InFlight       int
	MaxConcurrency int // 0: unlimited
	// Waiting counts the queued requests this account could serve.
	Waiting   int
	LatencyMs float64 // moving average of time to first byte; 0 without samples
	// RecentErrors is the decaying count of recent failures (half-life
	// errorHalfLife).
	RecentErrors float64
	Windows      llmgw.Windows
	TokenExpires time.Time    // OAuth access token expiry; zero otherwise
	Limits       []policy.Use // the account's own limits and their use
}

// LiveKey is a client key with limits and its use now.
type LiveKey struct {
	ID     int64
	Name   string
	Limits []policy.Use
}

// Live reports what the server is doing now.
func (s *Server) Live() Live {
	out := Live{At: s.cfg.Now()}
	v := s.view.Load()
	if v == nil {
		return out
	}
	waiting := s.pool.waitingFor(v.snap.Accounts)
	for i := range v.snap.Accounts {
		a := &v.snap.Accounts[i]
		h := s.pool.health(a.ID)
		h.mu.Lock()
		la := LiveAccount{
			ID: a.ID, Name: a.Name, Type: a.Type, State: effectiveState(a, h), InFlight: h.inflight,
			MaxConcurrency: a.MaxConcurrency, LatencyMs: h.latencyMs, RecentErrors: h.decayedErrs(out.At),
			Windows: h.windows, TokenExpires: a.ExpiresAt,
		}
		h.mu.Unlock()
		if la.Windows.At.IsZero() {
			la.Windows = a.Windows
		}
		la.Waiting = waiting[a.ID]
		if len(a.Limits) > 0 {
			la.Limits = s.ledger.Use(accountSubject(a.ID))
		}
		out.InFlight += la.InFlight
		out.Accounts = append(out.Accounts, la)
	}
	for i := range v.snap.Keys {
		k := &v.snap.Keys[i]
		if len(k.Limits) > 0 && k.RevokedAt.IsZero() {
			out.Keys = append(out.Keys, LiveKey{ID: k.ID, Name: k.Name, Limits: s.ledger.Use(keySubject(k))})
		}
	}
	s.pool.qmu.Lock()
	out.Waiting = len(s.pool.queue)
	s.pool.qmu.Unlock()
	out.KeySlots = s.keySlots.held()
	return out
}

// Elsewhere is what the other servers on the same database hold, summed
// from what they last published (their Live): concurrency slots per
// account id (LiveAccount.InFlight) and per client key id (Live.KeySlots).
type Elsewhere struct {
	Accounts, Keys map[int64]int
}

// SetElsewhere makes the account and key concurrency caps count the slots
// other servers hold, so that a cap holds across replicas. What they took
// since they last published is not seen yet: the overshoot across servers
// is bounded by what they take within that lag.
func (s *Server) SetElsewhere(e Elsewhere) {
	s.pool.setElsewhere(e.Accounts)
	s.keySlots.setElsewhere(e.Keys)
}

// waitingFor counts, per account, the queued requests it could serve (its
// model allowlist admits the request's model).
func (p *pool) waitingFor(accts []llmgw.Account) map[int64]int {
	p.qmu.Lock()
	defer p.qmu.Unlock()
	out := make(map[int64]int, len(accts))
	for _, w := range p.queue {
		for i := range w.want.accts {
			if a := &w.want.accts[i]; a.Serves(w.want.model) {
				out[a.ID]++
			}
		}
	}
	return out
}

// notify hands an event to Config.Notify, stamped with the server's clock.
func (s *Server) notify(e llmgw.Event) {
	if s.cfg.Notify == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = s.cfg.Now()
	}
	s.cfg.Notify(e)
}

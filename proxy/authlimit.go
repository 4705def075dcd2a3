package proxy

import (
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultAuthFailuresPerMinute is the failed authentications a client
// address may make per minute (as a burst, refilled evenly over the minute)
// before its requests get 429.
const DefaultAuthFailuresPerMinute = 20

// maxAuthFailureAddrs bounds the addresses authFailures remembers, so that
// a flood from many addresses cannot grow memory without bound.
const maxAuthFailureAddrs = 16384

// authFailures rate-limits failed authentications per client address: each
// address has a bucket of perMinute tokens, refilled at perMinute a minute,
// and each failure takes one. An address whose bucket is empty is refused
// before its key is even looked at, so that a key guesser learns nothing
// until the bucket refills. IPv6 addresses count per /64, the block one
// host usually holds. It is safe for concurrent use.
type authFailures struct {
	perMinute float64
	now       func() time.Time

	mu    sync.Mutex
	addrs map[string]*failBucket
	// tracked is len(addrs), readable without mu: every request asks wait,
	// and while no address has failed it answers without the lock.
	tracked atomic.Int64
}

type failBucket struct {
	tokens  float64
	at      time.Time // when tokens was last brought up to date
	blocked bool      // in a refusal episode, already logged
}

func newAuthFailures(perMinute int, now func() time.Time) *authFailures {
	if perMinute <= 0 {
		perMinute = DefaultAuthFailuresPerMinute
	}
	return &authFailures{perMinute: float64(perMinute), now: now, addrs: make(map[string]*failBucket)}
}

// authAddrKey is the key authFailures counts addr under.
func authAddrKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	if a = a.Unmap(); a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// refill brings b's tokens up to now. Called with mu held.
func (f *authFailures) refill(b *failBucket, now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = math.Min(f.perMinute, b.tokens+d.Minutes()*f.perMinute)
		b.at = now
	}
}

// wait is how long until addr may try again: 0 if it may now.
func (f *authFailures) wait(addr string) time.Duration {
	if f.tracked.Load() == 0 {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := authAddrKey(addr)
	b := f.addrs[k]
	if b == nil {
		return 0
	}
	f.refill(b, f.now())
	if b.tokens >= f.perMinute {
		// Quiet for a whole minute: forget it (a new failure starts
		// afresh), so that wait is lock-free again once all are quiet.
		delete(f.addrs, k)
		f.tracked.Store(int64(len(f.addrs)))
		return 0
	}
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) / f.perMinute * float64(time.Minute))
}

// fail counts a failed authentication from addr. It reports whether this
// failure emptied the bucket: the start of an episode, to be logged once.
func (f *authFailures) fail(addr string) (started bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	k := authAddrKey(addr)
	b := f.addrs[k]
	if b == nil {
		if len(f.addrs) >= maxAuthFailureAddrs {
			f.evict(now)
		}
		b = &failBucket{tokens: f.perMinute, at: now}
		f.addrs[k] = b
		f.tracked.Store(int64(len(f.addrs)))
	}
	f.refill(b, now)
	if b.tokens >= f.perMinute {
		b.blocked = false // quiet for a whole minute: a new episode
	}
	if b.tokens >= 1 {
		b.tokens--
	}
	if b.tokens < 1 && !b.blocked {
		b.blocked = true
		return true
	}
	return false
}

// evict makes room: it forgets the addresses whose buckets are full again
// (they would start afresh anyway), and if none is, an arbitrary quarter
// of them. Called with mu held.
func (f *authFailures) evict(now time.Time) {
	for k, b := range f.addrs {
		if f.refill(b, now); b.tokens >= f.perMinute {
			delete(f.addrs, k)
		}
	}
	for k := range f.addrs {
		if len(f.addrs) < maxAuthFailureAddrs*3/4 {
			break
		}
		delete(f.addrs, k)
	}
	f.tracked.Store(int64(len(f.addrs)))
}

// errAuthLimited is the answer to an address past its failed
// authentications.
func errAuthLimited(wait time.Duration) error {
	return &errLimited{
		msg:        fmt.Sprintf("too many failed authentication attempts from this address; retry in %d s", retrySeconds(wait)),
		retryAfter: wait,
	}
}

// authFailed counts a failed authentication from client and, when it
// starts a refusal episode, logs it once: with the first 8 hex digits of
// the attempted key's hash at most, never the key.
func (s *Server) authFailed(r *http.Request, client, hash string) {
	if !s.authFail.fail(client) {
		return
	}
	s.log.LogAttrs(r.Context(), slog.LevelWarn, "too many failed authentications: refusing the address with 429",
		slog.String("request_id", entryFrom(r.Context()).id),
		slog.String("client", client),
		slog.Int("failures_per_minute", int(s.authFail.perMinute)),
		slog.String("key_hash", hash[:min(8, len(hash))]))
}

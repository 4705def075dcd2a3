package proxy

import (
	"net/http"
	"strings"
	"time"

	"github.com/llmgw/llmgw"
)

// Limits scoped to a model family. Subscription windows such as 7d_oi and
// 7d-sonnet bind one model family: a 429 that rejects only such a window
// cools the account for that family (llmgw.AccountState.FamilyCooldowns)
// and leaves it serving every other model. A 429 that says nothing about
// any window is told apart too: it is usually not the account's rate limit.

// bareRateLimitCool is how long a 429 without rate-limit headers, without
// retry-after and without any reset cools the account. Such a 429 is
// usually extra usage, fast-mode credits or a spend cap running out, which
// says nothing about the subscription window and is not fixed by waiting
// for one; but sending the next requests straight back would only collect
// more refusals, so the account rests briefly and is tried again soon after.
const bareRateLimitCool = 30 * time.Second

// bareRateLimitNote is the account's last error after such a 429.
const bareRateLimitNote = "429 without rate-limit headers: probably extra usage or a spend cap, not the subscription window"

// bare429 reports whether a 429's headers carry no hint of a rate limit: no
// retry-after and no anthropic-ratelimit-* header at all (neither a
// subscription window nor an API-key limit, its remaining or its reset).
func bare429(h http.Header) bool {
	if _, ok := RetryAfter(h, time.Time{}); ok {
		return false
	}
	for k, vs := range h {
		if len(vs) > 0 && len(k) >= len("anthropic-ratelimit-") && strings.EqualFold(k[:len("anthropic-ratelimit-")], "anthropic-ratelimit-") {
			return false
		}
	}
	return true
}

// bareVerdict fails a bare 429 over and cools the account briefly, saying why.
func bareVerdict(now time.Time) Verdict {
	return Verdict{Next: TryNext, Account: Effect{CoolUntil: now.Add(bareRateLimitCool), Note: bareRateLimitNote}}
}

// scopedReset returns, for a 429 whose only rejected windows are
// model-scoped, when the request's family may be served again: the latest
// reset among those windows, else the unified reset, else retry-after, else
// bareRateLimitCool from now. ok is false when no scoped window is rejected.
func scopedReset(h http.Header, now time.Time) (until time.Time, ok bool) {
	ws := ParseWindows(h, "", now)
	for _, w := range ws.Scoped {
		if w.Status != "rejected" {
			continue
		}
		ok = true
		if w.ResetsAt.After(until) {
			until = w.ResetsAt
		}
	}
	if !ok {
		return time.Time{}, false
	}
	if until.IsZero() {
		if t, tok := parseEpoch(h.Get("Anthropic-Ratelimit-Unified-Reset")); tok {
			until = t
		} else if d, dok := RetryAfter(h, now); dok {
			until = now.Add(d)
		} else {
			until = now.Add(bareRateLimitCool)
		}
	}
	return later(until, now.Add(time.Second)), true
}

// scopedRejected reports whether a model-scoped window is rejected.
func scopedRejected(ws llmgw.Windows) bool {
	for _, w := range ws.Scoped {
		if w.Status == "rejected" {
			return true
		}
	}
	return false
}

// family returns the model family a request for model counts against in
// model-scoped windows: the catalog's family, or the model itself when it
// has none, so that a scoped cooldown never spreads past the model.
func (p *pool) family(model string) string {
	if p.familyOf != nil {
		if f := p.familyOf(model); f != "" {
			return f
		}
	}
	return model
}

// coolingFor returns until when st keeps an account from serving a request
// of family, and why: the later of the account's cooldown and its cooldown
// for the family. A family cooldown never stops other families.
// The reason is formatted only for an account that is cooling: this runs
// for every account on every pick.
func coolingFor(st llmgw.AccountState, family string, now time.Time) (time.Time, string) {
	if f := st.CoolingFor(family); f.After(now) && f.After(st.CooldownUntil) {
		return f, "cooling for " + family + " until " + clock(f, now)
	}
	if st.CooldownUntil.After(now) {
		return st.CooldownUntil, "cooling down until " + st.CooldownUntil.Local().Format(time.TimeOnly)
	}
	return time.Time{}, ""
}

// clock formats a time of day, with the date when it is not within a day.
func clock(t, now time.Time) string {
	if t.Sub(now) < 24*time.Hour {
		return t.Local().Format(time.TimeOnly)
	}
	return t.Local().Format("2006-01-02 15:04")
}

// coolFamily keeps an account from serving family until then; it goes on
// serving other models.
func (s *Server) coolFamily(a *llmgw.Account, h *health, family string, until time.Time, lastErr string) {
	now := s.cfg.Now()
	if !until.After(now) {
		return
	}
	st := s.pool.setState(a, h, func(st *llmgw.AccountState) {
		st.FamilyCooldowns, st.LastError = st.WithFamilyCooldown(family, until, now), lastErr
	})
	s.rec.RecordState(a.ID, st)
	s.log.Warn("account cooling down for one model family", "account", a.Name, "family", family,
		"until", until.Format(time.RFC3339), "err", lastErr)
}

// minRoom keeps an account whose binding window is full in the draw with a
// small share: the upstream, not our last reading, decides when it is spent.
const minRoom = 0.02

package proxy

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/policy"
)

// This file decides when the proxy tells the operator something (Config.Notify):
// the transitions, never every request. Each check is a comparison of
// values the request path holds anyway, so it costs nothing when nothing
// changes. Rate limiting per episode is the receiver's (the alerts sender's).

// DefaultWindowThreshold is the subscription window utilization past which
// an EventWindow is sent when Config.WindowThreshold is 0.
const DefaultWindowThreshold = 0.9

// Mender is implemented by kinds that can say how an operator mends an
// account of theirs put in error: the command in an EventAccountError's Fix.
type Mender interface {
	Fix(a *llmgw.Account) string
}

// Fix says how to give an api_key account a working key again.
func (APIKeyKind) Fix(a *llmgw.Account) string {
	return fmt.Sprintf(`echo "$NEW_KEY" | llmgw account edit %s --api-key - && llmgw account enable %s`, a.Name, a.Name)
}

// Fix says how to give an oauth account new tokens.
func (OAuthKind) Fix(a *llmgw.Account) string {
	return "llmgw account login --name " + a.Name
}

// accountBroken tells the operator that a was put in error, unless it
// already was.
func (s *Server) accountBroken(a *llmgw.Account, was llmgw.AccountStatus, reason string) {
	if was == llmgw.StatusError || s.cfg.Notify == nil {
		return
	}
	e := llmgw.Event{Kind: llmgw.EventAccountError, Account: a.Name, Reason: reason}
	if m, ok := s.cfg.Kinds[a.Type].(Mender); ok {
		e.Fix = m.Fix(a)
	}
	s.notify(e)
}

// windowsPassed tells the operator about each subscription window of a
// whose utilization passed the threshold, or that became rejected, between
// prev and cur.
func (s *Server) windowsPassed(a *llmgw.Account, prev, cur llmgw.Windows) {
	if s.cfg.Notify == nil {
		return
	}
	s.windowPassed(a, "5h", prev.FiveHour, cur.FiveHour)
	s.windowPassed(a, "7d", prev.SevenDay, cur.SevenDay)
	for _, w := range cur.Scoped {
		var before llmgw.Window
		for _, p := range prev.Scoped {
			if p.Name == w.Name && p.Family == w.Family {
				before = p.Window
				break
			}
		}
		s.windowPassed(a, w.Label(), before, w.Window)
	}
}

func (s *Server) windowPassed(a *llmgw.Account, name string, prev, cur llmgw.Window) {
	th := s.cfg.WindowThreshold
	resets := ""
	if !cur.ResetsAt.IsZero() {
		resets = "; it resets at " + cur.ResetsAt.UTC().Format(time.RFC3339)
	}
	switch {
	case cur.Status == "rejected" && prev.Status != "rejected":
		s.notify(llmgw.Event{Kind: llmgw.EventWindow, Account: a.Name, Scope: name + " rejected",
			Reason: fmt.Sprintf("the %s subscription window is spent: the upstream rejects requests%s", name, resets)})
	case cur.Utilization >= th && prev.Utilization < th && cur.Status != "rejected":
		s.notify(llmgw.Event{Kind: llmgw.EventWindow, Account: a.Name, Scope: name + " threshold",
			Reason: fmt.Sprintf("the %s subscription window is %s used (alert threshold %s)%s",
				name, percent(cur.Utilization), percent(th), resets)})
	}
}

// limitsPassed tells the operator about each limit of key k whose use
// passed 80% or 100% with one request.
func (s *Server) limitsPassed(k string, cs []policy.Crossing) {
	for _, c := range cs {
		l := c.Limit
		e := llmgw.Event{Kind: llmgw.EventKeyLimit, Key: k, Scope: l.Display() + " " + percent(c.Level),
			Reason: fmt.Sprintf("key %s has used %s of its %s limit %s (%s)", k, percent(c.Level), l.Kind,
				l.Display(), l.FormatAmount(c.Used))}
		if c.Level >= 1 {
			e.Reason += ": its requests are refused until the window frees"
			e.Fix = fmt.Sprintf("llmgw key edit --limit %s=AMOUNT/%s %s", l.Kind, l.Window, k)
		}
		s.notify(e)
	}
}

// percent writes a share as a whole percentage: 0.9 is "90%".
func percent(f float64) string { return strconv.FormatFloat(f*100, 'f', 0, 64) + "%" }

// noAccount tells the operator, once per outage, that err (from a
// request's first pick) found every account unavailable: disabled or in
// error. An error about the request itself (a model no account serves)
// is no outage.
func (s *Server) noAccount(err error) {
	var na *errNoAccount
	if s.cfg.Notify == nil || !errors.As(err, &na) || !na.allUnavailable() {
		return
	}
	if s.outage.CompareAndSwap(false, true) {
		s.notify(llmgw.Event{Kind: llmgw.EventNoAccount, Reason: na.Error(),
			Fix: "llmgw account list; then mend or enable an account (llmgw account enable NAME)"})
	}
}

// served ends an outage noAccount announced, once a request is served
// again. One atomic load when there is none.
func (s *Server) served() {
	if s.outage.Load() && s.outage.CompareAndSwap(true, false) {
		s.notify(llmgw.Event{Kind: llmgw.EventRecovered, Reason: "an account serves requests again"})
	}
}

// allUnavailable reports whether every account was excluded for its own
// state (disabled or in error) rather than for the request.
func (e *errNoAccount) allUnavailable() bool {
	if len(e.exclusions) == 0 {
		return false
	}
	for _, x := range e.exclusions {
		if !x.unavailable {
			return false
		}
	}
	return true
}

package proxy

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
)

// unifiedPrefix starts every subscription header, in canonical form.
const unifiedPrefix = "Anthropic-Ratelimit-Unified-"

// ParseWindows reads the subscription windows from the
// anthropic-ratelimit-unified-* headers of a response to a request for a
// model of family: every anthropic-ratelimit-unified-<window>-{status,
// reset,utilization} triple, where a window's name starts with a digit (5h,
// 7d, 7d_oi, 7d-sonnet, …; overage-* and fallback-* are not windows). 5h
// and 7d bind the whole account; every other window binds one model family:
// the one its name says (7d-sonnet binds sonnet), else the request's. The
// reference sheet only says 7d_oi is "seen on Fable-class requests", so a
// window whose name says no family is taken to bind the family of the
// model whose response carried it. The zero Windows (At zero) means the
// response carried none.
func ParseWindows(h http.Header, family string, now time.Time) llmgw.Windows {
	ws := llmgw.Windows{Status: first(h, unifiedPrefix+"Status"), Claim: first(h, unifiedPrefix+"Representative-Claim")}
	var scoped map[string]*llmgw.Window
	for k, vs := range h {
		if len(vs) == 0 || len(k) <= len(unifiedPrefix) || !strings.HasPrefix(k, unifiedPrefix) {
			continue
		}
		rest := strings.ToLower(k[len(unifiedPrefix):])
		if rest[0] < '0' || rest[0] > '9' {
			continue
		}
		i := strings.LastIndexByte(rest, '-')
		if i <= 0 {
			continue
		}
		name, field := rest[:i], rest[i+1:]
		var w *llmgw.Window
		switch name {
		case "5h":
			w = &ws.FiveHour
		case "7d":
			w = &ws.SevenDay
		default:
			if scoped == nil {
				scoped = make(map[string]*llmgw.Window)
			}
			if w = scoped[name]; w == nil {
				w = &llmgw.Window{}
				scoped[name] = w
			}
		}
		switch field {
		case "status":
			w.Status = vs[0]
		case "utilization":
			if u, err := strconv.ParseFloat(vs[0], 64); err == nil {
				w.Utilization = u
			}
		case "reset":
			if t, ok := parseEpoch(vs[0]); ok {
				w.ResetsAt = t
			}
		}
	}
	for name, w := range scoped {
		f := anthropic.FamilyIn(name)
		if f == "" {
			f = family
		}
		ws.Scoped = append(ws.Scoped, llmgw.ScopedWindow{Name: name, Family: f, Window: *w})
	}
	slices.SortFunc(ws.Scoped, compareScoped)
	if ws.Status != "" || ws.FiveHour.Status != "" || ws.SevenDay.Status != "" || len(ws.Scoped) > 0 {
		ws.At = now
	}
	return ws
}

func compareScoped(a, b llmgw.ScopedWindow) int {
	return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Family, b.Family))
}

// first returns a header's first value by canonical key, read straight from
// the map: this runs on every response, and most carry none of these
// headers.
func first(h http.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// mergeWindows returns the windows of a new response, ws, with the scoped
// windows of earlier ones (prev) that it does not report and that have not
// reset at now: a response reports the scoped windows of its own model
// only, and a Sonnet answer must not make the account forget that its
// Fable window is spent.
func mergeWindows(prev, ws llmgw.Windows, now time.Time) llmgw.Windows {
	if len(prev.Scoped) == 0 {
		return ws
	}
	out := ws
	out.Scoped = slices.Clone(ws.Scoped)
	for _, p := range prev.Scoped {
		if !p.ResetsAt.After(now) {
			continue
		}
		if !slices.ContainsFunc(ws.Scoped, func(w llmgw.ScopedWindow) bool { return w.Name == p.Name && w.Family == p.Family }) {
			out.Scoped = append(out.Scoped, p)
		}
	}
	slices.SortFunc(out.Scoped, compareScoped)
	return out
}

// parseEpoch reads unix seconds.
func parseEpoch(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	secs, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(secs, 0), true
}

// nearLimit reports whether windows say the account is close to its limit
// for a request of family: overall, in 5h or 7d, or in a scoped window of
// that family.
func nearLimit(ws llmgw.Windows, family string) bool {
	if ws.Status == "allowed_warning" || ws.FiveHour.Status == "allowed_warning" || ws.SevenDay.Status == "allowed_warning" {
		return true
	}
	for _, w := range ws.Scoped {
		if w.Family == family && w.Status == "allowed_warning" {
			return true
		}
	}
	return false
}

// roomLeft is the share of the binding window still free for a request of
// family, 0..1: the window representative-claim names if it is one that
// binds the family, else the fullest of 5h, 7d and the family's scoped
// windows. A window that has reset counts as empty; an account without
// windows (an API key) has all its room.
func roomLeft(ws llmgw.Windows, family string, now time.Time) float64 {
	used := func(w llmgw.Window) float64 {
		if !w.ResetsAt.IsZero() && !w.ResetsAt.After(now) {
			return 0
		}
		return min(max(w.Utilization, 0), 1)
	}
	switch ws.Claim {
	case "":
	case "five_hour":
		return 1 - used(ws.FiveHour)
	case "seven_day":
		return 1 - used(ws.SevenDay)
	default:
		for _, w := range ws.Scoped {
			if w.Family == family && (ws.Claim == w.Name || ws.Claim == claimName(w.Name)) {
				return 1 - used(w.Window)
			}
		}
	}
	most := max(used(ws.FiveHour), used(ws.SevenDay))
	for _, w := range ws.Scoped {
		if w.Family == family {
			most = max(most, used(w.Window))
		}
	}
	return 1 - most
}

// claimName is how representative-claim would name a window: five_hour for
// 5h, seven_day_sonnet for 7d-sonnet, seven_day_oi for 7d_oi.
func claimName(window string) string {
	r := strings.NewReplacer("-", "_")
	switch {
	case strings.HasPrefix(window, "5h"):
		return "five_hour" + r.Replace(window[2:])
	case strings.HasPrefix(window, "7d"):
		return "seven_day" + r.Replace(window[2:])
	}
	return r.Replace(window)
}

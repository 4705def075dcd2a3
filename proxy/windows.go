package proxy

import (
	"net/http"
	"strconv"
	"time"

	"github.com/llmgw/llmgw"
)

// ParseWindows reads the subscription windows from the
// anthropic-ratelimit-unified-* headers of a response: the 5-hour and 7-day
// windows of a subscription, their status, use and reset. The zero Windows
// (At zero) means the response carried none.
func ParseWindows(h http.Header, now time.Time) llmgw.Windows {
	// Canonical keys, read straight from the map: this runs on every
	// response, and most carry none of these headers.
	const p = "Anthropic-Ratelimit-Unified-"
	get := func(k string) string {
		if v := h[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	ws := llmgw.Windows{Status: get(p + "Status")}
	read := func(util, reset, status string) llmgw.Window {
		w := llmgw.Window{Status: get(status)}
		if u, err := strconv.ParseFloat(get(util), 64); err == nil {
			w.Utilization = u
		}
		if t, ok := parseEpoch(get(reset)); ok {
			w.ResetsAt = t
		}
		return w
	}
	ws.FiveHour = read(p+"5h-Utilization", p+"5h-Reset", p+"5h-Status")
	ws.SevenDay = read(p+"7d-Utilization", p+"7d-Reset", p+"7d-Status")
	if ws.Status != "" || ws.FiveHour.Status != "" || ws.SevenDay.Status != "" {
		ws.At = now
	}
	return ws
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

// nearLimit reports whether windows say the account is close to its limit.
func nearLimit(ws llmgw.Windows) bool {
	return ws.Status == "allowed_warning" || ws.FiveHour.Status == "allowed_warning" || ws.SevenDay.Status == "allowed_warning"
}

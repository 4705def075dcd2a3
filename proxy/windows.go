package proxy

import (
	"net/http"
	"strconv"
	"time"

	"github.com/llmgw/llmgw"
)

// ParseWindows reads the subscription windows from the
// anthropic-ratelimit-unified-* headers of a response (reference 5.4). The
// zero Windows (At zero) means the response carried none.
func ParseWindows(h http.Header, now time.Time) llmgw.Windows {
	const p = "anthropic-ratelimit-unified-"
	ws := llmgw.Windows{Status: h.Get(p + "status")}
	read := func(name string) llmgw.Window {
		w := llmgw.Window{Status: h.Get(p + name + "-status")}
		if u, err := strconv.ParseFloat(h.Get(p+name+"-utilization"), 64); err == nil {
			w.Utilization = u
		}
		if t, ok := parseEpoch(h.Get(p + name + "-reset")); ok {
			w.ResetsAt = t
		}
		return w
	}
	ws.FiveHour = read("5h")
	ws.SevenDay = read("7d")
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

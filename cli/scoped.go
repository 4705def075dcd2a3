package cli

import (
	"strings"
	"time"

	"github.com/llmgw/llmgw"
)

// scopedWindowsText lists an account's model-scoped windows for a table:
// "7d sonnet 80% rejected, resets in 2d3h; 7d_oi fable 12% allowed", or "-".
func scopedWindowsText(ws []llmgw.ScopedWindow, now time.Time) string {
	if len(ws) == 0 {
		return "-"
	}
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = w.Label() + " " + windowText(w.Window, now)
	}
	return strings.Join(parts, "; ")
}

// activeFamilyCooldowns are the family cooldowns not yet over at now.
func activeFamilyCooldowns(s llmgw.AccountState, now time.Time) []llmgw.FamilyCooldown {
	var out []llmgw.FamilyCooldown
	for _, c := range s.FamilyCooldowns {
		if c.Until.After(now) {
			out = append(out, c)
		}
	}
	return out
}

// familyCooldownsText is "fable until 2026-12-09 14:05:00" for each family
// the account does not serve at now, or "" if there is none.
func familyCooldownsText(s llmgw.AccountState, now time.Time) string {
	cs := activeFamilyCooldowns(s, now)
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.Family + " until " + formatTime(c.Until)
	}
	return strings.Join(parts, "; ")
}

// scopedWindowJSON is one model-scoped window in JSON.
type scopedWindowJSON struct {
	Name   string `json:"name"`   // 7d_oi, 7d-sonnet
	Family string `json:"family"` // the model family it binds
	windowJSON
}

// familyCooldownJSON is one family the account does not serve until then.
type familyCooldownJSON struct {
	Family string  `json:"family"`
	Until  *string `json:"until"`
}

func scopedWindowsJSON(ws []llmgw.ScopedWindow) []scopedWindowJSON {
	out := make([]scopedWindowJSON, len(ws))
	for i, w := range ws {
		out[i] = scopedWindowJSON{w.Name, w.Family, windowJSON{w.Status, w.Utilization, jsonTime(w.ResetsAt)}}
	}
	return out
}

func familyCooldownsJSON(s llmgw.AccountState, now time.Time) []familyCooldownJSON {
	cs := activeFamilyCooldowns(s, now)
	out := make([]familyCooldownJSON, len(cs))
	for i, c := range cs {
		out[i] = familyCooldownJSON{c.Family, jsonTime(c.Until)}
	}
	return out
}

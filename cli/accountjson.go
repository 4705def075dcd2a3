package cli

import (
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/policy"
	"github.com/llmgw/llmgw/store"
)

// accountsJSON is what "account list --json" prints for accts.
func accountsJSON(accts []llmgw.Account, stats map[int64]llmgw.AccountStats, uses map[int64][]policy.Use,
	inflight map[int64]int, now time.Time,
) []accountJSON {
	out := make([]accountJSON, len(accts))
	for i := range accts {
		out[i] = newAccountJSON(&accts[i], stats[accts[i].ID], now)
		out[i].LimitUse = limitsJSON(accts[i].Limits, uses[accts[i].ID])
		if inflight != nil {
			n := inflight[accts[i].ID]
			out[i].InFlight = &n
		}
	}
	return out
}

// writeAccountJSON prints one account as "account list --json" prints each:
// "account show NAME --json".
func (e *appEnv) writeAccountJSON(c *urfave.Context, db *store.DB, a *llmgw.Account, stats map[int64]llmgw.AccountStats) error {
	now := e.now()
	accts := []llmgw.Account{*a}
	uses, err := e.accountUses(c.Context, db, accts, now)
	if err != nil {
		return err
	}
	inflight, err := liveInFlight(c.Context, db, now)
	if err != nil {
		return err
	}
	return writeJSON(c.App.Writer, accountsJSON(accts, stats, uses, inflight, now)[0])
}

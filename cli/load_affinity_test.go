//go:build load

package cli

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// TestLoadAffinity is make load-affinity: LLMGW_AFFINITY_SESSIONS (30)
// conversations of LLMGW_AFFINITY_TURNS (12) turns, all at once, through
// llmgw serve over three accounts of a fake upstream with a per-account
// prompt cache, with session affinity on and then off. It prints the cache
// hit ratio (from usage report) and how many conversations each account
// served, and fails when affinity does not reach a hit ratio of 0.9 or lets
// one account take more than half of the conversations.
func TestLoadAffinity(t *testing.T) {
	sessions := envInt("LLMGW_AFFINITY_SESSIONS", 30)
	turns := envInt("LLMGW_AFFINITY_TURNS", 12)
	bin := buildLLMGW(t)
	type result struct {
		ratio    float64
		accounts map[string]int
		took     time.Duration
	}
	run := func(affinity string) result {
		up := upstreamtest.NewServer(t, upstreamtest.PromptCache())
		setup := newLLMGWSetup(t, bin, up.URL, "sk-ant-affinity-a-00000000000000")
		for _, n := range []string{"b", "c"} {
			setup.run(t, "account", "add", "--name", n, "--api-key", "sk-ant-affinity-"+n+"-00000000000000", "--base-url", up.URL)
		}
		cfg := filepath.Join(t.TempDir(), "llmgw.yaml")
		if err := os.WriteFile(cfg, []byte("routing:\n  affinity: "+affinity+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		gw := startProc(t, "llmgw", bin, listeningRE, "--db", setup.db, "--config", cfg, "--log-format", "json", "serve", "--listen", "127.0.0.1:0")
		start := time.Now()
		concurrently(t, sessions, func(i int) error { return converse(http.DefaultClient, gw.URL, setup.key, i, turns) })
		took := time.Since(start)
		if t.Failed() {
			t.FailNow()
		}
		gw.stop(t)
		total := parseReportTotal(t, setup.run(t, "usage", "report", "--since", "1h", "--format", "json"))
		if total.Requests != int64(sessions*turns) {
			t.Errorf("usage rows %d, want %d", total.Requests, sessions*turns)
		}
		res := result{ratio: total.CacheHitRatio, accounts: map[string]int{}, took: took}
		for _, keys := range sessionAccounts(up.Requests()) {
			for k := range keys {
				res.accounts[strings.TrimSuffix(strings.TrimPrefix(k, "sk-ant-affinity-"), "-00000000000000")]++
			}
		}
		return res
	}
	on, off := run("on"), run("off")
	fmt.Printf("\nAffinity run: %d conversations x %d turns over 3 accounts, llmgw serve, fake upstream with a per-account prompt cache\n", sessions, turns)
	fmt.Printf("affinity on:  cache hit ratio %.3f, conversations per account %v, %v\n", on.ratio, on.accounts, on.took.Round(time.Millisecond))
	fmt.Printf("affinity off: cache hit ratio %.3f, conversations per account %v, %v\n", off.ratio, off.accounts, off.took.Round(time.Millisecond))
	most := 0
	for _, n := range on.accounts {
		most = max(most, n)
	}
	fmt.Printf("%s cache hit ratio with affinity %.3f (target ≥ 0.90); without %.3f\n", passMiss(on.ratio >= 0.9), on.ratio, off.ratio)
	fmt.Printf("%s most conversations on one account with affinity: %d of %d (target ≤ half)\n", passMiss(most <= sessions/2), most, sessions)
	if on.ratio < 0.9 || most > sessions/2 {
		t.Error("affinity targets missed")
	}
}

package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// affinityRun is what one run of the session workload measured.
type affinityRun struct {
	hitRatio    float64        // cache-read tokens over all input tokens, cache included
	sessions    map[string]int // distinct sessions each account served
	outcomes    map[string]int // Usage.Affinity
	moves       int            // turns served by another account than the turn before
	maxSessions int
}

// runSessions sends sessions conversations of turns turns each, all
// conversations at once and each conversation's turns in order, through a
// gateway over three accounts on a fake upstream with a per-account prompt
// cache.
func runSessions(t *testing.T, cfg Config, sessions, turns int) affinityRun {
	t.Helper()
	up := upstreamtest.NewServer(t, upstreamtest.PromptCache())
	g := newGateway(t, cfg, account(1, "a", "sk-ant-a", up.URL), account(2, "b", "sk-ant-b", up.URL), account(3, "c", "sk-ant-c", up.URL))
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for turn := range turns {
				req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/messages", bytes.NewReader(upstreamtest.SessionTurn(i, turn)))
				req.Header.Set("x-api-key", testKey)
				req.Header.Set("anthropic-version", "2023-06-01")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err
					return
				}
				body, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("session %d turn %d: %d %s", i, turn, resp.StatusCode, body)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rows := g.rec.wait(t, sessions*turns)
	var read, all int64
	run := affinityRun{sessions: map[string]int{}, outcomes: map[string]int{}}
	for _, u := range rows {
		read += u.Tokens.CacheRead
		all += u.Tokens.Input + u.Tokens.CacheRead + u.Tokens.CacheWrite
		run.outcomes[strings.SplitN(u.Affinity, ":", 2)[0]]++
	}
	run.hitRatio = float64(read) / float64(all)
	sessionRE := regexp.MustCompile(`_session_([0-9]+)-`)
	seen := map[string]bool{}
	lastAccount := map[string]string{}
	for _, r := range up.Requests() {
		s := sessionRE.FindSubmatch(r.Body)[1]
		if k := r.Key + "/" + string(s); !seen[k] {
			seen[k] = true
			run.sessions[r.Key]++
			run.maxSessions = max(run.maxSessions, run.sessions[r.Key])
		}
		if prev, ok := lastAccount[string(s)]; ok && prev != r.Key {
			run.moves++
		}
		lastAccount[string(s)] = r.Key
	}
	return run
}

// Thirty conversations of twelve turns over three accounts: with affinity
// every turn after the first stays on its conversation's account, the cache
// hit ratio is at least 0.9, and no account takes more than half of the
// conversations; without it the same run loses the cache.
func TestAffinity_KeepsConversationsOnTheirCache(t *testing.T) {
	const sessions, turns = 30, 12
	on := runSessions(t, Config{}, sessions, turns)
	off := runSessions(t, Config{NoAffinity: true}, sessions, turns)
	t.Logf("affinity on:  cache hit ratio %.3f, sessions per account %v, turns that moved %d, outcomes %v", on.hitRatio, on.sessions, on.moves, on.outcomes)
	t.Logf("affinity off: cache hit ratio %.3f, sessions per account %v, turns that moved %d", off.hitRatio, off.sessions, off.moves)
	if on.hitRatio < 0.9 {
		t.Errorf("cache hit ratio with affinity %.3f, want at least 0.9", on.hitRatio)
	}
	if on.maxSessions > sessions/2 {
		t.Errorf("one account served %d of %d conversations with affinity, want at most half", on.maxSessions, sessions)
	}
	if on.moves != 0 || on.outcomes[llmgw.AffinityNew] != sessions || on.outcomes[llmgw.AffinityFollowed] != sessions*(turns-1) {
		t.Errorf("with affinity: %d turns moved, outcomes %v; want none moved, %d new and %d followed", on.moves, on.outcomes, sessions, sessions*(turns-1))
	}
	if off.hitRatio > on.hitRatio-0.1 {
		t.Errorf("cache hit ratio without affinity %.3f, with %.3f: the run shows no loss", off.hitRatio, on.hitRatio)
	}
	if n := off.outcomes[""]; n != sessions*turns {
		t.Errorf("with affinity off %d requests were routed by session, want none", sessions*turns-n)
	}
}

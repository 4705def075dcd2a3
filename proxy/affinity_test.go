package proxy

import (
	"time"

	"bytes"
	"fmt"
	"github.com/openai/openai-go/v3"
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

func TestSessionOf(t *testing.T) {
	head := func(h string) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, "/v1/messages", nil)
		if h != "" {
			r.Header.Set("X-Claude-Code-Session-Id", h)
		}
		return r
	}
	body := []byte(`{"model":"m","system":"sys","tools":[{"name":"t"}],"messages":[{"role":"user","content":"first"},{"role":"assistant","content":"a"},{"role":"user","content":"next"}]}`)
	later := []byte(`{"model":"m","system":"sys","tools":[{"name":"t"}],"messages":[{"role":"user","content":"first"},{"role":"assistant","content":"a"},{"role":"user","content":"next"},{"role":"assistant","content":"b"},{"role":"user","content":"more"}]}`)
	other := []byte(`{"model":"m","system":"sys","tools":[{"name":"t"}],"messages":[{"role":"user","content":"another start"}]}`)
	for _, tt := range []struct {
		name string
		r    *http.Request
		x    *Exchange
		body []byte
		want string
	}{
		{"header first", head("abc"), &Exchange{Session: "meta"}, body, "h:abc"},
		{"dialect session", head(""), &Exchange{Session: "meta"}, body, "d:meta"},
		{"no messages", head(""), &Exchange{}, []byte(`{"model":"m"}`), ""},
	} {
		if got := sessionOf(tt.r, tt.x, tt.body); got != tt.want {
			t.Errorf("%s: sessionOf = %q, want %q", tt.name, got, tt.want)
		}
	}
	a, b, c := sessionOf(head(""), &Exchange{}, body), sessionOf(head(""), &Exchange{}, later), sessionOf(head(""), &Exchange{}, other)
	if !strings.HasPrefix(a, "p:") || a != b || a == c {
		t.Errorf("prefix sessions: turn 1 %q, turn 3 %q, another conversation %q; want the first two equal and the third different", a, b, c)
	}
	for in, want := range map[string]string{
		"user_0123_account_aaaa_session_1234-5678":                 "1234-5678",
		`{"device_id":"d","account_uuid":"a","session_id":"s-42"}`: "s-42",
		"plain-user":        "plain-user",
		`{"device_id":"d"}`: `{"device_id":"d"}`,
	} {
		if got := userSession(in); got != want {
			t.Errorf("userSession(%q) = %q, want %q", in, got, want)
		}
	}
	if cacheTTL([]byte(`{"cache_control":{"type":"ephemeral","ttl":"1h"}}`)) != time.Hour || cacheTTL(body) != 5*time.Minute {
		t.Error("cacheTTL does not follow 1-hour cache writes")
	}
}

// The same conversation from two client keys is two sessions, and each
// dialect's own session field is read: OpenAI's prompt_cache_key, else user.
func TestAffinity_SessionsPerKeyAndDialect(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{}, account(1, "a", "sk-ant-a", up.URL), account(2, "b", "sk-ant-b", up.URL))
	const otherKey = "sk-llmgw-other-key-0000000000000000"
	snap := *g.Snapshot()
	snap.Keys = append(snap.Keys, llmgw.ClientKey{ID: 8, Name: "bob", Hash: llmgw.HashKey(otherKey), Prefix: "sk-llmgw-othe"})
	g.SetSnapshot(&snap)
	send := func(key string) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/messages", strings.NewReader(string(upstreamtest.SessionTurn(1, 0))))
		req.Header.Set("x-api-key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return up.Requests()[up.Count()-1].Key
	}
	first, second := send(testKey), send(otherKey)
	if first == second {
		t.Errorf("alice's and bob's copies of one conversation both went to %s: sessions are not namespaced by key (new sessions spread)", first)
	}
	for range 3 {
		if got := send(testKey); got != first {
			t.Errorf("alice's conversation moved from %s to %s", first, got)
		}
	}

	chat := g.chatClient()
	p := chatParams("claude-sonnet-4-5", "hello")
	p.PromptCacheKey = openai.String("conv-7")
	var chatAccounts []string
	for range 3 {
		if _, err := chat.Chat.Completions.New(ctx(t), p); err != nil {
			t.Fatal(err)
		}
		chatAccounts = append(chatAccounts, up.Requests()[up.Count()-1].Key)
	}
	if chatAccounts[0] != chatAccounts[1] || chatAccounts[1] != chatAccounts[2] {
		t.Errorf("a chat conversation with one prompt_cache_key went to %v", chatAccounts)
	}
	rows := g.rec.wait(t, 8)
	if got := rows[len(rows)-1].Affinity; got != llmgw.AffinityFollowed {
		t.Errorf("the third chat turn's affinity = %q, want followed", got)
	}
	rp := respParams("hello")
	rp.User = openai.String("carol")
	var respAccounts []string
	for range 2 {
		if _, err := respClient(g).Responses.New(ctx(t), rp); err != nil {
			t.Fatal(err)
		}
		respAccounts = append(respAccounts, up.Requests()[up.Count()-1].Key)
	}
	if respAccounts[0] != respAccounts[1] {
		t.Errorf("a Responses conversation with one user went to %v", respAccounts)
	}
}

// A binding never makes a request fail that another account could serve:
// a bound account that is disabled, at its concurrency cap, failing, or far
// slower than the others gives its session up, and the log says why.
func TestAffinity_GivesUpWhenTheAccountCannotServe(t *testing.T) {
	hold := make(chan struct{})
	up := upstreamtest.NewServer(t)
	a, b := account(1, "a", "sk-ant-a", up.URL), account(2, "b", "sk-ant-b", up.URL)
	a.MaxConcurrency = 1
	g := newGateway(t, Config{}, a, b)
	send := func(session int, header string) (string, error) {
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/messages", bytes.NewReader(upstreamtest.SessionTurn(session, 0)))
		req.Header.Set("x-api-key", testKey)
		if header != "" {
			req.Header.Set("X-Claude-Code-Session-Id", header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			return "", fmt.Errorf("%d %s", resp.StatusCode, body)
		}
		return up.Requests()[up.Count()-1].Key, nil
	}
	last := func() string { t.Helper(); rows := g.rec.wait(t, g.rec.count()); return rows[len(rows)-1].Affinity }

	// Session s1 starts on a (the oldest account, nothing bound yet).
	if acct, err := send(1, "s1"); err != nil || acct != "sk-ant-a" {
		t.Fatalf("first turn on %s (%v), want a", acct, err)
	}
	// A turn held on a fills its one slot; the next turn goes to b and the
	// session moves there.
	up.Script("sk-ant-a", upstreamtest.OK(upstreamtest.Hold(hold)))
	held := make(chan error, 1)
	go func() { _, err := send(1, "s1"); held <- err }()
	if err := up.AwaitHeld(ctx(t), 1); err != nil {
		t.Fatal(err)
	}
	acct, err := send(1, "s1")
	if err != nil || acct != "sk-ant-b" {
		t.Fatalf("turn with a at its cap on %s (%v), want b", acct, err)
	}
	if got := last(); !strings.HasPrefix(got, "moved: its account was at its concurrency limit") {
		t.Errorf("affinity = %q", got)
	}
	close(hold)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	// b fails: the turn fails over to a, and the session follows a from then on.
	up.Script("sk-ant-b", upstreamtest.Fail(529))
	if acct, err := send(1, "s1"); err != nil || acct != "sk-ant-a" {
		t.Fatalf("turn with b failing on %s (%v), want a", acct, err)
	}
	if got := last(); !strings.HasPrefix(got, "moved: its account failed") {
		t.Errorf("affinity = %q", got)
	}
	if acct, err := send(1, "s1"); err != nil || acct != "sk-ant-a" {
		t.Fatalf("the next turn on %s (%v), want a", acct, err)
	}
	// a disabled: the session moves to b.
	snap := *g.Snapshot()
	snap.Accounts = []llmgw.Account{a, b}
	snap.Accounts[0].State = llmgw.AccountState{Status: llmgw.StatusDisabled, At: time.Now()}
	g.SetSnapshot(&snap)
	if acct, err := send(1, "s1"); err != nil || acct != "sk-ant-b" {
		t.Fatalf("turn with a disabled on %s (%v), want b", acct, err)
	}
	if got := last(); !strings.HasPrefix(got, "moved: its account could not serve it") {
		t.Errorf("affinity = %q", got)
	}
}

// A bound account far slower to first byte than the others gives its
// sessions up.
func TestSessionPick_SlowAccount(t *testing.T) {
	fast, slow := &health{latencyMs: 200}, &health{latencyMs: 5000}
	a, b := account(1, "a", "", ""), account(2, "b", "", "")
	cands := []candidate{{a: &b, h: fast}, {a: &a, h: slow}}
	sp := &sessionPick{table: newBindings(), bound: 1, prefer: 1}
	got := sp.arrange(cands, false)
	if got[0].a.ID != 2 || !strings.Contains(sp.why, "far slower") {
		t.Errorf("slow bound account: first %d, why %q", got[0].a.ID, sp.why)
	}
	slow.latencyMs = 500
	if got := sp.arrange(cands, false); got[0].a.ID != 1 {
		t.Errorf("a bound account 300 ms slower was given up (first %d, why %q)", got[0].a.ID, sp.why)
	}
}

func TestFirstElement(t *testing.T) {
	for in, want := range map[string]string{
		`[{"role":"user","content":"a, [b] {c}"},{"x":1}]`: `{"role":"user","content":"a, [b] {c}"}`,
		` [ "s\"],x" , 2 ]`: `"s\"],x"`,
		`[[1,2],[3]]`:       `[1,2]`,
		`[42]`:              `42`,
		`[]`:                ``,
		``:                  ``,
	} {
		if got := string(firstElement([]byte(in))); got != want {
			t.Errorf("firstElement(%s) = %q, want %q", in, got, want)
		}
	}
}

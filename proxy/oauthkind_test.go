package proxy

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

func TestInjectIdentity(t *testing.T) {
	id := `{"type":"text","text":"You are Claude Code, Anthropic's official CLI for Claude."}`
	for _, tt := range []struct{ name, in, want string }{
		{"absent", `{"model":"m","messages":[]}`, `{"system":[` + id + `],"model":"m","messages":[]}`},
		{"absent empty object", `{}`, `{"system":[` + id + `]}`},
		{"null", `{"system":null,"model":"m"}`, `{"system":[` + id + `],"model":"m"}`},
		{"string", `{"model":"m","system":"Be brief.","x":1}`,
			`{"model":"m","system":[` + id + `,{"type":"text","text":"Be brief."}],"x":1}`},
		{"array", `{"system":[{"type":"text","text":"A","cache_control":{"type":"ephemeral"}}]}`,
			`{"system":[` + id + `,{"type":"text","text":"A","cache_control":{"type":"ephemeral"}}]}`},
		{"empty array", `{"system":[]}`, `{"system":[` + id + `]}`},
		{"already first", `{"system":[` + id + `,{"type":"text","text":"B"}]}`, `{"system":[` + id + `,{"type":"text","text":"B"}]}`},
		{"already second (Claude Code's own shape)",
			`{"system":[{"type":"text","text":"x-anthropic-billing-header: cc_version=2"},` + id + `]}`,
			`{"system":[{"type":"text","text":"x-anthropic-billing-header: cc_version=2"},` + id + `]}`},
		{"agent sdk variant", `{"system":"You are a Claude agent, built on Anthropic's Claude Agent SDK. More."}`,
			`{"system":"You are a Claude agent, built on Anthropic's Claude Agent SDK. More."}`},
		{"html and unicode kept", `{"system":"<b>héllo</b> \u2028","messages":[]}`,
			`{"system":[` + id + `,{"type":"text","text":"<b>héllo</b> \u2028"}],"messages":[]}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := InjectIdentity([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Errorf("result is not valid JSON")
			}
		})
	}
	if _, err := InjectIdentity([]byte(`[1]`)); err == nil {
		t.Error("a non-object body was accepted")
	}
}

func TestInjectIdentity_KeepsBreakpoints(t *testing.T) {
	in := `{"system":[{"type":"text","text":"a","cache_control":{"type":"ephemeral"}},{"type":"text","text":"b","cache_control":{"type":"ephemeral","ttl":"1h"}}],` +
		`"messages":[{"role":"user","content":[{"type":"text","text":"q","cache_control":{"type":"ephemeral"}},{"type":"text","text":"r","cache_control":{"type":"ephemeral"}}]}]}`
	got, err := InjectIdentity([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(got), "cache_control"); n != 4 {
		t.Errorf("cache_control marks = %d, want the client's 4 and no more", n)
	}
	if !strings.HasSuffix(string(got), in[len(`{"system":[`):]) {
		t.Errorf("client blocks were changed: %s", got)
	}
}

func TestMergeBetas(t *testing.T) {
	got := MergeBetas(OAuthBeta, "interleaved-thinking-2025-05-14, oauth-2025-04-20", "context-1m-2025-08-07,interleaved-thinking-2025-05-14")
	want := "oauth-2025-04-20,interleaved-thinking-2025-05-14,context-1m-2025-08-07"
	if got != want {
		t.Errorf("MergeBetas = %q, want %q", got, want)
	}
}

// fakeTokens is a TokenSource whose refresh swaps in the next token.
type fakeTokens struct {
	mu        sync.Mutex
	token     string
	next      string
	refreshes int
	fail      error
}

func (f *fakeTokens) AccessToken(context.Context, *llmgw.Account) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.token, nil
}

func (f *fakeTokens) Refresh(_ context.Context, _ *llmgw.Account, rejected string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	if rejected == f.token {
		f.refreshes++
		f.token = f.next
	}
	return nil
}

func oauthAccount(id int64, name, baseURL string) llmgw.Account {
	a := account(id, name, "", baseURL)
	a.Type = llmgw.AccountOAuth
	return a
}

func oauthGateway(t *testing.T, tokens TokenSource, accts ...llmgw.Account) *gateway {
	return newGateway(t, Config{Kinds: map[llmgw.AccountType]Kind{
		llmgw.AccountAPIKey: APIKeyKind{}, llmgw.AccountOAuth: OAuthKind{Tokens: tokens},
	}}, accts...)
}

func TestOAuth_RequestShape(t *testing.T) {
	up := upstreamtest.NewServer(t)
	tokens := &fakeTokens{token: "sk-ant-oat01-first"}
	g := oauthGateway(t, tokens, oauthAccount(1, "max", up.URL))
	p := userMsg("hi")
	p.System = []anthropic.TextBlockParam{{Text: "Be terse."}}
	if _, err := g.client().Messages.New(ctx(t), p, optHeader("anthropic-beta", "interleaved-thinking-2025-05-14")); err != nil {
		t.Fatal(err)
	}
	r := up.Requests()[0]
	if got := r.Header.Get("authorization"); got != "Bearer sk-ant-oat01-first" || r.Header.Get("x-api-key") != "" {
		t.Errorf("auth headers: authorization %q, x-api-key %q", got, r.Header.Get("x-api-key"))
	}
	if got := r.Header.Get("anthropic-beta"); got != "oauth-2025-04-20,interleaved-thinking-2025-05-14" {
		t.Errorf("anthropic-beta = %q", got)
	}
	var body struct {
		System []struct{ Type, Text string }
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	want := []struct{ Type, Text string }{{"text", ClaudeCodeIdentity}, {"text", "Be terse."}}
	if diff := cmp.Diff(want, body.System); diff != "" {
		t.Errorf("system (-want +got):\n%s", diff)
	}
}

func TestOAuth_APIKeyAccountsUntouched(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := oauthGateway(t, &fakeTokens{token: "t"}, account(1, "key", "sk-ant-key", up.URL))
	if _, err := g.client().Messages.New(ctx(t), userMsg("hi")); err != nil {
		t.Fatal(err)
	}
	r := up.Requests()[0]
	if strings.Contains(string(r.Body), "Claude Code") || strings.Contains(r.Header.Get("anthropic-beta"), OAuthBeta) {
		t.Errorf("an API-key request got OAuth shaping: beta %q body %s", r.Header.Get("anthropic-beta"), r.Body)
	}
}

func TestOAuth_ExpiredTokenRefreshedAndRetried(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.Script("sk-ant-oat01-old",
		upstreamtest.Fail(401, upstreamtest.Message("OAuth token has expired. Please obtain a new token or refresh your existing token."))))
	tokens := &fakeTokens{token: "sk-ant-oat01-old", next: "sk-ant-oat01-new"}
	g := oauthGateway(t, tokens, oauthAccount(1, "max", up.URL))
	msg, err := g.client().Messages.New(ctx(t), userMsg("hi"))
	if err != nil {
		t.Fatalf("client saw %v, want the retried answer", err)
	}
	if len(msg.Content) == 0 {
		t.Fatal("empty answer")
	}
	reqs := up.Requests()
	if len(reqs) != 2 || reqs[1].Key != "sk-ant-oat01-new" || tokens.refreshes != 1 {
		t.Errorf("upstream saw %d requests (second with %q), refreshes %d; want 2, the new token, 1", len(reqs), reqs[len(reqs)-1].Key, tokens.refreshes)
	}
	if st := g.AccountState(&g.Snapshot().Accounts[0]); st.Status != llmgw.StatusActive {
		t.Errorf("state = %+v, want active", st)
	}
}

func TestOAuth_RefreshFailsBreaksAccount(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.Script("sk-ant-oat01-old",
		upstreamtest.Fail(401, upstreamtest.Message("OAuth token has expired."))))
	tokens := &fakeTokens{token: "sk-ant-oat01-old", fail: errRefresh}
	g := oauthGateway(t, tokens, oauthAccount(1, "max", up.URL), account(2, "key", "sk-ant-key", up.URL))
	if _, err := g.client().Messages.New(ctx(t), userMsg("hi")); err != nil {
		t.Fatalf("want failover to the API-key account, got %v", err)
	}
	if st := g.AccountState(&g.Snapshot().Accounts[0]); st.Status != llmgw.StatusError || !strings.Contains(st.Reason, "expired") {
		t.Errorf("state = %+v, want error naming the rejection", st)
	}
}

var errRefresh = &llmgw.UpstreamError{Status: 400, Type: "invalid_grant", Message: "refresh token rejected"}

func TestOAuth_RejectedWindowCoolsUntilReset(t *testing.T) {
	reset := time.Now().Add(3 * time.Hour).Truncate(time.Second)
	up := upstreamtest.NewServer(t, upstreamtest.Script("sk-ant-oat01-a",
		upstreamtest.Fail(429, upstreamtest.UnifiedWindow("5h", "rejected", reset))))
	g := oauthGateway(t, &fakeTokens{token: "sk-ant-oat01-a"}, oauthAccount(1, "max", up.URL), account(2, "key", "sk-ant-key", up.URL))
	if _, err := g.client().Messages.New(ctx(t), userMsg("hi")); err != nil {
		t.Fatal(err)
	}
	st := g.AccountState(&g.Snapshot().Accounts[0])
	if d := st.CooldownUntil.Sub(reset); d < -time.Second || d > time.Second {
		t.Errorf("cooldown until %v, want the 5h reset %v", st.CooldownUntil, reset)
	}
	ws := g.rec.windows[1]
	if ws.FiveHour.Status != "rejected" || !ws.FiveHour.ResetsAt.Equal(reset) {
		t.Errorf("windows recorded = %+v", ws)
	}
}

func TestOAuth_Bare429FailsOverAndCoolsBriefly(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.Script("sk-ant-oat01-a",
		upstreamtest.Fail(429, upstreamtest.Message("Extra usage is required for long context requests."))))
	g := oauthGateway(t, &fakeTokens{token: "sk-ant-oat01-a"}, oauthAccount(1, "max", up.URL), account(2, "key", "sk-ant-key", up.URL))
	start := time.Now()
	if _, err := g.client().Messages.New(ctx(t), userMsg("hi")); err != nil {
		t.Fatal(err)
	}
	st := g.AccountState(&g.Snapshot().Accounts[0])
	if st.Status != llmgw.StatusActive {
		t.Errorf("status = %s, want active", st.Status)
	}
	if d := st.CooldownUntil.Sub(start); d < bareRateLimitCool-time.Second || d > bareRateLimitCool+time.Second {
		t.Errorf("cooldown until %v, want about %s from now: a bare 429 cools briefly", st.CooldownUntil, bareRateLimitCool)
	}
	want := "429 without rate-limit headers: probably extra usage or a spend cap, not the subscription window"
	if !strings.HasPrefix(st.LastError, want) || !strings.Contains(st.LastError, "Extra usage is required") {
		t.Errorf("last error = %q, want it to begin %q and keep the upstream's words", st.LastError, want)
	}
}

func TestOAuth_RevokedBreaksAccount(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.Script("sk-ant-oat01-a",
		upstreamtest.Fail(403, upstreamtest.Message("OAuth token has been revoked. Please obtain a new token."))))
	g := oauthGateway(t, &fakeTokens{token: "sk-ant-oat01-a"}, oauthAccount(1, "max", up.URL), account(2, "key", "sk-ant-key", up.URL))
	if _, err := g.client().Messages.New(ctx(t), userMsg("hi")); err != nil {
		t.Fatal(err)
	}
	st := g.AccountState(&g.Snapshot().Accounts[0])
	if st.Status != llmgw.StatusError || !strings.Contains(st.Reason, "revoked") || !strings.Contains(st.Reason, "llmgw account login --name max") {
		t.Errorf("state = %+v", st)
	}
}

func TestOAuth_WarningRanksLast(t *testing.T) {
	reset := time.Now().Add(time.Hour)
	up := upstreamtest.NewServer(t,
		upstreamtest.Script("sk-ant-oat01-a", upstreamtest.OK(upstreamtest.UnifiedWindow("5h", "allowed_warning", reset))))
	a := oauthAccount(1, "a", up.URL)
	b := oauthAccount(2, "b", up.URL)
	g := oauthGateway(t, &tokensByAccount{}, a, b)
	c := g.client()
	// The first request goes to a (oldest, no history) and learns it is near
	// its limit; from then on b serves.
	for range 10 {
		if _, err := c.Messages.New(ctx(t), userMsg("hi")); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range up.Requests()[1:] {
		if r.Key != "sk-ant-oat01-b" {
			t.Errorf("request %d went to %q, want b while a is near its limit", i+1, r.Key)
		}
	}
}

// tokensByAccount gives each account the token sk-ant-oat01-<name>.
type tokensByAccount struct{}

func (tokensByAccount) AccessToken(_ context.Context, a *llmgw.Account) (string, error) {
	return "sk-ant-oat01-" + a.Name, nil
}
func (tokensByAccount) Refresh(context.Context, *llmgw.Account, string) error { return nil }

func TestServer_OwnerKeyBinding(t *testing.T) {
	up := upstreamtest.NewServer(t)
	bound := account(1, "alice-max", "sk-ant-alice", up.URL)
	bound.OwnerKeys = []string{"alice"}
	shared := account(2, "shared", "sk-ant-shared", up.URL)
	shared.Priority = 1
	g := newGateway(t, Config{}, bound, shared)
	// testKey is named alice: her account first.
	if _, err := g.client().Messages.New(ctx(t), userMsg("hi")); err != nil {
		t.Fatal(err)
	}
	snap := *g.Snapshot()
	const bobKey = "sk-llmgw-bob-0123456789abcdef0123456789abcdef"
	snap.Keys = append(snap.Keys, llmgw.ClientKey{ID: 8, Name: "bob", Hash: llmgw.HashKey(bobKey)})
	g.SetSnapshot(&snap)
	if _, err := g.client(optKey(bobKey)).Messages.New(ctx(t), userMsg("hi")); err != nil {
		t.Fatal(err)
	}
	reqs := up.Requests()
	if reqs[0].Key != "sk-ant-alice" || reqs[1].Key != "sk-ant-shared" {
		t.Errorf("alice went to %q, bob to %q; want her own account and the shared one", reqs[0].Key, reqs[1].Key)
	}
}

// TestServer_CountTokensForwardedForEveryKind checks count_tokens: Claude
// Code calls it constantly, with ?beta=true; it must be forwarded (never a
// 404), on API-key and OAuth accounts alike, with the OAuth beta flag for
// the latter and no usage row.
func TestServer_CountTokensForwardedForEveryKind(t *testing.T) {
	for _, tt := range []struct {
		name string
		acct func(url string) llmgw.Account
	}{
		{"api key", func(url string) llmgw.Account { return account(1, "key", "sk-ant-key", url) }},
		{"oauth", func(url string) llmgw.Account { return oauthAccount(1, "max", url) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			up := upstreamtest.NewServer(t)
			g := oauthGateway(t, tokensByAccount{}, tt.acct(up.URL))
			req, _ := http.NewRequest("POST", g.URL+"/v1/messages/count_tokens?beta=true", strings.NewReader(
				`{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"count me"}]}`))
			req.Header.Set("authorization", "Bearer "+testKey)
			req.Header.Set("anthropic-version", "2023-06-01")
			req.Header.Set("anthropic-beta", "token-counting-2024-11-01")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var out struct {
				InputTokens int `json:"input_tokens"`
			}
			err = json.NewDecoder(res.Body).Decode(&out)
			res.Body.Close()
			if res.StatusCode != 200 || err != nil || out.InputTokens <= 0 {
				t.Fatalf("status %d, %v, %+v", res.StatusCode, err, out)
			}
			r := up.Requests()[0]
			if r.Path != "/v1/messages/count_tokens" || r.RawQuery != "beta=true" {
				t.Errorf("upstream got %s?%s", r.Path, r.RawQuery)
			}
			if tt.name == "oauth" && !strings.Contains(r.Header.Get("anthropic-beta"), OAuthBeta) {
				t.Errorf("beta = %q", r.Header.Get("anthropic-beta"))
			}
			if g.rec.count() != 0 {
				t.Error("count_tokens left a usage row")
			}
		})
	}
}

package proxy

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

func TestParseWindows_Scoped(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	h := http.Header{}
	set := func(k, v string) { h.Set("anthropic-ratelimit-unified-"+k, v) }
	set("status", "rejected")
	set("representative-claim", "seven_day_oi")
	set("5h-status", "allowed")
	set("5h-utilization", "0.25")
	set("5h-reset", "1800003600")
	set("7d-status", "allowed")
	set("7d-utilization", "0.5")
	set("7d_oi-status", "rejected")
	set("7d_oi-utilization", "1")
	set("7d_oi-reset", "1800100000")
	set("7d-sonnet-status", "allowed_warning")
	set("7d-sonnet-utilization", "0.8")
	set("overage-status", "rejected") // extra usage, not a window
	set("overage-utilization", "1")
	set("fallback-percentage", "0.5")
	got := ParseWindows(h, "fable", now)
	want := llmgw.Windows{
		Status:   "rejected",
		Claim:    "seven_day_oi",
		FiveHour: llmgw.Window{Status: "allowed", Utilization: 0.25, ResetsAt: time.Unix(1800003600, 0)},
		SevenDay: llmgw.Window{Status: "allowed", Utilization: 0.5},
		Scoped: []llmgw.ScopedWindow{
			{Name: "7d-sonnet", Family: "sonnet", Window: llmgw.Window{Status: "allowed_warning", Utilization: 0.8}},
			{Name: "7d_oi", Family: "fable", Window: llmgw.Window{Status: "rejected", Utilization: 1, ResetsAt: time.Unix(1800100000, 0)}},
		},
		At: now,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("windows (-want +got):\n%s", diff)
	}
	if !nearLimit(got, "sonnet") || nearLimit(llmgw.Windows{Scoped: got.Scoped}, "opus") {
		t.Error("nearLimit must see a warning in the family's own scoped window, and only there")
	}
	if got := ParseWindows(http.Header{"Content-Type": {"application/json"}}, "opus", now); !got.At.IsZero() {
		t.Errorf("windows of a response without any = %+v, want zero", got)
	}
}

func TestMergeWindows_KeepsOtherFamilies(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	prev := llmgw.Windows{Scoped: []llmgw.ScopedWindow{
		{Name: "7d_oi", Family: "fable", Window: llmgw.Window{Status: "rejected", ResetsAt: now.Add(time.Hour)}},
		{Name: "7d-opus", Family: "opus", Window: llmgw.Window{Status: "rejected", ResetsAt: now.Add(-time.Second)}}, // reset since
		{Name: "7d-sonnet", Family: "sonnet", Window: llmgw.Window{Status: "allowed", Utilization: 0.9, ResetsAt: now.Add(time.Hour)}},
	}}
	ws := llmgw.Windows{Status: "allowed", At: now, Scoped: []llmgw.ScopedWindow{
		{Name: "7d-sonnet", Family: "sonnet", Window: llmgw.Window{Status: "allowed", Utilization: 0.95, ResetsAt: now.Add(time.Hour)}},
	}}
	got := mergeWindows(prev, ws, now)
	want := []llmgw.ScopedWindow{ws.Scoped[0], prev.Scoped[0]}
	if diff := cmp.Diff(want, got.Scoped); diff != "" {
		t.Errorf("scoped windows (-want +got):\n%s", diff)
	}
}

func TestRoomLeft(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	later := now.Add(time.Hour)
	ws := llmgw.Windows{
		FiveHour: llmgw.Window{Utilization: 0.3, ResetsAt: later},
		SevenDay: llmgw.Window{Utilization: 0.6, ResetsAt: later},
		Scoped:   []llmgw.ScopedWindow{{Name: "7d-sonnet", Family: "sonnet", Window: llmgw.Window{Utilization: 0.9, ResetsAt: later}}},
	}
	for _, tt := range []struct {
		name, claim, family string
		want                float64
	}{
		{"fullest window for the family", "", "sonnet", 0.1},
		{"scoped windows of other families do not bind", "", "opus", 0.4},
		{"the claimed window binds", "five_hour", "sonnet", 0.7},
		{"a claimed scoped window by its claim name", "seven_day_sonnet", "sonnet", 0.1},
		{"a claimed window of another family does not bind", "seven_day_sonnet", "opus", 0.4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := ws
			w.Claim = tt.claim
			if got := roomLeft(w, tt.family, now); got < tt.want-1e-9 || got > tt.want+1e-9 {
				t.Errorf("roomLeft = %v, want %v", got, tt.want)
			}
		})
	}
	reset := llmgw.Windows{FiveHour: llmgw.Window{Utilization: 1, ResetsAt: now.Add(-time.Minute)}}
	if got := roomLeft(reset, "opus", now); got != 1 {
		t.Errorf("roomLeft of a window that has reset = %v, want 1", got)
	}
}

func TestClassify_429(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	reset := now.Add(48 * time.Hour)
	epoch := func(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	const p = "anthropic-ratelimit-unified-"
	for _, tt := range []struct {
		name   string
		kind   Kind
		header http.Header
		want   Effect
	}{
		{"oauth 5h rejected: the account", OAuthKind{}, hdr(p+"status", "rejected", p+"5h-status", "rejected", p+"5h-reset", epoch(reset)),
			Effect{CoolUntil: reset}},
		{"oauth 7d_oi rejected: the family", OAuthKind{}, hdr(p+"status", "rejected", p+"reset", epoch(reset), p+"7d_oi-status", "rejected", p+"7d_oi-reset", epoch(reset)),
			Effect{CoolUntil: reset, ModelScoped: true}},
		{"oauth 7d-sonnet rejected without its reset: the unified reset", OAuthKind{}, hdr(p+"status", "rejected", p+"reset", epoch(reset), p+"7d-sonnet-status", "rejected"),
			Effect{CoolUntil: reset, ModelScoped: true}},
		{"oauth scoped and 7d rejected: the account", OAuthKind{}, hdr(p+"7d-status", "rejected", p+"7d-reset", epoch(reset), p+"7d-opus-status", "rejected", p+"7d-opus-reset", epoch(now.Add(time.Hour))),
			Effect{CoolUntil: reset}},
		{"oauth overall rejected only: the account", OAuthKind{}, hdr(p+"status", "rejected", p+"reset", epoch(reset)),
			Effect{CoolUntil: reset}},
		{"oauth bare", OAuthKind{}, http.Header{}, Effect{CoolUntil: now.Add(bareRateLimitCool), Note: bareRateLimitNote}},
		{"oauth windows allowed: this request only", OAuthKind{}, hdr(p+"status", "allowed", p+"5h-status", "allowed"), Effect{}},
		{"api key bare", APIKeyKind{}, http.Header{}, Effect{CoolUntil: now.Add(bareRateLimitCool), Note: bareRateLimitNote}},
		{"api key limit header without reset: as before", APIKeyKind{}, hdr("anthropic-ratelimit-tokens-remaining", "0"),
			Effect{CoolUntil: now.Add(defaultRateLimitWait)}},
		{"api key retry-after", APIKeyKind{}, hdr("retry-after", "7"), Effect{CoolUntil: now.Add(7 * time.Second)}},
		{"api key reset", APIKeyKind{}, hdr("anthropic-ratelimit-requests-remaining", "0", "anthropic-ratelimit-requests-reset", now.Add(time.Minute).Format(time.RFC3339)),
			Effect{CoolUntil: now.Add(time.Minute)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := &http.Response{StatusCode: 429, Header: tt.header}
			v := tt.kind.Classify(&llmgw.Account{Name: "a"}, res, []byte(`{"type":"error","error":{"type":"rate_limit_error","message":"x"}}`), now)
			if v.Next != TryNext {
				t.Errorf("Next = %v, want TryNext", v.Next)
			}
			if diff := cmp.Diff(tt.want, v.Account); diff != "" {
				t.Errorf("effect (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOAuth_ScopedRejectionCoolsOnlyThatFamily(t *testing.T) {
	for _, tt := range []struct {
		window, rejected, other, family string
	}{
		{"7d_oi", "claude-fable-5-1", "claude-opus-5-5", "fable"},
		{"7d-sonnet", "claude-sonnet-4-5", "claude-haiku-4-5", "sonnet"},
	} {
		t.Run(tt.window, func(t *testing.T) {
			reset := time.Now().Add(50 * time.Hour).Truncate(time.Second)
			up := upstreamtest.NewServer(t, upstreamtest.Script("sk-ant-oat01-a",
				upstreamtest.Fail(429, upstreamtest.UnifiedWindow(tt.window, "rejected", reset))))
			max := oauthAccount(1, "max", up.URL)
			spare := account(2, "spare", "sk-ant-spare", up.URL)
			spare.Priority = 1 // used only when max cannot serve
			g := oauthGateway(t, &fakeTokens{token: "sk-ant-oat01-a"}, max, spare)
			c := g.client()
			ask := func(model string) string {
				t.Helper()
				p := userMsg("hi")
				p.Model = model
				if _, err := c.Messages.New(ctx(t), p); err != nil {
					t.Fatalf("%s: %v", model, err)
				}
				reqs := up.Requests()
				return reqs[len(reqs)-1].Key
			}
			if got := ask(tt.rejected); got != "sk-ant-spare" {
				t.Fatalf("the refused request ended on %q, want a failover to spare", got)
			}
			st := g.AccountState(&g.Snapshot().Accounts[0])
			if !st.CooldownUntil.IsZero() {
				t.Errorf("account cooldown until %v: a model-scoped 429 must not cool the whole account", st.CooldownUntil)
			}
			if got := st.CoolingFor(tt.family); !got.Equal(reset) {
				t.Errorf("cooling for %s until %v, want the window's reset %v", tt.family, got, reset)
			}
			if rec, _ := g.rec.state(1); rec.CoolingFor(tt.family).IsZero() {
				t.Errorf("recorded state %+v lacks the family cooldown: it would not survive a restart", rec)
			}
			if got := ask(tt.other); got != "sk-ant-oat01-a" {
				t.Errorf("a %s request went to %q, want max, which still serves other families", tt.other, got)
			}
			n := len(up.Requests())
			if got := ask(tt.rejected); got != "sk-ant-spare" || len(up.Requests()) != n+1 {
				t.Errorf("a second %s request went to %q after %d upstream requests, want spare directly", tt.rejected, got, len(up.Requests())-n)
			}
			ws := g.rec.windows[1]
			if len(ws.Scoped) != 1 || ws.Scoped[0].Family != tt.family || ws.Scoped[0].Status != "rejected" {
				t.Errorf("recorded windows = %+v, want the rejected %s window kept across the %s answer", ws, tt.window, tt.other)
			}
		})
	}
}

func TestPool_FamilyCooldownExcludesOnlyThatFamily(t *testing.T) {
	p := testPool(7)
	p.familyOf = func(m string) string { return strings.Split(m, "-")[1] }
	as := accts(1)
	until := time.Now().Add(2 * time.Hour)
	as[0].State.FamilyCooldowns = []llmgw.FamilyCooldown{{Family: "sonnet", Until: until}}
	c, err := p.pick(context.Background(), as, "claude-opus-5", nil, nil)
	if err != nil {
		t.Fatalf("an opus request: %v, want the account", err)
	}
	p.release(c.h)
	_, err = p.pick(context.Background(), as, "claude-sonnet-5", nil, map[int64]bool{1: true})
	if err == nil || !strings.Contains(err.Error(), "cooling for sonnet until "+until.Local().Format(time.TimeOnly)) {
		t.Errorf("a sonnet request after the account failed: %v, want it excluded as cooling for sonnet", err)
	}
	two := accts(1, 1)
	two[0].State.FamilyCooldowns = as[0].State.FamilyCooldowns
	for range 20 {
		c, err := p.pick(context.Background(), two, "claude-sonnet-5", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.a.ID != 2 {
			t.Fatalf("a sonnet request went to %s, which is cooling for sonnet", c.a.Name)
		}
		p.release(c.h)
	}
}

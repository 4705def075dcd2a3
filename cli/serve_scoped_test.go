package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llmgw/llmgw/oauth/oauthtest"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// TestServe_ModelScoped429 runs llmgw serve with an OAuth account whose
// Fable window (7d_oi) is spent, and an API-key account of lower priority:
// the Fable 429 fails over and cools the OAuth account for Fable only, the
// account goes on serving Opus, account list shows the scoped window and
// the family cooldown, and after a restart Fable goes straight to the
// API-key account while Opus stays on the subscription.
func TestServe_ModelScoped429(t *testing.T) {
	o := oauthtest.NewServer(t)
	reset := time.Now().Add(50 * time.Hour).Truncate(time.Second)
	epoch := strconv.FormatInt(reset.Unix(), 10)
	up := upstreamtest.NewServer(t, upstreamtest.Reply(func(r *upstreamtest.Request) upstreamtest.Response {
		if o.AccessTokenValid(r.Key) && strings.HasPrefix(r.Model, "claude-fable") {
			const p = "Anthropic-Ratelimit-Unified-"
			return upstreamtest.Response{
				Error: &upstreamtest.Error{Status: 429, Type: "rate_limit_error", Message: "This request would exceed your weekly limit."},
				Header: http.Header{
					p + "Status": {"rejected"}, p + "Reset": {epoch}, p + "Representative-Claim": {"seven_day_oi"},
					p + "5h-Status": {"allowed"}, p + "5h-Utilization": {"0.1"},
					p + "7d_oi-Status": {"rejected"}, p + "7d_oi-Utilization": {"1"}, p + "7d_oi-Reset": {epoch},
				},
			}
		}
		return upstreamtest.Response{}
	}))
	cfg := o.Config()
	config := writeFile(t, "llmgw.yaml", fmt.Sprintf("oauth:\n  authorize_url: %s\n  token_url: %s\n  client_id: %s\n  redirect_uri: %s\n",
		cfg.AuthorizeURL, cfg.TokenURL, cfg.ClientID, cfg.RedirectURI))
	db := newDB(t)
	access, refresh, _ := o.Mint()
	accounts := writeFile(t, "accounts.yaml", fmt.Sprintf(`accounts:
  - name: max
    type: oauth
    access_token: %s
    refresh_token: %s
    expires_at: %s
    base_url: %s
  - name: spare
    type: api_key
    api_key: sk-ant-api03-spare
    priority: 1
    base_url: %s
`, access, refresh, time.Now().Add(time.Hour).UTC().Format(time.RFC3339), up.URL, up.URL))
	mustRun(t, "--db", db, "--config", config, "account", "import", accounts)
	key := createKey(t, db, "alice")

	ask := func(srv *server, model string) string {
		t.Helper()
		p := hello()
		p.Model = model
		if _, err := sdk(srv.URL, key).Messages.New(context.Background(), p); err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		reqs := up.Requests()
		return reqs[len(reqs)-1].Key
	}
	srv := startServe(t, db, "--config", config)
	if got := ask(srv, "claude-fable-5-1"); got != "sk-ant-api03-spare" {
		t.Errorf("the refused Fable request ended on %q, want spare", redactKey(got))
	}
	if got := ask(srv, "claude-opus-5-5"); got != access {
		t.Errorf("an Opus request went to %q, want max, which a Fable limit does not stop", redactKey(got))
	}
	if err := srv.stopAndWait(t); err != nil {
		t.Fatal(err)
	}

	out, _ := mustRun(t, "--db", db, "account", "list")
	for _, want := range []string{"SCOPED WINDOWS", "7d_oi fable 100% rejected, resets in 2d", "fable until " + reset.Local().Format("2006-01-02 15:04:05")} {
		if !strings.Contains(out, want) {
			t.Errorf("account list lacks %q:\n%s", want, out)
		}
	}
	out, _ = mustRun(t, "--db", db, "account", "show", "max")
	if !strings.Contains(out, "7d_oi fable window:") || !strings.Contains(out, "binding window:") {
		t.Errorf("account show lacks the scoped window:\n%s", out)
	}
	out, _ = mustRun(t, "--db", db, "account", "list", "--json")
	var list []struct {
		Name            string
		CooldownUntil   *string                                 `json:"cooldown_until"`
		ScopedWindows   []struct{ Name, Family, Status string } `json:"scoped_windows"`
		FamilyCooldowns []struct{ Family string }               `json:"family_cooldowns"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	if m := list[0]; m.Name != "max" || m.CooldownUntil != nil || len(m.ScopedWindows) != 1 || m.ScopedWindows[0].Name != "7d_oi" ||
		m.ScopedWindows[0].Family != "fable" || m.ScopedWindows[0].Status != "rejected" ||
		len(m.FamilyCooldowns) != 1 || m.FamilyCooldowns[0].Family != "fable" {
		t.Errorf("account list --json: %+v, want max not cooling, with the rejected 7d_oi window and a Fable cooldown", m)
	}

	// A restart keeps the Fable cooldown: Fable goes straight to spare.
	srv = startServe(t, db, "--config", config)
	before := up.Count()
	if got := ask(srv, "claude-fable-5-1"); got != "sk-ant-api03-spare" || up.Count() != before+1 {
		t.Errorf("after a restart a Fable request went to %q in %d upstream requests, want spare directly", redactKey(got), up.Count()-before)
	}
	if got := ask(srv, "claude-opus-5-5"); got != access {
		t.Errorf("after a restart an Opus request went to %q, want max", redactKey(got))
	}
}

// redactKey shortens a credential for a test message.
func redactKey(k string) string {
	if len(k) > 16 {
		return k[:16] + "…"
	}
	return k
}

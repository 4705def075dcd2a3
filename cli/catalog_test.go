package cli

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// catalogConfig adds claude-custom-1 and changes Claude Sonnet 4.5's cap
// and price.
const catalogConfig = `models:
  catalog:
    - id: claude-custom-1
      display_name: Custom One
      created: 2026-12-01
      status: active
      context_window: 400000
      max_output_tokens: 20000
      default_max_tokens: 5000
      thinking: adaptive-only
      aliases: [custom-latest]
      prices: {input: 1, output: 2}
    - id: claude-sonnet-4-5
      max_output_tokens: 16000
      prices: {input: 4, output: 16, cache_read: 0.5}
`

func TestLoadConfig_Catalog(t *testing.T) {
	t.Parallel()
	p := writeFile(t, "llmgw.yaml", catalogConfig+"prices:\n  \"claude-haiku-4-5*\": {input: 7, output: 9}\n")
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Catalog()
	if c != cfg.Catalog() {
		t.Error("Catalog() built a new catalog on the second call")
	}

	m, ok := c.Lookup("custom-latest")
	if !ok {
		t.Fatal("the configured model is not in the catalog under its alias")
	}
	want := anthropic.Model{ID: "claude-custom-1", Aliases: []string{"custom-latest"}, DisplayName: "Custom One",
		Created: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Status: anthropic.StatusActive,
		ContextWindow: 400000, MaxOutputTokens: 20000, DefaultMaxTokens: 5000, Thinking: anthropic.ThinkingAdaptiveOnly,
		Pricing: anthropic.Pricing{Price: anthropic.DerivePrice(1, 2)}}
	if !modelsEqual(m, want) {
		t.Errorf("configured model = %+v\nwant %+v", m, want)
	}

	// The changed model keeps what the entry does not set; its default
	// follows the new cap; its price is the entry's, one flat rate.
	s, _ := c.Lookup("claude-sonnet-4-5-20250929")
	builtin, _ := anthropic.Lookup("claude-sonnet-4-5")
	if s.DisplayName != builtin.DisplayName || s.Thinking != builtin.Thinking || !s.Created.Equal(builtin.Created) || s.ContextWindow != builtin.ContextWindow {
		t.Errorf("changed model lost built-in fields: %+v", s)
	}
	if s.MaxOutputTokens != 16000 || s.DefaultMaxTokens != 16000 {
		t.Errorf("changed model: cap %d, default %d; want 16000, 16000", s.MaxOutputTokens, s.DefaultMaxTokens)
	}
	want4 := anthropic.Price{Input: 4, Output: 16, CacheRead: 0.5, CacheWrite5m: 5, CacheWrite1h: 8}
	if p, _ := c.PriceOf("claude-sonnet-4-5"); p.Price != want4 || p.LongPromptTokens != 0 {
		t.Errorf("changed model price = %+v, want %+v flat", p, want4)
	}
	// The prices patterns still apply, over the models.
	if p, _ := c.PriceOf("claude-haiku-4-5"); p.Input != 7 {
		t.Errorf("haiku price = %+v, want the prices pattern's", p)
	}
	// The built-in catalog is untouched.
	if b, _ := anthropic.Lookup("claude-sonnet-4-5"); b.MaxOutputTokens != 64000 {
		t.Errorf("built-in catalog changed: %+v", b)
	}
}

func modelsEqual(a, b anthropic.Model) bool {
	return a.ID == b.ID && a.DatedID == b.DatedID && strings.Join(a.Aliases, ",") == strings.Join(b.Aliases, ",") &&
		a.DisplayName == b.DisplayName && a.Created.Equal(b.Created) && a.Status == b.Status &&
		a.ContextWindow == b.ContextWindow && a.MaxOutputTokens == b.MaxOutputTokens &&
		a.DefaultMaxTokens == b.DefaultMaxTokens && a.Thinking == b.Thinking && a.Pricing == b.Pricing
}

func TestLoadConfig_CatalogErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, want string
	}{
		{"no id", "models:\n  catalog:\n    - display_name: X\n", "line 3: a models.catalog entry needs an id"},
		{"unknown field", "models:\n  catalog:\n    - id: m\n      max_tokens: 5\n", `line 4: unknown field "max_tokens"`},
		{"bad status", "models:\n  catalog:\n    - id: m\n      status: gone\n", `line 4: unknown model status "gone"`},
		{"bad thinking", "models:\n  catalog:\n    - id: m\n      thinking: sometimes\n", `line 4: unknown thinking mode "sometimes" (want one of unknown, none, manual, adaptive, adaptive-only, always-on)`},
		{"bad date", "models:\n  catalog:\n    - id: m\n      created: yesterday\n", "line 4: created must be a date"},
		{"negative limit", "models:\n  catalog:\n    - id: m\n      context_window: -1\n", "line 4: context_window must be a whole number"},
		{"not a number", "models:\n  catalog:\n    - id: m\n      max_output_tokens: lots\n", "line 4: max_output_tokens must be a whole number"},
		{"bad price", "models:\n  catalog:\n    - id: m\n      prices: {input: 1}\n", "line 4: a price needs input and output"},
		{"bad aliases", "models:\n  catalog:\n    - id: m\n      aliases: n\n", "line 4: aliases must be a list"},
		{"default above cap", "models:\n  catalog:\n    - id: a\n    - id: m\n      max_output_tokens: 1000\n      default_max_tokens: 2000\n",
			"models.catalog: line 4: model m: default max tokens 2000 is above the cap 1000"},
		{"alias of another model", "models:\n  catalog:\n    - id: m\n      aliases: [claude-opus-4-5]\n", "models.catalog: line 3: model m: name \"claude-opus-4-5\" is already model claude-opus-4-5"},
		{"id twice", "models:\n  catalog:\n    - id: m\n    - id: m\n", "models.catalog: line 4: model m repeats line 3"},
		{"not a list", "models:\n  catalog: {id: m}\n", "line 2:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := writeFile(t, "llmgw.yaml", tt.body)
			_, err := LoadConfig(p)
			wantErr(t, err, p, tt.want)
		})
	}
}

// TestServe_ConfiguredCatalog runs serve with a config that adds a model
// and changes one: both model lists show them, converted requests get their
// limits, and usage report prices them.
func TestServe_ConfiguredCatalog(t *testing.T) {
	up := upstreamtest.NewServer(t)
	db := newDB(t)
	cfg := writeFile(t, "llmgw.yaml", catalogConfig)
	key := createKey(t, db, "alice")
	srv := startServe(t, db, "--config", cfg)

	call := func(method, path, body string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(context.Background(), method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, b
	}

	// No account yet: /v1/models is the catalog's list, newest first.
	status, body := call("GET", "/v1/models", "")
	var list struct {
		Data []struct {
			ID          string `json:"id"`
			DisplayName string `json:"display_name"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &list); err != nil || status != 200 || len(list.Data) == 0 {
		t.Fatalf("/v1/models: %d %s", status, body)
	}
	if d := list.Data[0]; d.ID != "claude-custom-1" || d.DisplayName != "Custom One" {
		t.Errorf("/v1/models starts with %+v, want the configured model", d)
	}
	var gem struct {
		Models []struct {
			Name             string `json:"name"`
			DisplayName      string `json:"displayName"`
			InputTokenLimit  int    `json:"inputTokenLimit"`
			OutputTokenLimit int    `json:"outputTokenLimit"`
		} `json:"models"`
	}
	status, body = call("GET", "/v1beta/models", "")
	if err := json.Unmarshal(body, &gem); err != nil || status != 200 {
		t.Fatalf("/v1beta/models: %d %s", status, body)
	}
	limits := map[string][2]int{}
	for _, m := range gem.Models {
		limits[m.Name] = [2]int{m.InputTokenLimit, m.OutputTokenLimit}
	}
	if limits["models/claude-custom-1"] != [2]int{400000, 20000} || limits["models/claude-sonnet-4-5-20250929"] != [2]int{200000, 16000} {
		t.Errorf("/v1beta/models limits = %v", limits)
	}

	// Converted requests get the configured default and cap.
	mustRun(t, "--db", db, "account", "add", "--name", "a", "--api-key", "sk-ant-aaaaaaaaaaaaaaaa", "--base-url", up.URL)
	chat := func(body string) {
		t.Helper()
		err := eventually(func() bool {
			status, _ := call("POST", "/v1/chat/completions", body)
			return status == 200
		})
		if err != nil {
			t.Fatalf("chat %s never succeeded", body)
		}
	}
	chat(`{"model":"custom-latest","messages":[{"role":"user","content":"hi"}]}`)
	chat(`{"model":"claude-sonnet-4-5","max_tokens":64000,"messages":[{"role":"user","content":"hi"}]}`)
	reqs := up.Requests()
	var sent []struct {
		Model     string `json:"model"`
		MaxTokens int    `json:"max_tokens"`
	}
	for _, r := range reqs {
		if r.Path != "/v1/messages" {
			continue
		}
		var b struct {
			Model     string `json:"model"`
			MaxTokens int    `json:"max_tokens"`
		}
		if err := json.Unmarshal(r.Body, &b); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, b)
	}
	if len(sent) != 2 || sent[0].MaxTokens != 5000 || sent[1].MaxTokens != 16000 {
		t.Errorf("upstream got %+v; want max_tokens 5000 (the default) and 16000 (the cap)", sent)
	}

	// usage report prices both at the configured rates.
	if err := srv.stopAndWait(t); err != nil {
		t.Fatal(err)
	}
	rep, stderr := reportJSONOf(t, "--db", db, "--config", cfg, "usage", "report", "--since", "1h", "--by", "model")
	if strings.Contains(stderr, "no price") {
		t.Errorf("stderr = %q, want every model priced", stderr)
	}
	prices := map[string]anthropic.Price{
		"custom-latest":     anthropic.DerivePrice(1, 2),
		"claude-sonnet-4-5": {Input: 4, Output: 16, CacheRead: 0.5, CacheWrite5m: 5, CacheWrite1h: 8},
	}
	if len(rep.Rows) != 2 {
		t.Fatalf("report rows = %+v, want one per model", rep.Rows)
	}
	for _, r := range rep.Rows {
		p, ok := prices[r.Group]
		if !ok {
			t.Errorf("unexpected row %+v", r)
			continue
		}
		want := p.Cost(anthropic.Tokens{Input: r.InputTokens, Output: r.OutputTokens, CacheRead: r.CacheReadTokens,
			CacheWrite5m: r.CacheWrite5mToken, CacheWrite1h: r.CacheWrite1hToken})
		if want == 0 || math.Abs(r.CostUSD-want) > 1e-9 {
			t.Errorf("%s: cost %v, want %v", r.Group, r.CostUSD, want)
		}
	}
}

package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// testCatalog is the built-in catalog with a model added and one changed,
// as a config file's models.catalog makes it.
func testCatalog(t *testing.T) *anthropic.Catalog {
	t.Helper()
	sonnet, _ := anthropic.Lookup("claude-sonnet-4-5")
	sonnet.MaxOutputTokens, sonnet.DefaultMaxTokens = 16000, 12000
	c, err := anthropic.Builtin().With(
		anthropic.Model{ID: "claude-custom-1", DisplayName: "Custom One", Created: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
			ContextWindow: 400_000, MaxOutputTokens: 20_000, DefaultMaxTokens: 5000, Thinking: anthropic.ThinkingAdaptiveOnly},
		sonnet,
	)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("x-api-key", testKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, res.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", url, err, body)
	}
}

// TestServer_ConfiguredCatalog: the catalog in Config is what the model
// lists show and what converted requests are fitted to.
func TestServer_ConfiguredCatalog(t *testing.T) {
	cat := testCatalog(t)

	// No account answers /v1/models: the catalog's list, newest first.
	g := newGateway(t, Config{Catalog: cat}, account(1, "a", "sk-ant-a", deadURL(t)))
	var list struct {
		Data []struct {
			ID          string `json:"id"`
			DisplayName string `json:"display_name"`
		} `json:"data"`
	}
	getJSON(t, g.URL+"/v1/models", &list)
	if len(list.Data) == 0 || list.Data[0].ID != "claude-custom-1" || list.Data[0].DisplayName != "Custom One" {
		t.Errorf("/v1/models starts with %+v, want the configured model", list.Data[:min(1, len(list.Data))])
	}
	var gem struct {
		Models []struct {
			Name             string `json:"name"`
			DisplayName      string `json:"displayName"`
			InputTokenLimit  int    `json:"inputTokenLimit"`
			OutputTokenLimit int    `json:"outputTokenLimit"`
		} `json:"models"`
	}
	getJSON(t, g.URL+"/v1beta/models", &gem)
	got := map[string][2]int{}
	for _, m := range gem.Models {
		got[m.Name] = [2]int{m.InputTokenLimit, m.OutputTokenLimit}
	}
	if got["models/claude-custom-1"] != [2]int{400_000, 20_000} || got["models/claude-sonnet-4-5-20250929"] != [2]int{200_000, 16_000} {
		t.Errorf("/v1beta/models limits = %v", got)
	}

	// Converted requests get the configured default, cap and thinking.
	up := upstreamtest.NewServer(t)
	g = newGateway(t, Config{Catalog: cat}, account(1, "a", "sk-ant-a", up.URL))
	if _, err := g.chatClient().Chat.Completions.New(ctx(t), chatParams("claude-custom-1", "hi")); err != nil {
		t.Fatal(err)
	}
	p := chatParams("claude-sonnet-4-5", "hi")
	p.MaxTokens = openai.Int(64000)
	if _, err := g.chatClient().Chat.Completions.New(ctx(t), p); err != nil {
		t.Fatal(err)
	}
	p = chatParams("claude-custom-1", "hi")
	p.ReasoningEffort = "high"
	if _, err := g.chatClient().Chat.Completions.New(ctx(t), p); err != nil {
		t.Fatal(err)
	}
	if r := chatUpstreamRequest(t, up, 0); r.MaxTokens != 5000 {
		t.Errorf("configured model: max_tokens = %d, want its default 5000", r.MaxTokens)
	}
	if r := chatUpstreamRequest(t, up, 1); r.MaxTokens != 16000 {
		t.Errorf("changed model: max_tokens = %d, want its configured cap 16000", r.MaxTokens)
	}
	r := chatUpstreamRequest(t, up, 2)
	if r.Thinking == nil || r.Thinking.Type != "adaptive" || r.Thinking.BudgetTokens != 0 || r.OutputConfig == nil || r.OutputConfig.Effort != "high" {
		t.Errorf("adaptive-only model: thinking %+v, output_config %+v; want adaptive at effort high", r.Thinking, r.OutputConfig)
	}
}

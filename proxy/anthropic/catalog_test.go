package anthropic

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBuiltin_Consistent(t *testing.T) {
	t.Parallel()
	c, err := NewCatalog(builtinModels()...)
	if err != nil {
		t.Fatalf("NewCatalog(builtin) = %v", err)
	}
	for _, m := range c.models {
		if m.DisplayName == "" || m.Created.IsZero() || m.Thinking == ThinkingUnknown {
			t.Errorf("%s: display name %q, created %v, thinking %v; want all set", m.ID, m.DisplayName, m.Created, m.Thinking)
		}
		if m.ContextWindow <= 0 || m.MaxOutputTokens <= 0 || m.DefaultMaxTokens <= 0 || m.DefaultMaxTokens > m.MaxOutputTokens {
			t.Errorf("%s: context %d, cap %d, default %d; want positive, default within cap", m.ID, m.ContextWindow, m.MaxOutputTokens, m.DefaultMaxTokens)
		}
		if m.Pricing == (Pricing{}) || m.Pricing.Input <= 0 || m.Pricing.Output <= m.Pricing.Input || m.Pricing.CacheRead >= m.Pricing.Input {
			t.Errorf("%s: pricing %+v does not look like a Claude price", m.ID, m.Pricing)
		}
		if p := m.Pricing; p.LongPromptTokens > 0 && (p.LongPrompt.Input <= p.Input || p.LongPrompt.Output <= p.Output) {
			t.Errorf("%s: long-prompt rates %+v are not above %+v", m.ID, p.LongPrompt, p.Price)
		}
		if !strings.HasPrefix(m.ID, "claude-") {
			t.Errorf("%s: id does not start with claude-", m.ID)
		}
	}
}

func TestCatalog_Lookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want string // ID, "" for not found
	}{
		{"claude-opus-4-5", "claude-opus-4-5"},
		{"claude-opus-4-5-20251101", "claude-opus-4-5"},
		{"claude-opus-4-6", "claude-opus-4-6"},
		{"claude-opus-4", "claude-opus-4-0"},
		{"claude-opus-4-0", "claude-opus-4-0"},
		{"claude-opus-4-20250514", "claude-opus-4-0"},
		{"claude-3-7-sonnet-latest", "claude-3-7-sonnet"},
		{"claude-3-5-haiku", "claude-3-5-haiku"},
		{"claude-3-5-sonnet-20240620", "claude-3-5-sonnet"},
		// Variants of a known name.
		{"claude-opus-4-5-20991231", "claude-opus-4-5"},      // a later snapshot
		{"claude-opus-4-5@20251101", "claude-opus-4-5"},      // Vertex
		{"claude-opus-4-5-20251101-v1:0", "claude-opus-4-5"}, // Bedrock
		{"claude-sonnet-4-5[1m]", "claude-sonnet-4-5"},       // Claude Code's 1M marker
		{"claude-sonnet-5-5-20261001", "claude-sonnet-5-5"},
		{"claude-sonnet-5-latest", "claude-sonnet-5"},
		// Other models, never a neighbour's limits or price.
		{"claude-sonnet-5-7", ""},
		{"claude-fable-5-2", ""},
		{"claude-opus-4-10", ""},
		{"claude-opus-4-5-2025", ""},
		{"claude-opus-6", ""},
		{"claude-opus-40", ""},
		{"gpt-4o", ""},
		{"", ""},
		{"-", ""},
	}
	for _, tt := range tests {
		m, ok := Lookup(tt.name)
		if got := m.ID; got != tt.want || ok != (tt.want != "") {
			t.Errorf("Lookup(%q) = %q, %v; want %q", tt.name, got, ok, tt.want)
		}
	}
}

func TestCatalog_LookupReturnsACopy(t *testing.T) {
	t.Parallel()
	m, _ := Lookup("claude-opus-4")
	m.Aliases[0] = "changed"
	if m2, _ := Lookup("claude-opus-4"); m2.Aliases[0] != "claude-opus-4" {
		t.Errorf("Aliases = %v after a caller changed its copy", m2.Aliases)
	}
}

func TestModels_NewestFirst(t *testing.T) {
	t.Parallel()
	list := Models()
	var ids []string
	for i, m := range list {
		ids = append(ids, m.SnapshotID())
		if m.Status == StatusRetired || m.Restricted {
			t.Errorf("%s: listed but %v, restricted %v", m.ID, m.Status, m.Restricted)
		}
		if i > 0 && m.Created.After(list[i-1].Created) {
			t.Errorf("%s listed after the older %s", m.ID, list[i-1].ID)
		}
	}
	want := []string{
		"claude-haiku-5-5", "claude-sonnet-5-5", "claude-opus-5-5", "claude-fable-5-1", "claude-opus-5",
		"claude-sonnet-5", "claude-fable-5", "claude-opus-4-8", "claude-opus-4-7", "claude-sonnet-4-6",
		"claude-opus-4-6", "claude-opus-4-5-20251101", "claude-haiku-4-5-20251001", "claude-sonnet-4-5-20250929",
		"claude-sonnet-4-20250514",
	}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("listed ids (-want +got):\n%s", diff)
	}
}

func TestBuiltin_Prices(t *testing.T) {
	t.Parallel()
	// The pricing page's figures, USD per million tokens.
	tests := []struct {
		model string
		want  Price
	}{
		{"claude-opus-5-5", Price{Input: 4, Output: 20, CacheRead: 0.2, CacheWrite5m: 5, CacheWrite1h: 8}},
		{"claude-fable-5-1", Price{Input: 10, Output: 50, CacheRead: 0.25, CacheWrite5m: 12.5, CacheWrite1h: 20}},
		{"claude-fable-5", Price{Input: 10, Output: 50, CacheRead: 1, CacheWrite5m: 12.5, CacheWrite1h: 20}},
		{"claude-opus-4-8", Price{Input: 5, Output: 25, CacheRead: 0.5, CacheWrite5m: 6.25, CacheWrite1h: 10}},
		{"claude-sonnet-5", Price{Input: 2, Output: 10, CacheRead: 0.2, CacheWrite5m: 2.5, CacheWrite1h: 4}},
		{"claude-sonnet-5-5", Price{Input: 2, Output: 10, CacheRead: 0.1, CacheWrite5m: 2.5, CacheWrite1h: 4}},
		{"claude-sonnet-4-6", Price{Input: 3, Output: 15, CacheRead: 0.3, CacheWrite5m: 3.75, CacheWrite1h: 6}},
		{"claude-haiku-4-5-20251001", Price{Input: 1, Output: 5, CacheRead: 0.1, CacheWrite5m: 1.25, CacheWrite1h: 2}},
		{"claude-opus-4-1-20250805", Price{Input: 15, Output: 75, CacheRead: 1.5, CacheWrite5m: 18.75, CacheWrite1h: 30}},
		{"claude-3-5-haiku-20241022", Price{Input: 0.8, Output: 4, CacheRead: 0.08, CacheWrite5m: 1, CacheWrite1h: 1.6}},
		{"claude-3-haiku-20240307", Price{Input: 0.25, Output: 1.25, CacheRead: 0.03, CacheWrite5m: 0.3, CacheWrite1h: 0.5}},
	}
	for _, tt := range tests {
		p, ok := Builtin().PriceOf(tt.model)
		if diff := cmp.Diff(tt.want, p.Price); !ok || diff != "" {
			t.Errorf("PriceOf(%q) ok %v (-want +got):\n%s", tt.model, ok, diff)
		}
	}
	if p, ok := Builtin().PriceOf("claude-opus-6"); ok {
		t.Errorf("PriceOf(claude-opus-6) = %+v, want no price for an unknown model", p)
	}
}

func TestPricing_LongPrompt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		model string
		tok   Tokens
		want  float64 // USD
	}{
		{"haiku 5.5 short prompt", "claude-haiku-5-5", Tokens{Input: 100_000, Output: 1_000_000}, 0.01 + 0.5},
		{"haiku 5.5 long prompt: every token at the higher rate", "claude-haiku-5-5",
			Tokens{Input: 1000, CacheRead: 100_000, Output: 1_000_000}, 0.0005 + 0.005 + 2.5},
		{"sonnet 4.5 at the threshold", "claude-sonnet-4-5-20250929", Tokens{Input: 200_000}, 0.6},
		{"sonnet 4.5 past it", "claude-sonnet-4-5-20250929", Tokens{Input: 200_000, CacheWrite1h: 1000, Output: 1000},
			1.2 + 0.012 + 0.0225},
		{"sonnet 4.6 has no long-prompt rate", "claude-sonnet-4-6", Tokens{Input: 400_000}, 1.2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cost, ok := Builtin().ScaledCost(tt.model, tt.tok)
			if got := cost / 1e6; !ok || !near(got, tt.want) {
				t.Errorf("cost = %v, %v; want %v", got, ok, tt.want)
			}
		})
	}
}

func near(a, b float64) bool { return a-b < 1e-12 && b-a < 1e-12 }

func TestPrice_CostAndBatch(t *testing.T) {
	t.Parallel()
	p := DerivePrice(5, 25)
	if got, want := p.Cost(Tokens{Input: 1000, Output: 2000, CacheRead: 10000, CacheWrite5m: 4000}), 0.085; got != want {
		t.Errorf("Cost = %v, want %v", got, want)
	}
	if diff := cmp.Diff(Price{Input: 2.5, Output: 12.5, CacheRead: 0.25, CacheWrite5m: 3.125, CacheWrite1h: 5}, p.Batch()); diff != "" {
		t.Errorf("Batch (-want +got):\n%s", diff)
	}
	m, _ := Lookup("claude-haiku-5-5")
	if b := m.Pricing.Batch(); b.Input != 0.05 || b.LongPromptTokens != 100_000 || b.LongPrompt.Output != 1.25 {
		t.Errorf("Haiku 5.5 batch pricing = %+v", b)
	}
}

func TestCatalog_Limits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		model           string
		defMax, maxCap  int
		budget, wantBud int
		wantMax         int
	}{
		{"claude-opus-4-6", 32000, 128_000, 100_000, 100_000, 104_096},
		{"claude-sonnet-5-5", 32000, 128_000, 0, 0, 0},
		{"claude-opus-4-5-20251101", 32000, 64_000, 64_000, 62_976, 64_000},
		{"claude-3-opus-20240229", 4096, 4096, 24576, 3072, 4096},
		{"claude-unknown-7", 8192, 0, 8192, 8192, 12288},
	}
	for _, tt := range tests {
		if got := DefaultMaxTokens(tt.model); got != tt.defMax {
			t.Errorf("DefaultMaxTokens(%s) = %d, want %d", tt.model, got, tt.defMax)
		}
		if got := MaxTokensCap(tt.model); got != tt.maxCap {
			t.Errorf("MaxTokensCap(%s) = %d, want %d", tt.model, got, tt.maxCap)
		}
		if b, m := FitThinking(tt.model, tt.budget, 0); b != tt.wantBud || m != tt.wantMax {
			t.Errorf("FitThinking(%s, %d, 0) = %d, %d; want %d, %d", tt.model, tt.budget, b, m, tt.wantBud, tt.wantMax)
		}
	}
	if got := ClampMaxTokens("claude-next", 1_000_000); got != 1_000_000 {
		t.Errorf("ClampMaxTokens(unknown) = %d, want it unchanged", got)
	}
}

func TestCatalog_With(t *testing.T) {
	t.Parallel()
	base, _ := Lookup("claude-sonnet-4-6")
	base.MaxOutputTokens, base.DefaultMaxTokens = 64_000, 16_000 // a partial override
	c, err := Builtin().With(
		base,
		Model{ID: "my-fine-tune", Aliases: []string{"ft"}, MaxOutputTokens: 10_000, Pricing: Pricing{Price: DerivePrice(1, 2)}},
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.MaxTokensCap("claude-sonnet-4-6"); got != 64_000 {
		t.Errorf("overridden cap = %d, want 64000", got)
	}
	if got := c.DefaultMaxTokens("ft"); got != 10_000 {
		t.Errorf("added model's default = %d, want its cap 10000", got)
	}
	if p, ok := c.PriceOf("my-fine-tune"); !ok || p.Input != 1 {
		t.Errorf("added model's price = %+v, %v", p, ok)
	}
	if got := Builtin().MaxTokensCap("claude-sonnet-4-6"); got != 128_000 {
		t.Errorf("the built-in catalog changed: cap %d", got)
	}
	if _, ok := c.PriceOf("unpriced"); ok {
		t.Error("PriceOf(unknown) ok")
	}
	if c2, _ := c.With(Model{ID: "unpriced"}); c2 != nil {
		if _, ok := c2.PriceOf("unpriced"); ok {
			t.Error("a model without a price is priced")
		}
	}

	for name, m := range map[string]Model{
		"two entries":     {ID: "claude-opus-4-5", Aliases: []string{"claude-opus-4-6"}},
		"default > cap":   {ID: "x", MaxOutputTokens: 100, DefaultMaxTokens: 200},
		"no id":           {DisplayName: "nameless"},
		"negative price":  {ID: "x", Pricing: Pricing{Price: Price{Input: -1}}},
		"threshold alone": {ID: "x", Pricing: Pricing{Price: Price{Input: 1}, LongPromptTokens: 10}},
		"spaced name":     {ID: "x y"},
	} {
		if _, err := Builtin().With(m); err == nil {
			t.Errorf("%s: With succeeded, want an error", name)
		}
	}
	if _, err := NewCatalog(Model{ID: "a"}, Model{ID: "b", Aliases: []string{"a"}}); err == nil {
		t.Error("NewCatalog with a name twice succeeded")
	}
}

func TestCatalog_WithPrices(t *testing.T) {
	t.Parallel()
	c := Builtin().WithPrices(map[string]Price{
		"claude-sonnet-*":    DerivePrice(4, 20),
		"claude-sonnet-4-5*": DerivePrice(6, 30), // longer pattern wins
		"my-fine-tune":       DerivePrice(1, 1),
		"[":                  DerivePrice(9, 9), // malformed: matches nothing
	})
	tests := []struct {
		model string
		input float64
	}{
		{"claude-sonnet-4-5-20250929", 6},
		{"claude-sonnet-5-5", 4},
		{"my-fine-tune", 1},
		{"claude-opus-4-5", 5},
	}
	for _, tt := range tests {
		if p, _ := c.PriceOf(tt.model); p.Input != tt.input {
			t.Errorf("PriceOf(%q).Input = %v, want %v", tt.model, p.Input, tt.input)
		}
	}
	// A pattern price is flat: no long-prompt tier.
	if p, _ := c.PriceOf("claude-sonnet-4-5"); p.LongPromptTokens != 0 {
		t.Errorf("pattern price kept a long-prompt tier: %+v", p)
	}
}

func TestParseNames(t *testing.T) {
	t.Parallel()
	for m := ThinkingUnknown; m <= ThinkingAlwaysOn; m++ {
		if got, err := ParseThinkingMode(m.String()); err != nil || got != m {
			t.Errorf("ParseThinkingMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	for s := StatusActive; s <= StatusRetired; s++ {
		if got, err := ParseStatus(s.String()); err != nil || got != s {
			t.Errorf("ParseStatus(%q) = %v, %v", s.String(), got, err)
		}
	}
	if _, err := ParseThinkingMode("sometimes"); err == nil {
		t.Error("ParseThinkingMode(sometimes) succeeded")
	}
}

package cli

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/policy"
)

func TestPriceTable_Builtins(t *testing.T) {
	t.Parallel()
	table := newPriceTable(nil)
	tests := []struct {
		model         string
		input, output float64
	}{
		{"claude-opus-4-7", 5, 25},
		{"claude-opus-4-6", 5, 25},
		{"claude-opus-4-5-20251101", 5, 25},
		{"claude-opus-5", 5, 25}, // future Opus: the generic fallback
		{"claude-opus-4-1-20250805", 15, 75},
		{"claude-opus-4-1", 15, 75},
		{"claude-opus-4-20250514", 15, 75},
		{"claude-opus-4-0", 15, 75},
		{"claude-3-opus-20240229", 15, 75},
		{"claude-sonnet-4-5-20250929", 3, 15},
		{"claude-sonnet-4-20250514", 3, 15},
		{"claude-3-7-sonnet-20250219", 3, 15},
		{"claude-3-5-sonnet-20241022", 3, 15},
		{"claude-haiku-4-5-20251001", 1, 5},
		{"claude-3-5-haiku-20241022", 0.8, 4},
		{"claude-3-haiku-20240307", 0.25, 1.25},
		{"claude-opus-5-5", 4, 20},
		{"claude-fable-5-1", 10, 50},
		{"claude-sonnet-5-5", 2, 10},
		{"claude-haiku-5-5", 0.1, 0.5}, // its short-prompt rates
	}
	for _, tt := range tests {
		p, ok := table.lookup(tt.model)
		if !ok || p.Input != tt.input || p.Output != tt.output {
			t.Errorf("lookup(%q) = %+v, %v; want input %v, output %v", tt.model, p, ok, tt.input, tt.output)
		}
	}
	// A model the catalog does not know has no price, not a neighbour's:
	// Sonnet 5 costs less than Sonnet 4 did, so a guess would be wrong.
	for _, m := range []string{"gpt-4o", "claude-sonnet-6", "claude-fable-5-2"} {
		if p, ok := table.lookup(m); ok {
			t.Errorf("lookup(%s) = %+v, want no price", m, p)
		}
	}
}

func TestPriceTable_ScaledCost(t *testing.T) {
	t.Parallel()
	table := newPriceTable(map[string]Price{"claude-sonnet-4-5*": derivePrice(3, 15)})
	tests := []struct {
		name  string
		model string
		tok   llmgw.Tokens
		want  float64 // USD
		ok    bool
	}{
		{"flat", "claude-opus-4-6", llmgw.Tokens{Input: 1000, Output: 2000}, 0.055, true},
		{"unsplit cache write is 5m", "claude-opus-4-6", llmgw.Tokens{CacheWrite: 4000}, 0.025, true},
		// Haiku 5.5 bills a whole request at its higher rates once the prompt,
		// cache reads and writes included, passes 100,000 tokens.
		{"short prompt", "claude-haiku-5-5", llmgw.Tokens{Input: 50_000, CacheRead: 50_000, Output: 1_000_000}, 0.005 + 0.0005 + 0.5, true},
		{"long prompt", "claude-haiku-5-5", llmgw.Tokens{Input: 50_000, CacheRead: 50_000, CacheWrite: 1, Output: 1_000_000}, 0.025 + 0.0025 + 0.000000625 + 2.5, true},
		// A config price is flat: it replaces the long-prompt tier too.
		{"config price", "claude-sonnet-4-5-20250929", llmgw.Tokens{Input: 300_000}, 0.9, true},
		{"unknown", "claude-next", llmgw.Tokens{Input: 1}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, unpriced := table.cost(policy.Used{Model: tt.model, Tokens: tt.tok})
			ok := len(unpriced) == 0
			if got /= 1e6; ok != tt.ok || got-tt.want > 1e-12 || tt.want-got > 1e-12 {
				t.Errorf("scaledCost = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestDerivePrice(t *testing.T) {
	t.Parallel()
	got := []Price{derivePrice(5, 25), derivePrice(3, 15)}
	want := []Price{
		{Input: 5, Output: 25, CacheRead: 0.5, CacheWrite5m: 6.25, CacheWrite1h: 10},
		{Input: 3, Output: 15, CacheRead: 0.3, CacheWrite5m: 3.75, CacheWrite1h: 6},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("derived prices (-want +got):\n%s", diff)
	}
}

func TestPriceTable_ConfigOverrides(t *testing.T) {
	t.Parallel()
	table := newPriceTable(map[string]Price{
		"claude-sonnet-*":     derivePrice(4, 20),
		"claude-sonnet-4-5*":  derivePrice(6, 30), // longer pattern wins
		"my-fine-tune":        derivePrice(1, 1),
		"claude-opus-4-5-202": {Input: 9}, // an exact name matches only itself
	})
	tests := []struct {
		model string
		input float64
	}{
		{"claude-sonnet-4-5-20250929", 6},
		{"claude-sonnet-4-20250514", 4},
		{"my-fine-tune", 1},
		{"claude-opus-4-5-20251101", 5}, // built-in
		{"claude-3-5-sonnet-20241022", 3},
	}
	for _, tt := range tests {
		if p, _ := table.lookup(tt.model); p.Input != tt.input {
			t.Errorf("lookup(%q).Input = %v, want %v", tt.model, p.Input, tt.input)
		}
	}
}

func TestPrice_Cost(t *testing.T) {
	t.Parallel()
	opus := derivePrice(5, 25)
	tests := []struct {
		name string
		tok  llmgw.Tokens
		want float64
	}{
		{"input and output", llmgw.Tokens{Input: 1000, Output: 2000}, 0.055},
		{"cache read", llmgw.Tokens{CacheRead: 1_000_000}, 0.5},
		{"unsplit cache write counts as 5m", llmgw.Tokens{CacheWrite: 4000}, 0.025},
		{"split cache write", llmgw.Tokens{CacheWrite: 3000, CacheWrite5m: 1000, CacheWrite1h: 2000}, 0.02625},
		{"1h only", llmgw.Tokens{CacheWrite: 1000, CacheWrite1h: 1000}, 0.01},
		{"all", llmgw.Tokens{Input: 1000, Output: 2000, CacheRead: 10000, CacheWrite: 4000}, 0.085},
	}
	for _, tt := range tests {
		if got := toCatalog(opus).Cost(policy.Billed(tt.tok)); got != tt.want {
			t.Errorf("%s: Cost = %v, want %v", tt.name, got, tt.want)
		}
	}
}

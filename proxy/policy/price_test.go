package policy

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
)

func TestBilled_CacheWriteSplit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tok            llmgw.Tokens
		want5m, want1h int64
	}{
		{llmgw.Tokens{CacheWrite: 100}, 100, 0}, // a total without a split is 5-minute writes
		{llmgw.Tokens{CacheWrite: 100, CacheWrite5m: 40, CacheWrite1h: 60}, 40, 60},
		{llmgw.Tokens{CacheWrite: 100, CacheWrite1h: 100}, 0, 100},
		{llmgw.Tokens{CacheWrite: 100, CacheWrite1h: 30}, 70, 30},
		{llmgw.Tokens{CacheWrite: 0, CacheWrite5m: 10}, 10, 0},
	}
	for _, tt := range tests {
		b := Billed(tt.tok)
		if b.CacheWrite5m != tt.want5m || b.CacheWrite1h != tt.want1h {
			t.Errorf("Billed(%+v) writes = %d, %d; want %d, %d", tt.tok, b.CacheWrite5m, b.CacheWrite1h, tt.want5m, tt.want1h)
		}
	}
}

// Rates used below, USD per million tokens: Sonnet 4.6 3 / 15, cache read
// 0.30, writes 3.75 (5m) and 6 (1h); Opus 4.8 and Opus 5 5 / 25, 0.50,
// 6.25, 10, and Opus 4.8's fast mode twice that.
func TestScaledCost(t *testing.T) {
	t.Parallel()
	cat := anthropic.Builtin()
	advisor := llmgw.Iteration{Type: "advisor_message", Model: "claude-opus-4-8",
		Tokens: llmgw.Tokens{Input: 300, Output: 40, CacheWrite: 60, CacheWrite1h: 60}}
	tests := []struct {
		name       string
		used       Used
		want       float64 // USD × 1e6
		wantTokens int64
		unpriced   []string
	}{
		{
			name: "unsplit cache total is 5-minute writes",
			used: Used{Model: "claude-sonnet-4-6", Tokens: llmgw.Tokens{CacheWrite: 1000}},
			want: 1000 * 3.75, wantTokens: 1000,
		},
		{
			name: "split cache writes",
			used: Used{Model: "claude-sonnet-4-6", Tokens: llmgw.Tokens{CacheWrite: 1000, CacheWrite1h: 400}},
			want: 600*3.75 + 400*6, wantTokens: 1000,
		},
		{
			// The top level repeats the message iteration; the compaction
			// and the advisor are in iterations only. Each iteration is
			// billed once, at its own model, and the top level not at all.
			name: "iterations at their own models",
			used: Used{Model: "claude-sonnet-4-6", Tokens: llmgw.Tokens{Input: 10, Output: 30, CacheWrite: 500},
				Iterations: []llmgw.Iteration{
					{Type: "compaction", Tokens: llmgw.Tokens{Input: 1000, Output: 100}},
					{Type: "message", Tokens: llmgw.Tokens{Input: 10, Output: 30, CacheWrite: 500}},
					advisor,
				}},
			want:       (1000*3 + 100*15) + (10*3 + 30*15 + 500*3.75) + (300*5 + 40*25 + 60*10),
			wantTokens: 1100 + 540 + 400,
		},
		{
			name: "fast mode",
			used: Used{Model: "claude-opus-4-8", Speed: llmgw.SpeedFast, Tokens: llmgw.Tokens{Input: 1000, Output: 1000, CacheRead: 1000, CacheWrite: 1000}},
			want: 2 * (1000*5 + 1000*25 + 1000*0.5 + 1000*6.25), wantTokens: 4000,
		},
		{
			name: "standard speed",
			used: Used{Model: "claude-opus-4-8", Speed: llmgw.SpeedStandard, Tokens: llmgw.Tokens{Input: 1000, Output: 1000}},
			want: 1000*5 + 1000*25, wantTokens: 2000,
		},
		{
			name: "fast on a model without a known premium is standard",
			used: Used{Model: "claude-sonnet-4-6", Speed: llmgw.SpeedFast, Tokens: llmgw.Tokens{Input: 1000}},
			want: 1000 * 3, wantTokens: 1000,
		},
		{
			// The speed is the request's model's: an advisor on another
			// model runs at its standard rates.
			name: "fast with an advisor on another model",
			used: Used{Model: "claude-opus-4-8", Speed: llmgw.SpeedFast, Iterations: []llmgw.Iteration{
				{Type: "message", Tokens: llmgw.Tokens{Input: 1000}},
				{Type: "advisor_message", Model: "claude-opus-5", Tokens: llmgw.Tokens{Input: 1000}},
			}},
			want: 2*1000*5 + 1000*5, wantTokens: 2000,
		},
		{
			name: "an iteration on a model without a price",
			used: Used{Model: "claude-sonnet-4-6", Iterations: []llmgw.Iteration{
				{Type: "message", Tokens: llmgw.Tokens{Input: 1000}},
				{Type: "advisor_message", Model: "claude-next", Tokens: llmgw.Tokens{Input: 5}},
			}},
			want: 1000 * 3, wantTokens: 1005, unpriced: []string{"claude-next"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, unpriced := ScaledCost(cat, tt.used)
			if math.Abs(got-tt.want) > 1e-6 {
				t.Errorf("ScaledCost = %v, want %v", got, tt.want)
			}
			if diff := cmp.Diff(tt.unpriced, unpriced); diff != "" {
				t.Errorf("unpriced (-want +got):\n%s", diff)
			}
			ch := ChargeOf(cat, tt.used, 1)
			if ch.Tokens != tt.wantTokens || math.Abs(ch.USD-tt.want/1e6) > 1e-12 || ch.Requests != 1 {
				t.Errorf("ChargeOf = %+v, want %d tokens and %v USD", ch, tt.wantTokens, tt.want/1e6)
			}
		})
	}
}

// A config price pattern sets a model's standard rates; fast mode's premium
// stays a multiple of them.
func TestScaledCost_PatternPriceKeepsFastPremium(t *testing.T) {
	t.Parallel()
	cat := anthropic.Builtin().WithPrices(map[string]anthropic.Price{"claude-opus-4-8*": {Input: 1, Output: 1}})
	got, _ := ScaledCost(cat, Used{Model: "claude-opus-4-8", Speed: llmgw.SpeedFast, Tokens: llmgw.Tokens{Input: 1000}})
	if got != 2000 {
		t.Errorf("ScaledCost = %v, want 2000", got)
	}
}

package anthropic

import "testing"

func TestPricing_AtSpeed(t *testing.T) {
	t.Parallel()
	p := Pricing{Price: DerivePrice(1, 5), LongPromptTokens: 100, LongPrompt: DerivePrice(2, 10), FastMultiplier: 2}
	f := p.AtSpeed("fast")
	if f.Price != DerivePrice(2, 10) || f.LongPrompt != DerivePrice(4, 20) || f.LongPromptTokens != 100 {
		t.Errorf("AtSpeed(fast) = %+v", f)
	}
	for _, speed := range []string{"", "standard", "turbo"} {
		if got := p.AtSpeed(speed); got != p {
			t.Errorf("AtSpeed(%q) = %+v, want the standard rates", speed, got)
		}
	}
	if none := (Pricing{Price: DerivePrice(1, 5)}); none.AtSpeed("fast") != none {
		t.Error("a pricing without a multiplier changed at fast speed")
	}
}

func TestBuiltin_FastMultipliers(t *testing.T) {
	t.Parallel()
	for model, want := range map[string]float64{
		"claude-opus-5-5": 2, "claude-opus-5": 2, "claude-opus-4-8": 2, "claude-opus-4-7": 6, "claude-opus-4-6": 6,
		"claude-sonnet-4-6": 0, "claude-haiku-5-5": 0,
	} {
		p, ok := Builtin().PriceOf(model)
		if !ok || p.FastMultiplier != want {
			t.Errorf("%s: FastMultiplier = %v (%v), want %v", model, p.FastMultiplier, ok, want)
		}
	}
	// Opus 4.8 fast: $10 / $50 per the fast-mode page.
	if p, _ := Builtin().PriceOf("claude-opus-4-8"); p.AtSpeed("fast").Input != 10 || p.AtSpeed("fast").Output != 50 {
		t.Errorf("Opus 4.8 fast = %+v, want 10 / 50", p.AtSpeed("fast").Price)
	}
	if _, err := NewCatalog(Model{ID: "m", Pricing: Pricing{Price: DerivePrice(1, 1), FastMultiplier: -1}}); err == nil {
		t.Error("a negative fast multiplier was accepted")
	}
	// A multiplier alone is no price.
	c, err := NewCatalog(Model{ID: "m", Pricing: Pricing{FastMultiplier: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.PriceOf("m"); ok {
		t.Error("a model with only a fast multiplier has a price")
	}
}

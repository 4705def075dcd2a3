package cli

import (
	"testing"
)

// models.catalog sets fast mode's multiplier; an entry's prices keep the
// model's multiplier unless it sets one.
func TestLoadConfig_CatalogFastMultiplier(t *testing.T) {
	t.Parallel()
	p := writeFile(t, "llmgw.yaml", `models:
  catalog:
    - id: claude-opus-4-8
      fast_multiplier: 3
    - id: claude-opus-5
      prices: {input: 1, output: 2}
    - id: claude-sonnet-4-6
      fast_multiplier: 1.5
`)
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	for model, want := range map[string]float64{"claude-opus-4-8": 3, "claude-opus-5": 2, "claude-sonnet-4-6": 1.5, "claude-opus-5-5": 2} {
		if pr, _ := cfg.Catalog().PriceOf(model); pr.FastMultiplier != want {
			t.Errorf("%s: FastMultiplier = %v, want %v", model, pr.FastMultiplier, want)
		}
	}
	bad := writeFile(t, "bad.yaml", "models:\n  catalog:\n    - id: m\n      fast_multiplier: -2\n")
	_, err = LoadConfig(bad)
	wantErr(t, err, bad, "line 4: fast_multiplier must be a number, 0 or more")
}

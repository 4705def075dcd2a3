package anthropic

// Fast mode (beta fast-mode-2026-02-01, the request's top-level speed
// "fast") runs a model faster at a premium; a response served that way
// reports usage.speed "fast", and that, not the request, decides the price.
// The premium is a multiple of every standard rate, cache rates included
// ("prompt-caching costs continue to apply on top of the fast-mode base
// rates").
//
// Sources: Claude Code's fast-mode page (code.claude.com/docs/en/fast-mode,
// stored October 2026) gives $10 / $50 per million tokens on Opus 4.8 and
// $30 / $150 on Opus 4.7 and 4.6, which are 2× and 6× their $5 / $25.
// For Opus 5 and 5.5 no Anthropic page in the stored sources gives a fast
// price; claudit v1.9.0 bundles $10 / $50 for Opus 5 (2×, matching Vercel's
// AI Gateway listing for "Claude Opus 5 (Fast)") and $8 / $40 with $0.40
// cache hits for Opus 5.5 (2× its $4 / $20 / $0.20). Any other model has
// no multiplier: a fast response on it is priced at the standard rates. A
// config file's models.catalog entry sets or corrects a multiplier with
// fast_multiplier.
var fastMultipliers = map[string]float64{
	"claude-opus-5-5": 2,
	"claude-opus-5":   2,
	"claude-opus-4-8": 2,
	"claude-opus-4-7": 6,
	"claude-opus-4-6": 6,
}

// withFastMode sets the fast-mode multipliers above on the built-in table.
func withFastMode(models []Model) []Model {
	for i := range models {
		if k, ok := fastMultipliers[models[i].ID]; ok {
			models[i].Pricing.FastMultiplier = k
		}
	}
	return models
}

package cli

import (
	"path"
	"sort"

	"github.com/llmgw/llmgw"
)

// derivePrice returns a price with the cache prices Anthropic derives from
// the input price: reads 0.1×, 5-minute writes 1.25×, 1-hour writes 2×.
// Dividing by 10 rather than multiplying by 0.1 keeps 3 → 0.3 exact.
func derivePrice(input, output float64) Price {
	return Price{
		Input:        input,
		Output:       output,
		CacheRead:    input / 10,
		CacheWrite5m: input * 1.25,
		CacheWrite1h: input * 2,
	}
}

// priceRule prices the models matching a path.Match pattern.
type priceRule struct {
	pattern string
	price   Price
}

// builtinPrices returns Anthropic's list prices in USD per million tokens
// (as of 2026), by model family. The first matching rule wins, so older,
// dearer models come before the generic fallbacks. It is a function so that
// no caller can change the table for another.
func builtinPrices() []priceRule {
	return []priceRule{
		// Opus 4 and 4.1 kept the old Opus price.
		{"claude-opus-4", derivePrice(15, 75)},
		{"claude-opus-4-0*", derivePrice(15, 75)},
		{"claude-opus-4-2025*", derivePrice(15, 75)},
		{"claude-opus-4-1", derivePrice(15, 75)},
		{"claude-opus-4-1-*", derivePrice(15, 75)},
		{"claude-opus-4-1@*", derivePrice(15, 75)},
		{"claude-3-opus*", derivePrice(15, 75)},
		// Opus 4.5 and later.
		{"claude-opus-4-5*", derivePrice(5, 25)},
		{"claude-opus-4-6*", derivePrice(5, 25)},
		{"claude-opus-4-7*", derivePrice(5, 25)},
		{"claude-opus-*", derivePrice(5, 25)},
		// Sonnet.
		{"claude-sonnet-*", derivePrice(3, 15)},
		{"claude-3-7-sonnet*", derivePrice(3, 15)},
		{"claude-3-5-sonnet*", derivePrice(3, 15)},
		{"claude-3-sonnet*", derivePrice(3, 15)},
		// Haiku.
		{"claude-haiku-4*", derivePrice(1, 5)},
		{"claude-3-5-haiku*", derivePrice(0.8, 4)},
		{"claude-3-haiku*", derivePrice(0.25, 1.25)},
	}
}

// priceTable looks up a model's price: the config file's patterns first
// (longest pattern first), then the built-in table. A priceTable is
// immutable and safe for concurrent use.
type priceTable struct {
	rules []priceRule
}

// newPriceTable returns the built-in prices extended and overridden by
// overrides, which come from the config file.
func newPriceTable(overrides map[string]Price) *priceTable {
	rules := make([]priceRule, 0, len(overrides)+20)
	for p, pr := range overrides {
		rules = append(rules, priceRule{p, pr})
	}
	// The longest pattern is the most specific; ties break by name so the
	// result never depends on map order.
	sort.Slice(rules, func(i, j int) bool {
		if len(rules[i].pattern) != len(rules[j].pattern) {
			return len(rules[i].pattern) > len(rules[j].pattern)
		}
		return rules[i].pattern < rules[j].pattern
	})
	rules = append(rules, builtinPrices()...)
	return &priceTable{rules: rules}
}

// lookup returns the price of model and whether one is known.
func (t *priceTable) lookup(model string) (Price, bool) {
	for _, r := range t.rules {
		if ok, _ := path.Match(r.pattern, model); ok {
			return r.price, true
		}
	}
	return Price{}, false
}

// cacheWriteSplit returns the 5-minute and 1-hour cache-write tokens of t.
// Cache writes the upstream did not split count as 5-minute writes.
func cacheWriteSplit(t llmgw.Tokens) (w5m, w1h int64) {
	w1h = t.CacheWrite1h
	w5m = max(t.CacheWrite-w1h, t.CacheWrite5m)
	return w5m, w1h
}

// scaledCost returns the cost of t in USD times one million, that is
// the sum of tokens × USD per million tokens. Summing these and dividing once
// keeps report totals exact for prices that are exact in binary.
func (p Price) scaledCost(t llmgw.Tokens) float64 {
	w5m, w1h := cacheWriteSplit(t)
	return float64(t.Input)*p.Input +
		float64(t.Output)*p.Output +
		float64(t.CacheRead)*p.CacheRead +
		float64(w5m)*p.CacheWrite5m +
		float64(w1h)*p.CacheWrite1h
}

// Cost returns what t costs at price p, in USD.
func (p Price) Cost(t llmgw.Tokens) float64 {
	return p.scaledCost(t) / 1e6
}

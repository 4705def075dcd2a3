package cli

import (
	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
)

// Prices live in the model catalog (proxy/anthropic/catalog.go), which the
// config file extends (Config.Catalog); this file prices the request log's
// token counts with it, mapped onto Anthropic's billing categories.

// derivePrice returns a price with the cache prices Anthropic derives from
// the input price: reads 0.1×, 5-minute writes 1.25×, 1-hour writes 2×.
func derivePrice(input, output float64) Price {
	return fromCatalog(anthropic.DerivePrice(input, output))
}

func toCatalog(p Price) anthropic.Price {
	return anthropic.Price{Input: p.Input, Output: p.Output, CacheRead: p.CacheRead, CacheWrite5m: p.CacheWrite5m, CacheWrite1h: p.CacheWrite1h}
}

func fromCatalog(p anthropic.Price) Price {
	return Price{Input: p.Input, Output: p.Output, CacheRead: p.CacheRead, CacheWrite5m: p.CacheWrite5m, CacheWrite1h: p.CacheWrite1h}
}

// priceTable looks up a model's price in a model catalog: its price
// patterns first (the config file's prices, longest pattern first), then
// its models. A priceTable is immutable and safe for concurrent use.
type priceTable struct {
	catalog *anthropic.Catalog
}

// newPriceTable returns the built-in prices extended and overridden by
// overrides, prices patterns as the config file has them.
func newPriceTable(overrides map[string]Price) *priceTable {
	return &priceTable{catalog: anthropic.Builtin().WithPrices(catalogPrices(overrides))}
}

// lookup returns the price of model and whether one is known. For a model
// with long-prompt rates it is the price of an ordinary request.
func (t *priceTable) lookup(model string) (Price, bool) {
	p, ok := t.catalog.PriceOf(model)
	return fromCatalog(p.Price), ok
}

// scaledCost returns what one request to model that used tok costs, in USD
// times one million, at the rates that apply to that request (a long prompt
// may cost more per token); ok is false when no price is known.
func (t *priceTable) scaledCost(model string, tok llmgw.Tokens) (float64, bool) {
	return t.catalog.ScaledCost(model, billed(tok))
}

// cacheWriteSplit returns the 5-minute and 1-hour cache-write tokens of t.
// Cache writes the upstream did not split count as 5-minute writes.
func cacheWriteSplit(t llmgw.Tokens) (w5m, w1h int64) {
	w1h = t.CacheWrite1h
	w5m = max(t.CacheWrite-w1h, t.CacheWrite5m)
	return w5m, w1h
}

// billed returns t in Anthropic's billing categories.
func billed(t llmgw.Tokens) anthropic.Tokens {
	w5m, w1h := cacheWriteSplit(t)
	return anthropic.Tokens{Input: t.Input, Output: t.Output, CacheRead: t.CacheRead, CacheWrite5m: w5m, CacheWrite1h: w1h}
}

// scaledCost returns the cost of t in USD times one million, that is
// the sum of tokens × USD per million tokens. Summing these and dividing once
// keeps report totals exact for prices that are exact in binary.
func (p Price) scaledCost(t llmgw.Tokens) float64 {
	return toCatalog(p).ScaledCost(billed(t))
}

// Cost returns what t costs at price p, in USD.
func (p Price) Cost(t llmgw.Tokens) float64 {
	return p.scaledCost(t) / 1e6
}

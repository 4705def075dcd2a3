package cli

import (
	"github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/policy"
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

// cost returns what one logged request costs, in USD times one million, by
// the one pricing rule the server's limits use too (policy.ScaledCost):
// iterations at their own models, fast mode's premium, unsplit cache writes
// as 5-minute writes, long-prompt rates. unpriced lists the models that used
// tokens but have no price.
func (t *priceTable) cost(u policy.Used) (scaled float64, unpriced []string) {
	return policy.ScaledCost(t.catalog, u)
}

package anthropic

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// This file is the one table of what llmgw knows about Claude models: ids,
// display names, limits, thinking rules and prices. GET /v1/models and
// /v1beta/models list it, the dialect converters read their max_tokens limits
// from it (models.go), and `llmgw usage report` prices tokens with it.
//
// Sources: Anthropic's model overview, pricing and deprecations pages on
// platform.claude.com as stored up to October 2026, and, where a figure is
// not on them, the third-party sources named next to it. Where a figure
// could not be settled the comment says so.

// Status is where a model is in Anthropic's lifecycle.
type Status int

// The lifecycle states Anthropic's deprecations page uses.
const (
	StatusActive     Status = iota // supported and recommended
	StatusLegacy                   // still served, superseded
	StatusDeprecated               // still served, has a retirement date
	StatusRetired                  // requests fail; kept to price old usage rows
)

var statusNames = [...]string{"active", "legacy", "deprecated", "retired"}

// String returns the status's lower-case name.
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// ParseStatus parses a name String returns.
func ParseStatus(s string) (Status, error) {
	for i, n := range statusNames {
		if s == n {
			return Status(i), nil
		}
	}
	return 0, fmt.Errorf("unknown model status %q (want one of %s)", s, strings.Join(statusNames[:], ", "))
}

// ThinkingMode is how a model takes extended thinking.
type ThinkingMode int

// The thinking modes. The zero value is ThinkingUnknown, so that a model added
// from configuration without one claims nothing.
const (
	ThinkingUnknown      ThinkingMode = iota // not known
	ThinkingNone                             // no extended thinking
	ThinkingManual                           // thinking {type: "enabled", budget_tokens}
	ThinkingAdaptive                         // adaptive, or a budget (deprecated but accepted)
	ThinkingAdaptiveOnly                     // adaptive only: budget_tokens is a 400
	ThinkingAlwaysOn                         // adaptive only, and it cannot be turned off
)

var thinkingNames = [...]string{"unknown", "none", "manual", "adaptive", "adaptive-only", "always-on"}

// String returns the mode's name as the config file spells it.
func (m ThinkingMode) String() string {
	if int(m) < len(thinkingNames) {
		return thinkingNames[m]
	}
	return fmt.Sprintf("ThinkingMode(%d)", int(m))
}

// ParseThinkingMode parses a name String returns.
func ParseThinkingMode(s string) (ThinkingMode, error) {
	for i, n := range thinkingNames {
		if s == n {
			return ThinkingMode(i), nil
		}
	}
	return 0, fmt.Errorf("unknown thinking mode %q (want one of %s)", s, strings.Join(thinkingNames[:], ", "))
}

// Price is what tokens cost, in USD per million tokens.
type Price struct {
	Input        float64 // uncached input
	Output       float64
	CacheRead    float64 // cache hits and refreshes
	CacheWrite5m float64 // 5-minute cache writes
	CacheWrite1h float64 // 1-hour cache writes
}

// DerivePrice returns a price whose cache prices follow from the input price
// by Anthropic's usual multipliers: reads 0.1×, 5-minute writes 1.25×, 1-hour
// writes 2×. Dividing by 10 rather than multiplying by 0.1 keeps 3 → 0.3
// exact. Not every model follows the rule (Claude Haiku 3, Opus 5.5, Fable
// 5.1), so the table below states its cache prices.
func DerivePrice(input, output float64) Price {
	return Price{
		Input:        input,
		Output:       output,
		CacheRead:    input / 10,
		CacheWrite5m: input * 1.25,
		CacheWrite1h: input * 2,
	}
}

// Batch returns p with the Message Batches API's 50% discount. Anthropic states
// the discount on input and output, and that prompt-caching multipliers stack
// with it, so every rate is halved. llmgw does not proxy the Batches API; the
// figure is for reference and for callers that do.
func (p Price) Batch() Price {
	return Price{p.Input / 2, p.Output / 2, p.CacheRead / 2, p.CacheWrite5m / 2, p.CacheWrite1h / 2}
}

// ScaledCost returns the cost of t at p in USD times one million, that is the
// sum of tokens × USD per million tokens. Summing these and dividing once keeps
// report totals exact for prices that are exact in binary.
func (p Price) ScaledCost(t Tokens) float64 {
	return float64(t.Input)*p.Input +
		float64(t.Output)*p.Output +
		float64(t.CacheRead)*p.CacheRead +
		float64(t.CacheWrite5m)*p.CacheWrite5m +
		float64(t.CacheWrite1h)*p.CacheWrite1h
}

// Cost returns what t costs at p, in USD.
func (p Price) Cost(t Tokens) float64 { return p.ScaledCost(t) / 1e6 }

// Tokens is one request's token counts as Anthropic bills them: cache writes
// already split by lifetime.
type Tokens struct {
	Input        int64 // input_tokens: the uncached part
	Output       int64
	CacheRead    int64
	CacheWrite5m int64
	CacheWrite1h int64
}

// Prompt returns the request's whole prompt: input, cache reads and cache
// writes. Long-prompt rates are chosen by it.
func (t Tokens) Prompt() int64 { return t.Input + t.CacheRead + t.CacheWrite5m + t.CacheWrite1h }

// Pricing is a model's rates. Most models have one Price; a few charge a whole
// request at dearer rates once its prompt passes a threshold (Claude Sonnet 4
// and 4.5 past 200,000 tokens with the 1M-context beta, Claude Haiku 5.5 past
// 100,000). A zero Pricing means the price is not known.
type Pricing struct {
	Price                  // rates for every request, or for prompts up to LongPromptTokens
	LongPromptTokens int64 // 0: no long-prompt rates
	LongPrompt       Price // rates for every token of a request whose prompt exceeds LongPromptTokens
	// FastMultiplier is fast mode's premium: a request whose usage reports
	// speed "fast" pays every rate (input, output, cache reads and writes,
	// long-prompt rates too) times this. 0 means no premium is known, and
	// such a request is priced at the standard rates.
	FastMultiplier float64
}

// priced reports whether p has rates: a multiplier alone is no price.
func (p Pricing) priced() bool {
	p.FastMultiplier = 0
	return p != Pricing{}
}

// AtSpeed returns the rates for a request served at speed (usage.speed):
// for "fast", every rate times FastMultiplier when one is known; else p.
func (p Pricing) AtSpeed(speed string) Pricing {
	if speed != "fast" || p.FastMultiplier <= 0 {
		return p
	}
	f := p
	f.Price = p.Price.times(p.FastMultiplier)
	if p.LongPromptTokens > 0 {
		f.LongPrompt = p.LongPrompt.times(p.FastMultiplier)
	}
	return f
}

// times returns p with every rate multiplied by k.
func (p Price) times(k float64) Price {
	return Price{p.Input * k, p.Output * k, p.CacheRead * k, p.CacheWrite5m * k, p.CacheWrite1h * k}
}

// For returns the rates that apply to a request that used t.
func (p Pricing) For(t Tokens) Price {
	if p.LongPromptTokens > 0 && t.Prompt() > p.LongPromptTokens {
		return p.LongPrompt
	}
	return p.Price
}

// ScaledCost returns the cost of a request that used t, in USD times one
// million (see Price.ScaledCost).
func (p Pricing) ScaledCost(t Tokens) float64 { return p.For(t).ScaledCost(t) }

// Batch returns p with the Batches API discount (see Price.Batch).
func (p Pricing) Batch() Pricing {
	b := Pricing{Price: p.Price.Batch(), LongPromptTokens: p.LongPromptTokens, FastMultiplier: p.FastMultiplier}
	if p.LongPromptTokens > 0 {
		b.LongPrompt = p.LongPrompt.Batch()
	}
	return b
}

// Model is what llmgw knows about one Claude model.
type Model struct {
	// ID is the id the Messages API takes without a date: an alias of
	// DatedID for models up to 4.5, the pinned snapshot itself from 4.6 on.
	ID string
	// DatedID is the dated snapshot id ("claude-opus-4-5-20251101"), or ""
	// where Anthropic dates none.
	DatedID string
	// Aliases are other names clients use for the model.
	Aliases     []string
	DisplayName string
	// Created is the model's release day (UTC); llmgw's own model list
	// reports it as created_at.
	Created time.Time
	Status  Status
	// Restricted models are served only to organizations Anthropic has
	// verified (Claude Mythos). They are priced but not listed.
	Restricted bool
	// ContextWindow is the most input tokens a request may carry; 0 if unknown.
	ContextWindow int
	// MaxOutputTokens is the largest max_tokens the Messages API accepts
	// (the Batches API allows more on some models); 0 if unknown, and then
	// llmgw clamps nothing and leaves it to the upstream.
	MaxOutputTokens int
	// DefaultMaxTokens is the max_tokens llmgw sends when a converted client
	// sets none; 0 means min(MaxOutputTokens, 32000), or 8192 when both are 0.
	DefaultMaxTokens int
	Thinking         ThinkingMode
	// NoSampling marks a model that refuses temperature, top_p and top_k
	// (a 400 whatever their values): converted requests are sent without
	// them.
	NoSampling bool
	Pricing    Pricing
}

// SnapshotID returns the id GET /v1/models lists the model under: the dated
// id where there is one, else the id.
func (m Model) SnapshotID() string {
	if m.DatedID != "" {
		return m.DatedID
	}
	return m.ID
}

// names returns every exact name of m.
func (m *Model) names() []string {
	n := make([]string, 0, 2+len(m.Aliases))
	n = append(n, m.ID)
	if m.DatedID != "" {
		n = append(n, m.DatedID)
	}
	return append(n, m.Aliases...)
}

// Default limits.
const (
	// fallbackMaxTokens is the default max_tokens for a model the catalog
	// does not know: small enough for any Claude model.
	fallbackMaxTokens = 8192
	// generousMaxTokens is the default max_tokens for a model whose cap is
	// larger: generous enough not to truncate agents.
	generousMaxTokens = 32000
)

// Catalog is a table of models and prices. It is immutable and safe for
// concurrent use; With and WithPrices return a new Catalog.
type Catalog struct {
	models []Model
	byName map[string]int // exact name → index in models
	prices []priceRule    // pattern prices, consulted first, longest pattern first
}

// priceRule prices the models whose names match a path.Match pattern.
type priceRule struct {
	pattern string
	price   Price
}

// NewCatalog returns a catalog of models. It fails when a model has no ID,
// a name belongs to two models, or a limit or price is negative or
// inconsistent; the error names the model.
func NewCatalog(models ...Model) (*Catalog, error) {
	c := &Catalog{models: make([]Model, len(models)), byName: make(map[string]int, 3*len(models))}
	for i, m := range models {
		m.Aliases = slices.Clone(m.Aliases)
		if err := validate(&m); err != nil {
			return nil, err
		}
		if m.DefaultMaxTokens == 0 && m.MaxOutputTokens > 0 {
			m.DefaultMaxTokens = min(m.MaxOutputTokens, generousMaxTokens)
		}
		for _, n := range m.names() {
			if j, dup := c.byName[n]; dup {
				return nil, fmt.Errorf("model %s: name %q is already model %s", m.ID, n, c.models[j].ID)
			}
			c.byName[n] = i
		}
		c.models[i] = m
	}
	return c, nil
}

func validate(m *Model) error {
	if m.ID == "" {
		return fmt.Errorf("model %q: no id", m.DisplayName)
	}
	for _, n := range m.names() {
		if n == "" || strings.ContainsAny(n, " \t\r\n") {
			return fmt.Errorf("model %s: name %q is empty or has spaces", m.ID, n)
		}
	}
	if m.ContextWindow < 0 || m.MaxOutputTokens < 0 || m.DefaultMaxTokens < 0 {
		return fmt.Errorf("model %s: negative limit", m.ID)
	}
	if m.MaxOutputTokens > 0 && m.DefaultMaxTokens > m.MaxOutputTokens {
		return fmt.Errorf("model %s: default max tokens %d is above the cap %d", m.ID, m.DefaultMaxTokens, m.MaxOutputTokens)
	}
	p := m.Pricing
	if p.LongPromptTokens < 0 || negative(p.Price) || negative(p.LongPrompt) || p.FastMultiplier < 0 {
		return fmt.Errorf("model %s: negative price", m.ID)
	}
	if p.LongPromptTokens > 0 && p.LongPrompt == (Price{}) {
		return fmt.Errorf("model %s: long-prompt threshold without long-prompt rates", m.ID)
	}
	return nil
}

func negative(p Price) bool {
	return p.Input < 0 || p.Output < 0 || p.CacheRead < 0 || p.CacheWrite5m < 0 || p.CacheWrite1h < 0
}

// With returns a catalog with models added. A model that shares a name (id,
// dated id or alias) with an entry replaces that entry whole; to change part of
// a built-in model, start from what Lookup returns. It fails as NewCatalog
// does, or when a model's names belong to two different entries.
func (c *Catalog) With(models ...Model) (*Catalog, error) {
	all := slices.Clone(c.models)
	for _, m := range models {
		at := -1
		for _, n := range m.names() {
			i, ok := c.byName[n]
			if !ok {
				continue
			}
			if at >= 0 && at != i {
				return nil, fmt.Errorf("model %s: names both %s and %s", m.ID, c.models[at].ID, c.models[i].ID)
			}
			at = i
		}
		if at >= 0 {
			all[at] = m
		} else {
			all = append(all, m)
		}
	}
	n, err := NewCatalog(all...)
	if err != nil {
		return nil, err
	}
	n.prices = c.prices
	return n, nil
}

// WithPrices returns a catalog where models whose names match a pattern
// (path.Match syntax, e.g. "claude-opus-4-5*") cost the pattern's price
// instead of the table's; these are the config file's "prices". The longest
// pattern wins, ties broken by name; a malformed pattern matches nothing. A
// pattern price is one flat rate: it replaces a model's long-prompt rates too.
func (c *Catalog) WithPrices(patterns map[string]Price) *Catalog {
	rules := make([]priceRule, 0, len(patterns)+len(c.prices))
	for p, pr := range patterns {
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
	n := *c
	n.prices = append(rules, c.prices...)
	return &n
}

// index finds the model a name means: an exact id, dated id or alias, else
// the longest such name followed by a variant suffix (see variantSuffix).
func (c *Catalog) index(name string) (int, bool) {
	if i, ok := c.byName[name]; ok {
		return i, true
	}
	// Right to left, so the longest known prefix wins.
	for j := len(name) - 1; j > 0; j-- {
		switch name[j] {
		case '-', '@', ':', '[':
		default:
			continue
		}
		if i, ok := c.byName[name[:j]]; ok && variantSuffix(name[j:]) {
			return i, true
		}
	}
	return 0, false
}

// variantSuffix reports whether s, following a known model name, names a
// variant of that model rather than another model: a date ("-20250514"), a
// word ("-latest", Bedrock's "-v1:0"), a Vertex version ("@20251101"), a
// context marker ("[1m]"). A short number does not: "claude-sonnet-5-7" is
// not a Claude Sonnet 5, and an unknown model must never get another's limits
// or price.
func variantSuffix(s string) bool {
	if s[0] != '-' {
		return true // '@', ':', '['
	}
	s = s[1:]
	digits := 0
	for digits < len(s) && s[digits] >= '0' && s[digits] <= '9' {
		digits++
	}
	if digits == 0 {
		return s != ""
	}
	return digits == 8
}

// Lookup returns the model a name means: an exact id, dated id or alias, or
// one of those followed by a variant suffix (a date, "@version", "-v1:0",
// "[1m]", "-latest"). ok is false for a model the catalog does not know.
func (c *Catalog) Lookup(name string) (m Model, ok bool) {
	i, ok := c.index(name)
	if !ok {
		return Model{}, false
	}
	m = c.models[i]
	m.Aliases = slices.Clone(m.Aliases)
	return m, true
}

// Models returns the models to list on GET /v1/models and /v1beta/models:
// every model not retired and not restricted, newest first (by Created, then
// by ID). The slice is the caller's.
func (c *Catalog) Models() []Model {
	var list []Model
	for _, m := range c.models {
		if m.Status == StatusRetired || m.Restricted {
			continue
		}
		m.Aliases = slices.Clone(m.Aliases)
		list = append(list, m)
	}
	sort.SliceStable(list, func(i, j int) bool {
		if !list[i].Created.Equal(list[j].Created) {
			return list[i].Created.After(list[j].Created)
		}
		return list[i].ID < list[j].ID
	})
	return list
}

// PriceOf returns the rates for a model name: the first pattern price that
// matches it, else its model's Pricing. ok is false when neither is known.
// A pattern price keeps the model's fast-mode multiplier: it sets the
// standard rates, and the premium is a multiple of them.
func (c *Catalog) PriceOf(name string) (Pricing, bool) {
	i, known := c.index(name)
	for _, r := range c.prices {
		if ok, _ := path.Match(r.pattern, name); ok {
			p := Pricing{Price: r.price}
			if known {
				p.FastMultiplier = c.models[i].Pricing.FastMultiplier
			}
			return p, true
		}
	}
	if known && c.models[i].Pricing.priced() {
		return c.models[i].Pricing, true
	}
	return Pricing{}, false
}

// ScaledCost returns what a request to model that used t costs, in USD times
// one million; ok is false when the model's price is not known.
func (c *Catalog) ScaledCost(model string, t Tokens) (cost float64, ok bool) {
	p, ok := c.PriceOf(model)
	if !ok {
		return 0, false
	}
	return p.ScaledCost(t), true
}

// DefaultMaxTokens is the max_tokens to send when a converted client sets
// none: generous enough not to truncate agents, never above the model's cap,
// and 8192 for a model the catalog does not know.
func (c *Catalog) DefaultMaxTokens(model string) int {
	if i, ok := c.index(model); ok && c.models[i].DefaultMaxTokens > 0 {
		return c.models[i].DefaultMaxTokens
	}
	return fallbackMaxTokens
}

// MaxTokensCap is the largest max_tokens a model accepts, or 0 when unknown
// (then nothing is clamped and the upstream decides: a model newer than the
// catalog is never refused).
func (c *Catalog) MaxTokensCap(model string) int {
	if i, ok := c.index(model); ok {
		return c.models[i].MaxOutputTokens
	}
	return 0
}

// Thinking returns how a model takes extended thinking:
// ThinkingUnknown for a model the catalog does not know, or one whose
// entry does not say.
func (c *Catalog) Thinking(model string) ThinkingMode {
	if i, ok := c.index(model); ok {
		return c.models[i].Thinking
	}
	return ThinkingUnknown
}

// NoSampling reports whether a model refuses temperature, top_p and top_k;
// false for a model the catalog does not know (the upstream decides).
func (c *Catalog) NoSampling(model string) bool {
	if i, ok := c.index(model); ok {
		return c.models[i].NoSampling
	}
	return false
}

// ClampMaxTokens limits n to the model's cap, when known.
func (c *Catalog) ClampMaxTokens(model string, n int) int {
	if cp := c.MaxTokensCap(model); cp > 0 && n > cp {
		return cp
	}
	return n
}

// FitThinking makes a thinking budget and max_tokens agree with Anthropic's
// rules: budget >= MinThinkingBudget and < max_tokens, max_tokens within the
// model's cap. It returns the adjusted pair; a budget that cannot fit under
// the cap turns thinking off (budget 0).
func (c *Catalog) FitThinking(model string, budget, maxTokens int) (int, int) {
	if budget <= 0 {
		return 0, maxTokens
	}
	budget = max(budget, MinThinkingBudget)
	if maxTokens <= budget {
		maxTokens = budget + 4096 // room for the visible answer
	}
	if cp := c.MaxTokensCap(model); cp > 0 && maxTokens > cp {
		maxTokens = cp
		if budget >= maxTokens {
			budget = maxTokens - 1024
		}
		if budget < MinThinkingBudget {
			return 0, maxTokens
		}
	}
	return budget, maxTokens
}

// builtin is the catalog below, built once.
var builtin = sync.OnceValue(func() *Catalog {
	c, err := NewCatalog(withFastMode(builtinModels())...)
	if err != nil {
		panic("anthropic: built-in model catalog: " + err.Error()) // a broken table; TestBuiltin catches it
	}
	return c
})

// Builtin returns the built-in catalog: Anthropic's models as of October
// 2026. Extend it with With and WithPrices.
func Builtin() *Catalog { return builtin() }

// Lookup finds a model in the built-in catalog (see Catalog.Lookup).
func Lookup(name string) (Model, bool) { return builtin().Lookup(name) }

// Models lists the built-in catalog for GET /v1/models and /v1beta/models:
// the models not retired and not restricted, newest first (see
// Catalog.Models). Each entry's SnapshotID is the listed id, DisplayName the
// display_name and Created the created_at.
func Models() []Model { return builtin().Models() }

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// builtinModels returns the built-in table, newest first. It is a function so
// that no caller can change it for another.
func builtinModels() []Model {
	// Rates shared by several models, USD per million tokens, from the
	// pricing page: input, output, cache read, 5-minute and 1-hour writes.
	var (
		fable     = Price{Input: 10, Output: 50, CacheRead: 1, CacheWrite5m: 12.5, CacheWrite1h: 20}
		fable51   = Price{Input: 10, Output: 50, CacheRead: 0.25, CacheWrite5m: 12.5, CacheWrite1h: 20}
		opus45    = DerivePrice(5, 25)  // 0.50, 6.25, 10
		opus4     = DerivePrice(15, 75) // 1.50, 18.75, 30
		sonnet5   = DerivePrice(2, 10)  // 0.20, 2.50, 4
		sonnet4   = DerivePrice(3, 15)  // 0.30, 3.75, 6
		sonnet4LC = DerivePrice(6, 22.5)
	)
	// Claude Sonnet 4 and 4.5 serve 1M tokens only with the context-1m beta,
	// and then charge a whole request whose prompt (input, cache reads and
	// writes) passes 200K at $6 / $22.50; the caching multipliers apply on
	// top (0.60 read, 7.50 and 12 writes). From 4.6 on the 1M window is
	// billed at the standard rates, so no later model has this tier.
	sonnet4Pricing := Pricing{Price: sonnet4, LongPromptTokens: 200_000, LongPrompt: sonnet4LC}
	return []Model{
		{
			ID: "claude-haiku-5-5", DisplayName: "Claude Haiku 5.5", Created: day(2026, 10, 7), Status: StatusActive,
			ContextWindow: 1_000_000, MaxOutputTokens: 128_000, DefaultMaxTokens: generousMaxTokens,
			// Adaptive thinking with effort; budget_tokens is refused on 4.7
			// and later models, so inferred refused here too.
			NoSampling: true, Thinking: ThinkingAdaptiveOnly,
			// Priced by prompt length: a request whose prompt is over 100,000
			// tokens pays the higher rates on every token, output included.
			Pricing: Pricing{
				Price:            Price{Input: 0.10, Output: 0.50, CacheRead: 0.01, CacheWrite5m: 0.125, CacheWrite1h: 0.20},
				LongPromptTokens: 100_000,
				LongPrompt:       Price{Input: 0.50, Output: 2.50, CacheRead: 0.05, CacheWrite5m: 0.625, CacheWrite1h: 1},
			},
		},
		{
			// Release day from Runware's model page (the stored Anthropic page
			// does not show it). Cache reads were cut from $0.20 to $0.10 on
			// 2026-10-07 (claudit v1.9.2, PromptFuel v1.0.23, claude-usage
			// v1.5.7; the stored overview page predates the cut): usage from
			// before that day is priced low by half its cache reads.
			ID: "claude-sonnet-5-5", DisplayName: "Claude Sonnet 5.5", Created: day(2026, 9, 28), Status: StatusActive,
			ContextWindow: 1_000_000, MaxOutputTokens: 128_000, DefaultMaxTokens: generousMaxTokens,
			NoSampling: true, Thinking: ThinkingAdaptiveOnly,
			Pricing: Pricing{Price: Price{Input: 2, Output: 10, CacheRead: 0.10, CacheWrite5m: 2.5, CacheWrite1h: 4}},
		},
		{
			// Release day from Sim's model catalog; rates from Anthropic's
			// overview page (cache reads 0.05× input).
			ID: "claude-opus-5-5", DisplayName: "Claude Opus 5.5", Created: day(2026, 9, 22), Status: StatusActive,
			ContextWindow: 1_000_000, MaxOutputTokens: 128_000, DefaultMaxTokens: generousMaxTokens,
			NoSampling: true, Thinking: ThinkingAlwaysOn,
			Pricing: Pricing{Price: Price{Input: 4, Output: 20, CacheRead: 0.20, CacheWrite5m: 5, CacheWrite1h: 8}},
		},
		{
			// Cache reads 0.025× input; the pricing page footnotes the figure
			// and the footnote's text is not in the stored copy.
			ID: "claude-fable-5-1", DisplayName: "Claude Fable 5.1", Created: day(2026, 9, 1), Status: StatusActive,
			ContextWindow: 1_000_000, MaxOutputTokens: 128_000, DefaultMaxTokens: generousMaxTokens,
			NoSampling: true, Thinking: ThinkingAlwaysOn, Pricing: Pricing{Price: fable51},
		},
		{
			// Same model and price as Fable 5.1, for verified organizations.
			ID: "claude-mythos-5-1", DisplayName: "Claude Mythos 5.1", Created: day(2026, 9, 1), Status: StatusActive, Restricted: true,
			ContextWindow: 1_000_000, MaxOutputTokens: 128_000, DefaultMaxTokens: generousMaxTokens,
			NoSampling: true, Thinking: ThinkingAlwaysOn, Pricing: Pricing{Price: fable51},
		},
		{
			// Thinking is on by default and can be turned off only at effort
			// high or lower.
			ID: "claude-opus-5", DisplayName: "Claude Opus 5", Created: day(2026, 7, 24), Status: StatusLegacy,
			ContextWindow: 1_000_000, MaxOutputTokens: 128_000, DefaultMaxTokens: generousMaxTokens,
			NoSampling: true, Thinking: ThinkingAdaptiveOnly, Pricing: Pricing{Price: opus45},
		},
		{
			// An introductory $2 / $10 was to rise to $3 / $15 on 2026-09-01;
			// the rise was called off and the overview page lists $2 / $10.
			ID: "claude-sonnet-5", DisplayName: "Claude Sonnet 5", Created: day(2026, 6, 30), Status: StatusLegacy,
			ContextWindow: 1_000_000, MaxOutputTokens: 128_000, DefaultMaxTokens: generousMaxTokens,
			NoSampling: true, Thinking: ThinkingAdaptiveOnly, Pricing: Pricing{Price: sonnet5},
		},
		{
			ID: "claude-fable-5", DisplayName: "Claude Fable 5", Created: day(2026, 6, 9), Status: StatusLegacy,
			ContextWindow: 1_000_000, MaxOutputTokens: 128_000, DefaultMaxTokens: generousMaxTokens,
			NoSampling: true, Thinking: ThinkingAlwaysOn, Pricing: Pricing{Price: fable},
		},
		{
			// Shares Fable 5's specifications and price; invitation only.
			ID: "claude-mythos-5", DisplayName: "Claude Mythos 5", Created: day(2026, 6, 9), Status: StatusActive, Restricted: true,
			ContextWindow: 1_000_000, MaxOutputTokens: 128_000, DefaultMaxTokens: generousMaxTokens,
			NoSampling: true, Thinking: ThinkingAlwaysOn, Pricing: Pricing{Price: fable},
		},
		{
			ID: "claude-opus-4-8", DisplayName: "Claude Opus 4.8", Created: day(2026, 5, 28), Status: StatusLegacy,
			ContextWindow: 1_000_000, MaxOutputTokens: 128_000, DefaultMaxTokens: generousMaxTokens,
			NoSampling: true, Thinking: ThinkingAdaptiveOnly, Pricing: Pricing{Price: opus45},
		},
		{
			// Release day from the status table's one-year retirement floor
			// ("not sooner than April 16, 2027").
			ID: "claude-opus-4-7", DisplayName: "Claude Opus 4.7", Created: day(2026, 4, 16), Status: StatusLegacy,
			ContextWindow: 1_000_000, MaxOutputTokens: 128_000, DefaultMaxTokens: generousMaxTokens,
			NoSampling: true, Thinking: ThinkingAdaptiveOnly, Pricing: Pricing{Price: opus45},
		},
		{
			// Max output 128K per the model page; early third-party tables say
			// 64K (the 4.5 figure).
			ID: "claude-sonnet-4-6", DisplayName: "Claude Sonnet 4.6", Created: day(2026, 2, 17), Status: StatusLegacy,
			ContextWindow: 1_000_000, MaxOutputTokens: 128_000, DefaultMaxTokens: generousMaxTokens,
			Thinking: ThinkingAdaptive, Pricing: Pricing{Price: sonnet4},
		},
		{
			// Launched with the 1M window in beta at long-context rates; since
			// March 2026 the full window bills at the standard rates, which is
			// what usage from before then is priced at too.
			ID: "claude-opus-4-6", DisplayName: "Claude Opus 4.6", Created: day(2026, 2, 5), Status: StatusLegacy,
			ContextWindow: 1_000_000, MaxOutputTokens: 128_000, DefaultMaxTokens: generousMaxTokens,
			Thinking: ThinkingAdaptive, Pricing: Pricing{Price: opus45},
		},
		{
			ID: "claude-opus-4-5", DatedID: "claude-opus-4-5-20251101", DisplayName: "Claude Opus 4.5", Created: day(2025, 11, 24), Status: StatusLegacy,
			ContextWindow: 200_000, MaxOutputTokens: 64_000, DefaultMaxTokens: generousMaxTokens,
			Thinking: ThinkingManual, Pricing: Pricing{Price: opus45},
		},
		{
			ID: "claude-haiku-4-5", DatedID: "claude-haiku-4-5-20251001", DisplayName: "Claude Haiku 4.5", Created: day(2025, 10, 15), Status: StatusLegacy,
			ContextWindow: 200_000, MaxOutputTokens: 64_000, DefaultMaxTokens: generousMaxTokens,
			Thinking: ThinkingManual, Pricing: Pricing{Price: DerivePrice(1, 5)},
		},
		{
			// Deprecated; retires 2026-11-30.
			ID: "claude-sonnet-4-5", DatedID: "claude-sonnet-4-5-20250929", DisplayName: "Claude Sonnet 4.5", Created: day(2025, 9, 29), Status: StatusDeprecated,
			ContextWindow: 200_000, MaxOutputTokens: 64_000, DefaultMaxTokens: generousMaxTokens,
			Thinking: ThinkingManual, Pricing: sonnet4Pricing,
		},
		{
			// Retired 2026-08-05.
			ID: "claude-opus-4-1", DatedID: "claude-opus-4-1-20250805", DisplayName: "Claude Opus 4.1", Created: day(2025, 8, 5), Status: StatusRetired,
			ContextWindow: 200_000, MaxOutputTokens: 32_000, DefaultMaxTokens: 32_000,
			Thinking: ThinkingManual, Pricing: Pricing{Price: opus4},
		},
		{
			// Retired 2026-06-15.
			ID: "claude-opus-4-0", DatedID: "claude-opus-4-20250514", Aliases: []string{"claude-opus-4"},
			DisplayName: "Claude Opus 4", Created: day(2025, 5, 22), Status: StatusRetired,
			ContextWindow: 200_000, MaxOutputTokens: 32_000, DefaultMaxTokens: 32_000,
			Thinking: ThinkingManual, Pricing: Pricing{Price: opus4},
		},
		{
			// Deprecated, not retired, as of October 2026
			// (upstream-late-2026.md, section 1: "Retired: Opus 4 and 4.1;
			// Sonnet 4 is deprecated"); an earlier table had it retired on
			// 2026-06-15 together with Opus 4.
			ID: "claude-sonnet-4-0", DatedID: "claude-sonnet-4-20250514", Aliases: []string{"claude-sonnet-4"},
			DisplayName: "Claude Sonnet 4", Created: day(2025, 5, 22), Status: StatusDeprecated,
			ContextWindow: 200_000, MaxOutputTokens: 64_000, DefaultMaxTokens: generousMaxTokens,
			Thinking: ThinkingManual, Pricing: sonnet4Pricing,
		},
		// The Claude 3 family is retired: kept so that old usage rows keep
		// their price and converted requests their limits. Created is the
		// snapshot date.
		{
			ID: "claude-3-7-sonnet", DatedID: "claude-3-7-sonnet-20250219", Aliases: []string{"claude-3-7-sonnet-latest"},
			DisplayName: "Claude Sonnet 3.7", Created: day(2025, 2, 19), Status: StatusRetired,
			ContextWindow: 200_000, MaxOutputTokens: 64_000, DefaultMaxTokens: generousMaxTokens,
			Thinking: ThinkingManual, Pricing: Pricing{Price: sonnet4},
		},
		{
			ID: "claude-3-5-haiku", DatedID: "claude-3-5-haiku-20241022", Aliases: []string{"claude-3-5-haiku-latest"},
			DisplayName: "Claude Haiku 3.5", Created: day(2024, 10, 22), Status: StatusRetired,
			ContextWindow: 200_000, MaxOutputTokens: 8192, DefaultMaxTokens: 8192,
			Thinking: ThinkingNone, Pricing: Pricing{Price: Price{Input: 0.8, Output: 4, CacheRead: 0.08, CacheWrite5m: 1, CacheWrite1h: 1.6}},
		},
		{
			ID: "claude-3-5-sonnet", DatedID: "claude-3-5-sonnet-20241022", Aliases: []string{"claude-3-5-sonnet-latest", "claude-3-5-sonnet-20240620"},
			DisplayName: "Claude Sonnet 3.5", Created: day(2024, 10, 22), Status: StatusRetired,
			ContextWindow: 200_000, MaxOutputTokens: 8192, DefaultMaxTokens: 8192,
			Thinking: ThinkingNone, Pricing: Pricing{Price: sonnet4},
		},
		{
			ID: "claude-3-opus", DatedID: "claude-3-opus-20240229", Aliases: []string{"claude-3-opus-latest"},
			DisplayName: "Claude Opus 3", Created: day(2024, 2, 29), Status: StatusRetired,
			ContextWindow: 200_000, MaxOutputTokens: 4096, DefaultMaxTokens: 4096,
			Thinking: ThinkingNone, Pricing: Pricing{Price: opus4},
		},
		{
			ID: "claude-3-sonnet", DatedID: "claude-3-sonnet-20240229",
			DisplayName: "Claude Sonnet 3", Created: day(2024, 2, 29), Status: StatusRetired,
			ContextWindow: 200_000, MaxOutputTokens: 4096, DefaultMaxTokens: 4096,
			Thinking: ThinkingNone, Pricing: Pricing{Price: sonnet4},
		},
		{
			// Its retirement on the Claude API is not confirmed by the stored
			// sources (Bedrock ended it 2026-09-10); it is kept unlisted.
			// Cache prices are the pricing page's, not the usual multiples.
			ID: "claude-3-haiku", DatedID: "claude-3-haiku-20240307",
			DisplayName: "Claude Haiku 3", Created: day(2024, 3, 7), Status: StatusRetired,
			ContextWindow: 200_000, MaxOutputTokens: 4096, DefaultMaxTokens: 4096,
			Thinking: ThinkingNone, Pricing: Pricing{Price: Price{Input: 0.25, Output: 1.25, CacheRead: 0.03, CacheWrite5m: 0.30, CacheWrite1h: 0.50}},
		},
	}
}

package cli

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/llmgw/llmgw/proxy/anthropic"
)

// CatalogEntry is one model of the config file's models.catalog. An entry
// whose id is a name of a model already in the catalog (its id, dated id or
// one of its aliases) changes that model: the fields the entry sets replace
// the model's, the others keep their values (so an admin can correct one
// limit or price). Any other id adds a model. In YAML the fields are id
// (required), dated_id, aliases, display_name, created (a date), status
// (active, legacy, deprecated or retired), context_window,
// max_output_tokens, default_max_tokens, thinking (none, manual, adaptive,
// adaptive-only or always-on), prices (as in the prices section) and
// fast_multiplier (fast mode's premium: a response reporting speed "fast"
// pays every rate times this; 0 for none).
type CatalogEntry struct {
	ID string
	// Line is the entry's line in the config file, for errors.
	Line int

	// The fields the entry sets; nil when it leaves them alone.
	DatedID          *string
	Aliases          *[]string
	DisplayName      *string
	Created          *time.Time
	Status           *anthropic.Status
	ContextWindow    *int
	MaxOutputTokens  *int
	DefaultMaxTokens *int
	Thinking         *anthropic.ThinkingMode
	Prices           *Price
	FastMultiplier   *float64
}

// catalogFields are the keys of a models.catalog entry.
var catalogFields = []string{"id", "dated_id", "aliases", "display_name", "created", "status",
	"context_window", "max_output_tokens", "default_max_tokens", "thinking", "prices", "fast_multiplier"}

// UnmarshalYAML decodes a models.catalog entry; errors name the line.
func (e *CatalogEntry) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a models.catalog entry must be a mapping {id, ...}", n.Line)
	}
	*e = CatalogEntry{Line: n.Line}
	err := eachField(n, catalogFields, func(name string, v *yaml.Node) error {
		if name == "prices" {
			var p Price
			if err := p.UnmarshalYAML(v); err != nil {
				return err
			}
			e.Prices = &p
			return nil
		}
		if name == "aliases" {
			if v.Kind != yaml.SequenceNode {
				return fmt.Errorf("line %d: aliases must be a list of model names", v.Line)
			}
			list := []string{}
			for _, a := range v.Content {
				if a.Kind != yaml.ScalarNode {
					return fmt.Errorf("line %d: aliases must be a list of model names", a.Line)
				}
				list = append(list, a.Value)
			}
			e.Aliases = &list
			return nil
		}
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: %s must be a single value", v.Line, name)
		}
		return e.scalar(name, v)
	})
	if err != nil {
		return err
	}
	if strings.TrimSpace(e.ID) == "" {
		return fmt.Errorf("line %d: a models.catalog entry needs an id", n.Line)
	}
	return nil
}

// scalar sets the field name from a scalar value.
func (e *CatalogEntry) scalar(name string, v *yaml.Node) error {
	s := v.Value
	number := func(dst **int) error {
		i, err := strconv.Atoi(strings.ReplaceAll(s, "_", ""))
		if err != nil || i < 0 {
			return fmt.Errorf("line %d: %s must be a whole number of tokens, 0 or more, not %q", v.Line, name, s)
		}
		*dst = &i
		return nil
	}
	switch name {
	case "id":
		e.ID = s
	case "dated_id":
		e.DatedID = &s
	case "display_name":
		e.DisplayName = &s
	case "created":
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			if t, err = time.Parse(time.RFC3339, s); err != nil {
				return fmt.Errorf("line %d: created must be a date such as 2026-11-01, not %q", v.Line, s)
			}
		}
		t = t.UTC()
		e.Created = &t
	case "status":
		st, err := anthropic.ParseStatus(s)
		if err != nil {
			return fmt.Errorf("line %d: %w", v.Line, err)
		}
		e.Status = &st
	case "thinking":
		m, err := anthropic.ParseThinkingMode(s)
		if err != nil {
			return fmt.Errorf("line %d: %w", v.Line, err)
		}
		e.Thinking = &m
	case "context_window":
		return number(&e.ContextWindow)
	case "max_output_tokens":
		return number(&e.MaxOutputTokens)
	case "default_max_tokens":
		return number(&e.DefaultMaxTokens)
	case "fast_multiplier":
		k, err := strconv.ParseFloat(s, 64)
		if err != nil || k < 0 || math.IsInf(k, 0) || math.IsNaN(k) {
			return fmt.Errorf("line %d: fast_multiplier must be a number, 0 or more, not %q", v.Line, s)
		}
		e.FastMultiplier = &k
	}
	return nil
}

// apply returns m with the fields the entry sets. A new cap without a new
// default resets the default, so that it follows the cap (see
// anthropic.Model.DefaultMaxTokens) rather than stay above it.
func (e *CatalogEntry) apply(m anthropic.Model) anthropic.Model {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&m.DatedID, e.DatedID)
	set(&m.DisplayName, e.DisplayName)
	if e.Aliases != nil {
		m.Aliases = slices.Clone(*e.Aliases)
	}
	if e.Created != nil {
		m.Created = *e.Created
	}
	if e.Status != nil {
		m.Status = *e.Status
	}
	if e.ContextWindow != nil {
		m.ContextWindow = *e.ContextWindow
	}
	if e.MaxOutputTokens != nil {
		m.MaxOutputTokens = *e.MaxOutputTokens
		m.DefaultMaxTokens = 0
	}
	if e.DefaultMaxTokens != nil {
		m.DefaultMaxTokens = *e.DefaultMaxTokens
	}
	if e.Thinking != nil {
		m.Thinking = *e.Thinking
	}
	if e.Prices != nil {
		// One flat rate: it replaces long-prompt rates too, as a prices
		// pattern does.
		m.Pricing = anthropic.Pricing{Price: toCatalog(*e.Prices), FastMultiplier: m.Pricing.FastMultiplier}
	}
	if e.FastMultiplier != nil {
		m.Pricing.FastMultiplier = *e.FastMultiplier
	}
	return m
}

// buildCatalog returns the built-in catalog with entries applied in order
// and the prices patterns over it. An error names the entry's line.
func buildCatalog(entries []CatalogEntry, prices map[string]Price) (*anthropic.Catalog, error) {
	c := anthropic.Builtin()
	seen := map[string]int{}
	for _, e := range entries {
		if at, ok := seen[e.ID]; ok {
			return nil, fmt.Errorf("models.catalog: line %d: model %s repeats line %d", e.Line, e.ID, at)
		}
		seen[e.ID] = e.Line
		m, ok := c.Lookup(e.ID)
		changed := ok && namedBy(m, e.ID)
		if !changed {
			// New: named by its id until the entry says otherwise. A
			// name Lookup found only as a variant (a date suffix) of
			// another model is a model of its own.
			m = anthropic.Model{ID: e.ID, DisplayName: e.ID}
		}
		m = e.apply(m)
		if err := namesFree(c, m, changed); err != nil {
			return nil, fmt.Errorf("models.catalog: line %d: %w", e.Line, err)
		}
		next, err := c.With(m)
		if err != nil {
			return nil, fmt.Errorf("models.catalog: line %d: %w", e.Line, err)
		}
		c = next
	}
	return c.WithPrices(catalogPrices(prices)), nil
}

// namesFree checks that a model's names name no other model of c. With
// would replace the model such a name belongs to; for a new model that is
// never what the entry meant. A changed model (changed) keeps its own.
func namesFree(c *anthropic.Catalog, m anthropic.Model, changed bool) error {
	names := append([]string{m.ID, m.DatedID}, m.Aliases...)
	for _, n := range names {
		if n == "" {
			continue
		}
		other, ok := c.Lookup(n)
		if ok && namedBy(other, n) && (!changed || other.ID != m.ID) {
			return fmt.Errorf("model %s: name %q is already model %s", m.ID, n, other.ID)
		}
	}
	return nil
}

// namedBy reports whether name is exactly one of m's names.
func namedBy(m anthropic.Model, name string) bool {
	return m.ID == name || m.DatedID == name || slices.Contains(m.Aliases, name)
}

// catalogPrices converts the prices section for the catalog.
func catalogPrices(prices map[string]Price) map[string]anthropic.Price {
	out := make(map[string]anthropic.Price, len(prices))
	for p, pr := range prices {
		out[p] = toCatalog(pr)
	}
	return out
}

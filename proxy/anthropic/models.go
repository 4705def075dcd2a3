package anthropic

import "strings"

// The functions below answer for the built-in catalog (catalog.go), which is
// what the dialect converters use when they are given no other. A Catalog
// extended from configuration has the same methods, and the proxy passes
// that one to them.

// DefaultMaxTokens is the max_tokens to send when a converted client sets
// none: generous enough not to truncate agents, never above the model's cap,
// and 8192 for a model the catalog does not know.
func DefaultMaxTokens(model string) int { return builtin().DefaultMaxTokens(model) }

// MaxTokensCap is the largest max_tokens a model accepts, or 0 when unknown
// (then nothing is clamped and the upstream decides).
func MaxTokensCap(model string) int { return builtin().MaxTokensCap(model) }

// ClampMaxTokens limits n to the model's cap, when known.
func ClampMaxTokens(model string, n int) int { return builtin().ClampMaxTokens(model, n) }

// FitThinking makes a thinking budget and max_tokens agree with Anthropic's
// rules for model (see Catalog.FitThinking).
func FitThinking(model string, budget, maxTokens int) (int, int) {
	return builtin().FitThinking(model, budget, maxTokens)
}

// MinThinkingBudget is the smallest budget_tokens Anthropic accepts.
const MinThinkingBudget = 1024

// ThinkingBudget maps an OpenAI-style reasoning effort to a thinking budget.
// ok is false for an unknown effort; a budget of 0 with ok means thinking off.
func ThinkingBudget(effort string) (budget int, ok bool) {
	switch strings.ToLower(effort) {
	case "none":
		return 0, true
	case "minimal", "low":
		return 1024, true
	case "medium":
		return 8192, true
	case "high":
		return 24576, true
	case "xhigh", "max":
		return 32768, true
	}
	return 0, false
}

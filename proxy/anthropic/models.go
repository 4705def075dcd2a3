package anthropic

import "strings"

// modelFamily holds what a converter needs to know about a model family.
type modelFamily struct {
	prefix     string
	cap        int // largest max_tokens the family accepts
	defaultMax int // max_tokens when a converted client sets none
}

// families is matched by longest prefix first; the order below is only for
// reading. Unknown models (newer than this table) are never refused: they
// get fallbackMaxTokens and no clamp.
var families = []modelFamily{
	{"claude-opus-4-0", 32000, 32000},
	{"claude-opus-4-1", 32000, 32000},
	{"claude-opus-4-2025", 32000, 32000}, // claude-opus-4-20250514
	{"claude-opus-4", 64000, 32000},      // 4.5 and later
	{"claude-sonnet-4", 64000, 32000},
	{"claude-haiku-4", 64000, 32000},
	{"claude-3-7-sonnet", 64000, 32000},
	{"claude-3-5-sonnet", 8192, 8192},
	{"claude-3-5-haiku", 8192, 8192},
	{"claude-3-opus", 4096, 4096},
	{"claude-3-haiku", 4096, 4096},
	{"claude-3-sonnet", 4096, 4096},
}

// fallbackMaxTokens is the default for a model this table does not know.
const fallbackMaxTokens = 8192

func family(model string) (modelFamily, bool) {
	best, ok := modelFamily{}, false
	for _, f := range families {
		if strings.HasPrefix(model, f.prefix) && len(f.prefix) > len(best.prefix) {
			best, ok = f, true
		}
	}
	return best, ok
}

// DefaultMaxTokens is the max_tokens to send when a converted client sets
// none: generous enough not to truncate agents, never above the model's cap.
func DefaultMaxTokens(model string) int {
	if f, ok := family(model); ok {
		return f.defaultMax
	}
	return fallbackMaxTokens
}

// MaxTokensCap is the largest max_tokens a model accepts, or 0 when unknown
// (then nothing is clamped and the upstream decides).
func MaxTokensCap(model string) int {
	if f, ok := family(model); ok {
		return f.cap
	}
	return 0
}

// ClampMaxTokens limits n to the model's cap, when known.
func ClampMaxTokens(model string, n int) int {
	if c := MaxTokensCap(model); c > 0 && n > c {
		return c
	}
	return n
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

// FitThinking makes a thinking budget and max_tokens agree with Anthropic's
// rules: budget >= MinThinkingBudget and < max_tokens, max_tokens within the
// model's cap. It returns the adjusted pair; a budget that cannot fit under
// the cap turns thinking off (budget 0).
func FitThinking(model string, budget, maxTokens int) (int, int) {
	if budget <= 0 {
		return 0, maxTokens
	}
	budget = max(budget, MinThinkingBudget)
	if maxTokens <= budget {
		maxTokens = budget + 4096 // room for the visible answer
	}
	if c := MaxTokensCap(model); c > 0 && maxTokens > c {
		maxTokens = c
		if budget >= maxTokens {
			budget = maxTokens - 1024
		}
		if budget < MinThinkingBudget {
			return 0, maxTokens
		}
	}
	return budget, maxTokens
}

package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// NormalizeOptions tune Normalize. The zero value uses the built-in model
// catalog.
type NormalizeOptions struct {
	// Models answers for each model's max_tokens default and cap and its
	// thinking limits and mode; a *Catalog extended from configuration
	// does. Nil means the built-in catalog.
	Models ModelLimits
}

// ModelLimits are the facts about a model that Normalize needs. *Catalog
// implements it.
type ModelLimits interface {
	DefaultMaxTokens(model string) int
	ClampMaxTokens(model string, n int) int
	FitThinking(model string, budget, maxTokens int) (int, int)
	Thinking(model string) ThinkingMode
	NoSampling(model string) bool
}

// NormalizeInfo says what Normalize changed in a request.
type NormalizeInfo struct {
	// Notes says, one short line each, what was dropped or changed, for a
	// debug log line. They are never shown to the client.
	Notes []string
	// Empty is true when no message had anything left to send once blank
	// text was dropped: the conversation Normalize returns is its
	// placeholder alone. A dialect whose own API refuses an empty
	// conversation can refuse it too.
	Empty bool
	// Orphans counts the tool results that answered no tool call and were
	// kept as text.
	Orphans int
}

// normalizer is the state of one Normalize call.
type normalizer struct {
	models ModelLimits
	NormalizeInfo
}

func (n *normalizer) note(format string, args ...any) {
	n.Notes = append(n.Notes, fmt.Sprintf(format, args...))
}

// Normalize repairs a converted request so that Anthropic accepts it. A
// dialect decoder translates the client's request faithfully into r, then
// calls Normalize once; every Anthropic-side rule lives here, so each dialect
// gets the same repairs. The rules run in this order (each is stated again,
// with what the upstream refuses, at its function):
//
//  1. max_tokens: the model's default when unset, at most the model's cap.
//  2. Tool names are unique: a later tool with a name already declared is
//     dropped.
//  3. tool_choice: dropped when there are no tools; "none" carries no
//     disable_parallel_tool_use.
//  4. Blank text blocks (empty or whitespace only) are dropped, in system
//     and in messages.
//  5. Thinking blocks without a signature, and redacted thinking without
//     data, are dropped; no thinking block carries a cache mark.
//  6. A tool call's input is a JSON object: a string holding one is
//     unwrapped, anything else becomes {}.
//  7. Turns left empty are dropped and consecutive turns of one role merged.
//  8. Tool calls and results are paired: ids are made valid and unique (the
//     results that answer a renamed call follow it), every call of an
//     assistant turn is answered at the start of the next user turn in call
//     order (a call with no result gets an error result saying it was
//     interrupted, a call answered twice keeps the last answer), results
//     without a usable id are matched by tool name or call order, and a
//     result that answers no call of the turn before (an orphan, from a
//     truncated history) becomes a user text block that keeps its content:
//     "Result of tool call <id>:" and the text, its images and documents kept
//     after it. A final assistant turn with tool calls gets its results in
//     a user turn of their own.
//  9. An assistant turn is ordered thinking first, then text, then tool
//     calls.
//  10. A final assistant turn (a prefill) is dropped.
//  11. The conversation starts with a user turn: "Continue." is put first
//     when it does not.
//  12. Thinking, as the model takes it: none for a model without it; off
//     when tool use is forced, off when the tool-call turn being answered
//     does not start with signed thinking; off sent as no thinking field,
//     never disabled to a model that always thinks; adaptive with
//     output_config.effort for a model that takes no budget, a budget for
//     one that takes nothing else; a budget fit between the minimum and
//     max_tokens (off when none fits).
//  13. Sampling: none at all for a model that refuses it (NoSampling);
//     else temperature and top_p within 0..1, top_k at least 1; with
//     thinking on (or a model that always thinks), temperature only 1, no
//     top_k, top_p at least 0.95; top_p dropped when temperature is set.
//  14. Blank stop sequences are dropped.
//  15. At most four cache marks, the latest kept, without TTLs.
//
// Every message of r must have the role user or assistant. Normalize
// changes r in place and may reuse its slices; r must not be used by
// anything else meanwhile. It never fails: what cannot be repaired
// without changing the request's meaning is the decoder's to refuse.
// Normalizing a normalized request changes nothing.
func Normalize(r *Request, opt NormalizeOptions) NormalizeInfo {
	n := normalizer{models: opt.Models}
	if n.models == nil {
		n.models = builtin()
	}
	for _, rule := range rules {
		rule.apply(r, &n)
	}
	return n.NormalizeInfo
}

// rules are Normalize's repairs, in the order they run. Later rules rely on
// earlier ones: pairing needs merged turns, the prefill and placeholder rules
// need paired ones, the thinking rule reads the final turns and the tool
// choice, the sampling rule reads the thinking decision.
var rules = []struct {
	name  string
	apply func(*Request, *normalizer)
}{
	{"maxTokens", fitMaxTokens},
	{"uniqueTools", uniqueTools},
	{"toolChoice", fixToolChoice},
	{"blankText", dropBlankText},
	{"signedThinking", keepSignedThinking},
	{"toolInput", objectToolInput},
	{"mergeTurns", mergeTurns},
	{"pairToolResults", pairToolResults},
	{"assistantOrder", orderAssistantTurns},
	{"noPrefill", dropPrefill},
	{"userFirst", userFirst},
	{"thinking", fitThinking},
	{"sampling", fitSampling},
	{"stopSequences", dropBlankStops},
	{"cacheMarks", limitCacheMarks},
}

// fitMaxTokens: Anthropic requires max_tokens and refuses one above the
// model's output cap. A request without one (zero) gets the model's default;
// one above the cap is lowered to it.
func fitMaxTokens(r *Request, n *normalizer) {
	if r.MaxTokens <= 0 {
		r.MaxTokens = n.models.DefaultMaxTokens(r.Model)
	}
	r.MaxTokens = n.models.ClampMaxTokens(r.Model, r.MaxTokens)
}

// uniqueTools: Anthropic refuses two tools of one name. A later tool with a
// name already declared is dropped; the first declaration is the one the
// model sees.
func uniqueTools(r *Request, n *normalizer) {
	if len(r.Tools) < 2 {
		return
	}
	seen := make(map[string]bool, len(r.Tools))
	kept := r.Tools[:0]
	for _, t := range r.Tools {
		if seen[t.Name] {
			n.note("dropped a second tool named %s", t.Name)
			continue
		}
		seen[t.Name] = true
		kept = append(kept, t)
	}
	r.Tools = kept
}

// fixToolChoice: Anthropic refuses a tool_choice when there are no tools to
// choose from (the client declared none, or only hosted tools the decoder
// dropped): it is dropped. A choice of none takes no
// disable_parallel_tool_use: the flag is cleared.
func fixToolChoice(r *Request, n *normalizer) {
	c := r.ToolChoice
	switch {
	case c == nil:
	case len(r.Tools) == 0:
		n.note("tool_choice %s dropped: no tools to choose from", c.Type)
		r.ToolChoice = nil
	case c.Type == "none":
		c.DisableParallelToolUse = false
	}
}

// dropBlankText: Anthropic refuses text blocks that are empty or whitespace
// only, in system and in messages. They are dropped (a cache mark on one
// goes with it).
func dropBlankText(r *Request, _ *normalizer) {
	r.System = slices.DeleteFunc(r.System, blankText)
	for i := range r.Messages {
		r.Messages[i].Content = slices.DeleteFunc(r.Messages[i].Content, blankText)
	}
}

func blankText(b ContentBlock) bool {
	return b.Type == "text" && strings.TrimSpace(b.Text) == ""
}

// keepSignedThinking: Anthropic verifies the signature of every thinking
// block sent back and refuses a thinking block without one, or a redacted
// thinking block without its data. Those are dropped (what a client made up
// or lost cannot be repaired); signed blocks pass exactly as received.
// Anthropic also refuses a cache mark on a thinking block: it is cleared.
func keepSignedThinking(r *Request, _ *normalizer) {
	for i := range r.Messages {
		m := &r.Messages[i]
		m.Content = slices.DeleteFunc(m.Content, func(b ContentBlock) bool {
			return (b.Type == "thinking" && b.Signature == "") || (b.Type == "redacted_thinking" && b.Data == "")
		})
		for j := range m.Content {
			if b := &m.Content[j]; b.Type == "thinking" || b.Type == "redacted_thinking" {
				b.CacheControl = nil
			}
		}
	}
}

// objectToolInput: Anthropic refuses a tool_use whose input is not a JSON
// object. Clients send a call's arguments as a JSON string holding the
// object (OpenAI's shape), as the object itself, or as something broken
// (empty, truncated, an array). A string holding an object is unwrapped; an
// object is kept; anything else becomes {}.
func objectToolInput(r *Request, _ *normalizer) {
	for i := range r.Messages {
		for j := range r.Messages[i].Content {
			if b := &r.Messages[i].Content[j]; b.Type == "tool_use" {
				b.Input = objectInput(b.Input)
			}
		}
	}
}

func objectInput(raw json.RawMessage) json.RawMessage {
	t := bytes.TrimSpace(raw)
	if len(t) > 0 && t[0] == '"' {
		var s string
		if json.Unmarshal(t, &s) == nil {
			t = bytes.TrimSpace([]byte(s))
		}
	}
	if len(t) > 0 && t[0] == '{' && json.Valid(t) {
		return t
	}
	return json.RawMessage("{}")
}

// mergeTurns: Anthropic refuses a message with no content (other than a
// final assistant one, which the prefill rule drops anyway), and although it
// merges consecutive turns of one role itself, the tool rules apply to the
// merged turn. Turns left empty are dropped and consecutive turns of one role
// merged, so that every later rule sees strictly alternating turns.
func mergeTurns(r *Request, n *normalizer) {
	r.Messages = tidy(r.Messages)
	n.Empty = len(r.Messages) == 0
}

// tidy drops empty turns and merges consecutive turns of one role.
func tidy(msgs []Message) []Message {
	out := msgs[:0]
	for _, m := range msgs {
		if len(m.Content) == 0 {
			continue
		}
		if k := len(out); k > 0 && out[k-1].Role == m.Role {
			prev := out[k-1].Content
			// The full slice expression makes append copy rather than
			// write into an array another turn might share.
			out[k-1].Content = append(prev[:len(prev):len(prev)], m.Content...)
			continue
		}
		out = append(out, m)
	}
	return out
}

// interruptedResult is the content of the result given to a tool call that
// no result answers.
var interruptedResult = json.RawMessage(`"interrupted: no result was sent for this tool call"`)

// generatedIDPrefix starts the ids made for tool calls that came without
// one.
const generatedIDPrefix = "toolu_llmgw_"

// toolCall is a tool_use of the assistant turn being answered.
type toolCall struct {
	raw  string // the client's id as sent
	orig string // the client's id, sanitized; empty when it had none
	id   string // the id sent upstream
	name string
}

// pairToolResults: Anthropic wants every tool_use answered by exactly one
// tool_result at the start of the very next user turn, and refuses a
// tool_result that answers no tool_use of the assistant turn right before
// it ("unexpected tool_use_id", "tool_use ids were found without
// tool_result blocks immediately after"). It also wants tool_use ids that
// match ^[a-zA-Z0-9_-]+$ and that are unique in the conversation. So, turn by
// turn:
//
//   - A tool_use id is sanitized (results get the same mapping, so pairs
//     stay paired); a missing one becomes toolu_llmgw_<n>, counted through
//     the conversation; one already used earlier (some clients number their
//     calls per turn) gets a suffix _2, _3… and the results of the next turn
//     that name it answer the renamed call.
//   - A result answers the call of the previous assistant turn with its id.
//     A result whose id matches none, or that has none, answers the first
//     unanswered call of the tool it names (decoders set Name on a
//     tool_result for that; it is never sent), or, naming no tool and having
//     no id, the first unanswered call.
//   - A call answered twice keeps the last answer. A call never answered gets
//     an error result saying it was interrupted (the user stopped it, or the
//     client lost it), so the model knows and the upstream accepts the turn.
//   - A result that answers no call (an orphan: its call was cut from a
//     truncated history) becomes a user text block "Result of tool call
//     <id>:" followed by its text, with its images and documents after it:
//     nothing is lost and the upstream accepts it. An orphan with no content
//     at all is dropped.
//   - Results come first in their user turn, in the order of the calls, then
//     the turn's other blocks in their order.
//   - A final assistant turn with tool calls gets a user turn of error
//     results: the request then asks the model to go on after the
//     interrupted calls, which the upstream accepts, rather than to continue
//     a turn that awaits results, which it refuses.
//
// A user turn left empty (it held only empty orphans) is dropped and the
// turns around it merged.
func pairToolResults(r *Request, n *normalizer) {
	out := make([]Message, 0, len(r.Messages)+1)
	used := map[string]bool{}
	generated := 0
	var calls []toolCall
	for _, m := range r.Messages {
		if m.Role != "assistant" {
			m.Content = answer(calls, m.Content, n)
			calls = nil
			out = append(out, m)
			continue
		}
		for j := range m.Content {
			b := &m.Content[j]
			if b.Type != "tool_use" {
				continue
			}
			orig := SanitizeID(b.ID)
			id := orig
			if id == "" {
				generated++
				id = generatedIDPrefix + strconv.Itoa(generated)
			}
			if used[id] {
				base := id
				for k := 2; used[id]; k++ {
					id = base + "_" + strconv.Itoa(k)
				}
				if orig != "" {
					n.note("tool call id %s used before: sent as %s", orig, id)
				}
			}
			used[id] = true
			raw := b.ID
			b.ID = id
			calls = append(calls, toolCall{raw: raw, orig: orig, id: id, name: b.Name})
		}
		out = append(out, m)
	}
	if len(calls) > 0 {
		out = append(out, Message{Role: "user", Content: answer(calls, nil, n)})
	}
	r.Messages = tidy(out)
}

// answer returns the blocks of a user turn that follows an assistant turn
// making calls: one result per call first, in call order, then the other
// blocks, orphan results turned into text.
func answer(calls []toolCall, blocks []ContentBlock, n *normalizer) []ContentBlock {
	if len(calls) == 0 && !slices.ContainsFunc(blocks, isResult) {
		return blocks
	}
	got := make([]int, len(calls)) // index in blocks of each call's answer
	for k := range got {
		got[k] = -1
	}
	var unmatched []int
	for j := range blocks {
		b := &blocks[j]
		if b.Type != "tool_result" {
			continue
		}
		k := callWithID(calls, got, b.ToolUseID)
		b.ToolUseID = SanitizeID(b.ToolUseID)
		if k < 0 {
			unmatched = append(unmatched, j)
			continue
		}
		if got[k] >= 0 {
			n.note("tool call %s answered twice: the last answer kept", calls[k].id)
		}
		got[k] = j
	}
	orphan := map[int]bool{}
	for _, j := range unmatched {
		b := &blocks[j]
		k := -1
		if b.Name != "" || b.ToolUseID == "" {
			k = openCall(calls, got, b.Name)
		}
		if k < 0 {
			orphan[j] = true
			continue
		}
		got[k] = j
	}
	out := make([]ContentBlock, 0, len(calls)+len(blocks))
	for k, c := range calls {
		if got[k] < 0 {
			n.note("tool call %s had no result: sent as interrupted", c.id)
			out = append(out, ContentBlock{Type: "tool_result", ToolUseID: c.id, Content: interruptedResult, IsError: true})
			continue
		}
		b := blocks[got[k]]
		b.ToolUseID, b.Name = c.id, ""
		out = append(out, b)
	}
	for j, b := range blocks {
		switch {
		case b.Type != "tool_result":
			out = append(out, b)
		case orphan[j]:
			n.Orphans++
			n.note("kept the result of unknown tool call %s as text", orphanLabel(b))
			out = append(out, orphanBlocks(b)...)
		}
	}
	return out
}

func isResult(b ContentBlock) bool { return b.Type == "tool_result" }

// callWithID returns the call a result with the client's id answers: a call
// with exactly that id, else one whose id sanitizes alike (two client ids
// may, and each answer should still find its own call). Among several, the
// first not answered yet, else the last (a later answer replaces an earlier
// one). It returns -1 for none.
func callWithID(calls []toolCall, got []int, id string) int {
	if id == "" {
		return -1
	}
	if k := callWhere(calls, got, func(c toolCall) bool { return c.raw == id }); k >= 0 {
		return k
	}
	sid := SanitizeID(id)
	return callWhere(calls, got, func(c toolCall) bool { return c.orig == sid || c.id == sid })
}

func callWhere(calls []toolCall, got []int, match func(toolCall) bool) int {
	last := -1
	for k, c := range calls {
		if !match(c) {
			continue
		}
		if got[k] < 0 {
			return k
		}
		last = k
	}
	return last
}

// openCall returns the first unanswered call of the tool name (of any tool
// when name is empty), or -1.
func openCall(calls []toolCall, got []int, name string) int {
	for k, c := range calls {
		if got[k] < 0 && (name == "" || c.name == name) {
			return k
		}
	}
	return -1
}

func orphanLabel(b ContentBlock) string {
	switch {
	case b.ToolUseID != "":
		return b.ToolUseID
	case b.Name != "":
		return "to " + b.Name
	}
	return "without an id"
}

// orphanBlocks turns a tool result that answers no call into user content
// that keeps what it said: a text block naming the call, then its images
// and documents. A result with nothing in it gives nothing.
func orphanBlocks(b ContentBlock) []ContentBlock {
	text, media := resultContent(b.Content)
	if strings.TrimSpace(text) == "" && len(media) == 0 {
		return nil
	}
	head := "Result of tool call "
	if b.IsError {
		head = "Error from tool call "
	}
	head += orphanLabel(b) + ":"
	if text != "" {
		head += "\n" + text
	}
	out := append([]ContentBlock{{Type: "text", Text: head}}, media...)
	if b.CacheControl != nil {
		out[len(out)-1].CacheControl = b.CacheControl
	}
	return out
}

// resultContent reads a tool_result's content (a string or a list of
// blocks): its text, the text blocks joined by newlines, and its other
// blocks. Content of any other shape is taken as text.
func resultContent(raw json.RawMessage) (string, []ContentBlock) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var blocks []ContentBlock
	if json.Unmarshal(raw, &blocks) != nil {
		return string(raw), nil
	}
	var texts []string
	var media []ContentBlock
	for _, x := range blocks {
		switch {
		case x.Type == "text":
			if strings.TrimSpace(x.Text) != "" {
				texts = append(texts, x.Text)
			}
		case x.Type != "":
			x.CacheControl = nil
			media = append(media, x)
		}
	}
	return strings.Join(texts, "\n"), media
}

// orderAssistantTurns: Anthropic produces an assistant turn as thinking,
// then text, then tool calls, and with thinking on it refuses a tool-call
// turn that does not start with its thinking. Clients that keep these as
// separate items (reasoning, message and call items; streamed parts) can
// send them in another order. Each assistant turn is reordered, stably:
// thinking, then text and other blocks, then tool calls.
func orderAssistantTurns(r *Request, _ *normalizer) {
	for i := range r.Messages {
		if m := &r.Messages[i]; m.Role == "assistant" && !slices.IsSortedFunc(m.Content, byRank) {
			slices.SortStableFunc(m.Content, byRank)
		}
	}
}

func byRank(a, b ContentBlock) int { return rank(a) - rank(b) }

func rank(b ContentBlock) int {
	switch b.Type {
	case "thinking", "redacted_thinking":
		return 0
	case "tool_use":
		return 2
	}
	return 1
}

// dropPrefill: a conversation that ends in an assistant turn asks the model
// to continue that turn (a prefill), which newer models refuse. Clients send
// one by accident (an empty answer left in the history, a retry after a cut
// stream), so the final assistant turn is dropped. A final turn with tool
// calls never reaches here: pairToolResults answered it.
func dropPrefill(r *Request, n *normalizer) {
	if k := len(r.Messages); k > 0 && r.Messages[k-1].Role == "assistant" {
		n.note("dropped the final assistant turn: newer models refuse a prefill")
		r.Messages = r.Messages[:k-1]
	}
}

// placeholder is the text of the user turn put first in a conversation that
// has none there.
const placeholder = "Continue."

// userFirst: Anthropic needs at least one message, and the first must be the
// user's. A conversation with none left (only system prompts, or only blank
// text), or one that starts with the assistant (a history that begins with a
// greeting), gets a user turn "Continue." first.
func userFirst(r *Request, n *normalizer) {
	if len(r.Messages) > 0 && r.Messages[0].Role == "user" {
		return
	}
	n.note("added a user turn first: the conversation must start with one")
	r.Messages = slices.Insert(r.Messages, 0, Message{Role: "user", Content: []ContentBlock{{Type: "text", Text: placeholder}}})
}

// maxThinkingBudget bounds the budget a client asks for: no model thinks
// for a million tokens in one answer, and the bound keeps FitThinking's
// arithmetic from overflowing.
const maxThinkingBudget = 1 << 20

// fitThinking: Anthropic's rules about extended thinking, by how the model
// takes it (its ThinkingMode in the catalog; a model the catalog does not
// know gets only the rules that hold for every model).
//
//   - A model without extended thinking (ThinkingNone) gets no thinking
//     field.
//   - Anthropic refuses thinking with forced tool use (tool_choice any or
//     tool). The forced tool is what the client will parse (structured
//     output through a tool, most often), so the tool choice is kept and
//     thinking turned off.
//   - With thinking on, the assistant turn whose tool calls the final user
//     turn answers must start with a signed thinking block ("Expected
//     thinking or redacted_thinking, but found tool_use"). A client that
//     dropped the thinking, or a history made by another model, cannot send
//     it back, so thinking is turned off for this request; it comes back on
//     the next turn that does not answer such a call.
//   - Thinking off is always sent as no thinking field, never as {type:
//     disabled}: models that always think (ThinkingAlwaysOn: Fable, Mythos,
//     Opus 5.5) refuse disabled with a 400, so a disabled a client asked
//     for is left out for them too. Such a model then thinks anyway, by its
//     own default; whether the upstream accepts forced tool use or an
//     unsigned tool loop while it does is not in the sources llmgw was
//     written from. If it refuses, the client sees the upstream's 400, not
//     one llmgw caused by sending disabled.
//   - Models that take adaptive thinking only (ThinkingAdaptiveOnly and
//     ThinkingAlwaysOn, 4.7 and later) refuse budget_tokens with a 400. A
//     request that asks for thinking is sent as {type: adaptive}, with the
//     effort the client asked for (Thinking.Effort), or for a bare budget
//     the effort level whose budget covers it (adaptiveEffort), as
//     output_config.effort unless the request sets one.
//   - Models that take budgets only (ThinkingManual, 4.5 and earlier) do
//     not know adaptive thinking: an adaptive request gets the budget of its
//     effort (medium without one).
//   - budget_tokens must be at least 1024 and below max_tokens, and
//     max_tokens within the model's cap. The budget is raised to the
//     minimum, max_tokens raised above it within the cap, the budget lowered
//     under the cap when it must be (FitThinking); when nothing fits,
//     thinking is turned off.
func fitThinking(r *Request, n *normalizer) {
	mode := n.models.Thinking(r.Model)
	t := r.Thinking
	switch {
	case t == nil:
		return
	case mode == ThinkingNone:
		if t.Type != "disabled" {
			n.note("thinking off: the model has no extended thinking")
		}
		r.Thinking = nil
		return
	case t.Type == "disabled":
		if mode == ThinkingAlwaysOn {
			n.note("thinking disabled left out: the model always thinks and refuses disabled")
			r.Thinking = nil
		}
		return
	}
	if c := r.ToolChoice; c != nil && (c.Type == "any" || c.Type == "tool") {
		n.note("thinking off: Anthropic does not think with forced tool use (tool_choice %s)", c.Type)
		r.Thinking = nil
		return
	}
	if toolLoopWithoutThinking(r.Messages) {
		n.note("thinking off: the tool-call turn being answered has no signed thinking")
		r.Thinking = nil
		return
	}
	switch mode {
	case ThinkingAdaptiveOnly, ThinkingAlwaysOn:
		e := adaptiveEffort(t)
		if t.Type != "adaptive" {
			n.note("thinking sent as adaptive with effort %q: the model takes no budget_tokens", e)
		}
		r.Thinking = &Thinking{Type: "adaptive"}
		if e == "" {
			return
		}
		if r.OutputConfig == nil {
			r.OutputConfig = &OutputConfig{}
		}
		if r.OutputConfig.Effort == "" {
			r.OutputConfig.Effort = e
		}
		return
	case ThinkingManual:
		if t.Type == "adaptive" {
			b, ok := ThinkingBudget(t.Effort)
			if !ok || b <= 0 {
				b, _ = ThinkingBudget("medium")
			}
			n.note("adaptive thinking sent as a budget of %d: the model takes budgets only", b)
			t = &Thinking{Type: "enabled", BudgetTokens: b}
		}
	}
	if t.Type != "enabled" {
		return
	}
	budget := min(max(t.BudgetTokens, MinThinkingBudget), maxThinkingBudget)
	budget, maxTokens := n.models.FitThinking(r.Model, budget, r.MaxTokens)
	if budget <= 0 {
		n.note("thinking off: no budget fits under the model's output cap")
		r.Thinking = nil
		return
	}
	r.Thinking = &Thinking{Type: "enabled", BudgetTokens: budget}
	r.MaxTokens = maxTokens
}

// adaptiveEffort returns the output_config.effort for a request that asked
// for thinking t: the client's effort (minimal, which output_config lacks,
// as low), else the lowest level whose ThinkingBudget covers t's budget (max
// above high's), else "" (the model's default).
func adaptiveEffort(t *Thinking) string {
	switch e := strings.ToLower(t.Effort); e {
	case "low", "medium", "high", "xhigh", "max":
		return e
	case "minimal":
		return "low"
	}
	if t.BudgetTokens <= 0 {
		return ""
	}
	for _, e := range []string{"low", "medium", "high"} {
		if b, _ := ThinkingBudget(e); t.BudgetTokens <= b {
			return e
		}
	}
	return "max"
}

// thinks reports whether the model will think on r: thinking asked for and
// kept, or a model that always thinks.
func thinks(r *Request, n *normalizer) bool {
	return (r.Thinking != nil && r.Thinking.Type != "disabled") || n.models.Thinking(r.Model) == ThinkingAlwaysOn
}

// toolLoopWithoutThinking reports whether the conversation ends in tool
// results answering an assistant turn that does not start with thinking.
func toolLoopWithoutThinking(msgs []Message) bool {
	k := len(msgs)
	if k < 2 || msgs[k-1].Role != "user" || msgs[k-2].Role != "assistant" {
		return false
	}
	if !slices.ContainsFunc(msgs[k-1].Content, isResult) {
		return false
	}
	a := msgs[k-2].Content
	return len(a) == 0 || (a[0].Type != "thinking" && a[0].Type != "redacted_thinking")
}

// fitSampling: Anthropic's ranges and combinations for sampling.
//
//   - Models from 4.7 on (Opus 4.7 and later, Sonnet 5, Haiku 5.5, Fable,
//     Mythos) refuse temperature, top_p and top_k with a 400, whatever
//     their values; so does every model under anthropic-version
//     2026-10-21. Their catalog entry says so (Model.NoSampling) and the
//     three are dropped. OpenAI and Gemini clients send them on every
//     request, so refusing would make those models unusable to them.
//   - temperature and top_p lie in 0..1 (OpenAI's temperature goes to 2):
//     values outside are clamped; top_k below 1 is dropped.
//   - With thinking on, only temperature 1, no top_k, and top_p of at least
//     0.95 are accepted: the others are dropped (the default is what
//     thinking needs). Thinking is on when the thinking rule kept it, and
//     always for a model that always thinks, whatever the request says.
//   - Newer models refuse temperature and top_p together, which most OpenAI
//     clients send: top_p is dropped, temperature kept. This runs after the
//     thinking rule, so a top_p that thinking allows survives a temperature
//     thinking drops.
func fitSampling(r *Request, n *normalizer) {
	if n.models.NoSampling(r.Model) {
		for _, p := range []struct {
			name string
			set  bool
		}{{"temperature", r.Temperature != nil}, {"top_p", r.TopP != nil}, {"top_k", r.TopK != nil}} {
			if p.set {
				n.note("%s dropped: %s takes no sampling parameters", p.name, r.Model)
			}
		}
		r.Temperature, r.TopP, r.TopK = nil, nil, nil
		return
	}
	if t := r.Temperature; t != nil && (*t < 0 || *t > 1) {
		c := min(max(*t, 0), 1)
		n.note("temperature %g clamped to %g", *t, c)
		r.Temperature = &c
	}
	if p := r.TopP; p != nil && (*p < 0 || *p > 1) {
		c := min(max(*p, 0), 1)
		r.TopP = &c
	}
	if k := r.TopK; k != nil && *k < 1 {
		r.TopK = nil
	}
	if thinks(r, n) {
		if t := r.Temperature; t != nil && *t != 1 {
			n.note("temperature dropped: thinking needs the default")
			r.Temperature = nil
		}
		if r.TopK != nil {
			n.note("top_k dropped: thinking does not take it")
			r.TopK = nil
		}
		if p := r.TopP; p != nil && *p < 0.95 {
			n.note("top_p dropped: thinking needs 0.95 or more")
			r.TopP = nil
		}
	}
	if r.Temperature != nil && r.TopP != nil {
		n.note("top_p dropped: Anthropic takes temperature or top_p, not both")
		r.TopP = nil
	}
}

// dropBlankStops: Anthropic refuses a stop sequence that is empty or
// whitespace only (clients send "\n" and ""). Those are dropped.
func dropBlankStops(r *Request, n *normalizer) {
	kept := r.StopSequences[:0]
	for _, s := range r.StopSequences {
		if strings.TrimSpace(s) == "" {
			n.note("dropped the blank stop sequence %q", s)
			continue
		}
		kept = append(kept, s)
	}
	if len(kept) == 0 {
		kept = nil
	}
	r.StopSequences = kept
}

// limitCacheMarks: Anthropic refuses more than four cache_control marks, and
// a mark with a 1-hour TTL after one with the default 5 minutes. The
// earliest client marks beyond four are dropped, and the TTLs of those kept:
// the proxy adds default marks to the tools, the system prompt and recent
// user turns (AddCacheBreakpoints), before any mark a client can put on a
// message. Each cache hit refreshes a mark's lifetime, so the default serves
// a client's longer one in practice.
func limitCacheMarks(r *Request, _ *normalizer) {
	var marks []**CacheControl
	for i := range r.Tools {
		if r.Tools[i].CacheControl != nil {
			marks = append(marks, &r.Tools[i].CacheControl)
		}
	}
	for i := range r.System {
		if r.System[i].CacheControl != nil {
			marks = append(marks, &r.System[i].CacheControl)
		}
	}
	for i := range r.Messages {
		for j := range r.Messages[i].Content {
			if r.Messages[i].Content[j].CacheControl != nil {
				marks = append(marks, &r.Messages[i].Content[j].CacheControl)
			}
		}
	}
	for i, m := range marks {
		if i < len(marks)-MaxBreakpoints {
			*m = nil
			continue
		}
		if (*m).TTL != "" {
			*m = &CacheControl{Type: (*m).Type}
		}
	}
}

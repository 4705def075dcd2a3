package responses

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/openai"
)

// echo holds the request fields the response object repeats, already in
// their response form.
type echo struct {
	instructions      json.RawMessage
	tools             json.RawMessage
	toolChoice        json.RawMessage
	parallelToolCalls bool
	temperature       float64
	topP              float64
	metadata          json.RawMessage
	maxOutputTokens   *int
	maxToolCalls      *int
	topLogprobs       *int
	reasoning         json.RawMessage
	text              json.RawMessage
	promptCacheKey    *string
	safetyIdentifier  *string
	user              *string
	truncation        string
	set               bool // false in a zero Info: newResponse uses the defaults
}

func newEcho(wr *wireRequest, fields map[string]json.RawMessage) echo {
	raw := func(name, def string) json.RawMessage {
		if v, ok := fields[name]; ok && !isNull(v) {
			return v
		}
		if def == "" {
			return nil
		}
		return json.RawMessage(def)
	}
	e := echo{
		instructions:      raw("instructions", ""),
		tools:             raw("tools", "[]"),
		toolChoice:        raw("tool_choice", `"auto"`),
		parallelToolCalls: wr.ParallelToolCalls == nil || *wr.ParallelToolCalls,
		temperature:       1,
		topP:              1,
		metadata:          raw("metadata", "{}"),
		maxOutputTokens:   wr.MaxOutputTokens,
		maxToolCalls:      wr.MaxToolCalls,
		topLogprobs:       wr.TopLogprobs,
		reasoning:         raw("reasoning", `{"effort":null,"summary":null}`),
		text:              raw("text", `{"format":{"type":"text"}}`),
		promptCacheKey:    wr.PromptCacheKey,
		safetyIdentifier:  wr.SafetyIdentifier,
		user:              wr.User,
		truncation:        "disabled",
		set:               true,
	}
	if wr.Temperature != nil {
		e.temperature = *wr.Temperature
	}
	if wr.TopP != nil {
		e.topP = *wr.TopP
	}
	if wr.Truncation != nil && *wr.Truncation != "" {
		e.truncation = *wr.Truncation
	}
	return e
}

// responseObject is the Responses API's response object, fields in the
// order OpenAI sends them.
type responseObject struct {
	ID                 string             `json:"id"`
	Object             string             `json:"object"`
	CreatedAt          int64              `json:"created_at"`
	Status             string             `json:"status"`
	Background         bool               `json:"background"`
	Error              *responseError     `json:"error"`
	IncompleteDetails  *incompleteDetails `json:"incomplete_details"`
	Instructions       json.RawMessage    `json:"instructions"`
	MaxOutputTokens    *int               `json:"max_output_tokens"`
	MaxToolCalls       *int               `json:"max_tool_calls"`
	Model              string             `json:"model"`
	Output             []json.RawMessage  `json:"output"`
	ParallelToolCalls  bool               `json:"parallel_tool_calls"`
	PreviousResponseID *string            `json:"previous_response_id"`
	PromptCacheKey     *string            `json:"prompt_cache_key"`
	Reasoning          json.RawMessage    `json:"reasoning"`
	SafetyIdentifier   *string            `json:"safety_identifier"`
	ServiceTier        string             `json:"service_tier"`
	Store              bool               `json:"store"`
	Temperature        float64            `json:"temperature"`
	Text               json.RawMessage    `json:"text"`
	ToolChoice         json.RawMessage    `json:"tool_choice"`
	Tools              json.RawMessage    `json:"tools"`
	TopLogprobs        *int               `json:"top_logprobs"`
	TopP               float64            `json:"top_p"`
	Truncation         string             `json:"truncation"`
	Usage              *usage             `json:"usage"`
	User               *string            `json:"user"`
	Metadata           json.RawMessage    `json:"metadata"`
}

type responseError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type incompleteDetails struct {
	Reason string `json:"reason"` // max_output_tokens or content_filter
}

// newResponse returns the response object with everything but status,
// output and usage filled in.
func newResponse(id string, info *Info) responseObject {
	e := &info.echo
	if !e.set {
		def := newEcho(&wireRequest{}, nil)
		e = &def
	}
	return responseObject{
		ID: id, Object: "response", CreatedAt: info.Created.Unix(), Status: "in_progress",
		Instructions: e.instructions, MaxOutputTokens: e.maxOutputTokens, MaxToolCalls: e.maxToolCalls,
		Model: info.Model, Output: []json.RawMessage{}, ParallelToolCalls: e.parallelToolCalls,
		PromptCacheKey: e.promptCacheKey, Reasoning: orNull(e.reasoning), SafetyIdentifier: e.safetyIdentifier,
		ServiceTier: "default", Store: false, Temperature: e.temperature, Text: orNull(e.text),
		ToolChoice: orNull(e.toolChoice), Tools: orEmpty(e.tools), TopLogprobs: e.topLogprobs, TopP: e.topP,
		Truncation: nonEmpty(e.truncation, "disabled"), User: e.user, Metadata: orEmptyObject(e.metadata),
	}
}

func orNull(r json.RawMessage) json.RawMessage {
	if len(r) == 0 {
		return json.RawMessage("null")
	}
	return r
}

func orEmpty(r json.RawMessage) json.RawMessage {
	if len(r) == 0 {
		return json.RawMessage("[]")
	}
	return r
}

func orEmptyObject(r json.RawMessage) json.RawMessage {
	if len(r) == 0 {
		return json.RawMessage("{}")
	}
	return r
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// finish sets the final status from the upstream stop reason:
// end_turn, tool_use, stop_sequence and pause_turn complete; max_tokens and a
// full context window are incomplete for max_output_tokens; a refusal is
// incomplete for content_filter.
func (r *responseObject) finish(stopReason string) {
	r.Status = "completed"
	switch stopReason {
	case "max_tokens", "model_context_window_exceeded":
		r.Status, r.IncompleteDetails = "incomplete", &incompleteDetails{Reason: "max_output_tokens"}
	case "refusal", "sensitive":
		r.Status, r.IncompleteDetails = "incomplete", &incompleteDetails{Reason: "content_filter"}
	}
}

// usage is the Responses usage object.
type usage struct {
	InputTokens        int64 `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens     int64 `json:"cached_tokens"`
		CacheWriteTokens int64 `json:"cache_write_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int64 `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int64 `json:"total_tokens"`
}

// newUsage converts Anthropic's figures: the prompt total includes cache
// reads and writes (Anthropic's input_tokens does not), cached_tokens are
// the reads.
func newUsage(t llmgw.Tokens, reasoning int64) *usage {
	u := &usage{InputTokens: t.Input + t.CacheRead + t.CacheWrite, OutputTokens: t.Output}
	u.InputTokensDetails.CachedTokens = t.CacheRead
	u.InputTokensDetails.CacheWriteTokens = t.CacheWrite
	u.OutputTokensDetails.ReasoningTokens = reasoning
	u.TotalTokens = u.InputTokens + u.OutputTokens
	return u
}

// Output items.

type outputText struct {
	Type        string     `json:"type"` // output_text
	Text        string     `json:"text"`
	Annotations []struct{} `json:"annotations"`
	Logprobs    []struct{} `json:"logprobs"`
}

var none = []struct{}{}

func newOutputText(text string) outputText {
	return outputText{Type: "output_text", Text: text, Annotations: none, Logprobs: none}
}

type messageItem struct {
	ID      string       `json:"id"`
	Type    string       `json:"type"` // message
	Status  string       `json:"status"`
	Role    string       `json:"role"`
	Content []outputText `json:"content"`
}

type functionCallItem struct {
	ID        string `json:"id"`
	Type      string `json:"type"` // function_call
	Status    string `json:"status"`
	Arguments string `json:"arguments"`
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

type customToolCallItem struct {
	ID        string `json:"id"`
	Type      string `json:"type"` // custom_tool_call
	Status    string `json:"status"`
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Input     string `json:"input"`
	Namespace string `json:"namespace,omitempty"`
}

type summaryText struct {
	Type string `json:"type"` // summary_text
	Text string `json:"text"`
}

type reasoningItem struct {
	ID               string        `json:"id"`
	Type             string        `json:"type"` // reasoning
	Summary          []summaryText `json:"summary"`
	EncryptedContent *string       `json:"encrypted_content"`
}

// ids makes the ids of one response: resp_<base> for the response, and
// <prefix>_<base>_<output index> for its items. The base comes from the
// upstream message id, so ids are stable for a given upstream answer.
type ids struct{ base string }

func newIDs(messageID string) ids {
	base := strings.TrimPrefix(messageID, "msg_")
	if base == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		base = hex.EncodeToString(b[:])
	}
	return ids{base: base}
}

func (x ids) response() string { return "resp_" + x.base }

func (x ids) item(prefix string, index int) string {
	return prefix + "_" + x.base + "_" + strconv.Itoa(index)
}

// clientTool returns the client's view of an upstream tool name.
func (info *Info) clientTool(upstream string) Tool {
	if t, ok := info.Tools[upstream]; ok {
		return t
	}
	return Tool{Name: upstream}
}

// unwrapCustom returns the raw text of a custom tool call from its upstream
// input {"input": "…"}: never the JSON wrapper, which is there only because
// an Anthropic tool input must be an object. An input the model did
// not wrap as asked is passed on as its single string field, else as is.
func unwrapCustom(input []byte) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(input, &obj) != nil {
		return string(input)
	}
	var s string
	if v, ok := obj["input"]; ok && json.Unmarshal(v, &s) == nil {
		return s
	}
	if len(obj) == 1 {
		for _, v := range obj {
			if json.Unmarshal(v, &s) == nil {
				return s
			}
		}
	}
	if len(obj) == 0 {
		return ""
	}
	return string(input)
}

// Result builds the non-streaming response object from an upstream answer
// rebuilt by anthropic.Accumulator.
func Result(acc *anthropic.Accumulator, info Info) ([]byte, error) {
	msg := &acc.Response
	x := newIDs(msg.ID)
	resp := newResponse(x.response(), &info)
	var text *messageItem // the open text run
	var items []any
	flush := func() {
		if text != nil {
			items = append(items, text)
			text = nil
		}
	}
	for _, b := range msg.Content {
		switch b.Type {
		case "text":
			if text == nil {
				text = &messageItem{ID: x.item("msg", len(items)), Type: "message", Status: "completed", Role: "assistant",
					Content: []outputText{newOutputText("")}}
			}
			text.Content[0].Text += b.Text
		case "thinking", "redacted_thinking":
			flush()
			items = append(items, reasoningOf(x.item("rs", len(items)), b))
		case "tool_use":
			flush()
			items = append(items, toolCallOf(x, len(items), &info, b.ID, b.Name, b.Input))
		}
		// Server tool blocks (server_tool_use, web_search_tool_result…) have
		// no Responses form for a client that did not ask for hosted tools.
	}
	flush()
	for _, it := range items {
		raw, err := marshal(it)
		if err != nil {
			return nil, fmt.Errorf("encode output item: %w", err)
		}
		resp.Output = append(resp.Output, raw)
	}
	resp.finish(msg.StopReason)
	resp.Usage = newUsage(acc.Tally.Tokens, acc.Tally.Thinking)
	out, err := marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("encode response: %w", err)
	}
	return out, nil
}

// reasoningOf is the reasoning item of a complete thinking or
// redacted_thinking block.
func reasoningOf(id string, b anthropic.ContentBlock) *reasoningItem {
	it := &reasoningItem{ID: id, Type: "reasoning", Summary: []summaryText{}}
	switch b.Type {
	case "thinking":
		if b.Thinking != "" {
			it.Summary = append(it.Summary, summaryText{Type: "summary_text", Text: b.Thinking})
		}
		if b.Signature != "" {
			sealed := sealThinking(sealedThinking{Type: "thinking", Thinking: b.Thinking, Signature: b.Signature})
			it.EncryptedContent = &sealed
		}
	case "redacted_thinking":
		sealed := sealThinking(sealedThinking{Type: "redacted_thinking", Data: b.Data})
		it.EncryptedContent = &sealed
	}
	return it
}

// toolCallOf is the output item of a complete tool_use block: a
// function_call, or a custom_tool_call for a freeform tool.
func toolCallOf(x ids, index int, info *Info, callID, name string, input []byte) any {
	t := info.clientTool(name)
	if t.Custom {
		return &customToolCallItem{ID: x.item("ctc", index), Type: "custom_tool_call", Status: "completed",
			CallID: callID, Name: t.Name, Input: unwrapCustom(input), Namespace: t.Namespace}
	}
	args := string(bytes.TrimSpace(input))
	if args == "" {
		args = "{}"
	}
	return &functionCallItem{ID: x.item("fc", index), Type: "function_call", Status: "completed",
		Arguments: args, CallID: callID, Name: t.Name, Namespace: t.Namespace}
}

// ErrorBody renders an error in OpenAI's shape,
// {"error":{"message","type","param","code"}}, with the status the OpenAI
// SDKs expect: Responses shares Chat Completions' errors (openai.ErrorBody),
// so a context overflow carries code context_length_exceeded, which makes
// Codex compact its history.
func ErrorBody(status int, anthType, msg string) (int, []byte) {
	return openai.ErrorBody(status, anthType, msg)
}

// failureCode is the response.error.code of a response.failed event: the
// codes Codex acts on where they apply (context_length_exceeded makes it
// compact, rate_limit_exceeded and insufficient_quota are reported as such),
// server_error otherwise, which it retries.
func failureCode(anthType, msg string) string {
	switch anthType {
	case "invalid_request_error":
		if anthropic.IsContextOverflow(msg) {
			return "context_length_exceeded"
		}
		return "invalid_prompt"
	case "rate_limit_error":
		return "rate_limit_exceeded"
	case "billing_error":
		return "insufficient_quota"
	}
	return "server_error"
}

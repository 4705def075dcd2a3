package openai

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/llmgw/llmgw/proxy/anthropic"
)

// DecodeOptions tune DecodeChat.
type DecodeOptions struct {
	// Aliases map model names clients insist on (gpt-4o) to Anthropic model
	// ids. A name without an alias passes through unchanged.
	Aliases map[string]string
	// Models answers for each model's max_tokens default and cap and how it
	// takes thinking: the catalog the config file extended. Nil means the
	// built-in catalog.
	Models anthropic.ModelLimits
	// Now is the clock the response's created time comes from: the
	// server's. Nil means time.Now.
	Now func() time.Time
}

// ChatInfo is what the response side needs to know about a decoded request.
// The encoder and ChatResult only read it.
type ChatInfo struct {
	// Model is the model as the client named it, echoed in responses.
	Model string
	// Stream is true when the client asked for a stream.
	Stream bool
	// IncludeUsage is stream_options.include_usage: end the stream with a
	// usage chunk, and carry "usage": null on every other chunk.
	IncludeUsage bool
	// ToolNames maps the tool names sent upstream back to the client's.
	ToolNames *anthropic.ToolNames
	// Ignored lists the request fields that were dropped because they are
	// informational or tune something Anthropic does not have (seed,
	// logprobs, store, hosted tools, ...). The caller may log them; real
	// clients send them on every request, so they are never refused.
	Ignored []string
	// Session is the conversation the client names: prompt_cache_key, else
	// user; "" if neither. The gateway keeps a conversation on one account
	// so its prompt cache is read.
	Session string
	// Notes says what anthropic.Normalize changed to make the request one
	// Anthropic accepts (a dropped temperature, a merged turn…), for a
	// debug log line.
	Notes []string
	// Created is the Unix time put in responses; zero means now.
	Created int64
}

// chatRequest is the part of a Chat Completions request the gateway reads.
// Fields with more than one JSON shape stay raw and are decoded by hand.
type chatRequest struct {
	Model               *string           `json:"model"`
	Messages            []json.RawMessage `json:"messages"`
	MaxTokens           *int              `json:"max_tokens"`
	MaxCompletionTokens *int              `json:"max_completion_tokens"`
	Temperature         *float64          `json:"temperature"`
	TopP                *float64          `json:"top_p"`
	TopK                *int              `json:"top_k"` // not OpenAI's, sent by some clients
	N                   *int              `json:"n"`
	Stop                json.RawMessage   `json:"stop"`
	Stream              *bool             `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Tools             []json.RawMessage `json:"tools"`
	ToolChoice        json.RawMessage   `json:"tool_choice"`
	ParallelToolCalls *bool             `json:"parallel_tool_calls"`
	ReasoningEffort   *string           `json:"reasoning_effort"`
	Thinking          *struct {         // Anthropic's own, sent by some clients through extra_body
		Type         string `json:"type"`
		BudgetTokens int    `json:"budget_tokens"`
	} `json:"thinking"`
	ResponseFormat   json.RawMessage `json:"response_format"`
	User             *string         `json:"user"`
	SafetyIdentifier *string         `json:"safety_identifier"`
	Functions        json.RawMessage `json:"functions"`
	FunctionCall     json.RawMessage `json:"function_call"`

	// Fields that are informational, or tune things Anthropic does not
	// have: dropped and reported in ChatInfo.Ignored.
	Audio                json.RawMessage `json:"audio"`
	FrequencyPenalty     json.RawMessage `json:"frequency_penalty"`
	LogitBias            json.RawMessage `json:"logit_bias"`
	Logprobs             json.RawMessage `json:"logprobs"`
	Metadata             json.RawMessage `json:"metadata"`
	Modalities           json.RawMessage `json:"modalities"`
	Prediction           json.RawMessage `json:"prediction"`
	PresencePenalty      json.RawMessage `json:"presence_penalty"`
	PromptCacheKey       json.RawMessage `json:"prompt_cache_key"`
	PromptCacheOptions   json.RawMessage `json:"prompt_cache_options"`
	PromptCacheRetention json.RawMessage `json:"prompt_cache_retention"`
	Seed                 json.RawMessage `json:"seed"`
	ServiceTier          json.RawMessage `json:"service_tier"`
	Store                json.RawMessage `json:"store"`
	TopLogprobs          json.RawMessage `json:"top_logprobs"`
	Verbosity            json.RawMessage `json:"verbosity"`
	WebSearchOptions     json.RawMessage `json:"web_search_options"`
}

// ignored lists the ignorable fields present in the request, by JSON name.
func (cr *chatRequest) ignored() []string {
	var out []string
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{
		{"audio", cr.Audio}, {"frequency_penalty", cr.FrequencyPenalty}, {"logit_bias", cr.LogitBias},
		{"logprobs", cr.Logprobs}, {"metadata", cr.Metadata}, {"modalities", cr.Modalities},
		{"prediction", cr.Prediction}, {"presence_penalty", cr.PresencePenalty},
		{"prompt_cache_key", cr.PromptCacheKey}, {"prompt_cache_options", cr.PromptCacheOptions},
		{"prompt_cache_retention", cr.PromptCacheRetention}, {"seed", cr.Seed}, {"service_tier", cr.ServiceTier},
		{"store", cr.Store}, {"top_logprobs", cr.TopLogprobs}, {"verbosity", cr.Verbosity},
		{"web_search_options", cr.WebSearchOptions},
	} {
		if len(f.raw) > 0 {
			out = append(out, f.name)
		}
	}
	return out
}

// chatMessage is one message of any role.
type chatMessage struct {
	Role             string          `json:"role"`
	Content          json.RawMessage `json:"content"`
	ToolCalls        []chatToolCall  `json:"tool_calls"`
	ToolCallID       string          `json:"tool_call_id"`
	Name             string          `json:"name"`
	FunctionCall     *chatFunction   `json:"function_call"`
	Refusal          string          `json:"refusal"`
	ReasoningContent string          `json:"reasoning_content"`
	ThinkingBlocks   []thinkingBlock `json:"thinking_blocks"`
	CacheControl     *cacheControl   `json:"cache_control"`
}

type chatToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function chatFunction `json:"function"`
}

type chatFunction struct {
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"` // a JSON string; some clients send the object
}

// thinkingBlock is LiteLLM's convention for carrying Anthropic thinking
// through OpenAI messages, in both directions.
type thinkingBlock struct {
	Type      string `json:"type"` // thinking or redacted_thinking
	Thinking  string `json:"thinking,omitempty"`
	Signature string `json:"signature,omitempty"`
	Data      string `json:"data,omitempty"`
}

type cacheControl struct {
	Type string `json:"type"`
	TTL  string `json:"ttl,omitempty"`
}

func (c *cacheControl) anthropic() *anthropic.CacheControl {
	if c == nil || c.Type == "" {
		return nil
	}
	return &anthropic.CacheControl{Type: c.Type, TTL: c.TTL}
}

// chatPart is one content part.
type chatPart struct {
	Type       string          `json:"type"`
	Text       *string         `json:"text"`
	Refusal    *string         `json:"refusal"`
	ImageURL   json.RawMessage `json:"image_url"` // {url, detail} or a bare URL string
	File       *chatFile       `json:"file"`
	InputAudio json.RawMessage `json:"input_audio"`
	// CacheControl is not OpenAI's but some clients send it; it is kept.
	CacheControl *cacheControl `json:"cache_control"`
	// PromptCacheBreakpoint is OpenAI's explicit cache breakpoint; it
	// becomes a cache_control mark.
	PromptCacheBreakpoint *struct {
		TTL string `json:"ttl"` // 30m or 12h: a minimum lifetime
	} `json:"prompt_cache_breakpoint"`
}

// cache returns the part's cache mark: Anthropic's own if the client sent
// one, else OpenAI's breakpoint (its lifetime is served by the default
// one, which every cache hit refreshes; see limitBreakpoints on TTLs).
func (p *chatPart) cache() *cacheControl {
	switch {
	case p.CacheControl != nil:
		return p.CacheControl
	case p.PromptCacheBreakpoint != nil:
		return &cacheControl{Type: "ephemeral"}
	}
	return nil
}

type chatFile struct {
	FileData string `json:"file_data"`
	FileID   string `json:"file_id"`
	Filename string `json:"filename"`
}

type chatTool struct {
	Type     string `json:"type"`
	Function *struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
	CacheControl *cacheControl `json:"cache_control"`
}

// jsonObjectHint is the system text that asks for JSON when a client sets
// response_format json_object: Anthropic's structured outputs need a real
// schema, so a permissive one cannot be sent.
const jsonObjectHint = "Respond only with a single valid JSON object, with no text before or after it."

// DecodeChat converts a Chat Completions request body to an Anthropic
// request, repaired by anthropic.Normalize. It never panics; every error it
// returns is a *RequestError. The request it returns has no cache
// breakpoints beyond those the client set (at most anthropic.MaxBreakpoints
// of them); the caller adds its own.
func DecodeChat(body []byte, opt DecodeOptions) (*anthropic.Request, ChatInfo, error) {
	d := &decoder{names: new(anthropic.ToolNames)}
	req, err := d.decode(body, opt)
	if err != nil {
		var re *RequestError
		if !errors.As(err, &re) {
			re = &RequestError{Message: err.Error()}
		}
		return nil, ChatInfo{}, re
	}
	d.info.Notes = anthropic.Normalize(req, anthropic.NormalizeOptions{Models: opt.Models}).Notes
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	d.info.Created = now().Unix()
	return req, d.info, nil
}

// decoder holds the state of one DecodeChat call.
type decoder struct {
	info  ChatInfo
	names *anthropic.ToolNames
	model string // the Anthropic model id
}

func reqErr(param, format string, args ...any) error {
	return &RequestError{Param: param, Message: fmt.Sprintf(format, args...)}
}

// typeError turns a JSON decoding error into a RequestError naming the field
// under prefix.
func typeError(prefix string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		param := prefix
		if te.Field != "" {
			if param != "" {
				param += "."
			}
			param += te.Field
		}
		if param == "" {
			return reqErr("", "expected a JSON %s, got %s", te.Type, te.Value)
		}
		return reqErr(param, "expected %s, got %s", anthropic.JSONKind(te.Type), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return reqErr("", "request body is not valid JSON: %s", se.Error())
	}
	return reqErr(prefix, "%s", err.Error())
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

func (d *decoder) decode(body []byte, opt DecodeOptions) (*anthropic.Request, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, reqErr("", "request body is empty: send a JSON object")
	}
	if trimmed[0] != '{' {
		return nil, reqErr("", "request body must be a JSON object")
	}
	var cr chatRequest
	if err := json.Unmarshal(trimmed, &cr); err != nil {
		return nil, typeError("", err)
	}
	d.info.Ignored = cr.ignored()

	if cr.Model == nil || strings.TrimSpace(*cr.Model) == "" {
		return nil, reqErr("model", "field required")
	}
	d.info.Model = *cr.Model
	d.model = d.info.Model
	if a, ok := opt.Aliases[d.model]; ok && a != "" {
		d.model = a
	}
	if cr.N != nil && *cr.N != 1 {
		return nil, reqErr("n", "must be 1: Anthropic returns exactly one choice (got %d)", *cr.N)
	}
	if !isNull(cr.Functions) {
		return nil, reqErr("functions", "the legacy functions parameter is not supported; send tools instead")
	}
	if !isNull(cr.FunctionCall) {
		return nil, reqErr("function_call", "the legacy function_call parameter is not supported; send tool_choice instead")
	}
	d.info.Stream = cr.Stream != nil && *cr.Stream
	d.info.IncludeUsage = d.info.Stream && cr.StreamOptions != nil && cr.StreamOptions.IncludeUsage
	d.info.ToolNames = d.names

	req := &anthropic.Request{Model: d.model}

	// Tools first: their names must be registered before history and
	// tool_choice refer to them.
	if err := d.tools(req, cr.Tools); err != nil {
		return nil, err
	}
	if len(cr.Messages) == 0 {
		return nil, reqErr("messages", "at least one message is required")
	}
	if err := d.messages(req, cr.Messages); err != nil {
		return nil, err
	}
	if err := d.toolChoice(req, cr.ToolChoice, cr.ParallelToolCalls); err != nil {
		return nil, err
	}

	// max_completion_tokens is the current name; max_tokens the deprecated
	// one. Unset, Normalize gives the model's default.
	switch {
	case cr.MaxCompletionTokens != nil:
		if *cr.MaxCompletionTokens < 1 {
			return nil, reqErr("max_completion_tokens", "must be at least 1")
		}
		req.MaxTokens = *cr.MaxCompletionTokens
	case cr.MaxTokens != nil:
		if *cr.MaxTokens < 1 {
			return nil, reqErr("max_tokens", "must be at least 1")
		}
		req.MaxTokens = *cr.MaxTokens
	}

	if err := d.thinking(req, &cr); err != nil {
		return nil, err
	}
	if cr.TopP != nil && (*cr.TopP < 0 || *cr.TopP > 1) {
		return nil, reqErr("top_p", "must be between 0 and 1")
	}
	req.Temperature, req.TopP, req.TopK = cr.Temperature, cr.TopP, cr.TopK
	stops, err := stopSequences(cr.Stop)
	if err != nil {
		return nil, err
	}
	req.StopSequences = stops

	switch {
	case cr.SafetyIdentifier != nil && *cr.SafetyIdentifier != "":
		req.Metadata = &anthropic.Metadata{UserID: *cr.SafetyIdentifier}
	case cr.User != nil && *cr.User != "":
		req.Metadata = &anthropic.Metadata{UserID: *cr.User}
	}
	var cacheKey string
	if json.Unmarshal(cr.PromptCacheKey, &cacheKey) == nil && cacheKey != "" {
		d.info.Session = cacheKey
	} else if cr.User != nil {
		d.info.Session = *cr.User
	}
	if err := d.responseFormat(req, cr.ResponseFormat); err != nil {
		return nil, err
	}
	return req, nil
}

// tools converts function tools. Other tool types (hosted tools, custom
// grammar tools) cannot run here and are dropped.
func (d *decoder) tools(req *anthropic.Request, raw []json.RawMessage) error {
	for i, r := range raw {
		param := "tools[" + strconv.Itoa(i) + "]"
		var t chatTool
		if err := json.Unmarshal(r, &t); err != nil {
			return typeError(param, err)
		}
		if t.Type != "" && t.Type != "function" {
			d.info.Ignored = append(d.info.Ignored, param+" (type "+t.Type+")")
			continue
		}
		if t.Function == nil {
			return reqErr(param+".function", "field required")
		}
		if t.Function.Name == "" {
			return reqErr(param+".function.name", "field required")
		}
		req.Tools = append(req.Tools, anthropic.Tool{
			Name:         d.names.Upstream(t.Function.Name),
			Description:  t.Function.Description,
			InputSchema:  anthropic.NormalizeSchema(t.Function.Parameters),
			CacheControl: t.CacheControl.anthropic(),
		})
	}
	return nil
}

// toolChoice maps tool_choice and parallel_tool_calls.
func (d *decoder) toolChoice(req *anthropic.Request, raw json.RawMessage, parallel *bool) error {
	var tc *anthropic.ToolChoice
	if !isNull(raw) {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			switch s {
			case "auto":
				tc = &anthropic.ToolChoice{Type: "auto"}
			case "none":
				tc = &anthropic.ToolChoice{Type: "none"}
			case "required":
				tc = &anthropic.ToolChoice{Type: "any"}
			default:
				return reqErr("tool_choice", "must be auto, none, required or an object, got %q", s)
			}
		} else {
			var obj struct {
				Type     string `json:"type"`
				Function *struct {
					Name string `json:"name"`
				} `json:"function"`
				AllowedTools *struct {
					Mode  string `json:"mode"`
					Tools []struct {
						Type     string `json:"type"`
						Function *struct {
							Name string `json:"name"`
						} `json:"function"`
						Name string `json:"name"`
					} `json:"tools"`
				} `json:"allowed_tools"`
			}
			if err := json.Unmarshal(raw, &obj); err != nil {
				return typeError("tool_choice", err)
			}
			switch obj.Type {
			case "function":
				if obj.Function == nil || obj.Function.Name == "" {
					return reqErr("tool_choice.function.name", "field required")
				}
				name := d.names.Upstream(obj.Function.Name)
				if len(req.Tools) > 0 && !hasTool(req.Tools, name) {
					return reqErr("tool_choice.function.name", "names %q, which is not among the tools", obj.Function.Name)
				}
				tc = &anthropic.ToolChoice{Type: "tool", Name: name}
			case "allowed_tools":
				if obj.AllowedTools == nil {
					return reqErr("tool_choice.allowed_tools", "field required")
				}
				keep := map[string]bool{}
				for _, t := range obj.AllowedTools.Tools {
					n := t.Name
					if t.Function != nil {
						n = t.Function.Name
					}
					if n != "" {
						keep[d.names.Upstream(n)] = true
					}
				}
				var tools []anthropic.Tool
				for _, t := range req.Tools {
					if keep[t.Name] {
						tools = append(tools, t)
					}
				}
				req.Tools = tools
				switch obj.AllowedTools.Mode {
				case "", "auto":
					tc = &anthropic.ToolChoice{Type: "auto"}
				case "required":
					tc = &anthropic.ToolChoice{Type: "any"}
				default:
					return reqErr("tool_choice.allowed_tools.mode", "must be auto or required, got %q", obj.AllowedTools.Mode)
				}
			case "custom":
				return reqErr("tool_choice", "custom tools are not supported")
			default:
				return reqErr("tool_choice.type", "must be function or allowed_tools, got %q", obj.Type)
			}
		}
	}
	if parallel != nil && !*parallel {
		if tc == nil {
			tc = &anthropic.ToolChoice{Type: "auto"}
		}
		tc.DisableParallelToolUse = true
	}
	req.ToolChoice = tc
	return nil
}

func hasTool(tools []anthropic.Tool, name string) bool {
	for _, t := range tools {
		if t.Name == name {
			return true
		}
	}
	return false
}

// thinking maps reasoning_effort (or Anthropic's own thinking object) to
// extended thinking: a budget, with the effort kept for models that take
// adaptive thinking only. Normalize sends it as the model takes it, fits the
// budget to max_tokens, and turns thinking off where Anthropic would refuse
// it.
func (d *decoder) thinking(req *anthropic.Request, cr *chatRequest) error {
	switch {
	case cr.ReasoningEffort != nil:
		b, ok := anthropic.ThinkingBudget(*cr.ReasoningEffort)
		if !ok {
			return reqErr("reasoning_effort", "must be one of none, minimal, low, medium, high, xhigh, max; got %q", *cr.ReasoningEffort)
		}
		if b > 0 {
			req.Thinking = &anthropic.Thinking{Type: "enabled", BudgetTokens: b, Effort: strings.ToLower(*cr.ReasoningEffort)}
		}
	case cr.Thinking != nil:
		switch cr.Thinking.Type {
		case "enabled":
			req.Thinking = &anthropic.Thinking{Type: "enabled", BudgetTokens: cr.Thinking.BudgetTokens}
		case "adaptive":
			req.Thinking = &anthropic.Thinking{Type: "adaptive"}
		case "disabled", "":
		default:
			return reqErr("thinking.type", "must be enabled, adaptive or disabled, got %q", cr.Thinking.Type)
		}
	}
	return nil
}

// stopSequences reads stop: a string or an array of strings.
func stopSequences(raw json.RawMessage) ([]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, reqErr("stop", "must be a string or an array of strings")
	}
	return list, nil
}

// responseFormat maps response_format: json_schema to Anthropic structured
// output, json_object to a system instruction.
func (d *decoder) responseFormat(req *anthropic.Request, raw json.RawMessage) error {
	if isNull(raw) {
		return nil
	}
	var rf struct {
		Type       string `json:"type"`
		JSONSchema *struct {
			Name   string          `json:"name"`
			Schema json.RawMessage `json:"schema"`
		} `json:"json_schema"`
	}
	if err := json.Unmarshal(raw, &rf); err != nil {
		return typeError("response_format", err)
	}
	switch rf.Type {
	case "", "text":
	case "json_object":
		req.System = append(req.System, anthropic.ContentBlock{Type: "text", Text: jsonObjectHint})
	case "json_schema":
		if rf.JSONSchema == nil || isNull(rf.JSONSchema.Schema) {
			return reqErr("response_format.json_schema.schema", "field required")
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(rf.JSONSchema.Schema, &obj) != nil {
			return reqErr("response_format.json_schema.schema", "must be a JSON Schema object")
		}
		req.OutputConfig = &anthropic.OutputConfig{Format: &anthropic.OutputFormat{Type: "json_schema", Schema: rf.JSONSchema.Schema}}
	default:
		return reqErr("response_format.type", "must be text, json_object or json_schema, got %q", rf.Type)
	}
	return nil
}

// messages converts the conversation: system and developer messages are
// hoisted into system, every other message becomes one turn (a tool result
// a user turn), in order. Normalize merges the turns and pairs the results
// with their calls.
func (d *decoder) messages(req *anthropic.Request, raw []json.RawMessage) error {
	req.Messages = make([]anthropic.Message, 0, len(raw))
	add := func(role string, blocks ...anthropic.ContentBlock) {
		req.Messages = append(req.Messages, anthropic.Message{Role: role, Content: blocks})
	}
	for i, r := range raw {
		param := "messages[" + strconv.Itoa(i) + "]"
		var m chatMessage
		if err := json.Unmarshal(r, &m); err != nil {
			return typeError(param, err)
		}
		var blocks []anthropic.ContentBlock
		var err error
		switch m.Role {
		case "system", "developer":
			blocks, err = d.systemContent(param+".content", m.Content)
			if err != nil {
				return err
			}
			applyMessageCache(blocks, m.CacheControl)
			req.System = append(req.System, blocks...)
		case "user":
			blocks, err = d.userContent(param+".content", m.Content)
			if err != nil {
				return err
			}
			applyMessageCache(blocks, m.CacheControl)
			add("user", blocks...)
		case "assistant":
			blocks, err = d.assistantContent(param, &m)
			if err != nil {
				return err
			}
			applyMessageCache(blocks, m.CacheControl)
			add("assistant", blocks...)
		case "tool", "function":
			b, err := d.toolResult(param, &m)
			if err != nil {
				return err
			}
			add("user", b)
		case "":
			return reqErr(param+".role", "field required")
		default:
			return reqErr(param+".role", "must be system, developer, user, assistant or tool, got %q", m.Role)
		}
	}
	return nil
}

func hasBlock(blocks []anthropic.ContentBlock, typ string) bool {
	for _, b := range blocks {
		if b.Type == typ {
			return true
		}
	}
	return false
}

// applyMessageCache puts a message-level cache_control (not OpenAI's, sent
// by some clients) on the message's last block.
func applyMessageCache(blocks []anthropic.ContentBlock, cc *cacheControl) {
	if n := len(blocks); n > 0 && blocks[n-1].CacheControl == nil {
		blocks[n-1].CacheControl = cc.anthropic()
	}
}

// parts reads content that is a string, null or an array of parts. A bare
// string inside the array counts as a text part.
func parts(param string, raw json.RawMessage) ([]chatPart, error) {
	if isNull(raw) {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []chatPart{{Type: "text", Text: &s}}, nil
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil, reqErr(param, "must be a string or an array of content parts")
	}
	out := make([]chatPart, 0, len(items))
	for j, it := range items {
		var s string
		if json.Unmarshal(it, &s) == nil {
			out = append(out, chatPart{Type: "text", Text: &s})
			continue
		}
		var p chatPart
		if err := json.Unmarshal(it, &p); err != nil {
			return nil, typeError(param+"["+strconv.Itoa(j)+"]", err)
		}
		out = append(out, p)
	}
	return out, nil
}

func textBlock(s string, cc *cacheControl) []anthropic.ContentBlock {
	if s == "" {
		return nil
	}
	return []anthropic.ContentBlock{{Type: "text", Text: s, CacheControl: cc.anthropic()}}
}

// systemContent reads a system or developer message: text only.
func (d *decoder) systemContent(param string, raw json.RawMessage) ([]anthropic.ContentBlock, error) {
	ps, err := parts(param, raw)
	if err != nil {
		return nil, err
	}
	var out []anthropic.ContentBlock
	for j, p := range ps {
		if p.Type != "text" {
			return nil, reqErr(param+"["+strconv.Itoa(j)+"]", "system and developer messages may contain only text, got a %s part", p.Type)
		}
		if p.Text != nil {
			out = append(out, textBlock(*p.Text, p.cache())...)
		}
	}
	return out, nil
}

// userContent reads a user message: text, images and files.
func (d *decoder) userContent(param string, raw json.RawMessage) ([]anthropic.ContentBlock, error) {
	ps, err := parts(param, raw)
	if err != nil {
		return nil, err
	}
	isArray := bytes.HasPrefix(bytes.TrimSpace(raw), []byte("["))
	var out []anthropic.ContentBlock
	for j, p := range ps {
		pp := param
		if isArray {
			pp = param + "[" + strconv.Itoa(j) + "]"
		}
		b, err := d.part(pp, p)
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	return out, nil
}

// part converts one user (or tool result) content part.
func (d *decoder) part(param string, p chatPart) ([]anthropic.ContentBlock, error) {
	cc := p.cache().anthropic()
	switch p.Type {
	case "text", "input_text":
		if p.Text == nil {
			return nil, nil
		}
		return textBlock(*p.Text, p.cache()), nil
	case "image_url", "input_image":
		src, err := imageSource(param+".image_url", p.ImageURL)
		if err != nil {
			return nil, err
		}
		return []anthropic.ContentBlock{{Type: "image", Source: src, CacheControl: cc}}, nil
	case "file":
		b, err := fileBlock(param+".file", p.File)
		if err != nil {
			return nil, err
		}
		b.CacheControl = cc
		return []anthropic.ContentBlock{b}, nil
	case "input_audio":
		return nil, reqErr(param, "input audio is not supported: Anthropic models do not take audio")
	case "refusal":
		return nil, reqErr(param, "a refusal part belongs in an assistant message")
	case "":
		return nil, reqErr(param+".type", "field required")
	}
	return nil, reqErr(param+".type", "unsupported content part type %q", p.Type)
}

// imageSource converts an image_url ({url, detail} or a bare string): a data
// URL becomes base64 data with its media type, an http(s) URL a url source
// (never downloaded: the upstream fetches it, without the 5 MB base64 cap).
func imageSource(param string, raw json.RawMessage) (*anthropic.Source, error) {
	var url string
	if json.Unmarshal(raw, &url) != nil {
		var obj struct {
			URL string `json:"url"`
		}
		if json.Unmarshal(raw, &obj) != nil {
			return nil, reqErr(param, "must be an object with a url")
		}
		url = obj.URL
	}
	url = strings.TrimSpace(url)
	switch {
	case url == "":
		return nil, reqErr(param+".url", "field required")
	case hasPrefixFold(url, "data:"):
		mt, data, err := base64DataURL(url)
		if err != nil {
			return nil, reqErr(param+".url", "%s", err.Error())
		}
		canon, ok := anthropic.ImageMediaType(mt)
		if !ok {
			return nil, reqErr(param+".url", "image type %q is not supported: send jpeg, png, gif or webp", mt)
		}
		return &anthropic.Source{Type: "base64", MediaType: canon, Data: data}, nil
	case hasPrefixFold(url, "https://"), hasPrefixFold(url, "http://"):
		return &anthropic.Source{Type: "url", URL: url}, nil
	}
	return nil, reqErr(param+".url", "must be an https URL or a base64 data URL")
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// base64DataURL splits a data URL that must hold base64 data.
func base64DataURL(u string) (mediaType, data string, err error) {
	mediaType, data, isBase64, err := anthropic.ParseDataURL(u)
	switch {
	case err != nil:
		return "", "", err
	case !isBase64:
		return "", "", errors.New("data URL must be base64-encoded")
	case data == "":
		return "", "", errors.New("data URL has no data")
	}
	return mediaType, data, nil
}

// fileBlock converts a file part: a PDF becomes a base64 document, plain text
// a text document, an image an image. OpenAI file ids cannot be resolved.
func fileBlock(param string, f *chatFile) (anthropic.ContentBlock, error) {
	if f == nil {
		return anthropic.ContentBlock{}, reqErr(param, "field required")
	}
	if f.FileData == "" {
		if f.FileID != "" {
			return anthropic.ContentBlock{}, reqErr(param+".file_id", "OpenAI file ids cannot be resolved by this gateway; send the content as file_data")
		}
		return anthropic.ContentBlock{}, reqErr(param+".file_data", "field required")
	}
	mt, data := "", f.FileData
	if hasPrefixFold(f.FileData, "data:") {
		var err error
		mt, data, err = base64DataURL(f.FileData)
		if err != nil {
			return anthropic.ContentBlock{}, reqErr(param+".file_data", "%s", err.Error())
		}
	} else if strings.HasSuffix(strings.ToLower(f.Filename), ".pdf") {
		mt = "application/pdf" // raw base64 with a PDF file name
	}
	switch {
	case mt == "application/pdf":
		return anthropic.ContentBlock{Type: "document", Source: &anthropic.Source{Type: "base64", MediaType: mt, Data: data}}, nil
	case mt == "text/plain":
		text, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return anthropic.ContentBlock{}, reqErr(param+".file_data", "text file is not valid base64")
		}
		return anthropic.ContentBlock{Type: "document", Source: &anthropic.Source{Type: "text", MediaType: mt, Data: string(text)}}, nil
	case mt == "":
		return anthropic.ContentBlock{}, reqErr(param+".file_data", "send the file as a data URL (data:application/pdf;base64,...)")
	}
	if canon, ok := anthropic.ImageMediaType(mt); ok {
		return anthropic.ContentBlock{Type: "image", Source: &anthropic.Source{Type: "base64", MediaType: canon, Data: data}}, nil
	}
	return anthropic.ContentBlock{}, reqErr(param+".file_data", "file type %q is not supported: send a PDF, plain text or an image", mt)
}

// assistantContent reads an assistant message: signed thinking first, then
// text, then tool calls.
func (d *decoder) assistantContent(param string, m *chatMessage) ([]anthropic.ContentBlock, error) {
	var out []anthropic.ContentBlock
	// Thinking goes back exactly as received (Normalize drops the unsigned
	// blocks Anthropic would refuse); bare reasoning_content carries no
	// signature and is not sent.
	signed := 0
	for _, tb := range m.ThinkingBlocks {
		if (tb.Type == "thinking" && tb.Signature != "") || (tb.Type == "redacted_thinking" && tb.Data != "") {
			signed++
		}
	}
	for _, tb := range m.ThinkingBlocks {
		switch tb.Type {
		case "thinking":
			text := tb.Thinking
			if text == "" && tb.Signature != "" && signed == 1 {
				// The streaming convention sends the signature with empty
				// text; the text itself came as reasoning_content.
				text = m.ReasoningContent
			}
			out = append(out, anthropic.ContentBlock{Type: "thinking", Thinking: text, Signature: tb.Signature})
		case "redacted_thinking":
			out = append(out, anthropic.ContentBlock{Type: "redacted_thinking", Data: tb.Data})
		}
	}
	ps, err := parts(param+".content", m.Content)
	if err != nil {
		return nil, err
	}
	for j, p := range ps {
		switch p.Type {
		case "text", "output_text":
			if p.Text != nil {
				out = append(out, textBlock(*p.Text, p.cache())...)
			}
		case "refusal":
			if p.Refusal != nil {
				out = append(out, textBlock(*p.Refusal, p.cache())...)
			}
		default:
			return nil, reqErr(param+".content["+strconv.Itoa(j)+"]", "assistant messages may contain only text and refusal parts, got %q", p.Type)
		}
	}
	if m.Refusal != "" && !hasBlock(out, "text") {
		out = append(out, anthropic.ContentBlock{Type: "text", Text: m.Refusal})
	}
	calls := m.ToolCalls
	if m.FunctionCall != nil && len(calls) == 0 {
		calls = []chatToolCall{{Type: "function", Function: *m.FunctionCall}}
	}
	for j, tc := range calls {
		cp := param + ".tool_calls[" + strconv.Itoa(j) + "]"
		if tc.Type != "" && tc.Type != "function" {
			return nil, reqErr(cp+".type", "only function tool calls are supported, got %q", tc.Type)
		}
		if tc.Function.Name == "" {
			return nil, reqErr(cp+".function.name", "field required")
		}
		// The id as sent (Normalize sanitizes it, or makes one when there is
		// none) and the arguments as sent (Normalize unwraps the JSON string).
		out = append(out, anthropic.ContentBlock{
			Type: "tool_use", ID: tc.ID, Name: d.names.Upstream(tc.Function.Name), Input: tc.Function.Arguments,
		})
	}
	return out, nil
}

// toolResult converts a tool (or legacy function) message to a tool_result.
// Normalize pairs it with the call it answers: by tool_call_id, by function
// name for a legacy function result (which has no id), and in call order
// for a tool message without an id (some clients never send one).
func (d *decoder) toolResult(param string, m *chatMessage) (anthropic.ContentBlock, error) {
	b := anthropic.ContentBlock{Type: "tool_result", ToolUseID: m.ToolCallID}
	if m.Role == "function" {
		b.ToolUseID, b.Name = "", d.names.Upstream(m.Name)
	}
	ps, err := parts(param+".content", m.Content)
	if err != nil {
		return b, err
	}
	var blocks []anthropic.ContentBlock
	for j, p := range ps {
		pp := param + ".content[" + strconv.Itoa(j) + "]"
		bs, err := d.part(pp, p)
		if err != nil {
			return b, err
		}
		blocks = append(blocks, bs...)
	}
	// A block carrying a cache mark gives it to the result instead.
	for i := range blocks {
		if blocks[i].CacheControl != nil {
			b.CacheControl, blocks[i].CacheControl = blocks[i].CacheControl, nil
		}
	}
	b.Content = anthropic.ToolResultContent(blocks)
	if cc := m.CacheControl.anthropic(); cc != nil {
		b.CacheControl = cc
	}
	return b, nil
}

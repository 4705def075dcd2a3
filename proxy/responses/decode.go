package responses

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/llmgw/llmgw/proxy/anthropic"
)

// wireRequest is a Responses request as Decode reads it. Fields that take
// several shapes stay raw and are read by their own functions.
type wireRequest struct {
	Model              string            `json:"model"`
	Instructions       json.RawMessage   `json:"instructions"`
	Input              json.RawMessage   `json:"input"`
	Tools              []json.RawMessage `json:"tools"`
	ToolChoice         json.RawMessage   `json:"tool_choice"`
	ParallelToolCalls  *bool             `json:"parallel_tool_calls"`
	MaxOutputTokens    *int              `json:"max_output_tokens"`
	Temperature        *float64          `json:"temperature"`
	TopP               *float64          `json:"top_p"`
	Reasoning          *wireReasoning    `json:"reasoning"`
	Text               *wireTextConfig   `json:"text"`
	Stream             *bool             `json:"stream"`
	PreviousResponseID *string           `json:"previous_response_id"`
	Conversation       json.RawMessage   `json:"conversation"`
	Prompt             json.RawMessage   `json:"prompt"`
	Background         *bool             `json:"background"`
	User               *string           `json:"user"`
	SafetyIdentifier   *string           `json:"safety_identifier"`
	Metadata           json.RawMessage   `json:"metadata"`
	ServiceTier        *string           `json:"service_tier"`
	Stop               json.RawMessage   `json:"stop"` // not in the spec; some clients send it anyway
	PromptCacheKey     *string           `json:"prompt_cache_key"`
	Truncation         *string           `json:"truncation"`
	TopLogprobs        *int              `json:"top_logprobs"`
	MaxToolCalls       *int              `json:"max_tool_calls"`
}

type wireReasoning struct {
	Effort *string `json:"effort"`
}

type wireTextConfig struct {
	Format *wireTextFormat `json:"format"`
}

type wireTextFormat struct {
	Type   string          `json:"type"`
	Name   string          `json:"name"`
	Schema json.RawMessage `json:"schema"`
}

// handled are the top-level fields Decode reads or knowingly ignores; any
// other field is dropped with a note.
var handled = map[string]bool{
	"model": true, "instructions": true, "input": true, "tools": true, "tool_choice": true,
	"parallel_tool_calls": true, "max_output_tokens": true, "temperature": true, "top_p": true,
	"reasoning": true, "text": true, "stream": true, "previous_response_id": true,
	"conversation": true, "prompt": true, "background": true, "user": true,
	"safety_identifier": true, "metadata": true, "service_tier": true, "stop": true,
	"prompt_cache_key": true, "truncation": true, "top_logprobs": true, "max_tool_calls": true,
	"store": true,
}

// informational fields are accepted and only echoed (or not even that):
// real clients send them on every turn, and none changes what Anthropic is
// asked. Each one present gets a note.
var informational = []string{
	"include", "store", "prompt_cache_key", "client_metadata", "service_tier", "truncation",
	"top_logprobs", "max_tool_calls", "stream_options", "context_management",
	"prompt_cache_retention", "metadata",
}

// Decode converts a Responses request body into an Anthropic request,
// repaired by anthropic.Normalize. The returned request has no stream flag
// and no cache breakpoints: the proxy sets both. Every error is a
// *RequestError.
func Decode(body []byte, opt DecodeOptions) (*anthropic.Request, Info, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return nil, Info{}, jsonError("", err, "request body must be a JSON object")
	}
	var wr wireRequest
	if err := json.Unmarshal(body, &wr); err != nil {
		return nil, Info{}, jsonError("", err, "request body must be a JSON object")
	}
	d := &decoder{names: &anthropic.ToolNames{}, tools: map[string]Tool{}, byClient: map[toolKey]string{}}
	req, err := d.request(&wr, fields, opt)
	if err != nil {
		return nil, Info{}, err
	}
	d.notes = append(d.notes, anthropic.Normalize(req, anthropic.NormalizeOptions{Models: opt.Models}).Notes...)
	info := Info{
		Model:   wr.Model,
		Stream:  wr.Stream != nil && *wr.Stream,
		Created: now(opt),
		Tools:   d.tools,
		Notes:   d.notes,
		echo:    newEcho(&wr, fields),
	}
	if wr.PromptCacheKey != nil && *wr.PromptCacheKey != "" {
		info.Session = *wr.PromptCacheKey
	} else if wr.User != nil {
		info.Session = *wr.User
	}
	return req, info, nil
}

// jsonError turns an encoding/json error into a RequestError naming the
// field, under the prefix param.
func jsonError(param string, err error, fallback string) *RequestError {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := param
		if te.Field != "" {
			field = joinParam(param, te.Field)
		}
		return badParam(field, "expected %s, got %s", anthropic.JSONKind(te.Type), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &RequestError{Param: param, Message: "not valid JSON: " + se.Error()}
	}
	return &RequestError{Param: param, Message: fallback}
}

func joinParam(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	}
	return prefix + "." + field
}

// decoder holds the state of one Decode call.
type decoder struct {
	names    *anthropic.ToolNames
	tools    map[string]Tool    // upstream name → client tool
	byClient map[toolKey]string // client tool → upstream name
	defs     []declaredTool     // in declaration order
	notes    []string
}

type toolKey struct{ namespace, name string }

func (d *decoder) note(format string, args ...any) {
	d.notes = append(d.notes, fmt.Sprintf(format, args...))
}

func (d *decoder) request(wr *wireRequest, fields map[string]json.RawMessage, opt DecodeOptions) (*anthropic.Request, error) {
	if err := refuseStateful(wr); err != nil {
		return nil, err
	}
	if strings.TrimSpace(wr.Model) == "" {
		return nil, badParam("model", "field required")
	}
	model := wr.Model
	if a, ok := opt.Aliases[model]; ok && a != "" {
		model = a
	}
	for _, f := range informational {
		if v, ok := fields[f]; ok && !isNull(v) {
			d.note("ignored %s", f)
		}
	}
	unknown := make([]string, 0)
	for k := range fields {
		if !handled[k] && !slices.Contains(informational, k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		d.note("ignored unknown field %s", k)
	}

	req := &anthropic.Request{Model: model}

	// Tools first: input items refer to them by name.
	if err := d.declareTools(wr.Tools, "tools"); err != nil {
		return nil, err
	}
	system, err := instructions(wr.Instructions)
	if err != nil {
		return nil, err
	}
	b := &turns{d: d}
	if err := b.input(wr.Input); err != nil {
		return nil, err
	}
	req.System = append(system, b.system...)
	req.Messages = b.msgs
	req.Tools = d.toolList()

	// max_output_tokens; unset, Normalize gives the model's default.
	if wr.MaxOutputTokens != nil {
		if *wr.MaxOutputTokens < 1 {
			return nil, badParam("max_output_tokens", "must be at least 1, got %d", *wr.MaxOutputTokens)
		}
		req.MaxTokens = *wr.MaxOutputTokens
	}

	if err := d.textFormat(req, wr.Text); err != nil {
		return nil, err
	}
	if err := d.stopSequences(req, wr.Stop); err != nil {
		return nil, err
	}
	if err := d.toolChoice(req, wr.ToolChoice, wr.ParallelToolCalls); err != nil {
		return nil, err
	}
	if err := d.sampling(req, wr.Temperature, wr.TopP); err != nil {
		return nil, err
	}
	if err := d.thinking(req, wr.Reasoning); err != nil {
		return nil, err
	}
	user := wr.SafetyIdentifier
	if user == nil || *user == "" {
		user = wr.User
	}
	if user != nil && *user != "" {
		req.Metadata = &anthropic.Metadata{UserID: *user}
	}
	return req, nil
}

// refuseStateful refuses what would need state the gateway does not keep.
func refuseStateful(wr *wireRequest) error {
	if wr.PreviousResponseID != nil && *wr.PreviousResponseID != "" {
		return badParam("previous_response_id",
			"previous response %q not found: llmgw keeps no server-side state; send the whole conversation in input (as with store: false)",
			*wr.PreviousResponseID)
	}
	if len(wr.Conversation) > 0 && !isNull(wr.Conversation) {
		return badParam("conversation", "llmgw keeps no conversations; send the whole conversation in input")
	}
	if len(wr.Prompt) > 0 && !isNull(wr.Prompt) {
		return badParam("prompt", "stored prompt templates are not available through llmgw; send instructions and input instead")
	}
	if wr.Background != nil && *wr.Background {
		return badParam("background", "background responses need server-side state, which llmgw does not keep; use stream: true for long tasks")
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

func isObject(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && t[0] == '{'
}

// instructions reads the instructions field: the first system block.
func instructions(raw json.RawMessage) ([]anthropic.ContentBlock, error) {
	if isNull(raw) {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, badParam("instructions", "expected a string")
	}
	return []anthropic.ContentBlock{{Type: "text", Text: s}}, nil
}

// textFormat maps text.format to structured output.
func (d *decoder) textFormat(req *anthropic.Request, t *wireTextConfig) error {
	if t == nil || t.Format == nil {
		return nil
	}
	switch f := t.Format; f.Type {
	case "", "text":
	case "json_schema":
		if !isObject(f.Schema) {
			return badParam("text.format.schema", "a JSON schema object is required for json_schema")
		}
		req.OutputConfig = &anthropic.OutputConfig{Format: &anthropic.OutputFormat{Type: "json_schema", Schema: f.Schema}}
	case "json_object":
		// Anthropic has no schema-less JSON mode: ask in the system prompt.
		req.System = append(req.System, anthropic.ContentBlock{Type: "text",
			Text: "Respond with a single valid JSON object and nothing else: no prose, no code fences."})
		d.note("text.format json_object became a system instruction")
	default:
		return badParam("text.format.type", "unsupported format %q (use text, json_schema or json_object)", f.Type)
	}
	return nil
}

// stopSequences reads the non-standard stop field (a string or an array)
// that some Chat-minded clients send.
func (d *decoder) stopSequences(req *anthropic.Request, raw json.RawMessage) error {
	if isNull(raw) {
		return nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		req.StopSequences = []string{one}
		return nil
	}
	if err := json.Unmarshal(raw, &req.StopSequences); err != nil {
		return badParam("stop", "expected a string or an array of strings")
	}
	return nil
}

// sampling reads temperature and top_p; Normalize fits them to Anthropic's
// rules (temperature at most 1, not both, the thinking limits).
func (d *decoder) sampling(req *anthropic.Request, temp, topP *float64) error {
	if temp != nil && (*temp < 0 || math.IsNaN(*temp)) {
		return badParam("temperature", "must be between 0 and 2, got %g", *temp)
	}
	if topP != nil && (*topP < 0 || *topP > 1 || math.IsNaN(*topP)) {
		return badParam("top_p", "must be between 0 and 1, got %g", *topP)
	}
	req.Temperature, req.TopP = temp, topP
	return nil
}

// thinking maps reasoning.effort to extended thinking: a budget, with the
// effort kept for models that take adaptive thinking only. Normalize sends
// it as the model takes it, fits the budget and turns thinking off where
// Anthropic would refuse it.
func (d *decoder) thinking(req *anthropic.Request, r *wireReasoning) error {
	if r == nil || r.Effort == nil || *r.Effort == "" {
		return nil
	}
	budget, ok := anthropic.ThinkingBudget(*r.Effort)
	if !ok {
		return badParam("reasoning.effort", "unknown effort %q (use none, minimal, low, medium, high, xhigh or max)", *r.Effort)
	}
	if budget > 0 {
		req.Thinking = &anthropic.Thinking{Type: "enabled", BudgetTokens: budget, Effort: strings.ToLower(*r.Effort)}
	}
	return nil
}

// now reads the clock opt gives, else the system's.
func now(opt DecodeOptions) time.Time {
	if opt.Now != nil {
		return opt.Now()
	}
	return time.Now()
}

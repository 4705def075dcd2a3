// Package anthropic holds the parts of Anthropic's Messages wire format the
// gateway reads: usage figures, error bodies and stream events. It is pure:
// no network code.
package anthropic

import (
	"encoding/json"
	"strings"

	"github.com/llmgw/llmgw"
)

// Usage is the usage object of a message or of a message_delta event. Fields
// are pointers because a message_delta carries only the figures that changed,
// and an absent figure must not overwrite a known one.
type Usage struct {
	InputTokens              *int64         `json:"input_tokens"`
	OutputTokens             *int64         `json:"output_tokens"`
	CacheReadInputTokens     *int64         `json:"cache_read_input_tokens"`
	CacheCreationInputTokens *int64         `json:"cache_creation_input_tokens"`
	CacheCreation            *CacheCreation `json:"cache_creation"`
	OutputTokensDetails      *struct {
		ThinkingTokens *int64 `json:"thinking_tokens"`
	} `json:"output_tokens_details"`
	// Speed is "fast" for a request served in fast mode, else "standard".
	Speed *string `json:"speed"`
	// InferenceGeo is where the request ran.
	InferenceGeo *string `json:"inference_geo"`
	// Iterations are the request's sampling steps, each with its own
	// model and counts. Anthropic's top-level figures leave some of them
	// out (a compaction, an advisor's consultation), so when they are
	// reported they are what the request is billed for. A non-nil empty
	// slice (the upstream sent []) replaces an earlier list too.
	Iterations []IterationUsage `json:"iterations"`
}

// CacheCreation is the split of cache_creation_input_tokens by cache
// lifetime.
type CacheCreation struct {
	Ephemeral5m *int64 `json:"ephemeral_5m_input_tokens"`
	Ephemeral1h *int64 `json:"ephemeral_1h_input_tokens"`
}

// IterationUsage is one entry of usage.iterations: its type ("message",
// "compaction", "advisor_message", "fallback_message"), the model that ran
// it (absent on compaction and often on message: the request's model),
// and its counts, which mean what the top-level ones do.
type IterationUsage struct {
	Type                     string         `json:"type"`
	Model                    string         `json:"model"`
	InputTokens              int64          `json:"input_tokens"`
	OutputTokens             int64          `json:"output_tokens"`
	CacheReadInputTokens     int64          `json:"cache_read_input_tokens"`
	CacheCreationInputTokens int64          `json:"cache_creation_input_tokens"`
	CacheCreation            *CacheCreation `json:"cache_creation"`
}

// Iteration returns the iteration in the request log's terms.
func (it IterationUsage) Iteration() llmgw.Iteration {
	t := llmgw.Tokens{
		Input:      it.InputTokens,
		Output:     it.OutputTokens,
		CacheRead:  it.CacheReadInputTokens,
		CacheWrite: it.CacheCreationInputTokens,
	}
	if c := it.CacheCreation; c != nil {
		if c.Ephemeral5m != nil {
			t.CacheWrite5m = *c.Ephemeral5m
		}
		if c.Ephemeral1h != nil {
			t.CacheWrite1h = *c.Ephemeral1h
		}
	}
	return llmgw.Iteration{Type: it.Type, Model: it.Model, Tokens: t}
}

// ThinkingTokens returns the part of output_tokens spent thinking, when the
// upstream says.
func (u *Usage) ThinkingTokens() (int64, bool) {
	if u == nil || u.OutputTokensDetails == nil || u.OutputTokensDetails.ThinkingTokens == nil {
		return 0, false
	}
	return *u.OutputTokensDetails.ThinkingTokens, true
}

// ApplyTo overwrites the figures of t that u carries.
func (u *Usage) ApplyTo(t *llmgw.Tokens) {
	if u == nil {
		return
	}
	set := func(dst *int64, src *int64) {
		if src != nil {
			*dst = *src
		}
	}
	set(&t.Input, u.InputTokens)
	set(&t.Output, u.OutputTokens)
	set(&t.CacheRead, u.CacheReadInputTokens)
	set(&t.CacheWrite, u.CacheCreationInputTokens)
	if c := u.CacheCreation; c != nil {
		set(&t.CacheWrite5m, c.Ephemeral5m)
		set(&t.CacheWrite1h, c.Ephemeral1h)
	}
}

// ErrorDetail is the error object inside an error body or error event.
type ErrorDetail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	// Details carries the machine-readable reason newer errors add, such as
	// error_code "claude_code_version_too_old"; nil when absent.
	Details *ErrorDetails `json:"details,omitempty"`
}

// ErrorDetails is error.details of an Anthropic error.
type ErrorDetails struct {
	ErrorCode string `json:"error_code,omitempty"`
}

// Code returns error.details.error_code, or "".
func (d ErrorDetail) Code() string {
	if d.Details == nil {
		return ""
	}
	return d.Details.ErrorCode
}

// ErrorBody is Anthropic's error envelope.
type ErrorBody struct {
	Type      string      `json:"type"` // always "error"
	Error     ErrorDetail `json:"error"`
	RequestID string      `json:"request_id,omitempty"`
}

// ParseError reads an error body. It returns a zero detail if body is not one.
func ParseError(body []byte) ErrorDetail {
	var e ErrorBody
	if json.Unmarshal(body, &e) != nil {
		return ErrorDetail{}
	}
	return e.Error
}

// MarshalError returns an error body in Anthropic's shape.
func MarshalError(typ, msg, requestID string) []byte {
	b, _ := json.Marshal(ErrorBody{Type: "error", Error: ErrorDetail{Type: typ, Message: msg}, RequestID: requestID})
	return b
}

// errorTypes is Anthropic's table of error types and the HTTP status each
// comes with: the one table the gateway maps errors by. A status Anthropic
// gives two types (400) is listed under its usual one first.
var errorTypes = []struct {
	status int
	typ    string
}{
	{400, "invalid_request_error"},
	{401, "authentication_error"},
	{402, "billing_error"},
	{403, "permission_error"},
	{404, "not_found_error"},
	{409, "conflict_error"},
	{413, "request_too_large"},
	{429, "rate_limit_error"},
	{500, "api_error"},
	{504, "timeout_error"},
	{529, "overloaded_error"},
}

// ErrorType returns the error type Anthropic uses for an HTTP status. A
// status not in its table is an invalid_request_error below 500, a 503 is
// an overload (what a proxy in front of Anthropic answers when it is), and
// anything else is an api_error.
func ErrorType(status int) string {
	for _, e := range errorTypes {
		if e.status == status {
			return e.typ
		}
	}
	switch {
	case status == 503:
		return "overloaded_error"
	case status >= 400 && status < 500:
		return "invalid_request_error"
	}
	return "api_error"
}

// ErrorStatus returns the HTTP status Anthropic sends with an error type,
// for errors that come without one (inside a stream). An unknown type is
// the service's own failure: 500, as api_error.
func ErrorStatus(typ string) int {
	for _, e := range errorTypes {
		if e.typ == typ {
			return e.status
		}
	}
	return 500
}

// IsContextOverflow reports whether an Anthropic error message says the
// prompt does not fit the model's context window ("prompt is too long: N
// tokens > M maximum", "input length and `max_tokens` exceed context
// limit", and the later wordings). Dialects whose clients react to it (Codex
// compacts its history) give it their own code.
func IsContextOverflow(msg string) bool {
	lower := strings.ToLower(msg)
	return strings.Contains(lower, "prompt is too long") ||
		strings.Contains(lower, "exceed context limit") ||
		strings.Contains(lower, "exceeds the context window") ||
		strings.Contains(lower, "context window exceeded")
}

// MessageHead is the part of a non-streaming response the gateway reads.
type MessageHead struct {
	ID    string `json:"id"`
	Model string `json:"model"`
	Usage *Usage `json:"usage"`
}

// StreamEvent is the part of a stream event's data the gateway reads.
type StreamEvent struct {
	Type    string       `json:"type"`
	Message *MessageHead `json:"message"` // message_start
	Usage   *Usage       `json:"usage"`   // message_delta
	Error   *ErrorDetail `json:"error"`   // error
}

// Tally accumulates usage over a stream the way the SDK's Accumulate does:
// message_start sets every figure, each message_delta overwrites the figures
// it carries (they are cumulative), and the last value wins. The same holds
// for speed, inference_geo and the iterations list, which a later event
// replaces whole.
type Tally struct {
	Tokens       llmgw.Tokens
	Thinking     int64 // output tokens spent thinking, when reported
	Iterations   []llmgw.Iteration
	Speed        string
	InferenceGeo string
	MessageID    string
	Stopped      bool         // message_stop seen
	Err          *ErrorDetail // an error event
}

// Fill copies the usage tallied so far into a request log record.
func (t *Tally) Fill(u *llmgw.Usage) {
	u.Tokens = t.Tokens
	u.Iterations = t.Iterations
	u.Speed = t.Speed
	u.InferenceGeo = t.InferenceGeo
}

// ObserveMessage reads the usage of a whole (non-streaming) answer; a body
// that is not a message leaves t as it is.
func (t *Tally) ObserveMessage(body []byte) {
	var msg MessageHead
	if json.Unmarshal(body, &msg) != nil {
		return
	}
	t.MessageID = msg.ID
	t.apply(msg.Usage)
}

// apply overwrites what t knows with what u carries.
func (t *Tally) apply(u *Usage) {
	if u == nil {
		return
	}
	u.ApplyTo(&t.Tokens)
	if n, ok := u.ThinkingTokens(); ok {
		t.Thinking = n
	}
	if u.Speed != nil {
		t.Speed = *u.Speed
	}
	if u.InferenceGeo != nil {
		t.InferenceGeo = *u.InferenceGeo
	}
	if u.Iterations != nil {
		t.Iterations = make([]llmgw.Iteration, len(u.Iterations))
		for i, it := range u.Iterations {
			t.Iterations[i] = it.Iteration()
		}
	}
}

// Observe reads one event. Only message_start, message_delta, message_stop
// and error are decoded; every other event is skipped without parsing.
func (t *Tally) Observe(name string, data []byte) {
	switch name {
	case "message_start", "message_delta", "error":
	case "message_stop":
		t.Stopped = true
		return
	default:
		return
	}
	var ev StreamEvent
	if json.Unmarshal(data, &ev) != nil {
		return
	}
	u := ev.Usage
	switch {
	case ev.Message != nil:
		t.MessageID = ev.Message.ID
		u = ev.Message.Usage
	case ev.Error != nil:
		t.Err = ev.Error
		return
	}
	t.apply(u)
}

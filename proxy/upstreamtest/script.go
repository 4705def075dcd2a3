package upstreamtest

import (
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Request is one request the fake received, as recorded. Values returned by
// Requests are copies; the *Request given to a Step or Reply hook is shared
// with the record and must not be modified.
type Request struct {
	Method    string
	Path      string // without the query, e.g. "/v1/messages"
	RawQuery  string // e.g. "beta=true"
	Header    http.Header
	Body      []byte
	Key       string    // the credential: x-api-key, or else the bearer token
	Time      time.Time // when the request arrived
	RequestID string    // the request-id the fake answered with

	// Fields read from a JSON body; zero when the body is not one.
	Model        string
	Stream       bool
	ToolNames    []string // names of the request's tools, in order
	LastUserText string   // text of the last message if it is a user message
	Thinking     bool     // thinking.type is "enabled"

	tools []wireTool
}

// Decode unmarshals the request body into v.
func (r *Request) Decode(v any) error { return json.Unmarshal(r.Body, v) }

// Tokens are the usage figures of one response, named as in llmgw.Tokens (so
// llmgw.Tokens(t) converts one).
type Tokens struct {
	Input        int64 // input_tokens: the uncached part
	Output       int64 // output_tokens
	CacheRead    int64 // cache_read_input_tokens
	CacheWrite   int64 // cache_creation_input_tokens
	CacheWrite5m int64 // cache_creation.ephemeral_5m_input_tokens
	CacheWrite1h int64 // cache_creation.ephemeral_1h_input_tokens
}

// Usage is a sum of Tokens over Responses responses; see SentUsage. The
// token fields mean what the Tokens fields of the same name mean.
type Usage struct {
	Input        int64
	Output       int64
	CacheRead    int64
	CacheWrite   int64
	CacheWrite5m int64
	CacheWrite1h int64
	Responses    int
}

// Tokens returns the token sums without the response count.
func (u Usage) Tokens() Tokens {
	return Tokens{u.Input, u.Output, u.CacheRead, u.CacheWrite, u.CacheWrite5m, u.CacheWrite1h}
}

// Block is one content block of a reply.
type Block struct {
	// Type is "text", "tool_use", "thinking" or "redacted_thinking".
	Type string
	// Text is a text block's text.
	Text string
	// ID, Name and Input describe a tool_use block. ID is made up when
	// empty; Input is a JSON object ({} when empty).
	ID    string
	Name  string
	Input json.RawMessage
	// Thinking and Signature describe a thinking block. Signature is made up
	// when empty.
	Thinking  string
	Signature string
	// Data is a redacted_thinking block's data.
	Data string
}

// Error is an Anthropic error reply: {"type":"error","error":{"type":Type,
// "message":Message},"request_id":"req_…"} with HTTP status Status.
type Error struct {
	Status  int    // 500 if zero
	Type    string // derived from Status if empty (see Fail)
	Message string // a stock message for the status if empty
	Code    string // error.details.error_code; none if empty
}

// CutMode says how a stream cut by Cut ends.
type CutMode int

const (
	// CutError sends `event: error` with the Cut's error (overloaded_error
	// "Overloaded" by default) and ends the response; no message_stop follows.
	// A non-streaming request instead gets that error as an HTTP error.
	CutError CutMode = iota
	// CutAbort drops the connection without ending the response, as a
	// network failure would (panic(http.ErrAbortHandler)).
	CutAbort
	// CutHang stops sending and waits until the request context ends.
	CutHang
)

// Cut ends a reply early. For a stream, the fake sends message_start,
// content_block_start, ping and the first AfterDeltas content_block_delta
// frames (all of them, stopping before message_delta, if there are fewer),
// then ends as Mode says. For a JSON reply, CutAbort and CutHang send the
// headers and half the body first.
type Cut struct {
	AfterDeltas int
	Mode        CutMode
	Error       *Error // for CutError; overloaded_error "Overloaded" (529) if nil
}

// Response is what the fake sends for one POST /v1/messages. Zero fields are
// derived from the request:
//
//   - Content: a thinking block first if the request enables thinking; then a
//     tool_use block calling the first tool if the request has tools and its
//     last user text contains "use a tool" (or the ToolUse option is set),
//     else a short text block echoing the last user text.
//   - StopReason: "tool_use" if Content has a tool_use block, else "end_turn".
//   - Usage (when entirely zero): Input = len(body)/4, Output = content
//     bytes/4, both at least 1. CacheWrite and its 5m/1h split complete each
//     other: a lone CacheWrite is all 5m; a lone split sums to CacheWrite.
//   - ID: msg_<random>; Model: the request's model.
type Response struct {
	// Error, if set, makes the reply an HTTP error; content is ignored.
	Error *Error
	// Raw, if set, is sent verbatim as a 200 body instead of a generated
	// message: as SSE frames (one flush per frame) if it starts with "event:"
	// or "data:", else as JSON. SentUsage still counts the usage it carries.
	Raw []byte

	ID           string
	Model        string
	Content      []Block
	StopReason   string
	StopSequence string // null when empty
	Usage        Tokens
	// UsageJSON holds more fields of the usage object, as a JSON object
	// such as {"speed":"fast","inference_geo":"us","iterations":[...]}.
	// A whole reply's usage gets them all; in a stream, iterations come on
	// message_delta (where Anthropic sends them) and the others on
	// message_start. They do not change the token figures of Usage, which
	// SentUsage counts.
	UsageJSON json.RawMessage
	// LegacyDeltaUsage makes message_delta carry only output_tokens, as older
	// API versions did, instead of the cumulative input and cache figures too.
	LegacyDeltaUsage bool

	// Header is added to the response headers (errors and successes).
	Header http.Header
	// Delay is waited before anything is sent (time to headers).
	Delay time.Duration
	// EventDelay is waited before every SSE frame after the first.
	EventDelay time.Duration
	// Hold, if not nil, pauses a stream right after message_start (a JSON
	// reply before its headers) until Hold is closed or the request ends.
	// Paused replies are counted by Held and AwaitHeld.
	Hold <-chan struct{}
	// Hang sends nothing and waits until the request context ends.
	Hang bool
	// Cut, if set, ends the reply early.
	Cut *Cut
}

// Step makes the reply to one request. A Step is queued per credential with
// Script; passed to NewServer directly it is the default reply. The Request
// must not be modified.
type Step func(req *Request) Response

func (st Step) apply(s *Server) { s.reply = st }

// Edit changes a Response being built by OK, Fail and the other Step helpers.
type Edit func(*Response)

func build(r Response, edits []Edit) Response {
	for _, e := range edits {
		e(&r)
	}
	return r
}

// OK replies normally: the derived reply, changed by edits.
//
//	upstreamtest.OK(upstreamtest.Text("Hi"), upstreamtest.WithUsage(upstreamtest.Tokens{Input: 10, Output: 3}))
func OK(edits ...Edit) Step {
	return func(*Request) Response { return build(Response{}, edits) }
}

// Fail replies with an HTTP error of the given status. The error type follows
// the status as the real API does: 400 invalid_request_error, 401
// authentication_error, 402 billing_error, 403 permission_error, 404
// not_found_error, 409 conflict_error, 413 request_too_large, 429
// rate_limit_error, 500 api_error, 504 timeout_error, 529 overloaded_error
// (other 4xx invalid_request_error, other 5xx api_error). Change it with
// ErrorType and Message; add headers with RetryAfter, ShouldRetry, Header and
// UnifiedWindow.
//
//	upstreamtest.Fail(429, upstreamtest.RetryAfter(30))
func Fail(status int, edits ...Edit) Step {
	return func(*Request) Response {
		return build(Response{Error: &Error{Status: status}}, edits)
	}
}

// FailMidStream sends a 200 stream that stops after afterDeltas
// content_block_delta frames with `event: error` overloaded_error
// "Overloaded" and no message_stop. Message and ErrorType change the error.
//
//	upstreamtest.FailMidStream(2, upstreamtest.Message("Overloaded"))
func FailMidStream(afterDeltas int, edits ...Edit) Step {
	return func(*Request) Response {
		return build(Response{Cut: &Cut{AfterDeltas: afterDeltas, Mode: CutError}}, edits)
	}
}

// AbortMidStream sends a 200 stream and drops the connection after
// afterDeltas content_block_delta frames; the client sees an unexpected EOF.
//
//	upstreamtest.AbortMidStream(1)
func AbortMidStream(afterDeltas int, edits ...Edit) Step {
	return func(*Request) Response {
		return build(Response{Cut: &Cut{AfterDeltas: afterDeltas, Mode: CutAbort}}, edits)
	}
}

// HangMidStream sends a 200 stream, stops after afterDeltas
// content_block_delta frames and waits until the request context ends.
//
//	upstreamtest.HangMidStream(0)
func HangMidStream(afterDeltas int, edits ...Edit) Step {
	return func(*Request) Response {
		return build(Response{Cut: &Cut{AfterDeltas: afterDeltas, Mode: CutHang}}, edits)
	}
}

// Hang sends nothing, not even headers, until the request context ends.
//
//	upstreamtest.Hang()
func Hang(edits ...Edit) Step {
	return func(*Request) Response { return build(Response{Hang: true}, edits) }
}

// Replay sends data verbatim as a 200 body (see Response.Raw).
//
//	upstreamtest.Replay([]byte("event: message_start\ndata: {...}\n\n..."))
func Replay(data []byte, edits ...Edit) Step {
	return func(*Request) Response { return build(Response{Raw: data}, edits) }
}

// ReplayFile is Replay of a file's contents (an .sse or .json transcript),
// read now. If it cannot be read, every reply is a 500 api_error naming the
// problem.
//
//	upstreamtest.NewServer(t, upstreamtest.ReplayFile("testdata/golden/basic/upstream.sse"))
func ReplayFile(path string, edits ...Edit) Step {
	data, err := os.ReadFile(path)
	if err != nil {
		return Fail(http.StatusInternalServerError, Message("upstreamtest: "+err.Error()))
	}
	return Replay(data, edits...)
}

// Text appends a text block.
//
//	upstreamtest.OK(upstreamtest.Text("Hello"), upstreamtest.Text("again"))
func Text(text string) Edit {
	return func(r *Response) { r.Content = append(r.Content, Block{Type: "text", Text: text}) }
}

// ToolCall appends a tool_use block calling name with input, which is
// marshalled to JSON (a json.RawMessage or []byte is used as is; nil is {}).
//
//	upstreamtest.OK(upstreamtest.ToolCall("get_weather", map[string]any{"city": "Paris"}))
func ToolCall(name string, input any) Edit {
	var raw json.RawMessage
	switch v := input.(type) {
	case nil:
	case json.RawMessage:
		raw = v
	case []byte:
		raw = v
	default:
		b, err := json.Marshal(v)
		if err != nil {
			panic("upstreamtest: ToolCall input: " + err.Error())
		}
		raw = b
	}
	return func(r *Response) {
		r.Content = append(r.Content, Block{Type: "tool_use", Name: name, Input: raw})
	}
}

// Thinking appends a thinking block; an empty signature is made up.
//
//	upstreamtest.OK(upstreamtest.Thinking("Let me see.", "sig-1"), upstreamtest.Text("42"))
func Thinking(thinking, signature string) Edit {
	return func(r *Response) {
		r.Content = append(r.Content, Block{Type: "thinking", Thinking: thinking, Signature: signature})
	}
}

// WithUsage sets the usage the reply reports.
//
//	upstreamtest.OK(upstreamtest.WithUsage(upstreamtest.Tokens{Input: 5, Output: 7, CacheRead: 100, CacheWrite5m: 20, CacheWrite1h: 30}))
func WithUsage(t Tokens) Edit { return func(r *Response) { r.Usage = t } }

// WithUsageJSON adds fields to the usage object the reply reports (see
// Response.UsageJSON). It panics if fields is not a JSON object.
//
//	upstreamtest.OK(upstreamtest.WithUsageJSON(`{"speed":"fast","inference_geo":"us"}`))
func WithUsageJSON(fields string) Edit {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(fields), &m); err != nil || m == nil {
		panic("upstreamtest: WithUsageJSON: not a JSON object: " + fields)
	}
	return func(r *Response) { r.UsageJSON = json.RawMessage(fields) }
}

// StopReason sets stop_reason, e.g. "max_tokens" or "refusal".
//
//	upstreamtest.OK(upstreamtest.StopReason("max_tokens"))
func StopReason(reason string) Edit { return func(r *Response) { r.StopReason = reason } }

// LegacyDeltaUsage makes message_delta report only output_tokens.
//
//	upstreamtest.OK(upstreamtest.LegacyDeltaUsage())
func LegacyDeltaUsage() Edit { return func(r *Response) { r.LegacyDeltaUsage = true } }

// Delay waits d before sending anything (latency to headers).
//
//	upstreamtest.OK(upstreamtest.Delay(200 * time.Millisecond))
func Delay(d time.Duration) Edit { return func(r *Response) { r.Delay = d } }

// EventDelay waits d before each SSE frame after the first (a slow stream).
//
//	upstreamtest.OK(upstreamtest.EventDelay(10 * time.Millisecond))
func EventDelay(d time.Duration) Edit { return func(r *Response) { r.EventDelay = d } }

// Hold pauses a stream after message_start until ch is closed (or the
// request ends), so a test can keep many streams open and release them at once.
//
//	release := make(chan struct{}); up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Hold(release)))
//	up.AwaitHeld(ctx, 50); close(release) // 50 streams had sent message_start
func Hold(ch <-chan struct{}) Edit { return func(r *Response) { r.Hold = ch } }

// Header adds a response header, on errors and successes alike.
//
//	upstreamtest.Fail(429, upstreamtest.Header("anthropic-ratelimit-requests-remaining", "0"))
func Header(key, value string) Edit {
	return func(r *Response) {
		if r.Header == nil {
			r.Header = make(http.Header)
		}
		r.Header.Add(key, value)
	}
}

// RetryAfter sets the retry-after header, in seconds.
//
//	upstreamtest.Fail(429, upstreamtest.RetryAfter(30))
func RetryAfter(seconds int) Edit { return Header("retry-after", strconv.Itoa(seconds)) }

// ShouldRetry sets the x-should-retry header the SDK obeys over the status.
//
//	upstreamtest.Fail(500, upstreamtest.ShouldRetry(false))
func ShouldRetry(retry bool) Edit { return Header("x-should-retry", strconv.FormatBool(retry)) }

// UnifiedWindow sets the subscription rate-limit headers of one window
// ("5h", "7d", "7d_oi", …): anthropic-ratelimit-unified-<window>-status and
// -<window>-reset (Unix seconds), plus the overall -status, -reset and
// -representative-claim (five_hour, seven_day or the window name).
//
//	upstreamtest.Fail(429, upstreamtest.UnifiedWindow("5h", "rejected", time.Now().Add(time.Hour)))
func UnifiedWindow(window, status string, reset time.Time) Edit {
	claim := map[string]string{"5h": "five_hour", "7d": "seven_day"}[window]
	if claim == "" {
		claim = window
	}
	epoch := strconv.FormatInt(reset.Unix(), 10)
	const p = "anthropic-ratelimit-unified-"
	return func(r *Response) {
		for _, e := range []Edit{
			Header(p+"status", status),
			Header(p+"reset", epoch),
			Header(p+window+"-status", status),
			Header(p+window+"-reset", epoch),
			Header(p+"representative-claim", claim),
		} {
			e(r)
		}
	}
}

// Message sets the error message (of Fail, or of the error event of
// FailMidStream).
//
//	upstreamtest.Fail(400, upstreamtest.Message("This organization has been disabled."))
func Message(msg string) Edit {
	return func(r *Response) { r.errorToEdit().Message = msg }
}

// ErrorType sets the error type (of Fail, or of the error event of
// FailMidStream).
//
//	upstreamtest.Fail(400, upstreamtest.ErrorType("billing_error"))
func ErrorType(typ string) Edit {
	return func(r *Response) { r.errorToEdit().Type = typ }
}

// ErrorCode sets error.details.error_code (of Fail, or of the error event
// of FailMidStream).
//
//	upstreamtest.Fail(400, upstreamtest.ErrorCode("claude_code_version_too_old"))
func ErrorCode(code string) Edit {
	return func(r *Response) { r.errorToEdit().Code = code }
}

// errorToEdit returns the error Message and ErrorType change: the reply's
// error, else the cut's (created if needed), else a throwaway.
func (r *Response) errorToEdit() *Error {
	switch {
	case r.Error != nil:
		return r.Error
	case r.Cut != nil:
		if r.Cut.Error == nil {
			r.Cut.Error = &Error{}
		}
		return r.Cut.Error
	}
	return &Error{}
}

// errorType is the real API's error type for an HTTP status.
func errorType(status int) string {
	switch status {
	case 400:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 402:
		return "billing_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 409:
		return "conflict_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 504:
		return "timeout_error"
	case 529:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

// errorMessage is a stock message for an HTTP status.
func errorMessage(status int) string {
	switch status {
	case 401:
		return "invalid x-api-key"
	case 403:
		return "Your API key does not have permission to use the specified resource."
	case 404:
		return "Not Found"
	case 413:
		return "Request exceeds the maximum allowed number of bytes."
	case 429:
		return "Number of request tokens has exceeded your per-minute rate limit"
	case 500:
		return "Internal server error"
	case 529:
		return "Overloaded"
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return strings.ReplaceAll(errorType(status), "_", " ")
}

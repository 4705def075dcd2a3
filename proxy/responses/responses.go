// Package responses converts the OpenAI Responses API (POST /v1/responses)
// to Anthropic Messages and back: Decode turns a client request into an
// anthropic.Request, Encoder turns the upstream's stream events into the
// Responses event sequence, and Result builds the non-streaming response
// object. It is pure translation code: no net/http server, no accounts, no
// storage.
//
// It is a package of its own, apart from proxy/openai (Chat Completions),
// because the two dialects share little beyond the error shape and are
// written and changed independently.
//
// The gateway keeps no server-side state. A request that needs some
// (previous_response_id, conversation, a stored prompt, background mode, an
// item_reference) is refused with a 400 naming the field; store: true is
// accepted, but nothing is kept and the response says store: false.
//
// Reasoning round trip: a thinking block goes out as a reasoning item whose
// summary is the thinking text and whose encrypted_content is an opaque
// marker (see sealThinking) carrying the thinking text and its signature
// exactly as the upstream sent them. Only such markers come back as thinking
// blocks; any other encrypted_content (OpenAI's own, for instance) is
// dropped, because the upstream would refuse it.
package responses

import (
	"fmt"
	"time"

	"github.com/llmgw/llmgw/proxy/anthropic"
)

// DecodeOptions tunes Decode.
type DecodeOptions struct {
	// Aliases maps model names clients insist on (gpt-5-codex) to Anthropic
	// model ids. Names not in the map pass through unchanged.
	Aliases map[string]string
	// Models answers for each model's max_tokens default and cap and how it
	// takes thinking: the catalog the config file extended. Nil means the
	// built-in catalog.
	Models anthropic.ModelLimits
	// Now is the clock the response's created time comes from: the
	// server's. Nil means time.Now.
	Now func() time.Time
}

// Info is what the response side needs to know about a decoded request. It
// is built by Decode and read by NewEncoder and Result; it is not modified
// after Decode returns, so one Info may be shared by both.
type Info struct {
	// Model is the model name the client sent, echoed in responses (the
	// upstream request carries the aliased name).
	Model string
	// Stream is true when the client asked for a stream.
	Stream bool
	// Created is when the request was decoded; it is the response's
	// created_at.
	Created time.Time
	// Session is the conversation the client names: prompt_cache_key, else
	// user; "" if neither.
	Session string
	// Tools maps each upstream tool name to the tool the client declared, so
	// that calls come back under the client's name, namespace and kind.
	Tools map[string]Tool
	// Notes lists what Decode dropped or changed without refusing the
	// request (hosted tools, informational fields, foreign reasoning items,
	// thinking turned off…), for a debug log line. They never reach the
	// client.
	Notes []string

	echo echo // request fields the response object repeats
}

// Tool is a client tool as declared, behind an upstream tool name.
type Tool struct {
	// Name is the client's name of the tool.
	Name string
	// Namespace is the namespace tool it was declared in, or empty.
	Namespace string
	// Custom is true for a freeform custom tool (Codex's apply_patch): its
	// single string input is wrapped as {"input": …} upstream and unwrapped
	// into a custom_tool_call going back.
	Custom bool
}

// RequestError is a request the gateway refuses: the answer is a 400
// invalid_request_error whose message names the offending field.
type RequestError struct {
	// Param is the field at fault, in the request's own terms
	// ("input[2].content[0].image_url"); empty when the body as a whole is
	// at fault.
	Param string
	// Message says what is wrong.
	Message string
}

// Error returns "param: message", or the message alone without a param.
func (e *RequestError) Error() string {
	if e.Param == "" {
		return e.Message
	}
	return e.Param + ": " + e.Message
}

func badParam(param, format string, args ...any) *RequestError {
	return &RequestError{Param: param, Message: fmt.Sprintf(format, args...)}
}

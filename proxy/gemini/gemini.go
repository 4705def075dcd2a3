// Package gemini translates Google's Gemini generateContent API to
// Anthropic's Messages API and back. Decode turns a generateContent request
// into an anthropic.Request; an Encoder turns the Anthropic stream into
// streamGenerateContent chunks event by event; Result builds the
// non-streaming GenerateContentResponse; ErrorBody renders errors in
// Google's shape.
//
// The package is pure translation: no network code, no accounts, no storage.
//
// Thinking signatures. Anthropic requires the signed thinking blocks of an
// active tool loop to come back unchanged. Gemini clients keep whatever they
// get in a part's thoughtSignature (bytes) and send it back with that part,
// so the signed thinking blocks of an answer ride, encoded, in the
// thoughtSignature of the first part that follows them (a functionCall or
// text part), as Gemini itself does. Decode restores them exactly. Parts
// whose thoughtSignature is not one of ours (Gemini's own) carry no thinking
// for Claude and are read as plain parts.
package gemini

import (
	"fmt"

	"github.com/llmgw/llmgw/proxy/anthropic"
)

// DecodeOptions tunes Decode.
type DecodeOptions struct {
	// Aliases maps model names clients insist on to Anthropic model ids.
	// Names not in the map pass through unchanged.
	Aliases map[string]string
	// Models answers for each model's max_tokens default and cap and how it
	// takes thinking: the catalog the config file extended. Nil means the
	// built-in catalog.
	Models anthropic.ModelLimits
}

// Info is what the response side needs to know about a decoded request. The
// handler sets Stream and JSONArray; Decode sets the rest. An Info is not
// modified by the Encoder or Result, so it may be shared by both.
type Info struct {
	// Model is the model name the client used, reported back as
	// modelVersion.
	Model string
	// Stream is true for streamGenerateContent.
	Stream bool
	// JSONArray frames a stream as one JSON array (streamGenerateContent
	// without alt=sse) instead of SSE data: frames.
	JSONArray bool
	// IncludeThoughts shows thinking as thought parts (thinkingConfig
	// includeThoughts).
	IncludeThoughts bool
	// Names maps the function names sent upstream back to the client's.
	Names *anthropic.ToolNames
	// Ignored lists the request fields that were dropped because they are
	// informational or name something Claude cannot do (safetySettings,
	// googleSearch tools…), for a debug log line.
	Ignored []string
	// SynthesizedIDs counts the function calls of the history that came
	// without an id and got a deterministic one, so the same history gives
	// the same ids and the same cache prefix.
	SynthesizedIDs int
	// Orphans counts function responses that answered no call and were
	// kept as text: Anthropic refuses a tool_result without its tool_use.
	Orphans int
	// Notes says what anthropic.Normalize changed to make the request one
	// Anthropic accepts (a dropped temperature, a merged turn…), for a
	// debug log line.
	Notes []string
}

// clientName returns the client's name for an upstream tool name.
func (i *Info) clientName(upstream string) string {
	if i.Names == nil {
		return upstream
	}
	return i.Names.Client(upstream)
}

// RequestError is a request llmgw cannot translate. The proxy answers it
// with 400 INVALID_ARGUMENT; Field names the offending field in Google's
// spelling (for example "generationConfig.candidateCount"), empty when the
// body as a whole is wrong.
type RequestError struct {
	Field   string
	Message string
}

// Error returns "field: message", or the message alone.
func (e *RequestError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

func reqErr(field, format string, args ...any) *RequestError {
	if len(args) > 0 {
		format = fmt.Sprintf(format, args...)
	}
	return &RequestError{Field: field, Message: format}
}

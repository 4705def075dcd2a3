package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
)

// Request is an Anthropic Messages request as the dialect converters build
// it. The native Anthropic path never decodes into it: it passes the client's
// bytes through.
type Request struct {
	Model         string         `json:"model"`
	MaxTokens     int            `json:"max_tokens"`
	System        []ContentBlock `json:"system,omitempty"` // text blocks only
	Messages      []Message      `json:"messages"`
	Tools         []Tool         `json:"tools,omitempty"`
	ToolChoice    *ToolChoice    `json:"tool_choice,omitempty"`
	Temperature   *float64       `json:"temperature,omitempty"`
	TopP          *float64       `json:"top_p,omitempty"`
	TopK          *int           `json:"top_k,omitempty"`
	StopSequences []string       `json:"stop_sequences,omitempty"`
	Stream        bool           `json:"stream,omitempty"`
	Thinking      *Thinking      `json:"thinking,omitempty"`
	Metadata      *Metadata      `json:"metadata,omitempty"`
	OutputConfig  *OutputConfig  `json:"output_config,omitempty"`
	ServiceTier   string         `json:"service_tier,omitempty"`
}

// Message is one turn.
type Message struct {
	Role    string         `json:"role"` // user or assistant
	Content []ContentBlock `json:"content"`
}

// ContentBlock is any content block: text, image, document, tool_use,
// tool_result, thinking, redacted_thinking. Only the fields of its Type are
// set.
type ContentBlock struct {
	Type string `json:"type"`

	// text
	Text      string          `json:"text,omitempty"`
	Citations json.RawMessage `json:"citations,omitempty"`

	// image, document
	Source *Source `json:"source,omitempty"`

	// tool_use. On a tool_result, Name is never sent: a decoder sets it (the
	// upstream tool name) with an empty or unknown ToolUseID to have
	// Normalize pair the result with a call of that tool.
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"` // always set for tool_use ({} when empty)

	// tool_result: Content is a string or an array of blocks, kept raw.
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   json.RawMessage `json:"content,omitempty"`
	IsError   bool            `json:"is_error,omitempty"`

	// thinking, redacted_thinking: returned to the upstream exactly as received.
	Thinking  string `json:"thinking,omitempty"`
	Signature string `json:"signature,omitempty"`
	Data      string `json:"data,omitempty"`

	CacheControl *CacheControl `json:"cache_control,omitempty"`
}

// MarshalJSON writes a thinking block's thinking and signature even when
// empty: the API requires both fields on a thinking block (a block whose
// display was omitted has empty thinking text).
func (b ContentBlock) MarshalJSON() ([]byte, error) {
	type plain ContentBlock
	if b.Type == "tool_result" {
		b.Name = ""
	}
	var v any = plain(b)
	if b.Type == "thinking" {
		v = struct {
			plain
			Thinking  string `json:"thinking"`
			Signature string `json:"signature"`
		}{plain(b), b.Thinking, b.Signature}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // prompts go upstream as written
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// Source is an image or document source.
type Source struct {
	Type      string `json:"type"` // base64, url, text
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

// ImageMediaType returns the media type Anthropic takes for an image of
// media type mt (jpeg, png, gif or webp; image/jpg is named image/jpeg), and
// whether it takes it at all.
func ImageMediaType(mt string) (string, bool) {
	switch mt = strings.ToLower(strings.TrimSpace(mt)); mt {
	case "image/jpeg", "image/png", "image/gif", "image/webp":
		return mt, true
	case "image/jpg":
		return "image/jpeg", true
	}
	return "", false
}

// ParseDataURL splits a data URL, data:<media type>[;param…][;base64],<data>
// (the prefix in any case). The media type comes back in lower case, without
// its parameters; isBase64 says whether data is base64 (else it is
// percent-encoded text). The error says what is malformed, for the client.
func ParseDataURL(u string) (mediaType, data string, isBase64 bool, err error) {
	if len(u) < len("data:") || !strings.EqualFold(u[:len("data:")], "data:") {
		return "", "", false, errors.New("not a data URL")
	}
	head, data, ok := strings.Cut(u[len("data:"):], ",")
	if !ok {
		return "", "", false, errors.New("malformed data URL: no comma")
	}
	params := strings.Split(head, ";")
	mediaType = strings.ToLower(strings.TrimSpace(params[0]))
	for _, p := range params[1:] {
		isBase64 = isBase64 || strings.EqualFold(strings.TrimSpace(p), "base64")
	}
	return mediaType, data, isBase64, nil
}

// ToolResultContent is the content of a tool_result that holds blocks: none
// for no blocks, a JSON string for a single text block (the form every
// client sends and the model reads best), else the block list. Blank text
// blocks are left out: Anthropic refuses them. Text is encoded as written
// (no HTML escaping).
func ToolResultContent(blocks []ContentBlock) json.RawMessage {
	kept := make([]ContentBlock, 0, len(blocks))
	for _, b := range blocks {
		if b.Type != "text" || strings.TrimSpace(b.Text) != "" {
			kept = append(kept, b)
		}
	}
	var v any = kept
	switch {
	case len(kept) == 0:
		return nil
	case len(kept) == 1 && kept[0].Type == "text" && kept[0].CacheControl == nil:
		v = kept[0].Text
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil { // blocks of strings: cannot fail
		return nil
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// JSONKind names a Go type the way a JSON client thinks of it ("a string",
// "an array"…), for the message of a request whose field has the wrong
// JSON type (json.UnmarshalTypeError.Type).
func JSONKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Pointer:
		return JSONKind(t.Elem())
	}
	return "an object"
}

// Tool is a custom (client-run) tool.
type Tool struct {
	Name         string          `json:"name"`
	Description  string          `json:"description,omitempty"`
	InputSchema  json.RawMessage `json:"input_schema"`
	CacheControl *CacheControl   `json:"cache_control,omitempty"`
}

// ToolChoice says whether and which tool the model must call.
type ToolChoice struct {
	Type                   string `json:"type"` // auto, any, none, tool
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

// Thinking configures extended thinking.
type Thinking struct {
	Type         string `json:"type"` // enabled, disabled, adaptive
	BudgetTokens int    `json:"budget_tokens,omitempty"`
	// Effort is the reasoning effort the client asked for (none, minimal,
	// low, medium, high, xhigh, max), kept by the decoders next to the
	// budget they derived from it (ThinkingBudget). It is never sent as
	// part of thinking: for a model that takes adaptive thinking only,
	// Normalize sends thinking {type: adaptive} with the effort as
	// output_config.effort (minimal as low); for the others the budget
	// stands and Effort is unused. Empty when the client gave a budget.
	Effort string `json:"-"`
}

// Metadata carries the opaque end-user id.
type Metadata struct {
	UserID string `json:"user_id,omitempty"`
}

// OutputConfig asks for structured output or an effort level.
type OutputConfig struct {
	Effort string        `json:"effort,omitempty"`
	Format *OutputFormat `json:"format,omitempty"`
}

// OutputFormat is a JSON-schema output format.
type OutputFormat struct {
	Type   string          `json:"type"` // json_schema
	Schema json.RawMessage `json:"schema"`
}

// CacheControl marks a cache breakpoint.
type CacheControl struct {
	Type string `json:"type"`          // ephemeral
	TTL  string `json:"ttl,omitempty"` // 5m or 1h
}

// MaxBreakpoints is Anthropic's limit of cache_control marks per request.
const MaxBreakpoints = 4

// Breakpoints counts the cache_control marks in r.
func (r *Request) Breakpoints() int {
	n := 0
	for _, t := range r.Tools {
		if t.CacheControl != nil {
			n++
		}
	}
	for _, b := range r.System {
		if b.CacheControl != nil {
			n++
		}
	}
	for _, m := range r.Messages {
		for _, b := range m.Content {
			if b.CacheControl != nil {
				n++
			}
		}
	}
	return n
}

// AddCacheBreakpoints marks the stable prefix of a request for prompt
// caching, for clients (OpenAI, Gemini) that cannot send cache_control
// themselves: the last tool, the last system block, and the last block of
// the two most recent user turns (the newest writes the cache, the one
// before reads what the previous request wrote). It never exceeds
// MaxBreakpoints, counting marks already present, and never marks an empty
// text or a thinking block, which Anthropic refuses to cache.
func (r *Request) AddCacheBreakpoints() {
	budget := MaxBreakpoints - r.Breakpoints()
	mark := func(cc **CacheControl) {
		if budget > 0 && *cc == nil {
			*cc = &CacheControl{Type: "ephemeral"}
			budget--
		}
	}
	if n := len(r.Tools); n > 0 {
		mark(&r.Tools[n-1].CacheControl)
	}
	if n := len(r.System); n > 0 {
		mark(&r.System[n-1].CacheControl)
	}
	users := 0
	for i := len(r.Messages) - 1; i >= 0 && users < 2; i-- {
		m := &r.Messages[i]
		if m.Role != "user" {
			continue
		}
		users++
		for j := len(m.Content) - 1; j >= 0; j-- {
			b := &m.Content[j]
			if cacheable(b) {
				mark(&b.CacheControl)
				break
			}
		}
	}
}

func cacheable(b *ContentBlock) bool {
	switch b.Type {
	case "thinking", "redacted_thinking":
		return false
	case "text":
		return b.Text != ""
	}
	return true
}

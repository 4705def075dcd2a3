package openai

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
)

// chatUsage is OpenAI's CompletionUsage. prompt_tokens includes cached
// tokens, as OpenAI's does; Anthropic's input_tokens does not.
type chatUsage struct {
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	TotalTokens         int64 `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens     int64 `json:"cached_tokens"`
		CacheWriteTokens int64 `json:"cache_write_tokens"`
	} `json:"prompt_tokens_details"`
	// CompletionTokensDetails is set only when the upstream reports how
	// much of the output was thinking.
	CompletionTokensDetails *completionDetails `json:"completion_tokens_details,omitempty"`
}

type completionDetails struct {
	ReasoningTokens int64 `json:"reasoning_tokens"`
}

// noteThinking keeps the thinking share of the output when u reports it.
func (e *ChatEncoder) noteThinking(u *anthropic.Usage) {
	if n, ok := u.ThinkingTokens(); ok {
		e.thinking = n
	}
}

// usageOf converts Anthropic's figures; thinking is the part of the output
// spent thinking, when the upstream reports it.
func usageOf(t llmgw.Tokens, thinking int64) *chatUsage {
	u := &chatUsage{
		PromptTokens:     t.Input + t.CacheRead + t.CacheWrite,
		CompletionTokens: t.Output, // includes thinking
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	u.PromptTokensDetails.CachedTokens = t.CacheRead
	u.PromptTokensDetails.CacheWriteTokens = t.CacheWrite
	if thinking > 0 {
		u.CompletionTokensDetails = &completionDetails{ReasoningTokens: thinking}
	}
	return u
}

// finishReason maps an Anthropic stop_reason. tool_use becomes tool_calls
// only if a client tool call was actually emitted (server tools alone end
// as stop); pause_turn (a paused server-tool turn) is a stop, never
// tool_calls.
func finishReason(stop string, toolCalls int) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		if toolCalls > 0 {
			return "tool_calls"
		}
	case "refusal", "sensitive":
		return "content_filter"
	}
	return "stop"
}

// completionID is the chat completion id for an Anthropic message id.
func completionID(msgID string) string {
	if id := strings.TrimPrefix(msgID, "msg_"); id != "" {
		return "chatcmpl-" + id
	}
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "chatcmpl-" + hex.EncodeToString(b[:])
}

func createdAt(info ChatInfo) int64 {
	if info.Created != 0 {
		return info.Created
	}
	return time.Now().Unix()
}

func clientToolName(info ChatInfo, name string) string {
	if info.ToolNames == nil {
		return name
	}
	return info.ToolNames.Client(name)
}

// Stream chunk shapes.

type chunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []chunkChoice `json:"choices"`
	Usage   any           `json:"usage,omitempty"` // *chatUsage, null, or absent
}

type chunkChoice struct {
	Index        int        `json:"index"`
	Delta        chunkDelta `json:"delta"`
	Logprobs     *struct{}  `json:"logprobs"`
	FinishReason *string    `json:"finish_reason"`
}

type chunkDelta struct {
	Role             string          `json:"role,omitempty"`
	Content          *string         `json:"content,omitempty"`
	ReasoningContent *string         `json:"reasoning_content,omitempty"`
	ThinkingBlocks   []thinkingBlock `json:"thinking_blocks,omitempty"`
	ToolCalls        []toolCallDelta `json:"tool_calls,omitempty"`
}

type toolCallDelta struct {
	Index    int           `json:"index"`
	ID       string        `json:"id,omitempty"`
	Type     string        `json:"type,omitempty"`
	Function functionDelta `json:"function"`
}

type functionDelta struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// streamEvent is every Anthropic stream event the encoder reads.
type streamEvent struct {
	Index   int `json:"index"`
	Message *struct {
		ID    string           `json:"id"`
		Usage *anthropic.Usage `json:"usage"`
	} `json:"message"`
	ContentBlock *struct {
		Type string `json:"type"`
		Text string `json:"text"`
		ID   string `json:"id"`
		Name string `json:"name"`
		Data string `json:"data"`
	} `json:"content_block"`
	Delta *anthropic.StreamDelta `json:"delta"`
	Usage *anthropic.Usage       `json:"usage"`
	Error *anthropic.ErrorDetail `json:"error"`
}

// blockState is what the encoder remembers about one open content block.
type blockState struct {
	typ       string // text, thinking, tool_use, or another type that is dropped
	tool      int    // tool_calls index of a tool_use block
	sentArgs  bool   // a non-empty arguments fragment went out
	thinking  strings.Builder
	signature string
}

// ChatEncoder turns an Anthropic event stream into chat.completion.chunk
// frames. Every chunk has the same id and created time; the first carries
// the assistant role; tool calls are indexed by their ordinal among the
// response's tool calls (0, 1, ...), never by content-block index; thinking
// goes out as reasoning_content deltas and, once signed, as a thinking_blocks
// entry a client can send back. message_stop ends the stream with the finish
// chunk, the usage chunk when asked for, and data: [DONE]. It implements the
// proxy's StreamEncoder; it is not safe for concurrent use.
type ChatEncoder struct {
	info     ChatInfo
	id       string
	created  int64
	started  bool // the role chunk went out
	done     bool // [DONE] or an error went out
	blocks   map[int]*blockState
	tools    int // tool calls emitted so far
	stop     string
	tokens   llmgw.Tokens
	thinking int64 // output tokens spent thinking, when reported
	buf      bytes.Buffer
	enc      *json.Encoder
}

// NewChatEncoder returns an encoder for one response to a request described
// by info.
func NewChatEncoder(info ChatInfo) *ChatEncoder {
	e := &ChatEncoder{info: info, created: createdAt(info), blocks: make(map[int]*blockState)}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}

// Event translates one upstream event, writing zero or more frames to w.
// Events after the end of the stream are ignored.
func (e *ChatEncoder) Event(w io.Writer, name string, data []byte) error {
	if e.done {
		return nil
	}
	switch name {
	case "ping":
		// OpenAI SDKs skip SSE comments; it keeps idle connections alive.
		_, err := io.WriteString(w, ": ping\n\n")
		return err
	case "message_start", "content_block_start", "content_block_delta", "content_block_stop",
		"message_delta", "message_stop", "error":
	default:
		return nil // comments and event types newer than this encoder
	}
	var ev streamEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return fmt.Errorf("decode %s event: %w", name, err)
	}
	switch name {
	case "message_start":
		if ev.Message != nil {
			e.id = completionID(ev.Message.ID)
			ev.Message.Usage.ApplyTo(&e.tokens)
			e.noteThinking(ev.Message.Usage)
		}
		return e.start(w)
	case "content_block_start":
		return e.blockStart(w, &ev)
	case "content_block_delta":
		return e.blockDelta(w, &ev)
	case "content_block_stop":
		return e.blockStop(w, ev.Index)
	case "message_delta":
		if ev.Delta != nil && ev.Delta.StopReason != "" {
			e.stop = ev.Delta.StopReason
		}
		ev.Usage.ApplyTo(&e.tokens) // cumulative: the latest value wins
		e.noteThinking(ev.Usage)
		return nil
	case "message_stop":
		return e.finish(w)
	default: // error
		d := anthropic.ErrorDetail{Type: "api_error", Message: "the upstream sent an error"}
		if ev.Error != nil {
			d = *ev.Error
		}
		return e.Fail(w, d.Type, d.Message)
	}
}

// start sends the role chunk, once.
func (e *ChatEncoder) start(w io.Writer) error {
	if e.started {
		return nil
	}
	e.started = true
	if e.id == "" {
		e.id = completionID("")
	}
	empty := ""
	return e.write(w, chunkDelta{Role: "assistant", Content: &empty}, nil)
}

func (e *ChatEncoder) blockStart(w io.Writer, ev *streamEvent) error {
	if err := e.start(w); err != nil {
		return err
	}
	if ev.ContentBlock == nil {
		return fmt.Errorf("content_block_start %d without a content block", ev.Index)
	}
	cb := ev.ContentBlock
	b := &blockState{typ: cb.Type}
	e.blocks[ev.Index] = b
	switch cb.Type {
	case "tool_use":
		b.tool = e.tools
		e.tools++
		return e.write(w, chunkDelta{ToolCalls: []toolCallDelta{{
			Index: b.tool, ID: cb.ID, Type: "function",
			Function: functionDelta{Name: clientToolName(e.info, cb.Name)},
		}}}, nil)
	case "redacted_thinking":
		return e.write(w, chunkDelta{ThinkingBlocks: []thinkingBlock{{Type: "redacted_thinking", Data: cb.Data}}}, nil)
	case "text":
		if cb.Text != "" { // Anthropic starts text empty, but a block may come whole
			return e.write(w, chunkDelta{Content: &cb.Text}, nil)
		}
	}
	return nil
}

func (e *ChatEncoder) blockDelta(w io.Writer, ev *streamEvent) error {
	b := e.blocks[ev.Index]
	if b == nil || ev.Delta == nil {
		return nil // a delta for a block never started: nothing to attach it to
	}
	d := ev.Delta
	switch d.Type {
	case "text_delta":
		if b.typ != "text" || d.Text == "" {
			return nil
		}
		return e.write(w, chunkDelta{Content: &d.Text}, nil)
	case "thinking_delta":
		if b.typ != "thinking" || d.Thinking == "" {
			return nil
		}
		b.thinking.WriteString(d.Thinking)
		return e.write(w, chunkDelta{ReasoningContent: &d.Thinking}, nil)
	case "signature_delta":
		b.signature += d.Signature
	case "input_json_delta":
		if b.typ != "tool_use" || d.PartialJSON == "" {
			return nil
		}
		b.sentArgs = true
		return e.write(w, chunkDelta{ToolCalls: []toolCallDelta{{
			Index: b.tool, Function: functionDelta{Arguments: d.PartialJSON},
		}}}, nil)
	}
	return nil
}

func (e *ChatEncoder) blockStop(w io.Writer, index int) error {
	b := e.blocks[index]
	if b == nil {
		return nil
	}
	delete(e.blocks, index)
	switch {
	case b.typ == "tool_use" && !b.sentArgs:
		// A tool without arguments streams no fragment; clients parse the
		// arguments, so give them an empty object.
		return e.write(w, chunkDelta{ToolCalls: []toolCallDelta{{
			Index: b.tool, Function: functionDelta{Arguments: "{}"},
		}}}, nil)
	case b.typ == "thinking" && b.signature != "":
		return e.write(w, chunkDelta{ThinkingBlocks: []thinkingBlock{{
			Type: "thinking", Thinking: b.thinking.String(), Signature: b.signature,
		}}}, nil)
	}
	return nil
}

// finish sends the finish chunk, the usage chunk if asked for, and [DONE].
func (e *ChatEncoder) finish(w io.Writer) error {
	if err := e.start(w); err != nil {
		return err
	}
	e.done = true
	reason := finishReason(e.stop, e.tools)
	if err := e.write(w, chunkDelta{}, &reason); err != nil {
		return err
	}
	if e.info.IncludeUsage {
		e.buf.Reset()
		e.buf.WriteString("data: ")
		if err := e.enc.Encode(chunk{
			ID: e.id, Object: "chat.completion.chunk", Created: e.created, Model: e.info.Model,
			Choices: []chunkChoice{}, Usage: usageOf(e.tokens, e.thinking),
		}); err != nil {
			return fmt.Errorf("encode usage chunk: %w", err)
		}
		e.buf.WriteByte('\n')
		if _, err := w.Write(e.buf.Bytes()); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, "data: [DONE]\n\n")
	return err
}

// write sends one chunk with a single choice.
func (e *ChatEncoder) write(w io.Writer, d chunkDelta, finish *string) error {
	c := chunk{
		ID: e.id, Object: "chat.completion.chunk", Created: e.created, Model: e.info.Model,
		Choices: []chunkChoice{{Delta: d, FinishReason: finish}},
	}
	if e.info.IncludeUsage {
		c.Usage = json.RawMessage("null")
	}
	e.buf.Reset()
	e.buf.WriteString("data: ")
	if err := e.enc.Encode(c); err != nil {
		return fmt.Errorf("encode chunk: %w", err)
	}
	e.buf.WriteByte('\n') // Encode ended the line; a blank line ends the frame
	_, err := w.Write(e.buf.Bytes())
	return err
}

// Fail ends the stream with OpenAI's in-stream error form, a data frame with
// a top-level error object (the OpenAI SDKs raise it), and no finish chunk
// or [DONE] after it, so the client never takes a broken answer for a whole
// one. The type and code follow ErrorBody.
func (e *ChatEncoder) Fail(w io.Writer, errType, message string) error {
	if e.done {
		return nil
	}
	e.done = true
	_, typ, code := mapError(0, errType, message)
	e.buf.Reset()
	e.buf.WriteString("data: ")
	if err := e.enc.Encode(errorEnvelope{Error: errorObject{Message: message, Type: typ, Code: code}}); err != nil {
		return fmt.Errorf("encode error chunk: %w", err)
	}
	e.buf.WriteByte('\n')
	_, err := w.Write(e.buf.Bytes())
	return err
}

// Non-streaming response shapes.

type completion struct {
	ID                string    `json:"id"`
	Object            string    `json:"object"`
	Created           int64     `json:"created"`
	Model             string    `json:"model"`
	SystemFingerprint *string   `json:"system_fingerprint"`
	Choices           []choice  `json:"choices"`
	Usage             chatUsage `json:"usage"`
}

type choice struct {
	Index        int       `json:"index"`
	Message      message   `json:"message"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason string    `json:"finish_reason"`
}

type message struct {
	Role             string          `json:"role"`
	Content          *string         `json:"content"`
	Refusal          *string         `json:"refusal"`
	ToolCalls        []toolCall      `json:"tool_calls,omitempty"`
	ReasoningContent *string         `json:"reasoning_content,omitempty"`
	ThinkingBlocks   []thinkingBlock `json:"thinking_blocks,omitempty"`
}

type toolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function toolFunction `json:"function"`
}

type toolFunction struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// ChatResult builds the non-streaming chat.completion from a whole upstream
// stream: the text blocks joined as content (null when there is none), the
// tool calls in content order, thinking as reasoning_content and signed
// thinking_blocks, the finish reason and usage mapped as in the stream.
func ChatResult(acc *anthropic.Accumulator, info ChatInfo) ([]byte, error) {
	r := &acc.Response
	var text, thinking strings.Builder
	var hasText, hasThinking bool
	msg := message{Role: "assistant"}
	for _, b := range r.Content {
		switch b.Type {
		case "text":
			text.WriteString(b.Text)
			hasText = hasText || b.Text != ""
		case "tool_use":
			args := "{}"
			if len(b.Input) > 0 {
				var buf bytes.Buffer
				if json.Compact(&buf, b.Input) == nil {
					args = buf.String()
				}
			}
			msg.ToolCalls = append(msg.ToolCalls, toolCall{
				ID: b.ID, Type: "function", Function: toolFunction{Name: clientToolName(info, b.Name), Arguments: args},
			})
		case "thinking":
			thinking.WriteString(b.Thinking)
			hasThinking = true
			if b.Signature != "" {
				msg.ThinkingBlocks = append(msg.ThinkingBlocks, thinkingBlock{Type: "thinking", Thinking: b.Thinking, Signature: b.Signature})
			}
		case "redacted_thinking":
			msg.ThinkingBlocks = append(msg.ThinkingBlocks, thinkingBlock{Type: "redacted_thinking", Data: b.Data})
		}
	}
	if hasText {
		s := text.String()
		msg.Content = &s
	}
	if hasThinking {
		s := thinking.String()
		msg.ReasoningContent = &s
	}
	out := completion{
		ID: completionID(r.ID), Object: "chat.completion", Created: createdAt(info), Model: info.Model,
		Choices: []choice{{Message: msg, FinishReason: finishReason(r.StopReason, len(msg.ToolCalls))}},
		Usage:   *usageOf(acc.Tally.Tokens, acc.Tally.Thinking),
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("encode chat completion: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

package gemini

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
)

// Encoder turns an Anthropic event stream into streamGenerateContent
// chunks, one event at a time. With alt=sse every chunk is one
// "data: <GenerateContentResponse>\r\n\r\n" frame and nothing else: no
// event: lines, no comments, nothing for upstream pings, because
// go-genai fails on any other line and regex-based clients stall on it.
// Without alt=sse the chunks are the elements of one JSON array.
//
// Each chunk carries only the new parts: text and thought deltas as they
// come, a functionCall whole (with its id) once its arguments are complete.
// The last chunk carries finishReason and usageMetadata. An Encoder is not
// safe for concurrent use.
//
// Keep-alive. A client sees nothing while a function call's arguments are
// buffered or while Claude thinks without the client asking for thoughts,
// however busy the upstream is, and proxies in between cut idle streams. So
// while such content is pending, a ping (the upstream's, or the proxy's after
// a silence) and every keepAliveBytes of withheld content send a chunk with
// one empty text part: a valid GenerateContentResponse that go-genai,
// @google/genai and the Gemini CLI all skip. Blank lines would not do: the
// JS SDKs parse with a regex anchored at "data: ".
type Encoder struct {
	info    Info
	id      string // the upstream message id, reported as responseId
	started bool   // a chunk was written (JSON array framing)
	ended   bool   // the terminal chunk or error was written
	blocks  []block
	pending []carried // signed thinking waiting for the next part
	tokens  llmgw.Tokens
	thought int64 // thinking tokens, when the upstream reports them
	stop    string
	buf     []byte
	// hidden counts the bytes of content withheld since the last chunk.
	hidden int
}

// keepAliveBytes is how much withheld content (tool input, hidden thinking)
// may pass before a keep-alive chunk: at Claude's output rates, some tens of
// seconds.
const keepAliveBytes = 4 << 10

// block is an open content block.
type block struct {
	typ   string
	text  bytes.Buffer // thinking text, or tool input fragments
	sig   string
	id    string
	name  string
	data  string
	valid bool
}

// NewEncoder returns an Encoder for a request decoded with info.
func NewEncoder(info Info) *Encoder {
	return &Encoder{info: info}
}

// streamEvent is the part of an Anthropic stream event the Encoder reads.
type streamEvent struct {
	Index        int                     `json:"index"`
	ContentBlock *anthropic.ContentBlock `json:"content_block"`
	Delta        *anthropic.StreamDelta  `json:"delta"`
	Message      *struct {
		ID    string     `json:"id"`
		Usage *usageJSON `json:"usage"`
	} `json:"message"`
	Usage *usageJSON `json:"usage"`
}

// usageJSON is a usage object, with the thinking share of output_tokens
// that newer API versions report.
type usageJSON struct {
	anthropic.Usage
	OutputTokensDetails *struct {
		ThinkingTokens *int64 `json:"thinking_tokens"`
	} `json:"output_tokens_details"`
}

func (e *Encoder) applyUsage(u *usageJSON) {
	if u == nil {
		return
	}
	u.Usage.ApplyTo(&e.tokens) // cumulative figures: the last value wins, never a sum
	if d := u.OutputTokensDetails; d != nil && d.ThinkingTokens != nil {
		e.thought = *d.ThinkingTokens
	}
}

// Event handles one upstream event. Pings and unknown events write nothing.
func (e *Encoder) Event(w io.Writer, name string, data []byte) error {
	if e.ended {
		return nil
	}
	switch name {
	case "message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop":
	case "ping":
		if e.withholding() {
			return e.keepAlive(w)
		}
		return nil // nothing for pings otherwise: a Gemini client takes only data frames
	default:
		return nil // error (the proxy calls Fail), future events
	}
	var ev streamEvent
	if name != "message_stop" {
		if err := json.Unmarshal(data, &ev); err != nil {
			return fmt.Errorf("decode %s event: %w", name, err)
		}
	}
	switch name {
	case "message_start":
		if m := ev.Message; m != nil {
			e.id = m.ID
			e.applyUsage(m.Usage)
		}
	case "content_block_start":
		return e.start(w, ev)
	case "content_block_delta":
		return e.delta(w, ev)
	case "content_block_stop":
		return e.stopBlock(w, ev.Index)
	case "message_delta":
		if d := ev.Delta; d != nil && d.StopReason != "" {
			e.stop = d.StopReason
		}
		e.applyUsage(ev.Usage)
	case "message_stop":
		return e.finish(w)
	}
	return nil
}

func (e *Encoder) block(i int) *block {
	if i < 0 || i > 1<<16 {
		return nil
	}
	for len(e.blocks) <= i {
		e.blocks = append(e.blocks, block{})
	}
	return &e.blocks[i]
}

func (e *Encoder) start(w io.Writer, ev streamEvent) error {
	b := e.block(ev.Index)
	cb := ev.ContentBlock
	if b == nil || cb == nil {
		return fmt.Errorf("content_block_start %d without a content block", ev.Index)
	}
	*b = block{typ: cb.Type, valid: true, id: cb.ID, name: cb.Name, sig: cb.Signature, data: cb.Data}
	switch cb.Type {
	case "text":
		return e.text(w, cb.Text)
	case "thinking":
		b.text.WriteString(cb.Thinking)
		return e.thoughtText(w, cb.Thinking)
	}
	return nil
}

func (e *Encoder) delta(w io.Writer, ev streamEvent) error {
	b := e.block(ev.Index)
	d := ev.Delta
	if b == nil || !b.valid || d == nil {
		return fmt.Errorf("content_block_delta for unknown block %d", ev.Index)
	}
	switch d.Type {
	case "text_delta":
		return e.text(w, d.Text)
	case "thinking_delta":
		b.text.WriteString(d.Thinking)
		if e.info.IncludeThoughts {
			return e.thoughtText(w, d.Thinking)
		}
		return e.withhold(w, len(d.Thinking))
	case "signature_delta":
		b.sig += d.Signature
	case "input_json_delta":
		// A functionCall carries whole args: join the fragments, send them
		// at the block's stop.
		b.text.WriteString(d.PartialJSON)
		return e.withhold(w, len(d.PartialJSON))
	}
	return nil
}

// withhold counts n bytes the client does not see yet, and sends a
// keep-alive chunk when enough have passed unseen.
func (e *Encoder) withhold(w io.Writer, n int) error {
	e.hidden += n
	if e.hidden < keepAliveBytes {
		return nil
	}
	return e.keepAlive(w)
}

// withholding reports whether a block the client cannot see yet is open.
func (e *Encoder) withholding() bool {
	for i := range e.blocks {
		b := &e.blocks[i]
		if b.valid && (b.typ == "tool_use" || b.typ == "thinking" && !e.info.IncludeThoughts) {
			return true
		}
	}
	return false
}

// keepAlive writes a chunk with one empty text part. It never carries the
// pending thinking: clients drop empty parts from their history.
func (e *Encoder) keepAlive(w io.Writer) error {
	e.buf = append(e.chunkStart(), `{"text":""}`...)
	return e.chunkEnd(w)
}

func (e *Encoder) stopBlock(w io.Writer, i int) error {
	b := e.block(i)
	if b == nil || !b.valid {
		return fmt.Errorf("content_block_stop for unknown block %d", i)
	}
	b.valid = false
	switch b.typ {
	case "thinking":
		if b.sig != "" { // unsigned thinking cannot go back upstream: dropped
			e.pending = append(e.pending, carried{Type: "thinking", Thinking: b.text.String(), Signature: b.sig})
		}
	case "redacted_thinking":
		if b.data != "" {
			e.pending = append(e.pending, carried{Type: "redacted_thinking", Data: b.data})
		}
	case "tool_use":
		e.buf = e.appendCall(e.chunkStart(), b.id, b.name, b.text.Bytes())
		b.text.Reset()
		return e.chunkEnd(w)
	}
	b.text.Reset()
	return nil
}

// text writes a text part, with the pending thinking attached.
func (e *Encoder) text(w io.Writer, s string) error {
	if s == "" {
		return nil
	}
	buf := e.chunkStart()
	buf = append(buf, `{"text":`...)
	buf = appendString(buf, s)
	buf = e.appendSignature(buf)
	buf = append(buf, '}')
	e.buf = buf
	return e.chunkEnd(w)
}

// thoughtText writes a thought part, if the client asked for thoughts.
func (e *Encoder) thoughtText(w io.Writer, s string) error {
	if s == "" || !e.info.IncludeThoughts {
		return nil
	}
	buf := e.chunkStart()
	buf = append(buf, `{"text":`...)
	buf = appendString(buf, s)
	buf = append(buf, `,"thought":true}`...)
	e.buf = buf
	return e.chunkEnd(w)
}

// appendSignature adds, to the part object being written (still open), the
// thoughtSignature member that carries the pending thinking, if any.
func (e *Encoder) appendSignature(buf []byte) []byte {
	if len(e.pending) == 0 {
		return buf
	}
	buf = append(buf, `,"thoughtSignature":"`...)
	buf = append(buf, encodeCarrier(e.pending)...)
	e.pending = e.pending[:0]
	return append(buf, '"')
}

// appendCall writes a functionCall part with its id and the client's name.
func (e *Encoder) appendCall(buf []byte, id, name string, input []byte) []byte {
	buf = append(buf, `{"functionCall":{"id":`...)
	buf = appendString(buf, id)
	buf = append(buf, `,"name":`...)
	buf = appendString(buf, e.info.clientName(name))
	buf = append(buf, `,"args":`...)
	buf = appendArgs(buf, input)
	buf = append(buf, '}')
	buf = e.appendSignature(buf)
	return append(buf, '}')
}

// appendArgs writes a tool input as a compact JSON object; anything that is
// not one becomes {}, since Gemini's args is always an object (no arguments
// at all is {} too).
func appendArgs(buf, input []byte) []byte {
	input = bytes.TrimSpace(input)
	if len(input) == 0 || input[0] != '{' {
		return append(buf, "{}"...)
	}
	out := bytes.NewBuffer(buf)
	if err := json.Compact(out, input); err != nil {
		return append(buf, "{}"...)
	}
	return out.Bytes()
}

// chunkStart begins a chunk that carries parts; the parts follow.
func (e *Encoder) chunkStart() []byte {
	buf := e.frameStart(e.buf[:0])
	return append(buf, `{"candidates":[{"content":{"role":"model","parts":[`...)
}

// chunkEnd closes a chunk begun with chunkStart and writes it.
func (e *Encoder) chunkEnd(w io.Writer) error {
	buf := append(e.buf, `]},"index":0}]`...)
	buf = e.appendTail(buf)
	buf = e.frameEnd(buf)
	e.buf = buf
	e.hidden = 0
	_, err := w.Write(buf)
	return err
}

// appendTail adds modelVersion and responseId and closes the response.
func (e *Encoder) appendTail(buf []byte) []byte {
	buf = append(buf, `,"modelVersion":`...)
	buf = appendString(buf, e.info.Model)
	if e.id != "" {
		buf = append(buf, `,"responseId":`...)
		buf = appendString(buf, e.id)
	}
	return append(buf, '}')
}

func (e *Encoder) frameStart(buf []byte) []byte {
	switch {
	case !e.info.JSONArray:
		buf = append(buf, "data: "...)
	case !e.started:
		buf = append(buf, '[')
	default:
		buf = append(buf, ",\r\n"...)
	}
	e.started = true
	return buf
}

func (e *Encoder) frameEnd(buf []byte) []byte {
	switch {
	case !e.info.JSONArray:
		return append(buf, "\r\n\r\n"...)
	case e.ended:
		return append(buf, ']')
	}
	return buf
}

// finish writes the last chunk: finishReason and usageMetadata. Its content
// is one empty text part, so that go-genai's chat history treats the chunk
// as empty rather than as an invalid answer.
func (e *Encoder) finish(w io.Writer) error {
	e.ended = true
	buf := e.frameStart(e.buf[:0])
	buf = append(buf, `{"candidates":[{"content":{"role":"model","parts":[{"text":""}]},"finishReason":"`...)
	buf = append(buf, FinishReason(e.stop)...)
	buf = append(buf, `","index":0}],"usageMetadata":`...)
	buf = appendUsage(buf, e.tokens, e.thought)
	buf = e.appendTail(buf)
	buf = e.frameEnd(buf)
	e.buf = buf
	_, err := w.Write(buf)
	return err
}

// Fail ends the stream with a Google error object, never a normal finish,
// when the upstream sent an error event, broke off or ended without
// message_stop: with alt=sse a "data: {"error":{…}}" frame, which go-genai's
// stream iterator yields as an APIError; in a JSON array, a last element.
func (e *Encoder) Fail(w io.Writer, errType, message string) error {
	if e.ended {
		return nil
	}
	e.ended = true
	_, body := ErrorBody(anthropic.ErrorStatus(errType), errType, message)
	buf := e.frameStart(e.buf[:0])
	buf = append(buf, body...)
	buf = e.frameEnd(buf)
	e.buf = buf
	_, err := w.Write(buf)
	return err
}

// FinishReason maps an Anthropic stop_reason to Gemini's finishReason.
// Gemini reports STOP when it returns function calls, so tool_use is STOP;
// a refusal is SAFETY, Gemini's reason for a blocked answer.
func FinishReason(stop string) string {
	switch stop {
	case "", "end_turn", "stop_sequence", "tool_use", "pause_turn":
		return "STOP"
	case "max_tokens", "model_context_window_exceeded":
		return "MAX_TOKENS"
	case "refusal", "sensitive":
		return "SAFETY"
	}
	return "OTHER"
}

// appendUsage writes usageMetadata. Gemini's prompt count includes cached
// tokens, read and written (Anthropic's input_tokens does not);
// cachedContentTokenCount is the cache read;
// thoughts are counted apart from the candidates when the upstream says how
// many there were.
func appendUsage(buf []byte, t llmgw.Tokens, thoughts int64) []byte {
	prompt := t.Input + t.CacheRead + t.CacheWrite
	candidates := t.Output
	if thoughts > 0 && thoughts <= t.Output {
		candidates -= thoughts
	} else {
		thoughts = 0
	}
	buf = append(buf, `{"promptTokenCount":`...)
	buf = strconv.AppendInt(buf, prompt, 10)
	buf = append(buf, `,"candidatesTokenCount":`...)
	buf = strconv.AppendInt(buf, candidates, 10)
	if t.CacheRead > 0 {
		buf = append(buf, `,"cachedContentTokenCount":`...)
		buf = strconv.AppendInt(buf, t.CacheRead, 10)
	}
	if thoughts > 0 {
		buf = append(buf, `,"thoughtsTokenCount":`...)
		buf = strconv.AppendInt(buf, thoughts, 10)
	}
	buf = append(buf, `,"totalTokenCount":`...)
	buf = strconv.AppendInt(buf, prompt+t.Output, 10)
	return append(buf, '}')
}

// Result builds the non-streaming GenerateContentResponse from a whole
// upstream answer.
func Result(acc *anthropic.Accumulator, info Info) ([]byte, error) {
	if acc == nil {
		return nil, fmt.Errorf("no upstream answer")
	}
	e := &Encoder{info: info, id: acc.Response.ID}
	buf := []byte(`{"candidates":[{"content":{"role":"model","parts":[`)
	n := 0
	part := func() {
		if n > 0 {
			buf = append(buf, ',')
		}
		n++
	}
	for _, b := range acc.Response.Content {
		switch b.Type {
		case "thinking":
			if info.IncludeThoughts && b.Thinking != "" {
				part()
				buf = append(buf, `{"text":`...)
				buf = appendString(buf, b.Thinking)
				buf = append(buf, `,"thought":true}`...)
			}
			if b.Signature != "" {
				e.pending = append(e.pending, carried{Type: "thinking", Thinking: b.Thinking, Signature: b.Signature})
			}
		case "redacted_thinking":
			if b.Data != "" {
				e.pending = append(e.pending, carried{Type: "redacted_thinking", Data: b.Data})
			}
		case "text":
			if b.Text == "" {
				continue
			}
			part()
			buf = append(buf, `{"text":`...)
			buf = appendString(buf, b.Text)
			buf = e.appendSignature(buf)
			buf = append(buf, '}')
		case "tool_use":
			part()
			buf = e.appendCall(buf, b.ID, b.Name, b.Input)
		}
	}
	if n == 0 {
		buf = append(buf, `{"text":""}`...)
	}
	buf = append(buf, `]},"finishReason":"`...)
	buf = append(buf, FinishReason(acc.Response.StopReason)...)
	buf = append(buf, `","index":0}],"usageMetadata":`...)
	buf = appendUsage(buf, acc.Tally.Tokens, acc.Tally.Thinking)
	buf = e.appendTail(buf)
	return buf, nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Unlike encoding/json it leaves
// <, > and & alone; invalid UTF-8 becomes U+FFFD, and U+2028/U+2029 are
// escaped so the output is also valid JavaScript.
func appendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

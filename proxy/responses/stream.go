package responses

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
)

// keepAlive is written for an upstream ping: an SSE comment, which every
// Responses client ignores but which keeps idle timeouts (Codex's, load
// balancers') from firing during long thinking.
const keepAlive = ": keep-alive\n\n"

// Encoder turns an Anthropic event stream into the Responses event
// sequence: response.created and response.in_progress, then per output item
// output_item.added, its content events and output_item.done, and finally
// exactly one terminal event, response.completed, response.incomplete or
// response.failed, after every output_item.done. Every event carries a
// sequence_number counting from 0.
//
// An Encoder serves one stream and is not safe for concurrent use. It keeps
// the items it has finished, because the terminal event repeats them; it
// never keeps upstream frames.
//
// Event and Fail report only events they cannot translate. Errors writing to
// w are not returned: the writer's owner sees them (the proxy's writer
// records the first one and stops the stream).
type Encoder struct {
	info       Info
	seq        int
	started    bool
	done       bool
	x          ids
	resp       responseObject
	items      int               // output items added so far
	output     []json.RawMessage // finished items, in output order
	open       map[int]*openItem // by upstream block index
	text       *openItem         // the open text run, which may span blocks
	stopReason string
	tokens     llmgw.Tokens
	gotUsage   bool  // the upstream reported usage
	reasoning  int64 // thinking tokens, when the upstream reports them
	frame      bytes.Buffer
	enc        *json.Encoder
}

type itemKind int

const (
	kindText itemKind = iota
	kindReasoning
	kindFunction
	kindCustom
)

// openItem is an output item being streamed.
type openItem struct {
	kind      itemKind
	index     int // output_index
	id        string
	buf       strings.Builder // text, thinking, arguments or custom input so far
	name      string          // client tool name
	namespace string
	callID    string
	summary   bool // the reasoning summary part was opened
	signature string
	redacted  string // redacted_thinking data
	isRedact  bool
}

// NewEncoder returns an Encoder for the request info describes.
func NewEncoder(info Info) *Encoder {
	e := &Encoder{info: info, open: make(map[int]*openItem)}
	e.enc = json.NewEncoder(&e.frame)
	e.enc.SetEscapeHTML(false)
	return e
}

// Event stream types.

type head struct {
	Type           string `json:"type"`
	SequenceNumber int    `json:"sequence_number"`
}

func (h head) kind() string { return h.Type }

type event interface{ kind() string }

type responseEvent struct {
	head
	Response *responseObject `json:"response"`
}

type itemEvent struct {
	head
	OutputIndex int `json:"output_index"`
	Item        any `json:"item"`
}

type contentPartEvent struct {
	head
	ItemID       string     `json:"item_id"`
	OutputIndex  int        `json:"output_index"`
	ContentIndex int        `json:"content_index"`
	Part         outputText `json:"part"`
}

type textDeltaEvent struct {
	head
	ItemID       string     `json:"item_id"`
	OutputIndex  int        `json:"output_index"`
	ContentIndex int        `json:"content_index"`
	Delta        string     `json:"delta"`
	Logprobs     []struct{} `json:"logprobs"`
}

type textDoneEvent struct {
	head
	ItemID       string     `json:"item_id"`
	OutputIndex  int        `json:"output_index"`
	ContentIndex int        `json:"content_index"`
	Text         string     `json:"text"`
	Logprobs     []struct{} `json:"logprobs"`
}

type deltaEvent struct {
	head
	ItemID      string `json:"item_id"`
	OutputIndex int    `json:"output_index"`
	Delta       string `json:"delta"`
}

type argsDoneEvent struct {
	head
	ItemID      string `json:"item_id"`
	OutputIndex int    `json:"output_index"`
	Name        string `json:"name"`
	Arguments   string `json:"arguments"`
}

type customDoneEvent struct {
	head
	ItemID      string `json:"item_id"`
	OutputIndex int    `json:"output_index"`
	Input       string `json:"input"`
}

type summaryPartEvent struct {
	head
	ItemID       string      `json:"item_id"`
	OutputIndex  int         `json:"output_index"`
	SummaryIndex int         `json:"summary_index"`
	Part         summaryText `json:"part"`
}

type summaryDeltaEvent struct {
	head
	ItemID       string `json:"item_id"`
	OutputIndex  int    `json:"output_index"`
	SummaryIndex int    `json:"summary_index"`
	Delta        string `json:"delta"`
}

type summaryDoneEvent struct {
	head
	ItemID       string `json:"item_id"`
	OutputIndex  int    `json:"output_index"`
	SummaryIndex int    `json:"summary_index"`
	Text         string `json:"text"`
}

// next returns the head of the next event.
func (e *Encoder) next(typ string) head {
	h := head{Type: typ, SequenceNumber: e.seq}
	e.seq++
	return h
}

// send writes one frame: event: <type>, data: <json>, blank line.
func (e *Encoder) send(w io.Writer, ev event) error {
	e.frame.Reset()
	e.frame.WriteString("event: ")
	e.frame.WriteString(ev.kind())
	e.frame.WriteString("\ndata: ")
	if err := e.enc.Encode(ev); err != nil { // ends with '\n'
		return fmt.Errorf("encode %s event: %w", ev.kind(), err)
	}
	e.frame.WriteByte('\n')
	_, _ = w.Write(e.frame.Bytes()) // see the Encoder doc: the writer's owner handles write errors
	return nil
}

// Upstream event payloads.

type wireUsage struct {
	anthropic.Usage
	OutputTokensDetails *struct {
		ThinkingTokens *int64 `json:"thinking_tokens"`
	} `json:"output_tokens_details"`
}

func (e *Encoder) applyUsage(u *wireUsage) {
	if u == nil {
		return
	}
	u.ApplyTo(&e.tokens)
	e.gotUsage = true
	if d := u.OutputTokensDetails; d != nil && d.ThinkingTokens != nil {
		e.reasoning = *d.ThinkingTokens
	}
}

type wireMessageEvent struct {
	Message *struct {
		ID    string     `json:"id"`
		Usage *wireUsage `json:"usage"`
	} `json:"message"`
	Delta *struct {
		StopReason string `json:"stop_reason"`
	} `json:"delta"`
	Usage *wireUsage             `json:"usage"`
	Error *anthropic.ErrorDetail `json:"error"`
}

// Event translates one upstream event, writing zero or more frames to w.
// ping becomes an SSE comment; events after the terminal one are ignored.
func (e *Encoder) Event(w io.Writer, name string, data []byte) error {
	if e.done {
		return nil
	}
	switch name {
	case "", "ping":
		_, _ = io.WriteString(w, keepAlive)
		return nil
	case "message_start", "message_delta", "error":
		var ev wireMessageEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			return fmt.Errorf("decode %s event: %w", name, err)
		}
		switch name {
		case "message_start":
			if ev.Message == nil {
				return fmt.Errorf("message_start without a message")
			}
			if !e.started {
				if err := e.start(w, ev.Message.ID); err != nil {
					return err
				}
			}
			e.applyUsage(ev.Message.Usage)
		case "message_delta":
			if ev.Delta != nil && ev.Delta.StopReason != "" {
				e.stopReason = ev.Delta.StopReason
			}
			e.applyUsage(ev.Usage)
		case "error":
			d := anthropic.ErrorDetail{Type: "api_error", Message: "the upstream stream failed"}
			if ev.Error != nil {
				d = *ev.Error
			}
			return e.Fail(w, d.Type, d.Message)
		}
		return nil
	case "content_block_start", "content_block_delta", "content_block_stop":
		var ev anthropic.BlockEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			return fmt.Errorf("decode %s event: %w", name, err)
		}
		if !e.started {
			if err := e.start(w, ""); err != nil {
				return err
			}
		}
		switch name {
		case "content_block_start":
			if ev.ContentBlock == nil {
				return fmt.Errorf("content_block_start %d without a content block", ev.Index)
			}
			return e.blockStart(w, ev.Index, ev.ContentBlock)
		case "content_block_delta":
			if ev.Delta == nil {
				return fmt.Errorf("content_block_delta %d without a delta", ev.Index)
			}
			return e.blockDelta(w, ev.Index, ev.Delta)
		default:
			return e.blockStop(w, ev.Index)
		}
	case "message_stop":
		return e.finish(w)
	}
	return nil // an event type newer than this code
}

// start sends response.created and response.in_progress.
func (e *Encoder) start(w io.Writer, messageID string) error {
	e.started = true
	e.x = newIDs(messageID)
	e.resp = newResponse(e.x.response(), &e.info)
	if err := e.send(w, &responseEvent{e.next("response.created"), &e.resp}); err != nil {
		return err
	}
	return e.send(w, &responseEvent{e.next("response.in_progress"), &e.resp})
}

func (e *Encoder) add(w io.Writer, it *openItem, item any) error {
	return e.send(w, &itemEvent{e.next("response.output_item.added"), it.index, item})
}

func (e *Encoder) newItem(kind itemKind, prefix string) *openItem {
	it := &openItem{kind: kind, index: e.items}
	it.id = e.x.item(prefix, it.index)
	e.items++
	return it
}

func (e *Encoder) blockStart(w io.Writer, index int, cb *anthropic.ContentBlock) error {
	if cb.Type != "text" {
		if err := e.closeText(w); err != nil {
			return err
		}
	}
	switch cb.Type {
	case "text":
		if e.text == nil {
			it := e.newItem(kindText, "msg")
			e.text = it
			if err := e.add(w, it, &messageItem{ID: it.id, Type: "message", Status: "in_progress", Role: "assistant", Content: []outputText{}}); err != nil {
				return err
			}
			if err := e.send(w, &contentPartEvent{e.next("response.content_part.added"), it.id, it.index, 0, newOutputText("")}); err != nil {
				return err
			}
		}
		e.open[index] = e.text
		if cb.Text != "" {
			return e.blockDelta(w, index, &anthropic.StreamDelta{Type: "text_delta", Text: cb.Text})
		}
	case "thinking", "redacted_thinking":
		it := e.newItem(kindReasoning, "rs")
		it.isRedact, it.redacted, it.signature = cb.Type == "redacted_thinking", cb.Data, cb.Signature
		e.open[index] = it
		if err := e.add(w, it, &reasoningItem{ID: it.id, Type: "reasoning", Summary: []summaryText{}}); err != nil {
			return err
		}
		if cb.Thinking != "" {
			return e.blockDelta(w, index, &anthropic.StreamDelta{Type: "thinking_delta", Thinking: cb.Thinking})
		}
	case "tool_use":
		t := e.info.clientTool(cb.Name)
		if t.Custom {
			it := e.newItem(kindCustom, "ctc")
			it.name, it.namespace, it.callID = t.Name, t.Namespace, cb.ID
			e.open[index] = it
			return e.add(w, it, &customToolCallItem{ID: it.id, Type: "custom_tool_call", Status: "in_progress",
				CallID: cb.ID, Name: t.Name, Namespace: t.Namespace})
		}
		it := e.newItem(kindFunction, "fc")
		it.name, it.namespace, it.callID = t.Name, t.Namespace, cb.ID
		e.open[index] = it
		return e.add(w, it, &functionCallItem{ID: it.id, Type: "function_call", Status: "in_progress",
			CallID: cb.ID, Name: t.Name, Namespace: t.Namespace})
	}
	// Server tool blocks (server_tool_use, web_search_tool_result…) have no
	// Responses form for a client that declared no hosted tools: skipped,
	// their deltas with them.
	return nil
}

func (e *Encoder) blockDelta(w io.Writer, index int, d *anthropic.StreamDelta) error {
	it := e.open[index]
	if it == nil {
		return nil
	}
	switch {
	case d.Type == "text_delta" && it.kind == kindText:
		if d.Text == "" {
			return nil
		}
		it.buf.WriteString(d.Text)
		return e.send(w, &textDeltaEvent{e.next("response.output_text.delta"), it.id, it.index, 0, d.Text, none})
	case d.Type == "thinking_delta" && it.kind == kindReasoning:
		if d.Thinking == "" {
			return nil
		}
		if !it.summary {
			it.summary = true
			if err := e.send(w, &summaryPartEvent{e.next("response.reasoning_summary_part.added"), it.id, it.index, 0,
				summaryText{Type: "summary_text"}}); err != nil {
				return err
			}
		}
		it.buf.WriteString(d.Thinking)
		return e.send(w, &summaryDeltaEvent{e.next("response.reasoning_summary_text.delta"), it.id, it.index, 0, d.Thinking})
	case d.Type == "signature_delta" && it.kind == kindReasoning:
		it.signature += d.Signature
	case d.Type == "input_json_delta" && (it.kind == kindFunction || it.kind == kindCustom):
		if d.PartialJSON == "" {
			return nil // the first fragment is often empty: no empty delta
		}
		it.buf.WriteString(d.PartialJSON)
		if it.kind == kindFunction {
			return e.send(w, &deltaEvent{e.next("response.function_call_arguments.delta"), it.id, it.index, d.PartialJSON})
		}
		// A custom tool's raw input is inside a JSON wrapper: it is sent
		// unwrapped, whole, when the block ends.
	}
	return nil
}

func (e *Encoder) blockStop(w io.Writer, index int) error {
	it := e.open[index]
	if it == nil {
		return nil
	}
	delete(e.open, index)
	return e.closeItem(w, it)
}

// closeItem finishes a reasoning or tool item. A text run stays open: the
// next block may continue it.
func (e *Encoder) closeItem(w io.Writer, it *openItem) error {
	var item any
	switch it.kind {
	case kindText:
		return nil
	case kindReasoning:
		text := it.buf.String()
		if it.summary {
			if err := e.send(w, &summaryDoneEvent{e.next("response.reasoning_summary_text.done"), it.id, it.index, 0, text}); err != nil {
				return err
			}
			if err := e.send(w, &summaryPartEvent{e.next("response.reasoning_summary_part.done"), it.id, it.index, 0,
				summaryText{Type: "summary_text", Text: text}}); err != nil {
				return err
			}
		}
		b := anthropic.ContentBlock{Type: "thinking", Thinking: text, Signature: it.signature}
		if it.isRedact {
			b = anthropic.ContentBlock{Type: "redacted_thinking", Data: it.redacted}
		}
		item = reasoningOf(it.id, b)
	case kindFunction:
		args := it.buf.String()
		if strings.TrimSpace(args) == "" {
			// A tool without arguments streams no fragment: send {} so
			// clients assembling deltas can parse them.
			args = "{}"
			if err := e.send(w, &deltaEvent{e.next("response.function_call_arguments.delta"), it.id, it.index, args}); err != nil {
				return err
			}
		}
		if err := e.send(w, &argsDoneEvent{e.next("response.function_call_arguments.done"), it.id, it.index, it.name, args}); err != nil {
			return err
		}
		item = &functionCallItem{ID: it.id, Type: "function_call", Status: "completed", Arguments: args,
			CallID: it.callID, Name: it.name, Namespace: it.namespace}
	case kindCustom:
		input := unwrapCustom([]byte(it.buf.String()))
		if input != "" {
			if err := e.send(w, &deltaEvent{e.next("response.custom_tool_call_input.delta"), it.id, it.index, input}); err != nil {
				return err
			}
		}
		if err := e.send(w, &customDoneEvent{e.next("response.custom_tool_call_input.done"), it.id, it.index, input}); err != nil {
			return err
		}
		item = &customToolCallItem{ID: it.id, Type: "custom_tool_call", Status: "completed",
			CallID: it.callID, Name: it.name, Input: input, Namespace: it.namespace}
	}
	return e.itemDone(w, it.index, item)
}

// itemDone sends output_item.done and keeps the item for the terminal event.
func (e *Encoder) itemDone(w io.Writer, index int, item any) error {
	raw, err := marshal(item)
	if err != nil {
		return fmt.Errorf("encode output item: %w", err)
	}
	e.output = append(e.output, raw)
	return e.send(w, &itemEvent{e.next("response.output_item.done"), index, json.RawMessage(raw)})
}

// closeText finishes the open text run, if any.
func (e *Encoder) closeText(w io.Writer) error {
	it := e.text
	if it == nil {
		return nil
	}
	e.text = nil
	for k, v := range e.open {
		if v == it {
			delete(e.open, k)
		}
	}
	text := it.buf.String()
	if err := e.send(w, &textDoneEvent{e.next("response.output_text.done"), it.id, it.index, 0, text, none}); err != nil {
		return err
	}
	if err := e.send(w, &contentPartEvent{e.next("response.content_part.done"), it.id, it.index, 0, newOutputText(text)}); err != nil {
		return err
	}
	return e.itemDone(w, it.index, &messageItem{ID: it.id, Type: "message", Status: "completed", Role: "assistant",
		Content: []outputText{newOutputText(text)}})
}

// finish ends a complete stream: every open item is closed, then the one
// terminal event.
func (e *Encoder) finish(w io.Writer) error {
	if !e.started {
		if err := e.start(w, ""); err != nil {
			return err
		}
	}
	if err := e.closeText(w); err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(e.open)) {
		it := e.open[k]
		delete(e.open, k)
		if err := e.closeItem(w, it); err != nil {
			return err
		}
	}
	e.done = true
	resp := e.resp
	resp.Output = e.output
	if resp.Output == nil {
		resp.Output = []json.RawMessage{}
	}
	resp.finish(e.stopReason)
	resp.Usage = newUsage(e.tokens, e.reasoning)
	typ := "response.completed"
	if resp.Status == "incomplete" {
		typ = "response.incomplete"
	}
	return e.send(w, &responseEvent{e.next(typ), &resp})
}

// Fail ends the stream with response.failed: the upstream sent an error
// event, broke off, or ended without message_stop. Items still
// open are not finished (a half-streamed tool call must not run); the
// failed response lists the finished ones. A context overflow gets the code
// context_length_exceeded. Fail after the terminal event does nothing.
func (e *Encoder) Fail(w io.Writer, errType, message string) error {
	if e.done {
		return nil
	}
	if !e.started {
		if err := e.start(w, ""); err != nil {
			return err
		}
	}
	e.done = true
	resp := e.resp
	resp.Status = "failed"
	resp.Error = &responseError{Code: failureCode(errType, message), Message: message}
	resp.Output = e.output
	if resp.Output == nil {
		resp.Output = []json.RawMessage{}
	}
	if e.gotUsage {
		resp.Usage = newUsage(e.tokens, e.reasoning)
	}
	return e.send(w, &responseEvent{e.next("response.failed"), &resp})
}

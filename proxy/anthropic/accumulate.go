package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Response is a complete Messages response, as a non-streaming call returns
// it or as Accumulator rebuilds it from a stream.
type Response struct {
	ID           string         `json:"id"`
	Type         string         `json:"type"`
	Role         string         `json:"role"`
	Model        string         `json:"model"`
	Content      []ContentBlock `json:"content"`
	StopReason   string         `json:"stop_reason"`
	StopSequence *string        `json:"stop_sequence"`
	Usage        Usage          `json:"usage"`
}

// Accumulator rebuilds a Response from stream events, the way the SDK's
// Message.Accumulate does: text, thinking and signature deltas append,
// input_json_delta fragments are joined and parsed at content_block_stop
// (an empty input becomes {}), usage follows Tally's last-value-wins rule.
// It is not safe for concurrent use.
type Accumulator struct {
	Response Response
	Tally    Tally
	// open holds the deltas of each block not yet stopped, by index. They
	// are joined once, at content_block_stop (or message_stop for a block
	// never stopped): appending each delta to the block's string would copy
	// the whole text at every delta, quadratic in a long answer.
	open map[int]*openBlock
}

// openBlock is the text of one block's deltas so far.
type openBlock struct {
	text, thinking, signature strings.Builder
	input                     bytes.Buffer // input_json_delta fragments
}

// StreamDelta is a content_block_delta event's delta.
type StreamDelta struct {
	Type        string          `json:"type"`
	Text        string          `json:"text"`
	PartialJSON string          `json:"partial_json"`
	Thinking    string          `json:"thinking"`
	Signature   string          `json:"signature"`
	Citation    json.RawMessage `json:"citation"`
	// message_delta
	StopReason   string  `json:"stop_reason"`
	StopSequence *string `json:"stop_sequence"`
}

// BlockEvent is a content_block_* or message_delta event.
type BlockEvent struct {
	Type         string        `json:"type"`
	Index        int           `json:"index"`
	ContentBlock *ContentBlock `json:"content_block"`
	Delta        *StreamDelta  `json:"delta"`
	Message      *Response     `json:"message"`
}

// Add reads one event. Unknown events are ignored.
func (a *Accumulator) Add(name string, data []byte) error {
	a.Tally.Observe(name, data)
	switch name {
	case "message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta":
	case "message_stop":
		// A block the upstream never stopped keeps what it got.
		for i := range a.open {
			if err := a.close(i); err != nil {
				return err
			}
		}
		return nil
	default:
		return nil
	}
	var ev BlockEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return fmt.Errorf("decode %s event: %w", name, err)
	}
	r := &a.Response
	switch name {
	case "message_start":
		if ev.Message != nil {
			r.ID, r.Type, r.Role, r.Model = ev.Message.ID, ev.Message.Type, ev.Message.Role, ev.Message.Model
		}
	case "content_block_start":
		if ev.ContentBlock == nil {
			return fmt.Errorf("content_block_start %d without a content block", ev.Index)
		}
		for len(r.Content) <= ev.Index {
			r.Content = append(r.Content, ContentBlock{})
		}
		b := *ev.ContentBlock
		if b.Type == "tool_use" || b.Type == "server_tool_use" {
			b.Input = nil // filled at content_block_stop from the fragments
		}
		r.Content[ev.Index] = b
	case "content_block_delta":
		if ev.Index >= len(r.Content) || ev.Delta == nil {
			return fmt.Errorf("content_block_delta for unknown block %d", ev.Index)
		}
		if a.open == nil {
			a.open = make(map[int]*openBlock)
		}
		o := a.open[ev.Index]
		if o == nil {
			o = new(openBlock)
			a.open[ev.Index] = o
		}
		switch ev.Delta.Type {
		case "text_delta":
			o.text.WriteString(ev.Delta.Text)
		case "thinking_delta":
			o.thinking.WriteString(ev.Delta.Thinking)
		case "signature_delta":
			o.signature.WriteString(ev.Delta.Signature)
		case "input_json_delta":
			o.input.WriteString(ev.Delta.PartialJSON)
		case "citations_delta":
			b := &r.Content[ev.Index]
			b.Citations = appendRaw(b.Citations, ev.Delta.Citation)
		}
	case "content_block_stop":
		if ev.Index >= len(r.Content) {
			return fmt.Errorf("content_block_stop for unknown block %d", ev.Index)
		}
		return a.close(ev.Index)
	case "message_delta":
		if ev.Delta != nil {
			if ev.Delta.StopReason != "" {
				r.StopReason = ev.Delta.StopReason
			}
			r.StopSequence = ev.Delta.StopSequence
		}
	}
	return nil
}

// Whole reads a whole (non-streaming) Messages answer into an Accumulator,
// as if its stream had been added event by event, so that a converted
// non-stream request can be answered from either kind of upstream answer.
func Whole(body []byte) (*Accumulator, error) {
	a := new(Accumulator)
	if err := json.Unmarshal(body, &a.Response); err != nil {
		return nil, fmt.Errorf("decode the answer: %w", err)
	}
	if a.Response.Type != "message" {
		return nil, fmt.Errorf("the answer is a %q, not a message", a.Response.Type)
	}
	a.Tally.MessageID = a.Response.ID
	a.Tally.apply(&a.Response.Usage)
	a.Tally.Stopped = true
	return a, nil
}

// close joins block i's deltas into it: text, thinking and signature
// append to what content_block_start gave; a tool's input fragments are
// parsed as one JSON value (nothing is {}).
func (a *Accumulator) close(i int) error {
	b := &a.Response.Content[i]
	o := a.open[i]
	delete(a.open, i)
	if o != nil {
		b.Text += o.text.String()
		b.Thinking += o.thinking.String()
		b.Signature += o.signature.String()
	}
	if b.Type != "tool_use" && b.Type != "server_tool_use" {
		return nil
	}
	var in []byte
	if o != nil {
		in = bytes.TrimSpace(o.input.Bytes())
	}
	if len(in) == 0 {
		in = []byte("{}")
	}
	if !json.Valid(in) {
		return fmt.Errorf("tool_use block %d: input is not valid JSON", i)
	}
	b.Input = json.RawMessage(bytes.Clone(in))
	return nil
}

// appendRaw appends one JSON value to a raw JSON array.
func appendRaw(arr, v json.RawMessage) json.RawMessage {
	if len(v) == 0 {
		return arr
	}
	if len(arr) == 0 {
		return json.RawMessage("[" + string(v) + "]")
	}
	return json.RawMessage(string(arr[:len(arr)-1]) + "," + string(v) + "]")
}

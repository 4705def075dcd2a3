package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
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
	partial  map[int]*bytes.Buffer // tool input fragments by block index
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
		b := &r.Content[ev.Index]
		switch ev.Delta.Type {
		case "text_delta":
			b.Text += ev.Delta.Text
		case "thinking_delta":
			b.Thinking += ev.Delta.Thinking
		case "signature_delta":
			b.Signature += ev.Delta.Signature
		case "input_json_delta":
			if a.partial == nil {
				a.partial = make(map[int]*bytes.Buffer)
			}
			buf := a.partial[ev.Index]
			if buf == nil {
				buf = new(bytes.Buffer)
				a.partial[ev.Index] = buf
			}
			buf.WriteString(ev.Delta.PartialJSON)
		case "citations_delta":
			b.Citations = appendRaw(b.Citations, ev.Delta.Citation)
		}
	case "content_block_stop":
		if ev.Index >= len(r.Content) {
			return fmt.Errorf("content_block_stop for unknown block %d", ev.Index)
		}
		b := &r.Content[ev.Index]
		if b.Type == "tool_use" || b.Type == "server_tool_use" {
			var in []byte
			if buf := a.partial[ev.Index]; buf != nil {
				in = bytes.TrimSpace(buf.Bytes())
			}
			if len(in) == 0 {
				in = []byte("{}")
			}
			if !json.Valid(in) {
				return fmt.Errorf("tool_use block %d: input is not valid JSON", ev.Index)
			}
			b.Input = json.RawMessage(bytes.Clone(in))
			delete(a.partial, ev.Index)
		}
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

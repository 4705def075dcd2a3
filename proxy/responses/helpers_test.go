package responses

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/sse"
)

// testTime is the Created time of every test Info, so outputs are stable.
var testTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// decode decodes body and fails the test on error.
func decode(t testing.TB, body string) (*anthropic.Request, Info) {
	t.Helper()
	req, info, err := Decode([]byte(body), DecodeOptions{})
	if err != nil {
		t.Fatalf("Decode: %v\nbody: %s", err, body)
	}
	info.Created = testTime
	return req, info
}

// decodeErr decodes body, which must fail with a RequestError.
func decodeErr(t testing.TB, body string) *RequestError {
	t.Helper()
	_, _, err := Decode([]byte(body), DecodeOptions{})
	var re *RequestError
	if !errors.As(err, &re) {
		t.Fatalf("Decode error = %v, want a *RequestError\nbody: %s", err, body)
	}
	return re
}

// translate runs upstream SSE through an Encoder the way the proxy does:
// every event to Event, an error event or an end without message_stop to
// Fail.
func translate(t testing.TB, info Info, upstream string) string {
	t.Helper()
	var out bytes.Buffer
	enc := NewEncoder(info)
	rd := sse.NewReader(strings.NewReader(upstream))
	stopped := false
	for {
		ev, err := rd.Next()
		if err != nil {
			if errors.Is(err, io.EOF) && stopped {
				break
			}
			if err := enc.Fail(&out, "api_error", "the upstream stream ended before the message was complete"); err != nil {
				t.Fatalf("Fail: %v", err)
			}
			break
		}
		if ev.Name == "error" {
			var e anthropic.ErrorBody
			if err := json.Unmarshal(ev.Data, &e); err != nil {
				t.Fatalf("bad error event in fixture: %v", err)
			}
			if err := enc.Fail(&out, e.Error.Type, e.Error.Message); err != nil {
				t.Fatalf("Fail: %v", err)
			}
			break
		}
		if err := enc.Event(&out, ev.Name, ev.Data); err != nil {
			t.Fatalf("Event(%s): %v", ev.Name, err)
		}
		if ev.Name == "message_stop" {
			stopped = true
			break
		}
	}
	return out.String()
}

// clientEvent is one event of a Responses stream, as a client reads it.
type clientEvent struct {
	Name string
	Data map[string]any
	Raw  string
}

// parseStream splits a Responses stream into events; comments are skipped.
func parseStream(t testing.TB, stream string) []clientEvent {
	t.Helper()
	var evs []clientEvent
	rd := sse.NewReader(strings.NewReader(stream))
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return evs
		}
		if err != nil {
			t.Fatalf("client stream: %v", err)
		}
		if ev.Name == "" && len(ev.Data) == 0 {
			continue // a keep-alive comment
		}
		var data map[string]any
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			t.Fatalf("event %s: data is not JSON: %v\n%s", ev.Name, err, ev.Data)
		}
		evs = append(evs, clientEvent{Name: ev.Name, Data: data, Raw: string(ev.Data)})
	}
}

func names(evs []clientEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Name
	}
	return out
}

var terminals = map[string]bool{"response.completed": true, "response.incomplete": true, "response.failed": true}

// checkSequence checks the invariants of every Responses stream: the type
// field matches the event name, sequence_number counts 0, 1, 2…, the stream
// opens with response.created and response.in_progress, ends with exactly
// one terminal event after every output_item.done, output indexes are
// added in order, and every item added is done before a successful end.
func checkSequence(t testing.TB, evs []clientEvent) (terminal clientEvent) {
	t.Helper()
	if len(evs) < 3 {
		t.Fatalf("stream has %d events, want at least created, in_progress and a terminal: %v", len(evs), names(evs))
	}
	if evs[0].Name != "response.created" || evs[1].Name != "response.in_progress" {
		t.Errorf("stream starts %v, want response.created, response.in_progress", names(evs[:2]))
	}
	added, done := map[float64]bool{}, map[float64]bool{}
	terminalCount := 0
	for i, ev := range evs {
		if got := ev.Data["type"]; got != ev.Name {
			t.Errorf("event %d: type %v, event name %s", i, got, ev.Name)
		}
		if got, ok := ev.Data["sequence_number"].(float64); !ok || int(got) != i {
			t.Errorf("event %d (%s): sequence_number %v, want %d", i, ev.Name, ev.Data["sequence_number"], i)
		}
		if terminalCount > 0 {
			t.Errorf("event %d (%s) after the terminal event", i, ev.Name)
		}
		switch ev.Name {
		case "response.output_item.added":
			idx := ev.Data["output_index"].(float64)
			if int(idx) != len(added) {
				t.Errorf("output_item.added index %v, want %d", idx, len(added))
			}
			added[idx] = true
		case "response.output_item.done":
			idx := ev.Data["output_index"].(float64)
			if !added[idx] || done[idx] {
				t.Errorf("output_item.done for index %v: added %v, done before %v", idx, added[idx], done[idx])
			}
			done[idx] = true
		}
		if terminals[ev.Name] {
			terminalCount++
			terminal = ev
		}
	}
	if terminalCount != 1 {
		t.Fatalf("%d terminal events, want exactly 1: %v", terminalCount, names(evs))
	}
	if last := evs[len(evs)-1]; !terminals[last.Name] {
		t.Errorf("last event %s is not terminal", last.Name)
	}
	if terminal.Name != "response.failed" && len(done) != len(added) {
		t.Errorf("%d items added, %d done", len(added), len(done))
	}
	resp, _ := terminal.Data["response"].(map[string]any)
	if out, _ := resp["output"].([]any); len(out) != len(done) {
		t.Errorf("terminal response has %d output items, %d were done", len(out), len(done))
	}
	return terminal
}

var (
	toolNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)
	toolIDRE   = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
)

// validate checks r against the rules the Anthropic API enforces, so a
// request that passes would not be refused for its shape.
func validate(r *anthropic.Request) error {
	if r.Model == "" {
		return errors.New("no model")
	}
	if r.MaxTokens < 1 {
		return fmt.Errorf("max_tokens %d", r.MaxTokens)
	}
	if c := anthropic.MaxTokensCap(r.Model); c > 0 && r.MaxTokens > c {
		return fmt.Errorf("max_tokens %d above the cap %d", r.MaxTokens, c)
	}
	for i, b := range r.System {
		if b.Type != "text" || strings.TrimSpace(b.Text) == "" {
			return fmt.Errorf("system[%d] is not non-empty text: %+v", i, b)
		}
	}
	names := map[string]bool{}
	for i, t := range r.Tools {
		if !toolNameRE.MatchString(t.Name) {
			return fmt.Errorf("tools[%d].name %q", i, t.Name)
		}
		if names[t.Name] {
			return fmt.Errorf("tools[%d].name %q declared twice", i, t.Name)
		}
		names[t.Name] = true
		var schema map[string]any
		if err := json.Unmarshal(t.InputSchema, &schema); err != nil || schema["type"] != "object" {
			return fmt.Errorf("tools[%d].input_schema is not an object schema: %s", i, t.InputSchema)
		}
		for _, k := range []string{"anyOf", "oneOf", "allOf"} {
			if _, ok := schema[k]; ok {
				return fmt.Errorf("tools[%d].input_schema has top-level %s", i, k)
			}
		}
	}
	if c := r.ToolChoice; c != nil {
		if len(r.Tools) == 0 {
			return errors.New("tool_choice without tools")
		}
		if c.Type == "tool" && !names[c.Name] {
			return fmt.Errorf("tool_choice names undeclared tool %q", c.Name)
		}
	}
	if len(r.Messages) == 0 || r.Messages[0].Role != "user" {
		return errors.New("the first message must be the user's")
	}
	for _, s := range r.StopSequences {
		if strings.TrimSpace(s) == "" {
			return fmt.Errorf("blank stop sequence %q", s)
		}
	}
	if th := r.Thinking; th != nil && th.Type == "enabled" {
		if th.BudgetTokens < anthropic.MinThinkingBudget || th.BudgetTokens >= r.MaxTokens {
			return fmt.Errorf("thinking budget %d with max_tokens %d", th.BudgetTokens, r.MaxTokens)
		}
		if r.Temperature != nil && *r.Temperature != 1 {
			return errors.New("temperature with thinking")
		}
		if r.TopP != nil && *r.TopP < 0.95 {
			return errors.New("low top_p with thinking")
		}
		if r.TopK != nil {
			return errors.New("top_k with thinking")
		}
		if c := r.ToolChoice; c != nil && (c.Type == "any" || c.Type == "tool") {
			return errors.New("forced tool use with thinking")
		}
	}
	if r.Temperature != nil && (*r.Temperature < 0 || *r.Temperature > 1) {
		return fmt.Errorf("temperature %g", *r.Temperature)
	}
	if r.Temperature != nil && r.TopP != nil {
		return errors.New("both temperature and top_p")
	}
	var pending []string // tool_use ids of the previous assistant turn
	for i, m := range r.Messages {
		if i > 0 && r.Messages[i-1].Role == m.Role {
			return fmt.Errorf("messages[%d]: two %s turns in a row", i, m.Role)
		}
		if len(m.Content) == 0 {
			return fmt.Errorf("messages[%d]: empty content", i)
		}
		if m.Role != "user" && m.Role != "assistant" {
			return fmt.Errorf("messages[%d]: role %q", i, m.Role)
		}
		var uses []string
		seenNonResult := false
		answered := map[string]bool{}
		for j, b := range m.Content {
			switch b.Type {
			case "text":
				if strings.TrimSpace(b.Text) == "" {
					return fmt.Errorf("messages[%d].content[%d]: empty text", i, j)
				}
			case "tool_use":
				if m.Role != "assistant" || !toolIDRE.MatchString(b.ID) || !toolNameRE.MatchString(b.Name) {
					return fmt.Errorf("messages[%d].content[%d]: bad tool_use %+v", i, j, b)
				}
				var in map[string]any
				if err := json.Unmarshal(b.Input, &in); err != nil || in == nil {
					return fmt.Errorf("messages[%d].content[%d]: tool_use input is not an object: %s", i, j, b.Input)
				}
				uses = append(uses, b.ID)
			case "tool_result":
				if m.Role != "user" || seenNonResult {
					return fmt.Errorf("messages[%d].content[%d]: tool_result not at the start of a user turn", i, j)
				}
				if answered[b.ToolUseID] {
					return fmt.Errorf("messages[%d]: %s answered twice", i, b.ToolUseID)
				}
				answered[b.ToolUseID] = true
				found := false
				for _, p := range pending {
					found = found || p == b.ToolUseID
				}
				if !found {
					return fmt.Errorf("messages[%d]: result for unknown tool_use %s", i, b.ToolUseID)
				}
			case "thinking":
				if m.Role != "assistant" || b.Signature == "" {
					return fmt.Errorf("messages[%d].content[%d]: unsigned or misplaced thinking", i, j)
				}
			case "redacted_thinking":
				if m.Role != "assistant" || b.Data == "" {
					return fmt.Errorf("messages[%d].content[%d]: bad redacted_thinking", i, j)
				}
			case "image", "document":
				if m.Role != "user" || b.Source == nil {
					return fmt.Errorf("messages[%d].content[%d]: bad %s", i, j, b.Type)
				}
			default:
				return fmt.Errorf("messages[%d].content[%d]: unexpected block %s", i, j, b.Type)
			}
			if b.Type != "tool_result" {
				seenNonResult = true
			}
		}
		if m.Role == "user" {
			for _, p := range pending {
				if !answered[p] {
					return fmt.Errorf("messages[%d]: tool_use %s has no result", i, p)
				}
			}
		}
		pending = uses
	}
	if len(pending) > 0 {
		return fmt.Errorf("the last assistant turn's tool calls have no results")
	}
	if last := r.Messages[len(r.Messages)-1]; last.Role != "user" {
		return errors.New("the conversation ends with an assistant turn (prefill)")
	}
	return nil
}

// mustValidate fails the test if r would be refused.
func mustValidate(t testing.TB, r *anthropic.Request) {
	t.Helper()
	if err := validate(r); err != nil {
		raw, _ := json.MarshalIndent(r, "", "  ")
		t.Fatalf("upstream request is invalid: %v\n%s", err, raw)
	}
}

// sseOf builds an upstream SSE transcript from event name/data pairs.
func sseOf(pairs ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(pairs); i += 2 {
		b.WriteString("event: " + pairs[i] + "\ndata: " + pairs[i+1] + "\n\n")
	}
	return b.String()
}

// upstream helpers: a message_start, blocks, and a message_delta + stop.
func msgStart(id string) []string {
	return []string{"message_start", `{"type":"message_start","message":{"id":"` + id + `","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"usage":{"input_tokens":10,"cache_read_input_tokens":0,"cache_creation_input_tokens":0,"output_tokens":1}}}`}
}

func textBlockEvents(index int, chunks ...string) []string {
	out := []string{"content_block_start", fmt.Sprintf(`{"type":"content_block_start","index":%d,"content_block":{"type":"text","text":""}}`, index)}
	for _, c := range chunks {
		d, _ := json.Marshal(c)
		out = append(out, "content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":%d,"delta":{"type":"text_delta","text":%s}}`, index, d))
	}
	return append(out, "content_block_stop", fmt.Sprintf(`{"type":"content_block_stop","index":%d}`, index))
}

func toolBlockEvents(index int, id, name string, fragments ...string) []string {
	out := []string{"content_block_start", fmt.Sprintf(`{"type":"content_block_start","index":%d,"content_block":{"type":"tool_use","id":%q,"name":%q,"input":{}}}`, index, id, name)}
	for _, f := range fragments {
		d, _ := json.Marshal(f)
		out = append(out, "content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":%d,"delta":{"type":"input_json_delta","partial_json":%s}}`, index, d))
	}
	return append(out, "content_block_stop", fmt.Sprintf(`{"type":"content_block_stop","index":%d}`, index))
}

func thinkingBlockEvents(index int, signature string, chunks ...string) []string {
	out := []string{"content_block_start", fmt.Sprintf(`{"type":"content_block_start","index":%d,"content_block":{"type":"thinking","thinking":"","signature":""}}`, index)}
	for _, c := range chunks {
		d, _ := json.Marshal(c)
		out = append(out, "content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":%d,"delta":{"type":"thinking_delta","thinking":%s}}`, index, d))
	}
	out = append(out, "content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":%d,"delta":{"type":"signature_delta","signature":%q}}`, index, signature))
	return append(out, "content_block_stop", fmt.Sprintf(`{"type":"content_block_stop","index":%d}`, index))
}

func msgStop(stopReason string, outputTokens int) []string {
	return []string{
		"message_delta", fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":%q,"stop_sequence":null},"usage":{"input_tokens":10,"cache_read_input_tokens":0,"cache_creation_input_tokens":0,"output_tokens":%d}}`, stopReason, outputTokens),
		"message_stop", `{"type":"message_stop"}`,
	}
}

func concat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// terminalResponse returns the response object of a stream's terminal event.
func terminalResponse(t testing.TB, stream string) map[string]any {
	t.Helper()
	term := checkSequence(t, parseStream(t, stream))
	resp, ok := term.Data["response"].(map[string]any)
	if !ok {
		t.Fatalf("terminal event without a response: %s", term.Raw)
	}
	return resp
}

// outputItems returns the output items of a response object.
func outputItems(resp map[string]any) []map[string]any {
	list, _ := resp["output"].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, it := range list {
		m, _ := it.(map[string]any)
		out = append(out, m)
	}
	return out
}

// feed adds every event of an upstream transcript to acc.
func feed(t testing.TB, acc *anthropic.Accumulator, upstream string) {
	t.Helper()
	rd := sse.NewReader(strings.NewReader(upstream))
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("upstream transcript: %v", err)
		}
		if err := acc.Add(ev.Name, ev.Data); err != nil {
			t.Fatalf("Accumulator.Add(%s): %v", ev.Name, err)
		}
	}
}

// loadFixture returns the contents of testdata/name.
func loadFixture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

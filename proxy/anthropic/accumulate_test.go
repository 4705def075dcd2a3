package anthropic

import (
	"encoding/json"
	"testing"
)

func TestAccumulator(t *testing.T) {
	events := []struct{ name, data string }{
		{"message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[],"usage":{"input_tokens":9,"output_tokens":1}}}`},
		{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"let me "}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"think"}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"sig+/=="}}`},
		{"content_block_stop", `{"type":"content_block_stop","index":0}`},
		{"ping", `{"type":"ping"}`},
		{"content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hi "}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"there"}}`},
		{"content_block_stop", `{"type":"content_block_stop","index":1}`},
		{"content_block_start", `{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_1","name":"f","input":{}}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"a\": [1,"}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":" 2]}"}}`},
		{"content_block_stop", `{"type":"content_block_stop","index":2}`},
		{"content_block_start", `{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_2","name":"g","input":{}}}`},
		{"content_block_stop", `{"type":"content_block_stop","index":3}`},
		{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":30}}`},
		{"message_stop", `{"type":"message_stop"}`},
	}
	var a Accumulator
	for _, ev := range events {
		if err := a.Add(ev.name, []byte(ev.data)); err != nil {
			t.Fatalf("%s: %v", ev.name, err)
		}
	}
	checkAnswer(t, &a)
}

// checkAnswer checks the answer TestAccumulator streams and TestWhole reads
// whole.
func checkAnswer(t *testing.T, a *Accumulator) {
	t.Helper()
	r := a.Response
	if r.ID != "msg_1" || r.Model != "claude-x" || r.StopReason != "tool_use" || len(r.Content) != 4 {
		t.Fatalf("response = %+v", r)
	}
	if c := r.Content[0]; c.Thinking != "let me think" || c.Signature != "sig+/==" {
		t.Errorf("thinking block = %+v", c)
	}
	if r.Content[1].Text != "Hi there" {
		t.Errorf("text = %q", r.Content[1].Text)
	}
	if string(r.Content[2].Input) != `{"a": [1, 2]}` || string(r.Content[3].Input) != `{}` {
		t.Errorf("tool inputs = %s, %s", r.Content[2].Input, r.Content[3].Input)
	}
	if a.Tally.Tokens.Input != 9 || a.Tally.Tokens.Output != 30 || !a.Tally.Stopped || a.Tally.MessageID != "msg_1" {
		t.Errorf("tally = %+v", a.Tally)
	}
}

// TestWhole reads the answer TestAccumulator streams, as a non-streaming
// call returns it: the encoders must get the same response and tally.
func TestWhole(t *testing.T) {
	body := `{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[` +
		`{"type":"thinking","thinking":"let me think","signature":"sig+/=="},{"type":"text","text":"Hi there"},` +
		`{"type":"tool_use","id":"toolu_1","name":"f","input":{"a": [1, 2]}},{"type":"tool_use","id":"toolu_2","name":"g","input":{}}],` +
		`"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":9,"output_tokens":30}}`
	a, err := Whole([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	checkAnswer(t, a)
	for _, bad := range []string{``, `{"type":"error","error":{"type":"api_error","message":"x"}}`, `[1]`} {
		if _, err := Whole([]byte(bad)); err == nil {
			t.Errorf("Whole(%q) took it", bad)
		}
	}
}

func TestAddCacheBreakpoints(t *testing.T) {
	text := func(s string) ContentBlock { return ContentBlock{Type: "text", Text: s} }
	r := Request{
		Tools:  []Tool{{Name: "a", InputSchema: json.RawMessage(`{"type":"object"}`)}, {Name: "b", InputSchema: json.RawMessage(`{"type":"object"}`)}},
		System: []ContentBlock{text("sys1"), text("sys2")},
		Messages: []Message{
			{Role: "user", Content: []ContentBlock{text("u1")}},
			{Role: "assistant", Content: []ContentBlock{text("a1")}},
			{Role: "user", Content: []ContentBlock{text("u2"), {Type: "thinking", Thinking: "x"}}},
		},
	}
	r.AddCacheBreakpoints()
	if r.Breakpoints() != 4 {
		t.Errorf("breakpoints = %d, want 4", r.Breakpoints())
	}
	if r.Tools[1].CacheControl == nil || r.System[1].CacheControl == nil ||
		r.Messages[0].Content[0].CacheControl == nil || r.Messages[2].Content[0].CacheControl == nil {
		t.Errorf("marks in the wrong places: %+v", r)
	}
	if r.Messages[2].Content[1].CacheControl != nil {
		t.Error("a thinking block was marked")
	}
	// Marks already there count toward the limit of four.
	r2 := Request{System: []ContentBlock{text("s")}, Messages: []Message{{Role: "user", Content: []ContentBlock{
		{Type: "text", Text: "1", CacheControl: &CacheControl{Type: "ephemeral"}},
		{Type: "text", Text: "2", CacheControl: &CacheControl{Type: "ephemeral"}},
		{Type: "text", Text: "3", CacheControl: &CacheControl{Type: "ephemeral"}},
		{Type: "text", Text: "4"},
	}}}}
	r2.AddCacheBreakpoints()
	if n := r2.Breakpoints(); n != 4 {
		t.Errorf("breakpoints = %d, want 4 (never more)", n)
	}
}

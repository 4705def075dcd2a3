package responses

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw/proxy/anthropic"
)

func TestEncoder_Sequences(t *testing.T) {
	tests := []struct {
		name     string
		upstream []string
		want     []string
	}{
		{
			name:     "text",
			upstream: concat(msgStart("msg_a"), textBlockEvents(0, "Hel", "lo"), msgStop("end_turn", 2)),
			want: []string{
				"response.created", "response.in_progress",
				"response.output_item.added", "response.content_part.added",
				"response.output_text.delta", "response.output_text.delta",
				"response.output_text.done", "response.content_part.done", "response.output_item.done",
				"response.completed",
			},
		},
		{
			name: "thinking, text and a function call",
			upstream: concat(msgStart("msg_b"), thinkingBlockEvents(0, "sig", "hmm"), textBlockEvents(1, "ok"),
				toolBlockEvents(2, "toolu_1", "f", "", `{"a":1}`), msgStop("tool_use", 9)),
			want: []string{
				"response.created", "response.in_progress",
				"response.output_item.added", "response.reasoning_summary_part.added", "response.reasoning_summary_text.delta",
				"response.reasoning_summary_text.done", "response.reasoning_summary_part.done", "response.output_item.done",
				"response.output_item.added", "response.content_part.added", "response.output_text.delta",
				"response.output_text.done", "response.content_part.done", "response.output_item.done",
				"response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.done",
				"response.output_item.done",
				"response.completed",
			},
		},
		{
			name: "thinking without visible text",
			upstream: concat(msgStart("msg_c"), thinkingBlockEvents(0, "sig"), textBlockEvents(1, "x"),
				msgStop("end_turn", 3)),
			want: []string{
				"response.created", "response.in_progress",
				"response.output_item.added", "response.output_item.done",
				"response.output_item.added", "response.content_part.added", "response.output_text.delta",
				"response.output_text.done", "response.content_part.done", "response.output_item.done",
				"response.completed",
			},
		},
		{
			name:     "max tokens",
			upstream: concat(msgStart("msg_d"), textBlockEvents(0, "cut"), msgStop("max_tokens", 1)),
			want: []string{
				"response.created", "response.in_progress",
				"response.output_item.added", "response.content_part.added", "response.output_text.delta",
				"response.output_text.done", "response.content_part.done", "response.output_item.done",
				"response.incomplete",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			evs := parseStream(t, translate(t, Info{Created: testTime}, sseOf(tt.upstream...)))
			checkSequence(t, evs)
			if diff := cmp.Diff(tt.want, names(evs)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEncoder_ConsecutiveTextBlocksShareItem(t *testing.T) {
	up := sseOf(concat(msgStart("msg_cite"), textBlockEvents(0, "According to "), textBlockEvents(1, "the docs, "),
		textBlockEvents(2, "yes."), msgStop("end_turn", 5))...)
	items := outputItems(terminalResponse(t, translate(t, Info{Created: testTime}, up)))
	if len(items) != 1 {
		t.Fatalf("%d items, want one message", len(items))
	}
	content := items[0]["content"].([]any)
	if len(content) != 1 || content[0].(map[string]any)["text"] != "According to the docs, yes." {
		t.Errorf("content = %v", content)
	}
}

func TestEncoder_RedactedThinking(t *testing.T) {
	up := sseOf(concat(msgStart("msg_red"),
		[]string{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"redacted_thinking","data":"EmwKAhgBEgy"}}`,
			"content_block_stop", `{"type":"content_block_stop","index":0}`},
		textBlockEvents(1, "ok"), msgStop("end_turn", 3))...)
	items := outputItems(terminalResponse(t, translate(t, Info{Created: testTime}, up)))
	enc, _ := items[0]["encrypted_content"].(string)
	blk, ok := openThinking(enc)
	if !ok || blk.Type != "redacted_thinking" || blk.Data != "EmwKAhgBEgy" {
		t.Errorf("redacted item = %v (opened %+v, %v)", items[0], blk, ok)
	}
	if s := items[0]["summary"].([]any); len(s) != 0 {
		t.Errorf("summary = %v, want empty", s)
	}
}

func TestEncoder_EchoesRequest(t *testing.T) {
	_, info := decode(t, `{"model":"my-alias","instructions":"Be brief.","input":"x","temperature":0.4,"max_output_tokens":300,
		"metadata":{"k":"v"},"tool_choice":"none","parallel_tool_calls":false,"tools":[`+weatherTool+`],"store":true,
		"reasoning":{"effort":"low","summary":"auto"},"text":{"verbosity":"low"},"prompt_cache_key":"pck","safety_identifier":"u1"}`)
	resp := terminalResponse(t, translate(t, info, sseOf(concat(msgStart("msg_echo"), textBlockEvents(0, "k"), msgStop("end_turn", 1))...)))
	want := map[string]any{
		"id": "resp_echo", "object": "response", "created_at": float64(testTime.Unix()), "status": "completed",
		"model": "my-alias", "instructions": "Be brief.", "temperature": 0.4, "top_p": float64(1),
		"max_output_tokens": float64(300), "metadata": map[string]any{"k": "v"}, "tool_choice": "none",
		"parallel_tool_calls": false, "store": false, "previous_response_id": nil, "error": nil, "incomplete_details": nil,
		"reasoning": map[string]any{"effort": "low", "summary": "auto"}, "text": map[string]any{"verbosity": "low"},
		"prompt_cache_key": "pck", "safety_identifier": "u1", "truncation": "disabled", "background": false,
	}
	for k, v := range want {
		if diff := cmp.Diff(v, resp[k]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", k, diff)
		}
	}
	if tools, _ := resp["tools"].([]any); len(tools) != 1 {
		t.Errorf("tools = %v, want the request's echoed", resp["tools"])
	}
}

// errWriter fails every write, as a connection to a client that left.
type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestEncoder_WriteErrorsAreNotTranslationErrors(t *testing.T) {
	e := NewEncoder(Info{Created: testTime})
	up := concat(msgStart("msg_w"), textBlockEvents(0, "a"), msgStop("end_turn", 1))
	for i := 0; i+1 < len(up); i += 2 {
		if err := e.Event(errWriter{}, up[i], []byte(up[i+1])); err != nil {
			t.Fatalf("Event(%s) = %v: a client write error must not look like a bad upstream event", up[i], err)
		}
	}
}

func TestEncoder_BadUpstreamEvent(t *testing.T) {
	e := NewEncoder(Info{Created: testTime})
	var w strings.Builder
	for _, ev := range [][2]string{
		{"content_block_start", `{"index":0}`},
		{"content_block_delta", `{"index":0,"delta":`},
		{"message_start", `{"type":"message_start"}`},
	} {
		if err := e.Event(&w, ev[0], []byte(ev[1])); err == nil {
			t.Errorf("Event(%s, %s) = nil, want an error", ev[0], ev[1])
		}
	}
}

func TestResult(t *testing.T) {
	_, info := decode(t, `{"model":"claude-sonnet-4-5","input":"x","tools":[`+weatherTool+`,`+applyPatchTool+`]}`)
	up := sseOf(concat(msgStart("msg_01Res"), thinkingBlockEvents(0, "sig-r", "Think."), textBlockEvents(1, "One "), textBlockEvents(2, "two."),
		toolBlockEvents(3, "toolu_w", "get_weather", `{"city":"Oslo"}`),
		toolBlockEvents(4, "toolu_p", "apply_patch", `{"input":"*** Begin Patch\n*** End Patch\n"}`),
		toolBlockEvents(5, "toolu_e", "get_weather"),
		msgStop("tool_use", 50))...)
	var acc anthropic.Accumulator
	feed(t, &acc, up)
	raw, err := Result(&acc, info)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("Result is not JSON: %v\n%s", err, raw)
	}
	sealed := sealThinking(sealedThinking{Type: "thinking", Thinking: "Think.", Signature: "sig-r"})
	wantOutput := []any{
		map[string]any{"id": "rs_01Res_0", "type": "reasoning", "summary": []any{map[string]any{"type": "summary_text", "text": "Think."}}, "encrypted_content": sealed},
		map[string]any{"id": "msg_01Res_1", "type": "message", "status": "completed", "role": "assistant",
			"content": []any{map[string]any{"type": "output_text", "text": "One two.", "annotations": []any{}, "logprobs": []any{}}}},
		map[string]any{"id": "fc_01Res_2", "type": "function_call", "status": "completed", "arguments": `{"city":"Oslo"}`, "call_id": "toolu_w", "name": "get_weather"},
		map[string]any{"id": "ctc_01Res_3", "type": "custom_tool_call", "status": "completed", "call_id": "toolu_p", "name": "apply_patch", "input": "*** Begin Patch\n*** End Patch\n"},
		map[string]any{"id": "fc_01Res_4", "type": "function_call", "status": "completed", "arguments": `{}`, "call_id": "toolu_e", "name": "get_weather"},
	}
	if diff := cmp.Diff(wantOutput, got["output"]); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if got["status"] != "completed" || got["id"] != "resp_01Res" || got["object"] != "response" || got["model"] != "claude-sonnet-4-5" {
		t.Errorf("head = %v %v %v %v", got["id"], got["object"], got["status"], got["model"])
	}

	// The stream's terminal response carries the same output.
	resp := terminalResponse(t, translate(t, info, up))
	if diff := cmp.Diff(wantOutput, resp["output"]); diff != "" {
		t.Errorf("stream output (-want +got):\n%s", diff)
	}
}

func TestResult_MaxTokens(t *testing.T) {
	var acc anthropic.Accumulator
	feed(t, &acc, sseOf(concat(msgStart("msg_m"), textBlockEvents(0, "trunc"), msgStop("max_tokens", 5))...))
	raw, err := Result(&acc, Info{Created: testTime, Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"status":"incomplete"`) || !strings.Contains(string(raw), `"incomplete_details":{"reason":"max_output_tokens"}`) {
		t.Errorf("Result = %s", raw)
	}
}

func TestValidate_CatchesBadRequests(t *testing.T) {
	// The validator the decode tests rely on must not be vacuous.
	bad := []*anthropic.Request{
		{Model: "m", MaxTokens: 10, Messages: []anthropic.Message{assistant(text("x"))}},
		{Model: "m", MaxTokens: 10, Messages: []anthropic.Message{user(text(" "))}},
		{Model: "m", MaxTokens: 10, Messages: []anthropic.Message{user(text("a")), user(text("b"))}},
		{Model: "m", MaxTokens: 10, Messages: []anthropic.Message{user(text("a")), assistant(toolUse("t", "f", "{}")), user(text("b"))}},
		{Model: "m", MaxTokens: 10, Messages: []anthropic.Message{user(text("a")), assistant(toolUse("t", "f", "{}")), user(text("b"), toolResult("t", `"r"`))}},
		{Model: "m", MaxTokens: 10, Messages: []anthropic.Message{user(toolResult("x", `"r"`))}},
		{Model: "m", MaxTokens: 10, Messages: []anthropic.Message{user(text("a")), assistant(toolUse("t.1", "f", "{}")), user(toolResult("t.1", `"r"`))}},
		{Model: "m", MaxTokens: 10, Messages: []anthropic.Message{user(text("a")), assistant(text("prefill"))}},
		{Model: "m", MaxTokens: 2000, Thinking: &anthropic.Thinking{Type: "enabled", BudgetTokens: 4000}, Messages: []anthropic.Message{user(text("a"))}},
		{Model: "m", MaxTokens: 10, ToolChoice: &anthropic.ToolChoice{Type: "any"}, Messages: []anthropic.Message{user(text("a"))}},
	}
	for i, r := range bad {
		if validate(r) == nil {
			t.Errorf("bad[%d] passed validation", i)
		}
	}
}

// BenchmarkEncoder translates a typical agent turn: thinking, a few
// sentences of text and a tool call, about 60 upstream events.
func BenchmarkEncoder(b *testing.B) {
	_, info := decode(b, `{"model":"claude-sonnet-4-5","input":"x","tools":[`+weatherTool+`]}`)
	words := strings.Fields("The quick brown fox jumps over the lazy dog while the gateway translates every event into the Responses shape that Codex expects to read, one frame at a time.")
	up := concat(msgStart("msg_bench"), thinkingBlockEvents(0, "EqQBCkgIBxABGAIiQL1sigA", words[:12]...),
		textBlockEvents(1, words...), toolBlockEvents(2, "toolu_b", "get_weather", "", `{"city":`, `"Paris"}`), msgStop("tool_use", 80))
	type frame struct {
		name string
		data []byte
	}
	frames := make([]frame, 0, len(up)/2)
	for i := 0; i+1 < len(up); i += 2 {
		frames = append(frames, frame{up[i], []byte(up[i+1])})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		e := NewEncoder(info)
		for _, f := range frames {
			if err := e.Event(io.Discard, f.name, f.data); err != nil {
				b.Fatal(err)
			}
		}
	}
}

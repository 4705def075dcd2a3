package responses

// One test per conversion rule that applies to the Responses dialect, each
// named after its rule. Rules about another dialect's fields (n,
// include_usage, tool call indexes, Gemini schemas and id-less calls) are
// tested with that dialect, and rules the proxy applies for every dialect
// (count_tokens, anthropic-beta, unbuffered SSE) in package proxy.

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw/proxy/anthropic"
)

func TestDecode_EmptyTextDropped(t *testing.T) {
	req, _ := decode(t, `{"model":"claude-sonnet-4-5","input":[
		{"role":"user","content":""},
		{"role":"user","content":[{"type":"input_text","text":""},{"type":"input_text","text":"  "},{"type":"input_text","text":"hi"}]},
		{"role":"assistant","content":[{"type":"output_text","text":""}]},
		{"role":"user","content":[]}]}`)
	mustValidate(t, req)
	want := []anthropic.Message{user(text("hi"))}
	if diff := cmp.Diff(want, req.Messages, jsonEqual); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}

	// Nothing left at all: a minimal user turn keeps the request valid.
	req, _ = decode(t, `{"model":"claude-sonnet-4-5","input":[{"role":"user","content":""}]}`)
	mustValidate(t, req)
	if got := req.Messages[0].Content[0].Text; got != "Continue." {
		t.Errorf("placeholder = %q", got)
	}
}

func TestDecode_ToolCallWithEmptyTextOnlyToolUse(t *testing.T) {
	req, _ := decode(t, `{"model":"claude-sonnet-4-5","tools":[`+weatherTool+`],"input":[
		{"role":"user","content":"Paris?"},
		{"role":"assistant","content":""},
		{"role":"assistant","content":[{"type":"output_text","text":""}]},
		{"type":"function_call","call_id":"c1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
		{"type":"function_call_output","call_id":"c1","output":"sunny"}]}`)
	mustValidate(t, req)
	want := assistant(toolUse("c1", "get_weather", `{"city":"Paris"}`))
	if diff := cmp.Diff(want, req.Messages[1], jsonEqual); diff != "" {
		t.Errorf("assistant turn (-want +got):\n%s", diff)
	}
}

func TestDecode_SystemAndDeveloperHoisted(t *testing.T) {
	req, _ := decode(t, `{"model":"claude-sonnet-4-5","instructions":"You are Codex.","input":[
		{"type":"message","role":"developer","content":[{"type":"input_text","text":"Sandbox: read-only."}]},
		{"role":"user","content":"hi"},
		{"role":"assistant","content":"hello"},
		{"role":"system","content":"Be terse from now on."},
		{"role":"user","content":"bye"}]}`)
	mustValidate(t, req)
	want := []anthropic.ContentBlock{text("You are Codex."), text("Sandbox: read-only."), text("Be terse from now on.")}
	if diff := cmp.Diff(want, req.System); diff != "" {
		t.Errorf("system (-want +got):\n%s", diff)
	}
	if len(req.Messages) != 3 {
		t.Errorf("messages = %+v, want user, assistant, user", req.Messages)
	}
}

func TestDecode_ConsecutiveSameRoleMerged(t *testing.T) {
	req, _ := decode(t, `{"model":"claude-sonnet-4-5","tools":[`+weatherTool+`],"input":[
		{"role":"user","content":"one"},
		{"role":"user","content":"two"},
		{"type":"function_call","call_id":"a","name":"get_weather","arguments":"{\"city\":\"A\"}"},
		{"type":"function_call","call_id":"b","name":"get_weather","arguments":"{\"city\":\"B\"}"},
		{"type":"function_call_output","call_id":"a","output":"ra"},
		{"type":"function_call_output","call_id":"b","output":"rb"}]}`)
	mustValidate(t, req)
	want := []anthropic.Message{
		user(text("one"), text("two")),
		assistant(toolUse("a", "get_weather", `{"city":"A"}`), toolUse("b", "get_weather", `{"city":"B"}`)),
		user(toolResult("a", `"ra"`), toolResult("b", `"rb"`)),
	}
	if diff := cmp.Diff(want, req.Messages, jsonEqual); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
}

func TestDecode_ToolResultsBeforeText(t *testing.T) {
	req, _ := decode(t, `{"model":"claude-sonnet-4-5","tools":[`+weatherTool+`],"input":[
		{"role":"user","content":"Paris?"},
		{"type":"function_call","call_id":"c1","name":"get_weather","arguments":"{}"},
		{"role":"user","content":"also, hurry"},
		{"type":"function_call_output","call_id":"c1","output":"sunny"}]}`)
	mustValidate(t, req)
	want := user(toolResult("c1", `"sunny"`), text("also, hurry"))
	if diff := cmp.Diff(want, req.Messages[2], jsonEqual); diff != "" {
		t.Errorf("user turn (-want +got):\n%s", diff)
	}
}

func TestDecode_ToolOutputArray(t *testing.T) {
	tests := []struct {
		name, output, want string
		isError            bool
	}{
		{"single text part becomes a string", `[{"type":"input_text","text":"42"}]`, `"42"`, false},
		{"bare strings and empty parts", `["a",{"type":"input_text","text":""}]`, `"a"`, false},
		{"text and image stay a block list", `[{"type":"input_text","text":"see"},{"type":"input_image","image_url":"data:image/png;base64,AAAA"}]`,
			`[{"type":"text","text":"see"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]`, false},
		{"codex failure object", `{"content":"exit 1","success":false}`, `"exit 1"`, true},
		{"empty", `[]`, ``, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := decode(t, `{"model":"claude-sonnet-4-5","input":[{"role":"user","content":"x"},
				{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},
				{"type":"function_call_output","call_id":"c","output":`+tt.output+`}]}`)
			mustValidate(t, req)
			got := req.Messages[2].Content[0]
			if diff := cmp.Diff(json.RawMessage(tt.want), got.Content, jsonEqual); diff != "" {
				t.Errorf("tool_result content (-want +got):\n%s", diff)
			}
			if got.IsError != tt.isError {
				t.Errorf("is_error = %v, want %v", got.IsError, tt.isError)
			}
		})
	}
}

func TestDecode_SameCallAnsweredTwiceKeepsLast(t *testing.T) {
	req, _ := decode(t, `{"model":"claude-sonnet-4-5","input":[{"role":"user","content":"x"},
		{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},
		{"type":"function_call_output","call_id":"c","output":"first"},
		{"type":"function_call_output","call_id":"c","output":"second"}]}`)
	mustValidate(t, req)
	want := user(toolResult("c", `"second"`))
	if diff := cmp.Diff(want, req.Messages[2], jsonEqual); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}

func TestDecode_UnansweredCallsAndOrphanResults(t *testing.T) {
	req, info := decode(t, `{"model":"claude-sonnet-4-5","input":[
		{"type":"function_call_output","call_id":"gone","output":"from a truncated history"},
		{"role":"user","content":"run it"},
		{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},
		{"role":"user","content":"stop, do something else"},
		{"type":"function_call","call_id":"d","name":"f","arguments":"{}"}]}`)
	mustValidate(t, req)
	got := req.Messages[2].Content
	if len(got) != 2 || got[0].Type != "tool_result" || got[0].ToolUseID != "c" || !got[0].IsError || got[1].Text != "stop, do something else" {
		t.Errorf("interrupted turn = %+v", got)
	}
	last := req.Messages[len(req.Messages)-1].Content[0]
	if last.ToolUseID != "d" || !last.IsError {
		t.Errorf("trailing call result = %+v", last)
	}
	if !slices.ContainsFunc(info.Notes, func(n string) bool { return strings.Contains(n, "unknown tool call gone") }) {
		t.Errorf("notes %q do not mention the orphan result", info.Notes)
	}
}

func TestDecode_CallIDsSanitized(t *testing.T) {
	req, _ := decode(t, `{"model":"claude-sonnet-4-5","input":[{"role":"user","content":"x"},
		{"type":"function_call","call_id":"functions.get weather:0","name":"f","arguments":"{}"},
		{"type":"function_call","call_id":"","name":"f","arguments":"{}"},
		{"type":"function_call_output","call_id":"functions.get weather:0","output":"ok"}]}`)
	mustValidate(t, req)
	calls := req.Messages[1].Content
	if calls[0].ID != "functions_get_weather_0" || calls[1].ID == "" {
		t.Errorf("tool_use ids = %q, %q", calls[0].ID, calls[1].ID)
	}
	if got := req.Messages[2].Content[0].ToolUseID; got != "functions_get_weather_0" {
		t.Errorf("tool_result id = %q: must match the sanitized tool_use id", got)
	}
}

func TestRoundTrip_ToolNamesSanitizedAndRestored(t *testing.T) {
	req, info := decode(t, `{"model":"claude-sonnet-4-5","input":"x","tools":[
		{"type":"function","name":"github.com/search issues","parameters":{"type":"object","properties":{}}},
		{"type":"function","name":"`+strings.Repeat("n", 140)+`"}]}`)
	mustValidate(t, req)
	up := req.Tools[0].Name
	if up != "github_com_search_issues" || len(req.Tools[1].Name) > 128 {
		t.Errorf("upstream names = %q, %d chars", up, len(req.Tools[1].Name))
	}
	out := translate(t, info, sseOf(concat(msgStart("msg_n"), toolBlockEvents(0, "toolu_1", up, `{}`), msgStop("tool_use", 3))...))
	items := outputItems(terminalResponse(t, out))
	if got := items[0]["name"]; got != "github.com/search issues" {
		t.Errorf("streamed name = %v, want the client's", got)
	}
}

func TestDecode_BadArgumentsBecomeEmptyObject(t *testing.T) {
	for _, args := range []string{`""`, `"not json"`, `"[1,2]"`, `"\"a string\""`, `null`, `"{\"a\":"`} {
		req, _ := decode(t, `{"model":"claude-sonnet-4-5","input":[{"role":"user","content":"x"},
			{"type":"function_call","call_id":"c","name":"f","arguments":`+args+`},
			{"type":"function_call_output","call_id":"c","output":"ok"}]}`)
		mustValidate(t, req)
		if got := string(req.Messages[1].Content[0].Input); got != "{}" {
			t.Errorf("arguments %s: input = %s, want {}", args, got)
		}
	}
}

func TestEncoder_ToolArgumentFragments(t *testing.T) {
	up := sseOf(concat(msgStart("msg_f"),
		toolBlockEvents(0, "toolu_a", "f", "", `{"ci`, "", `ty":"Paris"}`),
		toolBlockEvents(1, "toolu_b", "g"), // no arguments, no fragment at all
		msgStop("tool_use", 9))...)
	evs := parseStream(t, translate(t, Info{Created: testTime}, up))
	checkSequence(t, evs)
	var deltas []string
	var dones []string
	for _, ev := range evs {
		switch ev.Name {
		case "response.function_call_arguments.delta":
			deltas = append(deltas, ev.Data["delta"].(string))
		case "response.function_call_arguments.done":
			dones = append(dones, ev.Data["arguments"].(string))
		}
	}
	if diff := cmp.Diff([]string{`{"ci`, `ty":"Paris"}`, `{}`}, deltas); diff != "" {
		t.Errorf("deltas (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{`{"city":"Paris"}`, `{}`}, dones); diff != "" {
		t.Errorf("done arguments (-want +got):\n%s", diff)
	}
}

func TestDecode_DefaultMaxTokens(t *testing.T) {
	for model, want := range map[string]int{
		"claude-sonnet-4-5":          32000,
		"claude-3-5-haiku-20241022":  8192,
		"claude-future-9-20300101":   8192, // unknown: the fallback, never refused
		"claude-opus-4-1-20250805":   32000,
		"claude-3-haiku-20240307":    4096,
		"claude-haiku-4-5-20251001":  32000,
		"claude-sonnet-4-5-20250929": 32000,
	} {
		req, _ := decode(t, `{"model":"`+model+`","input":"x"}`)
		if req.MaxTokens != want {
			t.Errorf("%s: max_tokens = %d, want %d", model, req.MaxTokens, want)
		}
	}
}

func TestDecode_MaxTokensClampedToModelCap(t *testing.T) {
	req, _ := decode(t, `{"model":"claude-sonnet-4-5","input":"x","max_output_tokens":1000000}`)
	if req.MaxTokens != 64000 {
		t.Errorf("max_tokens = %d, want the cap 64000", req.MaxTokens)
	}
	req, _ = decode(t, `{"model":"claude-next","input":"x","max_output_tokens":1000000}`)
	if req.MaxTokens != 1000000 {
		t.Errorf("unknown model: max_tokens = %d, want it unchanged", req.MaxTokens)
	}
}

func TestDecode_ThinkingBudgetFitsMaxTokens(t *testing.T) {
	tests := []struct {
		body             string
		budget, maxTkens int
	}{
		{`{"model":"claude-sonnet-4-5","input":"x","max_output_tokens":500,"reasoning":{"effort":"low"}}`, 1024, 5120},
		{`{"model":"claude-sonnet-4-5","input":"x","max_output_tokens":2000,"reasoning":{"effort":"high"}}`, 24576, 28672},
		{`{"model":"claude-3-7-sonnet-20250219","input":"x","reasoning":{"effort":"xhigh"}}`, 32768, 36864},
		{`{"model":"claude-opus-4-1-20250805","input":"x","reasoning":{"effort":"max"}}`, 30976, 32000},
	}
	for _, tt := range tests {
		req, _ := decode(t, tt.body)
		mustValidate(t, req)
		if req.Thinking == nil || req.Thinking.BudgetTokens != tt.budget || req.MaxTokens != tt.maxTkens {
			t.Errorf("%s: thinking %+v, max_tokens %d; want budget %d, max_tokens %d", tt.body, req.Thinking, req.MaxTokens, tt.budget, tt.maxTkens)
		}
	}
}

func TestDecode_ThinkingDropsSampling(t *testing.T) {
	req, _ := decode(t, `{"model":"claude-sonnet-4-5","input":"x","temperature":0.3,"reasoning":{"effort":"medium"}}`)
	mustValidate(t, req)
	if req.Temperature != nil || req.Thinking == nil {
		t.Errorf("temperature %v, thinking %+v", req.Temperature, req.Thinking)
	}
	req, _ = decode(t, `{"model":"claude-sonnet-4-5","input":"x","top_p":0.5,"reasoning":{"effort":"medium"}}`)
	if req.TopP != nil {
		t.Errorf("top_p %v kept with thinking", *req.TopP)
	}
	req, _ = decode(t, `{"model":"claude-sonnet-4-5","input":"x","top_p":0.97,"reasoning":{"effort":"medium"}}`)
	if req.TopP == nil || *req.TopP != 0.97 {
		t.Errorf("top_p 0.97 should stay with thinking, got %v", req.TopP)
	}
	req, _ = decode(t, `{"model":"claude-sonnet-4-5","input":"x","temperature":1,"reasoning":{"effort":"low"}}`)
	if req.Temperature == nil || *req.Temperature != 1 {
		t.Errorf("temperature 1 should stay with thinking, got %v", req.Temperature)
	}
}

func TestDecode_TemperatureWinsOverTopP(t *testing.T) {
	req, _ := decode(t, `{"model":"claude-sonnet-4-5","input":"x","temperature":0.7,"top_p":0.9}`)
	mustValidate(t, req)
	if req.Temperature == nil || *req.Temperature != 0.7 || req.TopP != nil {
		t.Errorf("temperature %v, top_p %v: want temperature only", req.Temperature, req.TopP)
	}
	req, _ = decode(t, `{"model":"claude-sonnet-4-5","input":"x","top_p":0.9}`)
	if req.TopP == nil || *req.TopP != 0.9 {
		t.Errorf("top_p alone = %v, want 0.9", req.TopP)
	}
}

func TestDecode_TemperatureClamped(t *testing.T) {
	req, _ := decode(t, `{"model":"claude-sonnet-4-5","input":"x","temperature":1.7}`)
	mustValidate(t, req)
	if req.Temperature == nil || *req.Temperature != 1 {
		t.Errorf("temperature = %v, want 1", req.Temperature)
	}
}

func TestDecode_ForcedToolChoiceTurnsThinkingOff(t *testing.T) {
	// Anthropic refuses thinking with forced tool use; the forced tool is
	// what the client parses, so it stays and thinking goes.
	for choice, want := range map[string]anthropic.ToolChoice{
		`"required"`: {Type: "any"},
		`{"type":"function","name":"get_weather"}`: {Type: "tool", Name: "get_weather"},
	} {
		req, info := decode(t, `{"model":"claude-sonnet-4-5","input":"x","tools":[`+weatherTool+`],"tool_choice":`+choice+`,"reasoning":{"effort":"low"}}`)
		mustValidate(t, req)
		if req.ToolChoice == nil || *req.ToolChoice != want || req.Thinking != nil {
			t.Errorf("%s: tool_choice %+v, thinking %+v; want %+v without thinking", choice, req.ToolChoice, req.Thinking, want)
		}
		if !slices.ContainsFunc(info.Notes, func(n string) bool { return strings.Contains(n, "thinking off") }) {
			t.Errorf("notes %q do not say why thinking is off", info.Notes)
		}
	}
}

func TestDecode_UnsignedToolLoopTurnsThinkingOff(t *testing.T) {
	history := `{"role":"user","content":"Paris?"},
		%s
		{"type":"function_call","call_id":"c1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
		{"type":"function_call_output","call_id":"c1","output":"sunny"}`
	body := func(reasoning string) string {
		return `{"model":"claude-sonnet-4-5","tools":[` + weatherTool + `],"reasoning":{"effort":"high"},"input":[` +
			strings.Replace(history, "%s", reasoning, 1) + `]}`
	}
	// The client dropped the reasoning item: thinking goes off for this call.
	req, info := decode(t, body(""))
	mustValidate(t, req)
	if req.Thinking != nil {
		t.Errorf("thinking = %+v, want off for an unsigned tool loop", req.Thinking)
	}
	if !slices.ContainsFunc(info.Notes, func(n string) bool { return strings.Contains(n, "thinking off") }) {
		t.Errorf("notes %q do not say why thinking is off", info.Notes)
	}
	// It kept our reasoning item: thinking stays on, the signed block first.
	sealed := sealThinking(sealedThinking{Type: "thinking", Thinking: "I should check the weather.", Signature: "sig-abc"})
	req, _ = decode(t, body(`{"type":"reasoning","summary":[{"type":"summary_text","text":"I should check the weather."}],"encrypted_content":"`+sealed+`"},`))
	mustValidate(t, req)
	if req.Thinking == nil {
		t.Fatal("thinking off although the tool loop is signed")
	}
	if first := req.Messages[1].Content[0]; first.Type != "thinking" || first.Signature != "sig-abc" {
		t.Errorf("assistant turn starts with %+v", first)
	}
}

func TestRoundTrip_ThinkingSignatureNeverAltered(t *testing.T) {
	// Thinking text and signature with everything JSON and base64 could
	// mangle: they come back byte for byte.
	thinking := "Let's see: <b>&amp;</b> \"quotes\" \\ back\nslash, émoji 🤔, \u2028 separators"
	signature := "EqQBCgIYAhIM+/=abc==\u0000tail"
	up := sseOf(concat(msgStart("msg_sig"),
		[]string{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}`},
		[]string{"content_block_delta", mustMarshal(t, map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "thinking_delta", "thinking": thinking}})},
		// The signature may arrive in pieces: joined exactly.
		[]string{"content_block_delta", mustMarshal(t, map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "signature_delta", "signature": signature[:7]}})},
		[]string{"content_block_delta", mustMarshal(t, map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "signature_delta", "signature": signature[7:]}})},
		[]string{"content_block_stop", `{"type":"content_block_stop","index":0}`},
		textBlockEvents(1, "done"),
		msgStop("end_turn", 20))...)
	items := outputItems(terminalResponse(t, translate(t, Info{Created: testTime}, up)))
	enc, _ := items[0]["encrypted_content"].(string)
	blk, ok := openThinking(enc)
	if !ok || blk.Thinking != thinking || blk.Signature != signature {
		t.Fatalf("round trip: ok %v, block %+v", ok, blk)
	}
	// Replayed as input, the same bytes reach the upstream.
	item, _ := json.Marshal(items[0])
	req, _ := decode(t, `{"model":"claude-sonnet-4-5","input":[{"role":"user","content":"q"},`+string(item)+`,
		{"type":"message","role":"assistant","content":[{"type":"output_text","text":"done"}]},{"role":"user","content":"next"}]}`)
	mustValidate(t, req)
	if got := req.Messages[1].Content[0]; got.Thinking != thinking || got.Signature != signature {
		t.Errorf("replayed block = %+v", got)
	}
	// A tampered or forged marker is dropped, never forwarded.
	for _, bad := range []string{enc[:len(enc)-4], markerPrefix + "!!!", markerPrefix + "e30", enc + "x"} {
		if _, ok := openThinking(bad); ok {
			t.Errorf("openThinking(%q) accepted a damaged marker", bad)
		}
	}
	// An unsigned thinking block gets no encrypted_content.
	unsigned := reasoningOf("rs_1", anthropic.ContentBlock{Type: "thinking", Thinking: "x"})
	if unsigned.EncryptedContent != nil {
		t.Errorf("unsigned thinking got encrypted_content %q", *unsigned.EncryptedContent)
	}
}

func mustMarshal(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDecode_BlankStopSequencesDropped(t *testing.T) {
	req, _ := decode(t, `{"model":"claude-sonnet-4-5","input":"x","stop":["\n","","  ","END"]}`)
	mustValidate(t, req)
	if diff := cmp.Diff([]string{"END"}, req.StopSequences); diff != "" {
		t.Errorf("stop sequences (-want +got):\n%s", diff)
	}
	req, _ = decode(t, `{"model":"claude-sonnet-4-5","input":"x","stop":"\n"}`)
	if req.StopSequences != nil {
		t.Errorf("stop sequences = %q, want none", req.StopSequences)
	}
}

func TestEncoder_UsageIncludesCachedTokens(t *testing.T) {
	up := sseOf(concat(
		[]string{"message_start", `{"type":"message_start","message":{"id":"msg_u","type":"message","role":"assistant","model":"m","content":[],"usage":{"input_tokens":12,"cache_read_input_tokens":1500,"cache_creation_input_tokens":300,"output_tokens":1}}}`},
		textBlockEvents(0, "hi"),
		[]string{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":12,"cache_read_input_tokens":1500,"cache_creation_input_tokens":300,"output_tokens":40,"output_tokens_details":{"thinking_tokens":25}}}`,
			"message_stop", `{"type":"message_stop"}`})...)
	resp := terminalResponse(t, translate(t, Info{Created: testTime}, up))
	want := map[string]any{
		"input_tokens":          float64(1812),
		"input_tokens_details":  map[string]any{"cached_tokens": float64(1500), "cache_write_tokens": float64(300)},
		"output_tokens":         float64(40),
		"output_tokens_details": map[string]any{"reasoning_tokens": float64(25)},
		"total_tokens":          float64(1852),
	}
	if diff := cmp.Diff(want, resp["usage"]); diff != "" {
		t.Errorf("stream usage (-want +got):\n%s", diff)
	}

	var acc anthropic.Accumulator
	feed(t, &acc, up)
	raw, err := Result(&acc, Info{Created: testTime})
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, obj["usage"]); diff != "" {
		t.Errorf("result usage (-want +got):\n%s", diff)
	}
}

func TestEncoder_MultibyteTextIntact(t *testing.T) {
	// The upstream splits text only between runes (the proxy's SSE reader
	// reassembles frames split across reads); every frame we write must be
	// valid UTF-8 JSON and the text must add up.
	want := "héllo wörld, 世界 👋🏽 — ok"
	var chunks []string
	for i := 0; i < len(want); {
		_, n := utf8.DecodeRuneInString(want[i:])
		chunks = append(chunks, want[i:i+n])
		i += n
	}
	out := translate(t, Info{Created: testTime}, sseOf(concat(msgStart("msg_utf"), textBlockEvents(0, chunks...), msgStop("end_turn", 9))...))
	if !utf8.ValidString(out) {
		t.Fatal("client stream is not valid UTF-8")
	}
	var got strings.Builder
	for _, ev := range parseStream(t, out) {
		if ev.Name == "response.output_text.delta" {
			got.WriteString(ev.Data["delta"].(string))
		}
	}
	if got.String() != want {
		t.Errorf("text = %q, want %q", got.String(), want)
	}
	items := outputItems(terminalResponse(t, out))
	if txt := items[0]["content"].([]any)[0].(map[string]any)["text"]; txt != want {
		t.Errorf("final text = %q", txt)
	}
}

func TestEncoder_PingBecomesComment(t *testing.T) {
	var out strings.Builder
	enc := NewEncoder(Info{Created: testTime})
	if err := enc.Event(&out, "ping", []byte(`{"type":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	if out.String() != ": keep-alive\n\n" {
		t.Errorf("ping wrote %q, want an SSE comment", out.String())
	}
	up := sseOf(concat(msgStart("msg_p"), []string{"ping", `{"type":"ping"}`}, textBlockEvents(0, "a"),
		[]string{"ping", `{"type":"ping"}`}, msgStop("end_turn", 2))...)
	stream := translate(t, Info{Created: testTime}, up)
	if n := strings.Count(stream, ": keep-alive\n\n"); n != 2 {
		t.Errorf("%d keep-alive comments, want 2", n)
	}
	checkSequence(t, parseStream(t, stream)) // pings take no sequence number
}

func TestEncoder_MidStreamErrorFails(t *testing.T) {
	up := sseOf(concat(msgStart("msg_e"), textBlockEvents(0, "partial")[:4],
		[]string{"error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`})...)
	resp := terminalResponse(t, translate(t, Info{Created: testTime}, up))
	if resp["status"] != "failed" {
		t.Fatalf("status = %v, want failed", resp["status"])
	}
	want := map[string]any{"code": "server_error", "message": "Overloaded"}
	if diff := cmp.Diff(want, resp["error"]); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
	// The encoder itself also understands an error event.
	var out strings.Builder
	enc := NewEncoder(Info{Created: testTime})
	for _, ev := range [][2]string{{"message_start", msgStart("msg_x")[1]}, {"error", `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`}} {
		if err := enc.Event(&out, ev[0], []byte(ev[1])); err != nil {
			t.Fatal(err)
		}
	}
	resp = terminalResponse(t, out.String())
	if code := resp["error"].(map[string]any)["code"]; code != "rate_limit_exceeded" {
		t.Errorf("code = %v, want rate_limit_exceeded", code)
	}
}

func TestEncoder_EndWithoutMessageStopFails(t *testing.T) {
	events := concat(msgStart("msg_cut"), textBlockEvents(0, "all of it"), msgStop("end_turn", 4))
	up := sseOf(events[:len(events)-2]...) // message_delta, but no message_stop
	evs := parseStream(t, translate(t, Info{Created: testTime}, up))
	term := checkSequence(t, evs)
	if term.Name != "response.failed" {
		t.Errorf("terminal = %s, want response.failed", term.Name)
	}
}

func TestEncoder_ExactlyOneTerminalEvent(t *testing.T) {
	full := concat(msgStart("msg_t"), thinkingBlockEvents(0, "s"), textBlockEvents(1, "a", "b"),
		toolBlockEvents(2, "toolu_1", "f", `{"x":1}`), msgStop("tool_use", 9))
	tests := []struct {
		name     string
		run      func(w *strings.Builder, e *Encoder)
		terminal string
	}{
		{"complete", func(w *strings.Builder, e *Encoder) { feedEvents(t, e, w, full) }, "response.completed"},
		{"max tokens", func(w *strings.Builder, e *Encoder) {
			feedEvents(t, e, w, concat(msgStart("msg_m"), textBlockEvents(0, "trunc"), msgStop("max_tokens", 5)))
		}, "response.incomplete"},
		{"fail twice", func(w *strings.Builder, e *Encoder) {
			feedEvents(t, e, w, full[:10])
			_ = e.Fail(w, "api_error", "broken")
			_ = e.Fail(w, "api_error", "broken again")
		}, "response.failed"},
		{"fail after completion", func(w *strings.Builder, e *Encoder) {
			feedEvents(t, e, w, full)
			_ = e.Fail(w, "api_error", "late")
		}, "response.completed"},
		{"events after message_stop", func(w *strings.Builder, e *Encoder) {
			feedEvents(t, e, w, append(full, full...))
		}, "response.completed"},
		{"fail before anything", func(w *strings.Builder, e *Encoder) { _ = e.Fail(w, "overloaded_error", "Overloaded") }, "response.failed"},
		{"message_stop only", func(w *strings.Builder, e *Encoder) {
			feedEvents(t, e, w, []string{"message_stop", `{"type":"message_stop"}`})
		}, "response.completed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w strings.Builder
			tt.run(&w, NewEncoder(Info{Created: testTime}))
			if term := checkSequence(t, parseStream(t, w.String())); term.Name != tt.terminal {
				t.Errorf("terminal = %s, want %s", term.Name, tt.terminal)
			}
		})
	}
}

// feedEvents sends name/data pairs to e.
func feedEvents(t testing.TB, e *Encoder, w *strings.Builder, pairs []string) {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := e.Event(w, pairs[i], []byte(pairs[i+1])); err != nil {
			t.Fatalf("Event(%s): %v", pairs[i], err)
		}
	}
}

const applyPatchTool = `{"type":"custom","name":"apply_patch","description":"Use the apply_patch tool to edit files. This is a FREEFORM tool, so do not wrap the patch in JSON.",
	"format":{"type":"grammar","syntax":"lark","definition":"start: begin_patch hunk+ end_patch\nbegin_patch: \"*** Begin Patch\" LF"}}`

func TestRoundTrip_CodexApplyPatchCustomTool(t *testing.T) {
	patch := "*** Begin Patch\n*** Update File: main.go\n@@\n-\tfmt.Println(\"hi\")\n+\tfmt.Println(\"hello\")\n*** End Patch\n"
	req, info := decode(t, `{"model":"claude-sonnet-4-5","tools":[`+applyPatchTool+`],"input":[{"role":"user","content":"fix it"}]}`)
	mustValidate(t, req)
	tool := req.Tools[0]
	if diff := cmp.Diff(customSchema, tool.InputSchema, jsonEqual); diff != "" {
		t.Errorf("schema (-want +got):\n%s", diff)
	}
	if !strings.Contains(tool.Description, "*** Begin Patch") || !strings.Contains(tool.Description, "FREEFORM") {
		t.Errorf("description lacks the grammar: %q", tool.Description)
	}

	// The model's call comes back as a custom_tool_call with the raw patch.
	wrapped := mustMarshal(t, map[string]string{"input": patch})
	up := sseOf(concat(msgStart("msg_p"), textBlockEvents(0, "Patching."),
		toolBlockEvents(1, "toolu_patch", "apply_patch", "", wrapped[:9], wrapped[9:30], wrapped[30:]), msgStop("tool_use", 40))...)
	evs := parseStream(t, translate(t, info, up))
	term := checkSequence(t, evs)
	var input string
	for _, ev := range evs {
		switch ev.Name {
		case "response.function_call_arguments.delta", "response.function_call_arguments.done":
			t.Errorf("a freeform tool call streamed as a function call: %s", ev.Raw)
		case "response.custom_tool_call_input.done":
			input = ev.Data["input"].(string)
		}
	}
	if input != patch {
		t.Errorf("custom_tool_call_input.done input = %q, want the raw patch", input)
	}
	items := outputItems(term.Data["response"].(map[string]any))
	call := items[1]
	if call["type"] != "custom_tool_call" || call["input"] != patch || call["call_id"] != "toolu_patch" || call["name"] != "apply_patch" {
		t.Errorf("output item = %v", call)
	}

	// Round trip: the call and its output come back in the next request.
	item, _ := json.Marshal(call)
	req, _ = decode(t, `{"model":"claude-sonnet-4-5","tools":[`+applyPatchTool+`],"input":[{"role":"user","content":"fix it"},
		`+string(item)+`,{"type":"custom_tool_call_output","call_id":"toolu_patch","output":"Success. Updated the following files:\nM main.go"}]}`)
	mustValidate(t, req)
	use := req.Messages[1].Content[0]
	if diff := cmp.Diff(json.RawMessage(wrapped), use.Input, jsonEqual); diff != "" || use.Name != "apply_patch" {
		t.Errorf("tool_use %s (-want +got input):\n%s", use.Name, diff)
	}
	if res := req.Messages[2].Content[0]; res.ToolUseID != "toolu_patch" {
		t.Errorf("tool_result = %+v", res)
	}

	// Declared as a function tool with a string parameter, it stays a function.
	req, info = decode(t, `{"model":"claude-sonnet-4-5","input":"x","tools":[{"type":"function","name":"apply_patch","parameters":{"type":"object","properties":{"input":{"type":"string"}},"required":["input"]}}]}`)
	if info.Tools["apply_patch"].Custom {
		t.Error("a function apply_patch was taken for a custom tool")
	}
	out := translate(t, info, sseOf(concat(msgStart("msg_f"), toolBlockEvents(0, "toolu_f", "apply_patch", `{"input":"x"}`), msgStop("tool_use", 3))...))
	if got := outputItems(terminalResponse(t, out))[0]; got["type"] != "function_call" || got["arguments"] != `{"input":"x"}` {
		t.Errorf("function apply_patch item = %v", got)
	}
	_ = req
}

func TestDecode_ForeignEncryptedReasoningDropped(t *testing.T) {
	ours := sealThinking(sealedThinking{Type: "thinking", Thinking: "mine", Signature: "sig-1"})
	redacted := sealThinking(sealedThinking{Type: "redacted_thinking", Data: "EmwKAhgB"})
	req, info := decode(t, `{"model":"claude-sonnet-4-5","input":[{"role":"user","content":"q"},
		{"type":"reasoning","id":"rs_openai","summary":[{"type":"summary_text","text":"theirs"}],"encrypted_content":"gAAAAABoForeignFernetToken=="},
		{"type":"reasoning","summary":[],"encrypted_content":null},
		{"type":"reasoning","summary":[{"type":"summary_text","text":"mine"}],"encrypted_content":"`+ours+`"},
		{"type":"reasoning","summary":[],"encrypted_content":"`+redacted+`"},
		{"role":"assistant","content":"answer"},
		{"role":"user","content":"next"}]}`)
	mustValidate(t, req)
	want := assistant(
		anthropic.ContentBlock{Type: "thinking", Thinking: "mine", Signature: "sig-1"},
		anthropic.ContentBlock{Type: "redacted_thinking", Data: "EmwKAhgB"},
		text("answer"))
	if diff := cmp.Diff(want, req.Messages[1], jsonEqual); diff != "" {
		t.Errorf("assistant turn (-want +got):\n%s", diff)
	}
	if !slices.ContainsFunc(info.Notes, func(n string) bool { return strings.Contains(n, "not made by llmgw") }) {
		t.Errorf("notes %q do not mention the foreign item", info.Notes)
	}
}

func TestDecode_ToolSchemaNormalized(t *testing.T) {
	req, _ := decode(t, `{"model":"claude-sonnet-4-5","input":"x","tools":[
		{"type":"function","name":"union","parameters":{"anyOf":[{"type":"object","properties":{"a":{"type":"string"}}},{"type":"object","properties":{"b":{"$ref":"#/$defs/B"}}}],"$defs":{"B":{"type":"integer"}}}},
		{"type":"function","name":"none"},
		{"type":"function","name":"nullparams","parameters":null}]}`)
	mustValidate(t, req)
	want := []json.RawMessage{
		json.RawMessage(`{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}`),
		json.RawMessage(`{"type":"object","properties":{}}`),
		json.RawMessage(`{"type":"object","properties":{}}`),
	}
	for i, w := range want {
		if diff := cmp.Diff(w, req.Tools[i].InputSchema, jsonEqual); diff != "" {
			t.Errorf("tools[%d] schema (-want +got):\n%s", i, diff)
		}
	}
}

func TestDecode_ImageSources(t *testing.T) {
	img := func(u string) string {
		return `{"model":"claude-sonnet-4-5","input":[{"role":"user","content":[{"type":"input_image","image_url":"` + u + `"}]}]}`
	}
	tests := []struct {
		url  string
		want *anthropic.Source
	}{
		{"data:image/png;base64,iVBORw0KGgo=", &anthropic.Source{Type: "base64", MediaType: "image/png", Data: "iVBORw0KGgo="}},
		{"data:image/jpg;base64,/9j/4AA=", &anthropic.Source{Type: "base64", MediaType: "image/jpeg", Data: "/9j/4AA="}},
		{"data:image/webp;base64,UklGR", &anthropic.Source{Type: "base64", MediaType: "image/webp", Data: "UklGR"}},
		{"https://example.com/a.gif", &anthropic.Source{Type: "url", URL: "https://example.com/a.gif"}},
	}
	for _, tt := range tests {
		req, _ := decode(t, img(tt.url))
		if diff := cmp.Diff(tt.want, req.Messages[0].Content[0].Source); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.url, diff)
		}
	}
	for _, bad := range []string{"data:image/tiff;base64,AAAA", "data:image/png,notbase64", "ftp://example.com/a.png", "a.png"} {
		if re := decodeErr(t, img(bad)); re.Param != "input[0].content[0].image_url" {
			t.Errorf("%s: param %q", bad, re.Param)
		}
	}
}

func TestDecode_ToolChoiceWithoutToolsDropped(t *testing.T) {
	for _, body := range []string{
		`{"model":"claude-sonnet-4-5","input":"x","tool_choice":"required"}`,
		`{"model":"claude-sonnet-4-5","input":"x","tool_choice":"required","tools":[{"type":"web_search"},{"type":"file_search","vector_store_ids":["vs_1"]}]}`,
		`{"model":"claude-sonnet-4-5","input":"x","tool_choice":{"type":"allowed_tools","mode":"required","tools":[{"type":"function","name":"other"}]},"tools":[` + weatherTool + `]}`,
	} {
		req, _ := decode(t, body)
		mustValidate(t, req)
		if req.ToolChoice != nil || len(req.Tools) != 0 {
			t.Errorf("%s: tool_choice %+v with tools %+v", body, req.ToolChoice, req.Tools)
		}
	}
	// A hosted tool choice with function tools left becomes auto.
	req, _ := decode(t, `{"model":"claude-sonnet-4-5","input":"x","tool_choice":{"type":"web_search"},"tools":[{"type":"web_search"},`+weatherTool+`]}`)
	if req.ToolChoice == nil || req.ToolChoice.Type != "auto" {
		t.Errorf("tool_choice = %+v, want auto", req.ToolChoice)
	}
}

func TestDecode_TrailingAssistantStripped(t *testing.T) {
	req, _ := decode(t, `{"model":"claude-sonnet-4-5","input":[{"role":"user","content":"Write a haiku"},{"role":"assistant","content":"Autumn moonlight -"}]}`)
	mustValidate(t, req)
	if n := len(req.Messages); n != 1 || req.Messages[0].Role != "user" {
		t.Errorf("messages = %+v, want the user turn only", req.Messages)
	}
}

func TestErrorBody_ContextOverflowCode(t *testing.T) {
	msg := "prompt is too long: 215000 tokens > 200000 maximum"
	status, body := ErrorBody(http.StatusBadRequest, "invalid_request_error", msg)
	want := `{"error":{"message":"` + msg + `","type":"invalid_request_error","param":null,"code":"context_length_exceeded"}}`
	if status != 400 || string(body) != want {
		t.Errorf("ErrorBody = %d %s\nwant 400 %s", status, body, want)
	}
	_, body = ErrorBody(400, "invalid_request_error", "input length and `max_tokens` exceed context limit: 190000 + 32000 > 200000")
	if !strings.Contains(string(body), `"code":"context_length_exceeded"`) {
		t.Errorf("second overflow form: %s", body)
	}
	// In a stream: response.failed with the same code, so Codex compacts.
	var w strings.Builder
	e := NewEncoder(Info{Created: testTime})
	feedEvents(t, e, &w, msgStart("msg_c"))
	_ = e.Fail(&w, "invalid_request_error", msg)
	resp := terminalResponse(t, w.String())
	if code := resp["error"].(map[string]any)["code"]; code != "context_length_exceeded" {
		t.Errorf("failed code = %v", code)
	}
}

func TestDecode_CacheBreakpointsWithinLimit(t *testing.T) {
	// The proxy adds breakpoints to every converted request; a decoded
	// multi-turn request takes them on the stable prefix, never more than 4.
	body := loadFixture(t, "codex_request.json")
	req, _ := decode(t, body)
	req.AddCacheBreakpoints()
	if n := req.Breakpoints(); n < 3 || n > anthropic.MaxBreakpoints {
		t.Errorf("%d breakpoints, want 3 or 4", n)
	}
	if req.Tools[len(req.Tools)-1].CacheControl == nil || req.System[len(req.System)-1].CacheControl == nil {
		t.Error("the last tool and the last system block should be breakpoints")
	}
	mustValidate(t, req)
}

func TestErrorBody_RetryableStatusesKept(t *testing.T) {
	tests := []struct {
		status           int
		typ              string
		wantStatus       int
		wantType, wantCd string
	}{
		{429, "rate_limit_error", 429, "rate_limit_error", "rate_limit_exceeded"},
		{529, "overloaded_error", 503, "server_error", "overloaded"},
		{503, "overloaded_error", 503, "server_error", "overloaded"},
		{500, "api_error", 500, "server_error", ""},
		{502, "api_error", 502, "server_error", ""},
		{504, "timeout_error", 504, "server_error", "timeout"},
		{401, "authentication_error", 401, "invalid_request_error", "invalid_api_key"}, // as OpenAI answers a bad key
		{402, "billing_error", 402, "insufficient_quota", "insufficient_quota"},
		{403, "permission_error", 403, "permission_error", ""},
		{409, "conflict_error", 409, "invalid_request_error", "conflict"},
		{404, "not_found_error", 404, "invalid_request_error", "model_not_found"},
		{413, "request_too_large", 413, "invalid_request_error", "request_too_large"},
		{400, "invalid_request_error", 400, "invalid_request_error", ""},
		{418, "teapot_error", 418, "invalid_request_error", ""},
		{599, "new_error", 599, "server_error", ""},
	}
	for _, tt := range tests {
		msg := "message"
		if tt.status == 404 {
			msg = "model: claude-nope"
		}
		status, body := ErrorBody(tt.status, tt.typ, msg)
		var got struct {
			Error struct {
				Message string  `json:"message"`
				Type    string  `json:"type"`
				Code    *string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		code := ""
		if got.Error.Code != nil {
			code = *got.Error.Code
		}
		if status != tt.wantStatus || got.Error.Type != tt.wantType || code != tt.wantCd || got.Error.Message != msg {
			t.Errorf("ErrorBody(%d, %s) = %d %s", tt.status, tt.typ, status, body)
		}
	}
}

func TestEncoder_RefusalIsContentFilter(t *testing.T) {
	up := sseOf(concat(msgStart("msg_r"), textBlockEvents(0, "I can't help"), msgStop("refusal", 4))...)
	stream := translate(t, Info{Created: testTime}, up)
	evs := parseStream(t, stream)
	term := checkSequence(t, evs)
	if term.Name != "response.incomplete" {
		t.Fatalf("terminal = %s", term.Name)
	}
	resp := term.Data["response"].(map[string]any)
	if diff := cmp.Diff(map[string]any{"reason": "content_filter"}, resp["incomplete_details"]); diff != "" || resp["status"] != "incomplete" {
		t.Errorf("status %v, incomplete_details (-want +got):\n%s", resp["status"], diff)
	}
	var acc anthropic.Accumulator
	feed(t, &acc, up)
	raw, _ := Result(&acc, Info{Created: testTime})
	if !strings.Contains(string(raw), `"status":"incomplete","background":false,"error":null,"incomplete_details":{"reason":"content_filter"}`) {
		t.Errorf("Result = %s", raw)
	}
}

func TestEncoder_PauseTurnIsNotAToolCall(t *testing.T) {
	up := sseOf(concat(msgStart("msg_pause"),
		[]string{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}}`,
			"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"query\":\"x\"}"}}`,
			"content_block_stop", `{"type":"content_block_stop","index":0}`},
		msgStop("pause_turn", 5))...)
	resp := terminalResponse(t, translate(t, Info{Created: testTime}, up))
	if resp["status"] != "completed" || len(outputItems(resp)) != 0 {
		t.Errorf("status %v, output %v: want completed with no tool call", resp["status"], resp["output"])
	}
}

package openai

// One test per conversion rule that applies to Chat Completions, each named
// after its rule. Where the proxy's driver does part of the work (frames
// split across reads, keep-alives during silence, streams that end in an
// error or break off, cache breakpoints, retry headers, unbuffered SSE),
// this file tests this package's part and proxy/chat_test.go the rest,
// through the gateway.

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw/proxy/anthropic"
)

func TestDecodeChat_EmptyTextDropped(t *testing.T) {
	req, _ := decode(t, `{"model":"claude-sonnet-4-5","messages":[
		{"role":"system","content":""},
		{"role":"user","content":[{"type":"text","text":""},{"type":"text","text":"Hi"}]},
		{"role":"assistant","content":""},
		{"role":"user","content":""},
		{"role":"user","content":[{"type":"text","text":""}]},
		{"role":"assistant","content":"Hello"},
		{"role":"user","content":"Again"}]}`)
	want := `[{"role":"user","content":[{"type":"text","text":"Hi"}]},
		{"role":"assistant","content":[{"type":"text","text":"Hello"}]},
		{"role":"user","content":[{"type":"text","text":"Again"}]}]`
	wantField(t, req, "messages", want)
	if req.System != nil {
		t.Errorf("system = %+v, want none (empty system text dropped)", req.System)
	}

	// Everything empty: a placeholder user turn keeps the request valid.
	req, _ = decode(t, `{"model":"m","messages":[{"role":"user","content":""},{"role":"user","content":[]}]}`)
	wantField(t, req, "messages", `[{"role":"user","content":[{"type":"text","text":"Continue."}]}]`)
}

func TestDecodeChat_ToolCallsWithEmptyContentOnlyToolUse(t *testing.T) {
	for _, content := range []string{`null`, `""`, `[]`, `[{"type":"text","text":""}]`} {
		req, _ := decode(t, `{"model":"m","messages":[{"role":"user","content":"go"},
			{"role":"assistant","content":`+content+`,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},
			{"role":"tool","tool_call_id":"call_1","content":"ok"}]}`)
		wantField(t, req, "messages.1.content", `[{"type":"tool_use","id":"call_1","name":"f","input":{}}]`)
	}
}

func TestDecodeChat_SystemAndDeveloperHoisted(t *testing.T) {
	req, _ := decode(t, `{"model":"m","messages":[
		{"role":"system","content":"One."},
		{"role":"user","content":"Hi"},
		{"role":"developer","content":[{"type":"text","text":"Two."},{"type":"text","text":"Three."}]},
		{"role":"assistant","content":"Yes"},
		{"role":"system","content":"Four."},
		{"role":"user","content":"Ok"}]}`)
	wantField(t, req, "system", `[{"type":"text","text":"One."},{"type":"text","text":"Two."},{"type":"text","text":"Three."},{"type":"text","text":"Four."}]`)
	wantField(t, req, "messages", `[{"role":"user","content":[{"type":"text","text":"Hi"}]},
		{"role":"assistant","content":[{"type":"text","text":"Yes"}]},
		{"role":"user","content":[{"type":"text","text":"Ok"}]}]`)
}

func TestDecodeChat_OnlySystemGetsPlaceholderTurn(t *testing.T) {
	req, _ := decode(t, `{"model":"m","messages":[{"role":"system","content":"Write a haiku about Go."}]}`)
	wantField(t, req, "messages", `[{"role":"user","content":[{"type":"text","text":"Continue."}]}]`)
	wantField(t, req, "system", `[{"type":"text","text":"Write a haiku about Go."}]`)
}

func TestDecodeChat_SameRoleTurnsMerged(t *testing.T) {
	req, _ := decode(t, `{"model":"m","messages":[
		{"role":"user","content":"a"},{"role":"user","content":"b"},
		{"role":"assistant","content":null,"tool_calls":[
			{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}},
			{"id":"c2","type":"function","function":{"name":"f","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"c1","content":"r1"},
		{"role":"tool","tool_call_id":"c2","content":"r2"},
		{"role":"assistant","content":"x"},{"role":"assistant","content":"y"},
		{"role":"user","content":"z"}]}`)
	wantField(t, req, "messages", `[
		{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
		{"role":"assistant","content":[{"type":"tool_use","id":"c1","name":"f","input":{}},{"type":"tool_use","id":"c2","name":"f","input":{}}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"c1","content":"r1"},{"type":"tool_result","tool_use_id":"c2","content":"r2"}]},
		{"role":"assistant","content":[{"type":"text","text":"x"},{"type":"text","text":"y"}]},
		{"role":"user","content":[{"type":"text","text":"z"}]}]`)
}

func TestDecodeChat_ToolResultsBeforeText(t *testing.T) {
	req, _ := decode(t, `{"model":"m","messages":[{"role":"user","content":"go"},
		{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}},{"id":"c2","type":"function","function":{"name":"f","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"c2","content":"second"},
		{"role":"user","content":"note in between"},
		{"role":"tool","tool_call_id":"c1","content":"first"}]}`)
	wantField(t, req, "messages.2.content", `[
		{"type":"tool_result","tool_use_id":"c1","content":"first"},
		{"type":"tool_result","tool_use_id":"c2","content":"second"},
		{"type":"text","text":"note in between"}]`)
}

func TestDecodeChat_ToolResultArrayContent(t *testing.T) {
	req, _ := decode(t, `{"model":"m","messages":[{"role":"user","content":"go"},
		{"role":"assistant","tool_calls":[
			{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}},
			{"id":"c2","type":"function","function":{"name":"f","arguments":"{}"}},
			{"id":"c3","type":"function","function":{"name":"f","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"c1","content":[{"type":"text","text":"only text"}]},
		{"role":"tool","tool_call_id":"c2","content":["bare", {"type":"text","text":"and a part"}]},
		{"role":"tool","tool_call_id":"c3","content":[{"type":"text","text":"see"},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}`)
	wantField(t, req, "messages.2.content", `[
		{"type":"tool_result","tool_use_id":"c1","content":"only text"},
		{"type":"tool_result","tool_use_id":"c2","content":[{"type":"text","text":"bare"},{"type":"text","text":"and a part"}]},
		{"type":"tool_result","tool_use_id":"c3","content":[{"type":"text","text":"see"},{"type":"image","source":{"type":"url","url":"https://example.com/a.png"}}]}]`)
}

func TestDecodeChat_DuplicateToolResultKeepsLast(t *testing.T) {
	req, _ := decode(t, `{"model":"m","messages":[{"role":"user","content":"go"},
		{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"c1","content":"old"},
		{"role":"tool","tool_call_id":"c1","content":"new"}]}`)
	wantField(t, req, "messages.2.content", `[{"type":"tool_result","tool_use_id":"c1","content":"new"}]`)
}

func TestDecodeChat_MissingAndOrphanToolResults(t *testing.T) {
	req, _ := decode(t, `{"model":"m","messages":[{"role":"user","content":"go"},
		{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}},{"id":"c2","type":"function","function":{"name":"f","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"c2","content":"two"},
		{"role":"tool","tool_call_id":"gone","content":"from truncated history"},
		{"role":"user","content":"what now?"}]}`)
	wantField(t, req, "messages.2.content", `[
		{"type":"tool_result","tool_use_id":"c1","is_error":true,"content":"interrupted: no result was sent for this tool call"},
		{"type":"tool_result","tool_use_id":"c2","content":"two"},
		{"type":"text","text":"Result of tool call gone:\nfrom truncated history"},
		{"type":"text","text":"what now?"}]`)

	// An empty orphan result between two assistant turns vanishes, and the
	// assistant turns merge.
	req, _ = decode(t, `{"model":"m","messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"},
		{"role":"tool","tool_call_id":"x","content":""},{"role":"assistant","content":"b"},{"role":"user","content":"c"}]}`)
	wantField(t, req, "messages", `[{"role":"user","content":[{"type":"text","text":"q"}]},
		{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
		{"role":"user","content":[{"type":"text","text":"c"}]}]`)

	// An orphan result at the very start of the conversation.
	req, _ = decode(t, `{"model":"m","messages":[{"role":"tool","tool_call_id":"x","content":"early"},{"role":"user","content":"hi"}]}`)
	wantField(t, req, "messages", `[{"role":"user","content":[{"type":"text","text":"Result of tool call x:\nearly"},{"type":"text","text":"hi"}]}]`)
}

func TestDecodeChat_ToolCallIDSanitized(t *testing.T) {
	req, _ := decode(t, `{"model":"m","messages":[{"role":"user","content":"go"},
		{"role":"assistant","tool_calls":[
			{"id":"functions.get weather:0","type":"function","function":{"name":"f","arguments":"{}"}},
			{"id":"","type":"function","function":{"name":"f","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"functions.get weather:0","content":"a"},
		{"role":"tool","content":"b"}]}`)
	wantField(t, req, "messages.1.content", `[
		{"type":"tool_use","id":"functions_get_weather_0","name":"f","input":{}},
		{"type":"tool_use","id":"toolu_llmgw_1","name":"f","input":{}}]`)
	wantField(t, req, "messages.2.content", `[
		{"type":"tool_result","tool_use_id":"functions_get_weather_0","content":"a"},
		{"type":"tool_result","tool_use_id":"toolu_llmgw_1","content":"b"}]`)
}

func TestDecodeChat_ToolCallIDsReusedAcrossTurns(t *testing.T) {
	// Kimi numbers tool call ids per turn, so the same id comes back.
	req, _ := decode(t, `{"model":"m","messages":[{"role":"user","content":"go"},
		{"role":"assistant","tool_calls":[{"id":"functions.f:0","type":"function","function":{"name":"f","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"functions.f:0","content":"one"},
		{"role":"assistant","tool_calls":[{"id":"functions.f:0","type":"function","function":{"name":"f","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"functions.f:0","content":"two"}]}`)
	wantField(t, req, "messages.1.content.0.id", `"functions_f_0"`)
	wantField(t, req, "messages.2.content.0.tool_use_id", `"functions_f_0"`)
	wantField(t, req, "messages.3.content.0.id", `"functions_f_0_2"`)
	wantField(t, req, "messages.4.content", `[{"type":"tool_result","tool_use_id":"functions_f_0_2","content":"two"}]`)
}

func TestRoundTrip_ToolNameSanitizedAndRestored(t *testing.T) {
	long := strings.Repeat("x", 140)
	req, info := decode(t, `{"model":"m","stream":true,"messages":[{"role":"user","content":"go"},
		{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"mcp.server/read file","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"c1","content":"ok"}],
		"tools":[{"type":"function","function":{"name":"mcp.server/read file"}},{"type":"function","function":{"name":"`+long+`"}}],
		"tool_choice":{"type":"function","function":{"name":"mcp.server/read file"}}}`)
	wantField(t, req, "tools.0.name", `"mcp_server_read_file"`)
	wantField(t, req, "messages.1.content.0.name", `"mcp_server_read_file"`)
	wantField(t, req, "tool_choice.name", `"mcp_server_read_file"`)
	if n := len(req.Tools[1].Name); n != 128 {
		t.Errorf("long tool name sent with %d characters, want 128", n)
	}

	// Responses carry the client's names again, streamed and whole.
	up := new(sseBuilder).start("").tool(0, "toolu_1", "mcp_server_read_file", `{}`).tool(1, "toolu_2", req.Tools[1].Name, `{}`).stop("tool_use", "").String()
	var names []string
	for _, d := range deltas(t, runStream(t, info, up)) {
		if tc, ok := d["tool_calls"].([]any); ok {
			if n, ok := tc[0].(map[string]any)["function"].(map[string]any)["name"].(string); ok {
				names = append(names, n)
			}
		}
	}
	if diff := cmp.Diff([]string{"mcp.server/read file", long}, names); diff != "" {
		t.Errorf("streamed tool names (-want +got):\n%s", diff)
	}
	out, err := ChatResult(accumulate(t, up), info)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Choices []struct {
			Message struct {
				ToolCalls []struct{ Function struct{ Name string } } `json:"tool_calls"`
			}
		}
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	if got := res.Choices[0].Message.ToolCalls[0].Function.Name; got != "mcp.server/read file" {
		t.Errorf("result tool name = %q", got)
	}
}

func TestDecodeChat_ArgumentsNotAnObjectBecomeEmpty(t *testing.T) {
	for _, args := range []string{`""`, `"not json"`, `"[1,2]"`, `"\"a string\""`, `"42"`, `null`, `[1]`} {
		req, _ := decode(t, `{"model":"m","messages":[{"role":"user","content":"go"},
			{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":`+args+`}}]},
			{"role":"tool","tool_call_id":"c1","content":"ok"}]}`)
		wantField(t, req, "messages.1.content.0.input", `{}`)
	}
	// An object sent as an object (not a string) is taken as is.
	req, _ := decode(t, `{"model":"m","messages":[{"role":"user","content":"go"},
		{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":{"a": 1}}}]},
		{"role":"tool","tool_call_id":"c1","content":"ok"}]}`)
	wantField(t, req, "messages.1.content.0.input", `{"a":1}`)
}

func TestChatEncoder_ToolArgumentFragmentsAndEmpty(t *testing.T) {
	up := new(sseBuilder).start("").
		tool(0, "toolu_a", "search", "", `{"q":`, "", `"go"}`).
		tool(1, "toolu_b", "now").
		stop("tool_use", "").String()
	var args []string
	for _, d := range deltas(t, runStream(t, ChatInfo{Model: "m"}, up)) {
		if tc, ok := d["tool_calls"].([]any); ok {
			c := tc[0].(map[string]any)
			args = append(args, itoa(int(c["index"].(float64)))+":"+c["function"].(map[string]any)["arguments"].(string))
		}
	}
	want := []string{`0:`, `0:{"q":`, `0:"go"}`, `1:`, `1:{}`}
	if diff := cmp.Diff(want, args); diff != "" {
		t.Errorf("argument fragments (-want +got):\n%s", diff)
	}
}

func TestChatEncoder_ToolCallIndexIsOrdinal(t *testing.T) {
	up := new(sseBuilder).start("").
		thinking(0, "hmm", "sig").
		text(1, "Calling two tools.").
		tool(2, "toolu_a", "a", `{}`).
		tool(3, "toolu_b", "b", `{}`).
		stop("tool_use", "").String()
	var first []map[string]any
	for _, d := range deltas(t, runStream(t, ChatInfo{Model: "m"}, up)) {
		if tc, ok := d["tool_calls"].([]any); ok {
			if c := tc[0].(map[string]any); c["id"] != nil {
				first = append(first, c)
			}
		}
	}
	want := asJSON(t, `[
		{"index":0,"id":"toolu_a","type":"function","function":{"name":"a","arguments":""}},
		{"index":1,"id":"toolu_b","type":"function","function":{"name":"b","arguments":""}}]`)
	if diff := cmp.Diff(want, asJSON(t, first)); diff != "" {
		t.Errorf("first tool call fragments (-want +got):\n%s", diff)
	}
}

func TestDecodeChat_MaxTokensDefaultAndCompletionTokens(t *testing.T) {
	tests := []struct {
		body string
		want int
	}{
		{`{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"x"}]}`, 32000},
		{`{"model":"claude-3-5-haiku-latest","messages":[{"role":"user","content":"x"}]}`, 8192},
		{`{"model":"claude-next-gen","messages":[{"role":"user","content":"x"}]}`, 8192},
		{`{"model":"claude-sonnet-4-5","max_completion_tokens":777,"messages":[{"role":"user","content":"x"}]}`, 777},
		{`{"model":"claude-sonnet-4-5","max_tokens":555,"messages":[{"role":"user","content":"x"}]}`, 555},
		{`{"model":"claude-sonnet-4-5","max_tokens":555,"max_completion_tokens":777,"messages":[{"role":"user","content":"x"}]}`, 777},
	}
	for _, tt := range tests {
		req, _ := decode(t, tt.body)
		if req.MaxTokens != tt.want {
			t.Errorf("max_tokens = %d, want %d for %s", req.MaxTokens, tt.want, tt.body)
		}
	}
}

func TestDecodeChat_MaxTokensClampedToModelCap(t *testing.T) {
	req, _ := decode(t, `{"model":"claude-3-5-haiku-20241022","max_tokens":100000,"messages":[{"role":"user","content":"x"}]}`)
	if req.MaxTokens != 8192 {
		t.Errorf("max_tokens = %d, want the cap 8192", req.MaxTokens)
	}
	req, _ = decode(t, `{"model":"claude-unknown-7","max_tokens":100000,"messages":[{"role":"user","content":"x"}]}`)
	if req.MaxTokens != 100000 {
		t.Errorf("max_tokens = %d, want 100000 unclamped for an unknown model", req.MaxTokens)
	}
}

func TestDecodeChat_ThinkingBudgetFitsMaxTokens(t *testing.T) {
	tests := []struct {
		body              string
		budget, maxTokens int
	}{
		// budget above max_tokens: max_tokens raised above the budget
		{`{"model":"claude-sonnet-4-5","max_tokens":1000,"reasoning_effort":"medium","messages":[{"role":"user","content":"x"}]}`, 8192, 8192 + 4096},
		// minimal maps to the 1024 minimum
		{`{"model":"claude-sonnet-4-5","max_tokens":20000,"reasoning_effort":"minimal","messages":[{"role":"user","content":"x"}]}`, 1024, 20000},
		// the largest effort fits under a 64k cap as is
		{`{"model":"claude-3-7-sonnet-latest","max_tokens":64000,"reasoning_effort":"max","messages":[{"role":"user","content":"x"}]}`, 32768, 64000},
		// Anthropic's own thinking object, budget below the minimum
		{`{"model":"claude-sonnet-4-5","max_tokens":4000,"thinking":{"type":"enabled","budget_tokens":100},"messages":[{"role":"user","content":"x"}]}`, 1024, 4000},
		// none: no thinking
		{`{"model":"claude-sonnet-4-5","max_tokens":4000,"reasoning_effort":"none","messages":[{"role":"user","content":"x"}]}`, 0, 4000},
		// a model whose cap is below the budget: the budget shrinks under it
		{`{"model":"claude-opus-4-1","max_tokens":40000,"reasoning_effort":"max","messages":[{"role":"user","content":"x"}]}`, 32000 - 1024, 32000},
		// a model without extended thinking: none
		{`{"model":"claude-3-5-sonnet-20241022","reasoning_effort":"high","messages":[{"role":"user","content":"x"}]}`, 0, 8192},
		{`{"model":"claude-3-opus-20240229","reasoning_effort":"high","messages":[{"role":"user","content":"x"}]}`, 0, 4096},
	}
	for _, tt := range tests {
		req, _ := decode(t, tt.body)
		budget := 0
		if req.Thinking != nil {
			budget = req.Thinking.BudgetTokens
		}
		if budget != tt.budget || req.MaxTokens != tt.maxTokens {
			t.Errorf("budget %d, max_tokens %d; want %d, %d for %s", budget, req.MaxTokens, tt.budget, tt.maxTokens, tt.body)
		}
		if budget > 0 && (budget < 1024 || budget >= req.MaxTokens) {
			t.Errorf("budget %d breaks Anthropic's rules with max_tokens %d", budget, req.MaxTokens)
		}
	}
}

func TestDecodeChat_ThinkingDropsSampling(t *testing.T) {
	req, _ := decode(t, `{"model":"claude-sonnet-4-5","reasoning_effort":"low","temperature":0.3,"top_k":40,"messages":[{"role":"user","content":"x"}]}`)
	if req.Thinking == nil || req.Temperature != nil || req.TopK != nil {
		t.Errorf("thinking %+v, temperature %v, top_k %v: want thinking on, both dropped", req.Thinking, req.Temperature, req.TopK)
	}
	req, _ = decode(t, `{"model":"claude-sonnet-4-5","reasoning_effort":"low","temperature":1,"messages":[{"role":"user","content":"x"}]}`)
	if req.Temperature == nil || *req.Temperature != 1 {
		t.Errorf("temperature %v: 1 is allowed with thinking", req.Temperature)
	}
	req, _ = decode(t, `{"model":"claude-sonnet-4-5","reasoning_effort":"low","top_p":0.5,"messages":[{"role":"user","content":"x"}]}`)
	if req.TopP != nil {
		t.Errorf("top_p %v: below 0.95 must be dropped with thinking", *req.TopP)
	}
	req, _ = decode(t, `{"model":"claude-sonnet-4-5","reasoning_effort":"low","top_p":0.97,"messages":[{"role":"user","content":"x"}]}`)
	if req.TopP == nil || *req.TopP != 0.97 {
		t.Errorf("top_p %v: 0.95..1 is allowed with thinking", req.TopP)
	}
	// Without thinking, top_k stays.
	req, _ = decode(t, `{"model":"claude-sonnet-4-5","top_k":40,"messages":[{"role":"user","content":"x"}]}`)
	if req.TopK == nil || *req.TopK != 40 {
		t.Errorf("top_k %v, want 40", req.TopK)
	}
}

func TestDecodeChat_TemperatureWinsOverTopP(t *testing.T) {
	req, _ := decode(t, `{"model":"m","temperature":0.7,"top_p":0.9,"messages":[{"role":"user","content":"x"}]}`)
	if req.Temperature == nil || *req.Temperature != 0.7 || req.TopP != nil {
		t.Errorf("temperature %v, top_p %v: want temperature only", req.Temperature, req.TopP)
	}
	req, _ = decode(t, `{"model":"m","top_p":0.9,"messages":[{"role":"user","content":"x"}]}`)
	if req.TopP == nil || *req.TopP != 0.9 {
		t.Errorf("top_p %v: alone it stays", req.TopP)
	}
}

func TestDecodeChat_TemperatureClamped(t *testing.T) {
	for body, want := range map[string]float64{
		`{"model":"m","temperature":1.7,"messages":[{"role":"user","content":"x"}]}`:  1,
		`{"model":"m","temperature":2,"messages":[{"role":"user","content":"x"}]}`:    1,
		`{"model":"m","temperature":-0.5,"messages":[{"role":"user","content":"x"}]}`: 0,
		`{"model":"m","temperature":0.5,"messages":[{"role":"user","content":"x"}]}`:  0.5,
	} {
		req, _ := decode(t, body)
		if req.Temperature == nil || *req.Temperature != want {
			t.Errorf("temperature %v, want %v for %s", req.Temperature, want, body)
		}
	}
}

func TestDecodeChat_ForcedToolChoiceTurnsThinkingOff(t *testing.T) {
	// Anthropic refuses thinking with forced tool use; the forced tool is
	// what the client parses, so it stays and thinking goes.
	for choice, want := range map[string]string{
		`"required"`: `{"type":"any","disable_parallel_tool_use":true}`,
		`{"type":"function","function":{"name":"f"}}`: `{"type":"tool","name":"f","disable_parallel_tool_use":true}`,
	} {
		req, _ := decode(t, `{"model":"claude-sonnet-4-5","reasoning_effort":"high","temperature":0.2,"parallel_tool_calls":false,
			"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":`+choice+`,"messages":[{"role":"user","content":"x"}]}`)
		if req.Thinking != nil {
			t.Errorf("thinking = %+v, want off with tool_choice %s", req.Thinking, choice)
		}
		wantField(t, req, "tool_choice", want)
		if req.Temperature == nil || *req.Temperature != 0.2 {
			t.Errorf("temperature = %v: with thinking off it must stay", req.Temperature)
		}
	}
}

func TestRoundTrip_ThinkingBlocks(t *testing.T) {
	// Out: reasoning_content deltas, then the signed block to send back.
	up := new(sseBuilder).start("").thinking(0, "Let me think.", "c2lnbmF0dXJl+/=").tool(1, "toolu_1", "f", `{}`).stop("tool_use", "").String()
	var reasoning string
	var blocks []any
	for _, d := range deltas(t, runStream(t, ChatInfo{Model: "m"}, up)) {
		if r, ok := d["reasoning_content"].(string); ok {
			reasoning += r
		}
		if tb, ok := d["thinking_blocks"].([]any); ok {
			blocks = append(blocks, tb...)
		}
	}
	if reasoning != "Let me think." {
		t.Errorf("reasoning_content = %q", reasoning)
	}
	wantBlock := `{"type":"thinking","thinking":"Let me think.","signature":"c2lnbmF0dXJl+/="}`
	if diff := cmp.Diff(asJSON(t, "["+wantBlock+"]"), asJSON(t, blocks)); diff != "" {
		t.Errorf("thinking_blocks (-want +got):\n%s", diff)
	}

	// Back in: the signed block leads the assistant turn, and thinking stays on.
	req, _ := decode(t, `{"model":"claude-sonnet-4-5","reasoning_effort":"low","messages":[{"role":"user","content":"go"},
		{"role":"assistant","content":null,"reasoning_content":"Let me think.","thinking_blocks":[`+wantBlock+`],
		 "tool_calls":[{"id":"toolu_1","type":"function","function":{"name":"f","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"toolu_1","content":"ok"}]}`)
	wantField(t, req, "messages.1.content.0", wantBlock)
	if req.Thinking == nil {
		t.Error("thinking turned off although the tool loop carries signed thinking")
	}

	// The streaming convention (empty text, signature only) is completed
	// from reasoning_content.
	req, _ = decode(t, `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"go"},
		{"role":"assistant","content":"done","reasoning_content":"Let me think.","thinking_blocks":[{"type":"thinking","thinking":"","signature":"sig"}]},
		{"role":"user","content":"more"}]}`)
	wantField(t, req, "messages.1.content.0", `{"type":"thinking","thinking":"Let me think.","signature":"sig"}`)

	// A client that dropped the thinking: thinking off for this turn
	// instead of a 400 from Anthropic.
	req, _ = decode(t, `{"model":"claude-sonnet-4-5","reasoning_effort":"low","temperature":0.2,"messages":[{"role":"user","content":"go"},
		{"role":"assistant","content":null,"tool_calls":[{"id":"toolu_1","type":"function","function":{"name":"f","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"toolu_1","content":"ok"}]}`)
	if req.Thinking != nil {
		t.Errorf("thinking = %+v, want off: the tool loop has no signed thinking", req.Thinking)
	}
	if req.Temperature == nil || *req.Temperature != 0.2 {
		t.Errorf("temperature = %v: with thinking off it must stay", req.Temperature)
	}
}

func TestRoundTrip_UnsignedThinkingDroppedSignatureKept(t *testing.T) {
	sig := `EqQBCkgIARABGAIiQL+/ab=="with \"quotes\" & <html>`
	q, _ := json.Marshal(sig)
	req, _ := decode(t, `{"model":"m","messages":[{"role":"user","content":"go"},
		{"role":"assistant","content":"answer","reasoning_content":"unsigned musing",
		 "thinking_blocks":[{"type":"thinking","thinking":"no signature"},{"type":"thinking","thinking":"  spaced  text  ","signature":`+string(q)+`},{"type":"redacted_thinking","data":"opaque=="}]},
		{"role":"user","content":"more"}]}`)
	got := req.Messages[1].Content
	want := []anthropic.ContentBlock{
		{Type: "thinking", Thinking: "  spaced  text  ", Signature: sig},
		{Type: "redacted_thinking", Data: "opaque=="},
		{Type: "text", Text: "answer"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("assistant content (-want +got):\n%s", diff)
	}
	// Never altered on the way out either, HTML characters included.
	up := new(sseBuilder).start("").thinking(0, "a <b> & c", sig).stop("end_turn", "").String()
	out, err := ChatResult(accumulate(t, up), ChatInfo{Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Choices []struct {
			Message struct {
				ThinkingBlocks []thinkingBlock `json:"thinking_blocks"`
			}
		}
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	if tb := res.Choices[0].Message.ThinkingBlocks; len(tb) != 1 || tb[0].Signature != sig || tb[0].Thinking != "a <b> & c" {
		t.Errorf("thinking_blocks = %+v", tb)
	}
}

func TestDecodeChat_BlankStopSequencesDropped(t *testing.T) {
	req, _ := decode(t, `{"model":"m","stop":["\n",""," ","END","\t\n","<|im_end|>"],"messages":[{"role":"user","content":"x"}]}`)
	if diff := cmp.Diff([]string{"END", "<|im_end|>"}, req.StopSequences); diff != "" {
		t.Errorf("stop_sequences (-want +got):\n%s", diff)
	}
	req, _ = decode(t, `{"model":"m","stop":"\n","messages":[{"role":"user","content":"x"}]}`)
	if req.StopSequences != nil {
		t.Errorf("stop_sequences = %q, want none", req.StopSequences)
	}
}

func TestDecodeChat_NGreaterThanOneRefused(t *testing.T) {
	re := decodeErr(t, `{"model":"m","n":3,"messages":[{"role":"user","content":"x"}]}`)
	if re.Param != "n" || !strings.Contains(re.Message, "must be 1") {
		t.Errorf("error = %+v", re)
	}
	decode(t, `{"model":"m","n":1,"messages":[{"role":"user","content":"x"}]}`)
}

func TestChatEncoder_IncludeUsage(t *testing.T) {
	up := new(sseBuilder).start(`{"input_tokens":10,"output_tokens":1}`).text(0, "Hi").stop("end_turn", `{"output_tokens":3}`).String()

	with := chunks(t, runStream(t, ChatInfo{Model: "m", Stream: true, IncludeUsage: true}, up))
	for i, c := range with[:len(with)-1] {
		if u, ok := c["usage"]; !ok || u != nil {
			t.Errorf("chunk %d usage = %v (present %v), want null", i, u, ok)
		}
	}
	last := with[len(with)-1]
	if diff := cmp.Diff(asJSON(t, `{"id":"chatcmpl-01TEST","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[],
		"usage":{"prompt_tokens":10,"completion_tokens":3,"total_tokens":13,"prompt_tokens_details":{"cached_tokens":0,"cache_write_tokens":0}}}`), any(last)); diff != "" {
		t.Errorf("usage chunk (-want +got):\n%s", diff)
	}
	if f := frames(t, runStream(t, ChatInfo{Model: "m", IncludeUsage: true}, up)); f[len(f)-1] != "[DONE]" {
		t.Errorf("last frame %q, want [DONE] after the usage chunk", f[len(f)-1])
	}

	without := chunks(t, runStream(t, ChatInfo{Model: "m", Stream: true}, up))
	for i, c := range without {
		if _, ok := c["usage"]; ok {
			t.Errorf("chunk %d has usage without include_usage", i)
		}
	}
}

func TestChatEncoder_PromptTokensIncludeCache(t *testing.T) {
	up := new(sseBuilder).start(`{"input_tokens":5,"cache_read_input_tokens":2000,"cache_creation_input_tokens":300,"output_tokens":1}`).
		text(0, "Hi").stop("end_turn", `{"input_tokens":5,"cache_read_input_tokens":2000,"cache_creation_input_tokens":300,"output_tokens":40}`).String()
	want := asJSON(t, `{"prompt_tokens":2305,"completion_tokens":40,"total_tokens":2345,"prompt_tokens_details":{"cached_tokens":2000,"cache_write_tokens":300}}`)

	c := chunks(t, runStream(t, ChatInfo{Model: "m", IncludeUsage: true}, up))
	if diff := cmp.Diff(want, c[len(c)-1]["usage"]); diff != "" {
		t.Errorf("stream usage (-want +got):\n%s", diff)
	}
	out, err := ChatResult(accumulate(t, up), ChatInfo{Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, asJSON(t, out).(map[string]any)["usage"]); diff != "" {
		t.Errorf("result usage (-want +got):\n%s", diff)
	}
}

func TestChatEncoder_CumulativeUsageNotSummed(t *testing.T) {
	b := new(sseBuilder).start(`{"input_tokens":50,"cache_read_input_tokens":10,"output_tokens":1}`).text(0, "Hi")
	b.ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":null},"usage":{"output_tokens":7}}`)
	up := b.stop("end_turn", `{"output_tokens":12}`).String()
	c := chunks(t, runStream(t, ChatInfo{Model: "m", IncludeUsage: true}, up))
	want := asJSON(t, `{"prompt_tokens":60,"completion_tokens":12,"total_tokens":72,"prompt_tokens_details":{"cached_tokens":10,"cache_write_tokens":0}}`)
	if diff := cmp.Diff(want, c[len(c)-1]["usage"]); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
}

func TestChatEncoder_MultibyteTextIntact(t *testing.T) {
	// The proxy's SSE reader hands over whole frames; the encoder must keep
	// every byte of multi-byte text and never HTML-escape it.
	up := new(sseBuilder).start("").text(0, "héllo ", "世界 ", "🙂 <b>&</b>").stop("end_turn", "").String()
	var text string
	for _, d := range deltas(t, runStream(t, ChatInfo{Model: "m"}, up)) {
		if s, ok := d["content"].(string); ok {
			text += s
		}
	}
	if text != "héllo 世界 🙂 <b>&</b>" {
		t.Errorf("text = %q", text)
	}
	if out := runStream(t, ChatInfo{Model: "m"}, up); strings.Contains(out, `\u003c`) {
		t.Errorf("HTML escaped in %s", out)
	}
}

func TestChatEncoder_PingIsComment(t *testing.T) {
	b := new(sseBuilder).start("")
	b.ev("ping", `{"type":"ping"}`)
	up := b.text(0, "Hi").stop("end_turn", "").String()
	out := runStream(t, ChatInfo{Model: "m"}, up)
	if !strings.Contains(out, "\n\n: ping\n\n") {
		t.Errorf("no ping comment in %q", out)
	}
	if strings.Contains(out, "event:") {
		t.Errorf("event lines in an OpenAI stream: %q", out)
	}
}

func TestChatEncoder_MidStreamErrorEndsWithErrorFrame(t *testing.T) {
	b := new(sseBuilder).start("")
	b.ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	b.ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Par"}}`)
	b.ev("error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
	out := runStream(t, ChatInfo{Model: "m", IncludeUsage: true}, b.String())
	f := frames(t, out)
	if diff := cmp.Diff(asJSON(t, `{"error":{"message":"Overloaded","type":"server_error","param":null,"code":"overloaded"}}`), asJSON(t, f[len(f)-1])); diff != "" {
		t.Errorf("last frame (-want +got):\n%s", diff)
	}
	if strings.Contains(out, "[DONE]") || strings.Contains(out, `"finish_reason":"`) {
		t.Errorf("a failed stream must not look finished:\n%s", out)
	}

	// The encoder handles an error event itself too, and ignores what follows.
	enc := NewChatEncoder(ChatInfo{Model: "m"})
	var w strings.Builder
	if err := enc.Event(&w, "error", []byte(`{"type":"error","error":{"type":"api_error","message":"boom"}}`)); err != nil {
		t.Fatal(err)
	}
	_ = enc.Event(&w, "message_stop", []byte(`{"type":"message_stop"}`))
	if got := w.String(); got != `data: {"error":{"message":"boom","type":"server_error","param":null,"code":null}}`+"\n\n" {
		t.Errorf("stream = %q", got)
	}
}

func TestChatEncoder_StreamWithoutStopEndsWithError(t *testing.T) {
	up := new(sseBuilder).start("").text(0, "Partial").String() // no message_delta, no message_stop
	out := runStream(t, ChatInfo{Model: "m"}, up)
	f := frames(t, out)
	var e struct{ Error errorObject }
	if err := json.Unmarshal([]byte(f[len(f)-1]), &e); err != nil || e.Error.Type != "server_error" {
		t.Errorf("last frame %s, want a server_error", f[len(f)-1])
	}
	if strings.Contains(out, "[DONE]") || strings.Contains(out, `"finish_reason":"`) {
		t.Errorf("a truncated stream must not look finished:\n%s", out)
	}
}

func TestDecodeChat_ToolSchemaNormalized(t *testing.T) {
	req, _ := decode(t, `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[
		{"type":"function","function":{"name":"none"}},
		{"type":"function","function":{"name":"union","parameters":{"anyOf":[{"type":"object","properties":{"a":{"type":"string"}}},{"type":"object","properties":{"b":{"type":"integer"}}}]}}},
		{"type":"function","function":{"name":"ref","parameters":{"type":"object","properties":{"p":{"$ref":"#/$defs/P"}},"$defs":{"P":{"type":"string"}}}}}]}`)
	wantField(t, req, "tools.0.input_schema", `{"type":"object","properties":{}}`)
	wantField(t, req, "tools.1.input_schema", `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}`)
	wantField(t, req, "tools.2.input_schema", `{"type":"object","properties":{"p":{"type":"string"}}}`)
}

func TestDecodeChat_ImageURLs(t *testing.T) {
	req, _ := decode(t, `{"model":"m","messages":[{"role":"user","content":[
		{"type":"image_url","image_url":{"url":"data:image/jpg;base64,/9j/4AAQ","detail":"high"}},
		{"type":"image_url","image_url":{"url":"https://example.com/cat.webp"}},
		{"type":"image_url","image_url":"data:image/webp;base64,UklGR"}]}]}`)
	wantField(t, req, "messages.0.content", `[
		{"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/4AAQ"}},
		{"type":"image","source":{"type":"url","url":"https://example.com/cat.webp"}},
		{"type":"image","source":{"type":"base64","media_type":"image/webp","data":"UklGR"}}]`)
	for _, url := range []string{"data:image/tiff;base64,AA", "data:image/png,rawbytes", "file:///etc/passwd", ""} {
		re := decodeErr(t, `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"`+url+`"}}]}]}`)
		if !strings.HasPrefix(re.Param, "messages[0].content[0].image_url") {
			t.Errorf("%q: Param = %q", url, re.Param)
		}
	}
}

func TestDecodeChat_ToolChoiceWithoutToolsDropped(t *testing.T) {
	for _, body := range []string{
		`{"model":"m","tool_choice":"required","messages":[{"role":"user","content":"x"}]}`,
		`{"model":"m","tools":[],"tool_choice":"auto","parallel_tool_calls":false,"messages":[{"role":"user","content":"x"}]}`,
		`{"model":"m","tools":[{"type":"web_search"}],"tool_choice":{"type":"function","function":{"name":"f"}},"messages":[{"role":"user","content":"x"}]}`,
		`{"model":"m","tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":{"type":"allowed_tools","allowed_tools":{"mode":"required","tools":[{"type":"function","function":{"name":"zzz"}}]}},"messages":[{"role":"user","content":"x"}]}`,
	} {
		req, _ := decode(t, body)
		if req.ToolChoice != nil || len(req.Tools) != 0 {
			t.Errorf("tools %v, tool_choice %+v, want neither for %s", req.Tools, req.ToolChoice, body)
		}
	}
}

func TestDecodeChat_TrailingAssistantPrefillStripped(t *testing.T) {
	req, _ := decode(t, `{"model":"m","messages":[{"role":"user","content":"Write JSON"},{"role":"assistant","content":"{"}]}`)
	wantField(t, req, "messages", `[{"role":"user","content":[{"type":"text","text":"Write JSON"}]}]`)

	// A trailing tool-call turn stays, and its calls are answered as
	// interrupted: the upstream refuses a turn that awaits results.
	req, _ = decode(t, `{"model":"m","messages":[{"role":"user","content":"go"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]}]}`)
	wantField(t, req, "messages", `[{"role":"user","content":[{"type":"text","text":"go"}]},
		{"role":"assistant","content":[{"type":"tool_use","id":"c1","name":"f","input":{}}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"c1","is_error":true,"content":"interrupted: no result was sent for this tool call"}]}]`)
}

func TestErrorBody_ContextLengthExceeded(t *testing.T) {
	for _, msg := range []string{
		"prompt is too long: 210000 tokens > 200000 maximum",
		"input length and `max_tokens` exceed context limit: 190000 + 32000 > 200000, decrease input length or `max_tokens` and try again",
	} {
		status, body := ErrorBody(400, "invalid_request_error", msg)
		want := map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error", "param": nil, "code": "context_length_exceeded"}}
		if diff := cmp.Diff(any(want), asJSON(t, body)); status != 400 || diff != "" {
			t.Errorf("status %d, body (-want +got):\n%s", status, diff)
		}
	}
	// Mid-stream too.
	var w strings.Builder
	_ = NewChatEncoder(ChatInfo{}).Fail(&w, "invalid_request_error", "prompt is too long: 3 tokens > 2 maximum")
	if !strings.Contains(w.String(), `"code":"context_length_exceeded"`) {
		t.Errorf("stream error = %s", w.String())
	}
}

func TestDecodeChat_CacheBreakpointsWithinLimit(t *testing.T) {
	// The driver adds breakpoints to what DecodeChat returns; DecodeChat
	// keeps the client's own marks but never more than four.
	body := `{"model":"m","messages":[
		{"role":"system","content":[{"type":"text","text":"S1","cache_control":{"type":"ephemeral"}}]},
		{"role":"user","content":[{"type":"text","text":"a","cache_control":{"type":"ephemeral"}}]},
		{"role":"assistant","content":"b"},
		{"role":"user","content":[{"type":"text","text":"c","cache_control":{"type":"ephemeral"}}]},
		{"role":"assistant","content":"d"},
		{"role":"user","content":[{"type":"text","text":"e","cache_control":{"type":"ephemeral"}}]},
		{"role":"assistant","content":"f"},
		{"role":"user","content":[{"type":"text","text":"g","cache_control":{"type":"ephemeral","ttl":"1h"}}]}],
		"tools":[{"type":"function","function":{"name":"t"},"cache_control":{"type":"ephemeral"}}]}`
	req, _ := decode(t, body)
	if n := req.Breakpoints(); n != anthropic.MaxBreakpoints {
		t.Errorf("client marks kept = %d, want %d", n, anthropic.MaxBreakpoints)
	}
	// The newest marks are kept, without a 1h TTL that would follow the
	// proxy's 5m marks on tools and system.
	wantField(t, req, "messages.6.content.0.cache_control", `{"type":"ephemeral"}`)
	wantField(t, req, "tools.0.cache_control", `null`)
	req.AddCacheBreakpoints()
	if n := req.Breakpoints(); n > anthropic.MaxBreakpoints {
		t.Errorf("breakpoints = %d after the driver's", n)
	}

	// A plain OpenAI request gets tools, system and recent user turns marked.
	req, _ = decode(t, `{"model":"m","messages":[{"role":"system","content":"Long stable prompt"},
		{"role":"user","content":"q1"},{"role":"assistant","content":"a1"},{"role":"user","content":"q2"}],
		"tools":[{"type":"function","function":{"name":"t"}}]}`)
	req.AddCacheBreakpoints()
	if n := req.Breakpoints(); n != 4 {
		t.Errorf("breakpoints = %d, want 4", n)
	}
}

func TestErrorBody_StatusTypeAndCode(t *testing.T) {
	tests := []struct {
		status   int
		typ      string
		msg      string
		want     int
		wantType string
		wantCode any
	}{
		{529, "overloaded_error", "Overloaded", http.StatusServiceUnavailable, "server_error", "overloaded"},
		{429, "rate_limit_error", "slow down", 429, "rate_limit_error", "rate_limit_exceeded"},
		{429, "rate_limit_error", "You have reached your spend limit", 429, "insufficient_quota", "insufficient_quota"},
		{500, "api_error", "Internal server error", 500, "server_error", nil},
		{504, "timeout_error", "timeout", 504, "server_error", "timeout"},
		{401, "authentication_error", "invalid x-api-key", 401, "invalid_request_error", "invalid_api_key"},
		{402, "billing_error", "credit balance too low", 402, "insufficient_quota", "insufficient_quota"},
		{403, "permission_error", "no", 403, "permission_error", nil},
		{409, "conflict_error", "conflict", 409, "invalid_request_error", "conflict"},
		{200, "conflict_error", "conflict", 409, "invalid_request_error", "conflict"},
		{200, "timeout_error", "timeout", 504, "server_error", "timeout"},
		{404, "not_found_error", "model: claude-x", 404, "invalid_request_error", "model_not_found"},
		{413, "request_too_large", "too big", 413, "invalid_request_error", "request_too_large"},
		{400, "invalid_request_error", "messages: bad", 400, "invalid_request_error", nil},
		{503, "overloaded_error", "no account", 503, "server_error", "overloaded"},
		{502, "api_error", "unreachable", 502, "server_error", nil},
		{418, "", "teapot", 418, "invalid_request_error", nil},
		{529, "", "", 503, "server_error", "overloaded"},
		{599, "brand_new_error", "x", 599, "server_error", nil},
	}
	for _, tt := range tests {
		status, body := ErrorBody(tt.status, tt.typ, tt.msg)
		want := map[string]any{"error": map[string]any{"message": tt.msg, "type": tt.wantType, "param": nil, "code": tt.wantCode}}
		if diff := cmp.Diff(any(want), asJSON(t, body)); status != tt.want || diff != "" {
			t.Errorf("ErrorBody(%d, %q): status %d, want %d; body (-want +got):\n%s", tt.status, tt.typ, status, tt.want, diff)
		}
	}
}

func TestChatEncoder_RefusalIsContentFilter(t *testing.T) {
	up := new(sseBuilder).start("").text(0, "I can't help with that.").stop("refusal", "").String()
	assertFinish(t, up, "content_filter")
	up = new(sseBuilder).start("").text(0, "...").stop("sensitive", "").String()
	assertFinish(t, up, "content_filter")
}

func TestChatEncoder_PauseTurnIsStop(t *testing.T) {
	b := new(sseBuilder).start("")
	b.ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}}`)
	b.ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"query\":\"go\"}"}}`)
	b.ev("content_block_stop", `{"type":"content_block_stop","index":0}`)
	up := b.stop("pause_turn", "").String()
	assertFinish(t, up, "stop")
	if out := runStream(t, ChatInfo{Model: "m"}, up); strings.Contains(out, "tool_calls") {
		t.Errorf("server tool surfaced as a tool call:\n%s", out)
	}
	// tool_use with only server tools is a stop too.
	assertFinish(t, strings.Replace(up, "pause_turn", "tool_use", 1), "stop")
}

// assertFinish checks the finish reason of a transcript, streamed and whole.
func assertFinish(t *testing.T, up, want string) {
	t.Helper()
	var got []string
	for _, c := range chunks(t, runStream(t, ChatInfo{Model: "m"}, up)) {
		for _, ch := range c["choices"].([]any) {
			if r, ok := ch.(map[string]any)["finish_reason"].(string); ok {
				got = append(got, r)
			}
		}
	}
	if len(got) != 1 || got[0] != want {
		t.Errorf("stream finish reasons = %q, want [%s]", got, want)
	}
	out, err := ChatResult(accumulate(t, up), ChatInfo{Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Choices []struct {
			FinishReason string `json:"finish_reason"`
		}
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	if res.Choices[0].FinishReason != want {
		t.Errorf("result finish_reason = %q, want %q", res.Choices[0].FinishReason, want)
	}
}

package responses

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw/proxy/anthropic"
)

// jsonEqual compares raw JSON by value, not by bytes.
var jsonEqual = cmp.Transformer("json", func(r json.RawMessage) any {
	var v any
	if err := json.Unmarshal(r, &v); err != nil {
		return string(r)
	}
	return v
})

func ptr[T any](v T) *T { return &v }

func text(s string) anthropic.ContentBlock { return anthropic.ContentBlock{Type: "text", Text: s} }

func user(blocks ...anthropic.ContentBlock) anthropic.Message {
	return anthropic.Message{Role: "user", Content: blocks}
}

func assistant(blocks ...anthropic.ContentBlock) anthropic.Message {
	return anthropic.Message{Role: "assistant", Content: blocks}
}

func toolUse(id, name, input string) anthropic.ContentBlock {
	return anthropic.ContentBlock{Type: "tool_use", ID: id, Name: name, Input: json.RawMessage(input)}
}

func toolResult(id, content string) anthropic.ContentBlock {
	return anthropic.ContentBlock{Type: "tool_result", ToolUseID: id, Content: json.RawMessage(content)}
}

const weatherTool = `{"type":"function","name":"get_weather","description":"Weather for a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},"strict":true}`

var weatherSchema = json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		body string
		want *anthropic.Request
	}{
		{
			name: "string input and instructions",
			body: `{"model":"claude-sonnet-4-5","instructions":"Be brief.","input":"Hello"}`,
			want: &anthropic.Request{
				Model: "claude-sonnet-4-5", MaxTokens: 32000,
				System:   []anthropic.ContentBlock{text("Be brief.")},
				Messages: []anthropic.Message{user(text("Hello"))},
			},
		},
		{
			name: "message items, easy form and typed form",
			body: `{"model":"claude-sonnet-4-5","input":[
				{"role":"user","content":"What is 2+2?"},
				{"type":"message","role":"assistant","id":"msg_1","status":"completed","phase":"final_answer","content":[{"type":"output_text","text":"4","annotations":[]}]},
				{"type":"message","role":"user","content":[{"type":"input_text","text":"And 3+3?"}]}]}`,
			want: &anthropic.Request{
				Model: "claude-sonnet-4-5", MaxTokens: 32000,
				Messages: []anthropic.Message{user(text("What is 2+2?")), assistant(text("4")), user(text("And 3+3?"))},
			},
		},
		{
			name: "function tools, tool round trip and choices",
			body: `{"model":"claude-sonnet-4-5","tools":[` + weatherTool + `],"tool_choice":{"type":"function","name":"get_weather"},"parallel_tool_calls":false,
				"input":[{"role":"user","content":"Weather in Paris?"},
				{"type":"function_call","id":"fc_1","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}","status":"completed"},
				{"type":"function_call_output","call_id":"call_1","output":"18C, sunny"}]}`,
			want: &anthropic.Request{
				Model: "claude-sonnet-4-5", MaxTokens: 32000,
				Messages: []anthropic.Message{
					user(text("Weather in Paris?")),
					assistant(toolUse("call_1", "get_weather", `{"city":"Paris"}`)),
					user(toolResult("call_1", `"18C, sunny"`)),
				},
				Tools:      []anthropic.Tool{{Name: "get_weather", Description: "Weather for a city", InputSchema: weatherSchema}},
				ToolChoice: &anthropic.ToolChoice{Type: "tool", Name: "get_weather", DisableParallelToolUse: true},
			},
		},
		{
			name: "tool_choice required and none",
			body: `{"model":"claude-sonnet-4-5","tools":[` + weatherTool + `],"tool_choice":"required","input":"x"}`,
			want: &anthropic.Request{
				Model: "claude-sonnet-4-5", MaxTokens: 32000, Messages: []anthropic.Message{user(text("x"))},
				Tools:      []anthropic.Tool{{Name: "get_weather", Description: "Weather for a city", InputSchema: weatherSchema}},
				ToolChoice: &anthropic.ToolChoice{Type: "any"},
			},
		},
		{
			name: "sampling, limits, structured output, user",
			body: `{"model":"claude-haiku-4-5","input":"x","max_output_tokens":1000,"temperature":0.5,"top_p":0.9,
				"text":{"format":{"type":"json_schema","name":"answer","strict":true,"schema":{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false}},"verbosity":"low"},
				"safety_identifier":"user-123","user":"legacy"}`,
			want: &anthropic.Request{
				Model: "claude-haiku-4-5", MaxTokens: 1000, Messages: []anthropic.Message{user(text("x"))},
				Temperature: ptr(0.5),
				OutputConfig: &anthropic.OutputConfig{Format: &anthropic.OutputFormat{Type: "json_schema",
					Schema: json.RawMessage(`{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false}`)}},
				Metadata: &anthropic.Metadata{UserID: "user-123"},
			},
		},
		{
			name: "reasoning effort to thinking",
			body: `{"model":"claude-sonnet-4-5","input":"x","reasoning":{"effort":"medium","summary":"auto"}}`,
			want: &anthropic.Request{
				Model: "claude-sonnet-4-5", MaxTokens: 32000, Messages: []anthropic.Message{user(text("x"))},
				Thinking: &anthropic.Thinking{Type: "enabled", BudgetTokens: 8192},
			},
		},
		{
			name: "reasoning effort none",
			body: `{"model":"claude-sonnet-4-5","input":"x","reasoning":{"effort":"none"},"temperature":0.2}`,
			want: &anthropic.Request{
				Model: "claude-sonnet-4-5", MaxTokens: 32000, Messages: []anthropic.Message{user(text("x"))},
				Temperature: ptr(0.2),
			},
		},
		{
			name: "images and files",
			body: `{"model":"claude-sonnet-4-5","input":[{"role":"user","content":[
				{"type":"input_text","text":"Compare"},
				{"type":"input_image","image_url":"data:image/png;base64,iVBORw0KGgo=","detail":"high"},
				{"type":"input_image","image_url":"https://example.com/cat.jpg"},
				{"type":"input_file","filename":"a.pdf","file_data":"data:application/pdf;base64,JVBERi0x"},
				{"type":"input_file","filename":"notes.txt","file_data":"aGVsbG8gd29ybGQ="},
				{"type":"input_file","file_url":"https://example.com/doc.pdf"}]}]}`,
			want: &anthropic.Request{
				Model: "claude-sonnet-4-5", MaxTokens: 32000,
				Messages: []anthropic.Message{user(
					text("Compare"),
					anthropic.ContentBlock{Type: "image", Source: &anthropic.Source{Type: "base64", MediaType: "image/png", Data: "iVBORw0KGgo="}},
					anthropic.ContentBlock{Type: "image", Source: &anthropic.Source{Type: "url", URL: "https://example.com/cat.jpg"}},
					anthropic.ContentBlock{Type: "document", Source: &anthropic.Source{Type: "base64", MediaType: "application/pdf", Data: "JVBERi0x"}},
					anthropic.ContentBlock{Type: "document", Source: &anthropic.Source{Type: "text", MediaType: "text/plain", Data: "hello world"}},
					anthropic.ContentBlock{Type: "document", Source: &anthropic.Source{Type: "url", URL: "https://example.com/doc.pdf"}},
				)},
			},
		},
		{
			name: "json_object becomes a system instruction",
			body: `{"model":"claude-sonnet-4-5","instructions":"Extract.","input":"x","text":{"format":{"type":"json_object"}}}`,
			want: &anthropic.Request{
				Model: "claude-sonnet-4-5", MaxTokens: 32000, Messages: []anthropic.Message{user(text("x"))},
				System: []anthropic.ContentBlock{text("Extract."),
					text("Respond with a single valid JSON object and nothing else: no prose, no code fences.")},
			},
		},
		{
			name: "no input at all",
			body: `{"model":"claude-sonnet-4-5","instructions":"Say hi."}`,
			want: &anthropic.Request{
				Model: "claude-sonnet-4-5", MaxTokens: 32000, System: []anthropic.ContentBlock{text("Say hi.")},
				Messages: []anthropic.Message{user(text("Continue."))},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, _ := decode(t, tt.body)
			if diff := cmp.Diff(tt.want, got, jsonEqual); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
			mustValidate(t, got)
		})
	}
}

func TestDecode_Info(t *testing.T) {
	body := `{"model":"gpt-5-codex","stream":true,"input":"x","store":true,"include":["reasoning.encrypted_content"],
		"prompt_cache_key":"thread-1","client_metadata":{"a":"b"},"future_knob":1,
		"tools":[{"type":"function","name":"mcp.fs/read file","parameters":{}},{"type":"custom","name":"apply_patch"},{"type":"web_search"}]}`
	req, info, err := Decode([]byte(body), DecodeOptions{Aliases: map[string]string{"gpt-5-codex": "claude-sonnet-4-5"}})
	if err != nil {
		t.Fatal(err)
	}
	if req.Model != "claude-sonnet-4-5" || info.Model != "gpt-5-codex" || !info.Stream {
		t.Errorf("model %q, info model %q, stream %v", req.Model, info.Model, info.Stream)
	}
	want := map[string]Tool{
		"mcp_fs_read_file": {Name: "mcp.fs/read file"},
		"apply_patch":      {Name: "apply_patch", Custom: true},
	}
	if diff := cmp.Diff(want, info.Tools); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
	for _, note := range []string{"ignored include", "ignored store", "ignored prompt_cache_key", "ignored client_metadata",
		"ignored unknown field future_knob", "dropped hosted tool tools[2] (web_search)"} {
		if !slices.ContainsFunc(info.Notes, func(n string) bool { return strings.HasPrefix(n, note) }) {
			t.Errorf("notes %q lack %q", info.Notes, note)
		}
	}
}

func TestDecode_NamespaceToolsFlattened(t *testing.T) {
	req, info := decode(t, `{"model":"claude-sonnet-4-5","input":[
		{"role":"user","content":"find the customer"},
		{"type":"function_call","call_id":"c1","namespace":"crm","name":"lookup","arguments":"{\"q\":\"acme\"}"},
		{"type":"function_call_output","call_id":"c1","output":"found"}],
		"tools":[{"type":"namespace","name":"crm","description":"Customer records","tools":[
			{"type":"function","name":"lookup","description":"Find a customer","parameters":{"type":"object","properties":{"q":{"type":"string"}}}},
			{"type":"custom","name":"note"}]}]}`)
	mustValidate(t, req)
	var names []string
	for _, tl := range req.Tools {
		names = append(names, tl.Name)
	}
	if diff := cmp.Diff([]string{"crm__lookup", "crm__note"}, names); diff != "" {
		t.Errorf("tool names (-want +got):\n%s", diff)
	}
	if got := req.Tools[0].Description; !strings.Contains(got, "Find a customer") || !strings.Contains(got, "Customer records") {
		t.Errorf("description = %q", got)
	}
	if got := req.Messages[1].Content[0].Name; got != "crm__lookup" {
		t.Errorf("history call name = %q, want crm__lookup", got)
	}
	if got := info.Tools["crm__note"]; got != (Tool{Name: "note", Namespace: "crm", Custom: true}) {
		t.Errorf("info tool = %+v", got)
	}

	// A call comes back under its namespace and name.
	out := translate(t, info, sseOf(concat(msgStart("msg_ns"), toolBlockEvents(0, "toolu_1", "crm__lookup", `{"q":"x"}`), msgStop("tool_use", 5))...))
	items := outputItems(terminalResponse(t, out))
	if len(items) != 1 || items[0]["name"] != "lookup" || items[0]["namespace"] != "crm" {
		t.Errorf("output items = %v", items)
	}
}

func TestDecode_AdditionalToolsItem(t *testing.T) {
	req, _ := decode(t, `{"model":"claude-sonnet-4-5","input":[{"role":"user","content":"x"},
		{"type":"additional_tools","tools":[`+weatherTool+`]}]}`)
	if len(req.Tools) != 1 || req.Tools[0].Name != "get_weather" {
		t.Errorf("tools = %+v", req.Tools)
	}
}

func TestDecode_Errors(t *testing.T) {
	tests := []struct {
		name, body, param string
	}{
		{"not JSON", `{"model":`, ""},
		{"not an object", `["model"]`, ""},
		{"no model", `{"input":"hi"}`, "model"},
		{"model not a string", `{"model":5}`, "model"},
		{"previous_response_id", `{"model":"m","input":"x","previous_response_id":"resp_123"}`, "previous_response_id"},
		{"conversation", `{"model":"m","input":"x","conversation":"conv_1"}`, "conversation"},
		{"stored prompt", `{"model":"m","prompt":{"id":"pmpt_1"}}`, "prompt"},
		{"background", `{"model":"m","input":"x","background":true}`, "background"},
		{"item_reference", `{"model":"m","input":[{"type":"item_reference","id":"msg_1"}]}`, "input[0]"},
		{"input not a list", `{"model":"m","input":5}`, "input"},
		{"item without type or role", `{"model":"m","input":[{"content":"x"}]}`, "input[0].type"},
		{"unknown role", `{"model":"m","input":[{"role":"tool","content":"x"}]}`, "input[0].role"},
		{"image file_id", `{"model":"m","input":[{"role":"user","content":[{"type":"input_image","file_id":"file-1"}]}]}`, "input[0].content[0].file_id"},
		{"file file_id", `{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"file-1"}]}]}`, "input[0].content[0].file_id"},
		{"audio", `{"model":"m","input":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"x","format":"wav"}}]}]}`, "input[0].content[0]"},
		{"image in a system message", `{"model":"m","input":[{"role":"developer","content":[{"type":"input_image","image_url":"https://x/y.png"}]}]}`, "input[0].content[0]"},
		{"bad image type", `{"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"data:image/bmp;base64,Qk0="}]}]}`, "input[0].content[0].image_url"},
		{"max_output_tokens zero", `{"model":"m","input":"x","max_output_tokens":0}`, "max_output_tokens"},
		{"max_output_tokens fraction", `{"model":"m","input":"x","max_output_tokens":1.5}`, "max_output_tokens"},
		{"negative temperature", `{"model":"m","input":"x","temperature":-1}`, "temperature"},
		{"unknown effort", `{"model":"m","input":"x","reasoning":{"effort":"turbo"}}`, "reasoning.effort"},
		{"unknown tool_choice", `{"model":"m","input":"x","tools":[` + weatherTool + `],"tool_choice":"sometimes"}`, "tool_choice"},
		{"tool_choice names a missing tool", `{"model":"m","input":"x","tools":[` + weatherTool + `],"tool_choice":{"type":"function","name":"nope"}}`, "tool_choice.name"},
		{"function tool without name", `{"model":"m","input":"x","tools":[{"type":"function","parameters":{}}]}`, "tools[0].name"},
		{"unsupported text format", `{"model":"m","input":"x","text":{"format":{"type":"grammar"}}}`, "text.format.type"},
		{"json_schema without schema", `{"model":"m","input":"x","text":{"format":{"type":"json_schema","name":"a"}}}`, "text.format.schema"},
		{"output without call_id", `{"model":"m","input":[{"type":"function_call_output","output":"x"}]}`, "input[0].call_id"},
		{"call without name", `{"model":"m","input":[{"type":"function_call","call_id":"c","arguments":"{}"}]}`, "input[0].name"},
		{"custom input not a string", `{"model":"m","input":[{"type":"custom_tool_call","call_id":"c","name":"apply_patch","input":{"a":1}}]}`, "input[0].input"},
		{"field of the wrong type inside an item", `{"model":"m","input":[{"type":"function_call","call_id":5}]}`, "input[0].call_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			re := decodeErr(t, tt.body)
			if re.Param != tt.param {
				t.Errorf("Param = %q, want %q (message %q)", re.Param, tt.param, re.Message)
			}
			if re.Message == "" {
				t.Error("empty message")
			}
			if tt.param != "" && !strings.HasPrefix(re.Error(), tt.param+": ") {
				t.Errorf("Error() = %q does not name the field first", re.Error())
			}
		})
	}
}

func TestDecode_PreviousResponseIDMessage(t *testing.T) {
	re := decodeErr(t, `{"model":"m","input":"x","previous_response_id":"resp_abc"}`)
	for _, want := range []string{"resp_abc", "not found", "no server-side state"} {
		if !strings.Contains(re.Message, want) {
			t.Errorf("message %q lacks %q", re.Message, want)
		}
	}
}

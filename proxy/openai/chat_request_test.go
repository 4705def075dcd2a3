package openai

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeChat(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string // the whole Anthropic request
	}{
		{
			name: "minimal",
			body: `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Hello"}]}`,
			want: `{"model":"claude-sonnet-4-5","max_tokens":32000,"messages":[{"role":"user","content":[{"type":"text","text":"Hello"}]}]}`,
		},
		{
			name: "unknown model passes through with the fallback default",
			body: `{"model":"claude-future-9","max_tokens":100,"messages":[{"role":"user","content":"Hi"}]}`,
			want: `{"model":"claude-future-9","max_tokens":100,"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}]}`,
		},
		{
			name: "system, tools, tool round trip, sampling, stop, user",
			body: `{"model":"claude-sonnet-4-5","max_completion_tokens":500,
				"messages":[
					{"role":"system","content":"Be brief."},
					{"role":"user","content":"Weather in Paris?"},
					{"role":"assistant","content":"Let me look.","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
					{"role":"tool","tool_call_id":"call_1","content":"18C"}
				],
				"tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],
				"tool_choice":"auto","temperature":0.2,"stop":"END","user":"u-42"}`,
			want: `{"model":"claude-sonnet-4-5","max_tokens":500,
				"system":[{"type":"text","text":"Be brief."}],
				"messages":[
					{"role":"user","content":[{"type":"text","text":"Weather in Paris?"}]},
					{"role":"assistant","content":[{"type":"text","text":"Let me look."},{"type":"tool_use","id":"call_1","name":"get_weather","input":{"city":"Paris"}}]},
					{"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1","content":"18C"}]}
				],
				"tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}],
				"tool_choice":{"type":"auto"},"temperature":0.2,"stop_sequences":["END"],"metadata":{"user_id":"u-42"}}`,
		},
		{
			name: "tool_choice required, named, none; parallel off",
			body: `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"x"}],
				"tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"b"}}],
				"tool_choice":{"type":"function","function":{"name":"b"}},"parallel_tool_calls":false}`,
			want: `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
				"tools":[{"name":"a","input_schema":{"type":"object","properties":{}}},{"name":"b","input_schema":{"type":"object","properties":{}}}],
				"tool_choice":{"type":"tool","name":"b","disable_parallel_tool_use":true}}`,
		},
		{
			name: "allowed_tools filters the tools",
			body: `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"x"}],
				"tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"b"}}],
				"tool_choice":{"type":"allowed_tools","allowed_tools":{"mode":"required","tools":[{"type":"function","function":{"name":"b"}}]}}}`,
			want: `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
				"tools":[{"name":"b","input_schema":{"type":"object","properties":{}}}],
				"tool_choice":{"type":"any"}}`,
		},
		{
			name: "parallel_tool_calls false without a choice creates auto",
			body: `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"x"}],
				"tools":[{"type":"function","function":{"name":"a"}}],"parallel_tool_calls":false}`,
			want: `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
				"tools":[{"name":"a","input_schema":{"type":"object","properties":{}}}],
				"tool_choice":{"type":"auto","disable_parallel_tool_use":true}}`,
		},
		{
			name: "json_schema response format, safety_identifier, hosted tool dropped",
			body: `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"x"}],
				"tools":[{"type":"web_search"}],"tool_choice":"required",
				"response_format":{"type":"json_schema","json_schema":{"name":"r","strict":true,"schema":{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}}},
				"safety_identifier":"hash-1","user":"ignored-in-favour"}`,
			want: `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
				"metadata":{"user_id":"hash-1"},
				"output_config":{"format":{"type":"json_schema","schema":{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}}}}`,
		},
		{
			name: "json_object response format becomes a system instruction",
			body: `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}`,
			want: `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
				"system":[{"type":"text","text":"Respond only with a single valid JSON object, with no text before or after it."}]}`,
		},
		{
			name: "pdf and text files, client cache_control kept",
			body: `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":[
				{"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,JVBERi0="}},
				{"type":"file","file":{"filename":"a.txt","file_data":"data:text/plain;base64,aGVsbG8="}},
				{"type":"text","text":"Summarise","cache_control":{"type":"ephemeral"}}]}]}`,
			want: `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":[
				{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}},
				{"type":"document","source":{"type":"text","media_type":"text/plain","data":"hello"}},
				{"type":"text","text":"Summarise","cache_control":{"type":"ephemeral"}}]}]}`,
		},
		{
			name: "OpenAI prompt_cache_breakpoint becomes cache_control",
			body: `{"model":"claude-sonnet-4-5","max_tokens":10,"prompt_cache_options":{"mode":"explicit"},"messages":[
				{"role":"system","content":[{"type":"text","text":"Long","prompt_cache_breakpoint":{"mode":"explicit","ttl":"12h"}}]},
				{"role":"user","content":[{"type":"text","text":"Q","prompt_cache_breakpoint":{"mode":"explicit"}}]}]}`,
			want: `{"model":"claude-sonnet-4-5","max_tokens":10,
				"system":[{"type":"text","text":"Long","cache_control":{"type":"ephemeral"}}],
				"messages":[{"role":"user","content":[{"type":"text","text":"Q","cache_control":{"type":"ephemeral"}}]}]}`,
		},
		{
			name: "assistant refusal kept as text",
			body: `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"x"},
				{"role":"assistant","content":null,"refusal":"I can't do that."},{"role":"user","content":"y"}]}`,
			want: `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]},
				{"role":"assistant","content":[{"type":"text","text":"I can't do that."}]},{"role":"user","content":[{"type":"text","text":"y"}]}]}`,
		},
		{
			name: "legacy function messages pair by name",
			body: `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[
				{"role":"user","content":"x"},
				{"role":"assistant","content":null,"function_call":{"name":"f","arguments":"{}"}},
				{"role":"function","name":"f","content":"done"}]}`,
			want: `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[
				{"role":"user","content":[{"type":"text","text":"x"}]},
				{"role":"assistant","content":[{"type":"tool_use","id":"toolu_llmgw_1","name":"f","input":{}}]},
				{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_llmgw_1","content":"done"}]}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, _ := decode(t, tt.body)
			if diff := cmp.Diff(asJSON(t, tt.want), asJSON(t, req)); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeChat_Errors(t *testing.T) {
	tests := []struct {
		name, body, param string
	}{
		{"empty body", ``, ""},
		{"not an object", `[1]`, ""},
		{"invalid JSON", `{"model":`, ""},
		{"no model", `{"messages":[{"role":"user","content":"x"}]}`, "model"},
		{"no messages", `{"model":"m"}`, "messages"},
		{"model not a string", `{"model":5,"messages":[]}`, "model"},
		{"n", `{"model":"m","n":2,"messages":[{"role":"user","content":"x"}]}`, "n"},
		{"bad role", `{"model":"m","messages":[{"role":"robot","content":"x"}]}`, "messages[0].role"},
		{"bad message shape", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"user","tool_calls":"x"}]}`, "messages[1].tool_calls"},
		{"input audio", `{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA","format":"wav"}}]}]}`, "messages[0].content[0]"},
		{"file id", `{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-abc"}}]}]}`, "messages[0].content[0].file.file_id"},
		{"bmp image", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/bmp;base64,AA"}}]}]}`, "messages[0].content[0].image_url.url"},
		{"ftp image", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}`, "messages[0].content[0].image_url.url"},
		{"image in system", `{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},{"role":"user","content":"x"}]}`, "messages[0].content[0]"},
		{"bad effort", `{"model":"m","reasoning_effort":"extreme","messages":[{"role":"user","content":"x"}]}`, "reasoning_effort"},
		{"bad tool choice", `{"model":"m","tool_choice":"sometimes","messages":[{"role":"user","content":"x"}]}`, "tool_choice"},
		{"tool choice names unknown tool", `{"model":"m","tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":{"type":"function","function":{"name":"b"}},"messages":[{"role":"user","content":"x"}]}`, "tool_choice.function.name"},
		{"tool without name", `{"model":"m","tools":[{"type":"function","function":{}}],"messages":[{"role":"user","content":"x"}]}`, "tools[0].function.name"},
		{"max_tokens zero", `{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]}`, "max_tokens"},
		{"stop not strings", `{"model":"m","stop":[1],"messages":[{"role":"user","content":"x"}]}`, "stop"},
		{"legacy functions", `{"model":"m","functions":[{"name":"f"}],"messages":[{"role":"user","content":"x"}]}`, "functions"},
		{"json_schema without schema", `{"model":"m","response_format":{"type":"json_schema","json_schema":{"name":"x"}},"messages":[{"role":"user","content":"x"}]}`, "response_format.json_schema.schema"},
		{"top_p out of range", `{"model":"m","top_p":3,"messages":[{"role":"user","content":"x"}]}`, "top_p"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			re := decodeErr(t, tt.body)
			if re.Param != tt.param {
				t.Errorf("Param = %q, want %q (message %q)", re.Param, tt.param, re.Message)
			}
			if re.Message == "" {
				t.Error("Message is empty")
			}
		})
	}
}

func TestDecodeChat_Info(t *testing.T) {
	_, info, err := DecodeChat([]byte(`{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},
		"seed":1,"logprobs":true,"store":false,"prompt_cache_key":"k","metadata":{"a":"b"},
		"messages":[{"role":"user","content":"x"}]}`), DecodeOptions{Aliases: map[string]string{"gpt-4o": "claude-sonnet-4-5"}})
	if err != nil {
		t.Fatal(err)
	}
	if info.Model != "gpt-4o" || !info.Stream || !info.IncludeUsage || info.ToolNames == nil {
		t.Errorf("info = %+v", info)
	}
	want := []string{"logprobs", "metadata", "prompt_cache_key", "seed", "store"}
	if diff := cmp.Diff(want, info.Ignored); diff != "" {
		t.Errorf("Ignored (-want +got):\n%s", diff)
	}
}

func TestDecodeChat_Alias(t *testing.T) {
	req, info, err := DecodeChat([]byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}`),
		DecodeOptions{Aliases: map[string]string{"gpt-4o": "claude-3-5-haiku-20241022"}})
	if err != nil {
		t.Fatal(err)
	}
	if req.Model != "claude-3-5-haiku-20241022" || info.Model != "gpt-4o" {
		t.Errorf("model = %q, info.Model = %q", req.Model, info.Model)
	}
	if req.MaxTokens != 8192 {
		t.Errorf("max_tokens = %d, want the aliased model's default 8192", req.MaxTokens)
	}
}

func TestDecodeChat_IncludeUsageNeedsStream(t *testing.T) {
	_, info := decode(t, `{"model":"m","stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}`)
	if info.IncludeUsage || info.Stream {
		t.Errorf("info = %+v: include_usage means nothing without stream", info)
	}
}

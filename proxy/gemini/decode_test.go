package gemini

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// decodeJSON decodes body for model and returns the upstream request as
// generic JSON, for comparing with a literal.
func decodeJSON(t *testing.T, model, body string, opt DecodeOptions) (map[string]any, Info) {
	t.Helper()
	req, info, err := Decode(model, []byte(body), opt)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return asJSON(t, req), info
}

func asJSON(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func parseJSON(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad test JSON %s: %v", s, err)
	}
	return v
}

// TestDecode compares whole translated requests (cache breakpoints are the
// proxy's job and not added here).
func TestDecode(t *testing.T) {
	tests := []struct {
		name  string
		model string
		body  string
		want  string
	}{
		{
			name:  "text with system and config",
			model: "models/claude-sonnet-4-5",
			body: `{"systemInstruction":{"parts":[{"text":"Be brief."},{"text":""}]},
				"contents":[{"role":"user","parts":[{"text":"Hello"}]}],
				"generationConfig":{"maxOutputTokens":100,"temperature":0.5,"topK":40,"stopSequences":["END"]},
				"safetySettings":[{"category":"HARM_CATEGORY_HATE_SPEECH","threshold":"BLOCK_NONE"}]}`,
			want: `{"model":"claude-sonnet-4-5","max_tokens":100,"system":[{"type":"text","text":"Be brief."}],
				"messages":[{"role":"user","content":[{"type":"text","text":"Hello"}]}],
				"temperature":0.5,"top_k":40,"stop_sequences":["END"]}`,
		},
		{
			name:  "snake_case keys",
			model: "claude-sonnet-4-5",
			body: `{"system_instruction":{"parts":[{"text":"S"}]},
				"contents":[{"role":"user","parts":[{"inline_data":{"mime_type":"image/png","data":"iVBORw0KGgo"}}]}],
				"generation_config":{"max_output_tokens":64,"top_p":0.9}}`,
			want: `{"model":"claude-sonnet-4-5","max_tokens":64,"system":[{"type":"text","text":"S"}],
				"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}]}],
				"top_p":0.9}`,
		},
		{
			name:  "function call round trip",
			model: "claude-sonnet-4-5",
			body: `{"contents":[
				{"role":"user","parts":[{"text":"Weather in Paris?"}]},
				{"role":"model","parts":[{"functionCall":{"id":"toolu_1","name":"get_weather","args":{"city":"Paris"}}}]},
				{"role":"user","parts":[{"functionResponse":{"id":"toolu_1","name":"get_weather","response":{"output":"sunny"}}}]}],
				"tools":[{"functionDeclarations":[{"name":"get_weather","description":"Weather","parameters":{"type":"OBJECT","properties":{"city":{"type":"STRING"}},"required":["city"]}}]}],
				"toolConfig":{"functionCallingConfig":{"mode":"AUTO"}}}`,
			want: `{"model":"claude-sonnet-4-5","max_tokens":32000,
				"tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}],
				"messages":[
				{"role":"user","content":[{"type":"text","text":"Weather in Paris?"}]},
				{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}]},
				{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"sunny"}]}]}`,
		},
		{
			name:  "ANY with one allowed function",
			model: "claude-haiku-4-5",
			body: `{"contents":[{"parts":[{"text":"go"}]}],
				"tools":[{"functionDeclarations":[{"name":"a"},{"name":"b"}]}],
				"toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["b"]}}}`,
			want: `{"model":"claude-haiku-4-5","max_tokens":32000,
				"tools":[{"name":"a","input_schema":{"type":"object","properties":{}}},{"name":"b","input_schema":{"type":"object","properties":{}}}],
				"tool_choice":{"type":"tool","name":"b"},
				"messages":[{"role":"user","content":[{"type":"text","text":"go"}]}]}`,
		},
		{
			name:  "ANY with several allowed functions filters the tools",
			model: "claude-haiku-4-5",
			body: `{"contents":[{"parts":[{"text":"go"}]}],
				"tools":[{"functionDeclarations":[{"name":"a"},{"name":"b"},{"name":"c"}]},{"googleSearch":{}}],
				"toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["a","c"]}}}`,
			want: `{"model":"claude-haiku-4-5","max_tokens":32000,
				"tools":[{"name":"a","input_schema":{"type":"object","properties":{}}},{"name":"c","input_schema":{"type":"object","properties":{}}}],
				"tool_choice":{"type":"any"},
				"messages":[{"role":"user","content":[{"type":"text","text":"go"}]}]}`,
		},
		{
			name:  "NONE",
			model: "claude-haiku-4-5",
			body: `{"contents":[{"parts":[{"text":"go"}]}],"tools":[{"functionDeclarations":[{"name":"a"}]}],
				"toolConfig":{"functionCallingConfig":{"mode":"NONE"}}}`,
			want: `{"model":"claude-haiku-4-5","max_tokens":32000,
				"tools":[{"name":"a","input_schema":{"type":"object","properties":{}}}],"tool_choice":{"type":"none"},
				"messages":[{"role":"user","content":[{"type":"text","text":"go"}]}]}`,
		},
		{
			name:  "a calling mode without functions is dropped",
			model: "claude-haiku-4-5",
			body:  `{"contents":[{"parts":[{"text":"go"}]}],"tools":[{"googleSearch":{}}],"toolConfig":{"functionCallingConfig":{"mode":"ANY"}}}`,
			want: `{"model":"claude-haiku-4-5","max_tokens":32000,
				"messages":[{"role":"user","content":[{"type":"text","text":"go"}]}]}`,
		},
		{
			name:  "a forced function call turns thinking off",
			model: "claude-haiku-4-5",
			body: `{"contents":[{"parts":[{"text":"go"}]}],"tools":[{"functionDeclarations":[{"name":"a"}]}],
				"toolConfig":{"functionCallingConfig":{"mode":"ANY"}},"generationConfig":{"thinkingConfig":{"thinkingBudget":4096}}}`,
			want: `{"model":"claude-haiku-4-5","max_tokens":32000,
				"tools":[{"name":"a","input_schema":{"type":"object","properties":{}}}],"tool_choice":{"type":"any"},
				"messages":[{"role":"user","content":[{"type":"text","text":"go"}]}]}`,
		},
		{
			name:  "JSON output with a Gemini schema",
			model: "claude-sonnet-4-5",
			body: `{"contents":[{"parts":[{"text":"list"}]}],
				"generationConfig":{"responseMimeType":"application/json","responseSchema":{"type":"ARRAY","items":{"type":"OBJECT",
				"properties":{"name":{"type":"STRING","maxLength":10},"age":{"type":"INTEGER","nullable":true,"minimum":0}},"propertyOrdering":["name","age"]}}}}`,
			want: `{"model":"claude-sonnet-4-5","max_tokens":32000,
				"messages":[{"role":"user","content":[{"type":"text","text":"list"}]}],
				"output_config":{"format":{"type":"json_schema","schema":{"type":"array","items":{"type":"object","additionalProperties":false,
				"properties":{"name":{"type":"string"},"age":{"type":["integer","null"]}}}}}}}`,
		},
		{
			name:  "JSON output with responseJsonSchema",
			model: "claude-sonnet-4-5",
			body: `{"contents":[{"parts":[{"text":"x"}]}],
				"generationConfig":{"responseMimeType":"application/json","responseJsonSchema":{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]}}}`,
			want: `{"model":"claude-sonnet-4-5","max_tokens":32000,
				"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
				"output_config":{"format":{"type":"json_schema","schema":{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"],"additionalProperties":false}}}}`,
		},
		{
			name:  "JSON output without a schema asks for JSON",
			model: "claude-sonnet-4-5",
			body:  `{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"responseMimeType":"application/json"}}`,
			want: `{"model":"claude-sonnet-4-5","max_tokens":32000,
				"system":[{"type":"text","text":"Answer with a single valid JSON value only: no prose and no markdown code fences."}],
				"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
		},
		{
			name:  "thinking budget",
			model: "claude-sonnet-4-5",
			body: `{"contents":[{"parts":[{"text":"x"}]}],
				"generationConfig":{"maxOutputTokens":8000,"thinkingConfig":{"thinkingBudget":4000,"includeThoughts":true}}}`,
			want: `{"model":"claude-sonnet-4-5","max_tokens":8000,"thinking":{"type":"enabled","budget_tokens":4000},
				"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
		},
		{
			name:  "thinking level",
			model: "claude-sonnet-4-5",
			body:  `{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"thinkingConfig":{"thinkingLevel":"HIGH"}}}`,
			want: `{"model":"claude-sonnet-4-5","max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":24576},
				"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
		},
		{
			name:  "thinking budget 0 is off",
			model: "claude-sonnet-4-5",
			body:  `{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"thinkingConfig":{"thinkingBudget":0}}}`,
			want: `{"model":"claude-sonnet-4-5","max_tokens":32000,
				"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
		},
		{
			name:  "dynamic thinking budget",
			model: "claude-sonnet-4-5",
			body:  `{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"thinkingConfig":{"thinkingBudget":-1}}}`,
			want: `{"model":"claude-sonnet-4-5","max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":8192},
				"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
		},
		{
			name:  "media",
			model: "claude-sonnet-4-5",
			body: `{"contents":[{"parts":[
				{"inlineData":{"mimeType":"application/pdf","data":"JVBERi0x"}},
				{"inlineData":{"mimeType":"text/plain; charset=utf-8","data":"aGVsbG8="}},
				{"fileData":{"fileUri":"https://example.com/cat.jpg"}},
				{"fileData":{"mimeType":"application/pdf","fileUri":"https://example.com/doc"}},
				{"text":"describe"}]}]}`,
			want: `{"model":"claude-sonnet-4-5","max_tokens":32000,"messages":[{"role":"user","content":[
				{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0x"}},
				{"type":"document","source":{"type":"text","media_type":"text/plain","data":"hello"}},
				{"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}},
				{"type":"document","source":{"type":"url","url":"https://example.com/doc"}},
				{"type":"text","text":"describe"}]}]}`,
		},
		{
			name:  "alias",
			model: "gemini-2.5-pro",
			body:  `{"contents":[{"parts":[{"text":"x"}]}]}`,
			want: `{"model":"claude-opus-4-5","max_tokens":32000,
				"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
		},
		{
			name:  "unknown model passes through",
			model: "claude-future-9",
			body:  `{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"maxOutputTokens":999999}}`,
			want: `{"model":"claude-future-9","max_tokens":999999,
				"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
		},
		{
			name:  "code execution history as text",
			model: "claude-sonnet-4-5",
			body: `{"contents":[{"role":"user","parts":[{"text":"run"}]},{"role":"model","parts":[
				{"executableCode":{"language":"PYTHON","code":"print(1)"}},{"codeExecutionResult":{"outcome":"OUTCOME_OK","output":"1"}}]},
				{"role":"user","parts":[{"text":"thanks"}]}]}`,
			want: `{"model":"claude-sonnet-4-5","max_tokens":32000,"messages":[
				{"role":"user","content":[{"type":"text","text":"run"}]},
				{"role":"assistant","content":[{"type":"text","text":"` + "```python\\nprint(1)\\n```" + `Code execution result (OUTCOME_OK):\n1"}]},
				{"role":"user","content":[{"type":"text","text":"thanks"}]}]}`,
		},
	}
	opt := DecodeOptions{Aliases: map[string]string{"gemini-2.5-pro": "claude-opus-4-5"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, _ := decodeJSON(t, tt.model, tt.body, opt)
			if diff := cmp.Diff(parseJSON(t, tt.want), any(got)); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecode_Errors checks that what cannot be translated is refused with a
// RequestError naming the field.
func TestDecode_Errors(t *testing.T) {
	tests := []struct {
		name, model, body, field string
	}{
		{"empty body", "claude-x", ``, ""},
		{"not an object", "claude-x", `[1]`, ""},
		{"bad JSON", "claude-x", `{"contents":`, ""},
		{"no model", "models/", `{"contents":[{"parts":[{"text":"x"}]}]}`, "model"},
		{"wrong type", "claude-x", `{"generationConfig":{"maxOutputTokens":"many"}}`, "generationConfig.maxOutputTokens"},
		{"wrong type in a list", "claude-x", `{"contents":[{"parts":[{"text":"x"}]},{"parts":[{"text":5}]}]}`, "contents[1].parts[0].text"},
		{"no contents", "claude-x", `{}`, "contents"},
		{"candidateCount", "claude-x", `{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"candidateCount":2}}`, "generationConfig.candidateCount"},
		{"cachedContent", "claude-x", `{"cachedContent":"cachedContents/abc","contents":[{"parts":[{"text":"x"}]}]}`, "cachedContent"},
		{"role", "claude-x", `{"contents":[{"role":"system","parts":[{"text":"x"}]}]}`, "contents[0].role"},
		{"audio", "claude-x", `{"contents":[{"parts":[{"inlineData":{"mimeType":"audio/wav","data":"AAAA"}}]}]}`, "contents[0].parts[0].inlineData.mimeType"},
		{"bad base64", "claude-x", `{"contents":[{"parts":[{"inlineData":{"mimeType":"image/png","data":"*!*"}}]}]}`, "contents[0].parts[0].inlineData.data"},
		{"gs uri", "claude-x", `{"contents":[{"parts":[{"fileData":{"mimeType":"image/png","fileUri":"gs://b/o.png"}}]}]}`, "contents[0].parts[0].fileData.fileUri"},
		{"files api uri", "claude-x", `{"contents":[{"parts":[{"fileData":{"mimeType":"application/pdf","fileUri":"https://generativelanguage.googleapis.com/v1beta/files/abc"}}]}]}`, "contents[0].parts[0].fileData.fileUri"},
		{"video uri", "claude-x", `{"contents":[{"parts":[{"fileData":{"mimeType":"video/mp4","fileUri":"https://example.com/v.mp4"}}]}]}`, "contents[0].parts[0].fileData.mimeType"},
		{"call in a user turn", "claude-x", `{"contents":[{"role":"user","parts":[{"functionCall":{"name":"f"}}]}]}`, "contents[0].parts[0].functionCall"},
		{"response in a model turn", "claude-x", `{"contents":[{"role":"model","parts":[{"functionResponse":{"name":"f"}}]}]}`, "contents[0].parts[0].functionResponse"},
		{"unnamed function", "claude-x", `{"contents":[{"parts":[{"text":"x"}]}],"tools":[{"functionDeclarations":[{"description":"d"}]}]}`, "tools[0].functionDeclarations[0].name"},
		{"duplicate function", "claude-x", `{"contents":[{"parts":[{"text":"x"}]}],"tools":[{"functionDeclarations":[{"name":"f"}]},{"functionDeclarations":[{"name":"f"}]}]}`, "tools[1].functionDeclarations[0].name"},
		{"unknown allowed function", "claude-x", `{"contents":[{"parts":[{"text":"x"}]}],"tools":[{"functionDeclarations":[{"name":"f"}]}],"toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["g"]}}}`, "toolConfig.functionCallingConfig.allowedFunctionNames"},
		{"unknown mode", "claude-x", `{"contents":[{"parts":[{"text":"x"}]}],"toolConfig":{"functionCallingConfig":{"mode":"SOMETIMES"}}}`, "toolConfig.functionCallingConfig.mode"},
		{"temperature", "claude-x", `{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"temperature":3}}`, "generationConfig.temperature"},
		{"topP", "claude-x", `{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"topP":1.5}}`, "generationConfig.topP"},
		{"negative max", "claude-x", `{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"maxOutputTokens":-5}}`, "generationConfig.maxOutputTokens"},
		{"audio out", "claude-x", `{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"responseModalities":["AUDIO"]}}`, "generationConfig.responseModalities"},
		{"enum mime", "claude-x", `{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"responseMimeType":"text/x.enum"}}`, "generationConfig.responseMimeType"},
		{"thinking level", "claude-x", `{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"thinkingConfig":{"thinkingLevel":"EXTREME"}}}`, "generationConfig.thinkingConfig.thinkingLevel"},
		{"system media", "claude-x", `{"systemInstruction":{"parts":[{"inlineData":{"mimeType":"image/png","data":"AAAA"}}]},"contents":[{"parts":[{"text":"x"}]}]}`, "systemInstruction.parts[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := Decode(tt.model, []byte(tt.body), DecodeOptions{})
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a *RequestError", err)
			}
			if re.Field != tt.field {
				t.Errorf("Field = %q, want %q (message %q)", re.Field, tt.field, re.Message)
			}
			if re.Message == "" {
				t.Error("empty message")
			}
		})
	}
}

// TestDecode_Info checks what Decode hands to the response side.
func TestDecode_Info(t *testing.T) {
	_, info := decodeJSON(t, "models/gpt-like", `{"contents":[{"parts":[{"text":"x"}]}],
		"tools":[{"functionDeclarations":[{"name":"ns.tool"}]},{"codeExecution":{}}],
		"safetySettings":[],"labels":{"a":"b"},
		"generationConfig":{"seed":3,"thinkingConfig":{"includeThoughts":true}}}`,
		DecodeOptions{Aliases: map[string]string{"gpt-like": "claude-sonnet-4-5"}})
	if info.Model != "gpt-like" {
		t.Errorf("Model = %q, want the client's name", info.Model)
	}
	if !info.IncludeThoughts {
		t.Error("IncludeThoughts = false")
	}
	if got := info.clientName("ns_tool"); got != "ns.tool" {
		t.Errorf("clientName = %q", got)
	}
	want := []string{"labels", "safetySettings", "generationConfig.seed", "tools[1].codeExecution"}
	if diff := cmp.Diff(want, info.Ignored); diff != "" {
		t.Errorf("Ignored (-want +got):\n%s", diff)
	}
}

// TestDecode_ThinkingRoundTrip sends back what the Encoder produced and
// checks the upstream gets the signed thinking blocks unchanged, first in
// the function-calling turn.
func TestDecode_ThinkingRoundTrip(t *testing.T) {
	blocks := []carried{{Type: "thinking", Thinking: "plan: call f", Signature: "Sig+/==abc"}, {Type: "redacted_thinking", Data: "opaque=="}}
	sig := encodeCarrier(blocks)
	body := `{"contents":[
		{"role":"user","parts":[{"text":"go"}]},
		{"role":"model","parts":[{"text":"plan: call f","thought":true},{"functionCall":{"id":"toolu_9","name":"f","args":{}},"thoughtSignature":"` + sig + `"}]},
		{"role":"user","parts":[{"functionResponse":{"id":"toolu_9","name":"f","response":{"result":"done"}}}]}],
		"tools":[{"functionDeclarations":[{"name":"f"}]}],
		"generationConfig":{"thinkingConfig":{"thinkingBudget":2048}}}`
	got, _ := decodeJSON(t, "claude-sonnet-4-5", body, DecodeOptions{})
	want := parseJSON(t, `[
		{"role":"user","content":[{"type":"text","text":"go"}]},
		{"role":"assistant","content":[{"type":"thinking","thinking":"plan: call f","signature":"Sig+/==abc"},{"type":"redacted_thinking","data":"opaque=="},
			{"type":"tool_use","id":"toolu_9","name":"f","input":{}}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_9","content":"done"}]}]`)
	if diff := cmp.Diff(want, got["messages"]); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if got["thinking"] == nil {
		t.Error("thinking was turned off although the loop carries its thinking")
	}

	// A foreign signature (Gemini's own) carries nothing, and with thinking
	// on but no signed thinking in the calling turn, thinking is turned off
	// rather than have the upstream refuse the request: with thinking on,
	// Anthropic wants the assistant turn of a tool loop to start with
	// signed thinking.
	foreign := `{"contents":[
		{"role":"user","parts":[{"text":"go"}]},
		{"role":"model","parts":[{"functionCall":{"name":"f","args":{}},"thoughtSignature":"CiQBcsjafE3Q"}]},
		{"role":"user","parts":[{"functionResponse":{"name":"f","response":{"result":"done"}}}]}],
		"tools":[{"functionDeclarations":[{"name":"f"}]}],
		"generationConfig":{"temperature":0.2,"thinkingConfig":{"thinkingBudget":2048}}}`
	got, info := decodeJSON(t, "claude-sonnet-4-5", foreign, DecodeOptions{})
	if got["thinking"] != nil {
		t.Errorf("thinking = %v, want it off", got["thinking"])
	}
	if got["temperature"] != 0.2 {
		t.Errorf("temperature = %v, want 0.2 kept once thinking is off", got["temperature"])
	}
	if len(info.Ignored) == 0 {
		t.Error("dropping thinking was not noted in Ignored")
	}
}

func TestStdBase64(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{"aGVsbG8=", "aGVsbG8=", true},
		{"aGVsbG8", "aGVsbG8=", true},
		{"-_-_", "+/+/", true},
		{"aGVs\nbG8=", "aGVsbG8=", true},
		{"a", "", false},
		{"a=b=", "", false},
		{"a$b", "", false},
	} {
		got, ok := stdBase64(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("stdBase64(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCamel(t *testing.T) {
	for in, want := range map[string]string{
		"system_instruction": "systemInstruction", "inlineData": "inlineData", "max_output_tokens": "maxOutputTokens",
		"_private": "_private", "text": "text",
	} {
		if got := camel(in); got != want {
			t.Errorf("camel(%q) = %q, want %q", in, got, want)
		}
	}
}

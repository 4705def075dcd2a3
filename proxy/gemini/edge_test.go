package gemini

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/sse"
)

// The TestDecode_, TestEncoder_, TestRoundTrip_ and TestErrorBody_ tests in
// this file each check one conversion rule, as it applies to Gemini, and
// are named after it.

// stream is a small builder of upstream SSE transcripts.
type stream struct{ bytes.Buffer }

func (s *stream) ev(name, data string) *stream {
	s.WriteString("event: " + name + "\ndata: " + data + "\n\n")
	return s
}

func (s *stream) start(usage string) *stream {
	if usage == "" {
		usage = `{"input_tokens":10,"output_tokens":1}`
	}
	return s.ev("message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[],"usage":`+usage+`}}`)
}

func (s *stream) text(i int, parts ...string) *stream {
	idx := itoa(i)
	s.ev("content_block_start", `{"type":"content_block_start","index":`+idx+`,"content_block":{"type":"text","text":""}}`)
	for _, p := range parts {
		b, _ := json.Marshal(p)
		s.ev("content_block_delta", `{"type":"content_block_delta","index":`+idx+`,"delta":{"type":"text_delta","text":`+string(b)+`}}`)
	}
	return s.ev("content_block_stop", `{"type":"content_block_stop","index":`+idx+`}`)
}

func (s *stream) tool(i int, id, name string, fragments ...string) *stream {
	idx := itoa(i)
	s.ev("content_block_start", `{"type":"content_block_start","index":`+idx+`,"content_block":{"type":"tool_use","id":"`+id+`","name":"`+name+`","input":{}}}`)
	for _, f := range fragments {
		b, _ := json.Marshal(f)
		s.ev("content_block_delta", `{"type":"content_block_delta","index":`+idx+`,"delta":{"type":"input_json_delta","partial_json":`+string(b)+`}}`)
	}
	return s.ev("content_block_stop", `{"type":"content_block_stop","index":`+idx+`}`)
}

func (s *stream) end(reason, usage string) *stream {
	s.ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"`+reason+`","stop_sequence":null},"usage":`+usage+`}`)
	return s.ev("message_stop", `{"type":"message_stop"}`)
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// chunk is the part of a streamed GenerateContentResponse the tests read.
type chunk struct {
	Candidates []struct {
		Content struct {
			Role  string `json:"role"`
			Parts []struct {
				Text             string `json:"text"`
				Thought          bool   `json:"thought"`
				ThoughtSignature string `json:"thoughtSignature"`
				FunctionCall     *struct {
					ID   string          `json:"id"`
					Name string          `json:"name"`
					Args json.RawMessage `json:"args"`
				} `json:"functionCall"`
			} `json:"parts"`
		} `json:"content"`
		FinishReason string `json:"finishReason"`
	} `json:"candidates"`
	UsageMetadata *struct {
		PromptTokenCount        int64 `json:"promptTokenCount"`
		CandidatesTokenCount    int64 `json:"candidatesTokenCount"`
		CachedContentTokenCount int64 `json:"cachedContentTokenCount"`
		ThoughtsTokenCount      int64 `json:"thoughtsTokenCount"`
		TotalTokenCount         int64 `json:"totalTokenCount"`
	} `json:"usageMetadata"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
	} `json:"error"`
}

// chunks parses an SSE client stream.
func chunks(t *testing.T, out []byte) []chunk {
	t.Helper()
	checkFrames(t, out, false)
	var list []chunk
	for _, frame := range strings.Split(strings.TrimSuffix(string(out), "\r\n\r\n"), "\r\n\r\n") {
		var c chunk
		if err := json.Unmarshal([]byte(strings.TrimPrefix(frame, "data: ")), &c); err != nil {
			t.Fatalf("frame %q: %v", frame, err)
		}
		list = append(list, c)
	}
	return list
}

func encodeStream(t *testing.T, info Info, s *stream) []chunk {
	t.Helper()
	return chunks(t, replay(t, NewEncoder(info), s.Bytes()))
}

func messagesOf(t *testing.T, body string) any {
	t.Helper()
	got, _ := decodeJSON(t, "claude-sonnet-4-5", body, DecodeOptions{})
	return got["messages"]
}

func TestDecode_EmptyTextPartsDropped(t *testing.T) {
	got := messagesOf(t, `{"contents":[
		{"role":"user","parts":[{"text":""},{"text":"hi"}]},
		{"role":"model","parts":[{"text":""}]},
		{"role":"user","parts":[{"text":"again"}]}]}`)
	want := parseJSON(t, `[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"text","text":"again"}]}]`)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	// Nothing left at all, and no system prompt: a clear error.
	_, _, err := Decode("claude-x", []byte(`{"contents":[{"role":"user","parts":[{"text":""}]}]}`), DecodeOptions{})
	var re *RequestError
	if !errors.As(err, &re) || re.Field != "contents" {
		t.Errorf("err = %v, want a RequestError on contents", err)
	}
}

func TestDecode_OnlySystemInstructionGetsPlaceholderTurn(t *testing.T) {
	got, _ := decodeJSON(t, "claude-x", `{"systemInstruction":{"parts":[{"text":"You are a poet."}]}}`, DecodeOptions{})
	want := parseJSON(t, `[{"role":"user","content":[{"type":"text","text":"Continue."}]}]`)
	if diff := cmp.Diff(want, got["messages"]); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	// A history that starts with the model gets a user turn first.
	got2 := messagesOf(t, `{"contents":[{"role":"model","parts":[{"text":"Hello, how can I help?"}]},{"role":"user","parts":[{"text":"hi"}]}]}`)
	if m := got2.([]any)[0].(map[string]any); m["role"] != "user" {
		t.Errorf("first message role = %v, want user", m["role"])
	}
}

func TestDecode_ConsecutiveSameRoleMerged(t *testing.T) {
	got := messagesOf(t, `{"contents":[
		{"role":"user","parts":[{"text":"a"}]},
		{"role":"user","parts":[{"text":"b"}]},
		{"role":"model","parts":[{"functionCall":{"name":"f","args":{"x":1}}}]},
		{"role":"model","parts":[{"functionCall":{"name":"g","args":{}}}]},
		{"role":"function","parts":[{"functionResponse":{"name":"g","response":{"result":"G"}}}]},
		{"role":"user","parts":[{"text":"and?"}]},
		{"role":"function","parts":[{"functionResponse":{"name":"f","response":{"result":"F"}}}]}]}`)
	want := parseJSON(t, `[
		{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
		{"role":"assistant","content":[{"type":"tool_use","id":"toolu_llmgw_1","name":"f","input":{"x":1}},{"type":"tool_use","id":"toolu_llmgw_2","name":"g","input":{}}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_llmgw_1","content":"F"},{"type":"tool_result","tool_use_id":"toolu_llmgw_2","content":"G"},
			{"type":"text","text":"and?"}]}]`)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
}

func TestDecode_FunctionResponseContent(t *testing.T) {
	got := messagesOf(t, `{"contents":[
		{"role":"model","parts":[{"functionCall":{"id":"a","name":"shot","args":{}}},{"functionCall":{"id":"b","name":"stat","args":{}}},{"functionCall":{"id":"c","name":"fail","args":{}}}]},
		{"role":"user","parts":[
			{"functionResponse":{"id":"a","name":"shot","response":{"output":"here"},"parts":[{"inlineData":{"mimeType":"image/png","data":"iVBORw0KGgo="}}]}},
			{"functionResponse":{"id":"b","name":"stat","response":{"size":3,"mode":"rw"}}},
			{"functionResponse":{"id":"c","name":"fail","response":{"error":"disk full"}}}]}]}`)
	want := parseJSON(t, `[
		{"role":"user","content":[{"type":"text","text":"Continue."}]},
		{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"shot","input":{}},{"type":"tool_use","id":"b","name":"stat","input":{}},{"type":"tool_use","id":"c","name":"fail","input":{}}]},
		{"role":"user","content":[
			{"type":"tool_result","tool_use_id":"a","content":[{"type":"text","text":"here"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}]},
			{"type":"tool_result","tool_use_id":"b","content":"{\"size\":3,\"mode\":\"rw\"}"},
			{"type":"tool_result","tool_use_id":"c","content":"disk full","is_error":true}]}]`)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
}

func TestDecode_CallIDsSanitized(t *testing.T) {
	got := messagesOf(t, `{"contents":[
		{"role":"user","parts":[{"text":"go"}]},
		{"role":"model","parts":[{"functionCall":{"id":"functions.read:0","name":"read","args":{}}},{"functionCall":{"id":"call 1","name":"read","args":{}}}]},
		{"role":"user","parts":[{"functionResponse":{"id":"call 1","name":"read","response":{"result":"B"}}},{"functionResponse":{"id":"functions.read:0","name":"read","response":{"result":"A"}}}]},
		{"role":"model","parts":[{"functionCall":{"id":"functions.read:0","name":"read","args":{}}}]},
		{"role":"user","parts":[{"functionResponse":{"id":"functions.read:0","name":"read","response":{"result":"C"}}}]}]}`)
	want := parseJSON(t, `[
		{"role":"user","content":[{"type":"text","text":"go"}]},
		{"role":"assistant","content":[{"type":"tool_use","id":"functions_read_0","name":"read","input":{}},{"type":"tool_use","id":"call_1","name":"read","input":{}}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"functions_read_0","content":"A"},{"type":"tool_result","tool_use_id":"call_1","content":"B"}]},
		{"role":"assistant","content":[{"type":"tool_use","id":"functions_read_0_2","name":"read","input":{}}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"functions_read_0_2","content":"C"}]}]`)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}

	// Two client ids that sanitize alike stay distinct, and each answer
	// finds its own call.
	got = messagesOf(t, `{"contents":[
		{"role":"user","parts":[{"text":"go"}]},
		{"role":"model","parts":[{"functionCall":{"id":"a.b","name":"f","args":{}}},{"functionCall":{"id":"a_b","name":"f","args":{}}}]},
		{"role":"user","parts":[{"functionResponse":{"id":"a_b","name":"f","response":{"result":"second"}}},{"functionResponse":{"id":"a.b","name":"f","response":{"result":"first"}}}]}]}`)
	want = parseJSON(t, `[
		{"role":"user","content":[{"type":"text","text":"go"}]},
		{"role":"assistant","content":[{"type":"tool_use","id":"a_b","name":"f","input":{}},{"type":"tool_use","id":"a_b_2","name":"f","input":{}}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"a_b","content":"first"},{"type":"tool_result","tool_use_id":"a_b_2","content":"second"}]}]`)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("colliding ids (-want +got):\n%s", diff)
	}
}

func TestRoundTrip_FunctionNamesRestored(t *testing.T) {
	body := `{"contents":[{"role":"user","parts":[{"text":"go"}]},
		{"role":"model","parts":[{"functionCall":{"id":"t1","name":"mcp.fs/read file","args":{}}}]},
		{"role":"user","parts":[{"functionResponse":{"id":"t1","name":"mcp.fs/read file","response":{"result":"x"}}}]}],
		"tools":[{"functionDeclarations":[{"name":"mcp.fs/read file"},{"name":"mcp.fs:read_file"}]}]}`
	req, info, err := Decode("claude-x", []byte(body), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if req.Tools[0].Name != "mcp_fs_read_file" || req.Tools[1].Name == req.Tools[0].Name {
		t.Errorf("tool names = %q, %q: want valid and distinct", req.Tools[0].Name, req.Tools[1].Name)
	}
	if got := req.Messages[1].Content[0].Name; got != req.Tools[0].Name {
		t.Errorf("history call name = %q, want %q", got, req.Tools[0].Name)
	}
	s := new(stream).start("").tool(0, "toolu_1", req.Tools[1].Name, `{"p":"/x"}`).end("tool_use", `{"output_tokens":5}`)
	c := encodeStream(t, info, s)
	if fc := c[0].Candidates[0].Content.Parts[0].FunctionCall; fc == nil || fc.Name != "mcp.fs:read_file" {
		t.Errorf("streamed call = %+v, want the client's name", fc)
	}
	acc := accumulate(t, s.Bytes())
	res, _ := Result(acc, info)
	if !bytes.Contains(res, []byte(`"name":"mcp.fs:read_file"`)) {
		t.Errorf("Result does not restore the name: %s", res)
	}
}

func TestRoundTrip_BadArgumentsBecomeEmptyObject(t *testing.T) {
	got := messagesOf(t, `{"contents":[{"role":"user","parts":[{"text":"go"}]},{"role":"model","parts":[
		{"functionCall":{"id":"a","name":"f","args":""}},
		{"functionCall":{"id":"b","name":"f","args":[1,2]}},
		{"functionCall":{"id":"c","name":"f","args":"{\"q\":1}"}},
		{"functionCall":{"id":"d","name":"f"}}]}]}`)
	var inputs []string
	for _, b := range got.([]any)[1].(map[string]any)["content"].([]any) {
		in, _ := json.Marshal(b.(map[string]any)["input"])
		inputs = append(inputs, string(in))
	}
	if diff := cmp.Diff([]string{`{}`, `{}`, `{"q":1}`, `{}`}, inputs); diff != "" {
		t.Errorf("inputs (-want +got):\n%s", diff)
	}
	// An upstream input that is not an object reaches the client as {}.
	var acc anthropic.Accumulator
	acc.Response.Content = []anthropic.ContentBlock{{Type: "tool_use", ID: "t", Name: "f", Input: json.RawMessage(`[1]`)}}
	res, _ := Result(&acc, Info{Model: "m"})
	if !bytes.Contains(res, []byte(`"args":{}`)) {
		t.Errorf("Result = %s, want args {}", res)
	}
}

func TestEncoder_StreamedArgumentsJoined(t *testing.T) {
	s := new(stream).start("").
		tool(0, "toolu_a", "f", "", `{"city": `, `"Par`, `is", "n": [1, `, `2]}`).
		tool(1, "toolu_b", "g").
		end("tool_use", `{"output_tokens":9}`)
	c := encodeStream(t, Info{Model: "m"}, s)
	if len(c) != 3 {
		t.Fatalf("got %d chunks, want one per call and the last", len(c))
	}
	a := c[0].Candidates[0].Content.Parts[0].FunctionCall
	b := c[1].Candidates[0].Content.Parts[0].FunctionCall
	if a == nil || a.ID != "toolu_a" || string(a.Args) != `{"city":"Paris","n":[1,2]}` {
		t.Errorf("first call = %+v", a)
	}
	if b == nil || b.ID != "toolu_b" || string(b.Args) != `{}` {
		t.Errorf("no-argument call = %+v, want args {}", b)
	}
	if got := c[2].Candidates[0].FinishReason; got != "STOP" {
		t.Errorf("finishReason = %q, want STOP for function calls", got)
	}
}

func TestDecode_DefaultMaxTokens(t *testing.T) {
	for model, want := range map[string]int{"claude-sonnet-4-5": 32000, "claude-3-5-haiku-20241022": 8192, "claude-next-1": 8192} {
		req, _, err := Decode(model, []byte(`{"contents":[{"parts":[{"text":"x"}]}]}`), DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if req.MaxTokens != want {
			t.Errorf("%s: max_tokens = %d, want %d", model, req.MaxTokens, want)
		}
	}
}

func TestDecode_MaxTokensClampedToModelCap(t *testing.T) {
	req, _, err := Decode("claude-opus-4-1", []byte(`{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"maxOutputTokens":65536}}`), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if req.MaxTokens != 32000 {
		t.Errorf("max_tokens = %d, want the cap 32000", req.MaxTokens)
	}
}

func TestDecode_ThinkingBudgetFitsMaxTokens(t *testing.T) {
	for _, tt := range []struct {
		body            string
		budget, maxToks int
	}{
		{`{"maxOutputTokens":500,"thinkingConfig":{"thinkingBudget":100}}`, 1024, 5120},
		{`{"maxOutputTokens":2000,"thinkingConfig":{"thinkingBudget":4000}}`, 4000, 8096},
		{`{"thinkingConfig":{"thinkingBudget":100000}}`, 30976, 32000},
	} {
		req, _, err := Decode("claude-opus-4-1", []byte(`{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":`+tt.body+`}`), DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if req.Thinking == nil || req.Thinking.BudgetTokens != tt.budget || req.MaxTokens != tt.maxToks {
			t.Errorf("%s: thinking %+v, max_tokens %d; want budget %d, max %d", tt.body, req.Thinking, req.MaxTokens, tt.budget, tt.maxToks)
		}
	}
}

func TestDecode_ThinkingDropsSampling(t *testing.T) {
	req, _, err := Decode("claude-sonnet-4-5", []byte(`{"contents":[{"parts":[{"text":"x"}]}],
		"generationConfig":{"temperature":0.3,"topK":5,"topP":0.5,"thinkingConfig":{"thinkingBudget":2048}}}`), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if req.Thinking == nil || req.Temperature != nil || req.TopK != nil || req.TopP != nil {
		t.Errorf("thinking %+v, temperature %v, top_k %v, top_p %v; want thinking and no sampling knobs", req.Thinking, req.Temperature, req.TopK, req.TopP)
	}
	req, _, _ = Decode("claude-sonnet-4-5", []byte(`{"contents":[{"parts":[{"text":"x"}]}],
		"generationConfig":{"topP":0.97,"thinkingConfig":{"thinkingBudget":2048}}}`), DecodeOptions{})
	if req.TopP == nil || *req.TopP != 0.97 {
		t.Errorf("top_p = %v, want 0.97 kept (>= 0.95 is allowed with thinking)", req.TopP)
	}
}

func TestDecode_TemperatureWinsOverTopP(t *testing.T) {
	req, _, err := Decode("claude-sonnet-4-5", []byte(`{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"temperature":0.7,"topP":0.9}}`), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if req.Temperature == nil || *req.Temperature != 0.7 || req.TopP != nil {
		t.Errorf("temperature %v, top_p %v; want only the temperature", req.Temperature, req.TopP)
	}
}

func TestDecode_TemperatureClamped(t *testing.T) {
	req, _, err := Decode("claude-sonnet-4-5", []byte(`{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"temperature":1.7}}`), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if req.Temperature == nil || *req.Temperature != 1 {
		t.Errorf("temperature = %v, want 1", req.Temperature)
	}
}

func TestDecode_BlankStopSequencesDropped(t *testing.T) {
	req, _, err := Decode("claude-x", []byte(`{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"stopSequences":["\n","","  ","END"," stop "]}}`), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"END", " stop "}, req.StopSequences); diff != "" {
		t.Errorf("stop_sequences (-want +got):\n%s", diff)
	}
}

func TestEncoder_PromptTokensIncludeCache(t *testing.T) {
	s := new(stream).start(`{"input_tokens":7,"cache_read_input_tokens":2000,"cache_creation_input_tokens":500,"output_tokens":1}`).
		text(0, "ok").end("end_turn", `{"output_tokens":3}`)
	c := encodeStream(t, Info{Model: "m"}, s)
	u := c[len(c)-1].UsageMetadata
	if u == nil || u.PromptTokenCount != 2507 || u.CachedContentTokenCount != 2000 || u.CandidatesTokenCount != 3 || u.TotalTokenCount != 2510 {
		t.Errorf("usageMetadata = %+v; want prompt 2507 (input + cache read + cache write), cached 2000, candidates 3, total 2510", u)
	}
	res, _ := Result(accumulate(t, s.Bytes()), Info{Model: "m"})
	if !bytes.Contains(res, []byte(`"usageMetadata":{"promptTokenCount":2507,"candidatesTokenCount":3,"cachedContentTokenCount":2000,"totalTokenCount":2510}`)) {
		t.Errorf("Result usage wrong: %s", res)
	}
}

func TestEncoder_CumulativeUsageNotSummed(t *testing.T) {
	s := new(stream).start(`{"input_tokens":10,"output_tokens":1}`).text(0, "ok")
	s.ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":null},"usage":{"output_tokens":5}}`)
	s.ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":8,"input_tokens":12}}`)
	s.ev("message_stop", `{"type":"message_stop"}`)
	c := encodeStream(t, Info{Model: "m"}, s)
	u := c[len(c)-1].UsageMetadata
	if u == nil || u.PromptTokenCount != 12 || u.CandidatesTokenCount != 8 || u.TotalTokenCount != 20 {
		t.Errorf("usageMetadata = %+v; want the last cumulative figures (12 in, 8 out)", u)
	}
}

func TestEncoder_SplitUTF8(t *testing.T) {
	s := new(stream).start("").text(0, "日本語のテキスト 🙂", " ünïcödé").end("end_turn", `{"output_tokens":3}`)
	// The upstream arrives one byte at a time: multi-byte characters are
	// split across reads, and frames are decoded only once complete.
	r := sse.NewReader(iotest.OneByteReader(bytes.NewReader(s.Bytes())))
	enc := NewEncoder(Info{Model: "m"})
	var out bytes.Buffer
	for {
		ev, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if err := enc.Event(&out, ev.Name, ev.Data); err != nil {
			t.Fatal(err)
		}
		if ev.Name == "message_stop" {
			break
		}
	}
	var text strings.Builder
	for _, c := range chunks(t, out.Bytes()) {
		for _, p := range c.Candidates[0].Content.Parts {
			text.WriteString(p.Text)
		}
	}
	if got := text.String(); got != "日本語のテキスト 🙂 ünïcödé" {
		t.Errorf("text = %q", got)
	}
}

func TestEncoder_NoKeepAliveBytes(t *testing.T) {
	enc := NewEncoder(Info{Model: "m"})
	var out bytes.Buffer
	for _, ev := range []struct{ name, data string }{
		{"ping", `{"type":"ping"}`},
		{"message_start", `{"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":1,"output_tokens":1}}}`},
		{"ping", `{"type":"ping"}`},
		{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`},
		{"ping", `{"type":"ping"}`},
		{"future_event", `{"type":"future_event"}`},
	} {
		if err := enc.Event(&out, ev.name, []byte(ev.data)); err != nil {
			t.Fatal(err)
		}
	}
	if out.Len() != 0 {
		t.Errorf("wrote %q for pings and empty starts; a Gemini client must see nothing but data frames", out.String())
	}
	s := new(stream).start("").ev("ping", `{"type":"ping"}`).text(0, "a", "b").ev("ping", `{"type":"ping"}`).end("end_turn", `{"output_tokens":2}`)
	out.Reset()
	out.Write(replay(t, NewEncoder(Info{Model: "m"}), s.Bytes()))
	checkFrames(t, out.Bytes(), false)
	if bytes.Contains(out.Bytes(), []byte("event:")) || bytes.Contains(out.Bytes(), []byte("\n:")) || bytes.HasPrefix(out.Bytes(), []byte(":")) {
		t.Errorf("stream has event lines or comments:\n%s", out.Bytes())
	}
}

func TestEncoder_MidStreamErrorIsAnError(t *testing.T) {
	s := new(stream).start("")
	s.ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	s.ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"par"}}`)
	s.ev("error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
	c := encodeStream(t, Info{Model: "m"}, s)
	last := c[len(c)-1]
	if last.Error == nil || last.Error.Code != 503 || last.Error.Status != "UNAVAILABLE" || last.Error.Message != "Overloaded" {
		t.Errorf("last frame error = %+v, want 503 UNAVAILABLE", last.Error)
	}
	for _, ch := range c {
		for _, cand := range ch.Candidates {
			if cand.FinishReason != "" {
				t.Errorf("a failed stream reported finishReason %q", cand.FinishReason)
			}
		}
	}
}

func TestEncoder_StreamWithoutMessageStopFails(t *testing.T) {
	s := new(stream).start("").text(0, "all")
	s.ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}`)
	c := encodeStream(t, Info{Model: "m"}, s) // replay calls Fail at the end of input, as the proxy does
	last := c[len(c)-1]
	if last.Error == nil || last.Error.Status != "INTERNAL" {
		t.Errorf("last frame = %+v, want an error", last)
	}
	for _, ch := range c {
		if len(ch.Candidates) > 0 && ch.Candidates[0].FinishReason != "" {
			t.Errorf("finishReason %q reported for a stream that never finished", ch.Candidates[0].FinishReason)
		}
	}
	// Fail after the end writes nothing more.
	enc := NewEncoder(Info{Model: "m"})
	replay(t, enc, new(stream).start("").text(0, "x").end("end_turn", `{"output_tokens":1}`).Bytes())
	var out bytes.Buffer
	if err := enc.Fail(&out, "api_error", "late"); err != nil || out.Len() != 0 {
		t.Errorf("Fail after the end wrote %q (err %v)", out.String(), err)
	}
}

func TestRoundTrip_FunctionCallsWithoutIDs(t *testing.T) {
	body := `{"contents":[
		{"role":"user","parts":[{"text":"weather in Paris and Rome, and the time"}]},
		{"role":"model","parts":[
			{"functionCall":{"name":"weather","args":{"city":"Paris"}}},
			{"functionCall":{"name":"time","args":{}}},
			{"functionCall":{"name":"weather","args":{"city":"Rome"}}}]},
		{"role":"user","parts":[
			{"functionResponse":{"name":"time","response":{"result":"noon"}}},
			{"functionResponse":{"name":"weather","response":{"result":"sunny"}}},
			{"functionResponse":{"name":"weather","response":{"result":"rainy"}}}]}]}`
	got, info := decodeJSON(t, "claude-x", body, DecodeOptions{})
	want := parseJSON(t, `[
		{"role":"user","content":[{"type":"text","text":"weather in Paris and Rome, and the time"}]},
		{"role":"assistant","content":[
			{"type":"tool_use","id":"toolu_llmgw_1","name":"weather","input":{"city":"Paris"}},
			{"type":"tool_use","id":"toolu_llmgw_2","name":"time","input":{}},
			{"type":"tool_use","id":"toolu_llmgw_3","name":"weather","input":{"city":"Rome"}}]},
		{"role":"user","content":[
			{"type":"tool_result","tool_use_id":"toolu_llmgw_1","content":"sunny"},
			{"type":"tool_result","tool_use_id":"toolu_llmgw_2","content":"noon"},
			{"type":"tool_result","tool_use_id":"toolu_llmgw_3","content":"rainy"}]}]`)
	if diff := cmp.Diff(want, got["messages"]); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if info.SynthesizedIDs != 3 {
		t.Errorf("SynthesizedIDs = %d, want 3", info.SynthesizedIDs)
	}
	// Deterministic: the same history gives the same ids (and cache prefix).
	again, _ := decodeJSON(t, "claude-x", body, DecodeOptions{})
	if diff := cmp.Diff(got, again); diff != "" {
		t.Errorf("second decode differs:\n%s", diff)
	}
	// Our functionCall parts always carry an id.
	c := encodeStream(t, info, new(stream).start("").tool(0, "toolu_x", "weather", `{"city":"Oslo"}`).end("tool_use", `{"output_tokens":1}`))
	if fc := c[0].Candidates[0].Content.Parts[0].FunctionCall; fc == nil || fc.ID != "toolu_x" {
		t.Errorf("functionCall = %+v, want id toolu_x", fc)
	}
}

// TestDecode_Pairing covers what happens around unmatched calls and
// responses in Gemini histories: a call answered twice keeps the last
// answer, a call never answered is sent as interrupted, and a response to
// no call is kept as text.
func TestDecode_Pairing(t *testing.T) {
	got, info := decodeJSON(t, "claude-x", `{"contents":[
		{"role":"user","parts":[{"text":"go"}]},
		{"role":"model","parts":[{"functionCall":{"id":"a","name":"f","args":{}}},{"functionCall":{"id":"b","name":"f","args":{}}}]},
		{"role":"user","parts":[
			{"functionResponse":{"id":"a","name":"f","response":{"result":"first"}}},
			{"functionResponse":{"id":"a","name":"f","response":{"result":"second"}}},
			{"functionResponse":{"id":"zzz","name":"g","response":{"result":"stray"}}},
			{"text":"stop there"}]}]}`, DecodeOptions{})
	want := parseJSON(t, `[
		{"role":"user","content":[{"type":"text","text":"go"}]},
		{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"f","input":{}},{"type":"tool_use","id":"b","name":"f","input":{}}]},
		{"role":"user","content":[
			{"type":"tool_result","tool_use_id":"a","content":"second"},
			{"type":"tool_result","tool_use_id":"b","content":"interrupted: no result was sent for this tool call","is_error":true},
			{"type":"text","text":"Result of tool call zzz:\nstray"},
			{"type":"text","text":"stop there"}]}]`)
	if diff := cmp.Diff(want, got["messages"]); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if info.Orphans != 1 {
		t.Errorf("Orphans = %d, want 1", info.Orphans)
	}
}

func TestDecode_GeminiSchemaTypes(t *testing.T) {
	req, _, err := Decode("claude-x", []byte(`{"contents":[{"parts":[{"text":"x"}]}],"tools":[{"function_declarations":[
		{"name":"a","parameters":{"type":"OBJECT","properties":{
			"name":{"type":"STRING","nullable":true,"format":"enum","enum":["x","y"]},
			"tags":{"type":"ARRAY","items":{"type":"STRING"},"max_items":3},
			"type":{"type":"INTEGER","description":"a property called type"}},
			"required":["name"],"property_ordering":["name","tags"]}},
		{"name":"b","parametersJsonSchema":{"type":"object","properties":{"n":{"type":["number","null"]}},"additionalProperties":false}}]}]}`), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"properties":{"name":{"enum":["x","y"],"type":["string","null"]},"tags":{"items":{"type":"string"},"maxItems":3,"type":"array"},"type":{"description":"a property called type","type":"integer"}},"required":["name"],"type":"object"}`,
		`{"additionalProperties":false,"properties":{"n":{"type":["number","null"]}},"type":"object"}`,
	}
	for i, tool := range req.Tools {
		if diff := cmp.Diff(parseJSON(t, want[i]), parseJSON(t, string(tool.InputSchema))); diff != "" {
			t.Errorf("tool %s schema (-want +got):\n%s", tool.Name, diff)
		}
	}
}

func TestDecode_SchemaUnionsRefsMissing(t *testing.T) {
	req, _, err := Decode("claude-x", []byte(`{"contents":[{"parts":[{"text":"x"}]}],"tools":[{"functionDeclarations":[
		{"name":"none"},
		{"name":"union","parametersJsonSchema":{"anyOf":[{"type":"object","properties":{"a":{"type":"string"}}},{"type":"object","properties":{"b":{"type":"integer"}}}]}},
		{"name":"refs","parametersJsonSchema":{"type":"object","properties":{"p":{"$ref":"#/$defs/P"}},"$defs":{"P":{"type":"object","properties":{"x":{"type":"number"}}}}}}]}]}`), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"type":"object","properties":{}}`,
		`{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}`,
		`{"type":"object","properties":{"p":{"type":"object","properties":{"x":{"type":"number"}}}}}`,
	}
	for i, tool := range req.Tools {
		if diff := cmp.Diff(parseJSON(t, want[i]), parseJSON(t, string(tool.InputSchema))); diff != "" {
			t.Errorf("tool %s schema (-want +got):\n%s", tool.Name, diff)
		}
	}
}

func TestDecode_ImageSources(t *testing.T) {
	got := messagesOf(t, `{"contents":[{"parts":[
		{"inlineData":{"mimeType":"image/jpg","data":"_9j_4AAQ"}},
		{"fileData":{"mimeType":"image/webp","fileUri":"https://cdn.example.com/a?sig=1"}},
		{"fileData":{"fileUri":"https://cdn.example.com/b.PNG"}}]}]}`)
	want := parseJSON(t, `[{"role":"user","content":[
		{"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/4AAQ"}},
		{"type":"image","source":{"type":"url","url":"https://cdn.example.com/a?sig=1"}},
		{"type":"image","source":{"type":"url","url":"https://cdn.example.com/b.PNG"}}]}]`)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	for _, bad := range []string{
		`{"inlineData":{"mimeType":"image/heic","data":"AAAA"}}`,
		`{"fileData":{"mimeType":"image/png","fileUri":"http://example.com/a.png"}}`,
		`{"fileData":{"fileUri":"https://example.com/noext"}}`,
	} {
		_, _, err := Decode("claude-x", []byte(`{"contents":[{"parts":[`+bad+`]}]}`), DecodeOptions{})
		var re *RequestError
		if !errors.As(err, &re) || !strings.HasPrefix(re.Field, "contents[0].parts[0].") {
			t.Errorf("%s: err = %v, want a RequestError naming the part", bad, err)
		}
	}
}

func TestErrorBody_ContextOverflow(t *testing.T) {
	msg := "prompt is too long: 210000 tokens > 200000 maximum"
	code, body := ErrorBody(400, "invalid_request_error", msg)
	want := `{"error":{"code":400,"message":"prompt is too long: 210000 tokens > 200000 maximum","status":"INVALID_ARGUMENT"}}`
	if code != 400 || string(body) != want {
		t.Errorf("ErrorBody = %d %s, want 400 %s", code, body, want)
	}
}

func TestDecode_CacheBreakpointsForGeminiClients(t *testing.T) {
	long := strings.Repeat("stable context ", 200)
	req, _, err := Decode("claude-sonnet-4-5", []byte(`{"systemInstruction":{"parts":[{"text":"`+long+`"}]},
		"tools":[{"functionDeclarations":[{"name":"a"},{"name":"b"}]}],
		"contents":[{"role":"user","parts":[{"text":"one"}]},{"role":"model","parts":[{"text":"two"}]},{"role":"user","parts":[{"text":"three"},{"text":"four"}]}]}`), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := req.Breakpoints(); n != 0 {
		t.Errorf("Decode set %d breakpoints; the proxy adds them", n)
	}
	req.AddCacheBreakpoints() // what the proxy does with every converted request
	if n := req.Breakpoints(); n > anthropic.MaxBreakpoints || n < 3 {
		t.Errorf("breakpoints = %d, want the stable prefix marked within %d", n, anthropic.MaxBreakpoints)
	}
	if req.System[0].CacheControl == nil || req.Tools[1].CacheControl == nil {
		t.Error("system prompt and tools are not marked")
	}
}

func TestErrorBody_RetryableStatuses(t *testing.T) {
	for _, tt := range []struct {
		status     int
		typ        string
		wantCode   int
		wantStatus string
	}{
		{529, "overloaded_error", 503, "UNAVAILABLE"},
		{503, "overloaded_error", 503, "UNAVAILABLE"},
		{429, "rate_limit_error", 429, "RESOURCE_EXHAUSTED"},
		{500, "api_error", 500, "INTERNAL"},
		{502, "api_error", 502, "UNAVAILABLE"},
		{504, "timeout_error", 504, "DEADLINE_EXCEEDED"},
		{401, "authentication_error", 401, "UNAUTHENTICATED"},
		{403, "permission_error", 403, "PERMISSION_DENIED"},
		{402, "billing_error", 402, "RESOURCE_EXHAUSTED"},
		{409, "conflict_error", 409, "ABORTED"},
		{200, "timeout_error", 504, "DEADLINE_EXCEEDED"}, // inside a stream: status from the type
		{200, "billing_error", 402, "RESOURCE_EXHAUSTED"},
		{404, "not_found_error", 404, "NOT_FOUND"},
		{413, "request_too_large", 413, "INVALID_ARGUMENT"},
		{200, "overloaded_error", 503, "UNAVAILABLE"}, // an error event inside a 200 stream
		{200, "some_new_error", 500, "INTERNAL"},
	} {
		code, body := ErrorBody(tt.status, tt.typ, "m")
		var e struct{ Error errorObject }
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatal(err)
		}
		if code != tt.wantCode || e.Error.Code != tt.wantCode || e.Error.Status != tt.wantStatus || e.Error.Message != "m" {
			t.Errorf("ErrorBody(%d, %s) = %d %s; want %d %s", tt.status, tt.typ, code, body, tt.wantCode, tt.wantStatus)
		}
	}
}

func TestEncoder_RefusalIsSafety(t *testing.T) {
	c := encodeStream(t, Info{Model: "m"}, new(stream).start("").text(0, "I can't help with that.").end("refusal", `{"output_tokens":6}`))
	if got := c[len(c)-1].Candidates[0].FinishReason; got != "SAFETY" {
		t.Errorf("finishReason = %q, want SAFETY", got)
	}
	for stop, want := range map[string]string{
		"end_turn": "STOP", "stop_sequence": "STOP", "tool_use": "STOP", "pause_turn": "STOP", "": "STOP",
		"max_tokens": "MAX_TOKENS", "model_context_window_exceeded": "MAX_TOKENS",
		"refusal": "SAFETY", "sensitive": "SAFETY", "something_new": "OTHER",
	} {
		if got := FinishReason(stop); got != want {
			t.Errorf("FinishReason(%q) = %q, want %q", stop, got, want)
		}
	}
}

package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// respClient is the official OpenAI Go SDK aimed at the gateway, its own
// retries off so tests see the gateway's behaviour.
func respClient(g *gateway, opts ...option.RequestOption) *openai.Client {
	c := openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(g.URL + "/v1"), option.WithAPIKey(testKey), option.WithMaxRetries(0),
	}, opts...)...)
	return &c
}

func respParams(input string) responses.ResponseNewParams {
	return responses.ResponseNewParams{
		Model: "claude-sonnet-4-5",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(input)},
	}
}

var respWeatherTool = responses.ToolUnionParam{OfFunction: &responses.FunctionToolParam{
	Name:        "get_weather",
	Description: openai.String("Current weather for a city"),
	Parameters: map[string]any{
		"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"},
	},
	Strict: openai.Bool(true),
}}

// respUpstream decodes the body of an upstream request.
type respUpstream struct {
	Model     string `json:"model"`
	MaxTokens int    `json:"max_tokens"`
	Stream    bool   `json:"stream"`
	System    []struct {
		Text string `json:"text"`
	} `json:"system"`
	Messages []struct {
		Role    string `json:"role"`
		Content []struct {
			Type      string          `json:"type"`
			Text      string          `json:"text"`
			ID        string          `json:"id"`
			Name      string          `json:"name"`
			Input     json.RawMessage `json:"input"`
			ToolUseID string          `json:"tool_use_id"`
			Content   json.RawMessage `json:"content"`
			Signature string          `json:"signature"`
		} `json:"content"`
	} `json:"messages"`
	Tools []struct {
		Name string `json:"name"`
	} `json:"tools"`
	Thinking *struct {
		Type         string `json:"type"`
		BudgetTokens int    `json:"budget_tokens"`
	} `json:"thinking"`
}

func respDecodeUpstream(t *testing.T, r upstreamtest.Request) respUpstream {
	t.Helper()
	var u respUpstream
	if err := r.Decode(&u); err != nil {
		t.Fatalf("upstream body: %v\n%s", err, r.Body)
	}
	return u
}

// respCollect reads a whole SDK stream.
func respCollect(t *testing.T, stream interface {
	Next() bool
	Current() responses.ResponseStreamEventUnion
	Err() error
}) []responses.ResponseStreamEventUnion {
	t.Helper()
	var evs []responses.ResponseStreamEventUnion
	for stream.Next() {
		evs = append(evs, stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	return evs
}

// respCheckOrder checks what every client relies on: sequence numbers
// counting up from 0, created first, exactly one terminal event, last, after
// every output_item.done.
func respCheckOrder(t *testing.T, evs []responses.ResponseStreamEventUnion) responses.ResponseStreamEventUnion {
	t.Helper()
	if len(evs) < 3 || evs[0].Type != "response.created" || evs[1].Type != "response.in_progress" {
		t.Fatalf("stream starts wrong: %v", respTypes(evs))
	}
	terminal := 0
	for i, ev := range evs {
		if ev.SequenceNumber != int64(i) {
			t.Errorf("event %d (%s): sequence_number %d", i, ev.Type, ev.SequenceNumber)
		}
		switch ev.Type {
		case "response.completed", "response.incomplete", "response.failed":
			terminal++
			if i != len(evs)-1 {
				t.Errorf("terminal event %s at %d of %d", ev.Type, i, len(evs))
			}
		}
	}
	if terminal != 1 {
		t.Fatalf("%d terminal events: %v", terminal, respTypes(evs))
	}
	return evs[len(evs)-1]
}

func respTypes(evs []responses.ResponseStreamEventUnion) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Type
	}
	return out
}

func TestResponses_NonStream(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Text("hello there"),
		upstreamtest.WithUsage(upstreamtest.Tokens{Input: 11, Output: 7})))
	g := newGateway(t, Config{Aliases: map[string]string{"gpt-5-codex": "claude-sonnet-4-5"}}, account(1, "main", "sk-ant-main", up.URL))
	c := respClient(g)

	p := respParams("hi")
	p.Model = "gpt-5-codex"
	p.Instructions = openai.String("Be brief.")
	p.Store = openai.Bool(false)
	resp, err := c.Responses.New(ctx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.OutputText(); got != "hello there" {
		t.Errorf("OutputText = %q", got)
	}
	if resp.Status != "completed" || resp.Model != "gpt-5-codex" || !strings.HasPrefix(resp.ID, "resp_") || resp.Object != "response" {
		t.Errorf("response = id %q status %q model %q object %q", resp.ID, resp.Status, resp.Model, resp.Object)
	}
	if resp.Usage.InputTokens != 11 || resp.Usage.OutputTokens != 7 || resp.Usage.TotalTokens != 18 {
		t.Errorf("usage = %+v", resp.Usage)
	}

	reqs := up.Requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream got %d requests", len(reqs))
	}
	u := respDecodeUpstream(t, reqs[0])
	if u.Model != "claude-sonnet-4-5" || !u.Stream || u.MaxTokens != 32000 || len(u.System) != 1 || u.System[0].Text != "Be brief." {
		t.Errorf("upstream request = %s", reqs[0].Body)
	}
	if strings.Contains(string(reqs[0].Body), testKey) {
		t.Error("the client key reached the upstream")
	}
}

func TestResponses_Stream(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Thinking("Let me think about it.", "sig-stream-1"),
		upstreamtest.Text("one two three four five"), upstreamtest.WithUsage(upstreamtest.Tokens{Input: 30, Output: 12})))
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	c := respClient(g)

	p := respParams("count")
	p.Reasoning = shared.ReasoningParam{Effort: shared.ReasoningEffortLow}
	evs := respCollect(t, c.Responses.NewStreaming(ctx(t), p))
	last := respCheckOrder(t, evs)
	if last.Type != "response.completed" {
		t.Fatalf("terminal = %s", last.Type)
	}
	var text, summary strings.Builder
	var done []responses.ResponseOutputItemUnion
	for _, ev := range evs {
		switch ev.Type {
		case "response.output_text.delta":
			text.WriteString(ev.Delta)
		case "response.reasoning_summary_text.delta":
			summary.WriteString(ev.Delta)
		case "response.output_item.done":
			done = append(done, ev.Item)
		}
	}
	if text.String() != "one two three four five" || summary.String() != "Let me think about it." {
		t.Errorf("text %q, summary %q", text.String(), summary.String())
	}
	if len(done) != 2 || done[0].Type != "reasoning" || done[0].EncryptedContent == "" || done[1].Type != "message" {
		t.Errorf("items done = %+v", done)
	}
	final := last.Response
	if final.OutputText() != "one two three four five" || final.Usage.TotalTokens != 42 || len(final.Output) != 2 {
		t.Errorf("completed response: text %q, usage %+v, %d items", final.OutputText(), final.Usage, len(final.Output))
	}
	u := respDecodeUpstream(t, up.Requests()[0])
	if u.Thinking == nil || u.Thinking.Type != "enabled" || u.Thinking.BudgetTokens != 1024 {
		t.Errorf("upstream thinking = %+v", u.Thinking)
	}
	row := g.rec.wait(t, 1)[0]
	if !row.Stream || row.Status != 200 || row.EndedEarly || row.Dialect != llmgw.DialectResponses {
		t.Errorf("row = %+v", row)
	}
}

func TestResponses_FunctionCallRoundTrip(t *testing.T) {
	up := upstreamtest.NewServer(t)
	up.Script("sk-ant-main",
		upstreamtest.OK(upstreamtest.Text("Checking."), upstreamtest.ToolCall("get_weather", map[string]any{"city": "Paris"})),
		upstreamtest.OK(upstreamtest.Text("It is sunny in Paris.")))
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	c := respClient(g)

	p := respParams("Weather in Paris?")
	p.Tools = []responses.ToolUnionParam{respWeatherTool}
	first, err := c.Responses.New(ctx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	var call responses.ResponseOutputItemUnion
	for _, it := range first.Output {
		if it.Type == "function_call" {
			call = it
		}
	}
	if call.Name != "get_weather" || call.CallID == "" || call.Arguments.OfString != `{"city":"Paris"}` || call.Status != "completed" {
		t.Fatalf("function call = %+v (output %d items)", call, len(first.Output))
	}

	// The next turn sends the whole history (store: false), with the result.
	out := responses.ResponseInputItemFunctionCallOutputParam{CallID: openai.String(call.CallID)}
	out.Output.OfString = openai.String("18C and sunny")
	p.Input = responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
		responses.ResponseInputItemParamOfMessage("Weather in Paris?", responses.EasyInputMessageRoleUser),
		responses.ResponseInputItemParamOfOutputMessage([]responses.ResponseOutputMessageContentUnionParam{{
			OfOutputText: &responses.ResponseOutputTextParam{Text: "Checking."},
		}}, "msg_1", responses.ResponseOutputMessageStatusCompleted),
		responses.ResponseInputItemParamOfFunctionCall(call.Arguments.OfString, call.CallID, call.Name),
		{OfFunctionCallOutput: &out},
	}}
	second, err := c.Responses.New(ctx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	if got := second.OutputText(); got != "It is sunny in Paris." {
		t.Errorf("second answer = %q", got)
	}

	reqs := up.Requests()
	if len(reqs) != 2 {
		t.Fatalf("upstream got %d requests", len(reqs))
	}
	u := respDecodeUpstream(t, reqs[1])
	if len(u.Messages) != 3 {
		t.Fatalf("second upstream request has %d messages: %s", len(u.Messages), reqs[1].Body)
	}
	asst, res := u.Messages[1], u.Messages[2]
	if asst.Role != "assistant" || len(asst.Content) != 2 || asst.Content[0].Text != "Checking." ||
		asst.Content[1].Type != "tool_use" || asst.Content[1].ID != call.CallID || asst.Content[1].Name != "get_weather" ||
		string(asst.Content[1].Input) != `{"city":"Paris"}` {
		t.Errorf("assistant turn = %+v", asst)
	}
	if res.Role != "user" || res.Content[0].Type != "tool_result" || res.Content[0].ToolUseID != call.CallID ||
		string(res.Content[0].Content) != `"18C and sunny"` {
		t.Errorf("result turn = %+v", res)
	}
	if len(u.Tools) != 1 || u.Tools[0].Name != "get_weather" {
		t.Errorf("upstream tools = %+v", u.Tools)
	}
}

func TestResponses_CustomToolCall(t *testing.T) {
	patch := "*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** End Patch\n"
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.ToolCall("apply_patch", map[string]string{"input": patch})))
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	c := respClient(g)

	p := respParams("add hello.txt")
	p.Tools = []responses.ToolUnionParam{{OfCustom: &responses.CustomToolParam{
		Name:        "apply_patch",
		Description: openai.String("Use the apply_patch tool to edit files. This is a FREEFORM tool."),
		Format: shared.CustomToolInputFormatUnionParam{OfGrammar: &shared.CustomToolInputFormatGrammarParam{
			Definition: "start: begin_patch hunk+ end_patch", Syntax: "lark",
		}},
	}}}
	evs := respCollect(t, c.Responses.NewStreaming(ctx(t), p))
	last := respCheckOrder(t, evs)
	var item responses.ResponseOutputItemUnion
	for _, ev := range evs {
		if ev.Type == "response.function_call_arguments.delta" {
			t.Errorf("a freeform tool streamed as a function call")
		}
		if ev.Type == "response.output_item.done" {
			item = ev.Item
		}
	}
	if item.Type != "custom_tool_call" || item.Input != patch || item.Name != "apply_patch" {
		t.Errorf("item = type %q name %q input %q", item.Type, item.Name, item.Input)
	}
	if last.Type != "response.completed" {
		t.Errorf("terminal = %s", last.Type)
	}
}

func TestResponses_CachedTokens(t *testing.T) {
	usage := upstreamtest.Tokens{Input: 20, Output: 7, CacheRead: 2000, CacheWrite: 100}
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Text("cached"), upstreamtest.WithUsage(usage)))
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	c := respClient(g)

	check := func(name string, u responses.ResponseUsage) {
		t.Helper()
		if u.InputTokens != 2120 || u.InputTokensDetails.CachedTokens != 2000 || u.InputTokensDetails.CacheWriteTokens != 100 ||
			u.OutputTokens != 7 || u.TotalTokens != 2127 {
			t.Errorf("%s usage = %s", name, u.RawJSON())
		}
	}
	resp, err := c.Responses.New(ctx(t), respParams("hi"))
	if err != nil {
		t.Fatal(err)
	}
	check("non-stream", resp.Usage)
	last := respCheckOrder(t, respCollect(t, c.Responses.NewStreaming(ctx(t), respParams("hi"))))
	check("stream", last.Response.Usage)

	want := llmgw.Tokens{Input: 20, Output: 7, CacheRead: 2000, CacheWrite: 100, CacheWrite5m: 100}
	for _, row := range g.rec.wait(t, 2) {
		if row.Tokens != want {
			t.Errorf("row tokens = %+v, want %+v", row.Tokens, want)
		}
	}
	// The upstream got cache breakpoints, within Anthropic's limit.
	body := string(up.Requests()[0].Body)
	if n := strings.Count(body, `"cache_control"`); n < 1 || n > 4 {
		t.Errorf("%d cache_control marks upstream", n)
	}
}

func TestResponses_UsageRow(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Text("ok"),
		upstreamtest.WithUsage(upstreamtest.Tokens{Input: 9, Output: 3, CacheRead: 40, CacheWrite: 5})))
	g := newGateway(t, Config{Aliases: map[string]string{"gpt-4o": "claude-haiku-4-5"}}, account(1, "main", "sk-ant-main", up.URL))
	p := respParams("hi")
	p.Model = "gpt-4o"
	if _, err := respClient(g).Responses.New(ctx(t), p); err != nil {
		t.Fatal(err)
	}
	row := g.rec.wait(t, 1)[0]
	want := llmgw.Tokens{Input: 9, Output: 3, CacheRead: 40, CacheWrite: 5, CacheWrite5m: 5}
	if row.Dialect != llmgw.DialectResponses || row.Model != "claude-haiku-4-5" || row.Stream || row.Status != 200 ||
		row.AccountName != "main" || row.KeyName != "alice" || row.Tokens != want {
		t.Errorf("row = %+v", row)
	}
}

func TestResponses_PreviousResponseIDRefused(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	p := respParams("and then?")
	p.PreviousResponseID = openai.String("resp_earlier")
	_, err := respClient(g).Responses.New(ctx(t), p)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("error = %v, want *openai.Error", err)
	}
	if apiErr.StatusCode != http.StatusBadRequest || apiErr.Type != "invalid_request_error" ||
		!strings.HasPrefix(apiErr.Message, "previous_response_id: ") || !strings.Contains(apiErr.Message, "resp_earlier") {
		t.Errorf("error = %d %s %q", apiErr.StatusCode, apiErr.Type, apiErr.Message)
	}
	if n := up.Count(); n != 0 {
		t.Errorf("upstream got %d requests for a refused one", n)
	}
}

func TestResponses_MidStreamErrorFails(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.FailMidStream(2))
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	evs := respCollect(t, respClient(g).Responses.NewStreaming(ctx(t), respParams("tell me a long story")))
	last := respCheckOrder(t, evs)
	if last.Type != "response.failed" {
		t.Fatalf("terminal = %s, want response.failed: %v", last.Type, respTypes(evs))
	}
	if e := last.Response.Error; e.Code != "server_error" || e.Message != "Overloaded" || last.Response.Status != "failed" {
		t.Errorf("failed response error = %+v, status %q", e, last.Response.Status)
	}
	deltas := 0
	for _, ev := range evs {
		if ev.Type == "response.output_text.delta" {
			deltas++
		}
	}
	if deltas != 2 {
		t.Errorf("%d text deltas before the failure, want 2", deltas)
	}
	row := g.rec.wait(t, 1)[0]
	if !row.EndedEarly || row.ErrorType != "overloaded_error" {
		t.Errorf("row = %+v", row)
	}
}

func TestResponses_ContextLengthExceeded(t *testing.T) {
	msg := "prompt is too long: 250000 tokens > 200000 maximum"
	up := upstreamtest.NewServer(t, upstreamtest.Fail(400, upstreamtest.Message(msg)))
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	c := respClient(g)
	check := func(name string, err error) {
		t.Helper()
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) {
			t.Fatalf("%s: error = %v, want *openai.Error", name, err)
		}
		if apiErr.StatusCode != 400 || apiErr.Code != "context_length_exceeded" || apiErr.Message != msg {
			t.Errorf("%s: error = %d code %q %q", name, apiErr.StatusCode, apiErr.Code, apiErr.Message)
		}
	}
	_, err := c.Responses.New(ctx(t), respParams("huge"))
	check("non-stream", err)
	stream := c.Responses.NewStreaming(ctx(t), respParams("huge"))
	for stream.Next() {
		t.Errorf("event %s before the error", stream.Current().Type)
	}
	check("stream", stream.Err())
}

func TestResponses_BadKey(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	_, err := respClient(g, option.WithAPIKey("sk-wrong")).Responses.New(ctx(t), respParams("hi"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Code != "invalid_api_key" {
		t.Errorf("error = %v", err)
	}
}

// TestResponses_CodexTurn posts the Codex-shaped fixture as Codex does and
// reads the stream as raw SSE.
func TestResponses_CodexTurn(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("responses", "testdata", "codex_request.json"))
	if err != nil {
		t.Fatal(err)
	}
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	req, _ := http.NewRequestWithContext(ctx(t), http.MethodPost, g.URL+"/v1/responses", bytes.NewReader(body))
	req.Header.Set("authorization", "Bearer "+testKey)
	req.Header.Set("content-type", "application/json")
	req.Header.Set("originator", "codex_cli_rs")
	req.Header.Set("session_id", "0199a3c2-7f4e-7b31-9d0a-5c2e8f1b6a44")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	res, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("content-type"), "text/event-stream") {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("status %d %s: %s", res.StatusCode, res.Header.Get("content-type"), b)
	}
	var types []string
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			types = append(types, name)
		}
	}
	if len(types) == 0 || types[len(types)-1] != "response.completed" || strings.Count(strings.Join(types, " "), "response.completed") != 1 {
		t.Errorf("events = %v", types)
	}
	u := respDecodeUpstream(t, up.Requests()[0])
	if u.Thinking == nil || len(u.Tools) != 5 || len(u.System) != 2 {
		t.Errorf("upstream: thinking %+v, %d tools, %d system blocks", u.Thinking, len(u.Tools), len(u.System))
	}
	n := len(u.Messages)
	if last := u.Messages[n-1]; last.Role != "user" || last.Content[0].Type != "tool_result" || last.Content[0].ToolUseID != "toolu_01ShellC" {
		t.Errorf("last upstream turn = %+v", last)
	}
	if first := u.Messages[n-2].Content[0]; first.Type != "thinking" || first.Signature == "" {
		t.Errorf("tool-loop turn starts with %+v", first)
	}
}

// TestResponses_SplitUTF8Frames feeds the gateway an upstream stream one
// byte at a time, so multibyte characters and frames are split across
// reads: the client must still get every character intact.
func TestResponses_SplitUTF8Frames(t *testing.T) {
	text := "héllo 世界 👋"
	var sse strings.Builder
	frame := func(name, data string) { sse.WriteString("event: " + name + "\ndata: " + data + "\n\n") }
	frame("message_start", `{"type":"message_start","message":{"id":"msg_split","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"usage":{"input_tokens":5,"output_tokens":1}}}`)
	frame("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	for _, part := range []string{"héllo ", "世界 👋"} {
		d, _ := json.Marshal(part)
		frame("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":`+string(d)+`}}`)
	}
	frame("content_block_stop", `{"type":"content_block_stop","index":0}`)
	frame("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":6}}`)
	frame("message_stop", `{"type":"message_stop"}`)
	stream := []byte(sse.String())

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("content-type", "text/event-stream")
		rc := http.NewResponseController(w)
		for i := range stream {
			if _, err := w.Write(stream[i : i+1]); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}))
	t.Cleanup(up.Close)
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	evs := respCollect(t, respClient(g).Responses.NewStreaming(ctx(t), respParams("greet")))
	last := respCheckOrder(t, evs)
	var got strings.Builder
	for _, ev := range evs {
		if ev.Type == "response.output_text.delta" {
			got.WriteString(ev.Delta)
		}
	}
	if got.String() != text || last.Response.OutputText() != text {
		t.Errorf("text = %q, final %q, want %q", got.String(), last.Response.OutputText(), text)
	}
}

// respBenchBody is a Responses request for a short answer, without its
// closing brace.
const respBenchBody = `{"model":"claude-sonnet-4-5","max_output_tokens":64,"input":"Say something short."`

// BenchmarkResponsesConversion_JSON is one non-streaming Responses request
// through the gateway (decode, upstream stream, one response object), next
// to the passthrough and direct baselines.
func BenchmarkResponsesConversion_JSON(b *testing.B) {
	benchConversion(b, false, "/v1/responses", bearer(testKey), respBenchBody+"}")
}

// BenchmarkResponsesConversion_Stream is one streaming Responses request
// (event-by-event translation), likewise.
func BenchmarkResponsesConversion_Stream(b *testing.B) {
	benchConversion(b, true, "/v1/responses", bearer(testKey), respBenchBody+`,"stream":true}`)
}

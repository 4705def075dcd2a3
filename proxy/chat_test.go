package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// chatClient returns an official OpenAI SDK client aimed at the gateway,
// with the SDK's own retries off so tests see the gateway's behaviour.
func (g *gateway) chatClient(opts ...option.RequestOption) *openai.Client {
	c := openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(g.URL + "/v1"), option.WithAPIKey(testKey), option.WithMaxRetries(0),
	}, opts...)...)
	return &c
}

// chatUpstreamRequest decodes the i-th request the fake upstream received.
func chatUpstreamRequest(t *testing.T, up *upstreamtest.Server, i int) anthropic.Request {
	t.Helper()
	reqs := up.Requests()
	if len(reqs) <= i {
		t.Fatalf("upstream got %d requests, want at least %d", len(reqs), i+1)
	}
	var r anthropic.Request
	if err := reqs[i].Decode(&r); err != nil {
		t.Fatalf("upstream request %d: %v\n%s", i, err, reqs[i].Body)
	}
	return r
}

// chatAccumulate reads a whole stream with the SDK's accumulator.
func chatAccumulate(t *testing.T, stream interface {
	Next() bool
	Current() openai.ChatCompletionChunk
	Err() error
}) (openai.ChatCompletionAccumulator, []openai.ChatCompletionChunk, error) {
	t.Helper()
	var acc openai.ChatCompletionAccumulator
	var all []openai.ChatCompletionChunk
	for stream.Next() {
		c := stream.Current()
		all = append(all, c)
		if !acc.AddChunk(c) {
			t.Fatalf("accumulator rejected chunk %d: %s", len(all), c.RawJSON())
		}
	}
	return acc, all, stream.Err()
}

func chatParams(model, text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model: model,
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage("You are terse."),
			openai.UserMessage(text),
		},
	}
}

func TestChat_NonStream(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Text("hello there"),
		upstreamtest.WithUsage(upstreamtest.Tokens{Input: 11, Output: 7, CacheRead: 5, CacheWrite: 9, CacheWrite5m: 4, CacheWrite1h: 5})))
	g := newGateway(t, Config{Aliases: map[string]string{"gpt-4o": "claude-sonnet-4-5"}}, account(1, "main", "sk-ant-main", up.URL))

	res, err := g.chatClient().Chat.Completions.New(ctx(t), chatParams("gpt-4o", "hi"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Choices) != 1 || res.Choices[0].Message.Content != "hello there" || res.Choices[0].FinishReason != "stop" {
		t.Errorf("choices = %+v", res.Choices)
	}
	if res.Model != "gpt-4o" || res.Object != "chat.completion" || !strings.HasPrefix(res.ID, "chatcmpl-") {
		t.Errorf("model %q, object %q, id %q", res.Model, res.Object, res.ID)
	}
	u := res.Usage
	if u.PromptTokens != 11+5+9 || u.CompletionTokens != 7 || u.TotalTokens != 32 ||
		u.PromptTokensDetails.CachedTokens != 5 || u.PromptTokensDetails.CacheWriteTokens != 9 {
		t.Errorf("usage = %+v", u)
	}

	r := chatUpstreamRequest(t, up, 0)
	if r.Model != "claude-sonnet-4-5" || !r.Stream || r.MaxTokens != anthropic.DefaultMaxTokens("claude-sonnet-4-5") {
		t.Errorf("upstream model %q, stream %v, max_tokens %d", r.Model, r.Stream, r.MaxTokens)
	}
	if len(r.System) != 1 || r.System[0].Text != "You are terse." {
		t.Errorf("upstream system = %+v", r.System)
	}
	if h := up.Requests()[0].Header.Get("anthropic-version"); h == "" {
		t.Error("no anthropic-version upstream")
	}

	row := g.rec.wait(t, 1)[0]
	want := llmgw.Tokens{Input: 11, Output: 7, CacheRead: 5, CacheWrite: 9, CacheWrite5m: 4, CacheWrite1h: 5}
	if row.Tokens != want {
		t.Errorf("row tokens = %+v, want %+v", row.Tokens, want)
	}
	if row.Dialect != llmgw.DialectOpenAI || row.Status != 200 || row.Stream || row.AccountName != "main" ||
		row.KeyName != "alice" || row.Model != "claude-sonnet-4-5" || row.EndedEarly || row.ErrorType != "" {
		t.Errorf("row = %+v", row)
	}
}

func TestChat_Stream(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Text("A streamed answer of several deltas."),
		upstreamtest.WithUsage(upstreamtest.Tokens{Input: 20, Output: 9, CacheRead: 100})))
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))

	p := chatParams("claude-sonnet-4-5", "stream please")
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	var httpRes *http.Response
	acc, all, err := chatAccumulate(t, g.chatClient().Chat.Completions.NewStreaming(ctx(t), p, option.WithResponseInto(&httpRes)))
	if err != nil {
		t.Fatal(err)
	}
	if got := acc.Choices[0].Message.Content; got != "A streamed answer of several deltas." {
		t.Errorf("content = %q", got)
	}
	if acc.Choices[0].FinishReason != "stop" {
		t.Errorf("finish_reason = %q", acc.Choices[0].FinishReason)
	}
	if len(all) < 4 {
		t.Fatalf("%d chunks, want role, deltas, finish and usage", len(all))
	}
	if all[0].Choices[0].Delta.Role != "assistant" {
		t.Errorf("first delta = %+v, want the role", all[0].Choices[0].Delta)
	}
	last := all[len(all)-1]
	if len(last.Choices) != 0 || last.Usage.PromptTokens != 120 || last.Usage.CompletionTokens != 9 || last.Usage.PromptTokensDetails.CachedTokens != 100 {
		t.Errorf("last chunk = %s, want the usage chunk", last.RawJSON())
	}
	if acc.Usage.TotalTokens != 129 {
		t.Errorf("accumulated usage = %+v", acc.Usage)
	}
	if ct := httpRes.Header.Get("content-type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("content-type = %q", ct)
	}

	row := g.rec.wait(t, 1)[0]
	if row.Tokens != (llmgw.Tokens{Input: 20, Output: 9, CacheRead: 100}) || !row.Stream || row.Dialect != llmgw.DialectOpenAI || row.EndedEarly {
		t.Errorf("row = %+v", row)
	}
}

func TestChat_AnthropicBetaForwarded(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	_, err := g.chatClient(option.WithHeader("anthropic-beta", "context-1m-2025-08-07")).Chat.Completions.New(ctx(t), chatParams("claude-sonnet-4-5", "x"))
	if err != nil {
		t.Fatal(err)
	}
	if got := up.Requests()[0].Header.Get("anthropic-beta"); got != "context-1m-2025-08-07" {
		t.Errorf("anthropic-beta upstream = %q", got)
	}
}

func TestChat_StreamNotBuffered(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Text("streamed")))
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	var httpRes *http.Response
	_, _, err := chatAccumulate(t, g.chatClient().Chat.Completions.NewStreaming(ctx(t), chatParams("claude-sonnet-4-5", "x"),
		option.WithResponseInto(&httpRes), option.WithHeader("accept-encoding", "gzip")))
	if err != nil {
		t.Fatal(err)
	}
	h := httpRes.Header
	if h.Get("x-accel-buffering") != "no" || h.Get("content-encoding") != "" || h.Get("cache-control") != "no-cache" {
		t.Errorf("stream headers = %v", h)
	}
}

func TestChat_StreamWithoutIncludeUsage(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Text("short")))
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	_, all, err := chatAccumulate(t, g.chatClient().Chat.Completions.NewStreaming(ctx(t), chatParams("claude-sonnet-4-5", "x")))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range all {
		if len(c.Choices) == 0 || c.JSON.Usage.Valid() {
			t.Errorf("chunk %s: no usage chunk or field without include_usage", c.RawJSON())
		}
	}
}

func TestChat_ToolRoundTrip(t *testing.T) {
	up := upstreamtest.NewServer(t)
	up.Script("sk-ant-main",
		upstreamtest.OK(upstreamtest.Text("Checking."), upstreamtest.ToolCall("get_weather", map[string]any{"city": "Paris"})),
		upstreamtest.OK(upstreamtest.Text("It is 18C in Paris.")))
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	c := g.chatClient()

	params := openai.ChatCompletionNewParams{
		Model:    "claude-sonnet-4-5",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in Paris?")},
		Tools: []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name:        "get.weather", // not a valid Anthropic name: sanitized, then restored
			Description: openai.String("Current weather"),
			Parameters:  shared.FunctionParameters{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"}},
		})},
	}
	acc, _, err := chatAccumulate(t, c.Chat.Completions.NewStreaming(ctx(t), params))
	if err != nil {
		t.Fatal(err)
	}
	msg := acc.Choices[0].Message
	if acc.Choices[0].FinishReason != "tool_calls" || len(msg.ToolCalls) != 1 || msg.Content != "Checking." {
		t.Fatalf("first answer = %s", acc.RawJSON())
	}
	call := msg.ToolCalls[0]
	if call.Function.Name != "get.weather" || call.Function.Arguments != `{"city":"Paris"}` || !strings.HasPrefix(call.ID, "toolu_") {
		t.Errorf("tool call = %+v", call)
	}
	first := chatUpstreamRequest(t, up, 0)
	if len(first.Tools) != 1 || first.Tools[0].Name != "get_weather" {
		t.Errorf("upstream tools = %+v", first.Tools)
	}

	// The result goes back in the next request.
	params.Messages = append(params.Messages, msg.ToParam(), openai.ToolMessage("18C and sunny", call.ID))
	res, err := c.Chat.Completions.New(ctx(t), params)
	if err != nil {
		t.Fatal(err)
	}
	if res.Choices[0].Message.Content != "It is 18C in Paris." {
		t.Errorf("second answer = %q", res.Choices[0].Message.Content)
	}
	second := chatUpstreamRequest(t, up, 1)
	if n := len(second.Messages); n != 3 {
		t.Fatalf("upstream got %d messages, want 3: %+v", n, second.Messages)
	}
	want := []anthropic.ContentBlock{
		{Type: "text", Text: "Checking."},
		{Type: "tool_use", ID: call.ID, Name: "get_weather", Input: json.RawMessage(`{"city":"Paris"}`)},
	}
	if diff := cmp.Diff(want, second.Messages[1].Content); diff != "" {
		t.Errorf("assistant turn upstream (-want +got):\n%s", diff)
	}
	res0 := second.Messages[2].Content[0]
	if res0.Type != "tool_result" || res0.ToolUseID != call.ID || string(res0.Content) != `"18C and sunny"` {
		t.Errorf("tool result upstream = %+v (content %s)", res0, res0.Content)
	}
}

func TestChat_ThinkingRoundTrip(t *testing.T) {
	// With the SDK: thinking comes out as reasoning_content and a
	// signed thinking_blocks entry; sent back as an extra field on the
	// assistant message, it reaches the upstream unchanged and thinking
	// stays on for the next turn of the tool loop.
	up := upstreamtest.NewServer(t, upstreamtest.ToolUse())
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	c := g.chatClient()
	params := openai.ChatCompletionNewParams{
		Model:           "claude-sonnet-4-5",
		ReasoningEffort: shared.ReasoningEffortLow,
		Messages:        []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What time is it?")},
		Tools:           []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{Name: "now"})},
	}
	res, err := c.Chat.Completions.New(ctx(t), params)
	if err != nil {
		t.Fatal(err)
	}
	msg := res.Choices[0].Message
	var blocks []struct{ Type, Thinking, Signature string }
	if err := json.Unmarshal([]byte(msg.JSON.ExtraFields["thinking_blocks"].Raw()), &blocks); err != nil || len(blocks) != 1 || blocks[0].Signature == "" {
		t.Fatalf("thinking_blocks = %s (%v)", msg.JSON.ExtraFields["thinking_blocks"].Raw(), err)
	}
	if r := msg.JSON.ExtraFields["reasoning_content"].Raw(); r == "" || r == "null" {
		t.Error("no reasoning_content")
	}
	if len(msg.ToolCalls) != 1 {
		t.Fatalf("tool calls = %+v", msg.ToolCalls)
	}
	first := chatUpstreamRequest(t, up, 0)
	if first.Thinking == nil || first.Thinking.BudgetTokens < 1024 {
		t.Errorf("upstream thinking = %+v", first.Thinking)
	}

	back := msg.ToParam()
	back.OfAssistant.SetExtraFields(map[string]any{"thinking_blocks": json.RawMessage(msg.JSON.ExtraFields["thinking_blocks"].Raw())})
	params.Messages = append(params.Messages, back, openai.ToolMessage("12:00", msg.ToolCalls[0].ID))
	if _, err := c.Chat.Completions.New(ctx(t), params); err != nil {
		t.Fatal(err)
	}
	second := chatUpstreamRequest(t, up, 1)
	lead := second.Messages[1].Content[0]
	if lead.Type != "thinking" || lead.Signature != blocks[0].Signature || lead.Thinking != blocks[0].Thinking {
		t.Errorf("assistant turn upstream starts with %+v, want the signed thinking unchanged", lead)
	}
	if second.Thinking == nil {
		t.Error("thinking turned off although the client sent its thinking back")
	}
}

func TestChat_ImageInput(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Text("A cat.")))
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	_, err := g.chatClient().Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{
		Model: "claude-sonnet-4-5",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
			openai.TextContentPart("What is in these?"),
			openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: "data:image/png;base64,iVBORw0KGgo=", Detail: "high"}),
			openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: "https://example.com/cat.jpg"}),
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := chatUpstreamRequest(t, up, 0)
	var got []*anthropic.Source
	for _, b := range r.Messages[0].Content {
		if b.Type == "image" {
			got = append(got, b.Source)
		}
	}
	want := []*anthropic.Source{
		{Type: "base64", MediaType: "image/png", Data: "iVBORw0KGgo="},
		{Type: "url", URL: "https://example.com/cat.jpg"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("image sources upstream (-want +got):\n%s", diff)
	}
}

func TestChat_PromptCaching(t *testing.T) {
	up := upstreamtest.NewServer(t)
	up.Script("sk-ant-main",
		upstreamtest.OK(upstreamtest.Text("first"), upstreamtest.WithUsage(upstreamtest.Tokens{Input: 30, Output: 2, CacheWrite: 2048})),
		upstreamtest.OK(upstreamtest.Text("second"), upstreamtest.WithUsage(upstreamtest.Tokens{Input: 30, Output: 2, CacheRead: 2048})))
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	c := g.chatClient()
	params := openai.ChatCompletionNewParams{
		Model: "claude-sonnet-4-5",
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage(strings.Repeat("A long, stable system prompt that is worth caching. ", 200)),
			openai.UserMessage("First question"),
			openai.AssistantMessage("First answer"),
			openai.UserMessage("Second question"),
		},
		Tools: []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{Name: "lookup"})},
	}
	var usages []openai.CompletionUsage
	for range 2 {
		res, err := c.Chat.Completions.New(ctx(t), params)
		if err != nil {
			t.Fatal(err)
		}
		usages = append(usages, res.Usage)
	}
	if u := usages[1]; u.PromptTokensDetails.CachedTokens != 2048 || u.PromptTokens != 2078 {
		t.Errorf("second usage = %+v, want 2048 cached of 2078", u)
	}
	if u := usages[0]; u.PromptTokensDetails.CacheWriteTokens != 2048 || u.PromptTokensDetails.CachedTokens != 0 {
		t.Errorf("first usage = %+v", u)
	}
	reqs := up.Requests()
	for i, r := range reqs {
		if n := bytes.Count(r.Body, []byte(`"cache_control"`)); n < 1 || n > anthropic.MaxBreakpoints {
			t.Errorf("upstream request %d carries %d cache_control marks, want 1..%d", i, n, anthropic.MaxBreakpoints)
		}
	}
	if !bytes.Equal(reqs[0].Body, reqs[1].Body) {
		t.Error("identical client requests gave different upstream bodies: the cached prefix would not match")
	}
	first := chatUpstreamRequest(t, up, 0)
	if first.System[len(first.System)-1].CacheControl == nil || first.Tools[0].CacheControl == nil {
		t.Errorf("system and tools are not marked: %s", reqs[0].Body)
	}
}

func TestChat_BadKey(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	_, err := g.chatClient(option.WithAPIKey("sk-wrong")).Chat.Completions.New(ctx(t), chatParams("claude-sonnet-4-5", "x"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %T %v, want *openai.Error", err, err)
	}
	if apiErr.StatusCode != http.StatusUnauthorized || apiErr.Type != "invalid_request_error" || apiErr.Code != "invalid_api_key" || apiErr.Message == "" {
		t.Errorf("error = %d %s", apiErr.StatusCode, apiErr.RawJSON())
	}
	if !strings.Contains(apiErr.RawJSON(), `"param":null`) {
		t.Errorf("param missing from %s: OpenAI's error object always carries it", apiErr.RawJSON())
	}
	if up.Count() != 0 {
		t.Errorf("upstream got %d requests for a bad client key", up.Count())
	}
}

func TestChat_RateLimitRetryAfter(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.Fail(429, upstreamtest.RetryAfter(30)))
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	_, err := g.chatClient().Chat.Completions.New(ctx(t), chatParams("claude-sonnet-4-5", "x"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %T %v, want *openai.Error", err, err)
	}
	if apiErr.StatusCode != 429 || apiErr.Type != "rate_limit_error" || apiErr.Code != "rate_limit_exceeded" {
		t.Errorf("error = %d %s", apiErr.StatusCode, apiErr.RawJSON())
	}
	if ra := apiErr.Response.Header.Get("retry-after"); ra != "30" {
		t.Errorf("retry-after = %q, want 30", ra)
	}
	row := g.rec.wait(t, 1)[0]
	if row.Status != 429 || row.Dialect != llmgw.DialectOpenAI {
		t.Errorf("row = %+v", row)
	}
}

func TestChat_Overloaded(t *testing.T) {
	// An upstream 529 reaches an OpenAI client as a status its SDK retries.
	up := upstreamtest.NewServer(t, upstreamtest.Fail(529))
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	_, err := g.chatClient().Chat.Completions.New(ctx(t), chatParams("claude-sonnet-4-5", "x"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %T %v, want *openai.Error", err, err)
	}
	if apiErr.StatusCode != http.StatusServiceUnavailable || apiErr.Type != "server_error" {
		t.Errorf("error = %d %s", apiErr.StatusCode, apiErr.RawJSON())
	}
}

func TestChat_ContextLengthExceeded(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.Fail(400, upstreamtest.Message("prompt is too long: 210000 tokens > 200000 maximum")))
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	_, err := g.chatClient().Chat.Completions.New(ctx(t), chatParams("claude-sonnet-4-5", "x"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %T %v, want *openai.Error", err, err)
	}
	if apiErr.StatusCode != 400 || apiErr.Code != "context_length_exceeded" || !strings.Contains(apiErr.Message, "prompt is too long") {
		t.Errorf("error = %d %s", apiErr.StatusCode, apiErr.RawJSON())
	}
}

func TestChat_UntranslatableRequest(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	p := chatParams("claude-sonnet-4-5", "x")
	p.N = openai.Int(2)
	_, err := g.chatClient().Chat.Completions.New(ctx(t), p)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %T %v, want *openai.Error", err, err)
	}
	if apiErr.StatusCode != 400 || apiErr.Type != "invalid_request_error" || !strings.HasPrefix(apiErr.Message, "n: ") {
		t.Errorf("error = %d %s", apiErr.StatusCode, apiErr.RawJSON())
	}
	if up.Count() != 0 {
		t.Errorf("upstream got %d requests", up.Count())
	}
}

func TestChat_MidStreamError(t *testing.T) {
	// An error event after HTTP 200 ends the stream as an error.
	up := upstreamtest.NewServer(t, upstreamtest.FailMidStream(2))
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	p := chatParams("claude-sonnet-4-5", "a long answer please")
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	acc, all, err := chatAccumulate(t, g.chatClient().Chat.Completions.NewStreaming(ctx(t), p))
	if err == nil || !strings.Contains(err.Error(), "Overloaded") {
		t.Fatalf("stream error = %v, want the upstream's overloaded error", err)
	}
	if len(all) == 0 || acc.Choices[0].Message.Content == "" {
		t.Errorf("no content before the error: %d chunks", len(all))
	}
	if len(acc.Choices) > 0 && acc.Choices[0].FinishReason != "" {
		t.Errorf("finish_reason = %q: a broken stream must not finish normally", acc.Choices[0].FinishReason)
	}
	row := g.rec.wait(t, 1)[0]
	if !row.EndedEarly || row.ErrorType != "overloaded_error" {
		t.Errorf("row = %+v", row)
	}
}

func TestChat_StreamCutOff(t *testing.T) {
	// An upstream that drops the connection mid-stream ends the client's
	// stream with an error, never with a finish_reason.
	up := upstreamtest.NewServer(t, upstreamtest.AbortMidStream(1))
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	acc, _, err := chatAccumulate(t, g.chatClient().Chat.Completions.NewStreaming(ctx(t), chatParams("claude-sonnet-4-5", "x")))
	if err == nil {
		t.Fatal("stream ended without an error")
	}
	if len(acc.Choices) > 0 && acc.Choices[0].FinishReason != "" {
		t.Errorf("finish_reason = %q after a cut", acc.Choices[0].FinishReason)
	}
}

func TestChat_NonStreamUpstreamError(t *testing.T) {
	// A non-streaming client whose upstream breaks mid-answer gets an
	// error, never a truncated completion.
	up := upstreamtest.NewServer(t, upstreamtest.FailMidStream(1))
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	_, err := g.chatClient().Chat.Completions.New(ctx(t), chatParams("claude-sonnet-4-5", "x"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("err = %v, want a 503 *openai.Error", err)
	}
}

var (
	chatGoldenID      = regexp.MustCompile(`("id":\s*)"chatcmpl-[^"]*"`)
	chatGoldenCreated = regexp.MustCompile(`("created":\s*)\d+`)
)

// TestChat_GoldenThroughGateway replays proxy/openai's golden transcripts
// through the whole gateway: the client must read exactly what the
// converter alone produces (pings and errors included).
func TestChat_GoldenThroughGateway(t *testing.T) {
	dirs, err := filepath.Glob("openai/testdata/golden/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			up := upstreamtest.NewServer(t, upstreamtest.ReplayFile(filepath.Join(dir, "upstream.sse")))
			g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
			body, err := os.ReadFile(filepath.Join(dir, "request.json"))
			if err != nil {
				t.Fatal(err)
			}
			req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, g.URL+"/v1/chat/completions", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("authorization", "Bearer "+testKey)
			req.Header.Set("content-type", "application/json")
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			got, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(got, []byte("data: ")) {
				var buf bytes.Buffer
				if err := json.Indent(&buf, got, "", "  "); err != nil {
					t.Fatalf("status %d: %s", res.StatusCode, got)
				}
				buf.WriteByte('\n')
				got = buf.Bytes()
			}
			got = chatGoldenID.ReplaceAll(got, []byte(`${1}"chatcmpl-ID"`))
			got = chatGoldenCreated.ReplaceAll(got, []byte(`${1}0`))
			want, err := os.ReadFile(filepath.Join(dir, "want.txt"))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("client stream (-want +got):\n%s", diff)
			}
		})
	}
}

// chatBenchBody is a Chat Completions request for a short answer, without
// its closing brace.
const chatBenchBody = `{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"Say something short."}]`

// BenchmarkChatConversion_JSON is one non-streaming Chat Completions
// request through the gateway (streamed upstream, answered as one JSON),
// next to the passthrough and direct baselines.
func BenchmarkChatConversion_JSON(b *testing.B) {
	benchConversion(b, false, "/v1/chat/completions", bearer(testKey), chatBenchBody+"}")
}

// BenchmarkChatConversion_Stream is one streaming Chat Completions request,
// likewise.
func BenchmarkChatConversion_Stream(b *testing.B) {
	benchConversion(b, true, "/v1/chat/completions", bearer(testKey),
		chatBenchBody+`,"stream":true,"stream_options":{"include_usage":true}}`)
}

func TestChat_ErrorNamesParam(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	p := chatParams("claude-sonnet-4-5", "x")
	p.N = openai.Int(2)
	_, err := g.chatClient().Chat.Completions.New(ctx(t), p)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "n" {
		t.Fatalf("err = %v, want a 400 with param n", err)
	}
}

// TestConverted_CreatedFromServerClock: the created time of a converted
// answer comes from the server's clock, as every other time does.
func TestConverted_CreatedFromServerClock(t *testing.T) {
	up := upstreamtest.NewServer(t)
	fixed := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	g := newGateway(t, Config{Now: func() time.Time { return fixed }}, account(1, "a", "sk-ant-a", up.URL))
	for path, body := range map[string]string{
		"/v1/chat/completions": `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}`,
		"/v1/responses":        `{"model":"claude-sonnet-4-5","input":"hi"}`,
	} {
		status, _, raw := post(t, g.URL, path, body)
		var got struct {
			Created   int64 `json:"created"`
			CreatedAt int64 `json:"created_at"`
		}
		if err := json.Unmarshal(raw, &got); err != nil || status != http.StatusOK {
			t.Fatalf("%s: %d %s", path, status, raw)
		}
		if got.Created+got.CreatedAt != fixed.Unix() {
			t.Errorf("%s: created %d / created_at %d, want the server clock's %d", path, got.Created, got.CreatedAt, fixed.Unix())
		}
	}
}

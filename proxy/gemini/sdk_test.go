package gemini_test

// These tests run Google's own Go SDK (google.golang.org/genai) against a
// real llmgw gateway (proxy.Server on httptest) with the fake Anthropic
// upstream behind it.
//
// They live here rather than in package proxy because importing genai starts
// a goroutine in an init function (go.opencensus.io's stats worker, through
// cloud.google.com/go/auth) that never ends, and package proxy's TestMain
// fails the run on any leaked goroutine. This test binary has its own
// TestMain that ignores exactly that one.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/genai"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

// gemKey is the client key the test gateways accept.
const gemKey = "sk-llmgw-gemini-0123456789abcdef0123456789abcdef0123456789"

// gemRecorder keeps usage rows in memory.
type gemRecorder struct {
	mu    sync.Mutex
	rows  []llmgw.Usage
	added chan struct{}
}

func (r *gemRecorder) Record(u llmgw.Usage) {
	r.mu.Lock()
	r.rows = append(r.rows, u)
	r.mu.Unlock()
	r.added <- struct{}{}
}

func (r *gemRecorder) RecordState(int64, llmgw.AccountState) {}
func (r *gemRecorder) RecordWindows(int64, llmgw.Windows)    {}

// wait returns the rows once there are n.
func (r *gemRecorder) wait(t *testing.T, n int) []llmgw.Usage {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		if len(r.rows) >= n {
			rows := append([]llmgw.Usage(nil), r.rows...)
			r.mu.Unlock()
			return rows
		}
		r.mu.Unlock()
		select {
		case <-r.added:
		case <-deadline:
			t.Fatalf("waited for %d usage rows", n)
		}
	}
}

// gemGateway is a gateway on httptest with one API-key account on the fake
// upstream, and a genai client aimed at it.
type gemGateway struct {
	URL    string
	rec    *gemRecorder
	client *genai.Client
}

func gemNewGateway(t *testing.T, up *upstreamtest.Server, cfg proxy.Config) *gemGateway {
	t.Helper()
	tr := proxy.NewTransport(time.Minute)
	cfg.Transport = tr
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	rec := &gemRecorder{added: make(chan struct{}, 1024)}
	s := proxy.NewServer(cfg, rec)
	s.SetSnapshot(&llmgw.Snapshot{
		Version: 1,
		Accounts: []llmgw.Account{{
			ID: 1, Name: "main", Type: llmgw.AccountAPIKey, APIKey: "sk-ant-main", BaseURL: up.URL, Weight: 1,
			State: llmgw.AccountState{Status: llmgw.StatusActive},
		}},
		Keys: []llmgw.ClientKey{{ID: 7, Name: "alice", Hash: llmgw.HashKey(gemKey)}},
	})
	hs := httptest.NewServer(s)
	clientTr := &http.Transport{}
	t.Cleanup(func() {
		clientTr.CloseIdleConnections()
		hs.Close()
		tr.CloseIdleConnections()
	})
	return &gemGateway{URL: hs.URL, rec: rec, client: gemClient(t, hs.URL, gemKey, clientTr)}
}

// gemClient is the official client as a user would configure it, with the
// gateway as its base URL.
func gemClient(t *testing.T, baseURL, key string, tr *http.Transport) *genai.Client {
	t.Helper()
	c, err := genai.NewClient(gemCtx(t), &genai.ClientConfig{
		APIKey:      key,
		Backend:     genai.BackendGeminiAPI,
		HTTPClient:  &http.Client{Transport: tr},
		HTTPOptions: genai.HTTPOptions{BaseURL: baseURL},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func gemCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const gemModel = "claude-sonnet-4-5"

func TestSDK_GenerateContent(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Text("Hello from Claude."),
		upstreamtest.WithUsage(upstreamtest.Tokens{Input: 11, Output: 7, CacheRead: 1500, CacheWrite: 300})))
	g := gemNewGateway(t, up, proxy.Config{})

	res, err := g.client.Models.GenerateContent(gemCtx(t), gemModel, genai.Text("Say hello."), &genai.GenerateContentConfig{
		SystemInstruction: genai.NewContentFromText("Be friendly.", genai.RoleUser),
		MaxOutputTokens:   256,
		Temperature:       genai.Ptr[float32](0.4),
		StopSequences:     []string{"\n\n\n", " "},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Text(); got != "Hello from Claude." {
		t.Errorf("Text() = %q", got)
	}
	if res.ModelVersion != gemModel || !strings.HasPrefix(res.ResponseID, "msg_") {
		t.Errorf("modelVersion %q, responseId %q", res.ModelVersion, res.ResponseID)
	}
	if fr := res.Candidates[0].FinishReason; fr != genai.FinishReasonStop {
		t.Errorf("finishReason = %q", fr)
	}
	u := res.UsageMetadata
	if u == nil || u.PromptTokenCount != 1811 || u.CachedContentTokenCount != 1500 || u.CandidatesTokenCount != 7 || u.TotalTokenCount != 1818 {
		t.Errorf("usageMetadata = %+v; want prompt 1811 (11 + 1500 read + 300 written), cached 1500, candidates 7, total 1818", u)
	}

	var sent struct {
		Model         string   `json:"model"`
		MaxTokens     int      `json:"max_tokens"`
		Stream        bool     `json:"stream"`
		StopSequences []string `json:"stop_sequences"`
		Temperature   float64  `json:"temperature"`
		System        []struct {
			Text string `json:"text"`
		} `json:"system"`
	}
	reqs := up.Requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream got %d requests", len(reqs))
	}
	if err := reqs[0].Decode(&sent); err != nil {
		t.Fatal(err)
	}
	if sent.Model != gemModel || sent.MaxTokens != 256 || sent.Stream || len(sent.System) != 1 || sent.System[0].Text != "Be friendly." ||
		len(sent.StopSequences) != 0 || sent.Temperature < 0.39 || sent.Temperature > 0.41 {
		t.Errorf("upstream request = %s", reqs[0].Body)
	}
	if strings.Contains(fmt.Sprint(reqs[0].Header), gemKey) {
		t.Error("the client key reached the upstream")
	}

	row := g.rec.wait(t, 1)[0]
	want := llmgw.Tokens{Input: 11, Output: 7, CacheRead: 1500, CacheWrite: 300, CacheWrite5m: 300}
	if row.Dialect != llmgw.DialectGemini || row.Stream || row.Status != 200 || row.Model != gemModel || row.Tokens != want || row.KeyName != "alice" {
		t.Errorf("usage row = %+v", row)
	}
}

func TestSDK_GenerateContentStream(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Text("one two three four five"),
		upstreamtest.WithUsage(upstreamtest.Tokens{Input: 20, Output: 9, CacheRead: 4})))
	g := gemNewGateway(t, up, proxy.Config{})

	var text strings.Builder
	var last *genai.GenerateContentResponse
	n := 0
	for chunk, err := range g.client.Models.GenerateContentStream(gemCtx(t), gemModel, genai.Text("count"), nil) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		text.WriteString(chunk.Text())
		last = chunk
	}
	if got := text.String(); got != "one two three four five" {
		t.Errorf("streamed text = %q", got)
	}
	if n < 3 {
		t.Errorf("got %d chunks, want the text in several", n)
	}
	if last == nil || last.Candidates[0].FinishReason != genai.FinishReasonStop {
		t.Fatalf("last chunk = %+v, want finishReason STOP", last)
	}
	u := last.UsageMetadata
	if u == nil || u.PromptTokenCount != 24 || u.CachedContentTokenCount != 4 || u.CandidatesTokenCount != 9 || u.TotalTokenCount != 33 {
		t.Errorf("usageMetadata = %+v", u)
	}
	row := g.rec.wait(t, 1)[0]
	if row.Dialect != llmgw.DialectGemini || !row.Stream || row.EndedEarly || row.Tokens != llmgw.Tokens(up.SentUsage().Tokens()) {
		t.Errorf("usage row = %+v, upstream sent %+v", row, up.SentUsage())
	}
}

// TestSDK_FunctionCallingRoundTrip runs a chat with a function call, and
// thinking on, through the SDK's own Chat: the functionCall comes back with
// an id, the SDK sends it back with the functionResponse, and the upstream
// sees the signed thinking, the tool_use and its tool_result, paired.
func TestSDK_FunctionCallingRoundTrip(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.Script("sk-ant-main",
		upstreamtest.OK(upstreamtest.Thinking("The user wants the weather: call the tool.", "sig-weather-1"),
			upstreamtest.ToolCall("get_weather", map[string]any{"city": "Paris"})),
		upstreamtest.OK(upstreamtest.Text("It is sunny in Paris.")),
	))
	g := gemNewGateway(t, up, proxy.Config{})
	cfg := &genai.GenerateContentConfig{
		Tools: []*genai.Tool{{FunctionDeclarations: []*genai.FunctionDeclaration{{
			Name: "get_weather", Description: "Current weather",
			Parameters: &genai.Schema{Type: genai.TypeObject, Properties: map[string]*genai.Schema{"city": {Type: genai.TypeString}}, Required: []string{"city"}},
		}}}},
		ThinkingConfig: &genai.ThinkingConfig{ThinkingBudget: genai.Ptr[int32](2048)},
	}
	chat, err := g.client.Chats.Create(gemCtx(t), gemModel, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := chat.SendMessage(gemCtx(t), genai.Part{Text: "What's the weather in Paris?"})
	if err != nil {
		t.Fatal(err)
	}
	calls := res.FunctionCalls()
	if len(calls) != 1 || calls[0].Name != "get_weather" || calls[0].Args["city"] != "Paris" || !strings.HasPrefix(calls[0].ID, "toolu_") {
		t.Fatalf("function calls = %+v", calls)
	}
	if res.Candidates[0].FinishReason != genai.FinishReasonStop {
		t.Errorf("finishReason = %q, want STOP", res.Candidates[0].FinishReason)
	}
	res, err = chat.SendMessage(gemCtx(t), genai.Part{FunctionResponse: &genai.FunctionResponse{
		ID: calls[0].ID, Name: "get_weather", Response: map[string]any{"output": "sunny, 24°C"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Text(); got != "It is sunny in Paris." {
		t.Errorf("final answer = %q", got)
	}

	reqs := up.Requests()
	if len(reqs) != 2 {
		t.Fatalf("upstream got %d requests", len(reqs))
	}
	var second struct {
		Thinking *struct {
			Type string `json:"type"`
		} `json:"thinking"`
		Messages []struct {
			Role    string `json:"role"`
			Content []struct {
				Type      string          `json:"type"`
				ID        string          `json:"id"`
				Name      string          `json:"name"`
				Input     json.RawMessage `json:"input"`
				ToolUseID string          `json:"tool_use_id"`
				Content   json.RawMessage `json:"content"`
				Thinking  string          `json:"thinking"`
				Signature string          `json:"signature"`
			} `json:"content"`
		} `json:"messages"`
	}
	if err := reqs[1].Decode(&second); err != nil {
		t.Fatal(err)
	}
	if len(second.Messages) != 3 {
		t.Fatalf("second request has %d messages: %s", len(second.Messages), reqs[1].Body)
	}
	asst, user := second.Messages[1], second.Messages[2]
	if asst.Role != "assistant" || len(asst.Content) != 2 ||
		asst.Content[0].Type != "thinking" || asst.Content[0].Signature != "sig-weather-1" ||
		asst.Content[0].Thinking != "The user wants the weather: call the tool." ||
		asst.Content[1].Type != "tool_use" || asst.Content[1].ID != calls[0].ID || string(asst.Content[1].Input) != `{"city":"Paris"}` {
		t.Errorf("assistant turn = %+v", asst)
	}
	if user.Role != "user" || len(user.Content) != 1 || user.Content[0].Type != "tool_result" ||
		user.Content[0].ToolUseID != calls[0].ID || string(user.Content[0].Content) != `"sunny, 24°C"` {
		t.Errorf("user turn = %+v", user)
	}
	if second.Thinking == nil || second.Thinking.Type != "enabled" {
		t.Errorf("thinking = %+v, want it kept on through the tool loop", second.Thinking)
	}
}

// TestSDK_FunctionCallStream checks a streamed function call: one
// functionCall part, whole, with its id and parsed args.
func TestSDK_FunctionCallStream(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Text("Checking."),
		upstreamtest.ToolCall("lookup.v2", map[string]any{"q": "llmgw", "n": 3})))
	g := gemNewGateway(t, up, proxy.Config{})
	cfg := &genai.GenerateContentConfig{Tools: []*genai.Tool{{FunctionDeclarations: []*genai.FunctionDeclaration{{
		Name: "lookup.v2", ParametersJsonSchema: map[string]any{"type": "object", "properties": map[string]any{"q": map[string]any{"type": "string"}}},
	}}}}}
	var calls []*genai.FunctionCall
	for chunk, err := range g.client.Models.GenerateContentStream(gemCtx(t), gemModel, genai.Text("look it up"), cfg) {
		if err != nil {
			t.Fatal(err)
		}
		calls = append(calls, chunk.FunctionCalls()...)
	}
	if len(calls) != 1 || calls[0].Name != "lookup.v2" || calls[0].ID == "" || calls[0].Args["q"] != "llmgw" || calls[0].Args["n"] != float64(3) {
		t.Errorf("calls = %+v", calls)
	}
	var sent struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	_ = up.Requests()[0].Decode(&sent)
	if len(sent.Tools) != 1 || sent.Tools[0].Name != "lookup_v2" {
		t.Errorf("upstream tools = %+v, want the name sanitized", sent.Tools)
	}
}

func TestSDK_BadKey(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := gemNewGateway(t, up, proxy.Config{})
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	bad := gemClient(t, g.URL, "sk-llmgw-not-a-key", tr)
	_, err := bad.Models.GenerateContent(gemCtx(t), gemModel, genai.Text("hi"), nil)
	var apiErr genai.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v (%T), want a genai.APIError", err, err)
	}
	if apiErr.Code != 401 || apiErr.Status != "UNAUTHENTICATED" || apiErr.Message == "" {
		t.Errorf("APIError = %+v, want 401 UNAUTHENTICATED", apiErr)
	}
	for _, err := range bad.Models.GenerateContentStream(gemCtx(t), gemModel, genai.Text("hi"), nil) {
		if !errors.As(err, &apiErr) || apiErr.Code != 401 {
			t.Errorf("stream err = %v, want 401", err)
		}
		break
	}
	if up.Count() != 0 {
		t.Errorf("upstream got %d requests for a bad key", up.Count())
	}
}

// TestSDK_MidStreamError checks with the SDK that an overload after some
// text reaches the stream iterator as an error, not as a finished answer.
func TestSDK_MidStreamError(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.FailMidStream(2, upstreamtest.Text("one two three four five six")))
	g := gemNewGateway(t, up, proxy.Config{})
	var got error
	chunks := 0
	for chunk, err := range g.client.Models.GenerateContentStream(gemCtx(t), gemModel, genai.Text("count"), nil) {
		if err != nil {
			got = err
			break
		}
		chunks++
		if fr := chunk.Candidates[0].FinishReason; fr != "" {
			t.Errorf("chunk with finishReason %q in a failed stream", fr)
		}
	}
	var apiErr genai.APIError
	if !errors.As(got, &apiErr) || apiErr.Code != 503 || apiErr.Status != "UNAVAILABLE" {
		t.Fatalf("iterator error = %v, want a 503 UNAVAILABLE APIError", got)
	}
	if chunks == 0 {
		t.Error("no text before the error")
	}
	row := g.rec.wait(t, 1)[0]
	if row.Dialect != llmgw.DialectGemini || !row.EndedEarly || row.ErrorType != "overloaded_error" {
		t.Errorf("usage row = %+v", row)
	}
}

// TestSDK_UpstreamErrors checks that upstream refusals reach the SDK with
// the status it keys on: a context overflow stays a 400 with its message
// and an overload becomes 503 UNAVAILABLE, retryable.
func TestSDK_UpstreamErrors(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.Script("sk-ant-main",
		upstreamtest.Fail(400, upstreamtest.Message("prompt is too long: 210000 tokens > 200000 maximum")),
		upstreamtest.Fail(529), upstreamtest.Fail(529), upstreamtest.Fail(529),
	))
	g := gemNewGateway(t, up, proxy.Config{MaxAttempts: 1})
	_, err := g.client.Models.GenerateContent(gemCtx(t), gemModel, genai.Text("long"), nil)
	var apiErr genai.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 400 || apiErr.Status != "INVALID_ARGUMENT" || !strings.Contains(apiErr.Message, "prompt is too long") {
		t.Errorf("err = %v, want 400 INVALID_ARGUMENT with the overflow message", err)
	}
	_, err = g.client.Models.GenerateContent(gemCtx(t), gemModel, genai.Text("again"), nil)
	if !errors.As(err, &apiErr) || apiErr.Code != 503 || apiErr.Status != "UNAVAILABLE" {
		t.Errorf("err = %v, want 503 UNAVAILABLE", err)
	}
}

func TestSDK_Models(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := gemNewGateway(t, up, proxy.Config{Aliases: map[string]string{"gemini-2.5-pro": "claude-opus-4-5-20251101"}})
	page, err := g.client.Models.List(gemCtx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*genai.Model{}
	for _, m := range page.Items {
		byName[m.Name] = m
	}
	m := byName["models/claude-sonnet-4-5-20250929"]
	if m == nil || m.DisplayName != "Claude Sonnet 4.5" || m.OutputTokenLimit != 64000 || m.InputTokenLimit != 200000 ||
		strings.Join(m.SupportedActions, ",") != "generateContent,streamGenerateContent,countTokens" {
		t.Errorf("sonnet entry = %+v (all: %v)", m, page.Items)
	}
	if a := byName["models/gemini-2.5-pro"]; a == nil || a.DisplayName != "Claude Opus 4.5" {
		t.Errorf("alias entry = %+v", a)
	}
	one, err := g.client.Models.Get(gemCtx(t), "claude-from-the-future-9", nil)
	if err != nil || one.Name != "models/claude-from-the-future-9" {
		t.Errorf("Get(unknown) = %+v, %v; want a synthesized entry", one, err)
	}
}

func TestSDK_CountTokens(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := gemNewGateway(t, up, proxy.Config{})
	res, err := g.client.Models.CountTokens(gemCtx(t), gemModel, genai.Text("How many tokens is this?"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.TotalTokens <= 0 {
		t.Errorf("totalTokens = %d", res.TotalTokens)
	}
	reqs := up.Requests()
	if len(reqs) != 1 || reqs[0].Path != "/v1/messages/count_tokens" {
		t.Fatalf("upstream requests = %+v", reqs)
	}
}

// TestSDK_PromptCaching checks prompt caching end to end: a Gemini client
// cannot mark cache breakpoints, llmgw adds them (never more than four), and
// a second identical request reports cached tokens in usageMetadata. The fake
// upstream is given a tiny prompt cache keyed by the marked prefix.
func TestSDK_PromptCaching(t *testing.T) {
	var mu sync.Mutex
	cache := map[[32]byte]bool{}
	maxMarks := 0
	up := upstreamtest.NewServer(t, upstreamtest.Reply(func(req *upstreamtest.Request) upstreamtest.Response {
		prefix, marks := markedPrefix(req.Body)
		mu.Lock()
		defer mu.Unlock()
		maxMarks = max(maxMarks, marks)
		key := sha256.Sum256(prefix)
		tok := int64(len(prefix) / 4)
		u := upstreamtest.Tokens{Input: int64(len(req.Body)/4) - tok, Output: 3}
		if cache[key] {
			u.CacheRead = tok
		} else {
			u.CacheWrite = tok
			cache[key] = true
		}
		return upstreamtest.Response{Content: []upstreamtest.Block{{Type: "text", Text: "ok"}}, Usage: u}
	}))
	g := gemNewGateway(t, up, proxy.Config{})
	cfg := &genai.GenerateContentConfig{SystemInstruction: genai.NewContentFromText(strings.Repeat("You are a careful assistant. ", 300), genai.RoleUser)}
	var cached []int32
	for range 2 {
		res, err := g.client.Models.GenerateContent(gemCtx(t), gemModel, genai.Text("Summarize the rules."), cfg)
		if err != nil {
			t.Fatal(err)
		}
		cached = append(cached, res.UsageMetadata.CachedContentTokenCount)
	}
	if cached[0] != 0 || cached[1] < 1024 {
		t.Errorf("cachedContentTokenCount = %v, want 0 then above 1024", cached)
	}
	if maxMarks == 0 || maxMarks > 4 {
		t.Errorf("requests carried up to %d cache breakpoints, want 1 to 4", maxMarks)
	}
}

// markedPrefix returns the request up to its last cache_control mark (tools,
// system, messages in that order, as the real cache keys it) and the number
// of marks.
func markedPrefix(body []byte) ([]byte, int) {
	var req struct {
		Tools    []json.RawMessage `json:"tools"`
		System   []json.RawMessage `json:"system"`
		Messages []struct {
			Role    string            `json:"role"`
			Content []json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if json.Unmarshal(body, &req) != nil {
		return nil, 0
	}
	var parts [][]byte
	for _, t := range req.Tools {
		parts = append(parts, t)
	}
	for _, s := range req.System {
		parts = append(parts, s)
	}
	for _, m := range req.Messages {
		for _, c := range m.Content {
			parts = append(parts, append([]byte(m.Role+":"), c...))
		}
	}
	marks, last := 0, -1
	for i, p := range parts {
		if strings.Contains(string(p), `"cache_control"`) {
			marks++
			last = i
		}
	}
	var prefix []byte
	for _, p := range parts[:last+1] {
		prefix = append(prefix, p...)
	}
	return prefix, marks
}

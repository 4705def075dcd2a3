package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/sse"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

func userMsg(text string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 256,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))},
	}
}

func TestServer_Messages_NonStream(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Text("hello there"),
		upstreamtest.WithUsage(upstreamtest.Tokens{Input: 11, Output: 7, CacheRead: 5, CacheWrite: 9, CacheWrite5m: 4, CacheWrite1h: 5})))
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	c := g.client()

	msg, err := c.Messages.New(ctx(t), userMsg("hi"),
		option.WithHeader("anthropic-beta", "context-1m-2025-08-07,interleaved-thinking-2025-05-14"),
		option.WithJSONSet("future_field", map[string]any{"x": 1}))
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Content[0].Text; got != "hello there" {
		t.Errorf("text = %q, want %q", got, "hello there")
	}
	reqs := up.Requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Key != "sk-ant-main" || r.Header.Get("x-api-key") != "sk-ant-main" {
		t.Errorf("upstream credential = %q, want the account's key", r.Key)
	}
	for name, vals := range r.Header {
		for _, v := range vals {
			if strings.Contains(v, testKey) {
				t.Errorf("client key reached the upstream in header %s", name)
			}
		}
	}
	if got := r.Header.Get("anthropic-beta"); got != "context-1m-2025-08-07,interleaved-thinking-2025-05-14" {
		t.Errorf("anthropic-beta = %q: client beta flags must pass unchanged", got)
	}
	if got := r.Header.Get("accept-encoding"); got != "identity" {
		t.Errorf("accept-encoding = %q, want identity", got)
	}
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	if _, ok := body["future_field"]; !ok {
		t.Errorf("unknown body field did not reach the upstream: %s", r.Body)
	}

	row := g.rec.wait(t, 1)[0]
	want := llmgw.Tokens{Input: 11, Output: 7, CacheRead: 5, CacheWrite: 9, CacheWrite5m: 4, CacheWrite1h: 5}
	if row.Tokens != want {
		t.Errorf("row tokens = %+v, want %+v", row.Tokens, want)
	}
	if row.Status != 200 || row.AccountName != "main" || row.KeyName != "alice" || row.KeyID != 7 ||
		row.Model != "claude-sonnet-4-5" || row.Stream || row.Dialect != llmgw.DialectAnthropic || len(row.Attempts) != 1 {
		t.Errorf("row = %+v", row)
	}
	if row.UpstreamID != r.RequestID {
		t.Errorf("row upstream id = %q, want %q", row.UpstreamID, r.RequestID)
	}
}

func TestServer_Messages_Stream(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Text("one two three four five six"),
		upstreamtest.WithUsage(upstreamtest.Tokens{Input: 20, Output: 9, CacheRead: 3, CacheWrite: 2})))
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	c := g.client()

	stream := c.Messages.NewStreaming(ctx(t), userMsg("count"))
	var msg anthropic.Message
	events := 0
	for stream.Next() {
		events++
		if err := msg.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if events < 6 {
		t.Errorf("got %d events, want the whole sequence", events)
	}
	if got := msg.Content[0].Text; got != "one two three four five six" {
		t.Errorf("text = %q", got)
	}
	row := g.rec.wait(t, 1)[0]
	sent := up.SentUsage().Tokens()
	if row.Tokens != llmgw.Tokens(sent) {
		t.Errorf("row tokens = %+v, upstream sent %+v", row.Tokens, sent)
	}
	if !row.Stream || row.EndedEarly || row.Status != 200 || row.TTFB <= 0 {
		t.Errorf("row = %+v", row)
	}
}

func TestServer_Messages_ToolUseStream(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.ToolCall("get_weather", map[string]any{"city": "Paris", "units": "metric"})))
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	c := g.client()
	p := userMsg("weather?")
	p.Tools = []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{
		Name:        "get_weather",
		InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"city": map[string]any{"type": "string"}}},
	}}}
	stream := c.Messages.NewStreaming(ctx(t), p)
	var msg anthropic.Message
	for stream.Next() {
		if err := msg.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if msg.StopReason != "tool_use" {
		t.Errorf("stop reason = %q, want tool_use", msg.StopReason)
	}
	var tool *anthropic.ContentBlockUnion
	for i := range msg.Content {
		if msg.Content[i].Type == "tool_use" {
			tool = &msg.Content[i]
		}
	}
	if tool == nil {
		t.Fatalf("no tool_use block in %+v", msg.Content)
	}
	var input map[string]string
	if err := json.Unmarshal(tool.Input, &input); err != nil {
		t.Fatalf("tool input %s: %v", tool.Input, err)
	}
	if input["city"] != "Paris" || input["units"] != "metric" {
		t.Errorf("tool input = %v", input)
	}
}

func TestServer_CountTokens(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	c := g.client()
	res, err := c.Messages.CountTokens(ctx(t), anthropic.MessageCountTokensParams{
		Model:    "claude-sonnet-4-5",
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("how many tokens is this"))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.InputTokens <= 0 {
		t.Errorf("input tokens = %d, want > 0", res.InputTokens)
	}
	if got := up.Requests()[0].Path; got != "/v1/messages/count_tokens" {
		t.Errorf("upstream path = %q", got)
	}
	if n := g.rec.count(); n != 0 {
		t.Errorf("count_tokens left %d usage rows, want 0: it is not an inference request", n)
	}
}

func TestServer_BadClientKey_SDKError(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	c := g.client(option.WithAPIKey("sk-llmgw-wrong"))
	_, err := c.Messages.New(ctx(t), userMsg("hi"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v (%T), want *anthropic.Error", err, err)
	}
	if apiErr.StatusCode != 401 {
		t.Errorf("status = %d, want 401", apiErr.StatusCode)
	}
	if !strings.Contains(apiErr.RawJSON(), `"authentication_error"`) {
		t.Errorf("body = %s, want authentication_error", apiErr.RawJSON())
	}
	if up.Count() != 0 {
		t.Errorf("upstream got %d requests for a rejected client", up.Count())
	}
}

func TestServer_ClientKeyLocations(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	body := `{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":"x"}]}`
	for _, tt := range []struct {
		name  string
		set   func(*http.Request)
		query string
	}{
		{"x-api-key", func(r *http.Request) { r.Header.Set("x-api-key", testKey) }, ""},
		{"bearer", func(r *http.Request) { r.Header.Set("authorization", "Bearer "+testKey) }, ""},
		{"x-goog-api-key", func(r *http.Request) { r.Header.Set("x-goog-api-key", testKey) }, ""},
		{"query", func(*http.Request) {}, "?beta=true&key=" + testKey},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := up.Count()
			req, _ := http.NewRequest("POST", g.URL+"/v1/messages"+tt.query, strings.NewReader(body))
			req.Header.Set("anthropic-version", "2023-06-01")
			tt.set(req)
			res, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != 200 {
				t.Fatalf("status = %d", res.StatusCode)
			}
			r := up.Requests()[before]
			if strings.Contains(r.RawQuery, testKey) || strings.Contains(r.RawQuery, "key=") {
				t.Errorf("upstream query %q carries the client key", r.RawQuery)
			}
			if tt.query != "" && r.RawQuery != "beta=true" {
				t.Errorf("upstream query = %q, want beta=true kept", r.RawQuery)
			}
			for name, vals := range r.Header {
				if strings.Contains(strings.Join(vals, ","), testKey) {
					t.Errorf("client key reached the upstream in %s", name)
				}
			}
		})
	}
}

func TestServer_Failover(t *testing.T) {
	for _, tt := range []struct {
		name   string
		first  func(up *upstreamtest.Server) string // returns the first account's base URL
		broken bool
		cool   time.Duration // minimum cooldown expected, 0 for none
	}{
		{"529", func(up *upstreamtest.Server) string {
			up.Script("sk-ant-a", upstreamtest.Fail(529))
			return up.URL
		}, false, 0},
		{"429 with retry-after", func(up *upstreamtest.Server) string {
			up.Script("sk-ant-a", upstreamtest.Fail(429, upstreamtest.RetryAfter(120)))
			return up.URL
		}, false, 110 * time.Second},
		{"connection refused", func(up *upstreamtest.Server) string { return "" }, false, 0},
		{"401", func(up *upstreamtest.Server) string {
			up.Script("sk-ant-a", upstreamtest.Fail(401, upstreamtest.Message("invalid x-api-key")))
			return up.URL
		}, true, 0},
		{"stream error before first byte", func(up *upstreamtest.Server) string {
			up.Script("sk-ant-a", upstreamtest.FailMidStream(0))
			return up.URL
		}, false, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Text("from b")))
			firstURL := tt.first(up)
			if firstURL == "" {
				firstURL = deadURL(t)
			}
			a := account(1, "a", "sk-ant-a", firstURL)
			b := account(2, "b", "sk-ant-b", up.URL)
			g := newGateway(t, Config{}, a, b)
			c := g.client()
			stream := tt.name == "stream error before first byte"
			var text string
			if stream {
				s := c.Messages.NewStreaming(ctx(t), userMsg("hi"))
				var msg anthropic.Message
				for s.Next() {
					if err := msg.Accumulate(s.Current()); err != nil {
						t.Fatal(err)
					}
				}
				if err := s.Err(); err != nil {
					t.Fatalf("client saw %v, want one clean answer", err)
				}
				text = msg.Content[0].Text
			} else {
				msg, err := c.Messages.New(ctx(t), userMsg("hi"))
				if err != nil {
					t.Fatalf("client saw %v, want one clean answer", err)
				}
				text = msg.Content[0].Text
			}
			if text != "from b" {
				t.Errorf("text = %q", text)
			}
			row := g.rec.wait(t, 1)[0]
			if len(row.Attempts) != 2 || row.AccountName != "b" || row.Attempts[0].AccountName != "a" {
				t.Errorf("attempts = %+v, account %q", row.Attempts, row.AccountName)
			}
			st := g.AccountState(&g.Snapshot().Accounts[0])
			if tt.broken {
				if st.Status != llmgw.StatusError || !strings.Contains(st.Reason, "invalid x-api-key") {
					t.Errorf("state = %+v, want error naming the cause", st)
				}
				if saved, ok := g.rec.state(1); !ok || saved.Status != llmgw.StatusError {
					t.Errorf("state written back = %+v, %v", saved, ok)
				}
			} else if st.Status != llmgw.StatusActive {
				t.Errorf("state = %+v, want still active", st)
			}
			if tt.cool > 0 {
				if left := time.Until(st.CooldownUntil); left < tt.cool {
					t.Errorf("cooldown left %v, want at least %v", left, tt.cool)
				}
				if saved, ok := g.rec.state(1); !ok || saved.CooldownUntil.IsZero() {
					t.Errorf("cooldown not written back: %+v", saved)
				}
			}
			// The next request goes to b right away when a is out.
			if tt.broken || tt.cool > 0 {
				before := len(up.Requests())
				if _, err := c.Messages.New(ctx(t), userMsg("again")); err != nil {
					t.Fatal(err)
				}
				if r := up.Requests()[before]; r.Key != "sk-ant-b" {
					t.Errorf("next request went to %q, want b", r.Key)
				}
			}
		})
	}
}

func TestServer_AllAttemptsFail_LastResponseUnchanged(t *testing.T) {
	up := upstreamtest.NewServer(t,
		upstreamtest.Script("sk-ant-a", upstreamtest.Fail(529)),
		upstreamtest.Script("sk-ant-b", upstreamtest.Fail(429, upstreamtest.RetryAfter(17), upstreamtest.Message("slow down"))))
	g := newGateway(t, Config{}, account(1, "a", "sk-ant-a", up.URL), account(2, "b", "sk-ant-b", up.URL))
	req, _ := http.NewRequest("POST", g.URL+"/v1/messages", strings.NewReader(`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`))
	req.Header.Set("x-api-key", testKey)
	req.Header.Set("anthropic-version", "2023-06-01")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 429 || res.Header.Get("retry-after") != "17" {
		t.Errorf("status %d retry-after %q, want the last upstream answer 429 / 17", res.StatusCode, res.Header.Get("retry-after"))
	}
	if !strings.Contains(string(body), "slow down") || res.Header.Get("request-id") == "" {
		t.Errorf("body %s / request-id %q: want the upstream's own", body, res.Header.Get("request-id"))
	}
	row := g.rec.wait(t, 1)[0]
	if row.Status != 429 || row.ErrorType != "rate_limit_error" || len(row.Attempts) != 2 {
		t.Errorf("row = %+v", row)
	}
}

func TestServer_ClientErrorNotRetried(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.Script("sk-ant-a",
		upstreamtest.Fail(400, upstreamtest.Message("prompt is too long: 300000 tokens > 200000 maximum"))))
	g := newGateway(t, Config{}, account(1, "a", "sk-ant-a", up.URL), account(2, "b", "sk-ant-b", up.URL))
	_, err := g.client().Messages.New(ctx(t), userMsg("long"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || !strings.Contains(apiErr.RawJSON(), "prompt is too long") {
		t.Fatalf("err = %v, want the upstream 400 unchanged", err)
	}
	if n := up.Count(); n != 1 {
		t.Errorf("upstream got %d requests, want 1: a client error is not retried", n)
	}
	if st := g.AccountState(&g.Snapshot().Accounts[0]); st.Status != llmgw.StatusActive || !st.CooldownUntil.IsZero() {
		t.Errorf("account state = %+v: a client error must not mark the account", st)
	}
}

func TestServer_MidStreamFailure(t *testing.T) {
	for _, tt := range []struct {
		name string
		step upstreamtest.Step
	}{
		{"error event", upstreamtest.FailMidStream(2)},
		{"connection cut", upstreamtest.AbortMidStream(2)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			up := upstreamtest.NewServer(t, upstreamtest.Script("sk-ant-a", tt.step))
			g := newGateway(t, Config{}, account(1, "a", "sk-ant-a", up.URL), account(2, "b", "sk-ant-b", up.URL))
			s := g.client().Messages.NewStreaming(ctx(t), userMsg("a long answer please"))
			events := 0
			for s.Next() {
				events++
			}
			err := s.Err()
			if err == nil {
				t.Fatal("stream ended without an error; want the Anthropic error event")
			}
			if events == 0 {
				t.Errorf("no events reached the client before the failure")
			}
			if n := up.Count(); n != 1 {
				t.Errorf("upstream got %d requests: after the first byte nothing is retried", n)
			}
			row := g.rec.wait(t, 1)[0]
			if !row.EndedEarly || row.ErrorType == "" {
				t.Errorf("row = %+v, want ended early with an error type", row)
			}
			if row.Tokens.Input == 0 {
				t.Errorf("row tokens = %+v, want the tokens seen so far", row.Tokens)
			}
		})
	}
}

func TestServer_BadInput(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{MaxBodyBytes: 1 << 10}, account(1, "a", "sk-ant-a", up.URL))
	valid := `{"model":"m","max_tokens":5,"messages":[]}`
	for _, tt := range []struct {
		name, method, path, body, key string
		status                        int
		typ                           string
	}{
		{"malformed JSON", "POST", "/v1/messages", `{"model":`, testKey, 400, "invalid_request_error"},
		{"not an object", "POST", "/v1/messages", `[1,2]`, testKey, 400, "invalid_request_error"},
		{"empty body", "POST", "/v1/messages", ``, testKey, 400, "invalid_request_error"},
		{"missing model", "POST", "/v1/messages", `{"max_tokens":5}`, testKey, 400, "invalid_request_error"},
		{"model wrong type", "POST", "/v1/messages", `{"model":5}`, testKey, 400, "invalid_request_error"},
		{"unknown path", "POST", "/v1/nothing", valid, testKey, 404, "not_found_error"},
		{"wrong method", "GET", "/v1/messages", ``, testKey, 405, "invalid_request_error"},
		{"oversized", "POST", "/v1/messages", `{"model":"m","x":"` + strings.Repeat("a", 2000) + `"}`, testKey, 413, "request_too_large"},
		{"missing key", "POST", "/v1/messages", valid, "", 401, "authentication_error"},
		{"wrong key", "POST", "/v1/messages", valid, "sk-llmgw-nope", 401, "authentication_error"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, g.URL+tt.path, strings.NewReader(tt.body))
			if tt.key != "" {
				req.Header.Set("x-api-key", tt.key)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var e struct {
				Type  string `json:"type"`
				Error struct{ Type, Message string }
			}
			if err := json.NewDecoder(res.Body).Decode(&e); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			if res.StatusCode != tt.status || e.Type != "error" || e.Error.Type != tt.typ || e.Error.Message == "" {
				t.Errorf("got %d %+v, want %d %s", res.StatusCode, e, tt.status, tt.typ)
			}
		})
	}
	if up.Count() != 0 {
		t.Errorf("upstream got %d requests for bad input", up.Count())
	}
	if n := g.rec.count(); n != 0 {
		t.Errorf("bad input left %d usage rows", n)
	}
	if st := g.AccountState(&g.Snapshot().Accounts[0]); st.Status != llmgw.StatusActive || !st.CooldownUntil.IsZero() {
		t.Errorf("account state changed: %+v", st)
	}
}

func TestServer_NoAccountExplains(t *testing.T) {
	up := upstreamtest.NewServer(t)
	a := account(1, "a", "sk-ant-a", up.URL)
	a.State = llmgw.AccountState{Status: llmgw.StatusDisabled}
	b := account(2, "b", "sk-ant-b", up.URL)
	b.State = llmgw.AccountState{Status: llmgw.StatusError, Reason: "upstream answered 401 authentication_error: invalid x-api-key"}
	c := account(3, "c", "sk-ant-c", up.URL)
	c.Models = []string{"claude-haiku-*"}
	g := newGateway(t, Config{}, a, b, c)
	_, err := g.client().Messages.New(ctx(t), userMsg("hi"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 {
		t.Fatalf("err = %v, want 503", err)
	}
	raw := apiErr.RawJSON()
	for _, want := range []string{"overloaded_error", "disabled (a)", "invalid x-api-key (b)", "not allowed (c)"} {
		if !strings.Contains(raw, want) {
			t.Errorf("503 body %s lacks %q", raw, want)
		}
	}
}

func TestServer_ResponseHeaders(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.OK(
		upstreamtest.Header("anthropic-ratelimit-requests-remaining", "99"),
		upstreamtest.Header("anthropic-ratelimit-unified-5h-utilization", "0.4"),
		upstreamtest.Header("anthropic-organization-id", "org-secret"),
		upstreamtest.Header("set-cookie", "a=b")))
	g := newGateway(t, Config{}, account(1, "a", "sk-ant-a", up.URL))
	req, _ := http.NewRequest("POST", g.URL+"/v1/messages", strings.NewReader(`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`))
	req.Header.Set("x-api-key", testKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.Header.Get("request-id") == "" || res.Header.Get("anthropic-ratelimit-requests-remaining") != "99" ||
		res.Header.Get("anthropic-ratelimit-unified-5h-utilization") != "0.4" {
		t.Errorf("headers = %v", res.Header)
	}
	if res.Header.Get("anthropic-organization-id") != "" || res.Header.Get("set-cookie") != "" {
		t.Errorf("headers outside the allowlist reached the client: %v", res.Header)
	}
	if up.Requests()[0].Header.Get("anthropic-version") != "2023-06-01" {
		t.Errorf("anthropic-version not defaulted")
	}
}

func TestServer_ClientDisconnectCancelsUpstream(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.HangMidStream(1))
	g := newGateway(t, Config{}, account(1, "a", "sk-ant-a", up.URL))
	c, cancel := context.WithCancel(ctx(t))
	s := g.client().Messages.NewStreaming(c, userMsg("hang"))
	if !s.Next() {
		t.Fatalf("no first event: %v", s.Err())
	}
	cancel()
	for s.Next() {
	}
	row := g.rec.wait(t, 1)[0]
	if !row.EndedEarly {
		t.Errorf("row = %+v, want ended early", row)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if err := up.AwaitInFlight(wctx, 0); err != nil {
		t.Errorf("upstream request still running after the client left: %v", err)
	}
}

func TestServer_ModelsFallback(t *testing.T) {
	g := newGateway(t, Config{}, account(1, "a", "sk-ant-a", deadURL(t)))
	req, _ := http.NewRequest("GET", g.URL+"/v1/models", nil)
	req.Header.Set("x-api-key", testKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var list struct {
		Data []struct{ ID, Type string }
	}
	if err := json.NewDecoder(res.Body).Decode(&list); err != nil || res.StatusCode != 200 || len(list.Data) == 0 {
		t.Fatalf("status %d, %v, %+v", res.StatusCode, err, list)
	}
}

func TestServer_ModelsFromUpstream(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{}, account(1, "a", "sk-ant-a", up.URL))
	page, err := g.client().Models.List(ctx(t), anthropic.ModelListParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) == 0 || up.Count() != 1 {
		t.Errorf("models = %d, upstream calls %d", len(page.Data), up.Count())
	}
}

func TestServer_Readyz(t *testing.T) {
	rec := newRecorder()
	s := NewServer(Config{Logger: discardLogger()}, rec)
	hs := httptest.NewServer(s)
	defer hs.Close()
	get := func() (int, string) {
		res, err := http.Get(hs.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, string(body)
	}
	if got, _ := get(); got != 503 {
		t.Errorf("before a snapshot: %d, want 503", got)
	}
	key := llmgw.ClientKey{ID: 1, Name: "alice", Hash: llmgw.HashKey(testKey)}
	a := account(1, "a", "sk-ant-a", "http://127.0.0.1:1")
	a.State.Status = llmgw.StatusDisabled
	s.SetSnapshot(&llmgw.Snapshot{Accounts: []llmgw.Account{a}, Keys: []llmgw.ClientKey{key}})
	if got, body := get(); got != 503 || !strings.Contains(body, `"no usable account"`) {
		t.Errorf("only a disabled account: %d %s, want 503 saying no usable account", got, body)
	}
	active := []llmgw.Account{account(1, "a", "sk-ant-a", "http://127.0.0.1:1")}
	s.SetSnapshot(&llmgw.Snapshot{Accounts: active, Keys: []llmgw.ClientKey{key}})
	if got, _ := get(); got != 200 {
		t.Errorf("an active account and a key: %d, want 200", got)
	}

	revoked, expired := key, key
	revoked.RevokedAt = time.Now().Add(-time.Minute)
	expired.ExpiresAt = time.Now().Add(-time.Minute)
	for name, keys := range map[string][]llmgw.ClientKey{"no key": nil, "revoked": {revoked}, "expired": {expired}} {
		s.SetSnapshot(&llmgw.Snapshot{Accounts: active, Keys: keys})
		if got, body := get(); got != 503 || !strings.Contains(body, `"reason":"no client key"`) {
			t.Errorf("%s: %d %s, want 503 saying no client key", name, got, body)
		}
	}
	s.SetSnapshot(&llmgw.Snapshot{})
	if got, body := get(); got != 503 || !strings.Contains(body, `"reason":"no usable account; no client key"`) {
		t.Errorf("nothing: %d %s, want 503 naming both", got, body)
	}

	// A static key from the config file is enough.
	st := NewServer(Config{Logger: discardLogger(), StaticKeys: []llmgw.ClientKey{{Name: "ci", Hash: llmgw.HashKey("static-key-0123456789")}}}, rec)
	st.SetSnapshot(&llmgw.Snapshot{Accounts: active})
	w := httptest.NewRecorder()
	st.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", http.NoBody))
	if w.Code != 200 {
		t.Errorf("an active account and a static key: %d %s, want 200", w.Code, w.Body)
	}

	res, err := http.Get(hs.URL + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Errorf("healthz: %v %v", res, err)
	}
	res.Body.Close()
}

func TestServer_StaticKey(t *testing.T) {
	up := upstreamtest.NewServer(t)
	const static = "static-key-0123456789"
	g := newGateway(t, Config{StaticKeys: []llmgw.ClientKey{{Name: "ci", Hash: llmgw.HashKey(static)}}},
		account(1, "a", "sk-ant-a", up.URL))
	if _, err := g.client(option.WithAPIKey(static)).Messages.New(ctx(t), userMsg("hi")); err != nil {
		t.Fatal(err)
	}
	if row := g.rec.wait(t, 1)[0]; row.KeyName != "ci" || row.KeyID != 0 {
		t.Errorf("row key = %q/%d, want the static key ci/0", row.KeyName, row.KeyID)
	}
}

func TestServer_ExpiredKey(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{}, account(1, "a", "sk-ant-a", up.URL))
	snap := *g.Snapshot()
	snap.Keys = []llmgw.ClientKey{{ID: 9, Name: "old", Hash: llmgw.HashKey(testKey), ExpiresAt: time.Now().Add(-time.Hour)}}
	g.SetSnapshot(&snap)
	_, err := g.client().Messages.New(ctx(t), userMsg("hi"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || !strings.Contains(apiErr.RawJSON(), "expired") {
		t.Fatalf("err = %v, want 401 saying the key expired", err)
	}
}

func TestServer_TransientStreakCoolsBriefly(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.Script("sk-ant-a",
		upstreamtest.Fail(529), upstreamtest.Fail(529), upstreamtest.Fail(529)))
	g := newGateway(t, Config{MaxAttempts: 1}, account(1, "a", "sk-ant-a", up.URL))
	c := g.client()
	for i := range 3 {
		st := g.AccountState(&g.Snapshot().Accounts[0])
		if !st.CooldownUntil.IsZero() {
			t.Fatalf("cooling after %d overloads, want only after 3 in a row", i)
		}
		if _, err := c.Messages.New(ctx(t), userMsg("hi")); err == nil {
			t.Fatal("want the 529 passed on")
		}
	}
	st := g.AccountState(&g.Snapshot().Accounts[0])
	if left := time.Until(st.CooldownUntil); left <= 0 || left > transientCool {
		t.Errorf("cooldown left %v, want a brief one (<= %v)", left, transientCool)
	}
	if st.Status != llmgw.StatusActive {
		t.Errorf("status = %s: overloads are not the account's fault", st.Status)
	}
}

func TestServer_WaitsForConcurrencySlot(t *testing.T) {
	release := make(chan struct{})
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Hold(release)))
	a := account(1, "a", "sk-ant-a", up.URL)
	a.MaxConcurrency = 1
	g := newGateway(t, Config{}, a)
	c := g.client()
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := c.Messages.New(ctx(t), userMsg("hi"))
			errs <- err
		}()
	}
	if err := up.AwaitHeld(ctx(t), 1); err != nil {
		t.Fatal(err)
	}
	if n := up.InFlight(); n != 1 {
		t.Errorf("upstream has %d requests in flight, want 1: the cap is 1", n)
	}
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("request failed instead of waiting for a slot: %v", err)
		}
	}
	if n := up.Count(); n != 2 {
		t.Errorf("upstream got %d requests, want 2", n)
	}
}

func TestServer_OperatorStateWins(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.Script("sk-ant-a", upstreamtest.Fail(401)))
	g := newGateway(t, Config{}, account(1, "a", "sk-ant-a", up.URL))
	c := g.client()
	if _, err := c.Messages.New(ctx(t), userMsg("hi")); err == nil {
		t.Fatal("want the 401 passed on")
	}
	if st := g.AccountState(&g.Snapshot().Accounts[0]); st.Status != llmgw.StatusError {
		t.Fatalf("state = %+v, want error", st)
	}
	// A reload with the server's own write-back keeps the error ...
	saved, _ := g.rec.state(1)
	snap := *g.Snapshot()
	snap.Accounts = []llmgw.Account{account(1, "a", "sk-ant-a", up.URL)}
	snap.Accounts[0].State = saved
	g.SetSnapshot(&snap)
	if st := g.AccountState(&snap.Accounts[0]); st.Status != llmgw.StatusError {
		t.Errorf("after reloading its own write-back: %+v", st)
	}
	// ... and a later "account enable" clears it.
	enabled := snap
	enabled.Accounts = []llmgw.Account{account(1, "a", "sk-ant-a", up.URL)}
	enabled.Accounts[0].State = llmgw.AccountState{Status: llmgw.StatusActive, At: time.Now().Add(time.Second)}
	g.SetSnapshot(&enabled)
	if _, err := c.Messages.New(ctx(t), userMsg("hi")); err != nil {
		t.Errorf("after enable: %v", err)
	}
}

func TestServer_KeepAlivePingsDuringSilence(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.EventDelay(150*time.Millisecond)))
	g := newGateway(t, Config{KeepAlive: 20 * time.Millisecond}, account(1, "a", "sk-ant-a", up.URL))
	req, _ := http.NewRequest("POST", g.URL+"/v1/messages", strings.NewReader(
		`{"model":"m","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"slow please"}]}`))
	req.Header.Set("x-api-key", testKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	events := sse.NewReader(res.Body)
	pings, stopped := 0, false
	for {
		ev, err := events.Next()
		if err != nil {
			break
		}
		switch ev.Name {
		case "ping":
			pings++
		case "message_stop":
			stopped = true
		}
	}
	if pings < 4 {
		t.Errorf("client saw %d pings over a slow stream, want llmgw's own keep-alives besides the upstream's one", pings)
	}
	if !stopped {
		t.Error("stream did not reach message_stop")
	}
	if row := g.rec.wait(t, 1)[0]; row.EndedEarly || row.Tokens.Output == 0 {
		t.Errorf("row = %+v", row)
	}
}

package upstreamtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// event is one parsed SSE frame.
type event struct {
	Name string
	Data string
}

// readEvents parses an SSE body into frames. It returns the frames read so
// far together with any read error (such as an unexpected EOF).
func readEvents(r io.Reader) ([]event, error) {
	var (
		out  []event
		cur  event
		data []string
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.Name != "" || len(data) > 0 {
				cur.Data = strings.Join(data, "\n")
				out = append(out, cur)
			}
			cur, data = event{}, nil
		case strings.HasPrefix(line, "event:"):
			cur.Name = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	return out, sc.Err()
}

func (e event) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(e.Data), v); err != nil {
		t.Fatalf("decode %s data %q: %v", e.Name, e.Data, err)
	}
}

func names(evs []event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Name
	}
	return out
}

// do sends one request to the fake with an API key and the version header.
// The caller closes the body.
func do(ctx context.Context, s *Server, method, path, key, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("anthropic-version", "2023-06-01")
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	return s.srv.Client().Do(req)
}

// call is do for the test goroutine: it fails the test on error and closes
// the body at cleanup.
func call(t *testing.T, ctx context.Context, s *Server, method, path, key, body string) *http.Response {
	t.Helper()
	res, err := do(ctx, s, method, path, key, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func post(t *testing.T, s *Server, key, body string) *http.Response {
	t.Helper()
	return call(t, t.Context(), s, http.MethodPost, "/v1/messages", key, body)
}

// stream posts a streaming request and returns its frames.
func stream(t *testing.T, s *Server, key, body string) []event {
	t.Helper()
	res := post(t, s, key, body)
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("Status = %d, want 200; body %s", res.StatusCode, b)
	}
	evs, err := readEvents(res.Body)
	if err != nil {
		t.Fatalf("read stream: %v", err)
	}
	return evs
}

func readAll(t *testing.T, res *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return b
}

func body(stream bool, text string) string {
	return fmt.Sprintf(`{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":%t,"messages":[{"role":"user","content":%q}]}`, stream, text)
}

const weatherTools = `"tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}}}},{"name":"other","input_schema":{"type":"object"}}]`

func toolBody(stream bool, text string) string {
	return fmt.Sprintf(`{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":%t,%s,"messages":[{"role":"user","content":[{"type":"text","text":%q}]}]}`, stream, weatherTools, text)
}

// wantErrorBody checks an Anthropic error envelope.
func wantErrorBody(t *testing.T, res *http.Response, status int, typ, msg string) {
	t.Helper()
	b := readAll(t, res)
	if res.StatusCode != status {
		t.Errorf("Status = %d, want %d (body %s)", res.StatusCode, status, b)
	}
	if got := res.Header.Get("content-type"); got != "application/json" {
		t.Errorf("content-type = %q, want application/json", got)
	}
	var e struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body %s: %v", b, err)
	}
	if e.Type != "error" || e.Error.Type != typ || (msg != "" && e.Error.Message != msg) {
		t.Errorf("error body = %s, want type %q message %q", b, typ, msg)
	}
	if rid := res.Header.Get("request-id"); !strings.HasPrefix(rid, "req_") || e.RequestID != rid {
		t.Errorf("request_id = %q, request-id header = %q, want the same req_ id", e.RequestID, rid)
	}
}

type wireU struct {
	InputTokens              *int64 `json:"input_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
	CacheCreation            *struct {
		Ephemeral5m int64 `json:"ephemeral_5m_input_tokens"`
		Ephemeral1h int64 `json:"ephemeral_1h_input_tokens"`
	} `json:"cache_creation"`
	OutputTokens *int64 `json:"output_tokens"`
}

func (u wireU) tokens() Tokens {
	var t Tokens
	get := func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	}
	t.Input, t.Output = get(u.InputTokens), get(u.OutputTokens)
	t.CacheWrite, t.CacheRead = get(u.CacheCreationInputTokens), get(u.CacheReadInputTokens)
	if u.CacheCreation != nil {
		t.CacheWrite5m, t.CacheWrite1h = u.CacheCreation.Ephemeral5m, u.CacheCreation.Ephemeral1h
	}
	return t
}

type messageStart struct {
	Message struct {
		ID           string            `json:"id"`
		Type         string            `json:"type"`
		Role         string            `json:"role"`
		Model        string            `json:"model"`
		Content      []json.RawMessage `json:"content"`
		StopReason   *string           `json:"stop_reason"`
		StopSequence *string           `json:"stop_sequence"`
		Usage        wireU             `json:"usage"`
	} `json:"message"`
}

type messageDelta struct {
	Delta struct {
		StopReason   *string `json:"stop_reason"`
		StopSequence *string `json:"stop_sequence"`
	} `json:"delta"`
	Usage wireU `json:"usage"`
}

type blockEvent struct {
	Index        int `json:"index"`
	ContentBlock struct {
		Type  string          `json:"type"`
		ID    string          `json:"id"`
		Name  string          `json:"name"`
		Input json.RawMessage `json:"input"`
	} `json:"content_block"`
	Delta struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		PartialJSON string `json:"partial_json"`
		Thinking    string `json:"thinking"`
		Signature   string `json:"signature"`
	} `json:"delta"`
}

// checkSequence checks the real API's frame grammar: every data.type equals
// the event name, message_start first, ping right after the first
// content_block_start, strictly sequential blocks, message_delta then
// message_stop last.
func checkSequence(t *testing.T, evs []event) {
	t.Helper()
	for i, e := range evs {
		var v struct {
			Type string `json:"type"`
		}
		e.decode(t, &v)
		if v.Type != e.Name {
			t.Errorf("frame %d: event %q has data.type %q", i, e.Name, v.Type)
		}
	}
	got := names(evs)
	if len(got) < 6 || got[0] != "message_start" || got[1] != "content_block_start" || got[2] != "ping" ||
		got[len(got)-2] != "message_delta" || got[len(got)-1] != "message_stop" {
		t.Fatalf("frames = %v, want message_start, content_block_start, ping, …, message_delta, message_stop", got)
	}
	open, next := -1, 0
	for i, e := range evs[1 : len(evs)-2] {
		if e.Name == "ping" {
			if i != 1 {
				t.Errorf("ping at frame %d, want only right after the first content_block_start", i+1)
			}
			continue
		}
		var b blockEvent
		e.decode(t, &b)
		switch e.Name {
		case "content_block_start":
			if open != -1 || b.Index != next {
				t.Errorf("content_block_start index %d while block %d open, want %d", b.Index, open, next)
			}
			open = b.Index
		case "content_block_delta":
			if b.Index != open {
				t.Errorf("content_block_delta index %d, want %d", b.Index, open)
			}
		case "content_block_stop":
			if b.Index != open {
				t.Errorf("content_block_stop index %d, want %d", b.Index, open)
			}
			open, next = -1, next+1
		default:
			t.Errorf("unexpected frame %q inside the message", e.Name)
		}
	}
	if open != -1 {
		t.Errorf("block %d never stopped", open)
	}
}

func TestServer_Messages_StreamFrames(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	res := post(t, s, "sk-ant-x", body(true, "Hi there, how are you today?"))
	if got, want := res.Header.Get("content-type"), "text/event-stream; charset=utf-8"; got != want {
		t.Errorf("content-type = %q, want %q", got, want)
	}
	if rid := res.Header.Get("request-id"); !strings.HasPrefix(rid, "req_") {
		t.Errorf("request-id = %q, want req_…", rid)
	}
	evs, err := readEvents(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	checkSequence(t, evs)

	var start messageStart
	evs[0].decode(t, &start)
	m := start.Message
	if !strings.HasPrefix(m.ID, "msg_") || m.Type != "message" || m.Role != "assistant" || m.Model != "claude-sonnet-4-5" ||
		m.Content == nil || len(m.Content) != 0 || m.StopReason != nil || m.StopSequence != nil {
		t.Errorf("message_start message = %s", evs[0].Data)
	}
	var text strings.Builder
	deltas := 0
	for _, e := range evs {
		if e.Name == "content_block_delta" {
			var b blockEvent
			e.decode(t, &b)
			if b.Delta.Type != "text_delta" {
				t.Errorf("delta type = %q, want text_delta", b.Delta.Type)
			}
			text.WriteString(b.Delta.Text)
			deltas++
		}
	}
	if deltas < 3 {
		t.Errorf("text deltas = %d, want several", deltas)
	}
	if want := "Hello from upstreamtest. You said: Hi there, how are you today?"; text.String() != want {
		t.Errorf("text = %q, want %q", text.String(), want)
	}
	var d messageDelta
	evs[len(evs)-2].decode(t, &d)
	if d.Delta.StopReason == nil || *d.Delta.StopReason != "end_turn" || d.Delta.StopSequence != nil {
		t.Errorf("message_delta = %s, want stop_reason end_turn, stop_sequence null", evs[len(evs)-2].Data)
	}
}

func TestServer_Messages_StreamUsage(t *testing.T) {
	t.Parallel()
	use := Tokens{Input: 11, Output: 22, CacheRead: 33, CacheWrite5m: 4, CacheWrite1h: 5}
	s := NewServer(t, OK(WithUsage(use)))

	evs := stream(t, s, "sk-ant-x", body(true, "hello"))
	checkSequence(t, evs)
	var start messageStart
	evs[0].decode(t, &start)
	wantStart := Tokens{Input: 11, Output: 1, CacheRead: 33, CacheWrite: 9, CacheWrite5m: 4, CacheWrite1h: 5}
	if got := start.Message.Usage.tokens(); got != wantStart {
		t.Errorf("message_start usage = %+v, want %+v", got, wantStart)
	}
	if start.Message.Usage.CacheCreation == nil {
		t.Errorf("message_start usage has no cache_creation: %s", evs[0].Data)
	}
	var d messageDelta
	evs[len(evs)-2].decode(t, &d)
	u := d.Usage
	if u.InputTokens == nil || *u.InputTokens != 11 || u.CacheCreationInputTokens == nil || *u.CacheCreationInputTokens != 9 ||
		u.CacheReadInputTokens == nil || *u.CacheReadInputTokens != 33 || u.OutputTokens == nil || *u.OutputTokens != 22 {
		t.Errorf("message_delta usage = %s, want cumulative input 11, cache 9/33, output 22", evs[len(evs)-2].Data)
	}

	// The legacy shape reports only output_tokens in message_delta.
	s.Script("sk-ant-legacy", OK(WithUsage(use), LegacyDeltaUsage()))
	evs = stream(t, s, "sk-ant-legacy", body(true, "hello"))
	if data := evs[len(evs)-2].Data; data != `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":22}}` {
		t.Errorf("legacy message_delta = %s", data)
	}

	want := Usage{Input: 22, Output: 44, CacheRead: 66, CacheWrite: 18, CacheWrite5m: 8, CacheWrite1h: 10, Responses: 2}
	if got := s.SentUsage(); got != want {
		t.Errorf("SentUsage = %+v, want %+v", got, want)
	}
}

func TestServer_Messages_DerivedUsageVaries(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	var sum Tokens
	for _, text := range []string{"a", "a much longer message than the first one, to change the counts"} {
		b := body(true, text)
		evs := stream(t, s, "sk-ant-x", b)
		var d messageDelta
		evs[len(evs)-2].decode(t, &d)
		got := d.Usage.tokens()
		if got.Input != int64(len(b)/4) || got.Output < 1 {
			t.Errorf("usage = %+v, want input %d = len(body)/4 and output ≥ 1", got, len(b)/4)
		}
		sum.Input += got.Input
		sum.Output += got.Output
	}
	if got := s.SentUsage(); got.Tokens() != sum || got.Responses != 2 {
		t.Errorf("SentUsage = %+v, want %+v over 2 responses", got, sum)
	}
}

func TestServer_Messages_NonStream(t *testing.T) {
	t.Parallel()
	use := Tokens{Input: 7, Output: 8, CacheRead: 9, CacheWrite: 10}
	s := NewServer(t, OK(Text("Hello"), WithUsage(use), StopReason("max_tokens")))
	res := post(t, s, "sk-ant-x", body(false, "hi"))
	b := readAll(t, res)
	if res.StatusCode != http.StatusOK || res.Header.Get("content-type") != "application/json" {
		t.Fatalf("Status = %d, content-type %q, want 200 application/json", res.StatusCode, res.Header.Get("content-type"))
	}
	var m struct {
		ID           string  `json:"id"`
		Type         string  `json:"type"`
		Role         string  `json:"role"`
		Model        string  `json:"model"`
		StopReason   string  `json:"stop_reason"`
		StopSequence *string `json:"stop_sequence"`
		Content      []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		Usage wireU `json:"usage"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(m.ID, "msg_") || m.Type != "message" || m.Role != "assistant" || m.Model != "claude-sonnet-4-5" ||
		m.StopReason != "max_tokens" || m.StopSequence != nil || len(m.Content) != 1 || m.Content[0].Text != "Hello" {
		t.Errorf("message = %s", b)
	}
	want := Tokens{Input: 7, Output: 8, CacheRead: 9, CacheWrite: 10, CacheWrite5m: 10}
	if got := m.Usage.tokens(); got != want {
		t.Errorf("usage = %+v, want %+v", got, want)
	}
	if got := s.SentUsage(); got.Tokens() != want || got.Responses != 1 {
		t.Errorf("SentUsage = %+v, want %+v", got, want)
	}
}

// toolStream collects a streamed tool_use block.
func toolStream(t *testing.T, evs []event) (start blockEvent, partials []string, stop string) {
	t.Helper()
	for _, e := range evs {
		var b blockEvent
		switch e.Name {
		case "content_block_start":
			e.decode(t, &start)
		case "content_block_delta":
			e.decode(t, &b)
			if b.Delta.Type != "input_json_delta" {
				t.Errorf("delta type = %q, want input_json_delta", b.Delta.Type)
			}
			partials = append(partials, b.Delta.PartialJSON)
		case "message_delta":
			var d messageDelta
			e.decode(t, &d)
			stop = *d.Delta.StopReason
		}
	}
	return start, partials, stop
}

func TestServer_Messages_ToolUse(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	evs := stream(t, s, "sk-ant-x", toolBody(true, "Please use a tool now"))
	checkSequence(t, evs)
	start, partials, stop := toolStream(t, evs)
	cb := start.ContentBlock
	if cb.Type != "tool_use" || !strings.HasPrefix(cb.ID, "toolu_") || cb.Name != "get_weather" || string(cb.Input) != "{}" {
		t.Errorf("content_block_start block = %+v, want tool_use toolu_… get_weather with input {}", cb)
	}
	if len(partials) < 3 || partials[0] != "" {
		t.Errorf("partial_json = %q, want a first empty fragment and several more", partials)
	}
	var input map[string]any
	if err := json.Unmarshal([]byte(strings.Join(partials, "")), &input); err != nil {
		t.Fatalf("joined partial_json: %v", err)
	}
	if want := map[string]any{"city": "test", "days": 1.0}; !reflect.DeepEqual(input, want) {
		t.Errorf("input = %v, want %v", input, want)
	}
	if stop != "tool_use" {
		t.Errorf("stop_reason = %q, want tool_use", stop)
	}

	// Without the phrase the reply is text; non-streaming carries the block whole.
	evs = stream(t, s, "sk-ant-x", toolBody(true, "just talk"))
	var d messageDelta
	evs[len(evs)-2].decode(t, &d)
	if stop := *d.Delta.StopReason; stop != "end_turn" {
		t.Errorf("stop_reason without the phrase = %q, want end_turn", stop)
	}
	b := readAll(t, post(t, s, "sk-ant-x", toolBody(false, "USE A TOOL")))
	var m struct {
		StopReason string `json:"stop_reason"`
		Content    []struct {
			Type  string         `json:"type"`
			Name  string         `json:"name"`
			Input map[string]any `json:"input"`
		} `json:"content"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.StopReason != "tool_use" || len(m.Content) != 1 || m.Content[0].Type != "tool_use" || m.Content[0].Input["city"] != "test" {
		t.Errorf("non-stream tool reply = %s", b)
	}
}

func TestServer_Messages_ToolUseOption(t *testing.T) {
	t.Parallel()
	s := NewServer(t, ToolUse())
	if _, _, stop := toolStream(t, stream(t, s, "sk-ant-x", toolBody(true, "anything"))); stop != "tool_use" {
		t.Errorf("stop_reason = %q, want tool_use", stop)
	}
	// No tools: text even with the option.
	evs := stream(t, s, "sk-ant-x", body(true, "use a tool"))
	var b blockEvent
	evs[1].decode(t, &b)
	if b.ContentBlock.Type != "text" {
		t.Errorf("block type without tools = %q, want text", b.ContentBlock.Type)
	}
}

func TestServer_Messages_ScriptedToolCall(t *testing.T) {
	t.Parallel()
	s := NewServer(t, OK(Text("Let me check."), ToolCall("lookup", map[string]string{"q": "héllo wörld"})))
	evs := stream(t, s, "sk-ant-x", body(true, "hi"))
	checkSequence(t, evs)
	var partials []string
	for _, e := range evs {
		var b blockEvent
		if e.Name == "content_block_delta" {
			e.decode(t, &b)
			if b.Index == 1 {
				partials = append(partials, b.Delta.PartialJSON)
			}
		}
	}
	if got, want := strings.Join(partials, ""), `{"q":"héllo wörld"}`; got != want {
		t.Errorf("joined partial_json = %q, want %q", got, want)
	}
}

func TestServer_Messages_Thinking(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Script("sk-ant-x", OK(Thinking("Let me think about it carefully.", "sig-123"), Text("42"))))
	evs := stream(t, s, "sk-ant-x", body(true, "question"))
	checkSequence(t, evs)
	if evs[1].Data != `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}` {
		t.Errorf("thinking start = %s", evs[1].Data)
	}
	var thinking strings.Builder
	var kinds []string
	for _, e := range evs {
		var b blockEvent
		e.decode(t, &b)
		if e.Name == "content_block_delta" && b.Index == 0 {
			kinds = append(kinds, b.Delta.Type)
			thinking.WriteString(b.Delta.Thinking)
			if b.Delta.Type == "signature_delta" && b.Delta.Signature != "sig-123" {
				t.Errorf("signature = %q, want sig-123", b.Delta.Signature)
			}
		}
	}
	if n := len(kinds); n < 3 || kinds[0] != "thinking_delta" || kinds[n-2] != "thinking_delta" || kinds[n-1] != "signature_delta" {
		t.Errorf("thinking delta types = %v, want thinking_delta… then signature_delta", kinds)
	}
	if thinking.String() != "Let me think about it carefully." {
		t.Errorf("thinking = %q", thinking.String())
	}

	// A request enabling thinking gets a thinking block by default, with a signature.
	b := readAll(t, post(t, s, "sk-ant-x", `{"model":"m","max_tokens":2000,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"hi"}]}`))
	var m struct {
		Content []struct {
			Type, Thinking, Signature string
		} `json:"content"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Content) != 2 || m.Content[0].Type != "thinking" || m.Content[0].Signature == "" || m.Content[1].Type != "text" {
		t.Errorf("default thinking reply = %s", b)
	}
}

func TestServer_Script_OrderPerKey(t *testing.T) {
	t.Parallel()
	s := NewServer(t,
		Keys("sk-ant-a", "sk-ant-b"),
		Script("sk-ant-a", Fail(529), Fail(429, RetryAfter(30)), OK(Text("a-ok"))),
		Script("sk-ant-b", Fail(401, Message("OAuth token has expired."))),
	)
	textOf := func(res *http.Response) string {
		t.Helper()
		b := readAll(t, res)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("Status = %d, want 200; body %s", res.StatusCode, b)
		}
		var m struct {
			Content []struct{ Text string } `json:"content"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m.Content[0].Text
	}

	wantErrorBody(t, post(t, s, "sk-ant-a", body(false, "1")), 529, "overloaded_error", "Overloaded")
	wantErrorBody(t, post(t, s, "sk-ant-b", body(false, "1")), 401, "authentication_error", "OAuth token has expired.")
	res := post(t, s, "sk-ant-a", body(false, "2"))
	if got := res.Header.Get("retry-after"); got != "30" {
		t.Errorf("retry-after = %q, want 30", got)
	}
	wantErrorBody(t, res, 429, "rate_limit_error", "")
	if got := textOf(post(t, s, "sk-ant-b", body(false, "2"))); !strings.HasPrefix(got, "Hello from upstreamtest") {
		t.Errorf("b after its script = %q, want the default reply", got)
	}
	if got := textOf(post(t, s, "sk-ant-a", body(false, "3"))); got != "a-ok" {
		t.Errorf("a's third reply = %q, want a-ok", got)
	}
	if got := textOf(post(t, s, "sk-ant-a", body(false, "4"))); !strings.HasPrefix(got, "Hello from upstreamtest") {
		t.Errorf("a after its script = %q, want the default reply", got)
	}

	// Steps queued on the running server are used next.
	s.Script("sk-ant-a", Fail(500))
	wantErrorBody(t, post(t, s, "sk-ant-a", body(false, "5")), 500, "api_error", "")
	if got := s.SentUsage().Responses; got != 3 {
		t.Errorf("SentUsage().Responses = %d, want 3 (errors are not counted)", got)
	}
}

func TestServer_Fail_ErrorTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		typ    string
	}{
		{400, "invalid_request_error"},
		{401, "authentication_error"},
		{402, "billing_error"},
		{403, "permission_error"},
		{404, "not_found_error"},
		{413, "request_too_large"},
		{429, "rate_limit_error"},
		{500, "api_error"},
		{503, "api_error"},
		{529, "overloaded_error"},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			t.Parallel()
			s := NewServer(t, Fail(tt.status, Message("custom")))
			wantErrorBody(t, post(t, s, "sk-ant-x", body(tt.status%2 == 0, "x")), tt.status, tt.typ, "custom")
		})
	}
}

func TestServer_Fail_Headers(t *testing.T) {
	t.Parallel()
	reset := time.Unix(1767225600, 0)
	s := NewServer(t, Fail(429, UnifiedWindow("5h", "rejected", reset), ShouldRetry(false), ErrorType("rate_limit_error"),
		Header("anthropic-ratelimit-unified-7d-utilization", "0.4")))
	res := post(t, s, "sk-ant-x", body(true, "x"))
	want := map[string]string{
		"anthropic-ratelimit-unified-status":               "rejected",
		"anthropic-ratelimit-unified-reset":                "1767225600",
		"anthropic-ratelimit-unified-5h-status":            "rejected",
		"anthropic-ratelimit-unified-5h-reset":             "1767225600",
		"anthropic-ratelimit-unified-representative-claim": "five_hour",
		"anthropic-ratelimit-unified-7d-utilization":       "0.4",
		"x-should-retry": "false",
	}
	for k, v := range want {
		if got := res.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	wantErrorBody(t, res, 429, "rate_limit_error", "")
}

func TestServer_Auth(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Keys("sk-ant-good"), Script("sk-ant-bad", Fail(500)))
	wantErrorBody(t, post(t, s, "sk-ant-bad", body(false, "x")), 401, "authentication_error", "invalid x-api-key")
	wantErrorBody(t, post(t, s, "", body(false, "x")), 401, "authentication_error", "")
	if res := post(t, s, "sk-ant-good", body(false, "x")); res.StatusCode != http.StatusOK {
		t.Errorf("good key: Status = %d, want 200", res.StatusCode)
	}

	// A bearer token is the credential when there is no x-api-key.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL+"/v1/messages?beta=true", strings.NewReader(body(false, "x")))
	req.Header.Set("authorization", "Bearer sk-ant-good")
	req.Header.Set("anthropic-version", "2023-06-01")
	res, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("bearer: Status = %d, want 200", res.StatusCode)
	}

	// The version header is required.
	req, _ = http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL+"/v1/messages", strings.NewReader(body(false, "x")))
	req.Header.Set("x-api-key", "sk-ant-good")
	res2, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res2.Body.Close()
	wantErrorBody(t, res2, 400, "invalid_request_error", "anthropic-version: header is required")

	// Without Keys any non-empty credential works.
	if res := post(t, NewServer(t), "anything", body(false, "x")); res.StatusCode != http.StatusOK {
		t.Errorf("default keys: Status = %d, want 200", res.StatusCode)
	}
}

func TestServer_Messages_Validation(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	wantErrorBody(t, post(t, s, "k", `{"model":"m","messages":[{"role":"user","content":"x"}]}`), 400, "invalid_request_error", "max_tokens: Field required")
	wantErrorBody(t, post(t, s, "k", `{"model":"m","max_tokens":1,"messages":[]}`), 400, "invalid_request_error", "messages: at least one message is required")
	wantErrorBody(t, post(t, s, "k", `not json`), 400, "invalid_request_error", "")
	wantErrorBody(t, call(t, t.Context(), s, http.MethodGet, "/v1/nope", "k", ""), 404, "not_found_error", "")
}

func TestServer_MidStreamError(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Script("sk-ant-x", FailMidStream(2, WithUsage(Tokens{Input: 100, Output: 50, CacheRead: 10})), FailMidStream(1)))
	evs := stream(t, s, "sk-ant-x", body(true, "a fairly long message so there are many deltas"))
	want := []string{"message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta", "error"}
	if got := names(evs); !reflect.DeepEqual(got, want) {
		t.Fatalf("frames = %v, want %v", got, want)
	}
	if got := evs[5].Data; got != `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}` {
		t.Errorf("error frame = %s", got)
	}
	// Only message_start's usage went out.
	want2 := Usage{Input: 100, Output: 1, CacheRead: 10, Responses: 1}
	if got := s.SentUsage(); got != want2 {
		t.Errorf("SentUsage = %+v, want %+v", got, want2)
	}
	// The non-streaming form of the same failure is a 529.
	wantErrorBody(t, post(t, s, "sk-ant-x", body(false, "x")), 529, "overloaded_error", "Overloaded")
}

func TestServer_MidStreamAbort(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Script("k", AbortMidStream(1), AbortMidStream(0)))
	res := post(t, s, "k", body(true, "a fairly long message so there are many deltas"))
	evs, err := readEvents(res.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("read error = %v, want unexpected EOF", err)
	}
	if got, want := names(evs), []string{"message_start", "content_block_start", "ping", "content_block_delta"}; !reflect.DeepEqual(got, want) {
		t.Errorf("frames = %v, want %v", got, want)
	}
	// A JSON reply is cut halfway.
	res = post(t, s, "k", body(false, "x"))
	if _, err := io.ReadAll(res.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("JSON read error = %v, want unexpected EOF", err)
	}
	// The server keeps serving.
	if res := post(t, s, "k", body(false, "x")); res.StatusCode != http.StatusOK {
		t.Errorf("after aborts: Status = %d, want 200", res.StatusCode)
	}
	if got := s.SentUsage().Responses; got != 2 {
		t.Errorf("SentUsage().Responses = %d, want 2 (the stream's message_start and the last reply)", got)
	}
}

func TestServer_Hang(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Script("sk-ant-x", Hang()))
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/v1/messages", strings.NewReader(body(true, "x")))
		req.Header.Set("x-api-key", "sk-ant-x")
		req.Header.Set("anthropic-version", "2023-06-01")
		res, err := s.srv.Client().Do(req)
		if err == nil {
			res.Body.Close()
		}
		errc <- err
	}()
	if err := s.AwaitInFlight(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Do = %v, want context.Canceled", err)
	}
}

func TestServer_HangMidStream(t *testing.T) {
	t.Parallel()
	s := NewServer(t, HangMidStream(0))
	ctx, cancel := context.WithCancel(t.Context())
	res := call(t, ctx, s, http.MethodPost, "/v1/messages", "k", body(true, "x"))
	r := bufio.NewReader(res.Body)
	var got []string
	for len(got) < 3 { // message_start, content_block_start, ping; then nothing
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if name, ok := strings.CutPrefix(line, "event: "); ok {
			got = append(got, strings.TrimSpace(name))
		}
	}
	if s.InFlight() != 1 {
		t.Errorf("InFlight = %d, want 1", s.InFlight())
	}
	cancel()
	if _, err := io.ReadAll(r); err == nil {
		t.Errorf("read after cancel: no error, want one")
	}
}

// TestServer_HoldManyStreams keeps 50 streams open at once, then releases them.
func TestServer_HoldManyStreams(t *testing.T) {
	t.Parallel()
	const n = 50
	release := make(chan struct{})
	s := NewServer(t, OK(Hold(release), EventDelay(time.Millisecond)))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sum Tokens
	for i := range n {
		wg.Go(func() {
			res, err := do(t.Context(), s, http.MethodPost, "/v1/messages", fmt.Sprintf("sk-ant-%d", i%5), body(true, strings.Repeat("x", i)))
			if err != nil {
				t.Errorf("stream %d: %v", i, err)
				return
			}
			defer res.Body.Close()
			evs, err := readEvents(res.Body)
			if err != nil || len(evs) == 0 || evs[len(evs)-1].Name != "message_stop" {
				t.Errorf("stream %d: %v, frames %v", i, err, names(evs))
				return
			}
			var d messageDelta
			evs[len(evs)-2].decode(t, &d)
			mu.Lock()
			sum.Input += *d.Usage.InputTokens
			sum.Output += *d.Usage.OutputTokens
			mu.Unlock()
		})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := s.AwaitHeld(ctx, n); err != nil {
		t.Fatalf("AwaitHeld(%d): %v (held %d)", n, err, s.Held())
	}
	if got := s.InFlight(); got != n {
		t.Errorf("InFlight = %d, want %d", got, n)
	}
	if got := s.SentUsage().Output; got != n { // message_start's output_tokens: 1 each
		t.Errorf("SentUsage().Output while held = %d, want %d", got, n)
	}
	close(release)
	wg.Wait()
	if got := s.SentUsage(); got.Tokens() != sum || got.Responses != n {
		t.Errorf("SentUsage = %+v, want %+v over %d responses", got, sum, n)
	}
	if got := s.Count(); got != n {
		t.Errorf("Count = %d, want %d", got, n)
	}
}

func TestServer_Delays(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Script("k", OK(Delay(50*time.Millisecond)), OK(EventDelay(5*time.Millisecond))))
	begin := time.Now()
	readAll(t, post(t, s, "k", body(false, "x")))
	if d := time.Since(begin); d < 50*time.Millisecond {
		t.Errorf("Delay: reply after %v, want ≥ 50ms", d)
	}
	begin = time.Now()
	evs := stream(t, s, "k", body(true, "x"))
	if d, min := time.Since(begin), time.Duration(len(evs)-1)*5*time.Millisecond; d < min {
		t.Errorf("EventDelay: %d frames in %v, want ≥ %v", len(evs), d, min)
	}
}

func TestServer_Recording(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	before := time.Now()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL+"/v1/messages?beta=true", strings.NewReader(toolBody(true, "hi")))
	req.Header.Set("Authorization", "Bearer sk-ant-oat01-fake")
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("anthropic-beta", "oauth-2025-04-20")
	res, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readEvents(res.Body); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	models := call(t, t.Context(), s, http.MethodGet, "/v1/models", "sk-ant-api", "")
	models.Body.Close()

	if got := s.Count(); got != 2 {
		t.Fatalf("Count = %d, want 2", got)
	}
	reqs := s.Requests()
	r := reqs[0]
	if r.Method != "POST" || r.Path != "/v1/messages" || r.RawQuery != "beta=true" || r.Key != "sk-ant-oat01-fake" ||
		r.Header.Get("anthropic-beta") != "oauth-2025-04-20" || string(r.Body) != toolBody(true, "hi") ||
		r.Time.Before(before) || r.RequestID != res.Header.Get("request-id") {
		t.Errorf("recorded request = %+v", r)
	}
	if r.Model != "claude-sonnet-4-5" || !r.Stream || !reflect.DeepEqual(r.ToolNames, []string{"get_weather", "other"}) || r.LastUserText != "hi" {
		t.Errorf("parsed fields = model %q stream %t tools %v text %q", r.Model, r.Stream, r.ToolNames, r.LastUserText)
	}
	if reqs[1].Method != "GET" || reqs[1].Path != "/v1/models" || reqs[1].Key != "sk-ant-api" {
		t.Errorf("second request = %+v", reqs[1])
	}
	// Requests returns copies.
	reqs[0].Header.Set("anthropic-beta", "changed")
	reqs[0].Body[0] = 'X'
	if r := s.Requests()[0]; r.Header.Get("anthropic-beta") != "oauth-2025-04-20" || r.Body[0] != '{' {
		t.Errorf("Requests shares state with the server")
	}
}

func TestServer_CountTokens(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Script("k", Fail(529))) // scripts do not apply to count_tokens
	good := `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hello"}],"system":"x"}`
	res := call(t, t.Context(), s, http.MethodPost, "/v1/messages/count_tokens?beta=true", "k", good)
	if b := readAll(t, res); res.StatusCode != 200 || string(b) != fmt.Sprintf(`{"input_tokens":%d}`, len(good)/4) {
		t.Errorf("count_tokens = %d %s, want 200 {\"input_tokens\":%d}", res.StatusCode, b, len(good)/4)
	}
	wantErrorBody(t, call(t, t.Context(), s, http.MethodPost, "/v1/messages/count_tokens", "k",
		`{"model":"m","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}`),
		400, "invalid_request_error", "max_tokens: Extra inputs are not permitted")
	wantErrorBody(t, call(t, t.Context(), s, http.MethodPost, "/v1/messages/count_tokens", "k",
		`{"stream":true,"model":"m","messages":[]}`), 400, "invalid_request_error", "stream: Extra inputs are not permitted")
}

func TestServer_Models(t *testing.T) {
	t.Parallel()
	s := NewServer(t)
	type page struct {
		Data []struct {
			Type        string `json:"type"`
			ID          string `json:"id"`
			DisplayName string `json:"display_name"`
			CreatedAt   string `json:"created_at"`
		} `json:"data"`
		HasMore bool    `json:"has_more"`
		FirstID *string `json:"first_id"`
		LastID  *string `json:"last_id"`
	}
	get := func(path string) page {
		t.Helper()
		res := call(t, t.Context(), s, http.MethodGet, path, "k", "")
		b := readAll(t, res)
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, res.StatusCode, b)
		}
		var p page
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	all := get("/v1/models")
	if len(all.Data) != 3 || all.HasMore || *all.FirstID != all.Data[0].ID || *all.LastID != all.Data[2].ID || all.Data[0].Type != "model" {
		t.Errorf("models = %+v", all)
	}
	if _, err := time.Parse(time.RFC3339, all.Data[0].CreatedAt); err != nil {
		t.Errorf("created_at: %v", err)
	}
	p := get("/v1/models?limit=1")
	if len(p.Data) != 1 || !p.HasMore || *p.FirstID != all.Data[0].ID {
		t.Errorf("limit=1 page = %+v", p)
	}
	p = get("/v1/models?limit=2&after_id=" + *p.LastID)
	if len(p.Data) != 2 || p.HasMore || *p.FirstID != all.Data[1].ID {
		t.Errorf("after_id page = %+v", p)
	}
	res := call(t, t.Context(), s, http.MethodGet, "/v1/models/"+all.Data[1].ID, "k", "")
	if b := readAll(t, res); res.StatusCode != 200 || !strings.Contains(string(b), `"id":"`+all.Data[1].ID+`"`) {
		t.Errorf("get model = %d %s", res.StatusCode, b)
	}
	wantErrorBody(t, call(t, t.Context(), s, http.MethodGet, "/v1/models/nope", "k", ""), 404, "not_found_error", "model: nope")

	custom := NewServer(t, Models(Model{ID: "claude-x"}))
	p2 := call(t, t.Context(), custom, http.MethodGet, "/v1/models", "k", "")
	if b := readAll(t, p2); string(b) != `{"data":[{"type":"model","id":"claude-x","display_name":"claude-x","created_at":"2025-01-01T00:00:00Z"}],"has_more":false,"first_id":"claude-x","last_id":"claude-x"}` {
		t.Errorf("custom models = %s", b)
	}
}

func TestServer_Replay(t *testing.T) {
	t.Parallel()
	const transcript = "event: message_start\n" +
		`data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"cache_creation_input_tokens":4,"cache_read_input_tokens":5,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":4},"output_tokens":1}}}` + "\n\n" +
		"event: content_block_start\n" + `data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}` + "\n\n" +
		"event: content_block_delta\n" + `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}` + "\n\n" +
		"event: content_block_stop\n" + `data: {"type":"content_block_stop","index":0}` + "\n\n" +
		"event: message_delta\n" + `data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":9}}` + "\n\n" +
		"event: message_stop\n" + `data: {"type":"message_stop"}` + "\n\n"
	s := NewServer(t, Replay([]byte(transcript)), Script("json", Replay([]byte(`{"id":"msg_2","usage":{"input_tokens":1,"output_tokens":2}}`))))
	res := post(t, s, "k", body(true, "x"))
	if b := readAll(t, res); string(b) != transcript {
		t.Errorf("replayed body differs:\n%s", b)
	}
	readAll(t, post(t, s, "json", body(false, "x")))
	want := Usage{Input: 4, Output: 11, CacheRead: 5, CacheWrite: 4, CacheWrite1h: 4, Responses: 2}
	if got := s.SentUsage(); got != want {
		t.Errorf("SentUsage = %+v, want %+v", got, want)
	}

	missing := NewServer(t, ReplayFile("testdata/does-not-exist.sse"))
	wantErrorBody(t, post(t, missing, "k", body(true, "x")), 500, "api_error", "")
}

func TestServer_ReplyHook(t *testing.T) {
	t.Parallel()
	shared := []Block{{Type: "tool_use", Name: "echo"}} // shared between calls: the fake must not modify it
	s := NewServer(t, Reply(func(req *Request) Response {
		if strings.Contains(req.LastUserText, "tool") {
			return Response{Content: shared, StopSequence: "END"}
		}
		return Response{Error: &Error{Status: 503}}
	}))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			res, err := do(t.Context(), s, http.MethodPost, "/v1/messages", "k", body(false, "tool please"))
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			if b, _ := io.ReadAll(res.Body); !bytes.Contains(b, []byte(`"stop_reason":"tool_use","stop_sequence":"END"`)) {
				t.Errorf("hook reply = %s", b)
			}
		})
	}
	wg.Wait()
	if shared[0].ID != "" || shared[0].Input != nil {
		t.Errorf("shared block was modified: %+v", shared[0])
	}
	wantErrorBody(t, post(t, s, "k", body(false, "no")), 503, "api_error", "Service Unavailable")
}

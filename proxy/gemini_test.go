package proxy

// Gateway tests of the Gemini routes over plain HTTP. The tests that run
// Google's own SDK are in proxy/gemini/sdk_test.go: importing
// google.golang.org/genai starts a goroutine that never ends (see there),
// which this package's TestMain would report as a leak.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

const gemBody = `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`

// gemPost sends a request to the gateway with the client key in the
// x-goog-api-key header (as Google's SDKs do) and reads the whole answer.
func gemPost(t *testing.T, g *gateway, path, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, g.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("x-goog-api-key", testKey)
	return gemDo(t, req)
}

func gemDo(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

// gemError decodes a Google error body.
func gemError(t *testing.T, body []byte) (code int, status, message string) {
	t.Helper()
	var e struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Status  string `json:"status"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("not a Google error body: %v: %s", err, body)
	}
	return e.Error.Code, e.Error.Status, e.Error.Message
}

func TestGemini_StreamSSE(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Text("one two three")))
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	res, body := gemPost(t, g, "/v1beta/models/claude-sonnet-4-5:streamGenerateContent?alt=sse", gemBody)
	if res.StatusCode != 200 || res.Header.Get("content-type") != "text/event-stream" {
		t.Fatalf("status %d, content-type %q", res.StatusCode, res.Header.Get("content-type"))
	}
	frames := strings.Split(strings.TrimSuffix(string(body), "\r\n\r\n"), "\r\n\r\n")
	var text strings.Builder
	for i, f := range frames {
		data, ok := strings.CutPrefix(f, "data: ")
		if !ok || strings.ContainsAny(data, "\r\n") {
			t.Fatalf("frame %d is not one data line: %q", i, f)
		}
		var c struct {
			Candidates []struct {
				Content struct {
					Parts []struct{ Text string }
				}
				FinishReason string
			}
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatal(err)
		}
		text.WriteString(c.Candidates[0].Content.Parts[0].Text)
		if (c.Candidates[0].FinishReason != "") != (i == len(frames)-1) {
			t.Errorf("frame %d: finishReason %q", i, c.Candidates[0].FinishReason)
		}
	}
	if text.String() != "one two three" {
		t.Errorf("text = %q", text.String())
	}
	row := g.rec.wait(t, 1)[0]
	if row.Dialect != llmgw.DialectGemini || !row.Stream || row.Status != 200 || row.EndedEarly {
		t.Errorf("usage row = %+v", row)
	}
}

// TestGemini_StreamJSONArray checks streamGenerateContent without alt=sse:
// one JSON array, streamed.
func TestGemini_StreamJSONArray(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Text("array form")))
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	res, body := gemPost(t, g, "/v1beta/models/claude-sonnet-4-5:streamGenerateContent", gemBody)
	if res.StatusCode != 200 || res.Header.Get("content-type") != "application/json" {
		t.Fatalf("status %d, content-type %q", res.StatusCode, res.Header.Get("content-type"))
	}
	var chunks []struct {
		Candidates []struct {
			FinishReason string `json:"finishReason"`
		} `json:"candidates"`
	}
	if err := json.Unmarshal(body, &chunks); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, body)
	}
	if len(chunks) < 2 || chunks[len(chunks)-1].Candidates[0].FinishReason != "STOP" {
		t.Errorf("chunks = %s", body)
	}
}

func TestGemini_BadRequests(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	for _, tt := range []struct {
		name, path, body string
		code             int
		status, inMsg    string
	}{
		{"candidateCount", "/v1beta/models/claude-x:generateContent",
			`{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"candidateCount":3}}`, 400, "INVALID_ARGUMENT", "generationConfig.candidateCount"},
		{"not JSON", "/v1beta/models/claude-x:generateContent", `{"contents":`, 400, "INVALID_ARGUMENT", "not valid JSON"},
		{"gs uri", "/v1beta/models/claude-x:streamGenerateContent?alt=sse",
			`{"contents":[{"parts":[{"fileData":{"mimeType":"image/png","fileUri":"gs://b/x.png"}}]}]}`, 400, "INVALID_ARGUMENT", "contents[0].parts[0].fileData.fileUri"},
		{"alt", "/v1beta/models/claude-x:streamGenerateContent?alt=proto", gemBody, 400, "INVALID_ARGUMENT", "alt=proto"},
		{"unknown method", "/v1beta/models/claude-x:embedContent", gemBody, 404, "NOT_FOUND", "embedContent"},
		{"no method", "/v1beta/models/claude-x", gemBody, 404, "NOT_FOUND", "generateContent"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, body := gemPost(t, g, tt.path, tt.body)
			code, status, msg := gemError(t, body)
			if res.StatusCode != tt.code || code != tt.code || status != tt.status || !strings.Contains(msg, tt.inMsg) {
				t.Errorf("got %d %s, want %d %s containing %q", res.StatusCode, body, tt.code, tt.status, tt.inMsg)
			}
		})
	}
	if up.Count() != 0 {
		t.Errorf("upstream got %d requests for refused ones", up.Count())
	}
}

// TestGemini_KeyLocations checks every place a Gemini client may put its
// key, and the Google-shaped 401 without one.
func TestGemini_KeyLocations(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	path := "/v1beta/models/claude-sonnet-4-5:generateContent"
	for name, set := range map[string]func(*http.Request){
		"x-goog-api-key": func(r *http.Request) { r.Header.Set("x-goog-api-key", testKey) },
		"query key":      func(r *http.Request) { r.URL.RawQuery = "key=" + testKey },
		"bearer":         func(r *http.Request) { r.Header.Set("authorization", "Bearer "+testKey) },
	} {
		req, _ := http.NewRequestWithContext(ctx(t), http.MethodPost, g.URL+path, strings.NewReader(gemBody))
		set(req)
		if res, body := gemDo(t, req); res.StatusCode != 200 {
			t.Errorf("%s: status %d %s", name, res.StatusCode, body)
		}
	}
	for _, r := range up.Requests() {
		if strings.Contains(r.RawQuery, testKey) || strings.Contains(r.Header.Get("x-goog-api-key"), testKey) {
			t.Error("the client key reached the upstream")
		}
	}
	req, _ := http.NewRequestWithContext(ctx(t), http.MethodPost, g.URL+path, strings.NewReader(gemBody))
	res, body := gemDo(t, req)
	if code, status, _ := gemError(t, body); res.StatusCode != 401 || code != 401 || status != "UNAUTHENTICATED" {
		t.Errorf("no key: %d %s", res.StatusCode, body)
	}
}

// TestGemini_OverloadRetryAfter checks that an overload on every
// account reaches a Gemini client as the 503 its SDK retries, with
// retry-after passed on.
func TestGemini_OverloadRetryAfter(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.Fail(529, upstreamtest.RetryAfter(7)))
	g := newGateway(t, Config{MaxAttempts: 1}, account(1, "main", "sk-ant-main", up.URL))
	res, body := gemPost(t, g, "/v1beta/models/claude-sonnet-4-5:generateContent", gemBody)
	code, status, _ := gemError(t, body)
	if res.StatusCode != 503 || code != 503 || status != "UNAVAILABLE" {
		t.Errorf("got %d %s, want 503 UNAVAILABLE", res.StatusCode, body)
	}
	if got := res.Header.Get("retry-after"); got != "7" {
		t.Errorf("retry-after = %q, want 7", got)
	}
	res, body = gemPost(t, g, "/v1beta/models/claude-sonnet-4-5:streamGenerateContent?alt=sse", gemBody)
	if code, status, _ := gemError(t, body); res.StatusCode != 503 || code != 503 || status != "UNAVAILABLE" {
		t.Errorf("stream: got %d %s, want a 503 before any stream", res.StatusCode, body)
	}
}

// TestGemini_AbortedUpstream checks that an upstream that drops the
// connection mid-stream ends the client's stream with an error frame.
func TestGemini_AbortedUpstream(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.AbortMidStream(1, upstreamtest.Text("one two three four")))
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	res, body := gemPost(t, g, "/v1beta/models/claude-sonnet-4-5:streamGenerateContent?alt=sse", gemBody)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	frames := strings.Split(strings.TrimSuffix(string(body), "\r\n\r\n"), "\r\n\r\n")
	last := strings.TrimPrefix(frames[len(frames)-1], "data: ")
	if code, status, _ := gemError(t, []byte(last)); code < 500 || status == "" {
		t.Errorf("last frame = %s, want an error", last)
	}
	if strings.Contains(string(body), "finishReason") {
		t.Errorf("a broken stream reported a finishReason:\n%s", body)
	}
	if row := g.rec.wait(t, 1)[0]; !row.EndedEarly {
		t.Errorf("usage row = %+v, want EndedEarly", row)
	}
}

// TestGemini_SplitUTF8Upstream sends the upstream stream one byte
// per write, splitting every multi-byte character, and checks the text
// arrives intact.
func TestGemini_SplitUTF8Upstream(t *testing.T) {
	const text = "日本語 🙂 ünïcödé"
	var sse bytes.Buffer
	for _, ev := range []struct{ name, data string }{
		{"message_start", `{"type":"message_start","message":{"id":"msg_u","type":"message","role":"assistant","model":"claude-x","content":[],"usage":{"input_tokens":3,"output_tokens":1}}}`},
		{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"` + text + `"}}`},
		{"content_block_stop", `{"type":"content_block_stop","index":0}`},
		{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}}`},
		{"message_stop", `{"type":"message_stop"}`},
	} {
		sse.WriteString("event: " + ev.name + "\ndata: " + ev.data + "\n\n")
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("content-type", "text/event-stream")
		rc := http.NewResponseController(w)
		for _, b := range sse.Bytes() {
			if _, err := w.Write([]byte{b}); err != nil {
				return
			}
			_ = rc.Flush()
		}
	}))
	t.Cleanup(up.Close)
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	_, body := gemPost(t, g, "/v1beta/models/claude-x:generateContent", gemBody)
	var res struct {
		Candidates []struct {
			Content struct{ Parts []struct{ Text string } }
		}
	}
	if err := json.Unmarshal(body, &res); err != nil || len(res.Candidates) == 0 {
		t.Fatalf("answer %s: %v", body, err)
	}
	if got := res.Candidates[0].Content.Parts[0].Text; got != text {
		t.Errorf("text = %q, want %q", got, text)
	}
}

// TestGemini_Breakpoints checks the upstream request of a Gemini
// client carries cache breakpoints (it cannot send its own), at most four.
func TestGemini_Breakpoints(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	body := `{"systemInstruction":{"parts":[{"text":"rules"}]},
		"tools":[{"functionDeclarations":[{"name":"a"},{"name":"b"}]}],
		"contents":[{"role":"user","parts":[{"text":"1"}]},{"role":"model","parts":[{"text":"2"}]},{"role":"user","parts":[{"text":"3"}]},
		{"role":"model","parts":[{"text":"4"}]},{"role":"user","parts":[{"text":"5"}]}]}`
	if res, b := gemPost(t, g, "/v1beta/models/claude-x:generateContent", body); res.StatusCode != 200 {
		t.Fatalf("status %d %s", res.StatusCode, b)
	}
	n := strings.Count(string(up.Requests()[0].Body), `"cache_control"`)
	if n == 0 || n > 4 {
		t.Errorf("upstream request has %d cache breakpoints, want 1 to 4", n)
	}
}

func TestGemini_CountTokens(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
	res, body := gemPost(t, g, "/v1beta/models/claude-x:countTokens",
		`{"generateContentRequest":{"contents":[{"role":"user","parts":[{"text":"count these words"}]}],"generationConfig":{"maxOutputTokens":9}}}`)
	var got struct {
		TotalTokens int `json:"totalTokens"`
	}
	if res.StatusCode != 200 || json.Unmarshal(body, &got) != nil || got.TotalTokens <= 0 {
		t.Errorf("got %d %s", res.StatusCode, body)
	}
	if rows := g.rec.count(); rows != 0 {
		t.Errorf("countTokens left %d usage rows, want none", rows)
	}
}

func TestGemini_Models(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{Aliases: map[string]string{"gemini-2.5-flash": "claude-haiku-4-5-20251001"}}, account(1, "main", "sk-ant-main", up.URL))
	get := func(path string) []byte {
		req, _ := http.NewRequestWithContext(ctx(t), http.MethodGet, g.URL+path, nil)
		req.Header.Set("x-goog-api-key", testKey)
		res, body := gemDo(t, req)
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, res.StatusCode, body)
		}
		return body
	}
	var list struct {
		Models []struct {
			Name                       string   `json:"name"`
			DisplayName                string   `json:"displayName"`
			SupportedGenerationMethods []string `json:"supportedGenerationMethods"`
		} `json:"models"`
	}
	if err := json.Unmarshal(get("/v1beta/models"), &list); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range list.Models {
		names = append(names, m.Name)
	}
	// The model catalog's list, newest first, then the aliases.
	var want []string
	for _, m := range anthropic.Models() {
		want = append(want, "models/"+m.SnapshotID())
	}
	want = append(want, "models/gemini-2.5-flash")
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("model names (-want +got):\n%s", diff)
	}
	if m, first := list.Models[0], anthropic.Models()[0]; m.DisplayName != first.DisplayName || len(m.SupportedGenerationMethods) != 3 {
		t.Errorf("first model = %+v, want %s", m, first.DisplayName)
	}
	var one struct {
		Name        string `json:"name"`
		DisplayName string `json:"displayName"`
	}
	if err := json.Unmarshal(get("/v1beta/models/gemini-2.5-flash"), &one); err != nil || one.Name != "models/gemini-2.5-flash" || one.DisplayName != "Claude Haiku 4.5" {
		t.Errorf("alias entry = %+v, %v", one, err)
	}
	if up.Count() != 0 {
		t.Errorf("the model list asked the upstream %d times", up.Count())
	}
}

// gemBench runs a Gemini request for a short answer through the gateway at
// path, next to the passthrough and direct baselines.
func gemBench(b *testing.B, stream bool, path string) {
	body := `{"contents":[{"role":"user","parts":[{"text":"Say something short."}]}],"generationConfig":{"maxOutputTokens":64}}`
	benchConversion(b, stream, path, func(r *http.Request) { r.Header.Set("x-goog-api-key", testKey) }, body)
}

// BenchmarkGeminiConversion_JSON is one generateContent request.
func BenchmarkGeminiConversion_JSON(b *testing.B) {
	gemBench(b, false, "/v1beta/models/claude-sonnet-4-5:generateContent")
}

// BenchmarkGeminiConversion_Stream is one streamGenerateContent request.
func BenchmarkGeminiConversion_Stream(b *testing.B) {
	gemBench(b, true, "/v1beta/models/claude-sonnet-4-5:streamGenerateContent?alt=sse")
}

package gemini

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw/proxy/anthropic"
)

func (s *stream) thinking(i int, text, sig string) *stream {
	idx := itoa(i)
	s.ev("content_block_start", `{"type":"content_block_start","index":`+idx+`,"content_block":{"type":"thinking","thinking":"","signature":""}}`)
	b, _ := json.Marshal(text)
	s.ev("content_block_delta", `{"type":"content_block_delta","index":`+idx+`,"delta":{"type":"thinking_delta","thinking":`+string(b)+`}}`)
	if sig != "" {
		s.ev("content_block_delta", `{"type":"content_block_delta","index":`+idx+`,"delta":{"type":"signature_delta","signature":"`+sig+`"}}`)
	}
	return s.ev("content_block_stop", `{"type":"content_block_stop","index":`+idx+`}`)
}

func TestEncoder_ThoughtsHiddenButCarried(t *testing.T) {
	s := new(stream).start("").thinking(0, "secret plan", "SIG1").text(1, "Hi", " there").end("end_turn", `{"output_tokens":9}`)
	c := encodeStream(t, Info{Model: "m"}, s)
	if len(c) != 3 {
		t.Fatalf("got %d chunks, want 3 (two texts, the last)", len(c))
	}
	first := c[0].Candidates[0].Content.Parts[0]
	if first.Thought || first.Text != "Hi" || first.ThoughtSignature == "" {
		t.Fatalf("first part = %+v, want the text with the thinking carried in thoughtSignature", first)
	}
	if c[1].Candidates[0].Content.Parts[0].ThoughtSignature != "" {
		t.Error("the thinking was carried twice")
	}
	got := decodeCarrier(first.ThoughtSignature)
	want := []anthropic.ContentBlock{{Type: "thinking", Thinking: "secret plan", Signature: "SIG1"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("carried blocks (-want +got):\n%s", diff)
	}
}

func TestEncoder_UnsignedThinkingDropped(t *testing.T) {
	s := new(stream).start("").thinking(0, "no signature", "").text(1, "answer").end("end_turn", `{"output_tokens":3}`)
	c := encodeStream(t, Info{Model: "m", IncludeThoughts: true}, s)
	if p := c[1].Candidates[0].Content.Parts[0]; p.ThoughtSignature != "" || p.Text != "answer" {
		t.Errorf("part = %+v: unsigned thinking must not be carried", p)
	}
	if p := c[0].Candidates[0].Content.Parts[0]; !p.Thought || p.Text != "no signature" {
		t.Errorf("thought part = %+v", p)
	}
}

func TestEncoder_BadEvent(t *testing.T) {
	enc := NewEncoder(Info{Model: "m"})
	var out bytes.Buffer
	if err := enc.Event(&out, "content_block_delta", []byte(`{not json`)); err == nil {
		t.Error("no error for a broken event")
	}
	if err := enc.Event(&out, "content_block_delta", []byte(`{"index":3,"delta":{"type":"text_delta","text":"x"}}`)); err == nil {
		t.Error("no error for a delta of an unknown block")
	}
	if err := enc.Event(&out, "content_block_start", []byte(`{"index":-1,"content_block":{"type":"text"}}`)); err == nil {
		t.Error("no error for a negative index")
	}
}

func TestEncoder_JSONArrayFailFirst(t *testing.T) {
	enc := NewEncoder(Info{Model: "m", JSONArray: true})
	var out bytes.Buffer
	if err := enc.Fail(&out, "rate_limit_error", "slow down"); err != nil {
		t.Fatal(err)
	}
	want := `[{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}]`
	if out.String() != want {
		t.Errorf("got %s, want %s", out.String(), want)
	}
}

func TestResult_Empty(t *testing.T) {
	var acc anthropic.Accumulator
	acc.Response = anthropic.Response{ID: "msg_9", StopReason: "max_tokens"}
	res, err := Result(&acc, Info{Model: "claude-x"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"candidates":[{"content":{"role":"model","parts":[{"text":""}]},"finishReason":"MAX_TOKENS","index":0}],` +
		`"usageMetadata":{"promptTokenCount":0,"candidatesTokenCount":0,"totalTokenCount":0},"modelVersion":"claude-x","responseId":"msg_9"}`
	if string(res) != want {
		t.Errorf("Result =\n%s\nwant\n%s", res, want)
	}
	if _, err := Result(nil, Info{}); err == nil {
		t.Error("Result(nil) gave no error")
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", "quote \" backslash \\ slash /", "<html> & co", "\x00\x01\x1f\t\n\r", "日本語 🙂",
		"bad \xff\xfe utf8", "line\u2028sep\u2029", strings.Repeat("x", 100)} {
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("appendString(%q) = %s: not JSON: %v", s, b, err)
			continue
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if !utf8.ValidString(s) {
			want = string([]rune(s)) // each bad byte is one U+FFFD, as encoding/json does
		}
		if got != want {
			t.Errorf("appendString(%q) round-trips to %q", s, got)
		}
		if bytes.ContainsAny(b, "\n\r") {
			t.Errorf("appendString(%q) has a raw line break", s)
		}
	}
}

func TestModelEntry(t *testing.T) {
	m := ModelEntry("claude-opus-4-1-20250805", nil)
	if m.Name != "models/claude-opus-4-1-20250805" || m.OutputTokenLimit != 32000 || m.InputTokenLimit != 200000 ||
		m.DisplayName != "Claude Opus 4.1" || !m.Thinking {
		t.Errorf("entry = %+v", m)
	}
	if u := ModelEntry("claude-next-1", nil); u.DisplayName != "claude-next-1" || u.OutputTokenLimit != 8192 || !u.Thinking {
		t.Errorf("unknown model entry = %+v", u)
	}
	if h := ModelEntry("claude-3-5-haiku", nil); h.Thinking {
		t.Errorf("a model without extended thinking: entry = %+v", h)
	}
	c, err := anthropic.Builtin().With(anthropic.Model{ID: "claude-custom", DisplayName: "Custom", ContextWindow: 400000, MaxOutputTokens: 16000})
	if err != nil {
		t.Fatal(err)
	}
	if e := ModelEntry("claude-custom", c); e.DisplayName != "Custom" || e.InputTokenLimit != 400000 || e.OutputTokenLimit != 16000 {
		t.Errorf("configured model entry = %+v", e)
	}
	b, err := ModelList(nil)
	if err != nil || string(b) != `{"models":[]}` {
		t.Errorf("ModelList(nil) = %s, %v", b, err)
	}
}

func TestCountTokens(t *testing.T) {
	body, model, _, err := CountTokensRequest("models/claude-x", []byte(`{"generateContentRequest":{"model":"models/claude-x",
		"contents":[{"role":"user","parts":[{"text":"count me"}]}],"generationConfig":{"maxOutputTokens":5}}}`), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"model":"claude-x","messages":[{"role":"user","content":[{"type":"text","text":"count me"}]}]}`
	if string(body) != want || model != "claude-x" {
		t.Errorf("CountTokensRequest = %s, %s; want %s", body, model, want)
	}
	if _, _, _, err := CountTokensRequest("claude-x", []byte(`{"contents":[{"role":"x"}]}`), DecodeOptions{}); !errors.As(err, new(*RequestError)) {
		t.Errorf("err = %v, want a RequestError", err)
	}
	res, err := CountTokensResult([]byte(`{"input_tokens":42}`))
	if err != nil || string(res) != `{"totalTokens":42}` {
		t.Errorf("CountTokensResult = %s, %v", res, err)
	}
	if _, err := CountTokensResult([]byte(`{}`)); err == nil {
		t.Error("no error without input_tokens")
	}
}

// FuzzDecode checks that no input makes Decode panic, and that every error
// is a *RequestError (answered as a Google 400).
func FuzzDecode(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/golden/*/request.json")
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add("claude-sonnet-4-5", b)
		}
	}
	for _, s := range []string{
		`{"contents":[{"role":"model","parts":[{"functionCall":{"name":"f","args":[]}}]},{"role":"function","parts":[{"functionResponse":{"name":"f","response":null}}]}]}`,
		`{"contents":[{"parts":[{"inlineData":{"mimeType":"text/plain","data":"////"}}]}],"generationConfig":{"thinkingConfig":{"thinkingBudget":99999999}}}`,
		`{"tools":[{"functionDeclarations":[{"name":"a","parameters":{"type":"OBJECT","properties":{"x":{"$ref":"#/$defs/x"}},"$defs":{"x":{"$ref":"#/$defs/x"}}}}]}]}`,
		`{"contents":[{"parts":[{"text":"x","thoughtSignature":"bGxtZ3cudGhpbmtpbmcudjE6W3t9XQ=="}]}]}`,
		`{"system_instruction":{"parts":[{"text":"s"}]},"generation_config":{"response_mime_type":"application/json","response_schema":{"type":"OBJECT","any_of":[1,{"type":"STRING"}]}}}`,
		`null`, `{}`, `{"contents":null}`, `{"contents":[null,{}]}`,
	} {
		f.Add("models/claude-x", []byte(s))
	}
	f.Fuzz(func(t *testing.T, model string, body []byte) {
		req, info, err := Decode(model, body, DecodeOptions{Aliases: map[string]string{"a": "claude-x"}})
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %T %v is not a *RequestError", err, err)
			}
			return
		}
		if _, err := json.Marshal(req); err != nil {
			t.Fatalf("decoded request does not encode: %v", err)
		}
		if len(req.Messages) == 0 || req.Messages[0].Role != "user" || req.MaxTokens <= 0 {
			t.Fatalf("invalid request: %+v", req)
		}
		if req.Thinking != nil && (req.Thinking.BudgetTokens < anthropic.MinThinkingBudget || req.Thinking.BudgetTokens >= req.MaxTokens) {
			t.Fatalf("thinking %+v with max_tokens %d", req.Thinking, req.MaxTokens)
		}
		_ = info
	})
}

// BenchmarkEncoder measures translating one streamed answer of 200 text
// deltas and a tool call.
func BenchmarkEncoder(b *testing.B) {
	s := new(stream).start(`{"input_tokens":1000,"cache_read_input_tokens":5000,"output_tokens":1}`)
	parts := make([]string, 200)
	for i := range parts {
		parts[i] = "word, \"quoted\" "
	}
	s.text(0, parts...).tool(1, "toolu_1", "f", `{"a":`, `[1,2,3]}`).end("tool_use", `{"output_tokens":400}`)
	type event struct {
		name string
		data []byte
	}
	var events []event
	for _, frame := range strings.Split(strings.TrimSuffix(s.String(), "\n\n"), "\n\n") {
		name, data, _ := strings.Cut(frame, "\n")
		events = append(events, event{strings.TrimPrefix(name, "event: "), []byte(strings.TrimPrefix(data, "data: "))})
	}
	var out bytes.Buffer
	b.ReportAllocs()
	b.SetBytes(int64(s.Len()))
	b.ResetTimer()
	for range b.N {
		out.Reset()
		enc := NewEncoder(Info{Model: "claude-sonnet-4-5"})
		for _, ev := range events {
			if err := enc.Event(&out, ev.name, ev.data); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkDecode measures translating a mid-sized request.
func BenchmarkDecode(b *testing.B) {
	body := mustRead(b, "testdata/golden/tool_calls/request.json")
	b.ReportAllocs()
	for range b.N {
		if _, _, err := Decode("claude-sonnet-4-5", body, DecodeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEncoder_KeepAlive checks that a client waiting on withheld content (a
// long function call, hidden thinking) gets empty-text chunks, and nothing
// else: no comments, no blank lines, because a Gemini client reads nothing
// but data frames, so its keep-alive must be one.
func TestEncoder_KeepAlive(t *testing.T) {
	big := strings.Repeat("x", 3000)
	s := new(stream).start("").ev("ping", `{"type":"ping"}`).
		thinking(0, "hmm", "S")
	s.ev("content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"write","input":{}}}`)
	s.ev("ping", `{"type":"ping"}`) // a silence while the call is withheld: keep-alive
	// 9000 bytes withheld after the keep-alive: one more at 4 KiB.
	for _, frag := range []string{`{"c":"` + big, big, big + `"}`} {
		s.ev("content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":`+string(mustJSON(frag))+`}}`)
	}
	s.ev("content_block_stop", `{"type":"content_block_stop","index":1}`)
	s.ev("ping", `{"type":"ping"}`) // nothing withheld: no output
	s.end("tool_use", `{"output_tokens":3000}`)
	out := replay(t, NewEncoder(Info{Model: "m"}), s.Bytes())
	c := chunks(t, out)
	var kinds []string
	for _, ch := range c {
		p := ch.Candidates[0].Content.Parts[0]
		switch {
		case ch.Candidates[0].FinishReason != "":
			kinds = append(kinds, "finish")
		case p.FunctionCall != nil:
			kinds = append(kinds, "call")
		case p.Text == "" && p.ThoughtSignature == "":
			kinds = append(kinds, "keepalive")
		default:
			kinds = append(kinds, "other")
		}
	}
	if diff := cmp.Diff([]string{"keepalive", "keepalive", "call", "finish"}, kinds); diff != "" {
		t.Errorf("chunks (-want +got):\n%s\n%s", diff, out)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

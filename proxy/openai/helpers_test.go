package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/sse"
)

// testCreated is the created time the unit tests fix.
const testCreated = 1700000000

// decode decodes body with no aliases and fails the test on an error.
func decode(t testing.TB, body string) (*anthropic.Request, ChatInfo) {
	t.Helper()
	req, info, err := DecodeChat([]byte(body), DecodeOptions{})
	if err != nil {
		t.Fatalf("DecodeChat: %v", err)
	}
	return req, info
}

// decodeErr decodes body, which must fail, and returns the RequestError.
func decodeErr(t testing.TB, body string) *RequestError {
	t.Helper()
	req, _, err := DecodeChat([]byte(body), DecodeOptions{})
	if err == nil {
		got, _ := json.Marshal(req)
		t.Fatalf("DecodeChat succeeded with %s, want an error", got)
	}
	var re *RequestError
	if !errors.As(err, &re) {
		t.Fatalf("error %T %v is not a *RequestError", err, err)
	}
	return re
}

// asJSON turns v into generic JSON for comparison.
func asJSON(t testing.TB, v any) any {
	t.Helper()
	var b []byte
	switch x := v.(type) {
	case string:
		b = []byte(x)
	case []byte:
		b = x
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return out
}

// field returns the JSON value at a dotted path of an Anthropic request
// ("messages.1.content.0"), or nil.
func field(t testing.TB, req *anthropic.Request, path string) any {
	t.Helper()
	v := asJSON(t, req)
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			i := 0
			for _, c := range k {
				i = i*10 + int(c-'0')
			}
			if i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// wantField checks the JSON value at path against want (JSON text).
func wantField(t testing.TB, req *anthropic.Request, path, want string) {
	t.Helper()
	if diff := cmp.Diff(asJSON(t, want), field(t, req, path)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

// runStream feeds an Anthropic SSE transcript to a ChatEncoder and returns
// what the client would read. A transcript that stops without message_stop
// ends with Fail, as the proxy does.
func runStream(t testing.TB, info ChatInfo, transcript string) string {
	t.Helper()
	if info.Created == 0 {
		info.Created = testCreated
	}
	enc := NewChatEncoder(info)
	var out bytes.Buffer
	r := sse.NewReader(strings.NewReader(transcript))
	stopped := false
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("transcript: %v", err)
		}
		if ev.Name == "error" {
			var e struct{ Error anthropic.ErrorDetail }
			_ = json.Unmarshal(ev.Data, &e)
			if err := enc.Fail(&out, e.Error.Type, e.Error.Message); err != nil {
				t.Fatal(err)
			}
			return out.String()
		}
		if err := enc.Event(&out, ev.Name, ev.Data); err != nil {
			t.Fatalf("Event(%s): %v", ev.Name, err)
		}
		if ev.Name == "message_stop" {
			stopped = true
			break
		}
	}
	if !stopped {
		if err := enc.Fail(&out, "api_error", "the upstream stream ended before the message was complete"); err != nil {
			t.Fatal(err)
		}
	}
	return out.String()
}

// accumulate rebuilds the whole message of a transcript, as the proxy does
// for a non-streaming client.
func accumulate(t testing.TB, transcript string) *anthropic.Accumulator {
	t.Helper()
	var acc anthropic.Accumulator
	r := sse.NewReader(strings.NewReader(transcript))
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("transcript: %v", err)
		}
		if err := acc.Add(ev.Name, ev.Data); err != nil {
			t.Fatalf("Add(%s): %v", ev.Name, err)
		}
	}
	return &acc
}

// frames splits a client stream into its data payloads (comments dropped).
func frames(t testing.TB, stream string) []string {
	t.Helper()
	var out []string
	for _, fr := range strings.Split(stream, "\n\n") {
		if fr == "" || strings.HasPrefix(fr, ":") {
			continue
		}
		d, ok := strings.CutPrefix(fr, "data: ")
		if !ok {
			t.Fatalf("frame %q is not a data frame", fr)
		}
		out = append(out, d)
	}
	return out
}

// chunks decodes every data frame but [DONE] as JSON.
func chunks(t testing.TB, stream string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, f := range frames(t, stream) {
		if f == "[DONE]" {
			continue
		}
		m, ok := asJSON(t, f).(map[string]any)
		if !ok {
			t.Fatalf("frame %s is not an object", f)
		}
		out = append(out, m)
	}
	return out
}

// deltas returns the delta of every chunk that has a choice.
func deltas(t testing.TB, stream string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, c := range chunks(t, stream) {
		ch, _ := c["choices"].([]any)
		if len(ch) == 0 {
			continue
		}
		d, _ := ch[0].(map[string]any)["delta"].(map[string]any)
		out = append(out, d)
	}
	return out
}

// sseBuilder writes Anthropic stream transcripts for tests.
type sseBuilder struct{ strings.Builder }

func (b *sseBuilder) ev(name, data string) *sseBuilder {
	b.WriteString("event: " + name + "\ndata: " + data + "\n\n")
	return b
}

func (b *sseBuilder) start(usage string) *sseBuilder {
	if usage == "" {
		usage = `{"input_tokens":10,"output_tokens":1}`
	}
	return b.ev("message_start", `{"type":"message_start","message":{"id":"msg_01TEST","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":`+usage+`}}`)
}

func (b *sseBuilder) text(index int, pieces ...string) *sseBuilder {
	b.ev("content_block_start", `{"type":"content_block_start","index":`+itoa(index)+`,"content_block":{"type":"text","text":""}}`)
	for _, p := range pieces {
		q, _ := json.Marshal(p)
		b.ev("content_block_delta", `{"type":"content_block_delta","index":`+itoa(index)+`,"delta":{"type":"text_delta","text":`+string(q)+`}}`)
	}
	return b.ev("content_block_stop", `{"type":"content_block_stop","index":`+itoa(index)+`}`)
}

func (b *sseBuilder) tool(index int, id, name string, fragments ...string) *sseBuilder {
	b.ev("content_block_start", `{"type":"content_block_start","index":`+itoa(index)+`,"content_block":{"type":"tool_use","id":"`+id+`","name":"`+name+`","input":{}}}`)
	for _, f := range fragments {
		q, _ := json.Marshal(f)
		b.ev("content_block_delta", `{"type":"content_block_delta","index":`+itoa(index)+`,"delta":{"type":"input_json_delta","partial_json":`+string(q)+`}}`)
	}
	return b.ev("content_block_stop", `{"type":"content_block_stop","index":`+itoa(index)+`}`)
}

func (b *sseBuilder) thinking(index int, text, signature string) *sseBuilder {
	q, _ := json.Marshal(text)
	b.ev("content_block_start", `{"type":"content_block_start","index":`+itoa(index)+`,"content_block":{"type":"thinking","thinking":"","signature":""}}`)
	b.ev("content_block_delta", `{"type":"content_block_delta","index":`+itoa(index)+`,"delta":{"type":"thinking_delta","thinking":`+string(q)+`}}`)
	if signature != "" {
		qs, _ := json.Marshal(signature)
		b.ev("content_block_delta", `{"type":"content_block_delta","index":`+itoa(index)+`,"delta":{"type":"signature_delta","signature":`+string(qs)+`}}`)
	}
	return b.ev("content_block_stop", `{"type":"content_block_stop","index":`+itoa(index)+`}`)
}

func (b *sseBuilder) stop(reason, usage string) *sseBuilder {
	if usage == "" {
		usage = `{"output_tokens":5}`
	}
	b.ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"`+reason+`","stop_sequence":null},"usage":`+usage+`}`)
	return b.ev("message_stop", `{"type":"message_stop"}`)
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

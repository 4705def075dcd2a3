package upstreamtest

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// WithUsageJSON's fields go where Anthropic sends them: all on a whole
// reply's usage; in a stream, iterations on message_delta and the others on
// message_start. The token figures are unchanged.
func TestWithUsageJSON(t *testing.T) {
	t.Parallel()
	const fields = `{"speed":"fast","inference_geo":"us","iterations":[{"type":"message","input_tokens":3,"output_tokens":4,"cache_read_input_tokens":0,"cache_creation_input_tokens":0}]}`
	s := NewServer(t, OK(WithUsage(Tokens{Input: 3, Output: 4}), WithUsageJSON(fields)))
	usageOf := func(data string, path ...string) map[string]json.RawMessage {
		t.Helper()
		var v map[string]json.RawMessage
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			t.Fatal(err)
		}
		for _, p := range path {
			if err := json.Unmarshal(v[p], &v); err != nil {
				t.Fatalf("%s in %s: %v", p, data, err)
			}
		}
		return v
	}

	res := post(t, s, "k", `{"model":"claude-opus-4-8","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)
	body, _ := io.ReadAll(res.Body)
	u := usageOf(string(body), "usage")
	if string(u["speed"]) != `"fast"` || string(u["inference_geo"]) != `"us"` || !strings.HasPrefix(string(u["iterations"]), `[{"type":"message"`) || string(u["input_tokens"]) != "3" {
		t.Errorf("whole usage = %s", body)
	}

	evs := stream(t, s, "k", `{"model":"claude-opus-4-8","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	for _, e := range evs {
		switch e.Name {
		case "message_start":
			u := usageOf(e.Data, "message", "usage")
			if string(u["speed"]) != `"fast"` || string(u["inference_geo"]) != `"us"` || u["iterations"] != nil {
				t.Errorf("message_start usage = %s", e.Data)
			}
		case "message_delta":
			u := usageOf(e.Data, "usage")
			if u["iterations"] == nil || u["speed"] != nil || string(u["output_tokens"]) != "4" {
				t.Errorf("message_delta usage = %s", e.Data)
			}
		}
	}
	if got := s.SentUsage(); got.Input != 6 || got.Output != 8 {
		t.Errorf("SentUsage = %+v, want the figures of both replies", got)
	}
}

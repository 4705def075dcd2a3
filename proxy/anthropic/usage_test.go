package anthropic

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw"
)

// The usage shapes of late 2026: speed and inference_geo on message_start,
// iterations[] (each with its own model) on the final message_delta, and a
// cache_creation_input_tokens total without the 5m/1h split.
const (
	usageStart = `{"type":"message_start","message":{"id":"msg_u","type":"message","role":"assistant","model":"claude-sonnet-4-6","content":[],` +
		`"usage":{"input_tokens":20,"cache_creation_input_tokens":500,"cache_read_input_tokens":0,"output_tokens":1,` +
		`"service_tier":"standard","speed":"fast","inference_geo":"us"}}}`
	usageDelta = `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},` +
		`"usage":{"input_tokens":20,"cache_creation_input_tokens":500,"output_tokens":70,"iterations":[` +
		`{"type":"compaction","input_tokens":1000,"output_tokens":100,"cache_read_input_tokens":0,"cache_creation_input_tokens":0},` +
		`{"type":"message","input_tokens":10,"output_tokens":30,"cache_read_input_tokens":0,"cache_creation_input_tokens":500},` +
		`{"type":"advisor_message","model":"claude-opus-4-8","input_tokens":300,"output_tokens":40,"cache_read_input_tokens":0,` +
		`"cache_creation_input_tokens":60,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":60}}]}}`
	usageWhole = `{"id":"msg_w","type":"message","role":"assistant","model":"claude-sonnet-4-6","content":[{"type":"text","text":"hi"}],` +
		`"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":20,"cache_creation_input_tokens":500,` +
		`"cache_read_input_tokens":0,"output_tokens":70,"speed":"standard","inference_geo":"global","iterations":[` +
		`{"type":"message","input_tokens":20,"output_tokens":70,"cache_read_input_tokens":0,"cache_creation_input_tokens":500},` +
		`{"type":"fallback_message","model":"claude-opus-5","input_tokens":5,"output_tokens":6,"cache_read_input_tokens":7,"cache_creation_input_tokens":0}]}}`
)

var wantStreamIterations = []llmgw.Iteration{
	{Type: "compaction", Tokens: llmgw.Tokens{Input: 1000, Output: 100}},
	{Type: "message", Tokens: llmgw.Tokens{Input: 10, Output: 30, CacheWrite: 500}},
	{Type: "advisor_message", Model: "claude-opus-4-8", Tokens: llmgw.Tokens{Input: 300, Output: 40, CacheWrite: 60, CacheWrite1h: 60}},
}

func TestTally_UsageShapes_Stream(t *testing.T) {
	var a Accumulator
	for _, ev := range []struct{ name, data string }{
		{"message_start", usageStart},
		{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}`},
		{"content_block_stop", `{"type":"content_block_stop","index":0}`},
		{"message_delta", usageDelta},
		{"message_stop", `{"type":"message_stop"}`},
	} {
		if err := a.Add(ev.name, []byte(ev.data)); err != nil {
			t.Fatalf("%s: %v", ev.name, err)
		}
	}
	var got llmgw.Usage
	a.Tally.Fill(&got)
	want := llmgw.Usage{
		// The total without a split stays a total: pricing bills it as
		// 5-minute writes.
		Tokens:       llmgw.Tokens{Input: 20, Output: 70, CacheWrite: 500},
		Iterations:   wantStreamIterations,
		Speed:        llmgw.SpeedFast,
		InferenceGeo: "us",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
}

// A later message_delta replaces the cumulative figures and the iterations
// it carries and leaves the others, as the SDK's accumulator does.
func TestTally_UsageShapes_LaterDeltaReplaces(t *testing.T) {
	var tl Tally
	tl.Observe("message_start", []byte(usageStart))
	tl.Observe("message_delta", []byte(usageDelta))
	tl.Observe("message_delta", []byte(`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":90,"speed":"standard",`+
		`"iterations":[{"type":"message","input_tokens":20,"output_tokens":90,"cache_read_input_tokens":0,"cache_creation_input_tokens":500}]}}`))
	var got llmgw.Usage
	tl.Fill(&got)
	want := llmgw.Usage{
		Tokens:       llmgw.Tokens{Input: 20, Output: 90, CacheWrite: 500},
		Iterations:   []llmgw.Iteration{{Type: "message", Tokens: llmgw.Tokens{Input: 20, Output: 90, CacheWrite: 500}}},
		Speed:        llmgw.SpeedStandard,
		InferenceGeo: "us",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
	// A delta without iterations keeps the list.
	tl.Observe("message_delta", []byte(`{"type":"message_delta","delta":{},"usage":{"output_tokens":91}}`))
	if len(tl.Iterations) != 1 || tl.Tokens.Output != 91 {
		t.Errorf("after a delta without iterations: %+v", tl)
	}
}

func TestTally_UsageShapes_Whole(t *testing.T) {
	var tl Tally
	tl.ObserveMessage([]byte(usageWhole))
	var got llmgw.Usage
	tl.Fill(&got)
	want := llmgw.Usage{
		Tokens: llmgw.Tokens{Input: 20, Output: 70, CacheWrite: 500},
		Iterations: []llmgw.Iteration{
			{Type: "message", Tokens: llmgw.Tokens{Input: 20, Output: 70, CacheWrite: 500}},
			{Type: "fallback_message", Model: "claude-opus-5", Tokens: llmgw.Tokens{Input: 5, Output: 6, CacheRead: 7}},
		},
		Speed:        llmgw.SpeedStandard,
		InferenceGeo: "global",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
	if tl.MessageID != "msg_w" {
		t.Errorf("MessageID = %q, want msg_w", tl.MessageID)
	}

	// A body that is not a message changes nothing.
	var none Tally
	none.ObserveMessage([]byte(`not json`))
	if none.Tokens != (llmgw.Tokens{}) || none.Iterations != nil {
		t.Errorf("tally of a non-message = %+v", none)
	}
}

package anthropic

import (
	"fmt"
	"testing"
)

// BenchmarkAccumulator_LongAnswer rebuilds an answer of 8,000 text deltas
// (a 32k-token answer streams about that many): the cost per delta must not
// grow with the text before it.
func BenchmarkAccumulator_LongAnswer(b *testing.B) {
	events := [][2]string{
		{"message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"usage":{"input_tokens":5,"output_tokens":1}}}`},
		{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`},
	}
	for i := range 8000 {
		events = append(events, [2]string{"content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"word%d "}}`, i%10)})
	}
	events = append(events, [2]string{"content_block_stop", `{"type":"content_block_stop","index":0}`},
		[2]string{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":8000}}`},
		[2]string{"message_stop", `{"type":"message_stop"}`})
	b.ReportAllocs()
	for b.Loop() {
		var a Accumulator
		for _, ev := range events {
			if err := a.Add(ev[0], []byte(ev[1])); err != nil {
				b.Fatal(err)
			}
		}
		if n := len(a.Response.Content[0].Text); n != 8000*6 {
			b.Fatalf("text of %d bytes", n)
		}
	}
}

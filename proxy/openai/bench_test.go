package openai

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/sse"
)

// benchEvent is one upstream event, already framed by the SSE reader.
type benchEvent struct {
	name string
	data []byte
}

// benchTranscript is a typical answer: thinking, 60 text deltas, a tool call
// in fragments.
func benchTranscript() []benchEvent {
	b := new(sseBuilder).start(`{"input_tokens":1200,"cache_read_input_tokens":4000,"output_tokens":1}`)
	b.thinking(0, "Working out what the user needs before answering.", "c2lnbmF0dXJl")
	pieces := make([]string, 60)
	for i := range pieces {
		pieces[i] = "a few words "
	}
	b.text(1, pieces...)
	b.tool(2, "toolu_01ABC", "get_weather", "", `{"city":`, ` "Paris",`, ` "unit": "c"}`)
	b.stop("tool_use", `{"output_tokens":180}`)
	var out []benchEvent
	r := sse.NewReader(strings.NewReader(b.String()))
	for {
		ev, err := r.Next()
		if err != nil {
			return out
		}
		out = append(out, benchEvent{ev.Name, bytes.Clone(ev.Data)})
	}
}

// BenchmarkChatEncoder measures translating one streamed answer (about 70
// events) into chat.completion.chunk frames.
func BenchmarkChatEncoder(b *testing.B) {
	events := benchTranscript()
	info := ChatInfo{Model: "gpt-4o", IncludeUsage: true, ToolNames: new(anthropic.ToolNames), Created: testCreated}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		enc := NewChatEncoder(info)
		for _, ev := range events {
			if err := enc.Event(io.Discard, ev.name, ev.data); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(events)), "events/op")
}

// BenchmarkDecodeChat measures converting a mid-sized agent request.
func BenchmarkDecodeChat(b *testing.B) {
	body := []byte(`{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"temperature":0.3,"top_p":0.9,
		"messages":[{"role":"system","content":"You are a coding agent."},{"role":"user","content":"Fix the bug in main.go"},
		{"role":"assistant","content":"Reading it.","tool_calls":[{"id":"call_1","type":"function","function":{"name":"read_file","arguments":"{\"path\":\"main.go\"}"}}]},
		{"role":"tool","tool_call_id":"call_1","content":"package main\n\nfunc main() {}\n"},
		{"role":"user","content":[{"type":"text","text":"And the tests"},{"type":"image_url","image_url":{"url":"https://example.com/screen.png"}}]}],
		"tools":[{"type":"function","function":{"name":"read_file","description":"Read a file","parameters":{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}}},
			{"type":"function","function":{"name":"write_file","parameters":{"type":"object","properties":{"path":{"type":"string"},"content":{"type":"string"}}}}}]}`)
	b.ReportAllocs()
	for range b.N {
		if _, _, err := DecodeChat(body, DecodeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

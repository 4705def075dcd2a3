package openai

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestChatEncoder(t *testing.T) {
	tests := []struct {
		name     string
		info     ChatInfo
		upstream string
		want     []string // the data payloads, in order
	}{
		{
			name:     "text",
			info:     ChatInfo{Model: "gpt-4o"},
			upstream: new(sseBuilder).start("").text(0, "Hel", "lo").stop("end_turn", "").String(),
			want: []string{
				`{"id":"chatcmpl-01TEST","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`,
				`{"id":"chatcmpl-01TEST","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hel"},"logprobs":null,"finish_reason":null}]}`,
				`{"id":"chatcmpl-01TEST","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"lo"},"logprobs":null,"finish_reason":null}]}`,
				`{"id":"chatcmpl-01TEST","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`,
				`[DONE]`,
			},
		},
		{
			name:     "tool call with usage",
			info:     ChatInfo{Model: "m", IncludeUsage: true},
			upstream: new(sseBuilder).start(`{"input_tokens":3,"cache_read_input_tokens":4,"output_tokens":1}`).tool(0, "toolu_1", "f", "", `{"a":1}`).stop("tool_use", `{"output_tokens":9}`).String(),
			want: []string{
				`{"id":"chatcmpl-01TEST","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}`,
				`{"id":"chatcmpl-01TEST","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"toolu_1","type":"function","function":{"name":"f","arguments":""}}]},"logprobs":null,"finish_reason":null}],"usage":null}`,
				`{"id":"chatcmpl-01TEST","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":1}"}}]},"logprobs":null,"finish_reason":null}],"usage":null}`,
				`{"id":"chatcmpl-01TEST","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}],"usage":null}`,
				`{"id":"chatcmpl-01TEST","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":9,"total_tokens":16,"prompt_tokens_details":{"cached_tokens":4,"cache_write_tokens":0}}}`,
				`[DONE]`,
			},
		},
		{
			name:     "max tokens",
			info:     ChatInfo{Model: "m"},
			upstream: new(sseBuilder).start("").text(0, "cut").stop("max_tokens", "").String(),
			want: []string{
				`{"id":"chatcmpl-01TEST","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`,
				`{"id":"chatcmpl-01TEST","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"content":"cut"},"logprobs":null,"finish_reason":null}]}`,
				`{"id":"chatcmpl-01TEST","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}]}`,
				`[DONE]`,
			},
		},
		{
			name: "redacted thinking and unknown events",
			info: ChatInfo{Model: "m"},
			upstream: func() string {
				b := new(sseBuilder).start("")
				b.ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"redacted_thinking","data":"opaque"}}`)
				b.ev("content_block_stop", `{"type":"content_block_stop","index":0}`)
				b.ev("brand_new_event", `{"type":"brand_new_event"}`)
				return b.stop("end_turn", "").String()
			}(),
			want: []string{
				`{"id":"chatcmpl-01TEST","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`,
				`{"id":"chatcmpl-01TEST","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"thinking_blocks":[{"type":"redacted_thinking","data":"opaque"}]},"logprobs":null,"finish_reason":null}]}`,
				`{"id":"chatcmpl-01TEST","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`,
				`[DONE]`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := frames(t, runStream(t, tt.info, tt.upstream))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("frames (-want +got):\n%s", diff)
			}
		})
	}
}

func TestChatEncoder_BadEvent(t *testing.T) {
	enc := NewChatEncoder(ChatInfo{Model: "m"})
	var w strings.Builder
	if err := enc.Event(&w, "content_block_delta", []byte(`{not json`)); err == nil {
		t.Error("Event accepted invalid JSON")
	}
	if err := enc.Event(&w, "content_block_start", []byte(`{"index":0}`)); err == nil {
		t.Error("Event accepted a content_block_start without a block")
	}
	// A delta for a block that never started is dropped, not a failure.
	if err := enc.Event(&w, "content_block_delta", []byte(`{"index":9,"delta":{"type":"text_delta","text":"x"}}`)); err != nil {
		t.Error(err)
	}
}

func TestChatResult(t *testing.T) {
	tests := []struct {
		name     string
		info     ChatInfo
		upstream string
		want     string
	}{
		{
			name:     "text",
			info:     ChatInfo{Model: "gpt-4o", Created: testCreated},
			upstream: new(sseBuilder).start("").text(0, "Hello ", "there").stop("end_turn", `{"output_tokens":2}`).String(),
			want: `{"id":"chatcmpl-01TEST","object":"chat.completion","created":1700000000,"model":"gpt-4o","system_fingerprint":null,
				"choices":[{"index":0,"message":{"role":"assistant","content":"Hello there","refusal":null},"logprobs":null,"finish_reason":"stop"}],
				"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":0,"cache_write_tokens":0}}}`,
		},
		{
			name: "thinking, text around a tool call, tools",
			info: ChatInfo{Model: "m", Created: testCreated},
			upstream: new(sseBuilder).start(`{"input_tokens":1,"cache_creation_input_tokens":20,"output_tokens":1}`).
				thinking(0, "Plan.", "sig==").text(1, "Before. ").tool(2, "toolu_1", "f", `{"a":`, ` [1, 2]}`).text(3, "After.").tool(4, "toolu_2", "g").
				stop("tool_use", `{"output_tokens":30}`).String(),
			want: `{"id":"chatcmpl-01TEST","object":"chat.completion","created":1700000000,"model":"m","system_fingerprint":null,
				"choices":[{"index":0,"message":{"role":"assistant","content":"Before. After.","refusal":null,
					"tool_calls":[{"id":"toolu_1","type":"function","function":{"name":"f","arguments":"{\"a\":[1,2]}"}},
						{"id":"toolu_2","type":"function","function":{"name":"g","arguments":"{}"}}],
					"reasoning_content":"Plan.","thinking_blocks":[{"type":"thinking","thinking":"Plan.","signature":"sig=="}]},
					"logprobs":null,"finish_reason":"tool_calls"}],
				"usage":{"prompt_tokens":21,"completion_tokens":30,"total_tokens":51,"prompt_tokens_details":{"cached_tokens":0,"cache_write_tokens":20}}}`,
		},
		{
			name:     "no content at all",
			info:     ChatInfo{Model: "m", Created: testCreated},
			upstream: new(sseBuilder).start("").stop("max_tokens", `{"output_tokens":0}`).String(),
			want: `{"id":"chatcmpl-01TEST","object":"chat.completion","created":1700000000,"model":"m","system_fingerprint":null,
				"choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null},"logprobs":null,"finish_reason":"length"}],
				"usage":{"prompt_tokens":10,"completion_tokens":0,"total_tokens":10,"prompt_tokens_details":{"cached_tokens":0,"cache_write_tokens":0}}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := ChatResult(accumulate(t, tt.upstream), tt.info)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(asJSON(t, tt.want), asJSON(t, out)); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFinishReason(t *testing.T) {
	for stop, want := range map[string]string{
		"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "model_context_window_exceeded": "length",
		"tool_use": "tool_calls", "refusal": "content_filter", "sensitive": "content_filter", "pause_turn": "stop", "": "stop", "new_reason": "stop",
	} {
		if got := finishReason(stop, 1); got != want {
			t.Errorf("finishReason(%q) = %q, want %q", stop, got, want)
		}
	}
}

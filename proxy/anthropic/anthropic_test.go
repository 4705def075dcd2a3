package anthropic

import (
	"testing"

	"github.com/llmgw/llmgw"
)

func TestTally_LastValueWins(t *testing.T) {
	var tl Tally
	tl.Observe("message_start", []byte(`{"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":10,"cache_read_input_tokens":5,"cache_creation_input_tokens":7,"cache_creation":{"ephemeral_5m_input_tokens":3,"ephemeral_1h_input_tokens":4},"output_tokens":1}}}`))
	tl.Observe("content_block_delta", []byte(`not even json`))
	tl.Observe("message_delta", []byte(`{"type":"message_delta","usage":{"output_tokens":20}}`))
	tl.Observe("message_delta", []byte(`{"type":"message_delta","usage":{"output_tokens":42,"input_tokens":11}}`))
	tl.Observe("message_stop", []byte(`{"type":"message_stop"}`))
	want := llmgw.Tokens{Input: 11, Output: 42, CacheRead: 5, CacheWrite: 7, CacheWrite5m: 3, CacheWrite1h: 4}
	if tl.Tokens != want {
		t.Errorf("Tokens = %+v, want %+v", tl.Tokens, want)
	}
	if !tl.Stopped || tl.MessageID != "msg_1" || tl.Err != nil {
		t.Errorf("Stopped=%v MessageID=%q Err=%v", tl.Stopped, tl.MessageID, tl.Err)
	}
}

func TestTally_Error(t *testing.T) {
	var tl Tally
	tl.Observe("error", []byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
	if tl.Err == nil || tl.Err.Type != "overloaded_error" {
		t.Fatalf("Err = %+v", tl.Err)
	}
}

func TestParseError(t *testing.T) {
	d := ParseError(MarshalError("rate_limit_error", "slow down", "req_1"))
	if d.Type != "rate_limit_error" || d.Message != "slow down" {
		t.Errorf("ParseError = %+v", d)
	}
	if d := ParseError([]byte("<html>")); d.Type != "" {
		t.Errorf("ParseError(html) = %+v, want zero", d)
	}
}

func TestTally_ThinkingTokens(t *testing.T) {
	var tl Tally
	tl.Observe("message_start", []byte(`{"type":"message_start","message":{"id":"m","usage":{"input_tokens":3,"output_tokens":1}}}`))
	tl.Observe("message_delta", []byte(`{"type":"message_delta","usage":{"output_tokens":50,"output_tokens_details":{"thinking_tokens":30}}}`))
	tl.Observe("message_delta", []byte(`{"type":"message_delta","usage":{"output_tokens":60}}`))
	if tl.Thinking != 30 || tl.Tokens.Output != 60 {
		t.Errorf("thinking %d output %d, want 30 (last reported) and 60", tl.Thinking, tl.Tokens.Output)
	}
}

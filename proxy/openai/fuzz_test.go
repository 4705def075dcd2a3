package openai

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/llmgw/llmgw/proxy/anthropic"
)

// FuzzDecodeChat checks that DecodeChat never panics, that every error is a
// *RequestError, and that every request it accepts keeps Anthropic's rules.
func FuzzDecodeChat(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `[]`, `null`, `{"model":"m"}`,
		`{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","messages":[{"role":"system","content":"s"}],"n":2}`,
		`{"model":"claude-sonnet-4-5","reasoning_effort":"high","max_tokens":10,"temperature":3,"top_p":0.1,"stop":["\n","x"],
			"tools":[{"type":"function","function":{"name":"a.b","parameters":{"anyOf":[{"properties":{"x":{"type":"STRING"}}}]}}}],
			"tool_choice":"required","parallel_tool_calls":false,
			"messages":[{"role":"user","content":[{"type":"text","text":""},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA"}}]},
				{"role":"assistant","content":null,"tool_calls":[{"id":"x:1","type":"function","function":{"name":"a.b","arguments":"[1]"}}]},
				{"role":"tool","tool_call_id":"x:1","content":[{"type":"text","text":"r"}]},{"role":"tool","content":"orphan"},
				{"role":"assistant","content":"prefill"}]}`,
		`{"model":"m","messages":[{"role":"assistant","thinking_blocks":[{"type":"thinking","thinking":"t","signature":"s"}],"tool_calls":[{"function":{"name":"f"}}]},{"role":"function","name":"f","content":"x"}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:text/plain;base64,!!"}}]}]}`,
		`{"model":"m","response_format":{"type":"json_schema","json_schema":{"schema":{"type":"object"}}},"messages":[{"role":"developer","content":[{"type":"text","text":"d","cache_control":{"type":"ephemeral"}}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"},{"role":"tool","tool_call_id":"x","content":""},{"role":"assistant","content":"b"}]}`,
		`{"model":"m","messages":[{"role":"user","content":"go"},{"role":"assistant","tool_calls":[{"id":"a","function":{"name":"f"}}]},{"role":"tool","tool_call_id":"a","content":"1"},{"role":"assistant","tool_calls":[{"id":"a","function":{"name":"f"}},{"id":"a_2","function":{"name":"f"}}]},{"role":"tool","tool_call_id":"a","content":"2"}]}`,
		`{"model":"m","thinking":{"type":"enabled","budget_tokens":9223372036854775807},"messages":[{"role":"user","content":"x"}]}`,
		`{"model":"m","tool_choice":{"type":"allowed_tools","allowed_tools":{"tools":[{"type":"function","function":{"name":"a"}}]}},"tools":[{"type":"function","function":{"name":"a"}}],"messages":[{"role":"user","content":"x"}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, _, err := DecodeChat(body, DecodeOptions{Aliases: map[string]string{"gpt-4o": "claude-sonnet-4-5"}})
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %T %v is not a *RequestError", err, err)
			}
			return
		}
		checkRequest(t, req)
	})
}

// checkRequest fails if req breaks a rule Anthropic enforces.
func checkRequest(t *testing.T, req *anthropic.Request) {
	t.Helper()
	if _, err := json.Marshal(req); err != nil {
		t.Fatalf("request does not marshal: %v", err)
	}
	if req.MaxTokens < 1 {
		t.Fatalf("max_tokens = %d", req.MaxTokens)
	}
	if th := req.Thinking; th != nil && th.Type == "enabled" && (th.BudgetTokens < 1024 || th.BudgetTokens >= req.MaxTokens) {
		t.Fatalf("thinking budget %d with max_tokens %d", th.BudgetTokens, req.MaxTokens)
	}
	if req.Temperature != nil && (*req.Temperature < 0 || *req.Temperature > 1) {
		t.Fatalf("temperature %v", *req.Temperature)
	}
	if req.Temperature != nil && req.TopP != nil {
		t.Fatal("temperature and top_p together")
	}
	if req.ToolChoice != nil && len(req.Tools) == 0 {
		t.Fatal("tool_choice without tools")
	}
	if n := req.Breakpoints(); n > anthropic.MaxBreakpoints {
		t.Fatalf("%d cache breakpoints", n)
	}
	for _, s := range req.StopSequences {
		if strings.TrimSpace(s) == "" {
			t.Fatalf("blank stop sequence %q", s)
		}
	}
	for _, b := range req.System {
		if b.Type != "text" || b.Text == "" {
			t.Fatalf("system block %+v", b)
		}
	}
	if len(req.Messages) == 0 || req.Messages[0].Role != "user" {
		t.Fatalf("messages must start with a user turn: %+v", req.Messages)
	}
	ids := map[string]bool{}
	for i, m := range req.Messages {
		for _, b := range m.Content {
			if b.Type == "tool_use" && m.Role == "assistant" {
				if ids[b.ID] && !dupInTurn(m.Content, b.ID) {
					t.Fatalf("tool_use id %s reused across turns", b.ID)
				}
				ids[b.ID] = true
			}
		}
		if i > 0 && m.Role == req.Messages[i-1].Role {
			t.Fatalf("messages %d and %d share the role %s", i-1, i, m.Role)
		}
		if len(m.Content) == 0 {
			t.Fatalf("message %d is empty", i)
		}
		var calls []string
		if i > 0 {
			for _, b := range req.Messages[i-1].Content {
				if b.Type == "tool_use" {
					calls = append(calls, b.ID)
				}
			}
		}
		results := true
		for j, b := range m.Content {
			if (b.Type == "thinking" || b.Type == "redacted_thinking") && b.CacheControl != nil {
				t.Fatalf("message %d block %d: cache_control on %s", i, j, b.Type)
			}
			switch b.Type {
			case "text":
				if b.Text == "" {
					t.Fatalf("message %d block %d: empty text", i, j)
				}
			case "tool_use":
				var in map[string]any
				if json.Unmarshal(b.Input, &in) != nil || in == nil {
					t.Fatalf("message %d block %d: input %s is not an object", i, j, b.Input)
				}
				if b.ID == "" || strings.Trim(b.ID, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
					t.Fatalf("message %d block %d: tool_use id %q", i, j, b.ID)
				}
				if b.Name == "" || len(b.Name) > 128 {
					t.Fatalf("message %d block %d: tool name %q", i, j, b.Name)
				}
			case "tool_result":
				if !results {
					t.Fatalf("message %d block %d: tool_result after other content", i, j)
				}
				if !slices.Contains(calls, b.ToolUseID) {
					t.Fatalf("message %d block %d: tool_result for %q answers no call of %v", i, j, b.ToolUseID, calls)
				}
				continue
			}
			results = false
		}
		if m.Role == "user" && i > 0 {
			for _, id := range calls {
				found := false
				for _, b := range m.Content {
					found = found || (b.Type == "tool_result" && b.ToolUseID == id)
				}
				if !found {
					t.Fatalf("message %d: call %s has no result", i, id)
				}
			}
		}
	}
	for _, tl := range req.Tools {
		var s map[string]any
		if json.Unmarshal(tl.InputSchema, &s) != nil || s["type"] != "object" {
			t.Fatalf("tool %s schema %s", tl.Name, tl.InputSchema)
		}
	}
}

// TestDecodeChat_Invariants runs the fuzz checks over the table tests'
// requests, so they hold without -fuzz too.
func TestDecodeChat_Invariants(t *testing.T) {
	for _, body := range []string{
		`{"model":"m","messages":[{"role":"user","content":"go"},
			{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}},{"id":"c2","type":"function","function":{"name":"f","arguments":"{}"}}]},
			{"role":"tool","tool_call_id":"c2","content":"two"},{"role":"tool","tool_call_id":"gone","content":"x"},{"role":"user","content":"?"}]}`,
		`{"model":"m","messages":[{"role":"tool","tool_call_id":"x","content":"early"},{"role":"assistant","content":"a"}]}`,
	} {
		req, _ := decode(t, body)
		checkRequest(t, req)
	}
}

// dupInTurn reports whether id is used by more than one tool_use of a turn
// (a client error that is passed on, not repaired).
func dupInTurn(blocks []anthropic.ContentBlock, id string) bool {
	n := 0
	for _, b := range blocks {
		if b.Type == "tool_use" && b.ID == id {
			n++
		}
	}
	return n > 1
}

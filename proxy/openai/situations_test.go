package openai

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// chatSituations are the situations of the Anthropic-side repair table
// (../anthropic/testdata/normalize.json) in Chat Completions' shape. Each
// must decode to the outcome the table gives, as in every other dialect.
var chatSituations = map[string]string{
	"blank text is dropped": `{"model":"claude-sonnet-4-5","messages":[{"role":"system","content":"S"},{"role":"system","content":"  "},
		{"role":"user","content":[{"type":"text","text":" "},{"type":"text","text":"hi"}]},{"role":"assistant","content":""},{"role":"user","content":"again"}]}`,
	"an empty conversation gets a placeholder": `{"model":"claude-sonnet-4-5","messages":[{"role":"system","content":"S"},{"role":"user","content":""}]}`,
	"the conversation starts with the user":    `{"model":"claude-sonnet-4-5","messages":[{"role":"assistant","content":"Hello"},{"role":"user","content":"hi"}]}`,
	"consecutive turns of one role are merged": `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"a"},{"role":"user","content":"b"},
		{"role":"assistant","content":"x"},{"role":"assistant","content":"y"},{"role":"user","content":"z"}]}`,
	"tool results come first, in call order": `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"go"},
		{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}},{"id":"c2","type":"function","function":{"name":"f","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"c2","content":"second"},{"role":"user","content":"note"},{"role":"tool","tool_call_id":"c1","content":"first"}]}`,
	"a call answered twice keeps the last answer": `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"go"},
		{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"c1","content":"old"},{"role":"tool","tool_call_id":"c1","content":"new"}]}`,
	"a call without a result is answered as interrupted": `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"go"},
		{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}},{"id":"c2","type":"function","function":{"name":"f","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"c2","content":"two"},{"role":"user","content":"what now?"}]}`,
	"an orphan result becomes text": `{"model":"claude-sonnet-4-5","messages":[{"role":"tool","tool_call_id":"gone","content":"from a truncated history"},{"role":"user","content":"hi"}]}`,
	"an orphan result keeps its images": `{"model":"claude-sonnet-4-5","messages":[{"role":"tool","tool_call_id":"gone","content":[{"type":"text","text":"see"},
		{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]},{"role":"user","content":"hi"}]}`,
	"a final turn with tool calls gets interrupted results": `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"go"},
		{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]}]}`,
	"a final assistant turn (prefill) is dropped": `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Write JSON"},{"role":"assistant","content":"{"}]}`,
	"tool call ids are made valid and unique": `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"go"},
		{"role":"assistant","tool_calls":[{"id":"functions.f:0","type":"function","function":{"name":"f","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"functions.f:0","content":"one"},
		{"role":"assistant","tool_calls":[{"id":"functions.f:0","type":"function","function":{"name":"f","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"functions.f:0","content":"two"}]}`,
	"results without ids pair by tool name": `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"go"},
		{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},{"type":"function","function":{"name":"time","arguments":"{}"}}]},
		{"role":"function","name":"time","content":"noon"},{"role":"function","name":"weather","content":"sunny"}]}`,
	"results without ids or names pair in call order": `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"go"},
		{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}},{"type":"function","function":{"name":"g","arguments":"{}"}}]},
		{"role":"tool","content":"a"},{"role":"tool","content":"b"}]}`,
	"a tool call's input is always an object": `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"go"},
		{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}},
			{"id":"b","type":"function","function":{"name":"f","arguments":"[1]"}},{"id":"c","type":"function","function":{"name":"f","arguments":""}}]},
		{"role":"tool","tool_call_id":"a","content":"1"},{"role":"tool","tool_call_id":"b","content":"2"},{"role":"tool","tool_call_id":"c","content":"3"}]}`,
	"unsigned thinking is dropped": `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"go"},
		{"role":"assistant","content":"answer","reasoning_content":"musing","thinking_blocks":[{"type":"thinking","thinking":"musing"}]},{"role":"user","content":"more"}]}`,
	"a signed tool loop keeps thinking on, thinking first": `{"model":"claude-sonnet-4-5","reasoning_effort":"low","messages":[{"role":"user","content":"go"},
		{"role":"assistant","content":"Checking."},
		{"role":"assistant","thinking_blocks":[{"type":"thinking","thinking":"plan: call f","signature":"c2lnbmF0dXJl+/="}],
			"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"c1","content":"ok"}]}`,
	"an unsigned tool loop turns thinking off": `{"model":"claude-sonnet-4-5","reasoning_effort":"low","temperature":0.2,"messages":[{"role":"user","content":"go"},
		{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"ok"}]}`,
	"forced tool use turns thinking off": `{"model":"claude-sonnet-4-5","reasoning_effort":"low","tools":[{"type":"function","function":{"name":"f"}}],
		"tool_choice":{"type":"function","function":{"name":"f"}},"messages":[{"role":"user","content":"x"}]}`,
	"a model that takes no budget thinks adaptively, at the asked effort": `{"model":"claude-opus-4-7","reasoning_effort":"low","messages":[{"role":"user","content":"x"}]}`,
	"a model that always thinks gets no thinking field when it is turned off": `{"model":"claude-fable-5-1","reasoning_effort":"medium","temperature":0.5,"top_k":5,
		"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"f"}},"messages":[{"role":"user","content":"x"}]}`,
	"a model without extended thinking gets none": `{"model":"claude-3-5-haiku-20241022","reasoning_effort":"medium","temperature":0.5,"messages":[{"role":"user","content":"x"}]}`,
	"tool_choice without tools is dropped":        `{"model":"claude-sonnet-4-5","tool_choice":"required","messages":[{"role":"user","content":"x"}]}`,
	"tool_choice none carries no parallel flag": `{"model":"claude-sonnet-4-5","tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none",
		"parallel_tool_calls":false,"messages":[{"role":"user","content":"x"}]}`,
	"a second tool of the same name is dropped": `{"model":"claude-sonnet-4-5","tools":[{"type":"function","function":{"name":"f","description":"one"}},
		{"type":"function","function":{"name":"f","description":"two"}}],"messages":[{"role":"user","content":"x"}]}`,
	"sampling within Anthropic's ranges":         `{"model":"claude-sonnet-4-5","temperature":1.5,"top_p":0.9,"top_k":0,"messages":[{"role":"user","content":"x"}]}`,
	"thinking drops the sampling it cannot take": `{"model":"claude-sonnet-4-5","reasoning_effort":"low","temperature":0.5,"top_p":0.97,"top_k":5,"messages":[{"role":"user","content":"x"}]}`,
	"blank stop sequences are dropped":           `{"model":"claude-sonnet-4-5","stop":["\n","","END"],"messages":[{"role":"user","content":"x"}]}`,
	"max_tokens defaults to the model's":         `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"x"}]}`,
	"max_tokens within the model's cap":          `{"model":"claude-3-5-haiku-20241022","max_tokens":100000,"messages":[{"role":"user","content":"x"}]}`,
	"at most four cache marks, without TTLs": `{"model":"claude-sonnet-4-5","messages":[
		{"role":"user","content":[{"type":"text","text":"a","cache_control":{"type":"ephemeral","ttl":"1h"}}]},{"role":"assistant","content":"x"},
		{"role":"user","content":[{"type":"text","text":"b","cache_control":{"type":"ephemeral","ttl":"1h"}}]},{"role":"assistant","content":"y"},
		{"role":"user","content":[{"type":"text","text":"c","cache_control":{"type":"ephemeral"}}]},{"role":"assistant","content":"z"},
		{"role":"user","content":[{"type":"text","text":"d","cache_control":{"type":"ephemeral"}}]},{"role":"assistant","content":"w"},
		{"role":"user","content":[{"type":"text","text":"e","cache_control":{"type":"ephemeral","ttl":"5m"}}]}]}`,
}

// TestDecodeChat_Situations decodes each situation of the shared table in
// Chat's shape and checks the outcome the table gives.
func TestDecodeChat_Situations(t *testing.T) {
	raw, err := os.ReadFile("../anthropic/testdata/normalize.json")
	if err != nil {
		t.Fatal(err)
	}
	var table []struct {
		Name     string
		Thinking string
		Want     map[string]any
	}
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	for _, s := range table {
		t.Run(s.Name, func(t *testing.T) {
			body, ok := chatSituations[s.Name]
			if !ok {
				t.Fatal("no Chat form of this situation")
			}
			req, _ := decode(t, body)
			got := asJSON(t, req).(map[string]any)
			for field, want := range s.Want {
				if diff := cmp.Diff(want, got[field]); diff != "" {
					t.Errorf("%s (-want +got):\n%s", field, diff)
				}
			}
			if on := req.Thinking != nil; s.Thinking != "" && on != (s.Thinking == "on") {
				t.Errorf("thinking = %+v, want %s", req.Thinking, s.Thinking)
			}
		})
	}
}

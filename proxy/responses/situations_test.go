package responses

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// responsesSituations are the situations of the Anthropic-side repair table
// (../anthropic/testdata/normalize.json) in the Responses shape. Each must
// decode to the outcome the table gives, as in every other dialect.
func responsesSituations() map[string]string {
	unsigned := sealThinking(sealedThinking{Type: "thinking", Thinking: "musing"})
	signed := sealThinking(sealedThinking{Type: "thinking", Thinking: "plan: call f", Signature: "c2lnbmF0dXJl+/="})
	return map[string]string{
		"blank text is dropped": `{"model":"claude-sonnet-4-5","instructions":"S","input":[{"role":"developer","content":"  "},
			{"role":"user","content":[{"type":"input_text","text":" "},{"type":"input_text","text":"hi"}]},
			{"role":"assistant","content":[{"type":"output_text","text":""}]},{"role":"user","content":"again"}]}`,
		"an empty conversation gets a placeholder": `{"model":"claude-sonnet-4-5","instructions":"S","input":[{"role":"user","content":""}]}`,
		"the conversation starts with the user":    `{"model":"claude-sonnet-4-5","input":[{"role":"assistant","content":"Hello"},{"role":"user","content":"hi"}]}`,
		"consecutive turns of one role are merged": `{"model":"claude-sonnet-4-5","input":[{"role":"user","content":"a"},{"role":"user","content":"b"},
			{"role":"assistant","content":"x"},{"role":"assistant","content":"y"},{"role":"user","content":"z"}]}`,
		"tool results come first, in call order": `{"model":"claude-sonnet-4-5","input":[{"role":"user","content":"go"},
			{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},{"type":"function_call","call_id":"c2","name":"f","arguments":"{}"},
			{"type":"function_call_output","call_id":"c2","output":"second"},{"role":"user","content":"note"},
			{"type":"function_call_output","call_id":"c1","output":"first"}]}`,
		"a call answered twice keeps the last answer": `{"model":"claude-sonnet-4-5","input":[{"role":"user","content":"go"},
			{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},
			{"type":"function_call_output","call_id":"c1","output":"old"},{"type":"function_call_output","call_id":"c1","output":"new"}]}`,
		"a call without a result is answered as interrupted": `{"model":"claude-sonnet-4-5","input":[{"role":"user","content":"go"},
			{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},{"type":"function_call","call_id":"c2","name":"f","arguments":"{}"},
			{"type":"function_call_output","call_id":"c2","output":"two"},{"role":"user","content":"what now?"}]}`,
		"an orphan result becomes text": `{"model":"claude-sonnet-4-5","input":[{"type":"function_call_output","call_id":"gone","output":"from a truncated history"},
			{"role":"user","content":"hi"}]}`,
		"an orphan result keeps its images": `{"model":"claude-sonnet-4-5","input":[{"type":"function_call_output","call_id":"gone",
			"output":[{"type":"input_text","text":"see"},{"type":"input_image","image_url":"data:image/png;base64,iVBORw0KGgo="}]},{"role":"user","content":"hi"}]}`,
		"a final turn with tool calls gets interrupted results": `{"model":"claude-sonnet-4-5","input":[{"role":"user","content":"go"},
			{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"}]}`,
		"a final assistant turn (prefill) is dropped": `{"model":"claude-sonnet-4-5","input":[{"role":"user","content":"Write JSON"},{"role":"assistant","content":"{"}]}`,
		"tool call ids are made valid and unique": `{"model":"claude-sonnet-4-5","input":[{"role":"user","content":"go"},
			{"type":"function_call","call_id":"functions.f:0","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"functions.f:0","output":"one"},
			{"type":"function_call","call_id":"functions.f:0","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"functions.f:0","output":"two"}]}`,
		"a tool call's input is always an object": `{"model":"claude-sonnet-4-5","input":[{"role":"user","content":"go"},
			{"type":"function_call","call_id":"a","name":"f","arguments":"{\"x\":1}"},{"type":"function_call","call_id":"b","name":"f","arguments":"[1]"},
			{"type":"function_call","call_id":"c","name":"f","arguments":""},
			{"type":"function_call_output","call_id":"a","output":"1"},{"type":"function_call_output","call_id":"b","output":"2"},
			{"type":"function_call_output","call_id":"c","output":"3"}]}`,
		"unsigned thinking is dropped": `{"model":"claude-sonnet-4-5","input":[{"role":"user","content":"go"},
			{"type":"reasoning","summary":[],"encrypted_content":"` + unsigned + `"},{"role":"assistant","content":"answer"},{"role":"user","content":"more"}]}`,
		"a signed tool loop keeps thinking on, thinking first": `{"model":"claude-sonnet-4-5","reasoning":{"effort":"low"},"input":[{"role":"user","content":"go"},
			{"role":"assistant","content":"Checking."},{"type":"reasoning","summary":[],"encrypted_content":"` + signed + `"},
			{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c1","output":"ok"}]}`,
		"an unsigned tool loop turns thinking off": `{"model":"claude-sonnet-4-5","reasoning":{"effort":"low"},"temperature":0.2,"input":[{"role":"user","content":"go"},
			{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c1","output":"ok"}]}`,
		"forced tool use turns thinking off": `{"model":"claude-sonnet-4-5","reasoning":{"effort":"low"},"tools":[{"type":"function","name":"f"}],
			"tool_choice":{"type":"function","name":"f"},"input":"x"}`,
		"a model that takes no budget thinks adaptively, at the asked effort": `{"model":"claude-opus-4-7","reasoning":{"effort":"low"},"input":"x"}`,
		"a model that always thinks gets no thinking field when it is turned off": `{"model":"claude-fable-5-1","reasoning":{"effort":"medium"},"temperature":0.5,
			"tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"function","name":"f"},"input":"x"}`,
		"a model without extended thinking gets none": `{"model":"claude-3-5-haiku-20241022","reasoning":{"effort":"medium"},"temperature":0.5,"input":"x"}`,
		"tool_choice without tools is dropped":        `{"model":"claude-sonnet-4-5","tool_choice":"required","input":"x"}`,
		"tool_choice none carries no parallel flag":   `{"model":"claude-sonnet-4-5","tools":[{"type":"function","name":"f"}],"tool_choice":"none","parallel_tool_calls":false,"input":"x"}`,
		"a second tool of the same name is dropped": `{"model":"claude-sonnet-4-5","tools":[{"type":"function","name":"f","description":"one"},
			{"type":"function","name":"f","description":"two"}],"input":"x"}`,
		"sampling within Anthropic's ranges":         `{"model":"claude-sonnet-4-5","temperature":1.5,"top_p":0.9,"input":"x"}`,
		"thinking drops the sampling it cannot take": `{"model":"claude-sonnet-4-5","reasoning":{"effort":"low"},"temperature":0.5,"top_p":0.97,"input":"x"}`,
		"blank stop sequences are dropped":           `{"model":"claude-sonnet-4-5","stop":["\n","","END"],"input":"x"}`,
		"max_tokens defaults to the model's":         `{"model":"claude-sonnet-4-5","input":"x"}`,
		"max_tokens within the model's cap":          `{"model":"claude-3-5-haiku-20241022","max_output_tokens":100000,"input":"x"}`,
	}
}

// notInResponses are the situations a Responses request cannot be in, and
// why.
var notInResponses = map[string]string{
	"results without ids pair by tool name":           "function_call_output requires a call_id",
	"results without ids or names pair in call order": "function_call_output requires a call_id",
	"at most four cache marks, without TTLs":          "Responses clients cannot send cache marks",
}

// TestDecode_Situations decodes each situation of the shared table in the
// Responses shape and checks the outcome the table gives.
func TestDecode_Situations(t *testing.T) {
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
	bodies := responsesSituations()
	for _, s := range table {
		t.Run(s.Name, func(t *testing.T) {
			body, ok := bodies[s.Name]
			if !ok {
				if why, ok := notInResponses[s.Name]; ok {
					t.Skip(why)
				}
				t.Fatal("no Responses form of this situation")
			}
			req, _ := decode(t, body)
			mustValidate(t, req)
			var got map[string]any
			if b, err := json.Marshal(req); err != nil || json.Unmarshal(b, &got) != nil {
				t.Fatalf("request does not marshal: %v", err)
			}
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

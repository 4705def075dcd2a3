package gemini

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// geminiSituations are the situations of the Anthropic-side repair table
// (../anthropic/testdata/normalize.json) as generateContent requests for
// claude-sonnet-4-5, or the model geminiModels names. Each must decode to
// the outcome the table gives, as in every other dialect.
func geminiSituations() map[string]string {
	unsigned := encodeCarrier([]carried{{Type: "thinking", Thinking: "musing"}})
	signed := encodeCarrier([]carried{{Type: "thinking", Thinking: "plan: call f", Signature: "c2lnbmF0dXJl+/="}})
	return map[string]string{
		"blank text is dropped": `{"systemInstruction":{"parts":[{"text":"S"},{"text":"  "}]},"contents":[
			{"role":"user","parts":[{"text":" "},{"text":"hi"}]},{"role":"model","parts":[{"text":""}]},{"role":"user","parts":[{"text":"again"}]}]}`,
		"an empty conversation gets a placeholder": `{"systemInstruction":{"parts":[{"text":"S"}]},"contents":[{"role":"user","parts":[{"text":""}]}]}`,
		"the conversation starts with the user":    `{"contents":[{"role":"model","parts":[{"text":"Hello"}]},{"role":"user","parts":[{"text":"hi"}]}]}`,
		"consecutive turns of one role are merged": `{"contents":[{"role":"user","parts":[{"text":"a"}]},{"role":"user","parts":[{"text":"b"}]},
			{"role":"model","parts":[{"text":"x"}]},{"role":"user","parts":[{"text":""}]},{"role":"model","parts":[{"text":"y"}]},
			{"role":"user","parts":[{"text":"z"}]}]}`,
		"tool results come first, in call order": `{"contents":[{"role":"user","parts":[{"text":"go"}]},
			{"role":"model","parts":[{"functionCall":{"id":"c1","name":"f","args":{}}},{"functionCall":{"id":"c2","name":"f","args":{}}}]},
			{"role":"function","parts":[{"functionResponse":{"id":"c2","name":"f","response":{"result":"second"}}}]},
			{"role":"user","parts":[{"text":"note"}]},
			{"role":"function","parts":[{"functionResponse":{"id":"c1","name":"f","response":{"result":"first"}}}]}]}`,
		"a call answered twice keeps the last answer": `{"contents":[{"role":"user","parts":[{"text":"go"}]},
			{"role":"model","parts":[{"functionCall":{"id":"c1","name":"f","args":{}}}]},
			{"role":"user","parts":[{"functionResponse":{"id":"c1","name":"f","response":{"result":"old"}}},{"functionResponse":{"id":"c1","name":"f","response":{"result":"new"}}}]}]}`,
		"a call without a result is answered as interrupted": `{"contents":[{"role":"user","parts":[{"text":"go"}]},
			{"role":"model","parts":[{"functionCall":{"id":"c1","name":"f","args":{}}},{"functionCall":{"id":"c2","name":"f","args":{}}}]},
			{"role":"user","parts":[{"functionResponse":{"id":"c2","name":"f","response":{"result":"two"}}},{"text":"what now?"}]}]}`,
		"an orphan result becomes text": `{"contents":[{"role":"user","parts":[{"functionResponse":{"id":"gone","name":"lookup","response":{"result":"from a truncated history"}}}]},
			{"role":"user","parts":[{"text":"hi"}]}]}`,
		"an orphan result keeps its images": `{"contents":[{"role":"user","parts":[{"functionResponse":{"id":"gone","name":"shot","response":{"output":"see"},
			"parts":[{"inlineData":{"mimeType":"image/png","data":"iVBORw0KGgo="}}]}},{"text":"hi"}]}]}`,
		"a final turn with tool calls gets interrupted results": `{"contents":[{"role":"user","parts":[{"text":"go"}]},
			{"role":"model","parts":[{"functionCall":{"id":"c1","name":"f","args":{}}}]}]}`,
		"a final assistant turn (prefill) is dropped": `{"contents":[{"role":"user","parts":[{"text":"Write JSON"}]},{"role":"model","parts":[{"text":"{"}]}]}`,
		"tool call ids are made valid and unique": `{"contents":[{"role":"user","parts":[{"text":"go"}]},
			{"role":"model","parts":[{"functionCall":{"id":"functions.f:0","name":"f","args":{}}}]},
			{"role":"user","parts":[{"functionResponse":{"id":"functions.f:0","name":"f","response":{"result":"one"}}}]},
			{"role":"model","parts":[{"functionCall":{"id":"functions.f:0","name":"f","args":{}}}]},
			{"role":"user","parts":[{"functionResponse":{"id":"functions.f:0","name":"f","response":{"result":"two"}}}]}]}`,
		"results without ids pair by tool name": `{"contents":[{"role":"user","parts":[{"text":"go"}]},
			{"role":"model","parts":[{"functionCall":{"name":"weather","args":{"city":"Paris"}}},{"functionCall":{"name":"time","args":{}}}]},
			{"role":"user","parts":[{"functionResponse":{"name":"time","response":{"result":"noon"}}},{"functionResponse":{"name":"weather","response":{"result":"sunny"}}}]}]}`,
		"results without ids or names pair in call order": `{"contents":[{"role":"user","parts":[{"text":"go"}]},
			{"role":"model","parts":[{"functionCall":{"name":"f","args":{}}},{"functionCall":{"name":"g","args":{}}}]},
			{"role":"user","parts":[{"functionResponse":{"response":{"result":"a"}}},{"functionResponse":{"response":{"result":"b"}}}]}]}`,
		"a tool call's input is always an object": `{"contents":[{"role":"user","parts":[{"text":"go"}]},
			{"role":"model","parts":[{"functionCall":{"id":"a","name":"f","args":"{\"x\":1}"}},{"functionCall":{"id":"b","name":"f","args":[1]}},{"functionCall":{"id":"c","name":"f","args":""}}]},
			{"role":"user","parts":[{"functionResponse":{"id":"a","name":"f","response":{"result":"1"}}},{"functionResponse":{"id":"b","name":"f","response":{"result":"2"}}},
				{"functionResponse":{"id":"c","name":"f","response":{"result":"3"}}}]}]}`,
		"unsigned thinking is dropped": `{"contents":[{"role":"user","parts":[{"text":"go"}]},
			{"role":"model","parts":[{"text":"answer","thoughtSignature":"` + unsigned + `"}]},{"role":"user","parts":[{"text":"more"}]}]}`,
		"a signed tool loop keeps thinking on, thinking first": `{"generationConfig":{"thinkingConfig":{"thinkingBudget":2048}},"contents":[{"role":"user","parts":[{"text":"go"}]},
			{"role":"model","parts":[{"text":"Checking."},{"functionCall":{"id":"c1","name":"f","args":{}},"thoughtSignature":"` + signed + `"}]},
			{"role":"user","parts":[{"functionResponse":{"id":"c1","name":"f","response":{"result":"ok"}}}]}]}`,
		"an unsigned tool loop turns thinking off": `{"generationConfig":{"temperature":0.2,"thinkingConfig":{"thinkingBudget":2048}},"contents":[{"role":"user","parts":[{"text":"go"}]},
			{"role":"model","parts":[{"functionCall":{"id":"c1","name":"f","args":{}}}]},
			{"role":"user","parts":[{"functionResponse":{"id":"c1","name":"f","response":{"result":"ok"}}}]}]}`,
		"forced tool use turns thinking off": `{"generationConfig":{"thinkingConfig":{"thinkingBudget":2048}},"tools":[{"functionDeclarations":[{"name":"f"}]}],
			"toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["f"]}},"contents":[{"parts":[{"text":"x"}]}]}`,
		"a model that takes no budget thinks adaptively, at the asked effort": `{"generationConfig":{"thinkingConfig":{"thinkingLevel":"LOW"}},"contents":[{"parts":[{"text":"x"}]}]}`,
		"a model that always thinks gets no thinking field when it is turned off": `{"generationConfig":{"temperature":0.5,"topK":5,"thinkingConfig":{"thinkingBudget":2048}},
			"tools":[{"functionDeclarations":[{"name":"f"}]}],"toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["f"]}},"contents":[{"parts":[{"text":"x"}]}]}`,
		"a model without extended thinking gets none": `{"generationConfig":{"temperature":0.5,"thinkingConfig":{"thinkingBudget":2048}},"contents":[{"parts":[{"text":"x"}]}]}`,
		"tool_choice without tools is dropped":        `{"tools":[{"googleSearch":{}}],"toolConfig":{"functionCallingConfig":{"mode":"ANY"}},"contents":[{"parts":[{"text":"x"}]}]}`,
		"tool_choice none carries no parallel flag":   `{"tools":[{"functionDeclarations":[{"name":"f"}]}],"toolConfig":{"functionCallingConfig":{"mode":"NONE"}},"contents":[{"parts":[{"text":"x"}]}]}`,
		"sampling within Anthropic's ranges":          `{"generationConfig":{"temperature":1.5,"topP":0.9,"topK":0},"contents":[{"parts":[{"text":"x"}]}]}`,
		"thinking drops the sampling it cannot take": `{"generationConfig":{"temperature":0.5,"topP":0.97,"topK":5,"thinkingConfig":{"thinkingBudget":2048}},
			"contents":[{"parts":[{"text":"x"}]}]}`,
		"blank stop sequences are dropped":   `{"generationConfig":{"stopSequences":["\n","","END"]},"contents":[{"parts":[{"text":"x"}]}]}`,
		"max_tokens defaults to the model's": `{"contents":[{"parts":[{"text":"x"}]}]}`,
		"max_tokens within the model's cap":  `{"generationConfig":{"maxOutputTokens":100000},"contents":[{"parts":[{"text":"x"}]}]}`,
	}
}

// geminiModels names the model of the situations that need another (Gemini
// puts the model in the path, not the body).
var geminiModels = map[string]string{
	"max_tokens within the model's cap":                                       "claude-3-5-haiku-20241022",
	"a model that takes no budget thinks adaptively, at the asked effort":     "claude-opus-4-7",
	"a model that always thinks gets no thinking field when it is turned off": "claude-fable-5-1",
	"a model without extended thinking gets none":                             "claude-3-5-haiku-20241022",
}

// notInGemini are the situations a Gemini request cannot be in, and why.
var notInGemini = map[string]string{
	"a second tool of the same name is dropped": "Decode refuses a function declared twice",
	"at most four cache marks, without TTLs":    "Gemini clients cannot send cache marks",
}

// TestDecode_Situations decodes each situation of the shared table in
// Gemini's shape and checks the outcome the table gives.
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
	bodies := geminiSituations()
	for _, s := range table {
		t.Run(s.Name, func(t *testing.T) {
			body, ok := bodies[s.Name]
			if !ok {
				if why, ok := notInGemini[s.Name]; ok {
					t.Skip(why)
				}
				t.Fatal("no Gemini form of this situation")
			}
			model := "claude-sonnet-4-5"
			if m, ok := geminiModels[s.Name]; ok {
				model = m
			}
			got, _ := decodeJSON(t, model, body, DecodeOptions{})
			for field, want := range s.Want {
				if diff := cmp.Diff(want, got[field]); diff != "" {
					t.Errorf("%s (-want +got):\n%s", field, diff)
				}
			}
			if on := got["thinking"] != nil; s.Thinking != "" && on != (s.Thinking == "on") {
				t.Errorf("thinking = %v, want %s", got["thinking"], s.Thinking)
			}
		})
	}
}

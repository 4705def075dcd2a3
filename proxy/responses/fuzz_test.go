package responses

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode checks that Decode never panics, that every error it returns
// is a *RequestError (a 400 naming the field), and that every request it
// accepts is one the Anthropic API would accept too.
func FuzzDecode(f *testing.F) {
	seeds := []string{
		`{"model":"claude-sonnet-4-5","input":"hi"}`,
		`{"model":"claude-sonnet-4-5","instructions":"x","input":[{"role":"developer","content":"d"},{"role":"user","content":[{"type":"input_text","text":"a"},{"type":"input_image","image_url":"data:image/png;base64,AA"}]}]}`,
		`{"model":"claude-sonnet-4-5","tools":[` + weatherTool + `,` + applyPatchTool + `],"tool_choice":"required","reasoning":{"effort":"high"},"temperature":0.3,"top_p":0.5,
			"input":[{"role":"user","content":"x"},{"type":"function_call","call_id":"a.b","name":"get_weather","arguments":"{}"},
			{"type":"custom_tool_call","call_id":"c","name":"apply_patch","input":"*** Begin Patch"},
			{"type":"function_call_output","call_id":"a.b","output":[{"type":"input_text","text":"r"}]},{"type":"custom_tool_call_output","call_id":"zz","output":"o"}]}`,
		`{"model":"m","input":[{"type":"reasoning","encrypted_content":"llmgw.thinking.v1:e30"},{"role":"assistant","content":"a"},{"type":"function_call","call_id":"x","name":"f","arguments":"{}"},{"type":"function_call","call_id":"x","name":"f","arguments":"[]"}]}`,
		`{"model":"m","input":[],"tools":[{"type":"namespace","name":"ns","tools":[{"type":"function","name":"f"},{"type":"custom","name":"f"}]},{"type":"function","name":"ns__f"}],"tool_choice":{"type":"allowed_tools","mode":"required","tools":[{"type":"function","name":"f"}]}}`,
		`{"model":"m","previous_response_id":"r"}`,
		`{"model":"m","max_output_tokens":99999999,"reasoning":{"effort":"max"},"stop":["", "x"],"text":{"format":{"type":"json_schema","schema":{}}}}`,
		`{}`, `null`, `[]`, `{"model":""}`, `{"model":"m","input":[null,{},{"type":"message"}]}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	for _, pattern := range []string{"testdata/*.json", "testdata/golden/*/request.json"} {
		files, _ := filepath.Glob(pattern)
		for _, name := range files {
			if b, err := os.ReadFile(name); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, _, err := Decode(body, DecodeOptions{})
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %T %v is not a *RequestError", err, err)
			}
			if re.Message == "" {
				t.Fatal("RequestError without a message")
			}
			return
		}
		if err := validate(req); err != nil {
			t.Fatalf("accepted a request the upstream would refuse: %v\nbody: %s", err, body)
		}
	})
}

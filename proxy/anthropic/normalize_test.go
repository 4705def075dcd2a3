package anthropic

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The situations of testdata/normalize.json are the one table of
// Anthropic-side repairs. Each holds a request as a dialect decoder
// translates it (before Normalize), the rules it exercises, and the outcome:
// the top-level fields of the normalized request it names (null: absent)
// and, under "thinking", whether thinking is "on" or "off". The dialect
// packages feed the same situations in their own request shapes and expect
// the same outcome, so every dialect is repaired alike.
type situation struct {
	Name     string                     `json:"name"`
	Rules    []string                   `json:"rules"`
	Thinking string                     `json:"thinking"`
	Request  json.RawMessage            `json:"request"`
	Want     map[string]json.RawMessage `json:"want"`
}

func loadSituations(t *testing.T) []situation {
	t.Helper()
	raw, err := os.ReadFile("testdata/normalize.json")
	if err != nil {
		t.Fatal(err)
	}
	var list []situation
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatalf("testdata/normalize.json: %v", err)
	}
	return list
}

// outcome checks req against a situation's outcome.
func outcome(t *testing.T, s situation, req *Request) {
	t.Helper()
	raw, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	for field, w := range s.Want {
		var want any
		if err := json.Unmarshal(w, &want); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got[field]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", field, diff)
		}
	}
	if on := req.Thinking != nil; (s.Thinking == "on" && !on) || (s.Thinking == "off" && on) {
		t.Errorf("thinking = %+v, want %s", req.Thinking, s.Thinking)
	}
}

func normalized(t *testing.T, s situation) *Request {
	t.Helper()
	var req Request
	if err := json.Unmarshal(s.Request, &req); err != nil {
		t.Fatalf("request: %v", err)
	}
	Normalize(&req, NormalizeOptions{})
	return &req
}

func TestNormalize(t *testing.T) {
	for _, s := range loadSituations(t) {
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			outcome(t, s, normalized(t, s))
		})
	}
}

// TestNormalize_Idempotent: normalizing a normalized request changes
// nothing, so a request may pass through Normalize twice.
func TestNormalize_Idempotent(t *testing.T) {
	for _, s := range loadSituations(t) {
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			req := normalized(t, s)
			once, _ := json.Marshal(req)
			if n := Normalize(req, NormalizeOptions{}); len(n.Notes) > 0 {
				t.Errorf("second pass notes %q, want none", n.Notes)
			}
			twice, _ := json.Marshal(req)
			if diff := cmp.Diff(string(once), string(twice)); diff != "" {
				t.Errorf("second pass changed the request (-once +twice):\n%s", diff)
			}
		})
	}
}

// TestNormalize_EveryRuleHasASituation keeps the table complete: a rule
// added to Normalize needs a situation that every dialect then passes.
func TestNormalize_EveryRuleHasASituation(t *testing.T) {
	covered := map[string]bool{}
	for _, s := range loadSituations(t) {
		for _, r := range s.Rules {
			covered[r] = true
		}
	}
	known := map[string]bool{}
	for _, r := range rules {
		known[r.name] = true
		if !covered[r.name] {
			t.Errorf("rule %s has no situation in testdata/normalize.json", r.name)
		}
	}
	for r := range covered {
		if !known[r] {
			t.Errorf("testdata/normalize.json names rule %s, which Normalize does not have", r)
		}
	}
}

func TestNormalize_Info(t *testing.T) {
	req := &Request{Model: "claude-sonnet-4-5", Messages: []Message{
		{Role: "user", Content: []ContentBlock{{Type: "tool_result", ToolUseID: "gone", Content: json.RawMessage(`"x"`)}, {Type: "text", Text: "hi"}}},
		{Role: "assistant", Content: []ContentBlock{{Type: "tool_use", ID: "c1", Name: "f"}}},
		{Role: "user", Content: []ContentBlock{{Type: "tool_result", ToolUseID: "other", Content: json.RawMessage(`[{"type":"text","text":"y"}]`)}}},
	}}
	n := Normalize(req, NormalizeOptions{})
	if n.Orphans != 2 || n.Empty {
		t.Errorf("Orphans %d, Empty %v; want 2, false", n.Orphans, n.Empty)
	}
	for _, want := range []string{"unknown tool call gone", "unknown tool call other", "tool call c1 had no result"} {
		if !slices.ContainsFunc(n.Notes, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("notes %q do not say %q", n.Notes, want)
		}
	}

	req = &Request{Model: "m", System: []ContentBlock{{Type: "text", Text: "S"}}, Messages: []Message{{Role: "user", Content: []ContentBlock{{Type: "text", Text: " "}}}}}
	if n := Normalize(req, NormalizeOptions{}); !n.Empty {
		t.Error("Empty = false for a conversation of blank text")
	}
}

// The configured catalog answers for the model limits.
var _ ModelLimits = (*Catalog)(nil)

type fakeLimits struct {
	defaultMax func(model string) int
	thinking   ThinkingMode
}

func (f fakeLimits) Thinking(string) ThinkingMode { return f.thinking }
func (f fakeLimits) NoSampling(string) bool       { return false }

func (f fakeLimits) DefaultMaxTokens(model string) int      { return f.defaultMax(model) }
func (f fakeLimits) ClampMaxTokens(model string, n int) int { return n }
func (f fakeLimits) FitThinking(model string, budget, maxTokens int) (int, int) {
	return budget, max(maxTokens, budget+1)
}

func TestNormalize_ModelLimits(t *testing.T) {
	req := &Request{Model: "claude-custom", Messages: []Message{{Role: "user", Content: []ContentBlock{{Type: "text", Text: "x"}}}}}
	Normalize(req, NormalizeOptions{Models: fakeLimits{defaultMax: func(string) int { return 1234 }}})
	if req.MaxTokens != 1234 {
		t.Errorf("max_tokens = %d, want the configured default 1234", req.MaxTokens)
	}
}

// TestNormalize_ThinkingByModel: thinking is sent as each model's
// ThinkingMode takes it, and sampling follows the final decision.
func TestNormalize_ThinkingByModel(t *testing.T) {
	t.Parallel()
	temp := func(f float64) *float64 { return &f }
	user := []Message{{Role: "user", Content: []ContentBlock{{Type: "text", Text: "x"}}}}
	unsignedLoop := []Message{
		{Role: "user", Content: []ContentBlock{{Type: "text", Text: "go"}}},
		{Role: "assistant", Content: []ContentBlock{{Type: "tool_use", ID: "c1", Name: "f", Input: json.RawMessage(`{}`)}}},
		{Role: "user", Content: []ContentBlock{{Type: "tool_result", ToolUseID: "c1", Content: json.RawMessage(`"ok"`)}}},
	}
	tests := []struct {
		name     string
		req      Request
		thinking string // the thinking field as sent, "" for none
		effort   string // output_config.effort
		temp     *float64
	}{
		{"adaptive only: the client's effort", Request{Model: "claude-opus-4-7", Thinking: &Thinking{Type: "enabled", BudgetTokens: 32768, Effort: "xhigh"}},
			`{"type":"adaptive"}`, "xhigh", nil},
		{"adaptive only: minimal is low", Request{Model: "claude-sonnet-5", Thinking: &Thinking{Type: "enabled", BudgetTokens: 1024, Effort: "minimal"}},
			`{"type":"adaptive"}`, "low", nil},
		{"adaptive only: a bare budget's effort", Request{Model: "claude-opus-4-7", Thinking: &Thinking{Type: "enabled", BudgetTokens: 20000}},
			`{"type":"adaptive"}`, "high", nil},
		{"adaptive only: a budget above high's is max", Request{Model: "claude-opus-4-7", Thinking: &Thinking{Type: "enabled", BudgetTokens: 50000}},
			`{"type":"adaptive"}`, "max", nil},
		{"adaptive only: adaptive without effort keeps the default", Request{Model: "claude-opus-4-7", Thinking: &Thinking{Type: "adaptive"}},
			`{"type":"adaptive"}`, "", nil},
		{"adaptive only: a request's own effort stands", Request{Model: "claude-opus-4-7", Thinking: &Thinking{Type: "enabled", BudgetTokens: 24576, Effort: "high"},
			OutputConfig: &OutputConfig{Effort: "low"}}, `{"type":"adaptive"}`, "low", nil},
		{"adaptive only: disabled is sent, sampling dropped", Request{Model: "claude-opus-5", Thinking: &Thinking{Type: "disabled"}, Temperature: temp(0.5)},
			`{"type":"disabled"}`, "", nil},
		{"always on: the effort", Request{Model: "claude-fable-5-1", Thinking: &Thinking{Type: "enabled", BudgetTokens: 8192, Effort: "medium"}},
			`{"type":"adaptive"}`, "medium", nil},
		{"always on: disabled is left out, sampling as thinking", Request{Model: "claude-fable-5-1", Thinking: &Thinking{Type: "disabled"}, Temperature: temp(0.5)},
			"", "", nil},
		{"always on: no thinking asked, sampling as thinking", Request{Model: "claude-opus-5-5", Temperature: temp(0.5)},
			"", "", nil},
		{"always on: even temperature 1 is dropped", Request{Model: "claude-opus-5-5", Temperature: temp(1)},
			"", "", nil},
		{"thinking off on 4.6: temperature stays", Request{Model: "claude-sonnet-4-6", Thinking: &Thinking{Type: "disabled"}, Temperature: temp(0.5)},
			`{"type":"disabled"}`, "", temp(0.5)},
		{"always on: an unsigned tool loop leaves thinking out", Request{Model: "claude-fable-5", Thinking: &Thinking{Type: "enabled", BudgetTokens: 2048}, Messages: unsignedLoop},
			"", "", nil},
		{"adaptive: a budget stands", Request{Model: "claude-sonnet-4-6", Thinking: &Thinking{Type: "enabled", BudgetTokens: 2048, Effort: "medium"}, MaxTokens: 8000},
			`{"type":"enabled","budget_tokens":2048}`, "", nil},
		{"adaptive: adaptive stands", Request{Model: "claude-opus-4-6", Thinking: &Thinking{Type: "adaptive"}},
			`{"type":"adaptive"}`, "", nil},
		{"manual: adaptive becomes the effort's budget", Request{Model: "claude-sonnet-4-5", Thinking: &Thinking{Type: "adaptive", Effort: "high"}, MaxTokens: 30000},
			`{"type":"enabled","budget_tokens":24576}`, "", nil},
		{"manual: adaptive without effort is medium", Request{Model: "claude-haiku-4-5", Thinking: &Thinking{Type: "adaptive"}, MaxTokens: 30000},
			`{"type":"enabled","budget_tokens":8192}`, "", nil},
		{"none: thinking dropped, sampling kept", Request{Model: "claude-3-5-haiku", Thinking: &Thinking{Type: "enabled", BudgetTokens: 2048}, Temperature: temp(0.5)},
			"", "", temp(0.5)},
		{"none: disabled dropped", Request{Model: "claude-3-opus", Thinking: &Thinking{Type: "disabled"}},
			"", "", nil},
		{"unknown: a budget as today", Request{Model: "claude-next-9", Thinking: &Thinking{Type: "enabled", BudgetTokens: 2048, Effort: "low"}, MaxTokens: 8000},
			`{"type":"enabled","budget_tokens":2048}`, "", nil},
		{"unknown: adaptive as today", Request{Model: "claude-next-9", Thinking: &Thinking{Type: "adaptive"}},
			`{"type":"adaptive"}`, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := tt.req
			if req.Messages == nil {
				req.Messages = slices.Clone(user)
			}
			Normalize(&req, NormalizeOptions{})
			got := ""
			if req.Thinking != nil {
				b, _ := json.Marshal(req.Thinking)
				got = string(b)
			}
			if got != tt.thinking {
				t.Errorf("thinking = %s, want %s", got, tt.thinking)
			}
			effort := ""
			if req.OutputConfig != nil {
				effort = req.OutputConfig.Effort
			}
			if effort != tt.effort {
				t.Errorf("output_config.effort = %q, want %q", effort, tt.effort)
			}
			if diff := cmp.Diff(tt.temp, req.Temperature); diff != "" {
				t.Errorf("temperature (-want +got):\n%s", diff)
			}
			again := req
			if n := Normalize(&again, NormalizeOptions{}); len(n.Notes) > 0 {
				t.Errorf("second pass notes %q, want none", n.Notes)
			}
		})
	}
}

// TestNormalize_ThinkingFromModelLimits: the thinking mode comes from the
// catalog Normalize is given, not the built-in one.
func TestNormalize_ThinkingFromModelLimits(t *testing.T) {
	t.Parallel()
	c, err := Builtin().With(Model{ID: "claude-custom", MaxOutputTokens: 64000, Thinking: ThinkingAdaptiveOnly})
	if err != nil {
		t.Fatal(err)
	}
	req := &Request{Model: "claude-custom", Thinking: &Thinking{Type: "enabled", BudgetTokens: 8192, Effort: "medium"},
		Messages: []Message{{Role: "user", Content: []ContentBlock{{Type: "text", Text: "x"}}}}}
	Normalize(req, NormalizeOptions{Models: c})
	if req.Thinking == nil || req.Thinking.Type != "adaptive" || req.OutputConfig == nil || req.OutputConfig.Effort != "medium" {
		t.Errorf("thinking %+v, output_config %+v; want adaptive at effort medium", req.Thinking, req.OutputConfig)
	}
	if req.MaxTokens != 32000 {
		t.Errorf("max_tokens = %d, want the configured model's default 32000", req.MaxTokens)
	}
}

func TestParseDataURL(t *testing.T) {
	tests := []struct {
		in, mediaType, data string
		base64, bad         bool
	}{
		{in: "data:image/PNG;base64,AAAA", mediaType: "image/png", data: "AAAA", base64: true},
		{in: "DATA:text/plain;charset=utf-8; Base64 ,aGk=", mediaType: "text/plain", data: "aGk=", base64: true},
		{in: "data:text/plain,hello%20you", mediaType: "text/plain", data: "hello%20you"},
		{in: "data:image/png;base64", bad: true},
		{in: "https://example.com/a.png", bad: true},
	}
	for _, tt := range tests {
		mt, data, b64, err := ParseDataURL(tt.in)
		if (err != nil) != tt.bad || mt != tt.mediaType || data != tt.data || b64 != tt.base64 {
			t.Errorf("ParseDataURL(%q) = %q, %q, %v, %v", tt.in, mt, data, b64, err)
		}
	}
}

func TestImageMediaType(t *testing.T) {
	for in, want := range map[string]string{"image/jpg": "image/jpeg", "IMAGE/PNG": "image/png", "image/webp": "image/webp", "image/tiff": "", "": ""} {
		if got, ok := ImageMediaType(in); got != want || ok != (want != "") {
			t.Errorf("ImageMediaType(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestToolResultContent(t *testing.T) {
	img := ContentBlock{Type: "image", Source: &Source{Type: "url", URL: "https://example.com/a.png"}}
	tests := []struct {
		name   string
		blocks []ContentBlock
		want   string
	}{
		{"none", nil, ``},
		{"blank text only", []ContentBlock{{Type: "text", Text: " "}}, ``},
		{"one text is a string, as written", []ContentBlock{{Type: "text", Text: "a<b>&c"}, {Type: "text"}}, `"a<b>&c"`},
		{"text and an image stay a list", []ContentBlock{{Type: "text", Text: "see"}, img}, `[{"type":"text","text":"see"},{"type":"image","source":{"type":"url","url":"https://example.com/a.png"}}]`},
	}
	for _, tt := range tests {
		if got := ToolResultContent(tt.blocks); string(got) != tt.want {
			t.Errorf("%s: ToolResultContent = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestJSONKind(t *testing.T) {
	var s struct {
		A []int
		B *int
		C map[string]any
		D float64
		E bool
	}
	typ := reflect.TypeOf(s)
	for i, want := range []string{"an array", "an integer", "an object", "a number", "a boolean"} {
		if got := JSONKind(typ.Field(i).Type); got != want {
			t.Errorf("JSONKind(%s) = %q, want %q", typ.Field(i).Type, got, want)
		}
	}
}

// FuzzNormalize checks that Normalize never panics, is idempotent, and
// leaves a conversation Anthropic's turn rules accept: a user turn first and
// last, turns alternating, none empty, and every tool call answered exactly
// once at the start of the next turn.
func FuzzNormalize(f *testing.F) {
	raw, err := os.ReadFile("testdata/normalize.json")
	if err != nil {
		f.Fatal(err)
	}
	var list []situation
	if err := json.Unmarshal(raw, &list); err != nil {
		f.Fatal(err)
	}
	for _, s := range list {
		f.Add([]byte(s.Request))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req Request
		if json.Unmarshal(body, &req) != nil {
			return
		}
		for _, m := range req.Messages {
			if m.Role != "user" && m.Role != "assistant" {
				return // decoders make no other roles
			}
		}
		Normalize(&req, NormalizeOptions{})
		once, err := json.Marshal(&req)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		Normalize(&req, NormalizeOptions{})
		if twice, _ := json.Marshal(&req); !bytes.Equal(once, twice) {
			t.Fatalf("not idempotent:\n%s\n%s", once, twice)
		}
		msgs := req.Messages
		if len(msgs) == 0 || msgs[0].Role != "user" || msgs[len(msgs)-1].Role != "user" {
			t.Fatalf("conversation must start and end with the user: %s", once)
		}
		var calls []string
		for i, m := range msgs {
			if len(m.Content) == 0 || (i > 0 && msgs[i-1].Role == m.Role) {
				t.Fatalf("message %d empty or not alternating: %s", i, once)
			}
			if m.Role == "assistant" {
				calls = calls[:0]
				for _, b := range m.Content {
					if b.Type == "tool_use" {
						calls = append(calls, b.ID)
					}
				}
				continue
			}
			for k, b := range m.Content {
				if k < len(calls) && (b.Type != "tool_result" || b.ToolUseID != calls[k]) {
					t.Fatalf("message %d block %d does not answer call %s: %s", i, k, calls[k], once)
				}
				if k >= len(calls) && b.Type == "tool_result" {
					t.Fatalf("message %d block %d answers no call: %s", i, k, once)
				}
			}
			calls = calls[:0]
		}
	})
}

// TestNormalize_NoSampling: models whose catalog entry refuses sampling
// parameters (4.7 and later, Sonnet 5, Fable, Mythos) get none, with a note
// for each dropped; older and unknown models keep theirs.
func TestNormalize_NoSampling(t *testing.T) {
	t.Parallel()
	f := func(v float64) *float64 { return &v }
	k := func(v int) *int { return &v }
	for _, tt := range []struct {
		model string
		drop  bool
	}{
		{"claude-opus-4-7", true}, {"claude-opus-4-8", true}, {"claude-opus-5", true}, {"claude-opus-5-5", true},
		{"claude-sonnet-5", true}, {"claude-sonnet-5-5", true}, {"claude-haiku-5-5", true},
		{"claude-fable-5", true}, {"claude-fable-5-1", true}, {"claude-mythos-5", true},
		{"claude-sonnet-4-6", false}, {"claude-opus-4-6", false}, {"claude-sonnet-4-5-20250929", false}, {"claude-haiku-4-5", false},
		{"claude-from-the-future", false},
	} {
		t.Run(tt.model, func(t *testing.T) {
			t.Parallel()
			r := &Request{Model: tt.model, Temperature: f(0.2), TopK: k(40),
				Messages: []Message{{Role: "user", Content: []ContentBlock{{Type: "text", Text: "x"}}}}}
			info := Normalize(r, NormalizeOptions{})
			dropped := r.Temperature == nil && r.TopP == nil && r.TopK == nil
			if dropped != tt.drop {
				t.Errorf("temperature %v top_k %v; want dropped %v", r.Temperature, r.TopK, tt.drop)
			}
			var notes int
			for _, n := range info.Notes {
				if strings.Contains(n, "takes no sampling parameters") {
					notes++
				}
			}
			if tt.drop && notes != 2 {
				t.Errorf("notes = %q, want one for temperature and one for top_k", info.Notes)
			}
		})
	}
}

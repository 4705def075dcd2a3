package anthropic

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestToolNames(t *testing.T) {
	var m ToolNames
	valid := regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)
	names := []string{"get_weather", "mcp.server/read file", "mcp.server:read_file", strings.Repeat("x", 200), ""}
	seen := map[string]bool{}
	for _, n := range names {
		u := m.Upstream(n)
		if !valid.MatchString(u) {
			t.Errorf("Upstream(%q) = %q, not a valid Anthropic tool name", n, u)
		}
		if seen[u] {
			t.Errorf("Upstream(%q) = %q collides with another tool", n, u)
		}
		seen[u] = true
		if got := m.Client(u); got != n {
			t.Errorf("Client(%q) = %q, want %q", u, got, n)
		}
		if again := m.Upstream(n); again != u {
			t.Errorf("Upstream(%q) not stable: %q then %q", n, u, again)
		}
	}
	if got := m.Upstream("get_weather"); got != "get_weather" {
		t.Errorf("a valid name changed: %q", got)
	}
}

func TestSanitizeID(t *testing.T) {
	if got := SanitizeID("functions.get:0"); got != "functions_get_0" {
		t.Errorf("SanitizeID = %q", got)
	}
}

func TestNormalizeSchema(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"missing", ``, `{"type":"object","properties":{}}`},
		{"not an object", `"x"`, `{"type":"object","properties":{}}`},
		{"gemini types", `{"type":"OBJECT","properties":{"a":{"type":"STRING","nullable":true}}}`,
			`{"type":"object","properties":{"a":{"type":["string","null"]}}}`},
		{"union", `{"anyOf":[{"type":"object","properties":{"a":{"type":"string"}}},{"type":"object","properties":{"b":{"type":"integer"}}}]}`,
			`{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}`},
		{"refs", `{"type":"object","properties":{"p":{"$ref":"#/$defs/P"}},"$defs":{"P":{"type":"object","properties":{"x":{"type":"number"}}}}}`,
			`{"type":"object","properties":{"p":{"type":"object","properties":{"x":{"type":"number"}}}}}`},
		{"cycle", `{"type":"object","properties":{"n":{"$ref":"#/$defs/N"}},"$defs":{"N":{"type":"object","properties":{"next":{"$ref":"#/$defs/N"}}}}}`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := NormalizeSchema(json.RawMessage(tt.in))
			var g any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("output %s: %v", got, err)
			}
			if g.(map[string]any)["type"] != "object" {
				t.Errorf("top-level type of %s is not object", got)
			}
			if tt.want == "" {
				return
			}
			var w any
			if err := json.Unmarshal([]byte(tt.want), &w); err != nil {
				t.Fatalf("want: %v", err)
			}
			if diff := cmp.Diff(w, g); diff != "" {
				t.Errorf("schema (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFitThinking(t *testing.T) {
	for _, tt := range []struct {
		model          string
		budget, maxTok int
		wantB, wantMax int
	}{
		{"claude-sonnet-4-5", 512, 100, 1024, 5120},
		{"claude-sonnet-4-5", 24576, 64000, 24576, 64000},
		{"claude-opus-4-1", 32768, 1000, 30976, 32000},
		{"claude-3-5-haiku", 8192, 0, 7168, 8192},
		{"claude-future-9", 8192, 0, 8192, 12288},
		{"claude-sonnet-4-5", 0, 100, 0, 100},
	} {
		b, m := FitThinking(tt.model, tt.budget, tt.maxTok)
		if b != tt.wantB || m != tt.wantMax {
			t.Errorf("FitThinking(%s, %d, %d) = %d, %d; want %d, %d", tt.model, tt.budget, tt.maxTok, b, m, tt.wantB, tt.wantMax)
		}
		if b > 0 && (b < MinThinkingBudget || b >= m) {
			t.Errorf("FitThinking(%s) broke the rules: budget %d, max %d", tt.model, b, m)
		}
	}
	if DefaultMaxTokens("claude-unknown-7") != 8192 || DefaultMaxTokens("claude-opus-4-5-20251101") != 32000 {
		t.Error("DefaultMaxTokens")
	}
}

func TestContentBlock_ThinkingFieldsAlwaysWritten(t *testing.T) {
	b, err := json.Marshal(ContentBlock{Type: "thinking", Signature: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"type":"thinking","thinking":"","signature":"sig"}` {
		t.Errorf("thinking block = %s", b)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ContentBlock{Type: "thinking", Thinking: "<b>", Signature: "s"}); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != `{"type":"thinking","thinking":"<b>","signature":"s"}`+"\n" {
		t.Errorf("thinking block through a non-escaping encoder = %s", got)
	}
}

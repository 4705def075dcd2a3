package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// convertedWhole is a non-stream request of each converted dialect, with
// its max_tokens (or the dialect's name for it) as %d and its answer's text
// where the client finds it.
var convertedWhole = []struct {
	dialect, path, body string
	text                func(body []byte) string
}{
	{
		"chat", "/v1/chat/completions",
		`{"model":"claude-sonnet-4-5","max_tokens":%d,%s"messages":[{"role":"user","content":"hi"}]}`,
		func(b []byte) string {
			var v struct {
				Choices []struct{ Message struct{ Content string } }
			}
			if json.Unmarshal(b, &v) != nil || len(v.Choices) == 0 {
				return ""
			}
			return v.Choices[0].Message.Content
		},
	},
	{
		"responses", "/v1/responses",
		`{"model":"claude-sonnet-4-5","max_output_tokens":%d,%s"input":"hi"}`,
		func(b []byte) string {
			var v struct {
				Output []struct{ Content []struct{ Text string } }
			}
			if json.Unmarshal(b, &v) != nil {
				return ""
			}
			for _, o := range v.Output {
				for _, c := range o.Content {
					return c.Text
				}
			}
			return ""
		},
	},
	{
		"gemini", "/v1beta/models/claude-sonnet-4-5:generateContent",
		`{"generationConfig":{"maxOutputTokens":%d%s},"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`,
		func(b []byte) string {
			var v struct {
				Candidates []struct {
					Content struct{ Parts []struct{ Text string } }
				}
			}
			if json.Unmarshal(b, &v) != nil || len(v.Candidates) == 0 || len(v.Candidates[0].Content.Parts) == 0 {
				return ""
			}
			return v.Candidates[0].Content.Parts[0].Text
		},
	},
}

// thinkingField turns thinking on in each dialect's request, placed where
// convertedWhole's second %s is.
var thinkingField = map[string]string{
	"chat":      `"reasoning_effort":"high",`,
	"responses": `"reasoning":{"effort":"high"},`,
	"gemini":    `,"thinkingConfig":{"thinkingBudget":2048}`,
}

func postWhole(t *testing.T, g *gateway, path, body string) (int, []byte) {
	t.Helper()
	status, _, b := post(t, g.URL, path, body)
	return status, b
}

// A converted non-stream request asks the upstream for the answer whole
// when the answer will be short (no thinking, max_tokens up to 8,192), and
// as a stream otherwise; the client gets the same answer and the row the
// same tokens either way.
func TestInfer_ShortAnswerGoesUpstreamWhole(t *testing.T) {
	tokens := upstreamtest.Tokens{Input: 21, Output: 8, CacheRead: 3, CacheWrite: 4, CacheWrite5m: 4}
	for _, d := range convertedWhole {
		for _, tc := range []struct {
			name       string
			maxTokens  int
			thinking   bool
			wantStream bool
		}{
			{"short", 512, false, false},
			{"at the bound", shortAnswerMaxTokens, false, false},
			{"long", shortAnswerMaxTokens + 1, false, true},
			{"thinking", 4096, true, true},
		} {
			t.Run(d.dialect+"/"+tc.name, func(t *testing.T) {
				up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Text("whole or not"), upstreamtest.WithUsage(tokens)))
				g := newGateway(t, Config{}, account(1, "main", "sk-ant-main", up.URL))
				extra := ""
				if tc.thinking {
					extra = thinkingField[d.dialect]
				}
				status, body := postWhole(t, g, d.path, fmt.Sprintf(d.body, tc.maxTokens, extra))
				if status != http.StatusOK || d.text(body) != "whole or not" {
					t.Fatalf("status %d, answer %s", status, body)
				}
				var sent struct {
					Stream bool `json:"stream"`
				}
				if err := up.Requests()[0].Decode(&sent); err != nil {
					t.Fatal(err)
				}
				if sent.Stream != tc.wantStream {
					t.Errorf("upstream stream = %v, want %v", sent.Stream, tc.wantStream)
				}
				row := g.rec.wait(t, 1)[0]
				if row.Tokens != llmgw.Tokens(tokens) || row.Status != 200 || row.Stream {
					t.Errorf("row tokens %+v status %d stream %v; want %+v 200 false", row.Tokens, row.Status, row.Stream, tokens)
				}
			})
		}
	}
}

// A whole answer that cannot be read (cut short, or a stream where JSON was
// asked for and the stream breaks) fails over to the next account: the
// client has seen nothing yet.
func TestInfer_UnreadableWholeAnswerFailsOver(t *testing.T) {
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"msg_cut","type":"message","content":[{"type":"text","text":"half`))
	}))
	t.Cleanup(bad.Close)
	good := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Text("from b")))
	for _, d := range convertedWhole {
		t.Run(d.dialect, func(t *testing.T) {
			g := newGateway(t, Config{}, account(1, "a", "sk-ant-a", bad.URL), account(2, "b", "sk-ant-b", good.URL))
			status, body := postWhole(t, g, d.path, fmt.Sprintf(d.body, 512, ""))
			if status != http.StatusOK || d.text(body) != "from b" {
				t.Fatalf("status %d, answer %s", status, body)
			}
			row := g.rec.wait(t, 1)[0]
			if len(row.Attempts) != 2 || row.Attempts[0].ErrorType != "connection_error" || row.AccountName != "b" {
				t.Errorf("attempts %+v on %s; want a connection_error on a, then b", row.Attempts, row.AccountName)
			}
		})
	}
}

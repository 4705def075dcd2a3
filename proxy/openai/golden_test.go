package openai

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

var (
	goldenID      = regexp.MustCompile(`("id":\s*)"chatcmpl-[^"]*"`)
	goldenCreated = regexp.MustCompile(`("created":\s*)\d+`)
)

// normalizeChat replaces the per-response id and created time.
func normalizeChat(b []byte) []byte {
	b = goldenID.ReplaceAll(b, []byte(`${1}"chatcmpl-ID"`))
	return goldenCreated.ReplaceAll(b, []byte(`${1}0`))
}

// TestChat_Golden replays each testdata/golden/<case>: request.json is the
// client's request (it sets stream, include_usage and tool names),
// upstream.sse the recorded Anthropic stream, want.txt what the client
// reads: the chunk stream, or the indented chat.completion when the request
// does not stream. Run with -update to rewrite want.txt.
func TestChat_Golden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/golden/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			request, err := os.ReadFile(filepath.Join(dir, "request.json"))
			if err != nil {
				t.Fatal(err)
			}
			upstream, err := os.ReadFile(filepath.Join(dir, "upstream.sse"))
			if err != nil {
				t.Fatal(err)
			}
			_, info, err := DecodeChat(request, DecodeOptions{})
			if err != nil {
				t.Fatalf("request.json: %v", err)
			}
			var got []byte
			if info.Stream {
				got = []byte(runStream(t, info, string(upstream)))
			} else {
				out, err := ChatResult(accumulate(t, string(upstream)), info)
				if err != nil {
					t.Fatal(err)
				}
				var buf bytes.Buffer
				if err := json.Indent(&buf, out, "", "  "); err != nil {
					t.Fatal(err)
				}
				buf.WriteByte('\n')
				got = buf.Bytes()
			}
			got = normalizeChat(got)
			golden := filepath.Join(dir, "want.txt")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("client stream (-want +got):\n%s", diff)
			}
		})
	}
}

package responses

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

var (
	createdRE = regexp.MustCompile(`"created_at":\d+`)
	idRE      = regexp.MustCompile(`"(resp|msg|rs|fc|ctc)_[A-Za-z0-9]+(_\d+)?"`)
)

// normalize replaces what changes between runs of the same upstream answer
// in real use: timestamps and the ids derived from the upstream message id.
func normalize(s string) string {
	s = createdRE.ReplaceAllString(s, `"created_at":0`)
	return idRE.ReplaceAllString(s, `"${1}_ID${2}"`)
}

// TestGolden replays recorded upstream streams (testdata/golden/<case>/
// upstream.sse, with the client's request.json when the case needs one)
// through the encoder, the way the proxy drives it, and compares the client
// stream with want.txt. Run with -update to rewrite want.txt, then review
// the diff.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "golden", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			info := Info{Model: "claude-sonnet-4-5"}
			if body, err := os.ReadFile(filepath.Join(dir, "request.json")); err == nil {
				_, info = decode(t, string(body))
			}
			info.Created = testTime
			upstream, err := os.ReadFile(filepath.Join(dir, "upstream.sse"))
			if err != nil {
				t.Fatal(err)
			}
			got := normalize(translate(t, info, string(upstream)))
			checkSequence(t, parseStream(t, got))
			golden := filepath.Join(dir, "want.txt")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("client stream (-want +got):\n%s", diff)
			}
		})
	}
}

package gemini

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/sse"
)

var update = flag.Bool("update", false, "rewrite golden files")

// replay feeds an upstream SSE transcript to an Encoder the way the proxy's
// conversion driver does: every event in order, Fail on an error event, on
// a translation error, or when the stream ends without message_stop.
func replay(tb testing.TB, enc *Encoder, upstream []byte) []byte {
	tb.Helper()
	var out bytes.Buffer
	r := sse.NewReader(bytes.NewReader(upstream))
	for {
		ev, err := r.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				tb.Fatal(err)
			}
			if err := enc.Fail(&out, "api_error", "the upstream stream ended before the message was complete"); err != nil {
				tb.Fatal(err)
			}
			return out.Bytes()
		}
		if ev.Name == "error" {
			var e struct{ Error anthropic.ErrorDetail }
			_ = json.Unmarshal(ev.Data, &e)
			d := e.Error
			if err := enc.Fail(&out, d.Type, d.Message); err != nil {
				tb.Fatal(err)
			}
			return out.Bytes()
		}
		if err := enc.Event(&out, ev.Name, ev.Data); err != nil {
			_ = enc.Fail(&out, "api_error", "llmgw could not translate the upstream stream")
			return out.Bytes()
		}
		if ev.Name == "message_stop" {
			return out.Bytes()
		}
	}
}

// accumulate rebuilds the whole answer of a transcript, or returns nil if
// it does not end normally.
func accumulate(tb testing.TB, upstream []byte) *anthropic.Accumulator {
	tb.Helper()
	var acc anthropic.Accumulator
	r := sse.NewReader(bytes.NewReader(upstream))
	for {
		ev, err := r.Next()
		if err != nil {
			return nil
		}
		if err := acc.Add(ev.Name, ev.Data); err != nil {
			tb.Fatal(err)
		}
		if acc.Tally.Err != nil {
			return nil
		}
		if acc.Tally.Stopped {
			return &acc
		}
	}
}

func mustRead(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// checkGolden compares got with the golden file, or rewrites it with -update.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

// TestGolden replays each recorded upstream stream in testdata/golden and
// compares the client stream (want.txt) and, for complete streams, the
// non-streaming answer (want.json). A case whose name starts with "array_"
// uses the JSON array framing of streamGenerateContent without alt=sse.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/golden/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			upstream := mustRead(t, filepath.Join(dir, "upstream.sse"))
			_, info, err := Decode("claude-sonnet-4-5", mustRead(t, filepath.Join(dir, "request.json")), DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			info.Stream = true
			info.JSONArray = strings.HasPrefix(filepath.Base(dir), "array_")
			got := replay(t, NewEncoder(info), upstream)
			checkFrames(t, got, info.JSONArray)
			checkGolden(t, filepath.Join(dir, "want.txt"), got)

			if acc := accumulate(t, upstream); acc != nil {
				info.Stream, info.JSONArray = false, false
				res, err := Result(acc, info)
				if err != nil {
					t.Fatal(err)
				}
				var pretty bytes.Buffer
				if err := json.Indent(&pretty, res, "", "  "); err != nil {
					t.Fatalf("Result is not JSON: %v\n%s", err, res)
				}
				pretty.WriteByte('\n')
				checkGolden(t, filepath.Join(dir, "want.json"), pretty.Bytes())
			}
		})
	}
}

// checkFrames checks the framing every Gemini client needs: with SSE,
// nothing but "data: <one JSON object>" frames ended by a blank line (no
// event: lines, no comments); as an array, one JSON array of objects.
func checkFrames(t *testing.T, out []byte, array bool) {
	t.Helper()
	if array {
		var chunks []map[string]any
		if err := json.Unmarshal(out, &chunks); err != nil {
			t.Fatalf("array stream is not a JSON array: %v\n%s", err, out)
		}
		return
	}
	if !bytes.HasSuffix(out, []byte("\r\n\r\n")) {
		t.Errorf("stream does not end with a blank line: %q", out)
	}
	for _, frame := range strings.Split(strings.TrimSuffix(string(out), "\r\n\r\n"), "\r\n\r\n") {
		data, ok := strings.CutPrefix(frame, "data: ")
		if !ok || strings.ContainsAny(data, "\r\n") {
			t.Errorf("frame is not a single data line: %q", frame)
			continue
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			t.Errorf("frame data is not a JSON object: %v: %q", err, data)
		}
	}
}

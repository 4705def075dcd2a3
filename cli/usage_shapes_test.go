package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// models.catalog sets fast mode's multiplier; an entry's prices keep the
// model's multiplier unless it sets one.
func TestLoadConfig_CatalogFastMultiplier(t *testing.T) {
	t.Parallel()
	p := writeFile(t, "llmgw.yaml", `models:
  catalog:
    - id: claude-opus-4-8
      fast_multiplier: 3
    - id: claude-opus-5
      prices: {input: 1, output: 2}
    - id: claude-sonnet-4-6
      fast_multiplier: 1.5
`)
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	for model, want := range map[string]float64{"claude-opus-4-8": 3, "claude-opus-5": 2, "claude-sonnet-4-6": 1.5, "claude-opus-5-5": 2} {
		if pr, _ := cfg.Catalog().PriceOf(model); pr.FastMultiplier != want {
			t.Errorf("%s: FastMultiplier = %v, want %v", model, pr.FastMultiplier, want)
		}
	}
	bad := writeFile(t, "bad.yaml", "models:\n  catalog:\n    - id: m\n      fast_multiplier: -2\n")
	_, err = LoadConfig(bad)
	wantErr(t, err, bad, "line 4: fast_multiplier must be a number, 0 or more")
}

// usageShapes is the usage of a fast Opus 4.8 reply that compacted its
// context and consulted an advisor on Opus 5: the top level repeats the
// message iteration, whose cache write is a total without a 5m/1h split.
const usageShapes = `{"speed":"fast","inference_geo":"us","iterations":[
	{"type":"compaction","input_tokens":1000,"output_tokens":100,"cache_read_input_tokens":0,"cache_creation_input_tokens":0},
	{"type":"message","input_tokens":10,"output_tokens":30,"cache_read_input_tokens":0,"cache_creation_input_tokens":500},
	{"type":"advisor_message","model":"claude-opus-5","input_tokens":300,"output_tokens":40,"cache_read_input_tokens":0,"cache_creation_input_tokens":0}]}`

// TestServe_UsageShapes runs one streamed and one whole request through
// llmgw serve to a fake upstream reporting speed, inference_geo and
// iterations, then checks the ledger's report and explain.
func TestServe_UsageShapes(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.OK(
		upstreamtest.WithUsage(upstreamtest.Tokens{Input: 10, Output: 30, CacheWrite: 500}),
		upstreamtest.WithUsageJSON(usageShapes)))
	db := newDB(t)
	key := createKey(t, db, "alice")
	mustRun(t, "--db", db, "account", "add", "--name", "a", "--api-key", "sk-ant-aaaaaaaaaaaaaaaa", "--base-url", up.URL)
	srv := startServe(t, db)

	send := func(stream bool) string {
		t.Helper()
		body := fmt.Sprintf(`{"model":"claude-opus-4-8","max_tokens":100,"speed":"fast","stream":%v,"messages":[{"role":"user","content":"hi"}]}`, stream)
		req, err := http.NewRequestWithContext(context.Background(), "POST", srv.URL+"/v1/messages", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("x-api-key", key)
		req.Header.Set("anthropic-version", "2023-06-01")
		req.Header.Set("anthropic-beta", "fast-mode-2026-02-01")
		req.Header.Set("content-type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if _, err := io.Copy(io.Discard, res.Body); err != nil || res.StatusCode != 200 {
			t.Fatalf("stream=%v: status %d, %v", stream, res.StatusCode, err)
		}
		return res.Header.Get("x-request-id")
	}
	streamed, whole := send(true), send(false)
	if err := srv.stopAndWait(t); err != nil {
		t.Fatal(err)
	}

	// Per request, USD × 1e6: the compaction and the message at Opus 4.8's
	// fast rates (2 × $5 / $25, 5-minute writes 2 × $6.25), the advisor at
	// Opus 5's standard $5 / $25; the top level is not billed again.
	perRequest := 2*(1000*5+100*25) + 2*(10*5+30*25+500*6.25) + (300*5 + 40*25)
	rep, stderr := reportJSONOf(t, "--db", db, "usage", "report", "--since", "1h", "--by", "model")
	if strings.Contains(stderr, "no price") {
		t.Errorf("stderr = %q, want every part priced", stderr)
	}
	tot := rep.Total
	if want := 2 * perRequest / 1e6; math.Abs(tot.CostUSD-want) > 1e-12 {
		t.Errorf("report cost = %v, want %v", tot.CostUSD, want)
	}
	if tot.Requests != 2 || tot.InputTokens != 2*1310 || tot.OutputTokens != 2*170 || tot.CacheWriteTokens != 1000 || tot.CacheWrite5mToken != 1000 {
		t.Errorf("report total = %+v, want the iterations' tokens twice", tot)
	}
	// The key's spend, summed from the log for its limits, is the same.
	mustRun(t, "--db", db, "key", "edit", "alice", "--limit", "usd=100/day")
	show, _ := mustRun(t, "--db", db, "key", "show", "alice", "--json")
	var k struct {
		Limits []struct {
			Used float64 `json:"used"`
		} `json:"limits"`
	}
	if err := json.Unmarshal([]byte(show), &k); err != nil || len(k.Limits) != 1 {
		t.Fatalf("key show --json: %v\n%s", err, show)
	}
	if want := 2 * perRequest / 1e6; math.Abs(k.Limits[0].Used-want) > 1e-12 {
		t.Errorf("key's usd used = %v, want %v (the report's cost)", k.Limits[0].Used, want)
	}

	for _, id := range []string{streamed, whole} {
		stdout, _ := mustRun(t, "--db", db, "usage", "explain", "--json", id)
		var got explainJSON
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatal(err)
		}
		want := []iterJSON{
			{Type: "compaction", InputTokens: 1000, OutputTokens: 100},
			{Type: "message", InputTokens: 10, OutputTokens: 30, CacheWriteTokens: 500},
			{Type: "advisor_message", Model: "claude-opus-5", InputTokens: 300, OutputTokens: 40},
		}
		if got.Speed != "fast" || got.InferenceGeo != "us" || !reflect.DeepEqual(got.Iterations, want) {
			t.Errorf("explain %s: speed %q, geo %q, iterations %+v", id, got.Speed, got.InferenceGeo, got.Iterations)
		}
	}
	text, _ := mustRun(t, "--db", db, "usage", "explain", streamed)
	for _, s := range []string{"speed fast, inference geo us", "3. advisor_message on claude-opus-5: input 300, output 40", "1. compaction on claude-opus-4-8"} {
		if !strings.Contains(text, s) {
			t.Errorf("explain text lacks %q:\n%s", s, text)
		}
	}
}

//go:build load

// The load run: `make load` (or go test -tags load -run TestLoad -v ./cli/).
// It drives llmgw serve with many concurrent streaming clients against the
// fake upstream, next to the same load sent straight to the fake, and
// reports throughput and latency as ratios against that baseline measured in
// the same run. Settings come from the environment: LLMGW_LOAD_CLIENTS
// (default 64), LLMGW_LOAD_SECONDS (default 10), LLMGW_LOAD_STREAM (default
// true). Traffic stays on 127.0.0.1 and the run stops by itself.
package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// loadResult is what one phase measured.
type loadResult struct {
	requests int
	errors   int
	elapsed  time.Duration
	lat      []time.Duration
}

func (r loadResult) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, int(float64(len(r.lat))*p))]
}

func (r loadResult) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// drive runs clients in a loop against url for d and collects latencies.
func drive(url, key string, clients int, d time.Duration, stream bool) loadResult {
	body := `{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"Say something short."}]`
	if stream {
		body += `,"stream":true`
	}
	body += "}"
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var res loadResult
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var n, errs int
			for ctx.Err() == nil {
				t0 := time.Now()
				req, _ := http.NewRequest("POST", url+"/v1/messages", strings.NewReader(body))
				req.Header.Set("x-api-key", key)
				req.Header.Set("anthropic-version", "2023-06-01")
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				n++
				if err != nil {
					errs++
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.requests += n
			res.errors += errs
			res.lat = append(res.lat, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	slices.Sort(res.lat)
	return res
}

func TestLoad(t *testing.T) {
	clients := envInt("LLMGW_LOAD_CLIENTS", 64)
	d := time.Duration(envInt("LLMGW_LOAD_SECONDS", 10)) * time.Second
	stream := os.Getenv("LLMGW_LOAD_STREAM") != "false"

	up := upstreamtest.NewServer(t)
	db := newDB(t)
	for _, name := range []string{"a", "b"} {
		mustRun(t, "--db", db, "account", "add", "--name", name, "--api-key", "sk-ant-"+strings.Repeat(name, 16), "--base-url", up.URL)
	}
	key := createKey(t, db, "load")
	srv := startServe(t, db) // logs one line per request, as in production

	direct := drive(up.URL, "sk-ant-aaaaaaaaaaaaaaaa", clients, d, stream)
	sentBefore := up.SentUsage()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapInuse
	gw := drive(srv.URL, key, clients, d, stream)
	runtime.ReadMemStats(&ms)
	heapPeakish := ms.HeapInuse
	if err := srv.stopAndWait(t); err != nil {
		t.Fatal(err)
	}

	t.Logf("load: %d clients, %v per phase, stream=%v", clients, d, stream)
	for _, p := range []struct {
		name string
		r    loadResult
	}{{"direct", direct}, {"llmgw", gw}} {
		t.Logf("%-7s %7d req  %8.0f req/s  p50 %8v  p95 %8v  p99 %8v  errors %d",
			p.name, p.r.requests, p.r.rps(), p.r.pct(0.50), p.r.pct(0.95), p.r.pct(0.99), p.r.errors)
	}
	t.Logf("ratios llmgw/direct: throughput %.2f, p50 %.2f, p95 %.2f",
		gw.rps()/direct.rps(), float64(gw.pct(0.5))/float64(direct.pct(0.5)), float64(gw.pct(0.95))/float64(direct.pct(0.95)))
	t.Logf("heap in use (test process, server inside): %d MiB before, %d MiB at the end of the llmgw phase",
		heapBefore>>20, heapPeakish>>20)

	if gw.errors != 0 {
		t.Errorf("%d requests through llmgw failed", gw.errors)
	}
	// Accounting stays exact under load.
	sent := up.SentUsage()
	out, _ := mustRun(t, "--db", db, "usage", "report", "--since", "1h", "--format", "json")
	var rep struct {
		Total struct {
			Requests int64 `json:"requests"`
			Input    int64 `json:"input_tokens"`
			Output   int64 `json:"output_tokens"`
		} `json:"total"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Total.Input != sent.Input-sentBefore.Input || rep.Total.Output != sent.Output-sentBefore.Output {
		t.Errorf("usage report %+v, upstream sent input %d output %d through llmgw",
			rep.Total, sent.Input-sentBefore.Input, sent.Output-sentBefore.Output)
	}
}

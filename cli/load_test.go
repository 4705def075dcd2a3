//go:build load

// The load run: `make load` (or go test -tags load -run '^TestLoad$' -v ./cli/).
//
// Three systems answer the same clients in the same run, one after the
// other, for each mode: the fake upstream reached directly, a bare
// httputil.ReverseProxy (cli/testdata/bareproxy) and llmgw serve. llmgw and
// the bare proxy run as their own processes, built like a release, so that
// their CPU time and resident memory come from /proc; the fake upstream and
// the clients stay in the test process. Every figure is then a ratio
// measured side by side: llmgw / bare proxy, and both / direct.
//
// A mode is a client dialect (Anthropic pass-through, OpenAI Chat, OpenAI
// Responses, Gemini) asking for JSON or a stream. For a converted dialect the
// bare proxy and the direct phase get the Anthropic Messages request that
// llmgw would send: the fake only speaks Anthropic, and that is the work a
// proxy without conversion does.
//
// Settings come from the environment: LLMGW_LOAD_CLIENTS (default 50),
// LLMGW_LOAD_SECONDS per phase (default 3), LLMGW_LOAD_MODES (default all:
// a comma-separated list of mode names such as chat-stream, dialects such as
// gemini, or json / stream). The targets of issue 10 are printed as PASS or
// MISS lines and never fail the run; errors and lost usage rows do. Traffic
// stays on 127.0.0.1 and every loop stops by itself.
package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/llmgw/llmgw/proxy/upstreamtest"
	"github.com/llmgw/llmgw/store/storetest"
)

const (
	// loadWarmup is run before each measured window and left out of its
	// figures: connections are dialled and heaps grown by then.
	loadWarmup = 500 * time.Millisecond
	// loadRequestTimeout bounds one request of the 50-client phases.
	loadRequestTimeout = time.Minute
	// loadMaxPerClient bounds the requests one client sends in a phase.
	loadMaxPerClient = 1_000_000
	// loadAccountKey is the (obviously fake) upstream key of the account
	// that llmgw and the bare proxy both use.
	loadAccountKey = "sk-ant-load-FAKE-00000000000000000000"
	// loadBareKey is the client key the bare proxy accepts.
	loadBareKey = "sk-bare-load-FAKE-0000000000000000"
)

// The targets, on the same run.
const (
	targetPostgresRPS = 0.95 // llmgw on PostgreSQL: req/s ≥ 0.95× on SQLite
	targetPolicyRPS   = 0.95 // a key with limits and an allowlist: req/s ≥ 0.95× an unlimited key's
	targetPassRPS     = 0.8  // Anthropic pass-through: llmgw req/s ≥ 0.8× the bare proxy's
	targetPassCPU     = 1.4  // and CPU per request ≤ 1.4× the bare proxy's
	targetMetricsRPS  = 0.95 // pass-through with metrics on and scraped: req/s ≥ 0.95× with metrics off
	targetConvRPS     = 0.5  // converted dialects: llmgw req/s ≥ 0.5× the bare proxy's
	targetRSS50       = 30 << 20
	targetRSSClients  = 50
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// The conversation every mode sends: a system prompt and three turns.
const (
	loadSystem = "You are a concise assistant. Answer in one or two sentences."
	loadUser1  = "What is the capital of France?"
	loadAsst1  = "The capital of France is Paris."
	loadUser2  = "Name one famous museum there and say what it is known for."
)

// loadRequest is one request a load client sends, again and again.
type loadRequest struct {
	path string
	body string
	auth string // where the key goes: "bearer" for Authorization, else a header name
	done string // a whole answer contains it
}

// loadMode is one dialect, JSON or streamed.
type loadMode struct {
	name    string // e.g. "chat-stream"
	dialect string // "anthropic", "chat", "responses" or "gemini"
	stream  bool
	gw      loadRequest // what this dialect's client sends llmgw
	plain   loadRequest // the Anthropic request: what the bare proxy and the fake get
}

func (m loadMode) converted() bool { return m.dialect != "anthropic" }

func anthropicRequest(stream bool) loadRequest {
	q := loadRequest{path: "/v1/messages", auth: "x-api-key", done: `"stop_reason":"end_turn"`}
	q.body = `{"model":"claude-sonnet-4-5","max_tokens":512,"system":"` + loadSystem + `","messages":[` +
		`{"role":"user","content":"` + loadUser1 + `"},{"role":"assistant","content":"` + loadAsst1 + `"},` +
		`{"role":"user","content":"` + loadUser2 + `"}]`
	if stream {
		q.body += `,"stream":true`
		q.done = "event: message_stop"
	}
	q.body += "}"
	return q
}

func chatRequest(stream bool) loadRequest {
	q := loadRequest{path: "/v1/chat/completions", auth: "bearer", done: `"finish_reason":"stop"`}
	q.body = `{"model":"claude-sonnet-4-5","max_tokens":512,"messages":[{"role":"system","content":"` + loadSystem + `"},` +
		`{"role":"user","content":"` + loadUser1 + `"},{"role":"assistant","content":"` + loadAsst1 + `"},` +
		`{"role":"user","content":"` + loadUser2 + `"}]`
	if stream {
		q.body += `,"stream":true,"stream_options":{"include_usage":true}`
		q.done = "data: [DONE]"
	}
	q.body += "}"
	return q
}

func responsesRequest(stream bool) loadRequest {
	q := loadRequest{path: "/v1/responses", auth: "bearer", done: `"status":"completed"`}
	q.body = `{"model":"claude-sonnet-4-5","max_output_tokens":512,"instructions":"` + loadSystem + `","input":[` +
		`{"role":"user","content":"` + loadUser1 + `"},{"role":"assistant","content":"` + loadAsst1 + `"},` +
		`{"role":"user","content":"` + loadUser2 + `"}]`
	if stream {
		q.body += `,"stream":true`
		q.done = "event: response.completed"
	}
	q.body += "}"
	return q
}

func geminiRequest(stream bool) loadRequest {
	q := loadRequest{path: "/v1beta/models/claude-sonnet-4-5:generateContent", auth: "x-goog-api-key", done: `"finishReason":"STOP"`}
	if stream {
		q.path = "/v1beta/models/claude-sonnet-4-5:streamGenerateContent?alt=sse"
	}
	q.body = `{"systemInstruction":{"parts":[{"text":"` + loadSystem + `"}]},"contents":[` +
		`{"role":"user","parts":[{"text":"` + loadUser1 + `"}]},{"role":"model","parts":[{"text":"` + loadAsst1 + `"}]},` +
		`{"role":"user","parts":[{"text":"` + loadUser2 + `"}]}],"generationConfig":{"maxOutputTokens":512}}`
	return q
}

// loadModes returns every mode, in the order they run.
func loadModes() []loadMode {
	var modes []loadMode
	for _, d := range []struct {
		name string
		req  func(bool) loadRequest
	}{{"anthropic", anthropicRequest}, {"chat", chatRequest}, {"responses", responsesRequest}, {"gemini", geminiRequest}} {
		for _, stream := range []bool{false, true} {
			name := d.name + "-json"
			if stream {
				name = d.name + "-stream"
			}
			modes = append(modes, loadMode{name: name, dialect: d.name, stream: stream, gw: d.req(stream), plain: anthropicRequest(stream)})
		}
	}
	return modes
}

// selectModes picks the modes LLMGW_LOAD_MODES names: a mode's name, its
// dialect, or "json" / "stream"; empty or "all" is every mode.
func selectModes(t *testing.T, spec string) []loadMode {
	t.Helper()
	all := loadModes()
	if spec == "" || spec == "all" {
		return all
	}
	var names []string
	for _, m := range all {
		names = append(names, m.name)
	}
	want := strings.Split(spec, ",")
	for i, w := range want {
		want[i] = strings.TrimSpace(w)
		known := slices.ContainsFunc(all, func(m loadMode) bool {
			return want[i] == m.name || want[i] == m.dialect || want[i] == "json" || want[i] == "stream"
		})
		if !known {
			t.Fatalf("LLMGW_LOAD_MODES: unknown mode %q; modes: %s, a dialect, json, stream or all", want[i], strings.Join(names, ", "))
		}
	}
	return slices.DeleteFunc(all, func(m loadMode) bool {
		kind := "json"
		if m.stream {
			kind = "stream"
		}
		return !slices.ContainsFunc(want, func(w string) bool { return w == m.name || w == m.dialect || w == kind })
	})
}

// send sends q to base with key and reads the whole answer into buf; it
// fails unless the status is 200 and the answer is whole.
func (q loadRequest) send(client *http.Client, base, key string, buf *bytes.Buffer) error {
	ctx, cancel := context.WithTimeout(context.Background(), loadRequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+q.path, strings.NewReader(q.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Anthropic-Version", "2023-06-01") // the fake wants it; llmgw's converted routes ignore it
	if q.auth == "bearer" {
		req.Header.Set("Authorization", "Bearer "+key)
	} else {
		req.Header.Set(q.auth, key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	buf.Reset()
	_, err = buf.ReadFrom(resp.Body)
	switch {
	case err != nil:
		return fmt.Errorf("read the answer: %w", err)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("status %d: %.300s", resp.StatusCode, buf.Bytes())
	case !bytes.Contains(buf.Bytes(), []byte(q.done)):
		return fmt.Errorf("answer without %s: %.300s", q.done, buf.Bytes())
	}
	return nil
}

// loadResult is what one phase measured.
type loadResult struct {
	completed int    // whole answers in the phase, warm-up and drain included
	errors    int    // failed requests in the phase
	firstErr  string // the first failure, if any

	n      int             // whole answers within the measured window
	window time.Duration   // its length
	lat    []time.Duration // their latencies, sorted

	// Of the system's own process, when it has one.
	proc   bool
	cpu    time.Duration // CPU time spent in the window
	rssEnd int64         // VmRSS at the window's end
	// dbCPU is the CPU time the database server's own processes spent per
	// request (PostgreSQL phases; over the whole drive, warm-up included).
	dbCPU time.Duration
	anon  int64 // RssAnon at the window's end (heap, stacks, runtime)
	file  int64 // RssFile at the window's end (the binary's pages)
	peak  int64 // the process's peak resident memory so far
}

func (r loadResult) rps() float64 { return float64(r.n) / r.window.Seconds() }

func (r loadResult) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, int(float64(len(r.lat))*p))]
}

// cpuPerReq is the process's CPU time per whole answer in the window.
func (r loadResult) cpuPerReq() time.Duration {
	if r.n == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.n)
}

// drive runs clients that send q to base in a loop: loadWarmup first, then
// the measured window of d, then it waits for the requests in flight. The
// window's figures are the answers completed within it; p, if not nil, is
// the process whose CPU time and memory are read at the window's ends (and
// every 50 ms in between, for the peak).
func drive(t *testing.T, base, key string, q loadRequest, clients int, d time.Duration, p *loadProc) loadResult {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: clients, Proxy: nil}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	type completion struct {
		end time.Time
		lat time.Duration
	}
	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		mu       sync.Mutex
		done     = make([][]completion, clients)
		errs     int
		firstErr string
	)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			for range loadMaxPerClient {
				if stop.Load() {
					return
				}
				t0 := time.Now()
				if err := q.send(client, base, key, &buf); err != nil {
					mu.Lock()
					if errs++; firstErr == "" {
						firstErr = err.Error()
					}
					mu.Unlock()
					continue
				}
				end := time.Now()
				done[i] = append(done[i], completion{end, end.Sub(t0)})
			}
		}()
	}

	var res loadResult
	time.Sleep(loadWarmup) // the clients run meanwhile; this is the warm-up's length
	var before procStat
	sampled := make(chan int64, 1)
	stopSampling := make(chan struct{})
	if p != nil {
		before = p.stat(t)
		go func() {
			var peak int64
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-tick.C:
					if st, err := readProcStat(p.cmd.Process.Pid); err == nil {
						peak = max(peak, st.rss)
					}
				case <-stopSampling:
					sampled <- peak
					return
				}
			}
		}()
	}
	t0 := time.Now()
	time.Sleep(d) // the measured window
	t1 := time.Now()
	if p != nil {
		after := p.stat(t)
		close(stopSampling)
		res.proc = true
		res.cpu = after.cpu - before.cpu
		res.rssEnd, res.anon, res.file = after.rss, after.anon, after.file
		res.peak = max(after.hwm, <-sampled)
	}
	stop.Store(true)
	wg.Wait()

	res.window = t1.Sub(t0)
	res.errors, res.firstErr = errs, firstErr
	for _, cs := range done {
		res.completed += len(cs)
		for _, c := range cs {
			if !c.end.Before(t0) && !c.end.After(t1) {
				res.lat = append(res.lat, c.lat)
			}
		}
	}
	res.n = len(res.lat)
	slices.Sort(res.lat)
	return res
}

// modeResult is one mode's three phases.
type modeResult struct {
	mode                loadMode
	direct, bare, llmgw loadResult
	// policy is llmgw driven with a key carrying three limits and a model
	// allowlist, between two runs with a key without (llmgw, llmgw2), for
	// the pass-through modes: what the policy checks cost.
	policy, llmgw2 loadResult
	// postgres is llmgw on PostgreSQL instead of SQLite, for the
	// pass-through modes, after the SQLite phases.
	postgres loadResult
	// metrics and metrics2 are a second llmgw serve, with metrics on
	// (server.metrics_token set) and /metrics scraped every second, taking
	// turns with llmgw and llmgw2 (metrics off), for the pass-through
	// modes: what collecting metrics costs.
	metrics, metrics2 loadResult
	scrapes           int   // successful scrapes of the second llmgw
	rows              int64 // usage rows llmgw wrote
}

func TestLoad(t *testing.T) {
	clients := envInt("LLMGW_LOAD_CLIENTS", targetRSSClients)
	d := time.Duration(envInt("LLMGW_LOAD_SECONDS", 3)) * time.Second
	modes := selectModes(t, os.Getenv("LLMGW_LOAD_MODES"))
	llmgwBin := buildLLMGW(t)
	bareBin := buildBareProxy(t)
	t.Logf("load: %d clients, %v measured per phase after %v of warm-up, modes %d", clients, d, loadWarmup, len(modes))

	var results []modeResult
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			// Everything is new for each mode, so that its figures do not
			// depend on which modes ran before it.
			up := upstreamtest.NewServer(t)
			setup := newLLMGWSetup(t, llmgwBin, up.URL, loadAccountKey)
			bare := startBareProxy(t, bareBin, up.URL, loadBareKey, loadAccountKey)
			gw := setup.serve(t)

			r := modeResult{mode: m}
			r.direct = drive(t, up.URL, loadAccountKey, m.plain, clients, d, nil)
			r.bare = drive(t, bare.URL, loadBareKey, m.plain, clients, d, bare)
			bare.stop(t)
			sentBefore := up.SentUsage()
			if m.converted() {
				r.llmgw = drive(t, gw.URL, setup.key, m.gw, clients, d, gw)
			} else {
				// A second llmgw, metrics on and scraped every second
				// throughout, takes turns with the first (metrics off):
				// off, on, policy, off, on, so that drift in the machine's
				// load moves both sides alike.
				mgw := setup.serveMetrics(t)
				stopScraping := scrapeEverySecond(t, mgw.URL+"/metrics", loadMetricsToken)
				r.llmgw = drive(t, gw.URL, setup.key, m.gw, clients, d, gw)
				r.metrics = drive(t, mgw.URL, setup.key, m.gw, clients, d, mgw)
				r.policy = drive(t, gw.URL, setup.policyKey, m.gw, clients, d, gw)
				r.llmgw2 = drive(t, gw.URL, setup.key, m.gw, clients, d, gw)
				r.metrics2 = drive(t, mgw.URL, setup.key, m.gw, clients, d, mgw)
				r.scrapes = stopScraping()
				mgw.stop(t)
				if mgw.err != nil {
					t.Errorf("llmgw serve (metrics on) exited with %v:\n%.2000s", mgw.err, mgw.out.String())
				}
			}
			gw.stop(t)
			if !m.converted() {
				t.Run("postgres", func(t *testing.T) { r.postgres = drivePostgres(t, llmgwBin, up.URL, m.gw, clients, d) })
			}
			if gw.err != nil {
				t.Errorf("llmgw serve exited with %v:\n%.2000s", gw.err, gw.out.String())
			}
			sent := up.SentUsage()

			phases := []struct {
				name string
				r    loadResult
			}{{"direct", r.direct}, {"bare", r.bare}, {"llmgw", r.llmgw}}
			if r.policy.proc {
				phases = append(phases, struct {
					name string
					r    loadResult
				}{"policy", r.policy}, struct {
					name string
					r    loadResult
				}{"llmgw2", r.llmgw2}, struct {
					name string
					r    loadResult
				}{"metric", r.metrics}, struct {
					name string
					r    loadResult
				}{"metri2", r.metrics2})
			}
			for _, p := range phases {
				t.Logf("%-6s %6.0f req/s  p50 %7v  p95 %7v  cpu/req %7v  rss %5.1f MB (anon %4.1f file %4.1f) peak %5.1f MB  (%d in the window, %d in all, %d errors)",
					p.name, p.r.rps(), p.r.pct(0.5).Round(10*time.Microsecond), p.r.pct(0.95).Round(10*time.Microsecond),
					p.r.cpuPerReq().Round(time.Microsecond), mb(p.r.rssEnd), mb(p.r.anon), mb(p.r.file), mb(p.r.peak), p.r.n, p.r.completed, p.r.errors)
				if p.r.errors != 0 {
					t.Errorf("%s: %d requests failed; the first: %s", p.name, p.r.errors, p.r.firstErr)
				}
				if p.r.n == 0 {
					t.Errorf("%s: no request completed in the window", p.name)
				}
			}

			// Accounting stays exact under load: one row per answer, and
			// the tokens the fake sent through llmgw.
			u := setup.usage(t)
			r.rows = u.Requests
			completed := r.llmgw.completed + r.policy.completed + r.llmgw2.completed + r.metrics.completed + r.metrics2.completed
			if u.Requests != int64(completed) || u.Errors != 0 {
				t.Errorf("usage rows: %d (%d errors), want %d: one per request completed through llmgw", u.Requests, u.Errors, completed)
			}
			if in, out := sent.Input-sentBefore.Input, sent.Output-sentBefore.Output; u.Input != in || u.Output != out {
				t.Errorf("usage tokens: input %d output %d, the fake sent input %d output %d through llmgw", u.Input, u.Output, in, out)
			}
			results = append(results, r)
		})
	}
	if len(results) > 0 {
		fmt.Print(loadReport(results, clients, d))
	}
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func passMiss(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// loadReport is the table of figures (Markdown, for the README) and one
// PASS or MISS line per target.
func loadReport(results []modeResult, clients int, d time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nLoad run: %d clients, %v per phase; direct = the fake upstream, bare = httputil.ReverseProxy, llmgw = llmgw serve\n\n", clients, d)
	// tw writes to a strings.Builder, which cannot fail.
	tw := tabwriter.NewWriter(&b, 0, 0, 1, ' ', 0)
	_, _ = fmt.Fprintln(tw, "| mode\t| req/s direct · bare · llmgw\t| llmgw/bare\t| bare/direct\t| llmgw/direct\t| p50 bare · llmgw\t| p95 bare · llmgw\t| CPU/req bare · llmgw\t| CPU llmgw/bare\t| RSS peak bare · llmgw\t|")
	_, _ = fmt.Fprintln(tw, "|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|")
	for _, r := range results {
		_, _ = fmt.Fprintf(tw, "| %s\t| %.0f · %.0f · %.0f\t| %.2f\t| %.2f\t| %.2f\t| %v · %v\t| %v · %v\t| %v · %v\t| %.2f\t| %.1f · %.1f MB\t|\n",
			r.mode.name, r.direct.rps(), r.bare.rps(), r.llmgw.rps(),
			ratio(r.llmgw.rps(), r.bare.rps()), ratio(r.bare.rps(), r.direct.rps()), ratio(r.llmgw.rps(), r.direct.rps()),
			r.bare.pct(0.5).Round(100*time.Microsecond), r.llmgw.pct(0.5).Round(100*time.Microsecond),
			r.bare.pct(0.95).Round(100*time.Microsecond), r.llmgw.pct(0.95).Round(100*time.Microsecond),
			r.bare.cpuPerReq().Round(time.Microsecond), r.llmgw.cpuPerReq().Round(time.Microsecond),
			ratio(float64(r.llmgw.cpuPerReq()), float64(r.bare.cpuPerReq())),
			mb(r.bare.peak), mb(r.llmgw.peak))
	}
	_ = tw.Flush()
	b.WriteString("\n")

	var streamPeak int64
	var streamBare int64
	var streamModes []string
	var rows, completed int64
	for _, r := range results {
		rel := ratio(r.llmgw.rps(), r.bare.rps())
		if r.mode.converted() {
			fmt.Fprintf(&b, "%s %-17s req/s:   llmgw %.0f = %.2f× the bare proxy's %.0f (target ≥ %.2f×)\n",
				passMiss(rel >= targetConvRPS), r.mode.name, r.llmgw.rps(), rel, r.bare.rps(), targetConvRPS)
		} else {
			if r.postgres.n > 0 {
				sqlite := (r.llmgw.rps() + r.llmgw2.rps()) / 2
				rel := ratio(r.postgres.rps(), sqlite)
				fmt.Fprintf(&b, "%s %-17s store:   llmgw on PostgreSQL %.0f req/s = %.2f× on SQLite %.0f (PostgreSQL after the SQLite phases; target ≥ %.2f×); CPU/req %v vs %v, and PostgreSQL's own processes %v on the same cores\n",
					passMiss(rel >= targetPostgresRPS), r.mode.name, r.postgres.rps(), rel, sqlite, targetPostgresRPS,
					r.postgres.cpuPerReq().Round(time.Microsecond), r.llmgw.cpuPerReq().Round(time.Microsecond), r.postgres.dbCPU.Round(time.Microsecond))
			}
			if r.policy.n > 0 {
				plain := (r.llmgw.rps() + r.llmgw2.rps()) / 2
				rel := ratio(r.policy.rps(), plain)
				fmt.Fprintf(&b, "%s %-17s policy:  a key with 3 limits and a model allowlist %.0f req/s = %.2f× an unlimited key's %.0f (before and after; target ≥ %.2f×)\n",
					passMiss(rel >= targetPolicyRPS), r.mode.name, r.policy.rps(), rel, plain, targetPolicyRPS)
			}
			if r.metrics.n > 0 {
				off := (r.llmgw.rps() + r.llmgw2.rps()) / 2
				on := (r.metrics.rps() + r.metrics2.rps()) / 2
				rel := ratio(on, off)
				offCPU := (r.llmgw.cpuPerReq() + r.llmgw2.cpuPerReq()) / 2
				onCPU := (r.metrics.cpuPerReq() + r.metrics2.cpuPerReq()) / 2
				fmt.Fprintf(&b, "%s %-17s metrics: on and scraped every second (%d scrapes) %.0f req/s = %.2f× metrics off %.0f (in turns; target ≥ %.2f×); CPU/req %v = %.2f× off's %v\n",
					passMiss(rel >= targetMetricsRPS), r.mode.name, r.scrapes, on, rel, off, targetMetricsRPS,
					onCPU.Round(time.Microsecond), ratio(float64(onCPU), float64(offCPU)), offCPU.Round(time.Microsecond))
			}
			cpu := ratio(float64(r.llmgw.cpuPerReq()), float64(r.bare.cpuPerReq()))
			fmt.Fprintf(&b, "%s %-17s req/s:   llmgw %.0f = %.2f× the bare proxy's %.0f (target ≥ %.2f×)\n",
				passMiss(rel >= targetPassRPS), r.mode.name, r.llmgw.rps(), rel, r.bare.rps(), targetPassRPS)
			fmt.Fprintf(&b, "%s %-17s CPU/req: llmgw %v = %.2f× the bare proxy's %v (target ≤ %.2f×)\n",
				passMiss(cpu <= targetPassCPU), r.mode.name, r.llmgw.cpuPerReq().Round(time.Microsecond), cpu,
				r.bare.cpuPerReq().Round(time.Microsecond), targetPassCPU)
		}
		if r.mode.stream {
			streamPeak = max(streamPeak, r.llmgw.peak)
			streamBare = max(streamBare, r.bare.peak)
			streamModes = append(streamModes, fmt.Sprintf("%s %.1f", r.mode.name, mb(r.llmgw.peak)))
		}
		rows += r.rows
		completed += int64(r.llmgw.completed + r.policy.completed + r.llmgw2.completed + r.metrics.completed + r.metrics2.completed)
	}
	if len(streamModes) > 0 {
		note := ""
		if clients != targetRSSClients {
			note = fmt.Sprintf(" — measured at %d clients, the target is for %d", clients, targetRSSClients)
		}
		fmt.Fprintf(&b, "%s resident memory at %d streaming clients: llmgw peak %.1f MB (%s), the bare proxy %.1f MB (target ≤ %d MB)%s\n",
			passMiss(streamPeak <= targetRSS50), clients, mb(streamPeak), strings.Join(streamModes, ", "), mb(streamBare), targetRSS50>>20, note)
	}
	fmt.Fprintf(&b, "%s usage rows: %d requests completed through llmgw, %d rows (%d lost)\n",
		passMiss(rows == completed), completed, rows, completed-rows)
	return b.String()
}

// drivePostgres runs one phase of llmgw serve on a throwaway PostgreSQL
// (skipped, with the reason, where PostgreSQL is not installed) and checks
// its usage rows.
func drivePostgres(t *testing.T, bin, upstream string, q loadRequest, clients int, d time.Duration) loadResult {
	url := storetest.Postgres(t)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "secret.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LLMGW_SECRET_KEY_FILE", keyFile) // the child processes inherit it (crashEnv)
	setup := newLLMGWSetupOn(t, bin, upstream, loadAccountKey, url)
	gw := setup.serve(t)
	pgBefore := postgresCPU(t)
	res := drive(t, gw.URL, setup.key, q, clients, d, gw)
	if res.completed > 0 {
		res.dbCPU = (postgresCPU(t) - pgBefore) / time.Duration(res.completed)
	}
	gw.stop(t)
	if gw.err != nil {
		t.Errorf("llmgw serve on PostgreSQL exited with %v:\n%.2000s", gw.err, gw.out.String())
	}
	if res.errors != 0 {
		t.Errorf("postgres: %d requests failed; the first: %s", res.errors, res.firstErr)
	}
	if u := setup.usage(t); u.Requests != int64(res.completed) {
		t.Errorf("usage rows on PostgreSQL: %d, want %d", u.Requests, res.completed)
	}
	t.Logf("postgres %6.0f req/s  p50 %7v  p95 %7v  cpu/req %7v  PostgreSQL's own cpu/req %v  (%d in the window, %d in all)",
		res.rps(), res.pct(0.5).Round(10*time.Microsecond), res.pct(0.95).Round(10*time.Microsecond),
		res.cpuPerReq().Round(time.Microsecond), res.dbCPU.Round(time.Microsecond), res.n, res.completed)
	return res
}

// postgresCPU is the CPU time spent so far by every process of the
// postgres user: the test cluster's server processes, which share the
// machine's cores with llmgw and the clients during a PostgreSQL phase.
func postgresCPU(t *testing.T) time.Duration {
	t.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		return 0 // the cluster runs as the test's own user: nothing to tell apart
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var total time.Duration
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil || !bytes.Contains(status, []byte("\nUid:\t"+u.Uid+"\t")) {
			continue // gone meanwhile, or another user's
		}
		if st, err := readProcStat(pid); err == nil {
			total += st.cpu
		}
	}
	return total
}

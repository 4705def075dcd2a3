package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// The benchmarks below time one exchange at a time, from the client's first
// byte to its last. Each reports the same short answer several ways from one
// gateway, so that the ratios come from one run:
//
//	direct       Anthropic request straight to the fake upstream (the floor)
//	passthrough  Anthropic request through the gateway
//	convert      the dialect's request through the gateway
//
// passthrough/direct is the cost of the gateway; convert/passthrough is the
// cost of the dialect's translation.

// nopRecorder drops usage; benchmarks measure the proxy, not the store.
type nopRecorder struct{}

func (nopRecorder) Record(llmgw.Usage)                    {}
func (nopRecorder) RecordState(int64, llmgw.AccountState) {}
func (nopRecorder) RecordWindows(int64, llmgw.Windows)    {}

// benchServers starts the fake Anthropic upstream and a gateway on it (a
// proxy.Server on a real listener on 127.0.0.1, as serve runs it) and
// returns their base URLs. Both stop when b ends.
func benchServers(b *testing.B) (upstream, gateway string) {
	b.Helper()
	up := upstreamtest.NewServer(b, upstreamtest.OK(upstreamtest.Text("A short answer of a few words, split into several deltas.")))
	s := NewServer(Config{Logger: discardLogger()}, nopRecorder{})
	s.SetSnapshot(&llmgw.Snapshot{
		Accounts: []llmgw.Account{account(1, "a", "sk-ant-a", up.URL)},
		Keys:     []llmgw.ClientKey{{ID: 1, Name: "k", Hash: llmgw.HashKey(testKey)}},
	})
	srv := &http.Server{Handler: s}
	ln := listen(b)
	go srv.Serve(ln) //nolint:errcheck // returns ErrServerClosed once the cleanup closes srv
	b.Cleanup(func() {
		srv.Close()
		s.client.CloseIdleConnections()
	})
	return up.URL, "http://" + ln.Addr().String()
}

// benchRequests POSTs body to url+path b.N times, one request at a time,
// with the headers header sets, and reads every answer to the end.
func benchRequests(b *testing.B, url, path string, header func(*http.Request), body string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	b.ReportAllocs()
	for b.Loop() {
		req, err := http.NewRequestWithContext(b.Context(), http.MethodPost, url+path, strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		header(req)
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, err = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}

// benchBaseline starts the servers, runs the direct and passthrough
// sub-benchmarks, and returns the gateway's URL for the dialect's own.
func benchBaseline(b *testing.B, stream bool) (gateway string) {
	up, gw := benchServers(b)
	body := `{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"Say something short."}]`
	if stream {
		body += `,"stream":true`
	}
	body += "}"
	b.Run("direct", func(b *testing.B) { benchRequests(b, up, "/v1/messages", apiKey("sk-ant-a"), body) })
	b.Run("passthrough", func(b *testing.B) { benchRequests(b, gw, "/v1/messages", apiKey(testKey), body) })
	return gw
}

// benchConversion runs the baselines and then the convert sub-benchmark: the
// same exchange as a dialect's request (body with header, POSTed to path).
// stream says whether body asks for a stream, so the baselines match it.
func benchConversion(b *testing.B, stream bool, path string, header func(*http.Request), body string) {
	gw := benchBaseline(b, stream)
	b.Run("convert", func(b *testing.B) { benchRequests(b, gw, path, header, body) })
}

// apiKey authenticates an Anthropic request with key.
func apiKey(key string) func(*http.Request) {
	return func(r *http.Request) {
		r.Header.Set("x-api-key", key)
		r.Header.Set("anthropic-version", "2023-06-01")
	}
}

// bearer authenticates an OpenAI request with key.
func bearer(key string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("authorization", "Bearer "+key) }
}

// BenchmarkPassthrough_JSON is one non-streaming Anthropic request through
// the gateway, next to the same request straight to the fake upstream.
func BenchmarkPassthrough_JSON(b *testing.B) { benchBaseline(b, false) }

// BenchmarkPassthrough_Stream is one streaming request, likewise.
func BenchmarkPassthrough_Stream(b *testing.B) { benchBaseline(b, true) }

// BenchmarkBodyMemory reports, per dialect, the gateway's peak heap while it
// serves one large request, as a multiple of the body's size (peak-x). The
// upstream discards the body, so only the gateway's copies count. It is
// what convertedBodyFactor is set from.
func BenchmarkBodyMemory(b *testing.B) {
	const answer = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n" +
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, answer)
	}))
	b.Cleanup(up.Close)
	s := NewServer(Config{Logger: discardLogger(), MaxBodyMemory: 1 << 30}, nopRecorder{})
	s.SetSnapshot(&llmgw.Snapshot{
		Accounts: []llmgw.Account{account(1, "a", "sk-ant-a", up.URL)},
		Keys:     []llmgw.ClientKey{{ID: 1, Name: "k", Hash: llmgw.HashKey(testKey)}},
	})
	gw := httptest.NewServer(s)
	b.Cleanup(func() { gw.Close(); s.client.CloseIdleConnections() })

	text := strings.Repeat("abcdefghij ", 8<<20/11)
	for _, tc := range []struct{ name, path, body string }{
		{"anthropic", "/v1/messages", `{"model":"m","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"` + text + `"}]}`},
		{"chat", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"` + text + `"}]}`},
		{"responses", "/v1/responses", `{"model":"m","input":"` + text + `"}`},
		{"gemini", "/v1beta/models/m:generateContent", `{"contents":[{"role":"user","parts":[{"text":"` + text + `"}]}]}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			worst := 0.0
			for b.Loop() {
				runtime.GC()
				var base runtime.MemStats
				runtime.ReadMemStats(&base)
				var peak atomic.Uint64
				stop, sampled := make(chan struct{}), make(chan struct{})
				go func() {
					defer close(sampled)
					var m runtime.MemStats
					for {
						runtime.ReadMemStats(&m)
						peak.Store(max(peak.Load(), m.HeapAlloc))
						select {
						case <-stop:
							return
						case <-time.After(time.Millisecond):
						}
					}
				}()
				req, _ := http.NewRequest(http.MethodPost, gw.URL+tc.path, strings.NewReader(tc.body))
				req.Header.Set("X-Api-Key", testKey)
				req.Header.Set("Authorization", "Bearer "+testKey)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				close(stop)
				<-sampled
				if res.StatusCode != http.StatusOK {
					b.Fatalf("status %d", res.StatusCode)
				}
				worst = max(worst, float64(peak.Load()-min(peak.Load(), base.HeapAlloc))/float64(len(tc.body)))
			}
			b.ReportMetric(worst, "peak-x")
		})
	}
}

// replay is an upstream that never leaves the process: it answers every
// request with the same bytes, so that a profile of the gateway holds the
// gateway alone (BenchmarkGateway).
type replay struct{ json, stream string }

func (rt replay) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	res := &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Request: r, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	if strings.Contains(string(body), `"stream":true`) {
		res.Header.Set("Content-Type", "text/event-stream")
		res.Body = io.NopCloser(strings.NewReader(rt.stream))
	} else {
		res.Header.Set("Content-Type", "application/json")
		res.Body = io.NopCloser(strings.NewReader(rt.json))
	}
	return res, nil
}

// flushRecorder is a ResponseWriter that keeps nothing.
type flushRecorder struct {
	h      http.Header
	status int
	n      int
}

func (w *flushRecorder) Header() http.Header         { return w.h }
func (w *flushRecorder) WriteHeader(code int)        { w.status = code }
func (w *flushRecorder) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
func (w *flushRecorder) Flush()                      {}

// BenchmarkGateway is the gateway's own work for one request, in process:
// the handler called directly, the upstream a replay of the fake's answer.
// It is the benchmark to profile (-cpuprofile, -memprofile), as neither the
// fake nor the network is in it.
// The "metrics" variant is "affinity" with Metrics on: what collecting them
// costs a request.
func BenchmarkGateway(b *testing.B) {
	for _, v := range []struct {
		name string
		cfg  Config
	}{{"affinity", Config{}}, {"no-affinity", Config{NoAffinity: true}}, {"metrics", Config{Metrics: NewMetrics()}}} {
		b.Run(v.name, func(b *testing.B) { benchmarkGateway(b, v.cfg) })
	}
}

func benchmarkGateway(b *testing.B, cfg Config) {
	json, stream := replayAnswers(b)
	cfg.Logger, cfg.Transport = discardLogger(), replay{json: json, stream: stream}
	s := NewServer(cfg, nopRecorder{})
	s.SetSnapshot(&llmgw.Snapshot{
		Accounts: []llmgw.Account{account(1, "a", "sk-ant-a", "http://upstream.invalid")},
		Keys:     []llmgw.ClientKey{{ID: 1, Name: "k", Hash: llmgw.HashKey(testKey)}},
	})
	const conv = `"messages":[{"role":"user","content":"What is the capital of France?"},{"role":"assistant","content":"Paris."},{"role":"user","content":"Name one museum there."}]`
	for _, tc := range []struct{ name, path, body string }{
		{"anthropic-json", "/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":512,` + conv + `}`},
		{"anthropic-stream", "/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":512,"stream":true,` + conv + `}`},
		{"chat-json", "/v1/chat/completions", `{"model":"claude-sonnet-4-5","max_tokens":512,` + conv + `}`},
		{"chat-stream", "/v1/chat/completions", `{"model":"claude-sonnet-4-5","max_tokens":512,"stream":true,` + conv + `}`},
		{"responses-json", "/v1/responses", `{"model":"claude-sonnet-4-5","input":"What is the capital of France?"}`},
		{"gemini-json", "/v1beta/models/claude-sonnet-4-5:generateContent", `{"contents":[{"role":"user","parts":[{"text":"What is the capital of France?"}]}]}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(tc.body))
				req.Header.Set("X-Api-Key", testKey)
				req.Header.Set("Authorization", "Bearer "+testKey)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Anthropic-Version", "2023-06-01")
				w := &flushRecorder{h: http.Header{}}
				s.ServeHTTP(w, req)
				if w.status != http.StatusOK && w.status != 0 {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}

// replayAnswers asks the fake upstream once for a JSON and a streamed
// answer, the bytes replay serves.
func replayAnswers(b *testing.B) (json, stream string) {
	up := upstreamtest.NewServer(b)
	get := func(body string) string {
		req, _ := http.NewRequest(http.MethodPost, up.URL+"/v1/messages", strings.NewReader(body))
		apiKey("sk-ant-a")(req)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer res.Body.Close()
		raw, err := io.ReadAll(res.Body)
		if err != nil || res.StatusCode != http.StatusOK {
			b.Fatalf("fake upstream: %v, status %d: %s", err, res.StatusCode, raw)
		}
		return string(raw)
	}
	const q = `{"model":"claude-sonnet-4-5","max_tokens":512,"messages":[{"role":"user","content":"Name one museum there."}]`
	return get(q + `}`), get(q + `,"stream":true}`)
}

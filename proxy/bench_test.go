package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// nopRecorder drops usage; benchmarks measure the proxy, not the store.
type nopRecorder struct{}

func (nopRecorder) Record(llmgw.Usage)                    {}
func (nopRecorder) RecordState(int64, llmgw.AccountState) {}
func (nopRecorder) RecordWindows(int64, llmgw.Windows)    {}

// benchPost sends body to url+/v1/messages b.N times and reads every answer
// to the end. Run with the fake upstream as url, it is the baseline the
// gateway's figures are compared with.
func benchPost(b *testing.B, url, key string, stream bool) {
	body := `{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"Say something short."}]`
	if stream {
		body += `,"stream":true`
	}
	body += "}"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		req, _ := http.NewRequest("POST", url+"/v1/messages", strings.NewReader(body))
		req.Header.Set("x-api-key", key)
		req.Header.Set("anthropic-version", "2023-06-01")
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, res.Body); err != nil {
			b.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}

func benchGateway(b *testing.B, stream bool) {
	up := upstreamtest.NewServer(b, upstreamtest.OK(upstreamtest.Text("A short answer of a few words, split into several deltas.")))
	b.Run("direct", func(b *testing.B) { benchPost(b, up.URL, "sk-ant-a", stream) })
	b.Run("gateway", func(b *testing.B) {
		s := NewServer(Config{Logger: discardLogger()}, nopRecorder{})
		s.SetSnapshot(&llmgw.Snapshot{
			Accounts: []llmgw.Account{account(1, "a", "sk-ant-a", up.URL)},
			Keys:     []llmgw.ClientKey{{ID: 1, Name: "k", Hash: llmgw.HashKey(testKey)}},
		})
		srv := &http.Server{Handler: s}
		ln := listen(b)
		go srv.Serve(ln)
		defer srv.Close()
		defer s.client.CloseIdleConnections()
		benchPost(b, "http://"+ln.Addr().String(), testKey, stream)
	})
}

// BenchmarkPassthrough_JSON is one non-streaming request through the
// gateway, next to the same request straight to the fake upstream.
func BenchmarkPassthrough_JSON(b *testing.B) { benchGateway(b, false) }

// BenchmarkPassthrough_Stream is one streaming request, likewise.
func BenchmarkPassthrough_Stream(b *testing.B) { benchGateway(b, true) }

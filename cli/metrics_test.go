package cli

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

const testMetricsToken = "metrics-FAKE-token-0123456789abcdef"

var metricsListenRE = regexp.MustCompile(`"msg":"serving metrics".*?"addr":"([^"]+)"`)

// getMetrics gets url with the Authorization header auth (none if empty)
// and returns the status and, for a 200, the families the Prometheus text
// parser reads from the body.
func getMetrics(t *testing.T, url, auth string) (int, map[string]*dto.MetricFamily) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return res.StatusCode, nil
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return res.StatusCode, fams
}

// sumOf sums the counter or gauge values of the named family's series
// whose labels include want.
func sumOf(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var sum float64
next:
	for _, m := range fams[name].GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
	}
	return sum
}

// TestServe_Metrics scrapes /metrics from llmgw serve, on the main listener
// with the token and on server.metrics_listen without, and checks the
// counters against what the fake upstream was sent and answered.
func TestServe_Metrics(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Text("hi"),
		upstreamtest.WithUsage(upstreamtest.Tokens{Input: 13, Output: 5, CacheRead: 70, CacheWrite: 30, CacheWrite1h: 10})))
	up.Script("sk-ant-"+strings.Repeat("a", 16), upstreamtest.Fail(429))
	db := newDB(t)
	for _, name := range []string{"a", "b"} {
		mustRun(t, "--db", db, "account", "add", "--name", name, "--api-key", "sk-ant-"+strings.Repeat(name, 16), "--base-url", up.URL)
	}
	keys := map[string]string{"alice": createKey(t, db, "alice"), "bob": createKey(t, db, "bob")}
	cfg := writeFile(t, "llmgw.yaml", "server:\n  metrics_token: "+testMetricsToken+"\n  metrics_listen: 127.0.0.1:0\n")
	srv := startServe(t, db, "--config", cfg)
	sideURL := "http://" + srv.stderr.await(t, metricsListenRE)[1] + "/metrics"

	const perKey = 6
	for name, key := range keys {
		for i := range perKey {
			var err error
			if i%2 == 0 {
				_, err = streamOnce(context.Background(), sdk(srv.URL, key), hello())
			} else {
				_, err = sdk(srv.URL, key).Messages.New(context.Background(), hello())
			}
			if err != nil {
				t.Fatalf("request %d of %s: %v", i, name, err)
			}
		}
	}
	sent := up.SentUsage()
	const n = 2 * perKey

	for _, tt := range []struct{ name, auth string }{
		{"no token", ""},
		{"client key", "Bearer " + keys["alice"]},
		{"wrong token", "Bearer " + testMetricsToken + "0"},
	} {
		if status, _ := getMetrics(t, srv.URL+"/metrics", tt.auth); status != http.StatusUnauthorized {
			t.Errorf("%s: GET /metrics status %d, want 401", tt.name, status)
		}
	}

	status, fams := getMetrics(t, srv.URL+"/metrics", "Bearer "+testMetricsToken)
	if status != http.StatusOK {
		t.Fatalf("GET /metrics with the token: status %d, want 200", status)
	}
	_, side := getMetrics(t, sideURL, "")
	if side == nil {
		t.Fatal("GET /metrics on server.metrics_listen: no metrics")
	}
	for _, got := range []struct {
		where string
		fams  map[string]*dto.MetricFamily
	}{{"main", fams}, {"metrics_listen", side}} {
		for _, tt := range []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"llmgw_requests_total", map[string]string{"status": "2xx"}, n},
			{"llmgw_requests_total", map[string]string{"key": "alice", "model": "claude-sonnet-4-5", "dialect": "anthropic"}, perKey},
			{"llmgw_requests_total", map[string]string{"key": "bob"}, perKey},
			{"llmgw_upstream_attempts_total", nil, float64(up.Count())},
			{"llmgw_upstream_attempts_total", map[string]string{"status": "2xx"}, float64(sent.Responses)},
			{"llmgw_failovers_total", map[string]string{"account": "a", "reason": "rate_limited"}, 1},
			{"llmgw_tokens_total", map[string]string{"kind": "input"}, float64(sent.Input)},
			{"llmgw_tokens_total", map[string]string{"kind": "output"}, float64(sent.Output)},
			{"llmgw_tokens_total", map[string]string{"kind": "cache_read"}, float64(sent.CacheRead)},
			{"llmgw_tokens_total", map[string]string{"kind": "cache_write_5m"}, float64(sent.CacheWrite - sent.CacheWrite1h)},
			{"llmgw_tokens_total", map[string]string{"kind": "cache_write_1h"}, float64(sent.CacheWrite1h)},
			{"llmgw_request_duration_seconds", nil, n},
			{"llmgw_ttfb_seconds", nil, n},
			{"llmgw_account_state", map[string]string{"account": "a", "state": "cooling"}, 1},
			{"llmgw_requests_in_flight", nil, 0},
		} {
			if v := sumOf(got.fams, tt.name, tt.labels); v != tt.want {
				t.Errorf("%s: %s%v = %v, want %v", got.where, tt.name, tt.labels, v, tt.want)
			}
		}
		if v := sumOf(got.fams, "llmgw_cost_usd_total", nil); v <= 0 {
			t.Errorf("%s: llmgw_cost_usd_total = %v, want > 0", got.where, v)
		}
		if got.fams["go_goroutines"] == nil || got.fams["llmgw_usage_queue_depth"] == nil {
			t.Errorf("%s: go_goroutines or llmgw_usage_queue_depth missing", got.where)
		}
	}
	if sent.Responses != n || sent.Input == 0 || sent.CacheWrite1h == 0 {
		t.Fatalf("the fake sent %+v: want %d answers with every kind of token", sent, n)
	}
	// The usage writer flushes within a second.
	if err := eventually(func() bool {
		_, f := getMetrics(t, sideURL, "")
		return sumOf(f, "llmgw_usage_rows_written_total", nil) == n
	}); err != nil {
		_, f := getMetrics(t, sideURL, "")
		t.Errorf("llmgw_usage_rows_written_total = %v, want %d", sumOf(f, "llmgw_usage_rows_written_total", nil), n)
	}
}

// TestServe_MetricsOffByDefault: without metrics_token or metrics_listen,
// /metrics is not there, whatever the caller sends.
func TestServe_MetricsOffByDefault(t *testing.T) {
	db := newDB(t)
	key := createKey(t, db, "alice")
	srv := startServe(t, db)
	for i, auth := range []string{"", "Bearer " + key, "Bearer " + testMetricsToken} {
		if status, _ := getMetrics(t, srv.URL+"/metrics", auth); status != http.StatusNotFound {
			t.Errorf("GET /metrics, case %d (none, a client key, a token): status %d, want 404", i, status)
		}
	}
}

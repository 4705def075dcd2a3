package proxy

import (
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/policy"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

const testMetricsToken = "metrics-token-FAKE-0123456789"

// scrapeMetrics gets url with the bearer token (none if empty) and parses
// the answer with the Prometheus text parser. It fails the test unless the
// status is 200.
func scrapeMetrics(t *testing.T, url, token string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200", url, res.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	return fams
}

// metricSum sums the values of the named family's series whose labels
// include want.
func metricSum(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var sum float64
	f := fams[name]
	if f == nil {
		return 0
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

func TestMetrics_RequestsTokensCostFailover(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Text("from b"),
		upstreamtest.WithUsage(upstreamtest.Tokens{Input: 11, Output: 7, CacheRead: 100, CacheWrite: 40, CacheWrite1h: 10})))
	up.Script("sk-ant-a", upstreamtest.Fail(429))
	m := NewMetrics()
	g := newGateway(t, Config{Metrics: m, MetricsToken: testMetricsToken},
		account(1, "a", "sk-ant-a", up.URL), account(2, "b", "sk-ant-b", up.URL))
	c := g.client()
	if _, err := c.Messages.New(ctx(t), userMsg("hi")); err != nil {
		t.Fatal(err)
	}
	p := userMsg("again")
	p.Model = "claude-made-up-9"
	if _, err := c.Messages.New(ctx(t), p); err != nil {
		t.Fatal(err)
	}
	rows := g.rec.wait(t, 2)

	fams := scrapeMetrics(t, g.URL+"/metrics", testMetricsToken)
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"llmgw_requests_total", map[string]string{"dialect": "anthropic", "model": "claude-sonnet-4-5", "account": "b", "key": "alice", "status": "2xx"}, 1},
		{"llmgw_requests_total", map[string]string{"model": "other", "status": "2xx"}, 1},
		{"llmgw_upstream_attempts_total", map[string]string{"account": "a", "status": "4xx"}, 1},
		{"llmgw_upstream_attempts_total", map[string]string{"account": "b", "status": "2xx"}, 2},
		{"llmgw_failovers_total", map[string]string{"account": "a", "reason": "rate_limited"}, 1},
		{"llmgw_tokens_total", map[string]string{"kind": "input", "account": "b", "key": "alice"}, 22},
		{"llmgw_tokens_total", map[string]string{"kind": "output", "model": "claude-sonnet-4-5"}, 7},
		{"llmgw_tokens_total", map[string]string{"kind": "cache_read"}, 200},
		{"llmgw_tokens_total", map[string]string{"kind": "cache_write_5m"}, 60},
		{"llmgw_tokens_total", map[string]string{"kind": "cache_write_1h"}, 20},
		{"llmgw_ttfb_seconds", map[string]string{"account": "b", "dialect": "anthropic"}, 2},
		{"llmgw_request_duration_seconds", map[string]string{"account": "b"}, 2},
		{"llmgw_requests_in_flight", nil, 0},
		{"llmgw_account_state", map[string]string{"account": "a", "state": "cooling"}, 1},
		{"llmgw_account_state", map[string]string{"account": "b", "state": "active"}, 1},
	} {
		if got := metricSum(fams, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if got := metricSum(fams, "llmgw_account_cooldown_seconds", map[string]string{"account": "a"}); got <= 0 {
		t.Errorf("llmgw_account_cooldown_seconds{account=a} = %v, want > 0", got)
	}
	// The cost is the limits' charge of the same rows, nothing recomputed.
	var want float64
	for _, u := range rows {
		want += policy.ChargeOf(g.cfg.Catalog, policy.UsedBy(&u), len(u.Attempts)).USD
	}
	if got := metricSum(fams, "llmgw_cost_usd_total", nil); want == 0 || got < want*0.999999 || got > want*1.000001 {
		t.Errorf("llmgw_cost_usd_total = %v, want %v", got, want)
	}
}

func TestMetrics_Guarded(t *testing.T) {
	up := upstreamtest.NewServer(t)
	for _, tt := range []struct {
		name   string
		cfg    Config
		header string
		want   int
	}{
		{"no token configured", Config{Metrics: NewMetrics()}, "Bearer " + testKey, http.StatusNotFound},
		{"no metrics", Config{MetricsToken: testMetricsToken}, "Bearer " + testMetricsToken, http.StatusNotFound},
		{"missing token", Config{Metrics: NewMetrics(), MetricsToken: testMetricsToken}, "", http.StatusUnauthorized},
		{"client key", Config{Metrics: NewMetrics(), MetricsToken: testMetricsToken}, "Bearer " + testKey, http.StatusUnauthorized},
		{"wrong token", Config{Metrics: NewMetrics(), MetricsToken: testMetricsToken}, "Bearer " + testMetricsToken + "x", http.StatusUnauthorized},
		{"basic scheme", Config{Metrics: NewMetrics(), MetricsToken: testMetricsToken}, "Basic " + testMetricsToken, http.StatusUnauthorized},
		{"token", Config{Metrics: NewMetrics(), MetricsToken: testMetricsToken}, "Bearer " + testMetricsToken, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := newGateway(t, tt.cfg, account(1, "a", "sk-ant-a", up.URL))
			req, err := http.NewRequestWithContext(ctx(t), http.MethodGet, g.URL+"/metrics", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			req.Header.Set("X-Api-Key", testKey) // a client key never opens it
			res, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != tt.want {
				t.Errorf("Status = %d, want %d", res.StatusCode, tt.want)
			}
		})
	}
}

func TestMetrics_LiveGauges(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m := NewMetrics()
	s := NewServer(Config{Metrics: m, Now: func() time.Time { return now }, Logger: discardLogger()}, newRecorder())
	o := llmgw.Account{ID: 1, Name: "sub", Type: llmgw.AccountOAuth, ExpiresAt: now.Add(90 * time.Minute),
		State: llmgw.AccountState{Status: llmgw.StatusActive},
		Windows: llmgw.Windows{At: now,
			FiveHour: llmgw.Window{Status: "allowed", Utilization: 0.25, ResetsAt: now.Add(2 * time.Hour)},
			Scoped:   []llmgw.ScopedWindow{{Name: "7d-sonnet", Family: "sonnet", Window: llmgw.Window{Status: "allowed", Utilization: 0.5}}}},
	}
	d := account(2, "off", "sk-ant-x", "http://127.0.0.1:1")
	d.State.Status = llmgw.StatusDisabled
	lim, err := llmgw.ParseLimit("usd=20/day")
	if err != nil {
		t.Fatal(err)
	}
	s.SetSnapshot(&llmgw.Snapshot{Version: 1, Accounts: []llmgw.Account{o, d},
		Keys: []llmgw.ClientKey{{ID: 3, Name: "team", Hash: "h", Limits: []llmgw.Limit{lim}}}})

	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		byName[f.GetName()] = f
	}
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"llmgw_account_state", map[string]string{"account": "sub", "state": "active"}, 1},
		{"llmgw_account_state", map[string]string{"account": "off", "state": "disabled"}, 1},
		{"llmgw_account_state", map[string]string{"account": "off"}, 1},
		{"llmgw_oauth_token_expiry_seconds", map[string]string{"account": "sub"}, 5400},
		{"llmgw_account_window_utilization", map[string]string{"account": "sub", "window": "five_hour"}, 0.25},
		{"llmgw_account_window_reset_seconds", map[string]string{"account": "sub", "window": "five_hour"}, 7200},
		{"llmgw_account_window_utilization", map[string]string{"account": "sub", "window": "7d-sonnet", "family": "sonnet"}, 0.5},
		{"llmgw_key_limit_use_ratio", map[string]string{"key": "team", "limit": "usd=20/day"}, 0},
		{"llmgw_requests_waiting", nil, 0},
		{"llmgw_account_requests_in_flight", map[string]string{"account": "sub"}, 0},
	} {
		if got := metricSum(byName, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if f := byName["llmgw_key_limit_use_ratio"]; f == nil || len(f.GetMetric()) != 1 {
		t.Errorf("llmgw_key_limit_use_ratio: want one series, got %v", f)
	}
	if byName["llmgw_account_window_utilization"] == nil || len(byName["llmgw_account_window_utilization"].GetMetric()) != 2 {
		t.Errorf("llmgw_account_window_utilization: want the two windows reported, got %v", byName["llmgw_account_window_utilization"])
	}
}

func TestMetrics_FailoverReason(t *testing.T) {
	a := func(id int64, status int, typ string) llmgw.Attempt {
		return llmgw.Attempt{AccountID: id, Status: status, ErrorType: typ}
	}
	for _, tt := range []struct {
		from, to llmgw.Attempt
		want     string
	}{
		{a(1, 401, "authentication_error"), a(1, 200, ""), "token_refresh"},
		{a(1, 401, "authentication_error"), a(2, 200, ""), "auth"},
		{a(1, 429, "rate_limit_error"), a(2, 200, ""), "rate_limited"},
		{a(1, 529, "overloaded_error"), a(2, 200, ""), "overloaded"},
		{a(1, 502, "api_error"), a(2, 200, ""), "server_error"},
		{a(1, 0, "timeout_error"), a(2, 200, ""), "timeout"},
		{a(1, 0, "connection_error"), a(2, 200, ""), "connection"},
		{a(1, 200, "overloaded_error"), a(2, 200, ""), "other"},
	} {
		if got := failoverReason(tt.from, tt.to); got != tt.want {
			t.Errorf("failoverReason(%v, %v) = %q, want %q", tt.from, tt.to, got, tt.want)
		}
	}
}

// The label values a model name gets: the catalog's id, or "other".
func TestMetrics_ModelLabel(t *testing.T) {
	s := NewServer(Config{Logger: discardLogger()}, newRecorder())
	for name, want := range map[string]string{
		"claude-sonnet-4-5":          "claude-sonnet-4-5",
		"claude-sonnet-4-5-20250929": "claude-sonnet-4-5",
		"gpt-4o":                     otherModel,
		"":                           otherModel,
	} {
		if got := modelLabel(s.cfg.Catalog, name); got != want {
			t.Errorf("modelLabel(%q) = %q, want %q", name, got, want)
		}
	}
}

// BenchmarkMetrics_Observe is what one finished request costs the metrics.
func BenchmarkMetrics_Observe(b *testing.B) {
	m := NewMetrics()
	s := NewServer(Config{Logger: discardLogger()}, newRecorder())
	u := llmgw.Usage{Dialect: "anthropic", Model: "claude-sonnet-4-5", AccountName: "a", KeyName: "alice", Status: 200,
		Tokens:   llmgw.Tokens{Input: 10, Output: 20, CacheRead: 30, CacheWrite: 5},
		Attempts: []llmgw.Attempt{{AccountID: 1, AccountName: "a", Status: 200}},
		TTFB:     time.Millisecond, Duration: 2 * time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		m.observe(s.cfg.Catalog, &u)
	}
}

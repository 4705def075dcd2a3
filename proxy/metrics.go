package proxy

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/policy"
)

// otherModel is the model label of a model the catalog does not know, so
// that a client's made-up model names cannot grow the number of series.
const otherModel = "other"

// Metrics are the gateway's Prometheus metrics, on a registry of their own
// (never the process-wide default). Counters and histograms are fed once per
// fact: a request's by the Server when its usage row is complete, token
// refreshes through ObserveRefresh, the usage writer through ObserveBatch
// and WatchUsageQueue. Gauges of the present (in flight, waiting, account
// state, windows, token expiry, limit use) are read from Server.Live at
// scrape time, so the request path pays nothing for them.
//
// Label values are bounded by the accounts, the client keys and the
// catalog's models: a model the catalog does not know is "other". A Metrics
// is safe for concurrent use and serves one Server.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler

	requests  *prometheus.CounterVec
	attempts  *prometheus.CounterVec
	failovers *prometheus.CounterVec
	tokens    *prometheus.CounterVec
	cost      *prometheus.CounterVec
	ttfb      *prometheus.HistogramVec
	duration  *prometheus.HistogramVec
	refreshes *prometheus.CounterVec
	batch     prometheus.Histogram
	rows      prometheus.Counter
	batchErrs prometheus.Counter

	// series caches the children of one request's label values, so a
	// request costs one map read instead of a lookup per metric. It is
	// bounded as the labels are.
	series sync.Map // seriesKey → *requestSeries
}

// Token kinds, the kind label of llmgw_tokens_total: Anthropic's billing
// categories (policy.Billed).
var tokenKinds = [...]string{"input", "output", "cache_read", "cache_write_5m", "cache_write_1h"}

// NewMetrics returns the metrics, registered on a new registry. The Go
// runtime and process collectors are the owner's to add (Registry): their
// package would bring database/sql, which proxy must not import.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmgw_requests_total",
			Help: "Inference requests answered, by client dialect, model, account, client key and status class of the client's answer (2xx, 4xx, 5xx).",
		}, []string{"dialect", "model", "account", "key", "status"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmgw_upstream_attempts_total",
			Help: "Upstream attempts, by account and status class of the upstream's answer (none: no answer).",
		}, []string{"account", "status"}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmgw_failovers_total",
			Help: "Attempts followed by another attempt of the same request, by the account left and the reason.",
		}, []string{"account", "reason"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmgw_tokens_total",
			Help: "Tokens billed, by kind (input, output, cache_read, cache_write_5m, cache_write_1h), model, account and client key.",
		}, []string{"kind", "model", "account", "key"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmgw_cost_usd_total",
			Help: "Cost in USD at the catalog's prices, by model, account and client key.",
		}, []string{"model", "account", "key"}),
		ttfb: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "llmgw_ttfb_seconds",
			Help:    "Time from a request's arrival to the first byte sent to the client, by account and dialect.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"account", "dialect"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "llmgw_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its answer, by account and dialect.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"account", "dialect"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmgw_oauth_refreshes_total",
			Help: "OAuth token refreshes, by account and outcome (ok, failed, login_required).",
		}, []string{"account", "outcome"}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "llmgw_usage_batch_seconds",
			Help:    "Time to write one batch of usage rows (one transaction).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "llmgw_usage_rows_written_total",
			Help: "Usage rows written to the database.",
		}),
		batchErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "llmgw_usage_write_errors_total",
			Help: "Usage batches that failed to commit (and are retried).",
		}),
	}
	m.reg.MustRegister(m.requests, m.attempts, m.failovers, m.tokens, m.cost, m.ttfb, m.duration,
		m.refreshes, m.batch, m.rows, m.batchErrs)
	// A series that cannot be gathered (two limits of one key alike) is
	// left out rather than failing the whole scrape.
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return m
}

// Handler serves the metrics in the Prometheus exposition format, to
// anyone who reaches it: guard it (see Config.MetricsToken) or serve it on
// an address of its own.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Registry returns the registry the metrics are on, for tests and for
// collectors of other components.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveRefresh counts one OAuth token refresh of the named account with
// its outcome. It fits oauth.Config.OnRefresh.
func (m *Metrics) ObserveRefresh(account, outcome string) {
	m.refreshes.WithLabelValues(account, outcome).Inc()
}

// ObserveBatch records one usage batch write: its rows, how long it took and
// whether it failed. It fits store.UsageWriter.OnBatch.
func (m *Metrics) ObserveBatch(rows int, d time.Duration, err error) {
	m.batch.Observe(d.Seconds())
	if err != nil {
		m.batchErrs.Inc()
		return
	}
	m.rows.Add(float64(rows))
}

// WatchUsageQueue reports the usage writer's queue at scrape time: depth
// returns the rows waiting, waits how many recorders found the queue full.
// Call it once.
func (m *Metrics) WatchUsageQueue(depth func() int, waits func() int64) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "llmgw_usage_queue_depth",
			Help: "Usage rows waiting to be written.",
		}, func() float64 { return float64(depth()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "llmgw_usage_queue_waits_total",
			Help: "Usage records that found the queue full and waited for room.",
		}, func() float64 { return float64(waits()) }),
	)
}

// seriesKey is the label values of one request.
type seriesKey struct {
	dialect, model, account, key, status string
}

// requestSeries are the children a request with one seriesKey updates.
type requestSeries struct {
	requests prometheus.Counter
	tokens   [len(tokenKinds)]prometheus.Counter
	cost     prometheus.Counter
	ttfb     prometheus.Observer
	duration prometheus.Observer
}

func (m *Metrics) seriesFor(k seriesKey) *requestSeries {
	if s, ok := m.series.Load(k); ok {
		return s.(*requestSeries)
	}
	s := &requestSeries{
		requests: m.requests.WithLabelValues(k.dialect, k.model, k.account, k.key, k.status),
		cost:     m.cost.WithLabelValues(k.model, k.account, k.key),
		ttfb:     m.ttfb.WithLabelValues(k.account, k.dialect),
		duration: m.duration.WithLabelValues(k.account, k.dialect),
	}
	for i, kind := range tokenKinds {
		s.tokens[i] = m.tokens.WithLabelValues(kind, k.model, k.account, k.key)
	}
	got, _ := m.series.LoadOrStore(k, s)
	return got.(*requestSeries)
}

// observe counts one finished inference request from its usage row: the
// request, its tokens and cost (each part of its bill at its own model, as
// policy.Parts and policy.ScaledCost have it), its times, its attempts and
// the failovers between them.
func (m *Metrics) observe(c *anthropic.Catalog, u *llmgw.Usage) {
	k := seriesKey{dialect: u.Dialect, model: modelLabel(c, u.Model), account: u.AccountName, key: u.KeyName, status: statusClass(u.Status)}
	s := m.seriesFor(k)
	s.requests.Inc()
	if u.TTFB > 0 {
		s.ttfb.Observe(u.TTFB.Seconds())
	}
	s.duration.Observe(u.Duration.Seconds())
	for _, p := range policy.Parts(policy.UsedBy(u)) {
		if p.Tokens == (llmgw.Tokens{}) {
			continue
		}
		ps := s
		if p.Model != u.Model {
			pk := k
			pk.model = modelLabel(c, p.Model)
			ps = m.seriesFor(pk)
		}
		b := policy.Billed(p.Tokens)
		for i, n := range [...]int64{b.Input, b.Output, b.CacheRead, b.CacheWrite5m, b.CacheWrite1h} {
			if n > 0 {
				ps.tokens[i].Add(float64(n))
			}
		}
		if cost, _ := policy.ScaledCost(c, policy.Used{Model: p.Model, Tokens: p.Tokens, Speed: p.Speed}); cost > 0 {
			ps.cost.Add(cost / 1e6)
		}
	}
	for i, a := range u.Attempts {
		m.attempts.WithLabelValues(a.AccountName, statusClass(a.Status)).Inc()
		if i+1 < len(u.Attempts) {
			m.failovers.WithLabelValues(a.AccountName, failoverReason(a, u.Attempts[i+1])).Inc()
		}
	}
}

// modelLabel is the catalog's id for the model name, or otherModel.
func modelLabel(c *anthropic.Catalog, name string) string {
	if m, ok := c.Lookup(name); ok {
		return m.ID
	}
	return otherModel
}

// statusClass is the class of an HTTP status: "2xx", "4xx", "5xx"; "none"
// for no status.
func statusClass(status int) string {
	switch {
	case status <= 0:
		return "none"
	case status < 200:
		return "1xx"
	case status < 300:
		return "2xx"
	case status < 400:
		return "3xx"
	case status < 500:
		return "4xx"
	}
	return "5xx"
}

// failoverReason says why a request went on from attempt a to next: a
// retry on the same account after a token refresh, or what the upstream
// answered.
func failoverReason(a, next llmgw.Attempt) string {
	switch {
	case next.AccountID == a.AccountID:
		return "token_refresh"
	case a.Status == http.StatusTooManyRequests:
		return "rate_limited"
	case a.Status == 529:
		return "overloaded"
	case a.Status == http.StatusUnauthorized || a.Status == http.StatusForbidden:
		return "auth"
	case a.Status >= 500:
		return "server_error"
	case a.Status == 0 && a.ErrorType == "timeout_error":
		return "timeout"
	case a.Status == 0:
		return "connection"
	}
	return "other"
}

// liveCollector turns Server.Live into gauges at scrape time.
type liveCollector struct{ s *Server }

var (
	descInFlight = prometheus.NewDesc("llmgw_requests_in_flight",
		"Requests holding an account slot.", nil, nil)
	descWaiting = prometheus.NewDesc("llmgw_requests_waiting",
		"Requests waiting for an account slot.", nil, nil)
	descAccountInFlight = prometheus.NewDesc("llmgw_account_requests_in_flight",
		"Requests holding a slot of the account.", []string{"account"}, nil)
	descAccountWaiting = prometheus.NewDesc("llmgw_account_requests_waiting",
		"Requests waiting for a slot that the account could serve (a request counts for each such account).", []string{"account"}, nil)
	descAccountState = prometheus.NewDesc("llmgw_account_state",
		"1 for the account's state (active, cooling, error, disabled), 0 for the others.", []string{"account", "state"}, nil)
	descCooldown = prometheus.NewDesc("llmgw_account_cooldown_seconds",
		"Seconds until the account's cooldown ends; 0 when not cooling.", []string{"account"}, nil)
	descWindowUse = prometheus.NewDesc("llmgw_account_window_utilization",
		"Fraction used of a subscription window (family is set for a window that binds one model family).", []string{"account", "window", "family"}, nil)
	descWindowReset = prometheus.NewDesc("llmgw_account_window_reset_seconds",
		"Seconds until a subscription window resets.", []string{"account", "window", "family"}, nil)
	descTokenExpiry = prometheus.NewDesc("llmgw_oauth_token_expiry_seconds",
		"Seconds until the account's OAuth access token expires (negative once expired).", []string{"account"}, nil)
	descKeyLimit = prometheus.NewDesc("llmgw_key_limit_use_ratio",
		"Fraction of a client key's limit used in its current window.", []string{"key", "limit"}, nil)
	descAccountLimit = prometheus.NewDesc("llmgw_account_limit_use_ratio",
		"Fraction of an account's own limit used in its current window.", []string{"account", "limit"}, nil)
)

// accountStates are the values of llmgw_account_state's state label.
var accountStates = [...]string{"active", "cooling", "error", "disabled"}

// Describe implements prometheus.Collector.
func (liveCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInFlight, descWaiting, descAccountInFlight, descAccountWaiting, descAccountState,
		descCooldown, descWindowUse, descWindowReset, descTokenExpiry, descKeyLimit, descAccountLimit} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c liveCollector) Collect(ch chan<- prometheus.Metric) {
	l := c.s.Live()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	untilSec := func(t time.Time) float64 { return t.Sub(l.At).Seconds() }
	gauge(descInFlight, float64(l.InFlight))
	gauge(descWaiting, float64(l.Waiting))
	for _, a := range l.Accounts {
		gauge(descAccountInFlight, float64(a.InFlight), a.Name)
		gauge(descAccountWaiting, float64(a.Waiting), a.Name)
		state := stateLabel(a.State, l.At)
		for _, st := range accountStates {
			v := 0.0
			if st == state {
				v = 1
			}
			gauge(descAccountState, v, a.Name, st)
		}
		gauge(descCooldown, max(0, untilSec(a.State.CooldownUntil)), a.Name)
		window := func(name, family string, w llmgw.Window) {
			if w.Status == "" && w.ResetsAt.IsZero() {
				return // never reported
			}
			gauge(descWindowUse, w.Utilization, a.Name, name, family)
			if !w.ResetsAt.IsZero() {
				gauge(descWindowReset, max(0, untilSec(w.ResetsAt)), a.Name, name, family)
			}
		}
		window("five_hour", "", a.Windows.FiveHour)
		window("seven_day", "", a.Windows.SevenDay)
		for _, w := range a.Windows.Scoped {
			window(w.Name, w.Family, w.Window)
		}
		if a.Type == llmgw.AccountOAuth && !a.TokenExpires.IsZero() {
			gauge(descTokenExpiry, untilSec(a.TokenExpires), a.Name)
		}
		for _, u := range a.Limits {
			gauge(descAccountLimit, useRatio(u), a.Name, u.Limit.String())
		}
	}
	for _, k := range l.Keys {
		for _, u := range k.Limits {
			gauge(descKeyLimit, useRatio(u), k.Name, u.Limit.String())
		}
	}
}

// stateLabel is an account state as llmgw_account_state names it.
func stateLabel(st llmgw.AccountState, now time.Time) string {
	switch {
	case st.Status == llmgw.StatusActive && st.CooldownUntil.After(now):
		return "cooling"
	case st.Status == llmgw.StatusActive:
		return "active"
	}
	return string(st.Status)
}

// useRatio is the fraction of a limit used.
func useRatio(u policy.Use) float64 {
	if u.Limit.Amount <= 0 {
		return 0
	}
	return u.Used / u.Limit.Amount
}

// serveMetrics answers GET /metrics on the client listener: only with
// Config.MetricsToken set, and only to a request that sends it as a Bearer
// token. Without a token the route does not exist (404); a wrong or missing
// token gets 401 and nothing more. A client key never opens it.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Metrics == nil || s.cfg.MetricsToken == "" {
		s.writeError(w, r, clientErr(http.StatusNotFound, "not_found_error", "no route for "+r.Method+" "+r.URL.Path))
		return
	}
	if !bearerIs(r, s.cfg.MetricsToken) {
		w.Header().Set("WWW-Authenticate", "Bearer")
		s.writeError(w, r, clientErr(http.StatusUnauthorized, "authentication_error", "unauthorized"))
		return
	}
	s.cfg.Metrics.Handler().ServeHTTP(w, r)
}

// bearerIs reports whether r carries token as its Bearer token, comparing
// digests in constant time so that neither the token nor its length leaks.
func bearerIs(r *http.Request, token string) bool {
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return false
	}
	a, b := sha256.Sum256([]byte(strings.TrimSpace(got))), sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/llmgw/llmgw/oauth"
	"github.com/llmgw/llmgw/proxy"
	"github.com/llmgw/llmgw/store"
)

// newMetrics returns the metrics serve collects, fed by the usage writer
// and the token refresher as well as the proxy, or nil when
// server.metrics_token and server.metrics_listen are both unset: metrics
// exposed nowhere are not collected. Call it before the writer's first use
// and before ocfg makes a Manager.
func newMetrics(cfg *Config, usage *store.UsageWriter, ocfg *oauth.Config) *proxy.Metrics {
	if !cfg.Server.metricsOn() {
		return nil
	}
	m := proxy.NewMetrics()
	m.Registry().MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	usage.OnBatch = m.ObserveBatch
	m.WatchUsageQueue(usage.QueueLen, usage.Waits)
	ocfg.OnRefresh = m.ObserveRefresh
	return m
}

// serveMetrics serves GET /metrics, without a token, on
// server.metrics_listen if set, and returns the function that stops it.
// Everything else there answers 404.
func serveMetrics(addr string, m *proxy.Metrics, log *slog.Logger) (stop func(), err error) {
	if addr == "" || m == nil {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("server.metrics_listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener failed", "addr", addr, "err", err)
		}
	}()
	log.Info("serving metrics", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := hs.Shutdown(ctx); err != nil {
			_ = hs.Close()
		}
		<-done
	}, nil
}

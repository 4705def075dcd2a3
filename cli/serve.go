package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	urfave "github.com/urfave/cli/v2"
	"golang.org/x/net/netutil"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/oauth"
	"github.com/llmgw/llmgw/proxy"
	"github.com/llmgw/llmgw/store"
)

var (
	_ proxy.UsageRecorder = (*store.UsageWriter)(nil)
	_ proxy.TokenSource   = (*oauth.Manager)(nil)
)

// reloadInterval is how often serve looks for changes the CLI made. The check
// is one indexed read, so a short interval costs nothing and keeps the
// promise that a change shows within a second.
const reloadInterval = 250 * time.Millisecond

// Shutdown bounds after the drain (which server.timeout_seconds bounds). Each
// step has its own, so a slow step cannot eat the next one's time; the
// systemd unit's TimeoutStopSec covers their sum.
const (
	// handlerStopTimeout bounds the wait for handlers whose connections
	// were cut when the drain ran out: their requests have ended, and they
	// only record their usage.
	handlerStopTimeout = 10 * time.Second
	// backgroundStopTimeout bounds the wait for the reload loop and the
	// token refresher. The refresher cancels a token request under way
	// after a 2 s grace (oauth.Manager.Run).
	backgroundStopTimeout = 5 * time.Second
	// alertsStopTimeout bounds sending the alerts still queued.
	alertsStopTimeout = 5 * time.Second
	// flushTimeout bounds writing the last usage rows.
	flushTimeout = 30 * time.Second
)

// Connection cap defaults (server.max_connections 0).
const (
	// connHeadroom is the file descriptors left out of the open-file limit
	// for everything but client connections: the database, logs, the
	// listener, token requests.
	connHeadroom = 256
	// minMaxConnections is the smallest default, whatever the limit.
	minMaxConnections = 64
	// maxMaxConnections caps the default under an unlimited open-file limit.
	maxMaxConnections = 1 << 20
	// unknownLimitMaxConnections is the default where the limit cannot be
	// read (platforms without RLIMIT_NOFILE).
	unknownLimitMaxConnections = 4096
)

func serveCommand(env *appEnv) *urfave.Command {
	return &urfave.Command{
		Name:      "serve",
		Usage:     "run the gateway",
		UsageText: "llmgw serve [--listen ADDR]",
		Description: `Serves the Anthropic API (and the other dialects) on ADDR, over the accounts
in the database. Changes made with the CLI while it runs take effect within a
second; SIGHUP forces a reload (and reloads the TLS certificate, if any).
SIGINT or SIGTERM stop accepting requests, let running ones finish (up to
server.timeout_seconds), stop the background work, write every usage row and
exit 0. If serving fails (the listener
breaks), it stops the same way and exits non-zero, so that a supervisor
restarts it. It refuses to start on a database with pending migrations.

Example:
  llmgw --db /var/lib/llmgw/llmgw.db serve --listen 0.0.0.0:8080`,
		Flags: []urfave.Flag{
			&urfave.StringFlag{Name: "listen", EnvVars: []string{listenEnv},
				Usage: "`ADDR` to listen on, HOST:PORT or a bare PORT for every interface (default: server.host:server.port from the config, else 127.0.0.1:8080)"},
		},
		Action: func(c *urfave.Context) error {
			addr := env.cfg.Listen()
			if v := listenAddr(c.String("listen")); v != "" { // the flag, else LLMGW_LISTEN
				addr = v
			}
			return serve(c.Context, env, func() (net.Listener, error) {
				ln, err := net.Listen("tcp", addr)
				if err != nil {
					return nil, listenError(addr, err)
				}
				return ln, nil
			})
		},
	}
}

// serve runs the gateway on the listener listen returns until ctx ends, or
// until serving fails: then it stops the same way and returns the error.
func serve(ctx context.Context, env *appEnv, listen func() (net.Listener, error)) (err error) {
	log, closeLog, err := env.logger()
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeLog(); cerr != nil && err == nil {
			err = fmt.Errorf("close log file: %w", cerr)
		}
	}()
	db, err := env.openDB(ctx)
	if err != nil {
		return err
	}
	defer closeDB(db, &err)
	snap, err := db.LoadSnapshot(ctx)
	if err != nil {
		return fmt.Errorf("load accounts and keys: %w", err)
	}
	warnFirstRun(log, env, snap, time.Now())

	// Rows wait at most usageFlush in a partial batch: other servers on the
	// database count them against limits once they are written.
	usage := store.NewUsageWriter(db, store.UsageWriterOptions{FlushInterval: usageFlush})
	usage.Logger = log.With("component", "usage")
	alerts := newAlertSender(env.cfg.Alerts, log.With("component", "alerts"))
	if alerts != nil {
		alerts.Start()
	}
	ocfg := env.cfg.OAuthConfig()
	ocfg.Logger = log.With("component", "oauth")
	metrics := newMetrics(env.cfg, usage, &ocfg)
	if alerts != nil {
		ocfg.Notify = alerts.Notify
	}
	tokens := oauth.NewManager(ocfg, db)
	tokens.Sync(snap)
	pc := proxyConfig(env.cfg)
	pc.Logger = log
	if alerts != nil {
		pc.Notify = alerts.Notify
	}
	pc.Metrics = metrics
	pc.UsageLog = usageLog{db: db, writer: usage, catalog: pc.Catalog}
	pc.Kinds = map[llmgw.AccountType]proxy.Kind{
		llmgw.AccountAPIKey: proxy.APIKeyKind{},
		llmgw.AccountOAuth:  proxy.OAuthKind{Tokens: tokens},
	}
	srv := proxy.NewServer(pc, usage)
	srv.SetSnapshot(snap)
	var certs *certHolder // nil: plain HTTP
	if env.cfg.Server.TLSCertFile != "" {
		if certs, err = loadCert(env.cfg.Server.TLSCertFile, env.cfg.Server.TLSKeyFile); err != nil {
			_ = usage.Close(context.Background())
			if alerts != nil {
				_ = alerts.Close(context.Background())
			}
			return err
		}
	}

	ln, err := listen()
	if err != nil {
		_ = usage.Close(context.Background())
		if alerts != nil {
			_ = alerts.Close(context.Background()) // nothing was sent yet: it returns at once
		}
		return err // listen explains it
	}
	// The metrics listener stops when serve returns, after the usage rows
	// are written, so that scrapes see the drain.
	stopMetrics, err := serveMetrics(env.cfg.Server.MetricsListen, metrics, log)
	if err != nil {
		_ = ln.Close()
		_ = usage.Close(context.Background())
		return err
	}
	defer stopMetrics()
	limit, limitKnown := openFileLimit()
	maxConns := maxConnections(env.cfg.Server.MaxConnections, limit, limitKnown)
	// Past the cap, Accept waits: new connections queue in the kernel
	// rather than failing with "too many open files" in accept, which
	// would also starve the database and the upstream dials.
	ln = netutil.LimitListener(ln, maxConns)
	if certs != nil {
		ln = certs.listener(ln) // under the framing guard, which reads plaintext
	}
	ln = proxy.GuardFraming(ln)
	hs := &http.Server{
		Handler:           srv,
		ConnContext:       proxy.ConnContext, // lets the proxy refuse heads GuardFraming found ambiguous
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// Go answers a larger header block with 431 before any handler.
		MaxHeaderBytes: env.cfg.Server.MaxHeaderBytes,
		// No WriteTimeout: streams may run for many minutes.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// The status row goes in before the first request is served: another
	// server that finds no row of ours takes every usage row written so
	// far as its own (catchUpLimits), so ours must not come first.
	status := newStatusPublisher(db, srv.Live, ln.Addr().String(), log.With("component", "status"))
	status.elsewhere = srv.SetElsewhere // concurrency caps across servers on the same database
	if err := status.publish(ctx); err != nil {
		log.Warn("publish server status", "err", err) // the publisher's loop tries again
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "db", db.Path(), "accounts", len(snap.Accounts), "keys", len(snap.Keys),
		"max_connections", maxConns, "tls", certs != nil)
	if limitKnown && env.cfg.Server.MaxConnections > 0 && uint64(maxConns) > (limit-min(limit, connHeadroom))/2 {
		log.Warn("server.max_connections leaves too few file descriptors under the open-file limit for upstream connections: expect \"too many open files\"",
			"max_connections", maxConns, "open_files_limit", limit)
	}

	bgCtx, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	reloadDone := make(chan struct{})
	go func() {
		defer close(reloadDone)
		watchChanges(bgCtx, db, snap.Version, log, func(snap *llmgw.Snapshot) {
			tokens.Sync(snap) // first, so requests on the new snapshot find its tokens
			srv.SetSnapshot(snap)
		})
	}()
	certsDone := make(chan struct{})
	go func() {
		defer close(certsDone)
		if certs != nil {
			certs.reloadOnHUP(bgCtx, log)
		}
	}()
	refreshDone := make(chan struct{})
	go func() {
		defer close(refreshDone)
		tokens.Run(bgCtx)
	}()
	statusDone := make(chan struct{})
	go func() {
		defer close(statusDone)
		status.run(bgCtx) // the row "llmgw status" reads
	}()
	limitsDone := make(chan struct{})
	go func() {
		defer close(limitsDone)
		catchUpLimits(bgCtx, srv, status, log) // other servers' use on the same database
	}()

	// fatal is a serving failure: serve still stops in order, then returns
	// it, so the process exits non-zero and systemd's Restart=on-failure
	// starts it again.
	var fatal error
	select {
	case <-ctx.Done():
		log.Info("shutting down: draining requests", "timeout", env.cfg.Timeout().String())
	case err := <-serveErr:
		// Serve returns before Shutdown only when the listener fails.
		fatal = fmt.Errorf("serve: %w", err)
		log.Error("serving failed: draining requests and exiting", "err", err, "timeout", env.cfg.Timeout().String())
	}

	// Shutdown order, each step with its own bound so that a slow one
	// cannot eat the next one's time:
	//  1. stop accepting and let requests finish, up to
	//     server.timeout_seconds; past it, cut the connections left and
	//     wait for their handlers, which still record their usage;
	//  2. stop the reload loop, the token refresher and the status
	//     publisher: a token request under way is cancelled after a short
	//     grace, and if they have not stopped within
	//     backgroundStopTimeout, say so and go on; then delete the status
	//     row, so that "llmgw status" says at once that no server runs;
	//  3. stop the alerts: each one still queued gets one try, for up to
	//     alertsStopTimeout, and retries under way are given up (logged);
	//  4. write every usage row, under a fresh deadline;
	//  5. close the database (deferred above).
	drainCtx, cancel := context.WithTimeout(context.Background(), env.cfg.Timeout())
	defer cancel()
	if err := hs.Shutdown(drainCtx); err != nil {
		log.Warn("drain timed out: closing open connections", "err", err)
		_ = hs.Close()
	}
	handlersCtx, cancelHandlers := context.WithTimeout(context.Background(), handlerStopTimeout)
	defer cancelHandlers()
	if err := srv.Drain(handlersCtx); err != nil {
		log.Error("requests did not finish", "err", err)
	}

	stopBackground()
	if !waitClosed(backgroundStopTimeout, reloadDone, certsDone, refreshDone, statusDone, limitsDone) {
		log.Warn("reload loop, token refresher or status publisher did not stop in time: going on", "timeout", backgroundStopTimeout.String())
	}
	removeCtx, cancelRemove := context.WithTimeout(context.Background(), backgroundStopTimeout)
	defer cancelRemove()
	if err := status.remove(removeCtx); err != nil {
		log.Warn("server status row left behind: llmgw status will call it stale", "err", err)
	}

	if alerts != nil {
		alertsCtx, cancelAlerts := context.WithTimeout(context.Background(), alertsStopTimeout)
		if err := alerts.Close(alertsCtx); err != nil {
			log.Warn("alerts not all sent before stopping", "err", err)
		}
		cancelAlerts()
	}

	flushCtx, cancelFlush := context.WithTimeout(context.Background(), flushTimeout)
	defer cancelFlush()
	if err := usage.Close(flushCtx); err != nil {
		return errors.Join(fatal, fmt.Errorf("write usage rows: %w", err))
	}
	log.Info("stopped")
	return fatal
}

// proxyConfig is the proxy's configuration from the config file, without
// the Logger and Kinds that serve adds.
func proxyConfig(cfg *Config) proxy.Config {
	return proxy.Config{
		MaxAttempts:      cfg.Upstream.MaxAttempts,
		MaxBodyBytes:     cfg.Upstream.MaxBodyBytes,
		Timeout:          cfg.Timeout(),
		StaticKeys:       staticKeys(cfg.Auth.APIKeys),
		Aliases:          cfg.Models.Aliases,
		Catalog:          cfg.Catalog(),
		BodyReadTimeout:  cfg.BodyReadTimeout(),
		FirstByteTimeout: cfg.FirstByteTimeout(),
		MaxBodyMemory:    cfg.Server.MaxBodyMemoryBytes,
		MaxWaiting:       cfg.Server.MaxWaiting,
		MaxHeaderCount:   cfg.Server.MaxHeaderCount,
		Location:         cfg.Location(),
		NoAffinity:       cfg.Routing.affinityOff(),
		WindowThreshold:  cfg.Alerts.WindowThreshold,
		TrustedProxies:   cfg.TrustedProxies(),
		MetricsToken:     cfg.Server.MetricsToken,

		AuthFailuresPerMinute: cfg.Server.AuthFailuresPerMinute,
	}
}

// maxConnections returns the cap on open client connections:
// server.max_connections if set, else a share of the open-file limit (when
// known): what is left after connHeadroom, halved because each client
// connection may hold an upstream connection too, and at least
// minMaxConnections.
func maxConnections(configured int, limit uint64, known bool) int {
	switch {
	case configured > 0:
		return configured
	case !known:
		return unknownLimitMaxConnections
	case limit < connHeadroom+2*minMaxConnections:
		return minMaxConnections
	}
	return int(min((limit-connHeadroom)/2, maxMaxConnections))
}

// waitClosed waits until every channel in chs is closed or d has passed,
// and reports whether they all were.
func waitClosed(d time.Duration, chs ...<-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for _, ch := range chs {
		select {
		case <-ch:
		case <-t.C:
			return false
		}
	}
	return true
}

// watchChanges reloads the snapshot whenever the database's change counter
// moves (the CLI changed accounts, keys or tokens) or on SIGHUP. A failed
// reload is logged once and the old snapshot stays.
func watchChanges(ctx context.Context, db *store.DB, version int64, log *slog.Logger, apply func(*llmgw.Snapshot)) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(reloadInterval)
	defer tick.Stop()
	failing := false
	for {
		force := false
		select {
		case <-ctx.Done():
			return
		case <-hup:
			force = true
		case <-tick.C:
		}
		err := func() error {
			n, err := db.ChangeCounter(ctx)
			if err != nil {
				return err
			}
			if n == version && !force {
				return nil
			}
			snap, err := db.LoadSnapshot(ctx)
			if err != nil {
				return err
			}
			apply(snap)
			version = snap.Version
			log.Info("reloaded accounts and keys", "accounts", len(snap.Accounts), "keys", len(snap.Keys), "version", version)
			return nil
		}()
		switch {
		case err != nil && errors.Is(err, context.Canceled):
			return
		case err != nil && !failing:
			log.Error("reload failed: serving the previous snapshot", "err", err)
			failing = true
		case err == nil && failing:
			log.Info("reload works again")
			failing = false
		}
	}
}

// staticKeys turns the config file's keys into client keys the proxy accepts.
func staticKeys(in []StaticKey) []llmgw.ClientKey {
	out := make([]llmgw.ClientKey, len(in))
	for i, k := range in {
		out[i] = llmgw.ClientKey{Name: k.Name, Hash: llmgw.HashKey(k.Key), Prefix: llmgw.VisiblePrefix(k.Key)}
	}
	return out
}

// How soon one server's use counts against limits on the others sharing
// its database: its usage writer commits rows within usageFlush, and each
// of the others reads the new rows every catchUpInterval, so a budget spent
// through one is refused by all within about half a second.
const (
	usageFlush      = 250 * time.Millisecond
	catchUpInterval = 250 * time.Millisecond
)

// catchUpLimits counts, every catchUpInterval until ctx ends, what other
// servers on the database wrote to the request log (srv.CatchUpLimits)
// while the status rows say any runs. A server alone reads nothing: every
// row up to what the log held at its last look is its own, counted when it
// settled, so it only moves the limits' place in the log past them. A
// failure is logged at most once a minute, and the next tick tries again.
func catchUpLimits(ctx context.Context, srv *proxy.Server, status *statusPublisher, log *slog.Logger) {
	tick := time.NewTicker(catchUpInterval)
	defer tick.Stop()
	var lastLogged time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !status.othersRunning() {
			srv.PassOwnLimitRows(status.aloneUpTo.Load())
			continue
		}
		if err := srv.CatchUpLimits(ctx); err != nil && ctx.Err() == nil && time.Since(lastLogged) > time.Minute {
			lastLogged = time.Now()
			log.Warn("counting other servers' use against limits failed; retrying", "err", err)
		}
	}
}

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

func serveCommand(env *appEnv) *urfave.Command {
	return &urfave.Command{
		Name:      "serve",
		Usage:     "run the gateway",
		UsageText: "llmgw serve [--listen ADDR]",
		Description: `Serves the Anthropic API (and the other dialects) on ADDR, over the accounts
in the database. Changes made with the CLI while it runs take effect within a
second; SIGHUP forces a reload. SIGINT or SIGTERM stop accepting requests,
let running ones finish (up to server.timeout_seconds), write every usage
row and exit 0. It refuses to start on a database with pending migrations.

Example:
  llmgw --db /var/lib/llmgw/llmgw.db serve --listen 0.0.0.0:8080`,
		Flags: []urfave.Flag{
			&urfave.StringFlag{Name: "listen", Usage: "`ADDR` to listen on (default: server.host:server.port from the config, else 127.0.0.1:8080)"},
		},
		Action: func(c *urfave.Context) error {
			addr := env.cfg.Listen()
			if c.IsSet("listen") {
				addr = c.String("listen")
			}
			return serve(c.Context, env, addr)
		},
	}
}

// serve runs the gateway until ctx ends.
func serve(ctx context.Context, env *appEnv, addr string) (err error) {
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

	usage := store.NewUsageWriter(db, store.UsageWriterOptions{})
	usage.Logger = log.With("component", "usage")
	ocfg := env.cfg.OAuthConfig()
	ocfg.Logger = log.With("component", "oauth")
	tokens := oauth.NewManager(ocfg, db)
	tokens.Sync(snap)
	srv := proxy.NewServer(proxy.Config{
		MaxAttempts:  env.cfg.Upstream.MaxAttempts,
		MaxBodyBytes: env.cfg.Upstream.MaxBodyBytes,
		Timeout:      env.cfg.Timeout(),
		StaticKeys:   staticKeys(env.cfg.Auth.APIKeys),
		Logger:       log,
		Aliases:      env.cfg.Models.Aliases,
		Kinds: map[llmgw.AccountType]proxy.Kind{
			llmgw.AccountAPIKey: proxy.APIKeyKind{},
			llmgw.AccountOAuth:  proxy.OAuthKind{Tokens: tokens},
		},
	}, usage)
	srv.SetSnapshot(snap)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = usage.Close(context.Background())
		return fmt.Errorf("listen on %s: %w (is another llmgw running? pass --listen ADDR)", addr, err)
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: streams may run for many minutes.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "db", db.Path(), "accounts", len(snap.Accounts), "keys", len(snap.Keys))

	reloadCtx, stopReload := context.WithCancel(context.Background())
	reloadDone := make(chan struct{})
	go func() {
		defer close(reloadDone)
		watchChanges(reloadCtx, db, snap.Version, log, func(snap *llmgw.Snapshot) {
			tokens.Sync(snap) // first, so requests on the new snapshot find its tokens
			srv.SetSnapshot(snap)
		})
	}()
	refreshDone := make(chan struct{})
	go func() {
		defer close(refreshDone)
		tokens.Run(reloadCtx)
	}()

	select {
	case <-ctx.Done():
		log.Info("shutting down: draining requests", "timeout", env.cfg.Timeout().String())
	case err := <-serveErr:
		log.Error("server stopped", "err", err)
	}

	// Shutdown order: stop accepting and let streams finish; then stop the
	// reload and token refresh loops; then write every usage row; the
	// database closes last (deferred above).
	drainCtx, cancel := context.WithTimeout(context.Background(), env.cfg.Timeout())
	defer cancel()
	if err := hs.Shutdown(drainCtx); err != nil {
		log.Warn("drain timed out: closing open connections", "err", err)
		_ = hs.Close()
	}
	// Close does not wait for handlers; each still records its usage.
	finalCtx, cancelFinal := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelFinal()
	if err := srv.Drain(finalCtx); err != nil {
		log.Error("requests did not finish", "err", err)
	}
	stopReload()
	<-reloadDone
	<-refreshDone
	if err := usage.Close(finalCtx); err != nil {
		return fmt.Errorf("write usage rows: %w", err)
	}
	log.Info("stopped")
	return nil
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

package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy"
	"github.com/llmgw/llmgw/proxy/policy"
	"github.com/llmgw/llmgw/store"
)

// How a running server publishes what it is doing, and how readers tell a
// running server from one that is gone.
const (
	// publishInterval is how often serve refreshes its server_status row.
	publishInterval = time.Second
	// statusFresh is how old a row may be and still belong to a running
	// server: a few missed refreshes (a busy disk) are not a dead server.
	statusFresh = 5 * time.Second
	// statusKept is how long a row of a server that did not stop cleanly
	// stays; a starting server deletes older ones.
	statusKept = 24 * time.Hour
	// publishErrorEvery bounds how often a failing refresh is logged.
	publishErrorEvery = time.Minute
)

// statusDoc is the JSON document of a server_status row: who the server is
// and proxy.Live as encoding/json writes it. Only this package writes and
// reads it, with the same binary, so Live's Go field names are its schema.
type statusDoc struct {
	Host string     `json:"host"`
	PID  int        `json:"pid"`
	Addr string     `json:"addr"`
	Live proxy.Live `json:"live"`
}

// statusPublisher refreshes one server's server_status row. It runs in its
// own goroutine, never on the request path: a refresh is one Live() walk and
// one UPSERT.
type statusPublisher struct {
	db   *store.DB
	live func() proxy.Live
	// elsewhere, when set, is given after every refresh what the other
	// running servers on the database hold (sumElsewhere), so that
	// concurrency caps hold across replicas.
	elsewhere func(proxy.Elsewhere)
	// othersSeen is when lookElsewhere last found another running server
	// (unix nanoseconds; 0 for never).
	othersSeen atomic.Int64
	// aloneUpTo is the request log's highest id just before a look found
	// no other server: a server publishes its row before it serves, so every
	// row up to it was written by this one or by a server seen running
	// within statusFresh (whose rows catchUpLimits read meanwhile).
	aloneUpTo atomic.Int64
	id        string
	started   time.Time
	doc       statusDoc // Host, PID, Addr; Live is filled per refresh
	log       *slog.Logger
}

func newStatusPublisher(db *store.DB, live func() proxy.Live, addr string, log *slog.Logger) *statusPublisher {
	host, _ := os.Hostname() // informational; empty if unknown
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return &statusPublisher{
		db: db, live: live, id: hex.EncodeToString(b[:]), started: time.Now(),
		doc: statusDoc{Host: host, PID: os.Getpid(), Addr: addr}, log: log,
	}
}

// run refreshes the row every publishInterval until ctx ends. A failure is
// logged at most once per publishErrorEvery, and its recovery once.
func (p *statusPublisher) run(ctx context.Context) {
	if err := p.db.DeleteServerStatus(ctx, p.id, time.Now().Add(-statusKept)); err != nil && ctx.Err() == nil {
		p.log.Warn("delete old server status rows", "err", err)
	}
	tick := time.NewTicker(publishInterval)
	defer tick.Stop()
	var lastLogged time.Time
	failing := false
	for {
		err := p.publish(ctx)
		if err == nil && p.elsewhere != nil {
			err = p.lookElsewhere(ctx)
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && time.Since(lastLogged) >= publishErrorEvery:
			p.log.Error("server status: writing or reading it failed; llmgw status and the concurrency counts across servers may be stale", "err", err)
			lastLogged, failing = time.Now(), true
		case err == nil && failing:
			p.log.Info("publishing server status works again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (p *statusPublisher) publish(ctx context.Context) error {
	doc := p.doc
	doc.Live = p.live()
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode server status: %w", err)
	}
	return p.db.UpsertServerStatus(ctx, store.ServerStatus{ID: p.id, StartedAt: p.started, UpdatedAt: doc.Live.At, Doc: b})
}

// lookElsewhere reads what the other running servers published and hands
// its sum to p.elsewhere.
func (p *statusPublisher) lookElsewhere(ctx context.Context) error {
	mark, err := p.db.LastUseID(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	servers, _, err := runningServers(ctx, p.db, now)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(servers, func(s serverView) bool { return s.id != p.id }) {
		p.othersSeen.Store(now.UnixNano())
	} else {
		p.aloneUpTo.Store(mark)
	}
	p.elsewhere(sumElsewhere(servers, p.id))
	return nil
}

// othersRunning reports whether another server ran on the database within
// statusFresh: a server that just stopped still writes its last rows.
func (p *statusPublisher) othersRunning() bool {
	seen := p.othersSeen.Load()
	return seen != 0 && time.Since(time.Unix(0, seen)) < statusFresh
}

// sumElsewhere adds up the concurrency slots the servers other than self
// hold, per account and per client key. A server whose row this binary
// cannot read counts as holding none.
func sumElsewhere(servers []serverView, self string) proxy.Elsewhere {
	e := proxy.Elsewhere{Accounts: map[int64]int{}, Keys: map[int64]int{}}
	for _, s := range servers {
		if s.id == self || s.decodeErr != nil {
			continue
		}
		for _, a := range s.doc.Live.Accounts {
			if a.InFlight > 0 {
				e.Accounts[a.ID] += a.InFlight
			}
		}
		for id, n := range s.doc.Live.KeySlots {
			e.Keys[id] += n
		}
	}
	return e
}

// remove deletes the row on a clean shutdown, so that status says at once
// that no server runs.
func (p *statusPublisher) remove(ctx context.Context) error {
	return p.db.DeleteServerStatus(ctx, p.id, time.Time{})
}

func statusCommand(env *appEnv) *urfave.Command {
	return &urfave.Command{
		Name:      "status",
		Usage:     "show what the running server is doing now",
		UsageText: "llmgw status [--json] [--watch]",
		Description: `Shows, per account, its state (and why, with any cooldown), requests in flight
against its max concurrency, requests waiting, recent time to first byte,
recent errors (a count of failures that halves every 30 seconds), its
subscription windows and when they reset, and when its OAuth token expires;
per client key and account with limits, the use against each limit and when
it resets; and the totals.

It reads the row a running "llmgw serve" refreshes every second in the
database (one per server process; several are merged: in flight and waiting
add up). When no server has published in the last few seconds it says so and
shows the stored state: accounts from the database and limit use from the
request log, without in-flight, waiting, latency or error figures.

--watch redraws every second until interrupted (a plain sequence of
snapshots when stdout is not a terminal); with --json it prints one JSON
document per line per refresh.

Example:
  llmgw status
  llmgw status --watch
  llmgw status --json | jq '.accounts[] | {name, in_flight, max_concurrency}'`,
		Flags: []urfave.Flag{
			&urfave.BoolFlag{Name: "json", Usage: "print JSON instead of tables"},
			&urfave.BoolFlag{Name: "watch", Usage: "refresh every second until interrupted"},
		},
		Action: func(c *urfave.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			return env.withDB(c.Context, func(db *store.DB) error {
				if !c.Bool("watch") {
					st, err := env.readStatus(c.Context, db)
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return writeJSON(c.App.Writer, newStatusJSON(st))
					}
					return writeStatus(c.App.Writer, st)
				}
				return env.watchStatus(c.Context, c.App.Writer, db, c.Bool("json"))
			})
		},
	}
}

// clearScreen moves the cursor home and clears the terminal.
const clearScreen = "\x1b[H\x1b[2J"

// watchStatus prints the status every second until ctx ends: redrawn on a
// terminal, one snapshot after another (separated by a blank line, or one
// JSON document per line) otherwise.
func (e *appEnv) watchStatus(ctx context.Context, w io.Writer, db *store.DB, asJSON bool) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	tty := isTerminal(w)
	for first := true; ; first = false {
		var prefix string
		switch {
		case asJSON:
		case tty:
			prefix = clearScreen
		case !first:
			prefix = "\n"
		}
		if err := e.printStatus(ctx, w, db, asJSON, prefix); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		select {
		case <-ctx.Done():
			return nil // interrupted: the normal end of --watch
		case <-tick.C:
		}
	}
}

// printStatus reads the status once for --watch and prints it after
// prefix, or as one line of JSON.
func (e *appEnv) printStatus(ctx context.Context, w io.Writer, db *store.DB, asJSON bool, prefix string) error {
	st, err := e.readStatus(ctx, db)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(w).Encode(newStatusJSON(st))
	}
	if _, err := io.WriteString(w, prefix); err != nil {
		return err
	}
	return writeStatus(w, st)
}

// serverView is one server_status row, decoded.
type serverView struct {
	id        string
	started   time.Time
	updated   time.Time
	doc       statusDoc
	decodeErr error
}

// statusView is what status shows: the merged Live of the running
// servers, or one built from the stored state when none runs.
type statusView struct {
	now      time.Time
	servers  []serverView // fresh rows, newest first
	lastSeen time.Time    // the newest row's refresh when none is fresh; zero if none ever
	live     proxy.Live
}

func (s *statusView) running() bool { return len(s.servers) > 0 }

// runningServers returns the fresh rows, decoded, newest first, and when the
// newest row (fresh or not) was refreshed.
func runningServers(ctx context.Context, db *store.DB, now time.Time) ([]serverView, time.Time, error) {
	rows, err := db.ListServerStatus(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	var out []serverView
	var newest time.Time
	for _, r := range rows {
		if r.UpdatedAt.After(newest) {
			newest = r.UpdatedAt
		}
		if now.Sub(r.UpdatedAt) > statusFresh {
			continue
		}
		v := serverView{id: r.ID, started: r.StartedAt, updated: r.UpdatedAt}
		if err := json.Unmarshal(r.Doc, &v.doc); err != nil {
			// A row from another version of llmgw: skip it, and say so.
			v.decodeErr = err
		}
		out = append(out, v)
	}
	return out, newest, nil
}

func (e *appEnv) readStatus(ctx context.Context, db *store.DB) (*statusView, error) {
	now := e.now()
	servers, newest, err := runningServers(ctx, db, now)
	if err != nil {
		return nil, err
	}
	st := &statusView{now: now, servers: servers}
	var lives []proxy.Live
	for _, s := range servers {
		if s.decodeErr == nil {
			lives = append(lives, s.doc.Live)
		}
	}
	if len(lives) > 0 {
		st.live = mergeLive(lives)
		return st, nil
	}
	st.lastSeen = newest
	st.live, err = e.storedLive(ctx, db, now)
	return st, err
}

// mergeLive merges what several servers on one database publish, newest
// first: in flight, waiting and recent errors add up; state, windows,
// latency and limit use are the newest server's (each server reads the same
// stored state and request log).
func mergeLive(lives []proxy.Live) proxy.Live {
	out := lives[0]
	out.Accounts = slices.Clone(out.Accounts)
	at := make(map[int64]int, len(out.Accounts))
	for i, a := range out.Accounts {
		at[a.ID] = i
	}
	for _, l := range lives[1:] {
		out.InFlight += l.InFlight
		out.Waiting += l.Waiting
		for _, a := range l.Accounts {
			i, ok := at[a.ID]
			if !ok {
				continue // not in the newest server's snapshot: removed
			}
			m := &out.Accounts[i]
			m.InFlight += a.InFlight
			m.Waiting += a.Waiting
			m.RecentErrors += a.RecentErrors
		}
	}
	return out
}

// storedLive is what the database says when no server runs: the stored
// accounts and their state, and the limit use of keys and accounts summed
// from the request log. Nothing is in flight.
func (e *appEnv) storedLive(ctx context.Context, db *store.DB, now time.Time) (proxy.Live, error) {
	out := proxy.Live{At: now}
	accts, err := db.ListAccounts(ctx)
	if err != nil {
		return out, fmt.Errorf("list accounts: %w", err)
	}
	uses, err := e.accountUses(ctx, db, accts, now)
	if err != nil {
		return out, err
	}
	for i := range accts {
		a := &accts[i]
		out.Accounts = append(out.Accounts, proxy.LiveAccount{
			ID: a.ID, Name: a.Name, Type: a.Type, State: a.State, MaxConcurrency: a.MaxConcurrency,
			Windows: a.Windows, TokenExpires: a.ExpiresAt, Limits: uses[a.ID],
		})
	}
	keys, err := e.keyViews(ctx, db, now)
	if err != nil {
		return out, err
	}
	for _, k := range keys {
		if !k.static && k.RevokedAt.IsZero() && len(k.Limits) > 0 {
			out.Keys = append(out.Keys, proxy.LiveKey{ID: k.ID, Name: k.Name, Limits: k.use})
		}
	}
	return out, nil
}

// sourceText says where the figures come from.
func (s *statusView) sourceText() string {
	if s.running() {
		parts := make([]string, len(s.servers))
		for i, v := range s.servers {
			if v.decodeErr != nil {
				parts[i] = fmt.Sprintf("server %s publishes a status this llmgw cannot read (another version?)", v.id)
				continue
			}
			parts[i] = fmt.Sprintf("llmgw serve on %s (pid %d, %s), up %s, published %s ago",
				orDash(v.doc.Host), v.doc.PID, orDash(v.doc.Addr), shortDuration(s.now.Sub(v.started)),
				shortDuration(max(s.now.Sub(v.updated), 0)))
		}
		return strings.Join(parts, "\n")
	}
	if s.lastSeen.IsZero() {
		return "no llmgw serve is publishing (none has run on this database, or it stopped cleanly); showing the stored state"
	}
	return "no llmgw serve has published for " + shortDuration(s.now.Sub(s.lastSeen)) + "; showing the stored state"
}

// shortDuration is a duration rounded to the second for people: 2m13s.
func shortDuration(d time.Duration) string {
	return d.Round(time.Second).String()
}

func writeStatus(w io.Writer, st *statusView) error {
	if _, err := printEscaped(w, "%s\n\n", st.sourceText()); err != nil {
		return err
	}
	live, now := &st.live, st.now
	tw := newTable(w)
	tw.row("ACCOUNT\tTYPE\tSTATE\tIN FLIGHT\tWAITING\tLATENCY\tRECENT ERRORS\t5H WINDOW\t7D WINDOW\tSCOPED WINDOWS\tTOKEN EXPIRES\n")
	for i := range live.Accounts {
		a := &live.Accounts[i]
		inflight, waiting, latency, errs := "-", "-", "-", "-"
		if st.running() {
			inflight, waiting = inFlightText(a.InFlight, a.MaxConcurrency), strconv.Itoa(a.Waiting)
			errs = strconv.FormatFloat(a.RecentErrors, 'f', 1, 64)
			if a.LatencyMs > 0 {
				latency = strconv.FormatFloat(a.LatencyMs, 'f', 0, 64) + "ms"
			}
		}
		h5, d7, scoped, expires := "-", "-", "-", "-"
		if a.Type == llmgw.AccountOAuth {
			h5, d7 = windowText(a.Windows.FiveHour, now), windowText(a.Windows.SevenDay, now)
			scoped, expires = scopedWindowsText(a.Windows.Scoped, now), expiresIn(a.TokenExpires, now)
		}
		tw.row("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, a.Type, stateText(a.State, now),
			inflight, waiting, latency, errs, h5, d7, scoped, expires)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := writeLimitUse(w, live); err != nil {
		return err
	}
	total := "total: in flight and waiting are known only to a running server"
	if st.running() {
		total = fmt.Sprintf("total: %d in flight, %d waiting", live.InFlight, live.Waiting)
	}
	_, err := fmt.Fprintf(w, "\n%s\n", total)
	return err
}

// writeLimitUse lists each key's and account's limits with their use;
// nothing when there are none.
func writeLimitUse(w io.Writer, live *proxy.Live) error {
	type subject struct {
		name string
		uses []policy.Use
	}
	var subs []subject
	for _, k := range live.Keys {
		subs = append(subs, subject{"key " + k.Name, k.Limits})
	}
	for _, a := range live.Accounts {
		if len(a.Limits) > 0 {
			subs = append(subs, subject{"account " + a.Name, a.Limits})
		}
	}
	if len(subs) == 0 {
		return nil
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	tw := newTable(w)
	tw.row("LIMITED\tLIMIT\tUSED\tRESETS\n")
	for _, s := range subs {
		for _, u := range s.uses {
			used := u.Limit.FormatAmount(u.Used) + " of " + u.Limit.FormatAmount(u.Limit.Amount)
			if u.Reserved > 0 {
				used += " (+" + u.Limit.FormatAmount(u.Reserved) + " in flight)"
			}
			if u.Spent() {
				used += ", reached"
			}
			tw.row("%s\t%s\t%s\t%s\n", s.name, u.Limit.String(), used, resetText(u))
		}
	}
	return tw.Flush()
}

// stateText is the status with its reason and any cooldown with its
// reason: "active, cooling down until 2026-12-07 14:05:10 (429 ...)".
func stateText(s llmgw.AccountState, now time.Time) string {
	out := statusText(s)
	if c := cooldownReasonText(s, now); c != "-" {
		out += ", cooling down " + c
	}
	return out
}

// inFlightText is "n/max", with ∞ for an unlimited account.
func inFlightText(n, maxConc int) string {
	m := "∞"
	if maxConc > 0 {
		m = strconv.Itoa(maxConc)
	}
	return strconv.Itoa(n) + "/" + m
}

// statusJSON is "llmgw status --json".
type statusJSON struct {
	At string `json:"at"`
	// Source is "server" (figures a running server published) or
	// "database" (the stored state: no server runs).
	Source   string              `json:"source"`
	Note     string              `json:"note"` // what sourceText says
	Servers  []statusServerJSON  `json:"servers"`
	Accounts []statusAccountJSON `json:"accounts"`
	Keys     []statusKeyJSON     `json:"keys"`
	Totals   statusTotalsJSON    `json:"totals"`
}

type statusServerJSON struct {
	ID        string  `json:"id"`
	Host      string  `json:"host"`
	PID       int     `json:"pid"`
	Addr      string  `json:"addr"`
	StartedAt *string `json:"started_at"`
	UpdatedAt *string `json:"updated_at"`
}

// statusAccountJSON is one account; the live figures are null when no
// server runs.
type statusAccountJSON struct {
	ID              int64                `json:"id"`
	Name            string               `json:"name"`
	Type            string               `json:"type"`
	Status          string               `json:"status"`
	Reason          string               `json:"reason"`
	CooldownUntil   *string              `json:"cooldown_until"`
	CooldownReason  string               `json:"cooldown_reason"`
	FamilyCooldowns []familyCooldownJSON `json:"family_cooldowns"`
	InFlight        *int                 `json:"in_flight"`
	MaxConcurrency  int                  `json:"max_concurrency"` // 0: unlimited
	Waiting         *int                 `json:"waiting"`
	LatencyMs       *float64             `json:"latency_ms"`
	RecentErrors    *float64             `json:"recent_errors"`
	Windows         *windowsJSON         `json:"windows,omitempty"` // OAuth accounts, once seen
	ScopedWindows   []scopedWindowJSON   `json:"scoped_windows,omitempty"`
	TokenExpiresAt  *string              `json:"token_expires_at,omitempty"` // OAuth accounts
	TokenExpiresIn  string               `json:"token_expires_in,omitempty"`
	Limits          []limitJSON          `json:"limits"`
}

type statusKeyJSON struct {
	ID     int64       `json:"id"`
	Name   string      `json:"name"`
	Limits []limitJSON `json:"limits"`
}

// statusTotalsJSON are null when no server runs.
type statusTotalsJSON struct {
	InFlight *int `json:"in_flight"`
	Waiting  *int `json:"waiting"`
}

func newStatusJSON(st *statusView) statusJSON {
	now, live := st.now, &st.live
	out := statusJSON{At: now.Format(time.RFC3339), Source: "database", Note: st.sourceText(),
		Servers: []statusServerJSON{}, Accounts: []statusAccountJSON{}, Keys: []statusKeyJSON{}}
	running := st.running()
	if running {
		out.Source = "server"
		out.Totals = statusTotalsJSON{InFlight: &live.InFlight, Waiting: &live.Waiting}
	}
	for _, s := range st.servers {
		out.Servers = append(out.Servers, statusServerJSON{ID: s.id, Host: s.doc.Host, PID: s.doc.PID, Addr: s.doc.Addr,
			StartedAt: jsonTime(s.started), UpdatedAt: jsonTime(s.updated)})
	}
	for i := range live.Accounts {
		a := &live.Accounts[i]
		status := a.State.Status
		if status == "" {
			status = llmgw.StatusActive
		}
		j := statusAccountJSON{
			ID: a.ID, Name: a.Name, Type: string(a.Type), Status: string(status), Reason: a.State.Reason,
			CooldownUntil: jsonTime(activeCooldown(a.State, now)), CooldownReason: cooldownReason(a.State, now),
			FamilyCooldowns: familyCooldownsJSON(a.State, now), MaxConcurrency: a.MaxConcurrency,
			Limits: limitsJSON(usedLimits(a.Limits), a.Limits),
		}
		if running {
			j.InFlight, j.Waiting, j.LatencyMs, j.RecentErrors = &a.InFlight, &a.Waiting, &a.LatencyMs, &a.RecentErrors
		}
		if a.Type == llmgw.AccountOAuth {
			j.TokenExpiresAt, j.TokenExpiresIn = jsonTime(a.TokenExpires), expiresIn(a.TokenExpires, now)
			if w := a.Windows; !w.At.IsZero() {
				j.Windows = &windowsJSON{
					Status:     w.Status,
					FiveHour:   windowJSON{w.FiveHour.Status, w.FiveHour.Utilization, jsonTime(w.FiveHour.ResetsAt)},
					SevenDay:   windowJSON{w.SevenDay.Status, w.SevenDay.Utilization, jsonTime(w.SevenDay.ResetsAt)},
					ObservedAt: jsonTime(w.At),
				}
				j.ScopedWindows = scopedWindowsJSON(w.Scoped)
			}
		}
		out.Accounts = append(out.Accounts, j)
	}
	for _, k := range live.Keys {
		out.Keys = append(out.Keys, statusKeyJSON{ID: k.ID, Name: k.Name, Limits: limitsJSON(usedLimits(k.Limits), k.Limits)})
	}
	return out
}

// usedLimits are the limits of uses.
func usedLimits(uses []policy.Use) []llmgw.Limit {
	out := make([]llmgw.Limit, len(uses))
	for i, u := range uses {
		out[i] = u.Limit
	}
	return out
}

// liveInFlight returns, per account ID, the requests in flight on the
// running servers, or nil if none runs: for account list.
func liveInFlight(ctx context.Context, db *store.DB, now time.Time) (map[int64]int, error) {
	servers, _, err := runningServers(ctx, db, now)
	if err != nil {
		return nil, err
	}
	var out map[int64]int
	for _, s := range servers {
		if s.decodeErr != nil {
			continue
		}
		if out == nil {
			out = map[int64]int{}
		}
		for _, a := range s.doc.Live.Accounts {
			out[a.ID] += a.InFlight
		}
	}
	return out, nil
}

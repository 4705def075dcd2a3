package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/store"
	"github.com/llmgw/llmgw/store/storetest"
)

// noAutoFlush keeps rows in the writer until Flush or Close, so that a test
// decides when they are written.
var noAutoFlush = store.UsageWriterOptions{BatchSize: 1 << 20, FlushInterval: time.Hour}

// quiet discards the log of writers whose failures a test provokes.
var quiet = slog.New(slog.DiscardHandler)

// newWriter returns a writer that is closed, and must close cleanly, when
// the test ends (before storetest closes the DB).
func newWriter(tb testing.TB, db *store.DB, opt store.UsageWriterOptions) *store.UsageWriter {
	tb.Helper()
	w := store.NewUsageWriter(db, opt)
	w.Logger = quiet
	tb.Cleanup(func() {
		if err := w.Close(context.Background()); err != nil {
			tb.Error(err)
		}
	})
	return w
}

// listAll returns every row of the request log.
func listAll(t *testing.T, db *store.DB) []store.UsageRow {
	t.Helper()
	rows, err := db.ListUsage(context.Background(), time.UnixMilli(0), time.UnixMilli(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestUsageWriter_ConcurrentRecord(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		a, b := apiKeyAccount("a"), oauthAccount("b")
		for _, acct := range []*llmgw.Account{&a, &b} {
			if err := db.InsertAccount(ctx, acct); err != nil {
				t.Fatal(err)
			}
		}
		w := store.NewUsageWriter(db, store.UsageWriterOptions{BatchSize: 64})

		const goroutines, perG = 16, 50
		base := time.UnixMilli(1_750_000_000_000)
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range perG {
					// Every request failed over from a (429) to b (200).
					w.Record(llmgw.Usage{
						Time:      base.Add(time.Duration(g*perG+i) * time.Millisecond),
						RequestID: fmt.Sprintf("req-%d-%d", g, i),
						AccountID: b.ID, AccountName: "b", Model: "claude-sonnet-4-5", Status: 200,
						Attempts: []llmgw.Attempt{
							{AccountID: a.ID, AccountName: "a", Status: 429, ErrorType: "rate_limit_error"},
							{AccountID: b.ID, AccountName: "b", Status: 200, TTFB: time.Duration(100+i%3) * time.Millisecond},
						},
						Tokens: llmgw.Tokens{Input: int64(i), Output: 2 * int64(i), CacheRead: 3},
					})
				}
			})
		}
		wg.Wait()
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}

		rows := listAll(t, db)
		const n = goroutines * perG
		if len(rows) != n {
			t.Fatalf("%d rows written, want %d", len(rows), n)
		}
		var in, out, cacheRead int64
		seen := make(map[string]bool)
		for _, r := range rows {
			in, out, cacheRead = in+r.Tokens.Input, out+r.Tokens.Output, cacheRead+r.Tokens.CacheRead
			seen[r.RequestID] = true
			if r.AttemptCount != 2 {
				t.Errorf("row %s has AttemptCount %d, want 2", r.RequestID, r.AttemptCount)
			}
		}
		wantIn := int64(goroutines * perG * (perG - 1) / 2)
		if in != wantIn || out != 2*wantIn || cacheRead != 3*n || len(seen) != n {
			t.Errorf("sums = in %d, out %d, cache read %d, %d distinct; want %d, %d, %d, %d",
				in, out, cacheRead, len(seen), wantIn, 2*wantIn, 3*n, n)
		}

		stats, err := db.AccountStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		last := base.Add((n - 1) * time.Millisecond)
		var latency float64
		for i := range perG {
			latency += float64(100 + i%3)
		}
		want := map[int64]llmgw.AccountStats{
			a.ID: {Requests: n, Errors: n, LastUsed: last, LastError: "429 rate_limit_error", LastErrorAt: last},
			b.ID: {Requests: n, LastUsed: last, AvgLatencyMs: latency / perG},
		}
		if diff := cmp.Diff(want, stats); diff != "" {
			t.Errorf("AccountStats (-want +got):\n%s", diff)
		}
	})
}

func TestUsageWriter_RoundTrip(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		w := store.NewUsageWriter(db, store.UsageWriterOptions{})
		u := llmgw.Usage{
			Time: time.UnixMilli(1_750_000_000_123), RequestID: "req_1", KeyID: 0, KeyName: "static",
			AccountID: 0, AccountName: "", Model: "claude-opus-4-1", Dialect: llmgw.DialectOpenAI,
			Stream: true, Status: 529, ErrorType: "overloaded_error",
			Attempts: []llmgw.Attempt{{AccountID: 12345, Status: 529, ErrorType: "overloaded_error"}},
			Tokens:   llmgw.Tokens{Input: 1, Output: 2, CacheRead: 3, CacheWrite: 4, CacheWrite5m: 5, CacheWrite1h: 6},
			TTFB:     1500 * time.Millisecond, Duration: 2 * time.Second, EndedEarly: true, UpstreamID: "req_up",
		}
		w.Record(u)
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		want := u
		want.Attempts = nil
		// The range is half-open: a row exactly at until is excluded.
		got, err := db.ListUsage(ctx, u.Time, u.Time.Add(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]store.UsageRow{{Usage: want, AttemptCount: 1}}, got); diff != "" {
			t.Errorf("ListUsage (-want +got):\n%s", diff)
		}
		if got, err := db.ListUsage(ctx, u.Time.Add(-time.Second), u.Time); err != nil || len(got) != 0 {
			t.Errorf("ListUsage up to the row's time = %d rows, %v; want 0, nil", len(got), err)
		}
		// The attempt named an account that does not exist: its stats are
		// skipped and the row is still written.
		stats, err := db.AccountStats(ctx)
		if err != nil || len(stats) != 0 {
			t.Errorf("AccountStats = %v, %v; want empty", stats, err)
		}
	})
}

func TestUsageWriter_Flush(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		clk := newClock()
		db.Now = clk.Now
		a := apiKeyAccount("a")
		if err := db.InsertAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}
		w := newWriter(t, db, noAutoFlush)

		for i := range 5 {
			w.Record(llmgw.Usage{Time: clk.Now(), RequestID: fmt.Sprint(i)})
		}
		st := llmgw.AccountState{Status: llmgw.StatusActive, CooldownUntil: clk.Now().Add(time.Minute), LastError: "429 rate_limit_error", At: clk.Advance(time.Second)}
		w.RecordState(a.ID, st)
		// An older state recorded later must not replace the newer one.
		w.RecordState(a.ID, llmgw.AccountState{Status: llmgw.StatusError, At: clk.Now().Add(-time.Millisecond)})
		if rows := listAll(t, db); len(rows) != 0 {
			t.Fatalf("%d rows written before Flush, want 0", len(rows))
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if rows := listAll(t, db); len(rows) != 5 {
			t.Errorf("%d rows written after Flush, want 5", len(rows))
		}
		got, err := db.GetAccount(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(st, got.State); diff != "" {
			t.Errorf("State after Flush (-want +got):\n%s", diff)
		}
		if err := w.Flush(ctx); err != nil {
			t.Errorf("Flush with nothing pending = %v", err)
		}
	})
}

func TestUsageWriter_KeyLastUsed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		k := llmgw.ClientKey{Name: "alice", Prefix: "sk-llmgw-abcd", Hash: llmgw.HashKey("secret")}
		if err := db.InsertKey(ctx, &k); err != nil {
			t.Fatal(err)
		}
		w := newWriter(t, db, noAutoFlush)

		t1, t2 := time.UnixMilli(1_750_000_000_000), time.UnixMilli(1_750_000_005_000)
		w.Record(llmgw.Usage{Time: t2, KeyID: k.ID, KeyName: "alice"})
		w.Record(llmgw.Usage{Time: t1, KeyID: k.ID, KeyName: "alice"})
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		// A late row with an older time must not move last use backwards.
		w.Record(llmgw.Usage{Time: t1, KeyID: k.ID, KeyName: "alice"})
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		keys, err := db.ListKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 || !keys[0].LastUsed.Equal(t2) {
			t.Errorf("keys = %+v, want alice last used at %v", keys, t2)
		}
	})
}

// TestUsageWriter_LargeBatch writes one batch of more rows than one
// PostgreSQL statement takes parameters for (65,535 / 28 columns = 2,340
// rows), so it must be split, each row once and in order.
func TestUsageWriter_LargeBatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		w := newWriter(t, db, noAutoFlush)
		const n = 5000
		for i := range n {
			w.Record(llmgw.Usage{Time: time.UnixMilli(int64(i + 1)), RequestID: fmt.Sprint(i), Model: "m", Status: 200})
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		rows := listAll(t, db)
		if len(rows) != n {
			t.Fatalf("%d rows written, want %d", len(rows), n)
		}
		for i, r := range rows {
			if want := fmt.Sprint(i); r.RequestID != want || r.Time.UnixMilli() != int64(i+1) {
				t.Fatalf("row %d = %s at %d, want %s at %d", i, r.RequestID, r.Time.UnixMilli(), want, i+1)
			}
		}
	})
}

// TestUsageWriter_WriteAgainIsExact writes a batch, then the same rows
// again with the ones recorded since, as the writer's retry does when a
// COMMIT failed without saying whether it happened: the rows already in the
// log are skipped, and the account statistics and the key's last use count
// each request once. With 3,000 rows PostgreSQL splits the batch into two
// INSERTs (2,340 rows each at most), so rows are skipped in both.
func TestUsageWriter_WriteAgainIsExact(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		a, b := apiKeyAccount("a"), apiKeyAccount("b")
		for _, acct := range []*llmgw.Account{&a, &b} {
			if err := db.InsertAccount(ctx, acct); err != nil {
				t.Fatal(err)
			}
		}
		k := llmgw.ClientKey{Name: "alice", Prefix: "sk-llmgw-abcd", Hash: llmgw.HashKey("secret")}
		if err := db.InsertKey(ctx, &k); err != nil {
			t.Fatal(err)
		}
		w := newWriter(t, db, noAutoFlush)
		base := time.UnixMilli(1_750_000_000_000)
		write := func(n int) {
			t.Helper()
			for i := range n {
				// Every request failed over from a (529) to b (200).
				w.Record(llmgw.Usage{
					Time: base.Add(time.Duration(i) * time.Millisecond), RequestID: fmt.Sprint("req_", i),
					KeyID: k.ID, KeyName: "alice", AccountID: b.ID, AccountName: "b",
					Model: "claude-sonnet-4-5", Status: 200, Tokens: llmgw.Tokens{Input: 10, Output: 1},
					Attempts: []llmgw.Attempt{
						{AccountID: a.ID, AccountName: "a", Status: 529, ErrorType: "overloaded_error"},
						{AccountID: b.ID, AccountName: "b", Status: 200, TTFB: 100 * time.Millisecond},
					},
				})
			}
			if err := w.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		check := func(when string, n int) {
			t.Helper()
			rows := listAll(t, db)
			ids := make(map[string]bool)
			for _, r := range rows {
				ids[r.RequestID] = true
			}
			if len(rows) != n || len(ids) != n {
				t.Errorf("%s: %d rows with %d request ids, want %d of each", when, len(rows), len(ids), n)
			}
			stats, err := db.AccountStats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			last := base.Add(time.Duration(n-1) * time.Millisecond)
			want := map[int64]llmgw.AccountStats{
				a.ID: {Requests: int64(n), Errors: int64(n), LastUsed: last, LastError: "529 overloaded_error", LastErrorAt: last},
				b.ID: {Requests: int64(n), LastUsed: last, AvgLatencyMs: 100},
			}
			if diff := cmp.Diff(want, stats); diff != "" {
				t.Errorf("%s: AccountStats (-want +got):\n%s", when, diff)
			}
			keys, err := db.ListKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 1 || !keys[0].LastUsed.Equal(last) {
				t.Errorf("%s: keys = %+v, want alice last used at %v", when, keys, last)
			}
		}
		write(2500)
		check("after the first write", 2500)
		write(3000)
		check("after writing its rows again with 500 more", 3000)
		write(3000)
		check("after writing the same rows a third time", 3000)
	})
}

// waitFor spins until cond holds, failing after a deadline. It yields
// instead of sleeping: it waits for a state, not for an amount of time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

// holdWriteLock takes the database's write lock from another handle, as
// another process (a CLI import, say) would, until release is called or the
// test ends: SQLite's write lock by BEGIN IMMEDIATE, and on PostgreSQL the
// advisory lock that every write transaction of the store takes first (a
// transaction begun through rawDB takes it too). The writer then waits where
// it really waits, at the start of its transaction.
func holdWriteLock(t *testing.T, db *store.DB) (release func()) {
	t.Helper()
	ctx := context.Background()
	raw := rawDB(t, db.Path())
	var end func() error
	if store.IsPostgresURL(db.Path()) {
		tx, err := raw.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		end = tx.Rollback
	} else {
		conn, err := raw.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
			_ = conn.Close() // the BEGIN error is the one to report
			t.Fatal(err)
		}
		end = func() error {
			_, err := conn.ExecContext(ctx, `ROLLBACK`)
			return errors.Join(err, conn.Close())
		}
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if err := end(); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(release)
	return release
}

func TestUsageWriter_RecordBlocksWhenFull(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		w := newWriter(t, db, store.UsageWriterOptions{QueueSize: 1, BatchSize: 1})

		// Another process (a CLI import, say) holds the write lock, so the
		// writer cannot commit and the queue of one fills up.
		release := holdWriteLock(t, db)

		const n = 20
		recorded := make(chan struct{})
		go func() {
			defer close(recorded)
			for i := range n {
				w.Record(llmgw.Usage{Time: time.UnixMilli(int64(i + 1)), RequestID: fmt.Sprint(i)})
			}
		}()
		waitFor(t, "a Record to wait for room", func() bool { return w.Waits() > 0 })
		select {
		case <-recorded:
			t.Fatal("all Record calls returned while the writer could not write")
		default:
		}
		release()
		<-recorded
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if rows := listAll(t, db); len(rows) != n {
			t.Errorf("%d rows written, want %d: a blocked Record lost a row", len(rows), n)
		}
	})
}

func TestUsageWriter_QueueBound(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		const queue, n = 100, 1000
		w := newWriter(t, db, store.UsageWriterOptions{QueueSize: queue, BatchSize: queue, FlushInterval: time.Hour})

		release := holdWriteLock(t, db)

		// One Record at a time: the writer takes the first full queue as its
		// batch and cannot commit it; then the queue grows to its bound again,
		// and no Record returns until the lock goes.
		var returned atomic.Int64
		recorded := make(chan struct{})
		go func() {
			defer close(recorded)
			for i := range n {
				w.Record(llmgw.Usage{Time: time.UnixMilli(int64(i + 1)), RequestID: fmt.Sprint(i)})
				returned.Add(1)
			}
		}()
		waitFor(t, "the queue to fill twice", func() bool { return returned.Load() >= 2*queue })
		if got := returned.Load(); got != 2*queue || w.Waits() == 0 {
			t.Errorf("%d Record calls returned, %d waited; want %d returned (a batch and a full queue), some waiting",
				got, w.Waits(), 2*queue)
		}
		release()
		<-recorded
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		rows := listAll(t, db)
		seen := make(map[string]bool)
		for _, r := range rows {
			seen[r.RequestID] = true
		}
		if len(rows) != n || len(seen) != n {
			t.Errorf("%d rows written, %d distinct, want %d", len(rows), len(seen), n)
		}
	})
}

func TestUsageWriter_BurstBeyondQueueSize(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		// A burst three times the queue's bound, from many goroutines, while the
		// database is locked at first: the queue grows to its bound, Record
		// waits, and once the lock goes every row is written.
		const queue, goroutines, perG = 2000, 8, 3 * 2000 / 8
		w := newWriter(t, db, store.UsageWriterOptions{QueueSize: queue})

		raw := rawDB(t, db.Path())
		release := holdWriteLock(t, db)
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range perG {
					w.Record(llmgw.Usage{Time: time.UnixMilli(int64(i + 1)), RequestID: fmt.Sprintf("req-%d-%d", g, i)})
				}
			})
		}
		waitFor(t, "a Record to wait for room", func() bool { return w.Waits() > 0 })
		release()
		wg.Wait()
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		const n = goroutines * perG
		if got := queryInt(t, raw, `SELECT count(DISTINCT request_id) FROM request_log`); got != n {
			t.Errorf("%d distinct rows written, want %d", got, n)
		}
		if got := queryInt(t, raw, `SELECT count(*) FROM request_log`); got != n {
			t.Errorf("%d rows written, want %d", got, n)
		}
	})
}

// TestUsageWriter_PostgresRestart writes usage while the PostgreSQL server
// stops and starts again: rows recorded during the outage wait in the queue
// (Record returns at once, the queue being far from full), the failed
// batches are kept and retried, and once the server is back every row is
// written exactly once, as are the statistics folded from it.
//
// It does not call t.Parallel: the restart takes down every database of the
// test binary's one cluster, and a sequential test runs before any parallel
// test starts (storetest.RestartPostgres).
func TestUsageWriter_PostgresRestart(t *testing.T) {
	ctx := context.Background()
	db := storetest.Stores[1].Open(t)
	a := apiKeyAccount("a")
	if err := db.InsertAccount(ctx, &a); err != nil {
		t.Fatal(err)
	}
	w := newWriter(t, db, store.UsageWriterOptions{QueueSize: 1000, BatchSize: 50, FlushInterval: 10 * time.Millisecond})
	var failed atomic.Int64
	w.OnBatch = func(_ int, _ time.Duration, err error) {
		if err != nil {
			failed.Add(1)
		}
	}
	n := 0
	record := func(k int) {
		for range k {
			w.Record(llmgw.Usage{Time: time.UnixMilli(int64(n + 1)), RequestID: fmt.Sprintf("req_%d", n),
				AccountID: a.ID, AccountName: "a", Status: 200,
				Attempts: []llmgw.Attempt{{AccountID: a.ID, AccountName: "a", Status: 200}}})
			n++
		}
	}

	record(100)
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	storetest.RestartPostgres(t, func() {
		record(300)
		waitFor(t, "a batch to fail while the server is down", func() bool { return failed.Load() > 0 })
		record(100)
		if got := w.Waits(); got != 0 {
			t.Errorf("%d Record calls waited with the queue not full, want 0", got)
		}
	})
	record(100)
	// The writer backs off after each failure; Flush waits for its retries.
	flushCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := w.Flush(flushCtx); err != nil {
		t.Fatal(err)
	}
	if failed.Load() == 0 {
		t.Error("no batch failed: the outage was not seen")
	}
	raw := rawDB(t, db.Path()) // opened after the restart
	if got := queryInt(t, raw, `SELECT count(DISTINCT request_id) FROM request_log`); got != int64(n) {
		t.Errorf("%d distinct request ids written, want %d", got, n)
	}
	if got := queryInt(t, raw, `SELECT count(*) FROM request_log`); got != int64(n) {
		t.Errorf("%d rows written, want %d (none lost, none twice)", got, n)
	}
	if got := queryInt(t, raw, `SELECT requests FROM account_stats WHERE account_id = ?`, a.ID); got != int64(n) {
		t.Errorf("account stats count %d requests, want %d", got, n)
	}
}

func TestUsageWriter_RecordRacingClose(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		w := store.NewUsageWriter(db, store.UsageWriterOptions{QueueSize: 64, BatchSize: 16})
		w.Logger = quiet
		const goroutines, perG = 4, 100
		var returned atomic.Int64
		var wg sync.WaitGroup
		for range goroutines {
			wg.Go(func() {
				for i := range perG {
					w.Record(llmgw.Usage{Time: time.UnixMilli(int64(i + 1))})
					returned.Add(1)
				}
			})
		}
		waitFor(t, "some rows recorded", func() bool { return returned.Load() > 50 })
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		wg.Wait() // Record calls after Close write their rows themselves
		if got := queryInt(t, rawDB(t, db.Path()), `SELECT count(*) FROM request_log`); got != goroutines*perG {
			t.Errorf("%d rows written, want %d", got, goroutines*perG)
		}
	})
}

func TestUsageWriter_CloseExpired(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		db := s.Open(t)
		w := store.NewUsageWriter(db, noAutoFlush)
		for i := range 3 {
			w.Record(llmgw.Usage{Time: time.UnixMilli(int64(i + 1))})
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := w.Close(ctx)
		if err == nil || !strings.Contains(err.Error(), "3 usage rows not written") {
			t.Errorf("Close with a cancelled context = %v, want it to report 3 rows not written", err)
		}
		if err := w.Flush(context.Background()); err == nil {
			t.Error("Flush after a failed Close = nil, want Close's error")
		}
	})
}

func TestUsageWriter_RecordAfterClose(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		a := apiKeyAccount("a")
		if err := db.InsertAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}
		w := store.NewUsageWriter(db, store.UsageWriterOptions{})
		w.Record(llmgw.Usage{Time: time.UnixMilli(1)})
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(ctx); err != nil {
			t.Errorf("second Close = %v, want nil", err)
		}
		// Late calls must not panic, and are written synchronously.
		w.Record(llmgw.Usage{Time: time.UnixMilli(2)})
		st := llmgw.AccountState{Status: llmgw.StatusDisabled, Reason: "late", At: time.Now().Add(time.Hour)}
		w.RecordState(a.ID, st)
		if err := w.Flush(ctx); err != nil {
			t.Errorf("Flush after Close = %v, want nil", err)
		}
		if rows := listAll(t, db); len(rows) != 2 {
			t.Errorf("%d rows, want 2", len(rows))
		}
		got, err := db.GetAccount(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if got.State.Reason != "late" {
			t.Errorf("State = %+v, want the state recorded after Close", got.State)
		}
	})
}

func TestUsageWriter_FlushWaitsForRetry(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		w := newWriter(t, db, noAutoFlush)

		release := holdWriteLock(t, db)
		w.Record(llmgw.Usage{Time: time.UnixMilli(1)})

		// While the lock is held, Flush cannot succeed and gives up with ctx.
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if err := w.Flush(short); err == nil {
			t.Fatal("Flush succeeded while the database was locked")
		}
		release()
		// The row was kept and is written by a later flush.
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if rows := listAll(t, db); len(rows) != 1 {
			t.Errorf("%d rows, want 1", len(rows))
		}
	})
}

func BenchmarkUsageWriter_Record(b *testing.B) {
	for _, s := range storetest.Stores {
		b.Run(s.Name, func(b *testing.B) {
			db := s.Open(b)
			w := store.NewUsageWriter(db, store.UsageWriterOptions{})
			// No request id: the request log skips a row whose id it holds
			// already, and every Record here must write a row.
			u := llmgw.Usage{
				Time: time.Now(), KeyName: "bench", Model: "claude-sonnet-4-5",
				Dialect: llmgw.DialectAnthropic, Status: 200,
				Attempts: []llmgw.Attempt{{AccountID: 1, Status: 200, TTFB: 300 * time.Millisecond}},
				Tokens:   llmgw.Tokens{Input: 1000, Output: 200},
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					w.Record(u)
				}
			})
			// Include the writes: Record is only cheap if the writer keeps up.
			if err := w.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(w.Waits()), "waits")
		})
	}
}

// BenchmarkUsageWriter_Throughput pushes 50,000 distinct rows per iteration
// through one writer with the default options, from 64 goroutines (requests
// finishing at once), and reports the rows per second from the first Record
// to Close having committed the last row, and how many Record calls waited
// for room. Each row is a served request (an account and a client key, so
// the statistics and the key's last use are written too). It then counts
// the rows, by request id: none lost, none duplicated.
//
//	go test -run '^$' -bench UsageWriter_Throughput -benchtime 1x -count 3 ./store/
func BenchmarkUsageWriter_Throughput(b *testing.B) {
	const rows, goroutines = 50000, 64
	for _, s := range storetest.Stores {
		b.Run(s.Name, func(b *testing.B) {
			ctx := context.Background()
			db := s.Open(b)
			a := apiKeyAccount("a")
			if err := db.InsertAccount(ctx, &a); err != nil {
				b.Fatal(err)
			}
			k := llmgw.ClientKey{Name: "bench", Prefix: "sk-llmgw-bench", Hash: llmgw.HashKey("bench")}
			if err := db.InsertKey(ctx, &k); err != nil {
				b.Fatal(err)
			}
			raw := rawDB(b, db.Path())
			var elapsed time.Duration
			var waits int64
			for n := range b.N {
				w := store.NewUsageWriter(db, store.UsageWriterOptions{})
				start := time.Now()
				var wg sync.WaitGroup
				for g := range goroutines {
					wg.Go(func() {
						for i := g; i < rows; i += goroutines {
							w.Record(llmgw.Usage{
								Time: time.UnixMilli(1_750_000_000_000 + int64(i)), RequestID: fmt.Sprintf("req_%d_%d", n, i),
								KeyID: k.ID, KeyName: "bench", AccountID: a.ID, AccountName: "a",
								Model: "claude-sonnet-4-5", Dialect: llmgw.DialectAnthropic, Stream: true, Status: 200,
								Attempts: []llmgw.Attempt{{AccountID: a.ID, AccountName: "a", Status: 200, TTFB: 300 * time.Millisecond}},
								Tokens:   llmgw.Tokens{Input: 1000, Output: 200, CacheRead: 5000},
								TTFB:     300 * time.Millisecond, Duration: 2 * time.Second, UpstreamID: "req_upstream",
							})
						}
					})
				}
				wg.Wait()
				if err := w.Close(ctx); err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(start)
				waits += w.Waits()
			}
			total := int64(b.N) * rows
			if got := queryInt(b, raw, `SELECT count(DISTINCT request_id) FROM request_log`); got != total {
				b.Errorf("%d distinct request ids written, want %d", got, total)
			}
			if got := queryInt(b, raw, `SELECT count(*) FROM request_log`); got != total {
				b.Errorf("%d rows written, want %d", got, total)
			}
			b.ReportMetric(float64(total)/elapsed.Seconds(), "rows/s")
			b.ReportMetric(float64(waits)/float64(b.N), "waits/op")
		})
	}
}

func TestUsageWriter_CloseWhileLocked(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		w := store.NewUsageWriter(db, store.UsageWriterOptions{BatchSize: 1})
		w.Logger = quiet // the failed write is expected

		holdWriteLock(t, db) // until the test ends

		w.Record(llmgw.Usage{Time: time.UnixMilli(1)}) // the writer starts a write and waits for the lock
		w.Record(llmgw.Usage{Time: time.UnixMilli(2)})
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := w.Close(short)
		if err == nil || !strings.Contains(err.Error(), "2 usage rows not written") {
			t.Errorf("Close = %v, want it to report 2 rows not written", err)
		}
		// SQLite's busy timeout is 5s, and PostgreSQL waits for the lock for
		// ever; Close must not wait either out.
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("Close took %v, want it bounded by its context", d)
		}
	})
}

// BenchmarkUsageWriter_Memory reports the heap one writer holds, measured
// after a GC with runtime.ReadMemStats: "idle-B" right after a row has been
// written, "after-burst-B" once a burst of rows far above BatchSize has been
// written. Run it without -race, which adds its own shadow memory:
//
//	go test -run '^$' -bench UsageWriter_Memory -benchtime 3x ./store/
func BenchmarkUsageWriter_Memory(b *testing.B) {
	const burst = 20000
	db := storetest.Open(b)
	ctx := context.Background()
	// No request id, so that each of the burst's rows is written (a row
	// whose id the log holds already is skipped).
	u := llmgw.Usage{Time: time.UnixMilli(1), Model: "claude-sonnet-4-5", Status: 200}
	heap := func() int64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	var idle, afterBurst int64
	for range b.N {
		base := heap()
		w := store.NewUsageWriter(db, store.UsageWriterOptions{})
		w.Logger = quiet
		w.Record(u)
		if err := w.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		idle += heap() - base
		for range burst {
			w.Record(u)
		}
		if err := w.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		afterBurst += heap() - base
		runtime.KeepAlive(w)
		if err := w.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(idle)/float64(b.N), "idle-B")
	b.ReportMetric(float64(afterBurst)/float64(b.N), "after-burst-B")
}

func TestUsageWriter_OnBatchAndQueueLen(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s storetest.Store) {
		t.Parallel()
		ctx := context.Background()
		db := s.Open(t)
		var (
			mu      sync.Mutex
			batches []int
		)
		w := store.NewUsageWriter(db, store.UsageWriterOptions{BatchSize: 4, FlushInterval: time.Hour})
		w.Logger = quiet
		w.OnBatch = func(rows int, d time.Duration, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil || d < 0 {
				t.Errorf("OnBatch(%d, %v, %v): want a written batch", rows, d, err)
			}
			batches = append(batches, rows)
		}
		t.Cleanup(func() {
			if err := w.Close(ctx); err != nil {
				t.Error(err)
			}
		})
		for i := range 3 {
			w.Record(llmgw.Usage{Time: time.UnixMilli(1), RequestID: fmt.Sprint(i)})
		}
		if n := w.QueueLen(); n != 3 {
			t.Errorf("QueueLen = %d, want 3 before a batch is full", n)
		}
		for i := range 7 {
			w.Record(llmgw.Usage{Time: time.UnixMilli(1), RequestID: fmt.Sprint("b", i)})
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if n := w.QueueLen(); n != 0 {
			t.Errorf("QueueLen after Flush = %d, want 0", n)
		}
		mu.Lock()
		defer mu.Unlock()
		sum := 0
		for _, n := range batches {
			if n > 4 {
				t.Errorf("a batch of %d rows, want at most BatchSize 4", n)
			}
			sum += n
		}
		if sum != 10 {
			t.Errorf("OnBatch rows sum to %d (%v), want 10", sum, batches)
		}
	})
}

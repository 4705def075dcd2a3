package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmgw/llmgw"
)

// UsageWriterOptions configure a UsageWriter. Zero values take the defaults.
type UsageWriterOptions struct {
	// QueueSize is how many rows may wait to be written before Record
	// blocks. Default 65536.
	QueueSize int
	// BatchSize is the most rows written in one transaction; a full batch
	// is written at once. Default 256.
	BatchSize int
	// FlushInterval is the longest a row waits in a partial batch.
	// Default 1s.
	FlushInterval time.Duration
}

// Backoff between attempts to write a batch that failed.
const (
	minRetryDelay = 100 * time.Millisecond
	maxRetryDelay = 30 * time.Second
)

// UsageWriter writes the request log, the per-account statistics and the
// server's account states in the background, off the request path. It
// implements the proxy's UsageRecorder. Its methods are safe for concurrent
// use.
//
// It never drops a row: Record blocks while the queue is full, and a batch
// that fails to commit is kept and retried with backoff. A crash loses at
// most the rows of the last FlushInterval.
type UsageWriter struct {
	// Logger receives the writer's errors, already scoped by the owner
	// (component=…). Set it, if at all, before the first call of any
	// method; nil means slog.Default().
	Logger *slog.Logger

	db  *DB
	opt UsageWriterOptions

	// queue is never closed, so that a Record racing Close cannot panic.
	queue  chan llmgw.Usage
	flushc chan chan error

	startOnce sync.Once
	stopOnce  sync.Once
	stop      chan struct{}   // closed by Close
	closeCtx  context.Context // bounds the final write; set before stop is closed
	// closing is closed by the writer goroutine once it stops taking rows
	// from the queue. Whoever enqueues after that writes the rows itself.
	closing  chan struct{}
	done     chan struct{} // closed when the goroutine has returned
	closeErr error         // set before done is closed
	// runCtx bounds the goroutine's writes; Close cancels it when its own
	// ctx ends, so that a write stuck waiting for a lock stops too.
	runCtx    context.Context
	cancelRun context.CancelFunc

	stateMu sync.Mutex
	pending accountUpdates // states and windows for the next batch

	waits atomic.Int64
}

// NewUsageWriter returns a writer to db. Its one goroutine starts with the
// first call of any method and ends with Close, which the owner must call.
func NewUsageWriter(db *DB, opt UsageWriterOptions) *UsageWriter {
	if db == nil {
		panic("store: NewUsageWriter needs a DB")
	}
	if opt.QueueSize <= 0 {
		opt.QueueSize = 65536
	}
	if opt.BatchSize <= 0 {
		opt.BatchSize = 256
	}
	if opt.FlushInterval <= 0 {
		opt.FlushInterval = time.Second
	}
	runCtx, cancelRun := context.WithCancel(context.Background())
	return &UsageWriter{
		runCtx:    runCtx,
		cancelRun: cancelRun,
		db:        db,
		opt:       opt,
		queue:     make(chan llmgw.Usage, opt.QueueSize),
		flushc:    make(chan chan error),
		stop:      make(chan struct{}),
		closing:   make(chan struct{}),
		done:      make(chan struct{}),
	}
}

// start launches the goroutine on first use. Starting lazily, rather than in
// NewUsageWriter, lets the owner set Logger after construction without a
// data race.
func (w *UsageWriter) start() {
	w.startOnce.Do(func() {
		go w.run(w.logger())
	})
}

// Record enqueues one request's usage. It returns at once unless the queue is
// full, in which case it waits for room (counted by Waits): accounting never
// drops a row. After Close it writes the row itself, synchronously.
func (w *UsageWriter) Record(u llmgw.Usage) {
	w.start()
	select {
	case <-w.closing:
		w.writeLate([]llmgw.Usage{u})
		return
	default:
	}
	select {
	case w.queue <- u:
	default:
		w.waits.Add(1)
		select {
		case w.queue <- u:
		case <-w.closing:
			w.writeLate([]llmgw.Usage{u})
			return
		}
	}
	// The writer may have taken its last look at the queue between our check
	// of closing and our send; then nobody else will take the row out.
	select {
	case <-w.closing:
		w.drainLate()
	default:
	}
}

// RecordState saves an account state the server decided. States are
// coalesced per account, the latest (by At) winning, and written with the
// next batch. A state with an unknown status is a bug in the caller; it is
// logged and ignored, because it would fail every batch it joined.
func (w *UsageWriter) RecordState(id int64, st llmgw.AccountState) {
	w.start()
	if !validStatus(st.Status) {
		w.logger().Error("account state ignored: unknown status", "account_id", id, "status", st.Status)
		return
	}
	w.stateMu.Lock()
	w.pending.addState(id, st)
	w.stateMu.Unlock()
	w.afterClose()
}

// RecordWindows saves the subscription windows an OAuth account's response
// reported. Like states they are coalesced per account, the latest (by At)
// winning, and written with the next batch. Windows of an account removed
// meanwhile are dropped.
func (w *UsageWriter) RecordWindows(id int64, ws llmgw.Windows) {
	w.start()
	w.stateMu.Lock()
	w.pending.addWindows(id, ws)
	w.stateMu.Unlock()
	w.afterClose()
}

// afterClose writes pending states and windows synchronously if the writer
// has taken its last look (as Record does for rows).
func (w *UsageWriter) afterClose() {
	select {
	case <-w.closing:
		w.writeLate(nil)
	default:
	}
}

// accountUpdates are account states and windows waiting for a batch.
type accountUpdates struct {
	states  map[int64]llmgw.AccountState
	windows map[int64]llmgw.Windows
}

func (u *accountUpdates) empty() bool { return len(u.states) == 0 && len(u.windows) == 0 }

// addState keeps st unless a newer state of the account is pending.
func (u *accountUpdates) addState(id int64, st llmgw.AccountState) {
	if u.states == nil {
		u.states = make(map[int64]llmgw.AccountState)
	}
	if cur, ok := u.states[id]; !ok || !st.At.Before(cur.At) {
		u.states[id] = st
	}
}

// addWindows keeps ws unless newer windows of the account are pending.
func (u *accountUpdates) addWindows(id int64, ws llmgw.Windows) {
	if u.windows == nil {
		u.windows = make(map[int64]llmgw.Windows)
	}
	if cur, ok := u.windows[id]; !ok || !ws.At.Before(cur.At) {
		u.windows[id] = ws
	}
}

// Flush waits until every row recorded and every state saved before the call
// is committed, or until ctx is done. While the database is failing, Flush
// keeps waiting for the retries.
func (w *UsageWriter) Flush(ctx context.Context) error {
	w.start()
	reply := make(chan error, 1) // buffered: the writer never waits for us
	select {
	case w.flushc <- reply:
	case <-w.done:
		return w.closeErr // Close has written (or given up on) everything
	case <-ctx.Done():
		return fmt.Errorf("flush usage: %w", ctx.Err())
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return fmt.Errorf("flush usage: %w", ctx.Err())
	}
}

// Close writes everything still queued and stops the goroutine. If ctx ends
// first, it returns an error saying how many rows were not written. Record
// and RecordState remain safe after Close and write synchronously.
func (w *UsageWriter) Close(ctx context.Context) error {
	w.start()
	first := false
	w.stopOnce.Do(func() {
		first = true
		w.closeCtx = ctx
		close(w.stop)
	})
	if first {
		// The writer gives up when ctx ends, so this wait is bounded by ctx.
		stopCancel := context.AfterFunc(ctx, w.cancelRun)
		<-w.done
		stopCancel()
		w.cancelRun()
		return w.closeErr
	}
	select {
	case <-w.done:
		return w.closeErr
	case <-ctx.Done(): // a later Close must not outwait its own ctx
		return fmt.Errorf("close usage writer: %w", ctx.Err())
	}
}

// Waits returns how many Record calls found the queue full and had to wait.
func (w *UsageWriter) Waits() int64 { return w.waits.Load() }

// logger returns Logger as given, since the owner scopes it, or a scoped
// default.
func (w *UsageWriter) logger() *slog.Logger {
	if w.Logger != nil {
		return w.Logger
	}
	return slog.Default().With("component", "usage_writer")
}

// run is the writer goroutine. It owns batch and the flush waiters.
func (w *UsageWriter) run(log *slog.Logger) {
	defer close(w.done)
	ticker := time.NewTicker(w.opt.FlushInterval)
	defer ticker.Stop()

	var (
		batch   []llmgw.Usage
		waiters []chan error
		retry   *time.Timer // non-nil while backing off after a failed write
		delay   time.Duration
		failed  int // consecutive failed writes
	)
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		// While backing off, leave rows in the queue: once it fills up,
		// Record blocks, which is the backpressure we want rather than an
		// ever-growing batch in memory.
		queue := w.queue
		var retryc <-chan time.Time
		if retry != nil {
			queue, retryc = nil, retry.C
		}
		select {
		case u := <-queue:
			batch = append(batch, u)
			if len(batch) < w.opt.BatchSize {
				continue
			}
		case <-ticker.C:
		case <-retryc:
			retry = nil
		case reply := <-w.flushc:
			// Every row recorded before Flush was called is in the queue
			// by now, among the first len(queue) rows.
			for n := len(w.queue); n > 0; n-- {
				batch = append(batch, <-w.queue)
			}
			waiters = append(waiters, reply)
		case <-w.stop:
			w.shutdown(batch, waiters)
			return
		}
		if retry != nil {
			continue
		}
		var err error
		if batch, err = w.write(w.runCtx, batch); err != nil {
			failed++
			// Log a repeated error once, and the recovery. An error from
			// Close cancelling runCtx is Close's to report.
			if failed == 1 && w.runCtx.Err() == nil {
				log.Error("usage not written; retrying", "rows", len(batch), "err", err)
			}
			delay = min(max(2*delay, minRetryDelay), maxRetryDelay)
			retry = time.NewTimer(delay)
			continue
		}
		if failed > 0 {
			log.Info("usage written again", "failed_attempts", failed)
		}
		failed, delay = 0, 0
		for _, reply := range waiters {
			reply <- nil
		}
		waiters = waiters[:0]
	}
}

// shutdown is run's last step: take every remaining row, write with retries
// until the close context ends, and report what could not be written.
func (w *UsageWriter) shutdown(batch []llmgw.Usage, waiters []chan error) {
	ctx := w.closeCtx
	// From here on, Record and RecordState write for themselves; this is our
	// last look at the queue.
	close(w.closing)
	for n := len(w.queue); n > 0; n-- {
		select {
		case u := <-w.queue:
			batch = append(batch, u)
		default: // a racing Record's drainLate took it
		}
	}
	var err error
	delay := minRetryDelay
	for {
		if batch, err = w.write(ctx, batch); err == nil {
			break
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
			delay = min(2*delay, maxRetryDelay)
			continue
		case <-ctx.Done():
			t.Stop()
		}
		// Returned by Close, so not logged here.
		w.closeErr = fmt.Errorf("close usage writer: %d usage rows not written: %w", len(batch), errors.Join(ctx.Err(), err))
		break
	}
	for _, reply := range waiters {
		reply <- w.closeErr
	}
}

// write commits batch, BatchSize rows per transaction, with the pending
// account states and windows in the first one. It returns the rows it could
// not write.
func (w *UsageWriter) write(ctx context.Context, batch []llmgw.Usage) ([]llmgw.Usage, error) {
	upd := w.takeUpdates()
	if len(batch) == 0 && upd == nil {
		return batch, nil
	}
	for i := 0; i < len(batch) || upd != nil; {
		n := min(len(batch)-i, w.opt.BatchSize)
		if err := w.db.writeUsage(ctx, batch[i:i+n], upd); err != nil {
			w.putUpdates(upd)
			rest := append(batch[:0], batch[i:]...)
			return rest, err
		}
		upd = nil
		i += n
	}
	clear(batch) // drop references to the strings the rows hold
	return batch[:0], nil
}

// takeUpdates removes and returns the pending states and windows, nil if
// there are none.
func (w *UsageWriter) takeUpdates() *accountUpdates {
	w.stateMu.Lock()
	defer w.stateMu.Unlock()
	if w.pending.empty() {
		return nil
	}
	u := w.pending
	w.pending = accountUpdates{}
	return &u
}

// putUpdates returns states and windows that could not be written, unless
// newer ones for the same account arrived meanwhile.
func (w *UsageWriter) putUpdates(u *accountUpdates) {
	if u == nil {
		return
	}
	w.stateMu.Lock()
	defer w.stateMu.Unlock()
	for id, st := range u.states {
		if cur, ok := w.pending.states[id]; !ok || cur.At.Before(st.At) {
			w.pending.addState(id, st)
		}
	}
	for id, ws := range u.windows {
		if cur, ok := w.pending.windows[id]; !ok || cur.At.Before(ws.At) {
			w.pending.addWindows(id, ws)
		}
	}
}

// drainLate takes rows left in the queue after the writer's last look at it
// and writes them synchronously.
func (w *UsageWriter) drainLate() {
	var rows []llmgw.Usage
	for empty := false; !empty; {
		select {
		case u := <-w.queue:
			rows = append(rows, u)
		default:
			empty = true
		}
	}
	if len(rows) > 0 {
		w.writeLate(rows)
	}
}

// writeLate writes rows (and any pending states) after Close, when there is
// no goroutine to do it. It tries once: the owner normally closes the DB
// right after the writer, so retrying would only delay the caller. There is
// no one to return an error to, so a failure is logged with the loss.
func (w *UsageWriter) writeLate(rows []llmgw.Usage) {
	if rows, err := w.write(context.Background(), rows); err != nil {
		w.logger().Error("usage recorded after close not written", "rows", len(rows), "err", err)
	}
}

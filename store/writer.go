package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmgw/llmgw"
)

// UsageWriterOptions configure a UsageWriter. Zero values take the defaults.
type UsageWriterOptions struct {
	// QueueSize is how many rows may wait to be written before Record
	// blocks. Default 65536. It is a bound, not an allocation: the queue
	// grows with the rows waiting and gives the memory back after a burst.
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
// that fails to commit is kept and retried with backoff. Nor does it write
// one twice: a retried batch skips the rows whose request id is in the log
// already, in case the failed COMMIT had in fact happened. A crash loses at
// most the rows of the last FlushInterval.
type UsageWriter struct {
	// Logger receives the writer's errors, already scoped by the owner
	// (component=…). Set it, if at all, before the first call of any
	// method; nil means slog.Default().
	Logger *slog.Logger
	// OnBatch, if set, is told of each transaction the writer commits or
	// fails to commit: the usage rows in it, how long it took, and the
	// error. It runs on the writer's goroutine and must not block. Set it,
	// if at all, before the first call of any method.
	OnBatch func(rows int, d time.Duration, err error)

	db  *DB
	opt UsageWriterOptions

	// mu guards queue and closed. Record adds to queue and the writer
	// goroutine takes from it; room is signalled for each row taken, and
	// broadcast when closed is set, so that a Record waiting for room goes on.
	mu     sync.Mutex
	room   *sync.Cond
	queue  usageQueue
	closed bool // the writer has taken its last rows; Record writes for itself
	// ready wakes the writer when the queue holds a batch, or is full. It
	// holds at most one signal, and is never closed, so that a Record racing
	// Close cannot panic.
	ready   chan struct{}
	readyAt int // queued rows at which Record signals ready
	// stateReady wakes the writer to write pending account states at once,
	// without the rows: other replicas learn of a broken or cooling account
	// from the database. It holds at most one signal.
	stateReady chan struct{}
	spare      int // the most rows of memory the queue and batch keep once drained
	flushc     chan chan error

	startOnce sync.Once
	stopOnce  sync.Once
	stop      chan struct{}   // closed by Close
	closeCtx  context.Context // bounds the final write; set before stop is closed
	// closing is closed by the writer goroutine after it has set closed.
	// Whoever saves a state after that writes it itself.
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
	w := &UsageWriter{
		runCtx:     runCtx,
		cancelRun:  cancelRun,
		db:         db,
		opt:        opt,
		ready:      make(chan struct{}, 1),
		stateReady: make(chan struct{}, 1),
		readyAt:    min(opt.BatchSize, opt.QueueSize),
		spare:      min(4*opt.BatchSize, opt.QueueSize),
		flushc:     make(chan chan error),
		stop:       make(chan struct{}),
		closing:    make(chan struct{}),
		done:       make(chan struct{}),
	}
	w.room = sync.NewCond(&w.mu)
	w.queue = usageQueue{max: opt.QueueSize, spare: w.spare}
	return w
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
	w.mu.Lock()
	if w.queue.full() && !w.closed {
		w.waits.Add(1)
		for w.queue.full() && !w.closed {
			w.room.Wait()
		}
	}
	if w.closed {
		w.mu.Unlock()
		w.writeLate([]llmgw.Usage{u})
		return
	}
	w.queue.push(u)
	ready := w.queue.n >= w.readyAt
	w.mu.Unlock()
	if ready {
		w.signalReady()
	}
}

// signalReady wakes the writer goroutine unless a wake-up is pending.
func (w *UsageWriter) signalReady() {
	select {
	case w.ready <- struct{}{}:
	default:
	}
}

// take moves up to k queued rows, oldest first, to the end of batch and
// returns batch. It lets as many waiting Record calls go on, and wakes the
// writer again if a batch is left in the queue.
func (w *UsageWriter) take(batch []llmgw.Usage, k int) []llmgw.Usage {
	w.mu.Lock()
	n := w.queue.n
	batch = w.queue.popTo(batch, k)
	for range n - w.queue.n {
		w.room.Signal()
	}
	more := w.queue.n >= w.readyAt
	w.mu.Unlock()
	if more {
		w.signalReady()
	}
	return batch
}

// usageQueue is a first-in first-out ring of rows. It grows as rows arrive,
// up to max, rather than being allocated up front, and gives its memory back
// when it empties holding more than spare rows of it. The UsageWriter's mu
// guards it.
type usageQueue struct {
	buf   []llmgw.Usage // buf[head] is the oldest of the n rows
	head  int
	n     int
	max   int
	spare int
}

func (q *usageQueue) full() bool { return q.n >= q.max }

// push adds u after the newest row. The caller checks full first.
func (q *usageQueue) push(u llmgw.Usage) {
	if q.n == len(q.buf) {
		buf := make([]llmgw.Usage, min(max(2*len(q.buf), 16), q.max))
		c := copy(buf, q.buf[q.head:])
		copy(buf[c:], q.buf[:q.head])
		q.buf, q.head = buf, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = u
	q.n++
}

// popTo moves up to k of the oldest rows to the end of dst and returns dst.
func (q *usageQueue) popTo(dst []llmgw.Usage, k int) []llmgw.Usage {
	k = max(0, min(k, q.n))
	for range k {
		dst = append(dst, q.buf[q.head])
		q.buf[q.head] = llmgw.Usage{} // drop references to the row's strings
		q.head = (q.head + 1) % len(q.buf)
	}
	q.n -= k
	if q.n == 0 {
		q.head = 0
		if len(q.buf) > q.spare {
			q.buf = nil // give a burst's memory back
		}
	}
	return dst
}

// RecordState saves an account state the server decided. States are
// coalesced per account, the latest (by At) winning, and written at once,
// in a transaction of their own (if it fails, with the next batch), so that
// other processes on the database learn of them without waiting for a
// batch of rows. A state with an unknown status is a bug in the caller; it is
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
	select {
	case w.stateReady <- struct{}{}:
	default:
	}
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

// QueueLen returns how many rows wait in the queue to be written.
func (w *UsageWriter) QueueLen() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.queue.n
}

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
		ready, stateReady := w.ready, w.stateReady
		var retryc <-chan time.Time
		if retry != nil {
			ready, stateReady, retryc = nil, nil, retry.C
		}
		select {
		case <-ready:
			batch = w.take(batch, w.opt.BatchSize-len(batch))
			if len(batch) < w.opt.BatchSize {
				continue
			}
		case <-stateReady:
			// The states alone; the rows wait for their batch. States
			// that fail go back to pending, for the next batch's retries.
			_, _ = w.write(w.runCtx, nil)
			continue
		case <-ticker.C:
			if retry == nil {
				batch = w.take(batch, w.opt.BatchSize-len(batch))
			}
		case <-retryc:
			retry = nil
			batch = w.take(batch, w.opt.BatchSize-len(batch))
		case reply := <-w.flushc:
			// Every row recorded before Flush was called is in the queue
			// by now.
			batch = w.take(batch, math.MaxInt)
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
		if cap(batch) > w.spare {
			batch = nil // give a Flush's memory back
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
	w.mu.Lock()
	batch = w.queue.popTo(batch, math.MaxInt)
	w.closed = true
	w.room.Broadcast()
	w.mu.Unlock()
	close(w.closing)
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
// not write. Writing rows again that a failed write did commit is harmless:
// writeUsage skips them.
func (w *UsageWriter) write(ctx context.Context, batch []llmgw.Usage) ([]llmgw.Usage, error) {
	upd := w.takeUpdates()
	if len(batch) == 0 && upd == nil {
		return batch, nil
	}
	for i := 0; i < len(batch) || upd != nil; {
		n := min(len(batch)-i, w.opt.BatchSize)
		start := time.Now()
		skipped, err := w.db.writeUsage(ctx, batch[i:i+n], upd)
		if w.OnBatch != nil {
			w.OnBatch(n, time.Since(start), err)
		}
		if err != nil {
			w.putUpdates(upd)
			rest := append(batch[:0], batch[i:]...)
			return rest, err
		}
		if skipped > 0 {
			// A write that failed before this one had committed after all
			// (its COMMIT's answer was lost): those rows and their
			// statistics are in already, and were not written twice.
			w.logger().Info("usage rows of a failed write were committed; skipped", "rows", skipped)
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

// writeLate writes rows (and any pending states) after Close, when there is
// no goroutine to do it. It tries once: the owner normally closes the DB
// right after the writer, so retrying would only delay the caller. There is
// no one to return an error to, so a failure is logged with the loss.
func (w *UsageWriter) writeLate(rows []llmgw.Usage) {
	if rows, err := w.write(context.Background(), rows); err != nil {
		w.logger().Error("usage recorded after close not written", "rows", len(rows), "err", err)
	}
}

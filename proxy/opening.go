package proxy

import (
	"net/http"
	"sync"
	"time"
)

// keepAliveComment is an SSE comment: every SSE parser skips it, so it keeps
// a connection busy without saying anything.
var keepAliveComment = []byte(": keep-alive\n\n")

// opening keeps a streaming client's connection alive while the answer's
// opening is held back: while the request waits for a slot, fails over, or
// waits for the upstream's first content. Load balancers such as nginx and
// AWS's cut a connection after 60 s without a byte, and an opening can take
// longer than that (several slow tries in a row).
//
// For the first interval it sends nothing, so a request that fails quickly
// still gets its error as an HTTP status. After that it commits to a 200
// stream and sends SSE comments, which carry no content: failover stays
// possible, and a final failure becomes the stream's error event.
type opening struct {
	w           http.ResponseWriter
	contentType string
	interval    time.Duration
	// timer writes each keep-alive in a goroutine of its own, made only
	// when it strikes: most openings end before the first interval, and a
	// goroutine per request (with the thread wake-up it costs) was a sixth
	// of a streamed request's CPU time in BenchmarkGateway.
	timer *time.Timer

	mu        sync.Mutex
	committed bool // headers sent; read without mu only after end
	ended     bool
}

// holdOpening starts keep-alives for a stream of contentType written by enc,
// which also writes the stream's error if the request then fails. Answers
// that are not SSE get none (a JSON array stream cannot carry comments).
func (s *Server) holdOpening(w http.ResponseWriter, e *entry, contentType string, enc StreamEncoder) {
	e.stream = enc
	if contentType != "text/event-stream" {
		return
	}
	o := &opening{w: w, contentType: contentType, interval: s.cfg.KeepAlive}
	e.open = o
	o.mu.Lock() // the timer may strike before it is stored
	o.timer = time.AfterFunc(o.interval, o.keepAlive)
	o.mu.Unlock()
}

// keepAlive commits to a stream if it has not yet, writes one comment and
// sets the timer for the next, unless the opening ended meanwhile.
func (o *opening) keepAlive() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended {
		return
	}
	if !o.committed {
		o.committed = true
		streamHeaders(o.w.Header(), o.contentType)
		o.w.WriteHeader(http.StatusOK)
	}
	_, err := o.w.Write(keepAliveComment)
	if err == nil {
		err = http.NewResponseController(o.w).Flush()
	}
	if err == nil {
		o.timer.Reset(o.interval)
	}
	// Otherwise the client left; the handler finds out on its own.
}

// end stops the keep-alives; the handler owns the writer again when it
// returns (a keep-alive being written holds mu until it is out). It is
// safe on a nil opening and safe to call twice.
func (o *opening) end() {
	if o == nil {
		return
	}
	o.mu.Lock()
	o.ended = true
	o.mu.Unlock()
	o.timer.Stop()
}

// isCommitted reports, after end, whether the stream's headers were sent.
func (o *opening) isCommitted() bool { return o != nil && o.committed }

// streamHeaders sets the headers of a stream answer.
func streamHeaders(h http.Header, contentType string) {
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
}

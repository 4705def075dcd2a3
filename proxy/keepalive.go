package proxy

import (
	"time"

	"github.com/llmgw/llmgw/proxy/sse"
)

// pingData is the data of Anthropic's own keep-alive event.
var pingData = []byte(`{"type":"ping"}`)

// pingFrame is a whole ping event, as Anthropic sends it.
var pingFrame = sse.Frame("ping", pingData)

// nextEvent is one read from an upstream stream.
type nextEvent struct {
	ev  sse.Event
	err error
}

// keepAlive reads a stream's events for one consumer and reports silences:
// next returns the next event, or a synthetic ping event when the upstream
// has said nothing for the interval (long thinking, a slow tool input), so
// that clients and load balancers in between do not give up on the stream.
// The reader goroutine reads only when asked, so an event's bytes stay valid
// until the next call, and it ends when the stream does or stop is called.
type keepAlive struct {
	events   *sse.Reader
	interval time.Duration
	ask      chan struct{}
	out      chan nextEvent
	done     chan struct{}
	timer    *time.Timer
	pending  bool // a read was asked for and not yet delivered
}

func newKeepAlive(events *sse.Reader, interval time.Duration) *keepAlive {
	k := &keepAlive{events: events, interval: interval, ask: make(chan struct{}), out: make(chan nextEvent), done: make(chan struct{}),
		timer: time.NewTimer(interval)}
	go k.read()
	return k
}

func (k *keepAlive) read() {
	for {
		select {
		case <-k.ask:
		case <-k.done:
			return
		}
		ev, err := k.events.Next()
		select {
		case k.out <- nextEvent{ev, err}:
		case <-k.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// next returns the next event, or a ping event after a silence of interval.
func (k *keepAlive) next() (sse.Event, error) {
	if !k.pending {
		k.ask <- struct{}{}
		k.pending = true
	}
	// Since Go 1.23 Reset needs no drain: a stale tick is never delivered.
	k.timer.Reset(k.interval)
	select {
	case n := <-k.out:
		k.pending = false
		return n.ev, n.err
	case <-k.timer.C:
		return sse.Event{Name: "ping", Data: pingData, Raw: pingFrame}, nil
	}
}

// idle reports whether the next event is not already at hand, so output
// should be flushed before waiting for it. While a read is in flight the
// reader belongs to the reader goroutine and is not touched.
func (k *keepAlive) idle() bool {
	return k.pending || !k.events.Buffered()
}

// stop ends the reader goroutine. The caller must also close the stream's
// body, which ends a read in progress.
func (k *keepAlive) stop() {
	k.timer.Stop()
	close(k.done)
}

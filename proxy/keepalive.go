package proxy

import (
	"sync"
	"time"

	"github.com/llmgw/llmgw/proxy/sse"
)

// pingData is the data of Anthropic's own keep-alive event.
var pingData = []byte(`{"type":"ping"}`)

// pingFrame is a whole ping event, as Anthropic sends it.
var pingFrame = sse.Frame("ping", pingData)

// pingEvent is the keep-alive a stream's encoder is given after a silence,
// as if the upstream had sent it: each dialect writes it its own way.
var pingEvent = sse.Event{Name: "ping", Data: pingData, Raw: pingFrame}

// keepAlive sends a ping to the client when the stream has been silent for
// its interval (long thinking, a slow tool input), so that clients and load
// balancers in between do not give up on it. The stream loop reads the
// upstream itself and holds the lock while it writes; a timer, reset at
// every flush, writes the ping under the same lock. So no event crosses a
// goroutine, and the client's writer is never used by two at once.
type keepAlive struct {
	mu       sync.Mutex
	interval time.Duration
	timer    *time.Timer
	stopped  bool
	ping     func() bool // writes and flushes a ping; false when the client is gone
}

// newKeepAlive starts the silence timer; ping runs under the lock when it
// strikes.
func newKeepAlive(interval time.Duration, ping func() bool) *keepAlive {
	k := &keepAlive{interval: interval, ping: ping}
	k.timer = time.AfterFunc(interval, k.strike)
	return k
}

func (k *keepAlive) strike() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped {
		return
	}
	if k.ping() {
		k.timer.Reset(k.interval)
	}
}

// lock takes the client's writer from the timer.
func (k *keepAlive) lock() { k.mu.Lock() }

// unlock gives it back; moved says the stream just gave the client an
// event, so the silence starts again.
func (k *keepAlive) unlock(moved bool) {
	if moved {
		// Since Go 1.23 Reset needs no care about a tick in flight: a
		// callback that already started waits for the lock, writes one
		// early ping at worst, and resets the timer itself.
		k.timer.Reset(k.interval)
	}
	k.mu.Unlock()
}

// stop ends the timer. Once it returns no ping is written, so the caller may
// write to the client.
func (k *keepAlive) stop() {
	k.mu.Lock()
	k.stopped = true
	k.mu.Unlock()
	k.timer.Stop()
}

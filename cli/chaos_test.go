package cli

// The chaos storm (issue 9, "A fault-injection suite of our own"): llmgw
// serve, in process, in front of a fault proxy in front of the fake
// upstream, under many concurrent clients. The short storm runs in every
// go test ./cli/; `make chaos` runs the long one by setting
// LLMGW_CHAOS_SECONDS and LLMGW_CHAOS_CLIENTS (and LLMGW_CHAOS_SEED to
// replay a storm). All traffic stays on 127.0.0.1 and the run stops by
// itself.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/llmgw/llmgw/proxy/upstreamtest"
	"github.com/llmgw/llmgw/store"
)

// Obviously fake upstream keys; the fault proxy tells the accounts apart by
// them.
const (
	chaosHealthyKey = "sk-ant-chaos-healthy-FAKE-0000000000"
	chaosFlakyKey   = "sk-ant-chaos-flaky-FAKE-00000000000"
	chaosStallyKey  = "sk-ant-chaos-stally-FAKE-0000000000"
)

const (
	// chaosTimeoutSeconds is server.timeout_seconds during the storm.
	chaosTimeoutSeconds = 10
	// chaosFirstByteSeconds is upstream.first_byte_timeout_seconds: stalls
	// before the first content last longer, so they must fail over.
	chaosFirstByteSeconds = 2
	// chaosStall is how long a bounded stall before the first content lasts:
	// longer than the first-byte timeout, shorter than the server timeout.
	chaosStall = 3 * time.Second
	// chaosFlakyCap is --max-concurrency of the flaky account; stally's is a
	// quarter of the clients, so that stalls pile up on it.
	chaosFlakyCap = 2
	// chaosGiveUpShare is the share of requests whose client gives up after
	// a random 0.3–3 s, as impatient clients do: during stalls, often in
	// the middle of a failover (where issue 9 found slots leaking).
	chaosGiveUpShare = 0.25
	// chaosSafety bounds one request from the client's side: two failovers
	// on the header timeout, and then some. A request still unanswered then
	// counts as a failure of the gateway, not as a client giving up.
	chaosSafety = 2*chaosTimeoutSeconds*time.Second + 5*time.Second
	// chaosQuiet bounds the wait for every account to be active again: the
	// longest cooldown the storm can cause is the proxy's 10 s after a
	// streak of 5xx (429s here say retry-after: 1), plus the state's
	// write-back within a second.
	chaosQuiet = 20 * time.Second
	// chaosGoroutineAllowance and chaosFDAllowance are the growth allowed
	// once every connection pool (the clients', the gateway's upstream
	// pool, the fault proxy's) has been emptied: none is expected.
	chaosGoroutineAllowance = 10
	chaosFDAllowance        = 5
)

// chaosSize is how big a storm is.
type chaosSize struct {
	clients int
	dur     time.Duration
	seed    uint64
	long    bool
}

// chaosSizeFromEnv returns the long storm's size if LLMGW_CHAOS_SECONDS or
// LLMGW_CHAOS_CLIENTS is set (defaults 45 s and 200), else the short one's.
func chaosSizeFromEnv(t *testing.T) chaosSize {
	t.Helper()
	num := func(name string, def int) int {
		v := os.Getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a positive number", name, v)
		}
		return n
	}
	sz := chaosSize{clients: 40, dur: 3 * time.Second, seed: uint64(num("LLMGW_CHAOS_SEED", 9))}
	if os.Getenv("LLMGW_CHAOS_SECONDS") != "" || os.Getenv("LLMGW_CHAOS_CLIENTS") != "" {
		sz.long = true
		sz.clients = num("LLMGW_CHAOS_CLIENTS", 200)
		sz.dur = time.Duration(num("LLMGW_CHAOS_SECONDS", 45)) * time.Second
	}
	return sz
}

// chaosPolicy is the fault mix per account: healthy passes everything;
// flaky answers every other request with a 529, a 429, a reset or a
// hang-up before or after the first content (alternating, so that it is not
// cooling down all the time after a streak of 5xx); stally stalls before the
// headers and before the first content (for chaosStall, or until the
// request ends) and after content (briefly), and hangs up.
func chaosPolicy(seed uint64) upstreamtest.Policy {
	type F = upstreamtest.Fault
	w := func(weight int, f F) upstreamtest.Weighted { return upstreamtest.Weighted{Weight: weight, Fault: f} }
	const before = upstreamtest.BeforeHeaders
	// Events of the fake's stream: message_start, content_block_start and
	// ping, then the content deltas from the 4th; so after 0–3 events
	// nothing content-bearing has passed, after 6 or more something has.
	flakyFaults := upstreamtest.Mix(seed,
		w(4, F{Kind: upstreamtest.Overloaded}),
		w(1, F{Kind: upstreamtest.RateLimited, RetryAfter: 1}),
		w(2, F{Kind: upstreamtest.Reset}),
		w(1, F{Kind: upstreamtest.HangUp, AfterEvents: before}),
		w(1, F{Kind: upstreamtest.HangUp, AfterEvents: 0}),
		w(1, F{Kind: upstreamtest.HangUp, AfterEvents: 1}),
		w(1, F{Kind: upstreamtest.HangUp, AfterEvents: 3}),
		w(2, F{Kind: upstreamtest.HangUp, AfterEvents: 6}),
		w(2, F{Kind: upstreamtest.HangUp, AfterEvents: 12}),
	)
	var flakyN atomic.Int64
	flaky := func(r *http.Request) F {
		if flakyN.Add(1)%2 == 0 {
			return F{}
		}
		return flakyFaults(r)
	}
	stally := upstreamtest.Mix(seed+1,
		w(10, F{}),
		w(2, F{Kind: upstreamtest.Stall, AfterEvents: before, Duration: chaosStall}),
		w(1, F{Kind: upstreamtest.Stall, AfterEvents: before}),
		w(2, F{Kind: upstreamtest.Stall, AfterEvents: 1, Duration: chaosStall}),
		w(1, F{Kind: upstreamtest.Stall, AfterEvents: 2}),
		w(2, F{Kind: upstreamtest.Stall, AfterEvents: 8, Duration: time.Second}),
		w(1, F{Kind: upstreamtest.HangUp, AfterEvents: 2}),
		w(2, F{Kind: upstreamtest.HangUp, AfterEvents: 9}),
	)
	return upstreamtest.ByKey(map[string]upstreamtest.Policy{chaosFlakyKey: flaky, chaosStallyKey: stally}, nil)
}

// chaosConfig writes the storm's config file: a short server timeout and a
// shorter time-to-first-byte limit, so that stalls fail over.
func chaosConfig(t *testing.T) string {
	t.Helper()
	return writeFile(t, "chaos.yaml", fmt.Sprintf("server:\n  timeout_seconds: %d\nupstream:\n  first_byte_timeout_seconds: %d\n",
		chaosTimeoutSeconds, chaosFirstByteSeconds))
}

// chaosOutcome is what one client request saw.
type chaosOutcome struct {
	tag       string // the client's own id, sent as the model name
	stream    bool
	requestID string // the gateway's x-request-id, if an answer came
	status    int    // HTTP status, 0 if none came
	content   bool   // some content reached the client
	complete  bool   // the whole answer did
	gaveUp    bool   // the client's own impatience ended it
	hung      bool   // chaosSafety ended it
	err       error
}

// failedBeforeContent: the client got an error status, no answer, or a
// stream that ended before any content, and did not give up itself.
func (o *chaosOutcome) failedBeforeContent() bool {
	return !o.complete && !o.gaveUp && !o.content
}

// midStream: content had reached the client when the answer failed.
func (o *chaosOutcome) midStream() bool { return !o.complete && !o.gaveUp && o.content }

// sseErrorEvent reports whether err is the SDK's rendering of an `event:
// error` in a 200 stream, as opposed to a broken connection or a stream that
// just stopped.
func sseErrorEvent(err error) bool {
	var apiErr *anthropic.Error
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode == http.StatusOK
	}
	return err != nil && strings.Contains(err.Error(), "received error while streaming")
}

func (o *chaosOutcome) describe() string {
	s := fmt.Sprintf("%s stream=%v status=%d content=%v id=%s", o.tag, o.stream, o.status, o.content, o.requestID)
	switch {
	case o.hung:
		s += ": no end after " + chaosSafety.String()
	case o.err != nil:
		s += ": " + o.err.Error()
	default:
		s += ": ended without message_stop or error"
	}
	return s
}

// chaosClient sends tagged requests through the gateway.
type chaosClient struct {
	sdk  *anthropic.Client
	http *http.Client
	next atomic.Int64
}

// newChaosClient returns a client of the gateway at url with its own
// connection pool, closed when the test ends. The SDK does not retry.
func newChaosClient(t *testing.T, url, key string, conns int) *chaosClient {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	c := anthropic.NewClient(option.WithBaseURL(url), option.WithAPIKey(key), option.WithMaxRetries(0), option.WithHTTPClient(hc))
	return &chaosClient{sdk: &c, http: hc}
}

// send makes one request, streaming or not; giveUp > 0 is the client's own
// deadline.
func (c *chaosClient) send(stream bool, giveUp time.Duration) chaosOutcome {
	o := chaosOutcome{tag: fmt.Sprintf("claude-chaos-%06d", c.next.Add(1)), stream: stream}
	ctx, cancel := context.WithTimeout(context.Background(), chaosSafety)
	defer cancel()
	if giveUp > 0 {
		var cancelGiveUp context.CancelFunc
		ctx, cancelGiveUp = context.WithTimeout(ctx, giveUp)
		defer cancelGiveUp()
	}
	p := anthropic.MessageNewParams{
		Model: anthropic.Model(o.tag), MaxTokens: 64,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(
			"chaos " + o.tag + ": answer at some length"))},
	}
	var resp *http.Response
	if stream {
		s := c.sdk.Messages.NewStreaming(ctx, p, option.WithResponseInto(&resp))
		for s.Next() {
			switch s.Current().Type {
			case "content_block_delta":
				o.content = true
			case "message_stop":
				o.complete = true
			}
		}
		o.err = s.Err()
		_ = s.Close()
		if o.err != nil {
			o.complete = false
		}
	} else {
		msg, err := c.sdk.Messages.New(ctx, p, option.WithResponseInto(&resp))
		o.err = err
		o.complete = err == nil && len(msg.Content) > 0
		o.content = o.complete
	}
	var apiErr *anthropic.Error
	if resp == nil && errors.As(o.err, &apiErr) {
		resp = apiErr.Response
	}
	if resp != nil {
		o.status = resp.StatusCode
		o.requestID = resp.Header.Get("X-Request-Id")
	}
	if !o.complete && ctx.Err() != nil {
		// A deadline ended it: the give-up one, which is the earlier, if set.
		o.gaveUp = giveUp > 0
		o.hung = !o.gaveUp
	}
	return o
}

// resources is what the leak check counts.
type resources struct{ goroutines, fds int }

func countResources() resources {
	r := resources{goroutines: runtime.NumGoroutine(), fds: -1}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		r.fds = len(ents)
	}
	return r
}

// settle empties every connection pool it can reach and waits until the
// counts fit within limit (or, for a baseline, stop falling), for up to
// 10 s. It returns the last counts.
func settle(limit *resources, closeIdle func()) resources {
	deadline := time.Now().Add(10 * time.Second)
	prev := resources{goroutines: -1}
	for {
		closeIdle()
		runtime.GC()
		r := countResources()
		done := limit == nil && r == prev
		if limit != nil {
			done = r.goroutines <= limit.goroutines && (r.fds < 0 || r.fds <= limit.fds)
		}
		if done || time.Now().After(deadline) {
			return r
		}
		prev = r
		time.Sleep(100 * time.Millisecond) // goroutines of closed connections exit on their own time; polling them
	}
}

func TestChaos(t *testing.T) {
	sz := chaosSizeFromEnv(t)
	if testing.Short() && !sz.long {
		t.Skip("the storm takes seconds; skipped with -short")
	}
	var holdCh atomic.Pointer[chan struct{}]
	up := upstreamtest.NewServer(t, upstreamtest.Reply(func(*upstreamtest.Request) upstreamtest.Response {
		// A little time between events, as a real stream has; and, for the
		// last burst, a hold after message_start.
		r := upstreamtest.Response{EventDelay: 2 * time.Millisecond}
		if ch := holdCh.Load(); ch != nil {
			r.Hold = *ch
		}
		return r
	}))
	fp := upstreamtest.NewFaultProxy(t, up.URL, nil)
	db := newDB(t)
	// healthy's cap is the number of clients: each client has one request
	// at a time, so healthy always has a free slot (at worst for the moment
	// a finished request takes to give its slot back, which a new one waits
	// for), and a failure before the first content is the gateway's own; yet
	// the sum of the caps is finite for the last burst. The faulty accounts come first (flaky,
	// then stally, then healthy), so that they are busy whenever they are
	// not cooling down; with three accounts and three attempts per request,
	// healthy is always within reach.
	caps := map[string]int{"flaky": chaosFlakyCap, "stally": max(4, sz.clients/4), "healthy": sz.clients}
	for _, a := range []struct{ name, key, priority string }{
		{"flaky", chaosFlakyKey, "0"}, {"stally", chaosStallyKey, "1"}, {"healthy", chaosHealthyKey, "2"},
	} {
		mustRun(t, "--db", db, "account", "add", "--name", a.name, "--api-key", a.key, "--base-url", fp.URL,
			"--max-concurrency", strconv.Itoa(caps[a.name]), "--priority", a.priority)
	}
	key := createKey(t, db, "chaos")
	srv := startServe(t, db, "--config", chaosConfig(t))
	slotSum := caps["flaky"] + caps["stally"] + caps["healthy"]
	c := newChaosClient(t, srv.URL, key, slotSum+8)
	closeIdle := func() {
		c.http.CloseIdleConnections()
		fp.CloseIdleConnections() // the gateway's upstream pool goes with it
	}
	var outcomes []chaosOutcome
	var mu sync.Mutex
	keep := func(o chaosOutcome) {
		mu.Lock()
		outcomes = append(outcomes, o)
		mu.Unlock()
	}
	started := time.Now()

	// Warm-up without faults, then the baseline of goroutines and fds.
	for i := range 6 {
		o := c.send(i%2 == 0, 0)
		if !o.complete {
			t.Fatalf("warm-up request failed: %s", o.describe())
		}
		keep(o)
	}
	before := settle(nil, closeIdle)

	// The storm.
	t.Logf("chaos: %d clients for %v, seed %d; accounts in priority order flaky (cap %d), stally (cap %d), healthy (cap %d); timeout %d s, first-byte timeout %d s",
		sz.clients, sz.dur, sz.seed, caps["flaky"], caps["stally"], caps["healthy"], chaosTimeoutSeconds, chaosFirstByteSeconds)
	fp.SetPolicy(chaosPolicy(sz.seed))
	stormEnd := time.Now().Add(sz.dur)
	var wg sync.WaitGroup
	for i := range sz.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(sz.seed, uint64(i)))
			for time.Now().Before(stormEnd) {
				var giveUp time.Duration
				if rng.Float64() < chaosGiveUpShare {
					giveUp = 300*time.Millisecond + time.Duration(rng.Int64N(int64(2700*time.Millisecond)))
				}
				keep(c.send(rng.Float64() < 0.7, giveUp))
				time.Sleep(rand.N(20 * time.Millisecond)) // think time, so the storm does not only measure CPU
			}
		}()
	}
	wg.Wait()
	tail := time.Since(stormEnd) // the last requests finishing
	faults := fp.Counts()
	fp.SetPolicy(nil)

	var (
		stormN, ok, gaveUp, beforeContent, hung, mid, midEvent int
		midAbrupt, failures                                    []string
	)
	mu.Lock()
	for _, o := range outcomes[6:] {
		stormN++
		switch {
		case o.complete:
			ok++
		case o.gaveUp:
			gaveUp++
		case o.failedBeforeContent():
			beforeContent++
			if o.hung {
				hung++
			}
			failures = append(failures, o.describe())
		case o.midStream():
			mid++
			if o.stream && sseErrorEvent(o.err) {
				midEvent++
			} else {
				midAbrupt = append(midAbrupt, o.describe())
			}
		}
	}
	mu.Unlock()
	t.Logf("storm: %d requests in %v (%.0f/s), the last one ending %v later: %d complete, %d gave up (client's own deadline), %d failed before the first content byte (%d of them unanswered after %v), %d failed mid-stream (%d as an SSE error event)",
		stormN, sz.dur, float64(stormN)/sz.dur.Seconds(), tail.Round(time.Millisecond), ok, gaveUp, beforeContent, hung, chaosSafety, mid, midEvent)
	for _, k := range []struct {
		name string
		key  string
	}{{"healthy", chaosHealthyKey}, {"flaky", chaosFlakyKey}, {"stally", chaosStallyKey}} {
		kc := fp.KeyCounts(k.key)
		t.Logf("upstream %-7s %5d requests: pass %d, 529 %d, 429 %d, reset %d, hang-up %d, stall %d, forward errors %d",
			k.name, kc.Requests(), kc.Pass, kc.Overloaded, kc.RateLimited, kc.Reset, kc.HangUp, kc.Stall, kc.Errors)
	}
	if faults.Faults() == 0 || ok == 0 {
		t.Fatalf("the storm injected %d faults and completed %d requests: the harness is broken", faults.Faults(), ok)
	}
	if beforeContent != 0 {
		t.Errorf("%d of %d requests failed before the first content byte while the healthy account had a free slot; the first ones:\n  %s",
			beforeContent, stormN, strings.Join(failures[:min(len(failures), 10)], "\n  "))
	}
	if len(midAbrupt) != 0 {
		t.Errorf("%d of %d mid-stream failures did not end with an SSE error event; the first ones:\n  %s",
			len(midAbrupt), mid, strings.Join(midAbrupt[:min(len(midAbrupt), 10)], "\n  "))
	}

	// A quiet period: every account is active again, with no cooldown.
	quietStart := time.Now()
	var accts []accountJSON
	var quietErr error
	for {
		accts = listJSON(t, db)
		quietErr = allActive(accts, time.Now())
		if quietErr == nil || time.Since(quietStart) > chaosQuiet {
			break
		}
		time.Sleep(200 * time.Millisecond) // polling state the server writes back in the background
	}
	if quietErr != nil {
		t.Errorf("accounts still not all active %v after the storm: %v", chaosQuiet, quietErr)
	} else {
		t.Logf("all accounts active again %v after the storm", time.Since(quietStart).Round(100*time.Millisecond))
	}

	// Every slot is free: a burst of as many requests as there are slots
	// runs all at once, each held by the fake before its answer. The burst
	// is not streamed: a held stream would meet the first-byte limit, while
	// a JSON answer may take up to the server timeout.
	release := make(chan struct{})
	holdCh.Store(&release)
	burst := make(chan chaosOutcome, slotSum)
	for range slotSum {
		go func() { burst <- c.send(false, 0) }()
	}
	ctx, cancel := context.WithTimeout(context.Background(), chaosTimeoutSeconds*time.Second*8/10)
	heldErr := up.AwaitHeld(ctx, slotSum)
	cancel()
	held := up.Held()
	var slotsNow string // what the server says of its slots, should the burst fall short
	if heldErr != nil {
		slotsNow, _ = mustRun(t, "--db", db, "status", "--json")
	}
	holdCh.Store(nil)
	close(release)
	var burstFailed []string
	for range slotSum {
		o := <-burst
		keep(o)
		if !o.complete {
			burstFailed = append(burstFailed, o.describe())
		}
	}
	if heldErr != nil {
		t.Errorf("a burst of %d requests (the sum of the accounts' caps) had only %d running at once after %v: slots leaked; llmgw status then:\n%s",
			slotSum, held, chaosTimeoutSeconds*time.Second*8/10, slotsNow)
	} else {
		t.Logf("burst: %d requests ran at once (every slot free)", slotSum)
	}
	if len(burstFailed) != 0 {
		t.Errorf("%d of %d burst requests failed against a healthy upstream; the first ones:\n  %s",
			len(burstFailed), slotSum, strings.Join(burstFailed[:min(len(burstFailed), 5)], "\n  "))
	}

	// No goroutine or fd left behind, once the connection pools are empty.
	limit := resources{before.goroutines + chaosGoroutineAllowance, before.fds + chaosFDAllowance}
	after := settle(&limit, closeIdle)
	t.Logf("goroutines %d before, %d after; fds %d before, %d after (allowance +%d, +%d, with connection pools emptied)",
		before.goroutines, after.goroutines, before.fds, after.fds, chaosGoroutineAllowance, chaosFDAllowance)
	if after.goroutines > limit.goroutines {
		t.Errorf("goroutines grew from %d to %d, more than the allowance of %d", before.goroutines, after.goroutines, chaosGoroutineAllowance)
	}
	if after.fds > limit.fds {
		t.Errorf("file descriptors grew from %d to %d, more than the allowance of %d", before.fds, after.fds, chaosFDAllowance)
	}

	// Zero rows lost: every request the clients made has its row, found by
	// the model name the client sent (its own id) and, when the client got
	// one, by the gateway's request id.
	if err := srv.stopAndWait(t); err != nil {
		t.Errorf("serve: %v", err)
	}
	sdb, err := openStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := sdb.Close(); err != nil {
			t.Error(err)
		}
	}()
	rows, err := sdb.ListUsage(context.Background(), started.Add(-time.Minute), time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	byTag := make(map[string][]store.UsageRow, len(rows))
	byID := make(map[string]store.UsageRow, len(rows))
	for _, r := range rows {
		byTag[r.Model] = append(byTag[r.Model], r)
		byID[r.RequestID] = r
	}
	var lost, dup, mismatched []string
	for _, o := range outcomes {
		rs := byTag[o.tag]
		switch {
		case len(rs) == 0:
			lost = append(lost, o.describe())
		case len(rs) > 1:
			dup = append(dup, o.tag)
		}
		if o.requestID != "" {
			if r, ok := byID[o.requestID]; !ok || r.Model != o.tag {
				mismatched = append(mismatched, fmt.Sprintf("%s: row %+v", o.describe(), r.Usage))
			}
		}
	}
	statuses := map[int]int{}
	for _, r := range rows {
		statuses[r.Status]++
	}
	t.Logf("rows: %d requests made, %d rows (by status: %v), %d lost, %d duplicated", len(outcomes), len(rows), statuses, len(lost), len(dup))
	if len(lost) != 0 {
		t.Errorf("%d of %d requests have no usage row; the first ones:\n  %s", len(lost), len(outcomes), strings.Join(lost[:min(len(lost), 10)], "\n  "))
	}
	if len(dup) != 0 {
		t.Errorf("%d requests have more than one row: %v", len(dup), dup[:min(len(dup), 10)])
	}
	if len(mismatched) != 0 {
		t.Errorf("%d requests' x-request-id has no row of theirs; the first ones:\n  %s", len(mismatched), strings.Join(mismatched[:min(len(mismatched), 5)], "\n  "))
	}
}

// allActive says which accounts are not active, or are cooling down at now.
func allActive(accts []accountJSON, now time.Time) error {
	var bad []string
	for _, a := range accts {
		if a.Status != "active" {
			bad = append(bad, fmt.Sprintf("%s is %s (%s)", a.Name, a.Status, a.Reason))
			continue
		}
		if a.CooldownUntil != nil {
			until, err := time.Parse(time.RFC3339, *a.CooldownUntil)
			if err != nil || until.After(now) {
				bad = append(bad, fmt.Sprintf("%s cools down until %s", a.Name, *a.CooldownUntil))
			}
		}
	}
	if len(accts) != 3 {
		bad = append(bad, fmt.Sprintf("%d accounts listed, want 3", len(accts)))
	}
	if len(bad) != 0 {
		slices.Sort(bad)
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}

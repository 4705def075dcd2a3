package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// Regression tests for the defects a fault-injection run found (issue 9):
// slots, failover before the first byte, local exhaustion, memory bounds,
// first-byte limits and keep-alives, and oversized SSE lines.

// post sends a JSON body to the gateway with the test key and returns the
// status and the whole body.
func post(t *testing.T, url, path, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Api-Key", testKey)
	req.Header.Set("Authorization", "Bearer "+testKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	return res.StatusCode, res.Header, b
}

const (
	streamBody = `{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`
	jsonBody   = `{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`
	chatBody   = `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}`
)

// inflight returns the slots the gateway holds on an account.
func (g *gateway) inflight(id int64) int {
	h := g.pool.health(id)
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.inflight
}

func (g *gateway) recentErrors(id int64) float64 {
	h := g.pool.health(id)
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.decayedErrs(time.Now())
}

// Defect 1: two requests whose first tries both got 529 each kept their slot
// while waiting for the other's, until the whole timeout ran out.
func TestFault_SlotsFreedForFailover(t *testing.T) {
	up := upstreamtest.NewServer(t,
		upstreamtest.Script("key-a", upstreamtest.Fail(529, upstreamtest.Delay(200*time.Millisecond))),
		upstreamtest.Script("key-b", upstreamtest.Fail(529, upstreamtest.Delay(200*time.Millisecond))))
	a, b := account(1, "a", "key-a", up.URL), account(2, "b", "key-b", up.URL)
	a.MaxConcurrency, b.MaxConcurrency = 1, 1
	g := newGateway(t, Config{Timeout: 3 * time.Second}, a, b)

	var wg sync.WaitGroup
	statuses := make([]int, 2)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _, _ = post(t, g.URL, "/v1/messages", jsonBody)
		}()
		if i == 0 {
			if err := up.AwaitInFlight(ctx(t), 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
	for i, st := range statuses {
		if st != http.StatusOK {
			t.Errorf("request %d: status %d, want 200 from the other account", i, st)
		}
	}
	for _, id := range []int64{1, 2} {
		if n := g.inflight(id); n != 0 {
			t.Errorf("account %d holds %d slots after every request ended", id, n)
		}
	}
}

// Defect 1: a client that gave up while its request waited for a slot after a
// failed try left that try's slot taken for good.
func TestFault_ClientGivingUpMidFailoverFreesSlots(t *testing.T) {
	release := make(chan struct{})
	up := upstreamtest.NewServer(t,
		upstreamtest.Script("key-a", upstreamtest.OK(upstreamtest.Hold(release))),
		upstreamtest.Script("key-b", upstreamtest.Fail(529)))
	a, b := account(1, "a", "key-a", up.URL), account(2, "b", "key-b", up.URL)
	a.MaxConcurrency, b.MaxConcurrency = 1, 1
	g := newGateway(t, Config{}, a, b)

	// The first request holds a's only slot upstream.
	held := make(chan error, 1)
	go func() {
		_, err := g.client().Messages.New(ctx(t), hello())
		held <- err
	}()
	if err := up.AwaitHeld(ctx(t), 1); err != nil {
		t.Fatal(err)
	}
	// The second gets 529 on b and waits for a's slot; then its client leaves.
	cctx, cancel := context.WithCancel(ctx(t))
	gone := make(chan error, 1)
	go func() {
		_, err := g.client().Messages.New(cctx, hello())
		gone <- err
	}()
	waitFor(t, func() bool { g.pool.qmu.Lock(); defer g.pool.qmu.Unlock(); return len(g.pool.queue) == 1 })
	cancel()
	if err := <-gone; err == nil {
		t.Fatal("the cancelled request succeeded")
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	g.rec.wait(t, 2)
	for _, id := range []int64{1, 2} {
		if n := g.inflight(id); n != 0 {
			t.Errorf("account %d holds %d slots after every request ended", id, n)
		}
	}
}

func hello() anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model: "claude-sonnet-4-5", MaxTokens: 64,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Defect 16: waiters for a slot are served in the order they came.
func TestFault_WaitersServedInArrivalOrder(t *testing.T) {
	p := testPool(9)
	as := accts(1)
	as[0].MaxConcurrency = 1
	first, err := p.pick(context.Background(), as, "m", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	order := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := p.pick(context.Background(), as, "m", nil, nil)
			if err != nil {
				t.Error(err)
				return
			}
			order <- i
			p.release(c.h)
		}()
		waitFor(t, func() bool { p.qmu.Lock(); defer p.qmu.Unlock(); return len(p.queue) == i+1 })
	}
	p.release(first.h)
	wg.Wait()
	close(order)
	want := 0
	for got := range order {
		if got != want {
			t.Fatalf("waiter %d got the slot when waiter %d was next", got, want)
		}
		want++
	}
}

// Defect 6: past MaxWaiting, requests are refused at once instead of queueing.
func TestFault_WaitingIsBounded(t *testing.T) {
	release := make(chan struct{})
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Hold(release)))
	a := account(1, "a", "key-a", up.URL)
	a.MaxConcurrency = 1
	g := newGateway(t, Config{MaxWaiting: 1}, a)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, _, b := post(t, g.URL, "/v1/messages", jsonBody); st != http.StatusOK {
				t.Errorf("held request: %d %s", st, b)
			}
		}()
	}
	waitFor(t, func() bool { g.pool.qmu.Lock(); defer g.pool.qmu.Unlock(); return len(g.pool.queue) == 1 })
	st, h, body := post(t, g.URL, "/v1/chat/completions", chatBody)
	if st != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || !strings.Contains(string(body), "saturated") {
		t.Errorf("third request: %d retry-after=%q %s; want 503 saying the gateway is saturated", st, h.Get("Retry-After"), body)
	}
	var oe struct {
		Error struct{ Type, Message string }
	}
	if json.Unmarshal(body, &oe) != nil || oe.Error.Message == "" {
		t.Errorf("refusal is not in OpenAI's shape: %s", body)
	}
	close(release)
	wg.Wait()
}

// Defect 6: request bodies held at once are bounded across the process;
// waiters for a slot count too.
func TestFault_BodyMemoryIsBounded(t *testing.T) {
	release := make(chan struct{})
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Hold(release)))
	g := newGateway(t, Config{MaxBodyMemory: 1 << 20}, account(1, "a", "key-a", up.URL))
	big := `{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"` + strings.Repeat("x", 600<<10) + `"}]}`
	done := make(chan int, 1)
	go func() {
		st, _, _ := post(t, g.URL, "/v1/messages", big)
		done <- st
	}()
	if err := up.AwaitHeld(ctx(t), 1); err != nil {
		t.Fatal(err)
	}
	// The held request is still being tried: its body counts.
	st, h, body := post(t, g.URL, "/v1/messages", big)
	if st != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || !strings.Contains(string(body), "memory limit") {
		t.Errorf("request past the budget: %d %s; want 503 naming the memory limit", st, body)
	}
	close(release)
	if st := <-done; st != http.StatusOK {
		t.Errorf("held request: %d", st)
	}
	if st, _, b := post(t, g.URL, "/v1/messages", big); st != http.StatusOK {
		t.Errorf("request after memory freed: %d %s", st, b)
	}
	if g.bodyMem.TryAcquire(1 << 20) {
		g.bodyMem.Release(1 << 20)
	} else {
		t.Error("body memory not all given back after every request ended")
	}
}

// Defect 3: any failure before the first content byte reaches the client
// fails over, and counts against the account.
func TestFault_FailoverBeforeFirstByte(t *testing.T) {
	for _, tc := range []struct {
		name, path, body string
		check            func(t *testing.T, body []byte)
	}{
		{"hang-up inside a JSON body", "/v1/messages", jsonBody, func(t *testing.T, b []byte) {
			if !bytes.Contains(b, []byte(`"type":"message"`)) {
				t.Errorf("not a whole message: %s", b)
			}
		}},
		{"hang-up inside a converted non-stream answer", "/v1/chat/completions", chatBody, func(t *testing.T, b []byte) {
			if !bytes.Contains(b, []byte(`"chat.completion"`)) {
				t.Errorf("not a whole completion: %s", b)
			}
		}},
		{"hang-up after message_start", "/v1/messages", streamBody, func(t *testing.T, b []byte) {
			if bytes.Count(b, []byte("event: message_start")) != 1 || !bytes.Contains(b, []byte("event: message_stop")) ||
				bytes.Contains(b, []byte("event: error")) {
				t.Errorf("want one whole stream from the healthy account, got:\n%s", b)
			}
		}},
		{"hang-up after role chunk of a converted stream", "/v1/chat/completions",
			`{"model":"claude-sonnet-4-5","stream":true,"messages":[{"role":"user","content":"hi"}]}`, func(t *testing.T, b []byte) {
				if bytes.Count(b, []byte(`"role":"assistant"`)) != 1 || !bytes.Contains(b, []byte("[DONE]")) || bytes.Contains(b, []byte(`"error"`)) {
					t.Errorf("want one whole stream from the healthy account, got:\n%s", b)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := upstreamtest.NewServer(t, upstreamtest.Script("key-a", upstreamtest.AbortMidStream(0)))
			g := newGateway(t, Config{}, account(1, "a", "key-a", up.URL), account(2, "b", "key-b", up.URL))
			st, _, body := post(t, g.URL, tc.path, tc.body)
			if st != http.StatusOK {
				t.Fatalf("status %d: %s", st, body)
			}
			tc.check(t, body)
			row := g.rec.wait(t, 1)[0]
			if len(row.Attempts) != 2 || row.Attempts[0].ErrorType != "connection_error" || row.AccountName != "b" {
				t.Errorf("attempts %+v on %s; want a connection_error on a, then b", row.Attempts, row.AccountName)
			}
			if g.recentErrors(1) == 0 {
				t.Error("the hang-up was not counted against account a")
			}
		})
	}
}

// Defect 5: the gateway's own resource exhaustion answers 503 and leaves
// every account's health alone.
func TestFault_LocalExhaustionBlamesNoAccount(t *testing.T) {
	emfile := roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("socket", syscall.EMFILE)}
	})
	g := newGateway(t, Config{Transport: emfile}, account(1, "a", "key-a", "http://127.0.0.1:1"), account(2, "b", "key-b", "http://127.0.0.1:1"))
	for range 5 {
		st, h, body := post(t, g.URL, "/v1/messages", jsonBody)
		if st != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || !strings.Contains(string(body), "overloaded_error") {
			t.Fatalf("status %d %s; want 503 overloaded_error", st, body)
		}
	}
	rows := g.rec.wait(t, 5)
	if n := len(rows[0].Attempts); n != 0 {
		t.Errorf("%d attempts recorded; a local failure is no account's try", n)
	}
	for _, id := range []int64{1, 2} {
		if _, ok := g.rec.state(id); ok {
			t.Errorf("account %d got a state change from the gateway's own failure", id)
		}
		if g.recentErrors(id) != 0 {
			t.Errorf("account %d was blamed for the gateway's own failure", id)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Defect 7: an upstream that stalls before its headers, or after
// message_start, fails over once the first-byte limit passes.
func TestFault_FirstByteLimitFailsOver(t *testing.T) {
	for name, stall := range map[string]upstreamtest.Step{
		"before headers":      upstreamtest.Hang(),
		"after message_start": upstreamtest.HangMidStream(0),
	} {
		t.Run(name, func(t *testing.T) {
			up := upstreamtest.NewServer(t, upstreamtest.Script("key-a", stall))
			g := newGateway(t, Config{FirstByteTimeout: 300 * time.Millisecond}, account(1, "a", "key-a", up.URL), account(2, "b", "key-b", up.URL))
			st, _, body := post(t, g.URL, "/v1/messages", streamBody)
			if st != http.StatusOK || !bytes.Contains(body, []byte("event: message_stop")) {
				t.Fatalf("status %d:\n%s", st, body)
			}
			row := g.rec.wait(t, 1)[0]
			if len(row.Attempts) != 2 || row.Attempts[0].ErrorType != "timeout_error" || row.AccountName != "b" {
				t.Errorf("attempts %+v; want a timeout_error on a, then b", row.Attempts)
			}
		})
	}
}

// Defect 7: while a stream's opening is held (slow first content), the
// client's connection gets SSE comments, which every SDK skips.
func TestFault_KeepAliveWhileOpeningIsHeld(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.EventDelay(150*time.Millisecond)))
	g := newGateway(t, Config{KeepAlive: 50 * time.Millisecond}, account(1, "a", "key-a", up.URL))
	_, _, body := post(t, g.URL, "/v1/messages", streamBody)
	i, j := bytes.Index(body, keepAliveComment), bytes.Index(body, []byte("event: message_start"))
	if i < 0 || j < i {
		t.Fatalf("no keep-alive comment before the first event:\n%s", body)
	}
	// The SDK reads such a stream as usual.
	s := g.client().Messages.NewStreaming(ctx(t), hello())
	var msg anthropic.Message
	for s.Next() {
		if err := msg.Accumulate(s.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Err(); err != nil || msg.StopReason != "end_turn" || len(msg.Content) == 0 {
		t.Fatalf("SDK stream: err %v, message %+v", err, msg)
	}
}

// Defect 7: once keep-alives committed a stream to 200, a final failure is
// the stream's error event, in the client's dialect.
func TestFault_FailureAfterKeepAliveIsAnErrorEvent(t *testing.T) {
	for _, tc := range []struct{ path, body, want string }{
		{"/v1/messages", streamBody, "event: error"},
		{"/v1/chat/completions", `{"model":"claude-sonnet-4-5","stream":true,"messages":[{"role":"user","content":"hi"}]}`, `"error":{`},
	} {
		t.Run(tc.path, func(t *testing.T) {
			up := upstreamtest.NewServer(t, upstreamtest.Hang())
			g := newGateway(t, Config{KeepAlive: 50 * time.Millisecond, FirstByteTimeout: 300 * time.Millisecond}, account(1, "a", "key-a", up.URL))
			st, _, body := post(t, g.URL, tc.path, tc.body)
			if st != http.StatusOK || !bytes.HasPrefix(body, keepAliveComment) || !bytes.Contains(body, []byte(tc.want)) {
				t.Fatalf("status %d:\n%s\nwant keep-alives, then %s", st, body, tc.want)
			}
			row := g.rec.wait(t, 1)[0]
			if row.ErrorType != "timeout_error" || !row.EndedEarly || row.ErrorMessage == "" {
				t.Errorf("row: %+v", row)
			}
		})
	}
}

// Defect 8: a line without an end does not grow memory without bound; the
// client gets an error event and the account is not blamed.
func TestFault_OversizedSSELine(t *testing.T) {
	head := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n" +
		"event: content_block_delta\ndata: "
	raw := append([]byte(head), bytes.Repeat([]byte("x"), 17<<20)...)
	up := upstreamtest.NewServer(t, upstreamtest.Replay(raw))
	g := newGateway(t, Config{}, account(1, "a", "key-a", up.URL))
	st, _, body := post(t, g.URL, "/v1/messages", streamBody)
	if st != http.StatusOK || !bytes.Contains(body, []byte("event: error")) || !bytes.Contains(body, []byte("larger than")) {
		t.Fatalf("status %d, %d bytes; want an error event naming the size", st, len(body))
	}
	g.rec.wait(t, 1)
	if _, ok := g.rec.state(1); ok {
		t.Error("the account was blamed for an oversized line")
	}
}

// An upstream that sends its headers and half a JSON answer and then stalls
// fails over once the timeout passes: the client has seen nothing yet.
func TestFault_StallInsideJSONFailsOver(t *testing.T) {
	up := upstreamtest.NewServer(t)
	a, b := account(1, "a", "key-a", up.URL), account(2, "b", "key-b", up.URL)
	b.Priority = 1 // a is always tried first
	g := newGateway(t, Config{Timeout: 300 * time.Millisecond}, a, b)
	for _, path := range []string{"/v1/messages", "/v1/chat/completions"} {
		up.Script("key-a", upstreamtest.HangMidStream(0))
		body := jsonBody
		if path != "/v1/messages" {
			body = chatBody
		}
		if st, _, answer := post(t, g.URL, path, body); st != http.StatusOK {
			t.Fatalf("%s: status %d: %s", path, st, answer)
		}
	}
	for _, row := range g.rec.wait(t, 2) {
		if len(row.Attempts) != 2 || row.Attempts[0].ErrorType != "timeout_error" || row.AccountName != "b" {
			t.Errorf("%s: attempts %+v; want a timeout_error on a, then b", row.Dialect, row.Attempts)
		}
	}
}

// Defect 6: a converted body costs convertedBodyFactor times its size (its
// decoded and re-encoded copies); one that could never fit gets 413.
func TestFault_ConvertedBodiesCountTheirCopies(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{MaxBodyMemory: 1 << 20}, account(1, "a", "key-a", up.URL))
	chat := func(n int) string {
		return `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"` + strings.Repeat("x", n) + `"}]}`
	}
	if st, _, b := post(t, g.URL, "/v1/chat/completions", chat(40<<10)); st != http.StatusOK {
		t.Fatalf("a body that fits 16 times over: %d %s", st, b)
	}
	st, _, b := post(t, g.URL, "/v1/chat/completions", chat(100<<10))
	if st != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "memory budget") {
		t.Errorf("a converted body 16 times past the budget: %d %s; want 413 naming the memory budget", st, b)
	}
	// The same bytes pass through natively: they cost only themselves.
	native := `{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"` + strings.Repeat("x", 100<<10) + `"}]}`
	if st, _, b := post(t, g.URL, "/v1/messages", native); st != http.StatusOK {
		t.Errorf("native body of the same size: %d %s", st, b)
	}
}

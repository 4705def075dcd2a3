package upstreamtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

const (
	faultKey  = "sk-ant-fault-FAKE-0123456789"
	streamReq = `{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"tell me something long enough to need several deltas"}]}`
	jsonReq   = `{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`
)

// newFaultPair starts a fake upstream and a fault proxy in front of it, with
// a client of its own (closed at cleanup) so that tests do not share
// connection pools.
func newFaultPair(t *testing.T, policy Policy) (*Server, *FaultProxy, *http.Client) {
	t.Helper()
	up := NewServer(t)
	fp := NewFaultProxy(t, up.URL, policy)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return up, fp, &http.Client{Transport: tr}
}

// faultPost sends one Messages request with faultKey through c.
func faultPost(ctx context.Context, c *http.Client, base, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/messages", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("x-api-key", faultKey)
	return c.Do(req)
}

// faultPostRead sends a request and reads the whole answer.
func faultPostRead(t *testing.T, c *http.Client, base, body string) (*http.Response, []byte, error) {
	t.Helper()
	resp, err := faultPost(context.Background(), c, base, body)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func TestFaultProxy_PassIsTransparent(t *testing.T) {
	t.Parallel()
	up, fp, c := newFaultPair(t, nil)
	for _, body := range []string{streamReq, jsonReq} {
		direct, want, err := faultPostRead(t, c, up.URL, body)
		if err != nil {
			t.Fatal(err)
		}
		resp, got, err := faultPostRead(t, c, fp.URL, body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != direct.StatusCode || resp.Header.Get("Content-Type") != direct.Header.Get("Content-Type") {
			t.Errorf("through the proxy: %d %s, direct: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"),
				direct.StatusCode, direct.Header.Get("Content-Type"))
		}
		wantEvs, _ := readEvents(strings.NewReader(string(want)))
		gotEvs, _ := readEvents(strings.NewReader(string(got)))
		if diff := cmp.Diff(names(wantEvs), names(gotEvs)); diff != "" {
			t.Errorf("events (-direct +proxied):\n%s", diff)
		}
		if len(got) == 0 || (body == jsonReq && !json.Valid(got)) {
			t.Errorf("body %q", got)
		}
	}
	if got, want := fp.Counts(), (FaultCounts{Pass: 2}); got != want {
		t.Errorf("Counts = %+v, want %+v", got, want)
	}
	if up.Count() != 4 {
		t.Errorf("upstream got %d requests, want 4", up.Count())
	}
}

func TestFaultProxy_ErrorAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		fault      Fault
		status     int
		typ        string
		retryAfter string
	}{
		{"overloaded", Fault{Kind: Overloaded}, 529, "overloaded_error", ""},
		{"rate limited", Fault{Kind: RateLimited}, 429, "rate_limit_error", "1"},
		{"rate limited 7s", Fault{Kind: RateLimited, RetryAfter: 7}, 429, "rate_limit_error", "7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up, fp, c := newFaultPair(t, Always(tt.fault))
			resp, body, err := faultPostRead(t, c, fp.URL, streamReq)
			if err != nil {
				t.Fatal(err)
			}
			var e struct {
				Type  string `json:"type"`
				Error struct {
					Type    string `json:"type"`
					Message string `json:"message"`
				} `json:"error"`
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if resp.StatusCode != tt.status || e.Type != "error" || e.Error.Type != tt.typ || e.Error.Message == "" || e.RequestID == "" {
				t.Errorf("got %d %s", resp.StatusCode, body)
			}
			if got := resp.Header.Get("retry-after"); got != tt.retryAfter {
				t.Errorf("retry-after = %q, want %q", got, tt.retryAfter)
			}
			if up.Count() != 0 {
				t.Errorf("the request was forwarded")
			}
			if got := fp.Counts(); got.Faults() != 1 || got.Requests() != 1 {
				t.Errorf("Counts = %+v", got)
			}
		})
	}
}

func TestFaultProxy_ResetBeforeHeaders(t *testing.T) {
	t.Parallel()
	up, fp, c := newFaultPair(t, Always(Fault{Kind: Reset}))
	resp, err := faultPost(context.Background(), c, fp.URL, streamReq)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got %d, want a connection error", resp.StatusCode)
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) {
		t.Errorf("err = %v, want a reset", err)
	}
	if got := fp.Counts(); got != (FaultCounts{Reset: 1}) {
		t.Errorf("Counts = %+v", got)
	}
	if up.Count() != 0 {
		t.Errorf("the request was forwarded")
	}
}

func TestFaultProxy_HangUp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		body       string
		after      int
		wantEvents int
	}{
		{"stream after headers", streamReq, 0, 0},
		{"stream after 2 events", streamReq, 2, 2},
		{"stream after 5 events", streamReq, 5, 5},
		{"json halfway", jsonReq, 1, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, fp, c := newFaultPair(t, Always(Fault{Kind: HangUp, AfterEvents: tt.after}))
			resp, body, err := faultPostRead(t, c, fp.URL, tt.body)
			if resp == nil {
				t.Fatalf("no answer: %v", err)
			}
			if resp.StatusCode != 200 || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("got %d, read error %v; want 200 and an unexpected EOF", resp.StatusCode, err)
			}
			if tt.wantEvents >= 0 {
				evs, _ := readEvents(strings.NewReader(string(body)))
				if len(evs) != tt.wantEvents {
					t.Errorf("got events %v, want %d", names(evs), tt.wantEvents)
				}
			} else if len(body) == 0 || json.Valid(body) {
				t.Errorf("body %q, want a part of a JSON body", body)
			}
			if got := fp.Counts(); got != (FaultCounts{HangUp: 1}) {
				t.Errorf("Counts = %+v", got)
			}
		})
	}

	t.Run("before headers", func(t *testing.T) {
		t.Parallel()
		up, fp, c := newFaultPair(t, Always(Fault{Kind: HangUp, AfterEvents: BeforeHeaders}))
		if resp, err := faultPost(context.Background(), c, fp.URL, streamReq); err == nil {
			resp.Body.Close()
			t.Fatalf("got %d, want a connection error", resp.StatusCode)
		}
		if got := fp.Counts(); got != (FaultCounts{HangUp: 1}) || up.Count() != 0 {
			t.Errorf("Counts = %+v, upstream requests %d", got, up.Count())
		}
	})

	t.Run("after the end", func(t *testing.T) {
		t.Parallel()
		_, fp, c := newFaultPair(t, Always(Fault{Kind: HangUp, AfterEvents: 1000}))
		_, body, err := faultPostRead(t, c, fp.URL, streamReq)
		if err != nil || !strings.Contains(string(body), "message_stop") {
			t.Errorf("err %v, body %q; want the whole stream", err, body)
		}
		if got := fp.Counts(); got != (FaultCounts{Pass: 1}) {
			t.Errorf("Counts = %+v, want the request counted as passed", got)
		}
	})
}

func TestFaultProxy_Stall(t *testing.T) {
	t.Parallel()
	const d = 300 * time.Millisecond

	t.Run("before headers", func(t *testing.T) {
		t.Parallel()
		_, fp, c := newFaultPair(t, Always(Fault{Kind: Stall, AfterEvents: BeforeHeaders, Duration: d}))
		start := time.Now()
		resp, body, err := faultPostRead(t, c, fp.URL, jsonReq)
		if err != nil || resp.StatusCode != 200 || !json.Valid(body) {
			t.Fatalf("got %v %v %q, want the whole answer", resp, err, body)
		}
		if el := time.Since(start); el < d {
			t.Errorf("answered after %v, want at least %v", el, d)
		}
		if got := fp.Counts(); got != (FaultCounts{Stall: 1}) {
			t.Errorf("Counts = %+v", got)
		}
	})

	t.Run("after 3 events", func(t *testing.T) {
		t.Parallel()
		_, fp, c := newFaultPair(t, Always(Fault{Kind: Stall, AfterEvents: 3, Duration: d}))
		resp, err := faultPost(context.Background(), c, fp.URL, streamReq)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		// Time each line: the third event's closing blank line comes before
		// the stall, the fourth event's first line after it.
		br := bufio.NewReader(resp.Body)
		var body strings.Builder
		var thirdEnd, fourthStart time.Time
		for blanks := 0; ; {
			line, err := br.ReadString('\n')
			now := time.Now()
			body.WriteString(line)
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatal(err)
				}
				break
			}
			if blanks == 3 && fourthStart.IsZero() {
				fourthStart = now
			}
			if strings.TrimSpace(line) == "" {
				if blanks++; blanks == 3 {
					thirdEnd = now
				}
			}
		}
		if !strings.Contains(body.String(), "message_stop") {
			t.Errorf("stream %q, want it whole", body.String())
		}
		// The client reads the third event a moment after the stall began.
		if gap := fourthStart.Sub(thirdEnd); gap < d*9/10 {
			t.Errorf("the fourth event came %v after the third, want a stall of %v", gap, d)
		}
	})

	t.Run("until the client gives up", func(t *testing.T) {
		t.Parallel()
		_, fp, c := newFaultPair(t, Always(Fault{Kind: Stall, AfterEvents: 1}))
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		resp, err := faultPost(ctx, c, fp.URL, streamReq)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("read %q, err %v; want the client's deadline", body, err)
		}
		if got := fp.Counts(); got != (FaultCounts{Stall: 1}) {
			t.Errorf("Counts = %+v", got)
		}
	})
}

func TestFaultProxy_MixAndByKey(t *testing.T) {
	t.Parallel()
	draw := func(p Policy, n int) []FaultKind {
		r, _ := http.NewRequest(http.MethodPost, "http://x/v1/messages", nil)
		r.Header.Set("x-api-key", faultKey)
		out := make([]FaultKind, n)
		for i := range out {
			out[i] = p(r).Kind
		}
		return out
	}
	mix := func(seed uint64) Policy {
		return Mix(seed, Weighted{6, Fault{}}, Weighted{3, Fault{Kind: Overloaded}}, Weighted{1, Fault{Kind: Reset}})
	}
	a, b := draw(mix(7), 1000), draw(mix(7), 1000)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("one seed, two sequences (-first +second):\n%s", diff)
	}
	n := map[FaultKind]int{}
	for _, k := range a {
		n[k]++
	}
	if n[Pass] < 500 || n[Pass] > 700 || n[Overloaded] < 220 || n[Overloaded] > 380 || n[Reset] < 50 || n[Reset] > 150 {
		t.Errorf("1000 draws of 6:3:1 gave %v", n)
	}
	by := ByKey(map[string]Policy{faultKey: Always(Fault{Kind: Stall})}, Always(Fault{Kind: HangUp}))
	if got := draw(by, 1)[0]; got != Stall {
		t.Errorf("ByKey for the listed key = %v, want stall", got)
	}
	r, _ := http.NewRequest(http.MethodPost, "http://x/v1/messages", nil)
	r.Header.Set("Authorization", "Bearer other")
	if got := by(r).Kind; got != HangUp {
		t.Errorf("ByKey for another key = %v, want the default", got)
	}
}

// TestFaultProxy_CloseEndsEverything: Close ends a stall that would last
// forever, and leaves no goroutine behind.
func TestFaultProxy_CloseEndsEverything(t *testing.T) {
	up := NewServer(t)
	keep := goleak.IgnoreCurrent()
	fp := NewFaultProxy(t, up.URL, nil)
	tr := &http.Transport{}
	c := &http.Client{Transport: tr}
	if _, _, err := faultPostRead(t, c, fp.URL, streamReq); err != nil { // fills both connection pools
		t.Fatal(err)
	}
	fp.SetPolicy(Always(Fault{Kind: Stall, AfterEvents: 2}))
	done := make(chan error, 1)
	go func() {
		_, _, err := faultPostRead(t, c, fp.URL, streamReq)
		done <- err
	}()
	deadline := time.After(5 * time.Second)
	for fp.Counts().Stall == 0 {
		select {
		case <-deadline:
			t.Fatal("the stall never began")
		case <-time.After(5 * time.Millisecond): // polling a counter the proxy's goroutine sets
		}
	}
	start := time.Now()
	fp.Close()
	if err := <-done; !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("stalled client got %v, want an unexpected EOF", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Close took %v", el)
	}
	tr.CloseIdleConnections()
	goleak.VerifyNone(t, keep)
	if got := fp.Counts(); got != (FaultCounts{Pass: 1, Stall: 1}) {
		t.Errorf("Counts = %+v", got)
	}
}

// TestFaultProxy_StallEndsWhenTheClientLeaves: a stall that would last
// forever ends when its client hangs up, before or after the headers.
func TestFaultProxy_StallEndsWhenTheClientLeaves(t *testing.T) {
	up := NewServer(t)
	keep := goleak.IgnoreCurrent()
	for _, after := range []int{BeforeHeaders, 2} {
		fp := NewFaultProxy(t, up.URL, Always(Fault{Kind: Stall, AfterEvents: after}))
		tr := &http.Transport{}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		resp, err := faultPost(ctx, &http.Client{Transport: tr}, fp.URL, streamReq)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("after %d: err %v, want the client's deadline", after, err)
		}
		tr.CloseIdleConnections()
		fp.CloseIdleConnections()
		// The proxy stays open: its handler must end by itself.
		goleak.VerifyNone(t, keep, goleak.IgnoreAnyFunction("net/http.(*Server).Serve"))
		fp.Close()
	}
}

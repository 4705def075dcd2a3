package policy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func limits(t *testing.T, s string) []llmgw.Limit {
	t.Helper()
	ls, err := llmgw.ParseLimits(s)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

var alice = Subject{ID: 1}

func newLedger(t *testing.T, spec string, at time.Time) (*Ledger, *clock) {
	clk := &clock{t: at}
	l := NewLedger(clk.Now, time.UTC)
	if err := l.Sync(context.Background(), []Spec{{Subject: alice, Name: "key alice", Limits: limits(t, spec)}}, nil); err != nil {
		t.Fatal(err)
	}
	return l, clk
}

// The refusal names the key, the limit, the use and the reset, and asks the
// client to come back when the window turns.
func TestLedger_CalendarRefusal(t *testing.T) {
	at := time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)
	l, clk := newLedger(t, "usd=20/day", at)
	res, ref := l.Reserve(alice, Charge{USD: 1, Requests: 1})
	if ref != nil {
		t.Fatal(ref)
	}
	l.Settle(alice, res, "r1", clk.Now(), Charge{USD: 20.13, Requests: 1})
	_, ref = l.Reserve(alice, Charge{USD: 1, Requests: 1})
	if ref == nil {
		t.Fatal("admitted past the limit")
	}
	want := "key alice: usd limit 20.00/day reached (20.13 used); resets 2026-12-08T00:00:00Z"
	if ref.Message != want {
		t.Errorf("message %q\nwant    %q", ref.Message, want)
	}
	if ref.RetryAfter != 9*time.Hour {
		t.Errorf("retry after %s, want 9h", ref.RetryAfter)
	}
	clk.Advance(9 * time.Hour)
	if _, ref := l.Reserve(alice, Charge{USD: 1}); ref != nil {
		t.Errorf("refused in the next day: %v", ref)
	}
}

// A sliding window frees room as the oldest use leaves it.
func TestLedger_Sliding(t *testing.T) {
	l, clk := newLedger(t, "requests=3/1m", time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC))
	for i := range 3 {
		res, ref := l.Reserve(alice, Charge{Requests: 1})
		if ref != nil {
			t.Fatalf("request %d refused: %v", i, ref)
		}
		l.Settle(alice, res, "", clk.Now(), Charge{Requests: 1})
		clk.Advance(10 * time.Second)
	}
	_, ref := l.Reserve(alice, Charge{Requests: 1})
	if ref == nil {
		t.Fatal("fourth request in a minute admitted")
	}
	if ref.RetryAfter != 30*time.Second || !strings.Contains(ref.Message, "requests limit 3/1m reached (3 used); frees room at 2026-12-07T15:01:00Z") {
		t.Errorf("refusal %q, retry after %s", ref.Message, ref.RetryAfter)
	}
	clk.Advance(30 * time.Second)
	if _, ref := l.Reserve(alice, Charge{Requests: 1}); ref != nil {
		t.Errorf("refused after the first request left the window: %v", ref)
	}
}

// Requests in flight hold room: the limit counts their reservations, and a
// refusal for that reason asks for a retry in a moment.
func TestLedger_ReservationsHoldRoom(t *testing.T) {
	l, clk := newLedger(t, "requests=2/total", time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC))
	r1, _ := l.Reserve(alice, Charge{Requests: 1})
	r2, _ := l.Reserve(alice, Charge{Requests: 1})
	_, ref := l.Reserve(alice, Charge{Requests: 1})
	if ref == nil || ref.RetryAfter != time.Second || !strings.Contains(ref.Message, "2 held by requests in flight") {
		t.Fatalf("third while two in flight: %+v", ref)
	}
	// One failed before reaching an account: it uses nothing and frees its room.
	l.Settle(alice, r1, "a", clk.Now(), Charge{})
	if _, ref := l.Reserve(alice, Charge{Requests: 1}); ref != nil {
		t.Fatalf("refused after a reservation was released: %v", ref)
	}
	l.Settle(alice, r2, "b", clk.Now(), Charge{Requests: 1})
	u := l.Use(alice)
	if len(u) != 1 || u[0].Used != 1 || u[0].Reserved != 1 {
		t.Errorf("use %+v, want 1 used and 1 reserved", u)
	}
}

// Many clients at once on a tiny budget: once the settled spend reaches the
// limit no request is admitted, and the overshoot is at most what was in
// flight.
func TestLedger_ConcurrentBudget(t *testing.T) {
	l, clk := newLedger(t, "usd=0.05/day", time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC))
	var (
		mu       sync.Mutex
		settled  float64
		badStart int
		wg       sync.WaitGroup
	)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				mu.Lock()
				before := settled
				mu.Unlock()
				res, ref := l.Reserve(alice, Charge{USD: 0.004, Requests: 1})
				if ref != nil {
					continue
				}
				if before >= 0.05 {
					mu.Lock()
					badStart++
					mu.Unlock()
				}
				time.Sleep(time.Millisecond)
				l.Settle(alice, res, "", clk.Now(), Charge{USD: 0.003, Requests: 1})
				mu.Lock()
				settled += 0.003
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if badStart > 0 {
		t.Errorf("%d requests started after the settled spend reached the limit", badStart)
	}
	// Reservations of 0.004 bound what can be in flight to 0.05/0.004 + 1.
	if settled > 0.05+13*0.003+1e-9 {
		t.Errorf("settled %.4f, overshoot beyond what could be in flight", settled)
	}
	if settled < 0.05 {
		t.Errorf("settled %.4f: the budget was never reached", settled)
	}
}

type fakeSource struct {
	rows    []Row
	flushed int
	during  func() // runs while Rows reads, to settle concurrently
}

func (f *fakeSource) Flush(context.Context) error { f.flushed++; return nil }
func (f *fakeSource) LastID(context.Context) (int64, error) {
	var last int64
	for _, r := range f.rows {
		last = max(last, r.ID)
	}
	return last, nil
}
func (f *fakeSource) RowsAfter(ctx context.Context, after int64, skip string, _ []Subject) ([]Row, int64, error) {
	var out []Row
	for _, r := range f.rows {
		if r.ID > after && (skip == "" || !strings.HasPrefix(r.RequestID, skip)) {
			out = append(out, r)
		}
	}
	last, _ := f.LastID(ctx)
	return out, last, nil
}
func (f *fakeSource) Rows(_ context.Context, _ Subject, since time.Time) ([]Row, error) {
	if f.during != nil {
		f.during()
	}
	var out []Row
	for _, r := range f.rows {
		if !r.Time.Before(since) {
			out = append(out, r)
		}
	}
	return out, nil
}

// Sync sums the log for a new or changed limit; a request settled while the
// log is read counts once whether or not the log already had it.
func TestLedger_SyncRebuilds(t *testing.T) {
	now := time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)
	clk := &clock{t: now}
	l := NewLedger(clk.Now, time.UTC)
	src := &fakeSource{rows: []Row{
		{RequestID: "yesterday", Time: now.Add(-20 * time.Hour), Charge: Charge{USD: 5, Tokens: 100, Requests: 1}},
		{RequestID: "today1", Time: now.Add(-time.Hour), Charge: Charge{USD: 1, Tokens: 10, Requests: 1}},
		{RequestID: "today2", Time: now.Add(-time.Minute), Charge: Charge{USD: 2, Tokens: 20, Requests: 1}},
	}}
	src.during = func() {
		l.Settle(alice, Charge{}, "today2", now, Charge{USD: 2, Tokens: 20, Requests: 1}) // already in the log
		l.Settle(alice, Charge{}, "late", now, Charge{USD: 0.5, Tokens: 5, Requests: 1})  // not yet
	}
	spec := Spec{Subject: alice, Name: "key alice", Limits: limits(t, "usd=20/day,tokens=1000/total,requests=10/2h")}
	if err := l.Sync(context.Background(), []Spec{spec}, src); err != nil {
		t.Fatal(err)
	}
	if src.flushed != 1 {
		t.Errorf("flushed %d times, want 1", src.flushed)
	}
	got := l.Use(alice)
	want := []float64{3.5, 135, 3}
	for i, u := range got {
		if u.Used != want[i] {
			t.Errorf("%s: used %v, want %v", u.Limit, u.Used, want[i])
		}
	}
	// Unchanged limits are not summed again.
	src.during = nil
	if err := l.Sync(context.Background(), []Spec{spec}, src); err != nil || src.flushed != 1 {
		t.Errorf("second Sync with the same limits: err %v, flushed %d", err, src.flushed)
	}
	// A subject gone from the snapshot has no limits any more.
	if err := l.Sync(context.Background(), nil, src); err != nil {
		t.Fatal(err)
	}
	if u := l.Use(alice); u != nil {
		t.Errorf("use of a removed subject: %+v", u)
	}
}

func TestMeasure(t *testing.T) {
	now := time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)
	ls := limits(t, "usd=20/day,requests=2/1h")
	rows := []Row{
		{Time: now.Add(-2 * time.Hour), Charge: Charge{USD: 1, Requests: 1}},
		{Time: now.Add(-30 * time.Minute), Charge: Charge{USD: 2, Requests: 1}},
	}
	u := Measure(ls, rows, now, time.UTC)
	if u[0].Used != 3 || !u[0].Resets.Equal(time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("usd: %+v", u[0])
	}
	if u[1].Used != 1 || !u[1].Resets.Equal(now.Add(30*time.Minute)) || u[1].Spent() {
		t.Errorf("requests: %+v", u[1])
	}
	if s := Since(ls, now, time.UTC); !s.Equal(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("Since = %s", s)
	}
}

// Settle reports a limit's use passing 80% and 100%, once each, the
// highest level only when one request passes both, and again once a new
// window starts.
func TestLedger_SettleReportsCrossings(t *testing.T) {
	l, clk := newLedger(t, "requests=10/day,usd=1/day", time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC))
	settle := func(c Charge) []string {
		var out []string
		for _, x := range l.Settle(alice, Charge{}, "", clk.Now(), c) {
			out = append(out, fmt.Sprintf("%s %.0f%% %g", x.Limit.Kind, x.Level*100, x.Used))
		}
		return out
	}
	var got [][]string
	for range 9 {
		got = append(got, settle(Charge{Requests: 1}))
	}
	got = append(got, settle(Charge{Requests: 1, USD: 2}))
	got = append(got, settle(Charge{Requests: 1}))
	clk.Advance(24 * time.Hour)
	got = append(got, settle(Charge{Requests: 8}))
	want := [][]string{nil, nil, nil, nil, nil, nil, nil, {"requests 80% 8"}, nil, {"requests 100% 10", "usd 100% 2"}, nil, {"requests 80% 8"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("crossings (-want +got):\n%s", diff)
	}
	if cs := l.Settle(Subject{ID: 99}, Charge{}, "", clk.Now(), Charge{Requests: 1}); cs != nil {
		t.Errorf("a subject without limits crossed %v", cs)
	}
}

// CatchUp counts the rows other servers wrote after the last look, and not
// the rows of requests this ledger settled itself.
func TestLedger_CatchUpCountsOtherServers(t *testing.T) {
	now := time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)
	clk := &clock{t: now}
	l := NewLedger(clk.Now, time.UTC)
	src := &fakeSource{rows: []Row{{ID: 1, RequestID: "old", Time: now.Add(-time.Hour), Charge: Charge{Requests: 1}}}}
	if err := l.Sync(context.Background(), []Spec{{Subject: alice, Name: "key alice", Limits: limits(t, "requests=5/day")}}, src); err != nil {
		t.Fatal(err)
	}
	res, ref := l.Reserve(alice, Charge{Requests: 1})
	if ref != nil {
		t.Fatal(ref)
	}
	l.Settle(alice, res, "mine", now, Charge{Requests: 1})
	// The log now has this server's row and two from another server.
	src.rows = append(src.rows,
		Row{ID: 2, RequestID: "mine", Key: alice.ID, Time: now, Charge: Charge{Requests: 1}},
		Row{ID: 3, RequestID: "theirs-1", Key: alice.ID, Time: now, Charge: Charge{Requests: 1}},
		Row{ID: 4, RequestID: "theirs-2", Key: alice.ID, Time: now, Charge: Charge{Requests: 1}})
	const mine = "mine" // the prefix of this server's request ids
	if err := l.CatchUp(context.Background(), src, mine); err != nil {
		t.Fatal(err)
	}
	if u := l.Use(alice); u[0].Used != 4 {
		t.Errorf("used %v after catching up, want 4 (1 summed, 1 mine, 2 theirs)", u[0].Used)
	}
	// A second look adds nothing already counted.
	if err := l.CatchUp(context.Background(), src, mine); err != nil {
		t.Fatal(err)
	}
	if u := l.Use(alice); u[0].Used != 4 {
		t.Errorf("used %v after a second catch-up, want still 4", u[0].Used)
	}
}

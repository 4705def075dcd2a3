package proxy

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// lockedBuffer is a log destination safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// getAs sends GET url to the gateway as client (via X-Forwarded-For
// from a trusted 127.0.0.1) with key in x-api-key, and returns the
// answer's status, headers and body.
func getAs(t *testing.T, url, client, key string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Api-Key", key)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("X-Forwarded-For", client)
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, string(body)
}

func TestServer_AuthFailuresRateLimitedPerAddress(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	var logs lockedBuffer
	g := newGateway(t, Config{
		Now:                   clock.Now,
		AuthFailuresPerMinute: 3,
		TrustedProxies:        []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Logger:                slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	const badKey = "sk-llmgw-guess-ffffffffffffffffffffffffffffffff"
	models := g.URL + "/v1/models"

	for i := range 3 {
		if status, _, _ := getAs(t, models, "198.51.100.7", badKey); status != http.StatusUnauthorized {
			t.Fatalf("bad key %d: Status = %d, want 401", i+1, status)
		}
	}
	status, h, body := getAs(t, models, "198.51.100.7", badKey)
	if status != http.StatusTooManyRequests {
		t.Fatalf("bad key past the limit: Status = %d, want 429 (%s)", status, body)
	}
	var e struct {
		Error struct{ Type, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Type != "rate_limit_error" {
		t.Errorf("body = %s, want an Anthropic rate_limit_error", body)
	}
	if ra, err := strconv.Atoi(h.Get("Retry-After")); err != nil || ra < 1 || ra > 20 {
		t.Errorf("Retry-After = %q, want 1-20 s (one failure refills in 20 s)", h.Get("Retry-After"))
	}
	// The right key from the same address is refused too: else a guesser
	// would learn which guess was right.
	if status, _, _ := getAs(t, models, "198.51.100.7", testKey); status != http.StatusTooManyRequests {
		t.Errorf("good key from a refused address: Status = %d, want 429", status)
	}
	// Another address is not affected.
	if status, _, _ := getAs(t, models, "198.51.100.8", testKey); status != http.StatusOK {
		t.Errorf("other address: Status = %d, want 200", status)
	}

	// One failure's worth of time later, one more try is allowed.
	clock.Add(20 * time.Second)
	if status, _, _ := getAs(t, models, "198.51.100.7", testKey); status != http.StatusOK {
		t.Errorf("after 20 s: Status = %d, want 200", status)
	}

	got := logs.String()
	if n := strings.Count(got, "too many failed authentications"); n != 1 {
		t.Errorf("%d warnings for one episode, want 1:\n%s", n, got)
	}
	if !strings.Contains(got, `"client":"198.51.100.7"`) || !strings.Contains(got, `"level":"WARN"`) {
		t.Errorf("warning lacks the client or the level:\n%s", got)
	}
	if strings.Contains(got, badKey) || strings.Contains(got, "guess-ffff") {
		t.Errorf("the log holds the attempted key:\n%s", got)
	}
}

func TestServer_AuthFailuresOpenAIDialect(t *testing.T) {
	t.Parallel()
	g := newGateway(t, Config{AuthFailuresPerMinute: 1})
	post := func() (int, http.Header, string) {
		req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, g.URL+"/v1/chat/completions",
			strings.NewReader(`{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer sk-wrong-wrong-wrong-wrong")
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, string(body)
	}
	if status, _, _ := post(); status != http.StatusUnauthorized {
		t.Fatalf("first: Status = %d, want 401", status)
	}
	status, h, body := post()
	if status != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Fatalf("second: Status = %d, Retry-After %q, want 429 with one", status, h.Get("Retry-After"))
	}
	var e struct {
		Error struct{ Type, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Message == "" {
		t.Errorf("body = %s, want an OpenAI error object", body)
	}
}

func TestAuthFailures_IPv6CountsPerSlash64AndMemoryIsBounded(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	f := newAuthFailures(2, func() time.Time { return now })
	f.fail("2001:db8::1")
	if started := f.fail("2001:db8::2"); !started {
		t.Error("second failure in the same /64 did not start an episode")
	}
	if f.wait("2001:db8::3") == 0 {
		t.Error("another address of the /64 may still try")
	}
	if f.wait("2001:db8:0:1::1") != 0 {
		t.Error("the next /64 is refused too")
	}
	for i := range maxAuthFailureAddrs + 10 {
		f.fail(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String())
	}
	if n := len(f.addrs); n > maxAuthFailureAddrs {
		t.Errorf("%d addresses remembered, want at most %d", n, maxAuthFailureAddrs)
	}
}

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine to write while
// the test reads, with a signal on every write. It keeps at most its first
// 16 MiB, so a load run's access log does not grow without bound.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

const syncBufferMax = 16 << 20

func newSyncBuffer() *syncBuffer { return &syncBuffer{wrote: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	if b.buf.Len() >= syncBufferMax {
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// await waits until re matches what was written and returns the match.
func (b *syncBuffer) await(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if m := re.FindStringSubmatch(b.String()); m != nil {
			return m
		}
		select {
		case <-b.wrote:
		case <-deadline:
			t.Fatalf("waited for %s in:\n%s", re, b.String())
		}
	}
}

// server is "llmgw serve" running in the test process.
type server struct {
	URL    string
	stderr *syncBuffer
	stop   context.CancelFunc
	done   chan error
}

var listeningRE = regexp.MustCompile(`"msg":"listening".*?"addr":"([^"]+)"`)

// startServe runs "llmgw serve" on a free port of 127.0.0.1 until the test
// ends or stopAndWait is called.
func startServe(t *testing.T, db string, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{stderr: newSyncBuffer(), stop: cancel, done: make(chan error, 1)}
	argv := append([]string{"llmgw", "--db", db, "--log-format", "json"}, args...)
	argv = append(argv, "serve", "--listen", "127.0.0.1:0")
	go func() {
		var out bytes.Buffer
		s.done <- New(&out, s.stderr).RunContext(ctx, argv)
	}()
	s.URL = "http://" + s.stderr.await(t, listeningRE)[1]
	t.Cleanup(func() {
		cancel()
		<-s.done //nolint:errcheck // only waiting: a test that cares gets the error from stopAndWait
	})
	return s
}

// stopAndWait stops the server as SIGTERM would and returns its error.
func (s *server) stopAndWait(t *testing.T) error {
	t.Helper()
	s.stop()
	select {
	case err := <-s.done:
		s.done <- err // for Cleanup
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("server did not stop")
		return nil
	}
}

// concurrently runs fn(0..n-1) at once and reports every error.
func concurrently(t *testing.T, n int, fn func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(i); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("request %v", err)
	}
}

// createKey runs "key create" and returns the key from its last line.
func createKey(t *testing.T, db, name string) string {
	t.Helper()
	out, _ := mustRun(t, "--db", db, "key", "create", "--name", name)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}

func sdk(url, key string) *anthropic.Client {
	c := anthropic.NewClient(option.WithBaseURL(url), option.WithAPIKey(key), option.WithMaxRetries(0))
	return &c
}

func hello() anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model: "claude-sonnet-4-5", MaxTokens: 100,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello"))},
	}
}

// streamOnce runs one streaming request to the end.
func streamOnce(ctx context.Context, c *anthropic.Client, p anthropic.MessageNewParams) (anthropic.Message, error) {
	s := c.Messages.NewStreaming(ctx, p)
	var msg anthropic.Message
	for s.Next() {
		if err := msg.Accumulate(s.Current()); err != nil {
			return msg, err
		}
	}
	return msg, s.Err()
}

func TestServe_RefusesPendingMigrations(t *testing.T) {
	db := t.TempDir() + "/fresh.db"
	// An SQLite file without llmgw's migrations applied.
	sdb, err := openStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if err := sdb.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, err = run(t, "--db", db, "serve", "--listen", "127.0.0.1:0")
	wantErr(t, err, "pending", "llmgw db migrate")
}

func TestServe_CLIChangesFollowWithinASecond(t *testing.T) {
	up := upstreamtest.NewServer(t)
	db := newDB(t)
	mustRun(t, "--db", db, "account", "add", "--name", "a", "--api-key", "sk-ant-aaaaaaaaaaaaaaaa", "--base-url", up.URL)
	key := createKey(t, db, "alice")
	srv := startServe(t, db)
	c := sdk(srv.URL, key)
	if _, err := c.Messages.New(context.Background(), hello()); err != nil {
		t.Fatal(err)
	}

	// A new account, and the old one disabled: requests follow.
	mustRun(t, "--db", db, "account", "add", "--name", "b", "--api-key", "sk-ant-bbbbbbbbbbbbbbbb", "--base-url", up.URL)
	mustRun(t, "--db", db, "account", "disable", "a")
	lag, err := visibleAfter(time.Now(), func() bool {
		before := up.Count()
		if _, err := c.Messages.New(context.Background(), hello()); err != nil {
			return false
		}
		return up.Requests()[before].Key == "sk-ant-bbbbbbbbbbbbbbbb"
	})
	if err != nil {
		t.Fatal("requests never moved to account b")
	}
	if lag > time.Second {
		t.Errorf("the change took %v to show, want under a second", lag)
	}

	// A revoked key is refused from then on.
	mustRun(t, "--db", db, "key", "revoke", "alice")
	lag, err = visibleAfter(time.Now(), func() bool {
		_, err := c.Messages.New(context.Background(), hello())
		var apiErr *anthropic.Error
		return errors.As(err, &apiErr) && apiErr.StatusCode == 401
	})
	if err != nil {
		t.Fatal("a revoked key was still accepted")
	}
	if lag > time.Second {
		t.Errorf("the revocation took %v to show, want under a second", lag)
	}
}

// visibleAfter probes until probe reports the change and returns how long
// after start the first successful probe was sent: the server routed that
// request with the change in effect, so its send time, not its (load-
// dependent) round trip, is when the change was known to be visible.
func visibleAfter(start time.Time, probe func() bool) (time.Duration, error) {
	deadline := start.Add(10 * time.Second)
	for time.Now().Before(deadline) {
		sent := time.Now()
		if probe() {
			return sent.Sub(start), nil
		}
		time.Sleep(10 * time.Millisecond) // polling another process's effect, not syncing our own goroutines
	}
	return 0, errors.New("change never became visible")
}

// eventually retries fn until it holds, for up to ten seconds.
func eventually(fn func() bool) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if fn() {
			return nil
		}
		time.Sleep(20 * time.Millisecond) // polling an outside process's effect, not syncing our own goroutines
	}
	return errors.New("condition not met")
}

func TestServe_ConcurrentStreamsAccountedExactly(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.EventDelay(time.Millisecond)))
	db := newDB(t)
	for _, name := range []string{"a", "b", "c"} {
		mustRun(t, "--db", db, "account", "add", "--name", name, "--api-key", "sk-ant-"+strings.Repeat(name, 16), "--base-url", up.URL)
	}
	keys := []string{createKey(t, db, "alice"), createKey(t, db, "bob")}
	srv := startServe(t, db)

	const n = 200
	concurrently(t, n, func(i int) error {
		p := hello()
		p.Messages = []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(strings.Repeat("x", i*7)))}
		_, err := streamOnce(context.Background(), sdk(srv.URL, keys[i%2]), p)
		return err
	})
	if err := srv.stopAndWait(t); err != nil {
		t.Fatalf("serve: %v", err)
	}

	out, _ := mustRun(t, "--db", db, "usage", "report", "--since", "1h", "--by", "key", "--format", "json")
	var rep struct {
		Rows  []map[string]any `json:"rows"`
		Total reportTotal      `json:"total"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out)
	}
	sent := up.SentUsage()
	if sent.Responses != n {
		t.Fatalf("upstream sent %d responses, want %d", sent.Responses, n)
	}
	if rep.Total.Requests != n || rep.Total.Errors != 0 {
		t.Errorf("report requests=%d errors=%d, want %d and 0", rep.Total.Requests, rep.Total.Errors, n)
	}
	if rep.Total.Input != sent.Input || rep.Total.Output != sent.Output ||
		rep.Total.CacheRead != sent.CacheRead || rep.Total.CacheWrite != sent.CacheWrite {
		t.Errorf("report totals %+v, upstream sent %+v", rep.Total, sent)
	}
	if len(rep.Rows) != 2 {
		t.Errorf("report has %d key rows, want 2", len(rep.Rows))
	}
}

func TestServe_GracefulShutdownFinishesStreams(t *testing.T) {
	release := make(chan struct{})
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Hold(release)))
	db := newDB(t)
	mustRun(t, "--db", db, "account", "add", "--name", "a", "--api-key", "sk-ant-aaaaaaaaaaaaaaaa", "--base-url", up.URL)
	key := createKey(t, db, "alice")
	srv := startServe(t, db)

	const n = 50
	var wg sync.WaitGroup
	results := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg, err := streamOnce(context.Background(), sdk(srv.URL, key), hello())
			if err == nil && msg.StopReason != "end_turn" {
				err = errors.New("stream ended without a stop reason")
			}
			results <- err
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := up.AwaitHeld(ctx, n); err != nil {
		t.Fatalf("streams did not all open: %v", err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- srv.stopAndWait(t) }()
	srv.stderr.await(t, regexp.MustCompile(`shutting down`))
	// New connections are refused while the open streams drain.
	if res, err := http.Get(srv.URL + "/healthz"); err == nil {
		res.Body.Close()
		t.Errorf("a new request was accepted after shutdown began")
	}
	close(release)
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil {
			t.Errorf("stream did not finish cleanly: %v", err)
		}
	}
	if err := <-stopped; err != nil {
		t.Fatalf("serve returned %v, want nil (exit 0)", err)
	}
	out, _ := mustRun(t, "--db", db, "usage", "report", "--since", "1h", "--format", "json")
	var rep struct {
		Total struct {
			Requests int64 `json:"requests"`
			Output   int64 `json:"output_tokens"`
		} `json:"total"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Total.Requests != n || rep.Total.Output != up.SentUsage().Output {
		t.Errorf("rows after shutdown: requests=%d output=%d, want %d and %d", rep.Total.Requests, rep.Total.Output, n, up.SentUsage().Output)
	}
}

func TestServe_FailoverShowsInAccountList(t *testing.T) {
	up := upstreamtest.NewServer(t,
		upstreamtest.Script("sk-ant-aaaaaaaaaaaaaaaa", upstreamtest.Fail(401, upstreamtest.Message("invalid x-api-key"))),
		upstreamtest.Script("sk-ant-bbbbbbbbbbbbbbbb", upstreamtest.Fail(429, upstreamtest.RetryAfter(600))))
	db := newDB(t)
	for _, name := range []string{"a", "b", "c"} {
		mustRun(t, "--db", db, "account", "add", "--name", name, "--api-key", "sk-ant-"+strings.Repeat(name, 16), "--base-url", up.URL)
	}
	key := createKey(t, db, "alice")
	srv := startServe(t, db)
	msg, err := sdk(srv.URL, key).Messages.New(context.Background(), hello())
	if err != nil {
		t.Fatalf("client saw %v, want one clean answer from c", err)
	}
	if len(msg.Content) == 0 {
		t.Fatal("empty answer")
	}
	// State is written back in the background; account list, another
	// process, shows it once flushed.
	var accts []accountJSON
	if err := eventually(func() bool {
		accts = listJSON(t, db)
		return len(accts) == 3 && accts[0].Status == "error" && accts[1].CooldownUntil != nil
	}); err != nil {
		t.Fatalf("account list never showed the learned state: %+v", accts)
	}
	if !strings.Contains(accts[0].Reason, "invalid x-api-key") {
		t.Errorf("reason = %q", accts[0].Reason)
	}
	if err := srv.stopAndWait(t); err != nil {
		t.Fatal(err)
	}
	firstLog := srv.stderr.String()
	// A restart keeps what was learned: c serves at once, a and b are skipped.
	srv = startServe(t, db)
	before := up.Count()
	if _, err := sdk(srv.URL, key).Messages.New(context.Background(), hello()); err != nil {
		t.Fatal(err)
	}
	if got := up.Requests()[before].Key; got != "sk-ant-cccccccccccccccc" || up.Count() != before+1 {
		t.Errorf("after restart the request went to %q in %d tries, want c at once", got, up.Count()-before)
	}
	for _, secret := range []string{key, "sk-ant-aaaaaaaaaaaaaaaa", "sk-ant-bbbbbbbbbbbbbbbb", "sk-ant-cccccccccccccccc"} {
		if strings.Contains(firstLog+srv.stderr.String(), secret) {
			t.Errorf("the server log contains a secret (%.10s…)", secret)
		}
	}
	// The operator re-enables a: it serves again.
	mustRun(t, "--db", db, "account", "enable", "a")
	if got := listJSON(t, db)[0]; got.Status != "active" {
		t.Errorf("after enable: %+v", got)
	}
}

// TestServe_ShutdownPastTheDrainTimeout: a stream still open when the drain
// timeout ends is cut, and its row is still written before serve returns.
func TestServe_ShutdownPastTheDrainTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.Hold(release)))
	db := newDB(t)
	mustRun(t, "--db", db, "account", "add", "--name", "a", "--api-key", "sk-ant-aaaaaaaaaaaaaaaa", "--base-url", up.URL)
	key := createKey(t, db, "alice")
	config := writeFile(t, "short.yaml", "server:\n  timeout_seconds: 1\n")
	srv := startServe(t, db, "--config", config)
	done := make(chan error, 1)
	go func() {
		_, err := streamOnce(context.Background(), sdk(srv.URL, key), hello())
		done <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := up.AwaitHeld(ctx, 1); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := srv.stopAndWait(t); err != nil {
		t.Fatalf("serve returned %v, want nil", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("shutdown took %v with a 1 s drain timeout", d)
	}
	if err := <-done; err == nil {
		t.Error("the cut stream ended without an error")
	}
	out, _ := mustRun(t, "--db", db, "usage", "report", "--since", "1h", "--format", "json")
	var rep struct {
		Total struct {
			Requests int64 `json:"requests"`
			Errors   int64 `json:"errors"`
		} `json:"total"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Total.Requests != 1 || rep.Total.Errors != 1 {
		t.Errorf("report = %+v, want the cut stream's row, counted as an error", rep.Total)
	}
}

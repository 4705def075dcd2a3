package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// crashFlushBound is the documented bound on what a crash loses: serve's
// usage writer commits what has waited usageFlush (or every 256 rows).
const crashFlushBound = usageFlush

// crashSlack covers what the bound leaves out: the flush transaction itself
// and the moment between the client having its answer and the row being
// handed to the writer.
const crashSlack = 500 * time.Millisecond

// buildLLMGW builds the llmgw binary into a temporary directory.
func buildLLMGW(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH: this test builds the llmgw binary to kill it with SIGKILL")
	}
	gomod, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" {
		t.Fatalf("go env GOMOD: %v %q", err, gomod)
	}
	bin := filepath.Join(t.TempDir(), "llmgw")
	build := exec.Command(goBin, "build", "-o", bin, "./cmd/llmgw")
	build.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/llmgw: %v\n%s", err, out)
	}
	return bin
}

// crashEnv is the test's environment without a config file to pick up.
func crashEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "LLMGW_CONFIG=") })
}

// crashCompletion is one request that got its whole answer.
type crashCompletion struct {
	id string // the gateway's x-request-id
	at time.Time
}

// TestCrash_KillNineLosesAtMostTheLastFlush measures what kill -9 costs:
// llmgw serve runs as a process, clients drive it for two seconds, it is
// killed mid-traffic, and the usage rows in the database are counted
// against the requests that had completed. The lost ones must all be from
// the last flush interval (with slack for the flush itself).
func TestCrash_KillNineLosesAtMostTheLastFlush(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	bin := buildLLMGW(t)
	db := filepath.Join(t.TempDir(), "llmgw.db")
	llmgw := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, append([]string{"--db", db}, args...)...)
		cmd.Env = crashEnv()
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("llmgw %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.String()
	}
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.EventDelay(time.Millisecond)))
	llmgw("db", "migrate")
	llmgw("account", "add", "--name", "a", "--api-key", "sk-ant-crash-FAKE-000000000000", "--base-url", up.URL)
	lines := strings.Split(strings.TrimSpace(llmgw("key", "create", "--name", "crash")), "\n")
	key := lines[len(lines)-1]

	stderr := newSyncBuffer()
	serve := exec.Command(bin, "--db", db, "--log-format", "json", "serve", "--listen", "127.0.0.1:0")
	serve.Env = crashEnv()
	serve.Stdout, serve.Stderr = io.Discard, stderr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = serve.Wait() // killed: the error says so
		close(exited)
	}()
	t.Cleanup(func() {
		_ = serve.Process.Kill()
		<-exited
	})
	url := "http://" + stderr.await(t, listeningRE)[1]

	// Drive it: half the requests streamed, half not; a request counts as
	// completed once the client has the whole answer.
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	const workers = 16
	const drive = 2 * time.Second
	var (
		mu        sync.Mutex
		completed []crashCompletion
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if id, ok := crashRequest(client, url, key, (i+n)%2 == 0); ok {
					mu.Lock()
					completed = append(completed, crashCompletion{id: id, at: time.Now()})
					mu.Unlock()
				}
			}
		}()
	}
	start := time.Now()
	time.Sleep(drive) // the traffic runs in the workers; this is how long before the kill
	killedAt := time.Now()
	if err := serve.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	close(stop)
	wg.Wait()

	sdb, err := openStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := sdb.Close(); err != nil {
			t.Error(err)
		}
	}()
	rows, err := sdb.ListUsage(context.Background(), start.Add(-time.Minute), time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	have := make(map[string]bool, len(rows))
	for _, r := range rows {
		have[r.RequestID] = true
	}
	var lost, lastSecond int
	oldestLost := time.Duration(0)
	for _, c := range completed {
		age := killedAt.Sub(c.at)
		if age <= time.Second {
			lastSecond++
		}
		if !have[c.id] {
			lost++
			oldestLost = max(oldestLost, age)
		}
	}
	if len(completed) == 0 {
		t.Fatal("no request completed before the kill")
	}
	rate := float64(len(completed)) / killedAt.Sub(start).Seconds()
	lostTraffic := time.Duration(float64(lost) / rate * float64(time.Second))
	t.Logf("kill -9 after %v: %d requests completed (%.0f/s), %d in the last second; %d rows found, %d completed requests without a row = %v of traffic; the oldest lost one completed %v before the kill",
		drive, len(completed), rate, lastSecond, len(rows), lost, lostTraffic.Round(time.Millisecond), oldestLost.Round(time.Millisecond))
	if limit := crashFlushBound + crashSlack; oldestLost > limit || lostTraffic > limit {
		t.Errorf("kill -9 lost rows of requests completed up to %v before it (%v of traffic), want at most %v (the flush interval, plus %v for the flush itself)",
			oldestLost.Round(time.Millisecond), lostTraffic.Round(time.Millisecond), limit, crashSlack)
	}
}

// crashRequest sends one request and reports the gateway's request id and
// whether the whole answer arrived.
func crashRequest(client *http.Client, url, key string, stream bool) (string, bool) {
	body := fmt.Sprintf(`{"model":"claude-sonnet-4-5","max_tokens":64,"stream":%v,"messages":[{"role":"user","content":"crash test"}]}`, stream)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/messages", strings.NewReader(body))
	if err != nil {
		return "", false
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("x-api-key", key)
	resp, err := client.Do(req)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", false
	}
	end := `"stop_reason":"end_turn"`
	if stream {
		end = "event: message_stop"
	}
	return resp.Header.Get("X-Request-Id"), bytes.Contains(got, []byte(end))
}

//go:build load

package cli

// The processes of the load run: llmgw serve and the bare proxy each run as
// their own process, built with go build like a release, so that their CPU
// time and resident memory can be read from /proc apart from the test's
// (which holds the fake upstream and the clients).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100
// on every Linux architecture Go supports (sysconf(_SC_CLK_TCK) needs cgo).
const clockTicks = 100

// procStat is what /proc says about a process at one moment.
type procStat struct {
	cpu time.Duration // utime+stime, every thread
	rss int64         // VmRSS, bytes
	hwm int64         // VmHWM, the peak of VmRSS since the process started, bytes
	// anon and file split rss: the heap, stacks and runtime (RssAnon), and
	// the binary's pages mapped in (RssFile), which grows with the binary's
	// size rather than with load.
	anon, file int64
}

// readProcStat reads /proc/PID/stat and /proc/PID/status.
func readProcStat(pid int) (procStat, error) {
	var st procStat
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// The command name, field 2, is in parentheses and may hold spaces;
	// the fields after the last ')' start at field 3 (state).
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return st, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return st, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return st, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	st.cpu = time.Duration(utime+stime) * time.Second / clockTicks
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for line := range strings.Lines(string(status)) {
		name, val, ok := strings.Cut(line, ":")
		var field *int64
		switch name {
		case "VmRSS":
			field = &st.rss
		case "VmHWM":
			field = &st.hwm
		case "RssAnon":
			field = &st.anon
		case "RssFile":
			field = &st.file
		}
		if !ok || field == nil {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return st, fmt.Errorf("/proc/%d/status %s: %q", pid, name, val)
		}
		*field = kb << 10
	}
	return st, nil
}

// loadProc is a process under load: llmgw serve or the bare proxy.
type loadProc struct {
	name   string
	URL    string
	cmd    *exec.Cmd
	out    *syncBuffer // what it wrote, stdout and stderr (the first 16 MiB)
	exited chan struct{}
	err    error // the exit status, once exited is closed
}

// startProc starts bin with args, waits until what it writes matches
// listening (whose first group is the address) and stops it at the end of
// the test.
func startProc(t *testing.T, name, bin string, listening *regexp.Regexp, args ...string) *loadProc {
	t.Helper()
	p := &loadProc{name: name, out: newSyncBuffer(), exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = crashEnv()
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill() // already gone after stop
		<-p.exited
	})
	p.URL = "http://" + p.out.await(t, listening)[1]
	return p
}

// stat reads the process's CPU time and memory.
func (p *loadProc) stat(t *testing.T) procStat {
	t.Helper()
	st, err := readProcStat(p.cmd.Process.Pid)
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	return st
}

// stop sends SIGTERM and waits (up to a minute) for the process to exit:
// llmgw drains its connections and flushes its usage rows first.
func (p *loadProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("%s: SIGTERM: %v", p.name, err)
	}
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		t.Fatalf("%s did not exit within a minute of SIGTERM", p.name)
	}
}

// buildBareProxy builds cli/testdata/bareproxy into a temporary directory.
// It is a program of its own rather than a mode of the test binary so that
// its memory and CPU hold only the proxy: no testing runtime, no SQLite,
// SDKs or llmgw package initialisation, built the way llmgw is.
func buildBareProxy(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bareproxy")
	build := exec.Command("go", "build", "-o", bin, "./testdata/bareproxy")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cli/testdata/bareproxy: %v\n%s", err, out)
	}
	return bin
}

var bareListeningRE = regexp.MustCompile(`listening (\S+)\n`)

// startBareProxy runs the bare proxy in front of upstream: clients send
// clientKey as x-api-key, the upstream gets accountKey.
func startBareProxy(t *testing.T, bin, upstream, clientKey, accountKey string) *loadProc {
	t.Helper()
	return startProc(t, "bare proxy", bin, bareListeningRE,
		"-listen", "127.0.0.1:0", "-upstream", upstream, "-client-key", clientKey, "-account-key", accountKey)
}

// llmgwSetup is a database made by the llmgw binary: migrated, with one
// API-key account in front of upstream and one client key.
type llmgwSetup struct {
	bin, db string
	key     string // the client key, without policy
	// policyKey carries three limits no load run reaches and a model
	// allowlist: every check runs on every request and none refuses.
	policyKey string
}

// newLLMGWSetup runs db migrate, account add and key create as the
// binary, as an operator would.
func newLLMGWSetup(t *testing.T, bin, upstream, accountKey string) *llmgwSetup {
	t.Helper()
	return newLLMGWSetupOn(t, bin, upstream, accountKey, filepath.Join(t.TempDir(), "llmgw.db"))
}

// newLLMGWSetupOn is newLLMGWSetup on the database db: a file or a
// postgres:// URL.
func newLLMGWSetupOn(t *testing.T, bin, upstream, accountKey, db string) *llmgwSetup {
	t.Helper()
	s := &llmgwSetup{bin: bin, db: db}
	s.run(t, "db", "migrate")
	s.run(t, "account", "add", "--name", "load", "--api-key", accountKey, "--base-url", upstream)
	s.key = strings.TrimSpace(s.run(t, "key", "create", "--name", "load"))
	s.policyKey = strings.TrimSpace(s.run(t, "key", "create", "--name", "load-policy", "--models", "claude-sonnet-*,claude-haiku-*",
		"--limit", "usd=1000000/day", "--limit", "tokens=1000000M/5h", "--limit", "requests=100000000/1m"))
	return s
}

// run runs the binary with args on the setup's database and returns its
// standard output.
func (s *llmgwSetup) run(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(s.bin, append([]string{"--db", s.db}, args...)...)
	cmd.Env = crashEnv()
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("llmgw %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// serve starts llmgw serve on a free port, logging one JSON line per
// request to stderr as in production.
func (s *llmgwSetup) serve(t *testing.T) *loadProc {
	t.Helper()
	return startProc(t, "llmgw", s.bin, listeningRE, "--db", s.db, "--log-format", "json", "serve", "--listen", "127.0.0.1:0")
}

// loadMetricsToken is the (obviously fake) server.metrics_token of the
// metrics phase.
const loadMetricsToken = "metrics-load-FAKE-0000000000000000"

// serveMetrics starts llmgw serve as serve does, with metrics on: a config
// file that sets server.metrics_token.
func (s *llmgwSetup) serveMetrics(t *testing.T) *loadProc {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "metrics.yaml")
	if err := os.WriteFile(cfg, []byte("server:\n  metrics_token: "+loadMetricsToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return startProc(t, "llmgw", s.bin, listeningRE, "--db", s.db, "--config", cfg, "--log-format", "json", "serve", "--listen", "127.0.0.1:0")
}

// scrapeEverySecond gets url with token as a Prometheus server would, once a
// second, until the returned function is called; that returns the number of
// scrapes answered 200 and fails the test on any other answer.
func scrapeEverySecond(t *testing.T, url, token string) (stop func() int) {
	t.Helper()
	tr := &http.Transport{Proxy: nil}
	done := make(chan struct{})
	result := make(chan int, 1)
	var firstErr error
	go func() {
		n := 0
		defer func() { result <- n }()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			err := func() error {
				req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
				if err != nil {
					return err
				}
				req.Header.Set("Authorization", "Bearer "+token)
				res, err := tr.RoundTrip(req)
				if err != nil {
					return err
				}
				defer res.Body.Close()
				if _, err := io.Copy(io.Discard, res.Body); err != nil {
					return err
				}
				if res.StatusCode != http.StatusOK {
					return fmt.Errorf("status %d", res.StatusCode)
				}
				return nil
			}()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			if err == nil {
				n++
			}
		}
	}()
	return func() int {
		close(done)
		n := <-result
		tr.CloseIdleConnections()
		if firstErr != nil {
			t.Errorf("scrape %s: %v", url, firstErr)
		}
		return n
	}
}

// usageTotal is the total line of usage report.
type usageTotal struct {
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	Input    int64 `json:"input_tokens"`
	Output   int64 `json:"output_tokens"`
}

// usage reports every row the database holds (run it after serve stopped,
// so that every row is flushed).
func (s *llmgwSetup) usage(t *testing.T) usageTotal {
	t.Helper()
	out := s.run(t, "usage", "report", "--since", "24h", "--format", "json")
	var rep struct {
		Total usageTotal `json:"total"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("usage report: %v\n%s", err, out)
	}
	return rep.Total
}

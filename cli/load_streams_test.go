//go:build load

package cli

// The many-streams run: `make load-streams` (or go test -tags load -run
// '^TestLoadStreams$' -v ./cli/). LLMGW_LOAD_STREAMS (default 8000) clients
// each open one streaming request at once against a slow upstream (a frame
// every LLMGW_LOAD_STREAM_DELAY_MS, default 500, so that every stream is
// open at the same time for seconds), first through the bare proxy, then
// through llmgw serve. Every stream must end whole and every request must
// have its usage row; the peak resident memory of each proxy is printed,
// with the target of issue 10 (under 400 MB for llmgw at 8,000 streams) as
// PASS or MISS.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

const targetStreamsRSS = 400 << 20

// streamsResult is one proxy's many-streams phase.
type streamsResult struct {
	whole, failed int
	firstErr      string
	peak          int64         // VmHWM at the end: the peak resident memory
	open          int64         // the most streams open at once, as the clients saw it
	took          time.Duration // from the first dial to the last stream's end
}

func TestLoadStreams(t *testing.T) {
	n := envInt("LLMGW_LOAD_STREAMS", 8000)
	delay := time.Duration(envInt("LLMGW_LOAD_STREAM_DELAY_MS", 500)) * time.Millisecond
	// Each stream holds a socket in the clients and one in the fake (this
	// process), and two in the proxy; a little room for everything else.
	raiseOpenFiles(t, uint64(2*n+512))

	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.EventDelay(delay)))
	llmgwBin := buildLLMGW(t)
	bareBin := buildBareProxy(t)
	q := anthropicRequest(true)

	bare := startBareProxy(t, bareBin, up.URL, loadBareKey, loadAccountKey)
	rb := openStreams(t, bare, loadBareKey, q, n)
	bare.stop(t)

	setup := newLLMGWSetup(t, llmgwBin, up.URL, loadAccountKey)
	gw := setup.serve(t)
	rg := openStreams(t, gw, setup.key, q, n)
	gw.stop(t)
	if gw.err != nil {
		t.Errorf("llmgw serve exited with %v:\n%.2000s", gw.err, gw.out.String())
	}

	for _, p := range []struct {
		name string
		r    streamsResult
	}{{"bare", rb}, {"llmgw", rg}} {
		t.Logf("%-5s %d streams whole, %d failed, at most %d open at once, peak RSS %.1f MB, %v",
			p.name, p.r.whole, p.r.failed, p.r.open, mb(p.r.peak), p.r.took.Round(100*time.Millisecond))
		if p.r.failed > 0 {
			t.Errorf("%s: %d of %d streams failed; the first: %s", p.name, p.r.failed, n, p.r.firstErr)
		}
	}
	u := setup.usage(t)
	if u.Requests != int64(rg.whole) || u.Errors != 0 {
		t.Errorf("usage rows: %d (%d errors), want %d", u.Requests, u.Errors, rg.whole)
	}
	fmt.Printf("\n%d concurrent streams, a frame every %v:\n", n, delay)
	fmt.Printf("  bare proxy: %d whole, peak RSS %.1f MB\n", rb.whole, mb(rb.peak))
	fmt.Printf("  llmgw:      %d whole, peak RSS %.1f MB (%.2f× the bare proxy's), %d usage rows\n",
		rg.whole, mb(rg.peak), ratio(float64(rg.peak), float64(rb.peak)), u.Requests)
	fmt.Printf("%s llmgw peak resident memory at %d streams: %.1f MB (target < %d MB at 8000)\n",
		passMiss(rg.peak < targetStreamsRSS), n, mb(rg.peak), targetStreamsRSS>>20)
}

// raiseOpenFiles lifts this process's soft open-file limit to its hard
// limit (the proxies it starts inherit it), and skips the test when even
// that is below need.
func raiseOpenFiles(t *testing.T, need uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
	}
	if lim.Cur < need {
		t.Skipf("open-file limit %d is below the %d this run needs: lower LLMGW_LOAD_STREAMS", lim.Cur, need)
	}
}

// openStreams opens n streaming requests to p at once (dialled in steps of
// 500 every 50 ms, so that the listen queue is not overrun), reads each to
// its end, and reports how many came whole.
func openStreams(t *testing.T, p *loadProc, key string, q loadRequest, n int) streamsResult {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: -1, DisableKeepAlives: true, Proxy: nil}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		res       streamsResult
		open, top atomic.Int64
	)
	start := time.Now()
	for i := range n {
		if i > 0 && i%500 == 0 {
			time.Sleep(50 * time.Millisecond)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := readStream(client, p.URL, key, q, func() {
				top.Store(max(top.Load(), open.Add(1)))
			})
			open.Add(-1)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if res.failed++; res.firstErr == "" {
					res.firstErr = err.Error()
				}
				return
			}
			res.whole++
		}()
	}
	wg.Wait()
	res.took = time.Since(start)
	res.open = top.Load()
	res.peak = p.stat(t).hwm
	return res
}

// readStream sends q and reads its stream to the end; opened is called
// once the answer's headers are in.
func readStream(client *http.Client, base, key string, q loadRequest, opened func()) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+q.path, strings.NewReader(q.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	req.Header.Set(q.auth, key)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	opened()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() == "event: message_stop" {
			_, _ = io.Copy(io.Discard, resp.Body)
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return fmt.Errorf("the stream ended without message_stop")
}

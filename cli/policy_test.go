package cli

// Team policy through "llmgw serve", with the official SDKs as clients and
// the fake Anthropic upstream: limits of each kind in every dialect, many
// clients on a tiny budget, use rebuilt after a restart, limits edited while
// serving, rotation, expiry, model allowlists and account limits.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"
	oaioption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"google.golang.org/genai"

	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// refusal is a request's failure as a dialect's SDK reports it.
type refusal struct {
	status     int
	typ        string // the error type or status the dialect names
	message    string
	retryAfter string
}

// dialectCall sends one small request in a dialect through its official
// SDK and returns the refusal, or nil when it was answered.
type dialectCall func(t *testing.T, url, key, model string) *refusal

var dialectCalls = map[string]dialectCall{
	"anthropic": func(t *testing.T, url, key, model string) *refusal {
		p := hello()
		p.Model = anthropic.Model(model)
		_, err := sdk(url, key).Messages.New(context.Background(), p)
		if err == nil {
			return nil
		}
		var e *anthropic.Error
		if !errors.As(err, &e) {
			t.Fatalf("anthropic: %v", err)
		}
		var body struct {
			Error struct{ Type, Message string } `json:"error"`
		}
		if err := json.Unmarshal([]byte(e.RawJSON()), &body); err != nil {
			t.Fatalf("anthropic error body %q: %v", e.RawJSON(), err)
		}
		return &refusal{e.StatusCode, body.Error.Type, body.Error.Message, e.Response.Header.Get("Retry-After")}
	},
	"openai": func(t *testing.T, url, key, model string) *refusal {
		c := openai.NewClient(oaioption.WithBaseURL(url+"/v1"), oaioption.WithAPIKey(key), oaioption.WithMaxRetries(0))
		_, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
			Model: model, MaxTokens: openai.Int(100),
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")},
		})
		return openaiRefusal(t, err)
	},
	"responses": func(t *testing.T, url, key, model string) *refusal {
		c := openai.NewClient(oaioption.WithBaseURL(url+"/v1"), oaioption.WithAPIKey(key), oaioption.WithMaxRetries(0))
		_, err := c.Responses.New(context.Background(), responses.ResponseNewParams{
			Model: model, MaxOutputTokens: openai.Int(100),
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hello")},
		})
		return openaiRefusal(t, err)
	},
	"gemini": func(t *testing.T, url, key, model string) *refusal {
		c, err := genai.NewClient(context.Background(), &genai.ClientConfig{
			APIKey: key, Backend: genai.BackendGeminiAPI, HTTPOptions: genai.HTTPOptions{BaseURL: url},
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Models.GenerateContent(context.Background(), model, genai.Text("hello"), &genai.GenerateContentConfig{MaxOutputTokens: 100})
		if err == nil {
			return nil
		}
		var e genai.APIError
		if !errors.As(err, &e) {
			t.Fatalf("gemini: %v", err)
		}
		// The SDK keeps no headers: read Retry-After from the same refusal
		// sent again by hand.
		req, _ := http.NewRequest(http.MethodPost, url+"/v1beta/models/"+model+":generateContent",
			strings.NewReader(`{"contents":[{"role":"user","parts":[{"text":"hello"}]}],"generationConfig":{"maxOutputTokens":100}}`))
		req.Header.Set("x-goog-api-key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != e.Code {
			t.Fatalf("gemini: the SDK got %d, the same request by hand %d", e.Code, resp.StatusCode)
		}
		return &refusal{e.Code, e.Status, e.Message, resp.Header.Get("Retry-After")}
	},
}

func openaiRefusal(t *testing.T, err error) *refusal {
	t.Helper()
	if err == nil {
		return nil
	}
	var e *openai.Error
	if !errors.As(err, &e) {
		t.Fatalf("openai: %v", err)
	}
	return &refusal{e.StatusCode, e.Type, e.Message, e.Response.Header.Get("Retry-After")}
}

// limitTypes is what each dialect names a limit refusal.
var limitTypes = map[string]string{
	"anthropic": "rate_limit_error", "openai": "rate_limit_error", "responses": "rate_limit_error", "gemini": "RESOURCE_EXHAUSTED",
}

// Each kind of limit, in each dialect: the requests under it are served,
// the first one past it is refused with 429 in the dialect's shape, a
// message naming the key, the limit and its use, and Retry-After; a refused
// request never reaches an account and is not an account error.
func TestServe_LimitsRefuseInEveryDialect(t *testing.T) {
	// Every answer uses 10 input and 5 output tokens: 0.000105 USD on
	// claude-sonnet-4-5 ($3 and $15 per million).
	up := upstreamtest.NewServer(t, upstreamtest.OK(upstreamtest.WithUsage(upstreamtest.Tokens{Input: 10, Output: 5})))
	db := newDB(t)
	mustRun(t, "--db", db, "account", "add", "--name", "a", "--api-key", "sk-ant-aaaaaaaaaaaaaaaa", "--base-url", up.URL)
	kinds := []struct {
		limit  string
		served int    // requests served before the refusal
		want   string // in the refusal message
		retry  func(s int) bool
	}{
		{"requests=2/1h", 2, "requests limit 2/1h reached (2 used); frees room at ", func(s int) bool { return s > 3500 && s <= 3600 }},
		{"tokens=20/day", 2, "tokens limit 20/day reached (30 used); resets ", func(s int) bool { return s > 0 && s <= 86400 }},
		{"usd=0.0001/week", 1, "usd limit 0.0001/week reached (0.000105 used); resets ", func(s int) bool { return s > 0 && s <= 7*86400 }},
	}
	keys := map[string]string{}
	for d := range dialectCalls {
		for i, k := range kinds {
			name := fmt.Sprintf("%s-%d", d, i)
			out, _ := mustRun(t, "--db", db, "key", "create", "--name", name, "--limit", k.limit)
			keys[name] = strings.TrimSpace(out)
		}
	}
	srv := startServe(t, db)
	served := 0
	for d, call := range dialectCalls {
		for i, k := range kinds {
			name := fmt.Sprintf("%s-%d", d, i)
			for n := range k.served {
				if r := call(t, srv.URL, keys[name], "claude-sonnet-4-5"); r != nil {
					t.Fatalf("%s request %d under %s refused: %+v", d, n+1, k.limit, r)
				}
				served++
			}
			r := call(t, srv.URL, keys[name], "claude-sonnet-4-5")
			if r == nil {
				t.Errorf("%s: request past %s served", d, k.limit)
				continue
			}
			secs, _ := strconv.Atoi(r.retryAfter)
			wantMsg := "key " + name + ": " + k.want
			if r.status != http.StatusTooManyRequests || r.typ != limitTypes[d] || !strings.Contains(r.message, wantMsg) || !k.retry(secs) {
				t.Errorf("%s past %s: %d %s %q retry-after %q; want 429 %s, %q and a retry-after to the reset",
					d, k.limit, r.status, r.typ, r.message, r.retryAfter, limitTypes[d], wantMsg)
			}
		}
	}
	if got := up.Count(); got != served {
		t.Errorf("upstream got %d requests, want the %d served: a refused request reached an account", got, served)
	}
	out, _ := mustRun(t, "--db", db, "account", "list", "--json")
	var accts []struct {
		Requests int64 `json:"requests"`
		Errors   int64 `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out), &accts); err != nil || len(accts) != 1 {
		t.Fatalf("account list: %v\n%s", err, out)
	}
	if accts[0].Errors != 0 {
		t.Errorf("account a has %d errors: a refusal counted against it", accts[0].Errors)
	}
}

// Twenty clients at once on a key with usd=0.05/day: once the settled
// spend reaches the limit no request starts, and the overshoot is bounded
// by what was in flight.
func TestServe_TinyBudgetUnderConcurrency(t *testing.T) {
	// 10 input and 190 output tokens on claude-sonnet-4-5: 0.00288 USD each.
	// max_tokens 200 makes each reservation at least that.
	const cost = 10*3e-6 + 190*15e-6
	up := upstreamtest.NewServer(t, upstreamtest.OK(
		upstreamtest.WithUsage(upstreamtest.Tokens{Input: 10, Output: 190}), upstreamtest.EventDelay(2*time.Millisecond)))
	db := newDB(t)
	mustRun(t, "--db", db, "account", "add", "--name", "a", "--api-key", "sk-ant-aaaaaaaaaaaaaaaa", "--base-url", up.URL)
	out, _ := mustRun(t, "--db", db, "key", "create", "--name", "alice", "--limit", "usd=0.05/day")
	key := strings.TrimSpace(out)
	srv := startServe(t, db)

	var mu sync.Mutex
	refusedFinal := 0
	concurrently(t, 20, func(int) error {
		c := sdk(srv.URL, key)
		p := hello()
		p.MaxTokens = 200
		for range 100 {
			_, err := c.Messages.New(context.Background(), p)
			var e *anthropic.Error
			switch {
			case err == nil:
				continue
			case !errors.As(err, &e) || e.StatusCode != 429:
				return err
			case strings.Contains(e.RawJSON(), "held by requests in flight"):
				time.Sleep(5 * time.Millisecond) // what Retry-After asks, shortened
				continue
			}
			mu.Lock()
			refusedFinal++
			mu.Unlock()
			return nil
		}
		return errors.New("never refused")
	})
	if err := srv.stopAndWait(t); err != nil {
		t.Fatal(err)
	}
	if refusedFinal != 20 {
		t.Errorf("%d clients saw the limit reached, want 20", refusedFinal)
	}
	rows := servedRows(t, db)
	total := float64(len(rows)) * cost
	if total < 0.05 || total > 0.05+20*cost {
		t.Errorf("settled %.5f USD over %d requests: want at least the limit and at most 20 requests past it", total, len(rows))
	}
	// No request started after the requests that had already finished
	// reached the limit.
	for _, r := range rows {
		settled := 0.0
		for _, o := range rows {
			if o.end.Before(r.start) {
				settled += cost
			}
		}
		if settled >= 0.05+1e-9 {
			t.Errorf("a request started at %s after %.5f USD had settled", r.start.Format(time.StampMicro), settled)
			break
		}
	}
	if up.Count() != len(rows) {
		t.Errorf("upstream served %d, the log has %d served rows", up.Count(), len(rows))
	}
}

type servedRow struct{ start, end time.Time }

// servedRows reads the rows of requests that reached an account.
func servedRows(t *testing.T, db string) []servedRow {
	t.Helper()
	s, err := openStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	rows, err := s.ListUsage(context.Background(), time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var out []servedRow
	for _, r := range rows {
		if r.AttemptCount > 0 {
			out = append(out, servedRow{r.Time, r.Time.Add(r.Duration)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out
}

// Use survives a restart (summed again from the request log), and a limit
// edited while the server runs applies within a second, both ways.
func TestServe_LimitsAfterRestartAndEdit(t *testing.T) {
	up := upstreamtest.NewServer(t)
	db := newDB(t)
	mustRun(t, "--db", db, "account", "add", "--name", "a", "--api-key", "sk-ant-aaaaaaaaaaaaaaaa", "--base-url", up.URL)
	out, _ := mustRun(t, "--db", db, "key", "create", "--name", "alice", "--limit", "requests=3/day")
	key := strings.TrimSpace(out)
	call := dialectCalls["anthropic"]

	srv := startServe(t, db)
	for range 2 {
		if r := call(t, srv.URL, key, "claude-sonnet-4-5"); r != nil {
			t.Fatal(r)
		}
	}
	if err := srv.stopAndWait(t); err != nil {
		t.Fatal(err)
	}
	srv = startServe(t, db)
	if r := call(t, srv.URL, key, "claude-sonnet-4-5"); r != nil {
		t.Fatalf("third request after the restart: %+v", r)
	}
	if r := call(t, srv.URL, key, "claude-sonnet-4-5"); r == nil || !strings.Contains(r.message, "requests limit 3/day reached (3 used)") {
		t.Fatalf("fourth request after the restart: %+v, want the limit reached with 3 used", r)
	}
	// The CLI reads the request log, which the server writes in batches.
	var show string
	if err := eventually(func() bool {
		show, _ = mustRun(t, "--db", db, "key", "show", "alice")
		return regexp.MustCompile(`limit requests=3/day:\s+3 used of 3, 0 left; resets `).MatchString(show)
	}); err != nil {
		t.Errorf("key show:\n%s", show)
	}

	mustRun(t, "--db", db, "key", "edit", "alice", "--limit", "requests=5/day")
	lag, err := visibleAfter(time.Now(), func() bool { return call(t, srv.URL, key, "claude-sonnet-4-5") == nil })
	if err != nil || lag > time.Second {
		t.Fatalf("a raised limit took %v to apply (%v)", lag, err)
	}
	mustRun(t, "--db", db, "key", "edit", "alice", "--limit", "requests=1/day")
	lag, err = visibleAfter(time.Now(), func() bool {
		r := call(t, srv.URL, key, "claude-sonnet-4-5")
		// 4 or 5 used: a probe may be served before the change applies.
		return r != nil && strings.Contains(r.message, "requests limit 1/day reached (")
	})
	if err != nil || lag > time.Second {
		t.Fatalf("a lowered limit took %v to apply (%v)", lag, err)
	}
	mustRun(t, "--db", db, "key", "edit", "alice", "--clear-limits")
	if _, err := visibleAfter(time.Now(), func() bool { return call(t, srv.URL, key, "claude-sonnet-4-5") == nil }); err != nil {
		t.Fatal("clearing the limits never let requests through")
	}
}

// Rotation: the old secret is refused, the new one works, and both secrets'
// requests are one key's history. Expiry: 401 saying when.
func TestServe_RotateAndExpire(t *testing.T) {
	up := upstreamtest.NewServer(t)
	db := newDB(t)
	mustRun(t, "--db", db, "account", "add", "--name", "a", "--api-key", "sk-ant-aaaaaaaaaaaaaaaa", "--base-url", up.URL)
	old := createKey(t, db, "alice")
	out, _ := mustRun(t, "--db", db, "key", "create", "--name", "shortlived", "--expires", "1s")
	short := strings.TrimSpace(out)
	srv := startServe(t, db)
	call := dialectCalls["anthropic"]
	if r := call(t, srv.URL, old, "claude-sonnet-4-5"); r != nil {
		t.Fatal(r)
	}
	out, _ = mustRun(t, "--db", db, "key", "rotate", "alice")
	fresh := strings.TrimSpace(out)
	if _, err := visibleAfter(time.Now(), func() bool {
		r := call(t, srv.URL, old, "claude-sonnet-4-5")
		return r != nil && r.status == 401
	}); err != nil {
		t.Fatal("the old secret still works after rotation")
	}
	if r := call(t, srv.URL, fresh, "claude-sonnet-4-5"); r != nil {
		t.Fatalf("the new secret: %+v", r)
	}
	var report struct {
		Rows []struct {
			Key      string `json:"key"`
			Requests int64  `json:"requests"`
		} `json:"rows"`
	}
	if err := eventually(func() bool {
		rep, _ := mustRun(t, "--db", db, "usage", "report", "--by", "key", "--format", "json")
		if err := json.Unmarshal([]byte(rep), &report); err != nil {
			t.Fatal(err)
		}
		return len(report.Rows) == 1 && report.Rows[0].Key == "alice" && report.Rows[0].Requests == int64(up.Count())
	}); err != nil {
		t.Errorf("usage by key after rotation: %+v, want alice with all %d requests, old secret and new", report.Rows, up.Count())
	}

	var r *refusal
	if err := eventually(func() bool {
		r = call(t, srv.URL, short, "claude-sonnet-4-5")
		return r != nil
	}); err != nil {
		t.Fatal("an expired key was still accepted")
	}
	if r.status != 401 || !regexp.MustCompile(`client key shortlived expired at \d{4}-\d\d-\d\dT`).MatchString(r.message) {
		t.Errorf("expired key: %+v", r)
	}
	list, _ := mustRun(t, "--db", db, "key", "list")
	if !regexp.MustCompile(`shortlived .*expired`).MatchString(list) {
		t.Errorf("key list does not show the key expired:\n%s", list)
	}
}

// permissionTypes is what each dialect names a model refusal.
var permissionTypes = map[string]string{
	"anthropic": "permission_error", "openai": "permission_error", "responses": "permission_error", "gemini": "PERMISSION_DENIED",
}

// A model outside the key's patterns is refused with 403 in each dialect,
// naming the patterns; aliases (the config file's and the catalog's)
// resolve before the check.
func TestServe_ModelAllowlist(t *testing.T) {
	up := upstreamtest.NewServer(t)
	db := newDB(t)
	cfg := writeFile(t, "llmgw.yaml", "models:\n  aliases:\n    gpt-4o: claude-sonnet-4-5\n")
	mustRun(t, "--db", db, "account", "add", "--name", "a", "--api-key", "sk-ant-aaaaaaaaaaaaaaaa", "--base-url", up.URL)
	out, _ := mustRun(t, "--db", db, "key", "create", "--name", "alice", "--models", "claude-sonnet-4-5*,claude-opus-4-20250514")
	key := strings.TrimSpace(out)
	srv := startServe(t, db, "--config", cfg)
	for d, call := range dialectCalls {
		r := call(t, srv.URL, key, "claude-haiku-4-5")
		if r == nil || r.status != 403 || r.typ != permissionTypes[d] ||
			!strings.Contains(r.message, "key alice may not use model claude-haiku-4-5; it may use claude-sonnet-4-5*, claude-opus-4-20250514") {
			t.Errorf("%s, a model outside the list: %+v", d, r)
		}
		if r := call(t, srv.URL, key, "claude-sonnet-4-5"); r != nil {
			t.Errorf("%s, a model in the list: %+v", d, r)
		}
		// claude-opus-4 is the catalog's alias of claude-opus-4-20250514.
		if r := call(t, srv.URL, key, "claude-opus-4"); r != nil {
			t.Errorf("%s, a catalog alias of an allowed model: %+v", d, r)
		}
	}
	if r := dialectCalls["openai"](t, srv.URL, key, "gpt-4o"); r != nil {
		t.Errorf("a config alias of an allowed model: %+v", r)
	}
	if got, want := up.Count(), 2*4+1; got != want {
		t.Errorf("upstream got %d requests, want %d", got, want)
	}
}

// An account whose own limit is spent is skipped until its window frees,
// shown as such in account list and named in the 503 when nothing else can
// serve.
func TestServe_AccountLimitSkipsTheAccount(t *testing.T) {
	up := upstreamtest.NewServer(t)
	db := newDB(t)
	mustRun(t, "--db", db, "account", "add", "--name", "capped", "--api-key", "sk-ant-cccccccccccccccc", "--base-url", up.URL, "--priority", "0")
	mustRun(t, "--db", db, "account", "add", "--name", "spare", "--api-key", "sk-ant-ssssssssssssssss", "--base-url", up.URL, "--priority", "1")
	mustRun(t, "--db", db, "account", "edit", "capped", "--limit", "requests=2/day")
	key := createKey(t, db, "alice")
	srv := startServe(t, db)
	call := dialectCalls["anthropic"]
	for range 4 {
		if r := call(t, srv.URL, key, "claude-sonnet-4-5"); r != nil {
			t.Fatal(r)
		}
	}
	var got []string
	for _, r := range up.Requests() {
		got = append(got, r.Key[len(r.Key)-1:])
	}
	if strings.Join(got, "") != "ccss" {
		t.Errorf("accounts used (last letter of the key): %s, want ccss", strings.Join(got, ""))
	}
	var list string
	if err := eventually(func() bool { // the server writes the request log in batches
		list, _ = mustRun(t, "--db", db, "account", "list")
		return regexp.MustCompile(`capped .*active, limit reached`).MatchString(list) &&
			regexp.MustCompile(`capped .*requests 2/2 per day \(reached\)`).MatchString(list)
	}); err != nil {
		t.Errorf("account list does not show the spent limit:\n%s", list)
	}
	mustRun(t, "--db", db, "account", "disable", "spare")
	var r *refusal
	if err := eventually(func() bool { r = call(t, srv.URL, key, "claude-sonnet-4-5"); return r != nil }); err != nil {
		t.Fatal("requests still served with the spare disabled")
	}
	if r.status != 503 || !strings.Contains(r.message, "own limit spent: requests limit 2/day reached (2 used); resets ") {
		t.Errorf("with only the capped account: %+v", r)
	}
}

// A key's concurrency cap: a request over it waits for a slot and is
// served when one frees; one that waits longer than the server's timeout
// gets 429 and never reaches an account.
func TestServe_KeyConcurrency(t *testing.T) {
	up := upstreamtest.NewServer(t)
	const acct = "sk-ant-aaaaaaaaaaaaaaaa"
	hold := make(chan struct{})
	// The first request is held upstream; the third streams slowly, for
	// longer than the 2 s timeout.
	up.Script(acct, upstreamtest.OK(upstreamtest.Hold(hold)), upstreamtest.OK(),
		upstreamtest.OK(upstreamtest.EventDelay(800*time.Millisecond)))
	db := newDB(t)
	cfg := writeFile(t, "llmgw.yaml", "server:\n  timeout_seconds: 2\n")
	mustRun(t, "--db", db, "account", "add", "--name", "a", "--api-key", acct, "--base-url", up.URL)
	out, _ := mustRun(t, "--db", db, "key", "create", "--name", "alice", "--max-concurrency", "1")
	key := strings.TrimSpace(out)
	srv := startServe(t, db, "--config", cfg)
	call := dialectCalls["anthropic"]

	first, second := make(chan *refusal, 1), make(chan *refusal, 1)
	go func() { first <- call(t, srv.URL, key, "claude-sonnet-4-5") }()
	if err := up.AwaitHeld(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	go func() { second <- call(t, srv.URL, key, "claude-sonnet-4-5") }()
	time.Sleep(300 * time.Millisecond) // time for the second to arrive; the cap, not this sleep, keeps it from the upstream
	if n := up.Count(); n != 1 {
		t.Errorf("upstream got %d requests while the key's one slot was taken, want 1", n)
	}
	close(hold)
	if r := <-first; r != nil {
		t.Errorf("first: %+v", r)
	}
	if r := <-second; r != nil {
		t.Errorf("second, after the first freed its slot: %+v", r)
	}

	slow := make(chan error, 1)
	go func() {
		_, err := streamOnce(context.Background(), sdk(srv.URL, key), hello())
		slow <- err
	}()
	if err := eventually(func() bool { return up.Count() == 3 }); err != nil {
		t.Fatal("the slow stream never reached the upstream")
	}
	r := call(t, srv.URL, key, "claude-sonnet-4-5")
	if r == nil || r.status != 429 || r.retryAfter != "1" ||
		!strings.Contains(r.message, "key alice: 1 requests in flight, its max concurrency, and none finished within 2s") {
		t.Errorf("over the cap past the timeout: %+v", r)
	}
	if err := <-slow; err != nil {
		t.Errorf("slow stream: %v", err)
	}
	if n := up.Count(); n != 3 {
		t.Errorf("upstream got %d requests, want 3: the refused one reached it", n)
	}
}

// Rotating an account's key by importing a file that names only the key,
// while the server runs: requests move to the new key within a second and
// the account keeps its base URL and priority.
func TestServe_ImportMergeWhileServing(t *testing.T) {
	up := upstreamtest.NewServer(t)
	db := newDB(t)
	mustRun(t, "--db", db, "account", "add", "--name", "a", "--api-key", "sk-ant-oldoldoldoldoldo", "--base-url", up.URL, "--priority", "3")
	key := createKey(t, db, "alice")
	srv := startServe(t, db)
	call := dialectCalls["anthropic"]
	if r := call(t, srv.URL, key, "claude-sonnet-4-5"); r != nil {
		t.Fatal(r)
	}
	file := writeFile(t, "rotate.yaml", "accounts:\n  - name: a\n    api_key: sk-ant-newnewnewnewnewn\n")
	mustRun(t, "--db", db, "account", "import", file)
	lag, err := visibleAfter(time.Now(), func() bool {
		before := up.Count()
		if r := call(t, srv.URL, key, "claude-sonnet-4-5"); r != nil {
			t.Fatalf("a request after the import failed: %+v", r) // a reset base URL would send it nowhere
		}
		return up.Requests()[before].Key == "sk-ant-newnewnewnewnewn"
	})
	if err != nil || lag > time.Second {
		t.Fatalf("the imported key took %v to be used (%v)", lag, err)
	}
	show, _ := mustRun(t, "--db", db, "account", "show", "a")
	if !regexp.MustCompile(`priority:?\s+3\b`).MatchString(show) || !strings.Contains(show, up.URL) {
		t.Errorf("the import reset what the file left out:\n%s", show)
	}
}

package cli

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// alertReceiver is a webhook on httptest that records the alerts it gets.
// fail, while above zero, makes it answer 500 and counts down.
type alertReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []alertPayload
	posts  int
	fail   int
	status int // answer instead of 200 (0: 200)
	wrote  chan struct{}
}

func newAlertReceiver(t *testing.T) *alertReceiver {
	t.Helper()
	r := &alertReceiver{wrote: make(chan struct{}, 1)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.posts++
		if req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("Content-Type = %q, want application/json", req.Header.Get("Content-Type"))
		}
		if r.fail > 0 {
			r.fail--
			http.Error(w, "try later", http.StatusInternalServerError)
			return
		}
		if r.status != 0 {
			http.Error(w, "no", r.status)
			return
		}
		var p alertPayload
		if err := json.Unmarshal(b, &p); err != nil {
			t.Errorf("alert body %s: %v", b, err)
		}
		// Every documented field is present, even when empty.
		var fields map[string]any
		_ = json.Unmarshal(b, &fields)
		for _, f := range []string{"text", "event", "account", "key", "reason", "fix", "time"} {
			if _, ok := fields[f]; !ok {
				t.Errorf("alert body %s lacks %q", b, f)
			}
		}
		r.got = append(r.got, p)
		select {
		case r.wrote <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *alertReceiver) alerts() []alertPayload {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]alertPayload(nil), r.got...)
}

// await waits until n alerts have arrived.
func (r *alertReceiver) await(t *testing.T, n int) []alertPayload {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if got := r.alerts(); len(got) >= n {
			return got
		}
		select {
		case <-r.wrote:
		case <-deadline:
			t.Fatalf("waited for %d alerts, got %+v", n, r.alerts())
		}
	}
}

func testSender(t *testing.T, hooks ...WebhookConfig) *alertSender {
	t.Helper()
	s := newAlertSender(AlertsConfig{Webhooks: hooks}, slog.New(slog.DiscardHandler))
	s.firstDelay, s.maxDelay = time.Millisecond, 4*time.Millisecond
	return s
}

// A receiver that fails twice gets the alert on the third try, with the
// documented body.
func TestAlertSender_RetriesWithBackoff(t *testing.T) {
	t.Parallel()
	r := newAlertReceiver(t)
	r.fail = 2
	s := testSender(t, WebhookConfig{URL: r.URL + "/hook/T000/B000/secret"})
	s.Start()
	at := time.Date(2026, 12, 7, 15, 4, 5, 0, time.UTC)
	s.Notify(llmgw.Event{Kind: llmgw.EventAccountError, Account: "alice-max", Reason: "refresh token rejected (invalid_grant)",
		Fix: "llmgw account login --name alice-max", Time: at})
	got := r.await(t, 1)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []alertPayload{{
		Text:    "llmgw: account alice-max was put in error: refresh token rejected (invalid_grant). Fix: `llmgw account login --name alice-max`",
		Event:   "account_error",
		Account: "alice-max",
		Reason:  "refresh token rejected (invalid_grant)",
		Fix:     "llmgw account login --name alice-max",
		Time:    "2026-12-07T15:04:05Z",
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("alerts (-want +got):\n%s", diff)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.posts != 3 {
		t.Errorf("posts = %d, want 3 (two failures, then the alert)", r.posts)
	}
}

// A receiver that refuses the alert (a 4xx other than 408 and 429) is not
// asked again.
func TestAlertSender_NoRetryOnRefusal(t *testing.T) {
	t.Parallel()
	r := newAlertReceiver(t)
	r.status = http.StatusNotFound
	s := testSender(t, WebhookConfig{URL: r.URL})
	s.Start()
	s.Notify(llmgw.Event{Kind: llmgw.EventNoAccount, Reason: "every account is in error"})
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.posts != 1 {
		t.Errorf("posts = %d, want 1", r.posts)
	}
}

// Repeats of an episode within the quiet time are dropped; another scope,
// another subject or a recovery start a new one; webhooks get only the
// events they ask for.
func TestAlertSender_RateLimit(t *testing.T) {
	t.Parallel()
	all, some := newAlertReceiver(t), newAlertReceiver(t)
	s := testSender(t, WebhookConfig{URL: all.URL}, WebhookConfig{URL: some.URL, Events: []string{"no_account", "recovered"}})
	now := time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	s.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s.Start()

	s.Notify(llmgw.Event{Kind: llmgw.EventNoAccount, Reason: "1"})
	s.Notify(llmgw.Event{Kind: llmgw.EventNoAccount, Reason: "repeat"})
	s.Notify(llmgw.Event{Kind: llmgw.EventKeyLimit, Key: "bob", Scope: "requests=5/day 80%", Reason: "2"})
	s.Notify(llmgw.Event{Kind: llmgw.EventKeyLimit, Key: "bob", Scope: "requests=5/day 100%", Reason: "3"})
	s.Notify(llmgw.Event{Kind: llmgw.EventKeyLimit, Key: "bob", Scope: "requests=5/day 100%", Reason: "repeat"})
	s.Notify(llmgw.Event{Kind: llmgw.EventKeyLimit, Key: "carol", Scope: "requests=5/day 100%", Reason: "4"})
	s.Notify(llmgw.Event{Kind: llmgw.EventRecovered, Reason: "5"})
	s.Notify(llmgw.Event{Kind: llmgw.EventNoAccount, Reason: "6"}) // a new outage: at once
	advance(5 * time.Minute)
	s.Notify(llmgw.Event{Kind: llmgw.EventNoAccount, Reason: "repeat"})
	advance(5 * time.Minute)
	s.Notify(llmgw.Event{Kind: llmgw.EventNoAccount, Reason: "7"}) // ten minutes on: a reminder
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	reasons := func(ps []alertPayload) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Reason)
		}
		return out
	}
	if diff := cmp.Diff([]string{"1", "2", "3", "4", "5", "6", "7"}, reasons(all.alerts())); diff != "" {
		t.Errorf("alerts to the first webhook (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"1", "5", "6", "7"}, reasons(some.alerts())); diff != "" {
		t.Errorf("alerts to the second webhook (-want +got):\n%s", diff)
	}
}

// A full queue drops its oldest alert, never blocks Notify.
func TestAlertSender_QueueDropsOldest(t *testing.T) {
	t.Parallel()
	s := testSender(t, WebhookConfig{URL: "http://127.0.0.1:1/never-started"})
	// Not started: nothing takes from the queue.
	for i := range alertQueueLen + 3 {
		s.Notify(llmgw.Event{Kind: llmgw.EventKeyLimit, Key: "k", Scope: strconv.Itoa(i)})
	}
	h := s.hooks[0]
	if len(h.queue) != alertQueueLen {
		t.Fatalf("queue holds %d, want %d", len(h.queue), alertQueueLen)
	}
}

func TestMaskURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://hooks.slack.com/services/T0/B0/XXXXXXXX": "https://hooks.slack.com/…",
		"https://user:pw@example.com/":                    "https://example.com",
		"http://127.0.0.1:9000?token=abc":                 "http://127.0.0.1:9000/…",
		"not a url":                                       "(unparseable URL)",
	} {
		if got := maskURL(in); got != want {
			t.Errorf("maskURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConfig_Alerts(t *testing.T) {
	t.Setenv("LLMGW_TEST_HOOK", "https://hooks.example.com/services/secret")
	p := writeFile(t, "llmgw.yaml", `
server:
  trusted_proxies: [10.0.0.0/8, 192.168.1.1, "::1"]
alerts:
  window_threshold: 0.8
  webhooks:
    - url: ${LLMGW_TEST_HOOK}
    - url: http://127.0.0.1:9000/hook
      events: [no_account, recovered]
`)
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	want := AlertsConfig{WindowThreshold: 0.8, Webhooks: []WebhookConfig{
		{URL: "https://hooks.example.com/services/secret"},
		{URL: "http://127.0.0.1:9000/hook", Events: []string{"no_account", "recovered"}},
	}}
	if diff := cmp.Diff(want, cfg.Alerts); diff != "" {
		t.Errorf("alerts (-want +got):\n%s", diff)
	}
	var got []string
	for _, p := range cfg.TrustedProxies() {
		got = append(got, p.String())
	}
	if diff := cmp.Diff([]string{"10.0.0.0/8", "192.168.1.1/32", "::1/128"}, got); diff != "" {
		t.Errorf("trusted proxies (-want +got):\n%s", diff)
	}

	def, err := LoadConfig(writeFile(t, "empty.yaml", "alerts: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if def.Alerts.WindowThreshold != 0.9 {
		t.Errorf("default window_threshold = %v, want 0.9", def.Alerts.WindowThreshold)
	}
}

func TestConfig_AlertsErrors(t *testing.T) {
	for _, tt := range []struct {
		name, yaml string
		want       []string
		notWant    string
	}{
		{"not a URL", "alerts:\n  webhooks:\n    - url: ftp://example.com/secret-path\n",
			[]string{"alerts.webhooks[0].url", "ftp://example.com/…", "http or https"}, "secret-path"},
		{"unknown event", "alerts:\n  webhooks:\n    - url: https://example.com/\n      events: [account_eror]\n",
			[]string{`"account_eror" is not one of account_error`}, ""},
		{"unset variable", "alerts:\n  webhooks:\n    - url: ${LLMGW_TEST_UNSET_HOOK}\n",
			[]string{"alerts.webhooks[0].url", "LLMGW_TEST_UNSET_HOOK is not set"}, ""},
		{"unknown key", "alerts:\n  webhooks:\n    - url: https://example.com/\n      event: [no_account]\n",
			[]string{`unknown key "event"`}, ""},
		{"threshold", "alerts:\n  window_threshold: 90\n", []string{"alerts.window_threshold", "between 0 and 1"}, ""},
		{"trusted proxy", "server:\n  trusted_proxies: [proxy.local]\n", []string{"server.trusted_proxies", `"proxy.local"`}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(writeFile(t, "llmgw.yaml", tt.yaml))
			wantErr(t, err, tt.want...)
			if err != nil && tt.notWant != "" && strings.Contains(err.Error(), tt.notWant) {
				t.Errorf("err = %q shows %q", err, tt.notWant)
			}
		})
	}
}

func TestAlertTest_Command(t *testing.T) {
	t.Parallel()
	ok, bad := newAlertReceiver(t), newAlertReceiver(t)
	bad.status = http.StatusForbidden
	p := writeFile(t, "llmgw.yaml", "alerts:\n  webhooks:\n    - url: "+ok.URL+"/secret-a\n    - url: "+bad.URL+"/secret-b\n")
	out, _, err := run(t, "--config", p, "alert", "test")
	wantErr(t, err, "1 of 2 webhooks failed")
	for _, w := range []string{"webhook 1 " + ok.URL + "/…: 200 OK", "webhook 2 " + bad.URL + "/…: failed", "403 Forbidden"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "secret") {
		t.Errorf("output shows a webhook's path:\n%s", out)
	}
	got := ok.alerts()
	if len(got) != 1 || got[0].Event != "test" || !strings.Contains(got[0].Text, "test alert") {
		t.Errorf("sample alert = %+v", got)
	}

	out, stderr, err := run(t, "alert", "test")
	wantErr(t, err, "no webhooks")
	if !strings.Contains(stderr, "alerts:\n    webhooks:") || out != "" {
		t.Errorf("without webhooks: stdout %q, stderr %q; want the how-to on stderr", out, stderr)
	}
}

// Through "llmgw serve": each event reaches the webhook exactly once per
// episode, with the documented body.
func TestServe_AlertsOncePerEpisode(t *testing.T) {
	r := newAlertReceiver(t)
	up := upstreamtest.NewServer(t)
	db := newDB(t)
	const apiKey = "sk-ant-aaaaaaaaaaaaaaaa"
	mustRun(t, "--db", db, "account", "add", "--name", "team-a", "--api-key", apiKey, "--base-url", up.URL)
	alice := createKey(t, db, "alice")
	out, _ := mustRun(t, "--db", db, "key", "create", "--name", "bob", "--limit", "requests=5/day")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	bob := lines[len(lines)-1]
	config := writeFile(t, "llmgw.yaml", "alerts:\n  webhooks:\n    - url: "+r.URL+"/hook/secret\n")
	srv := startServe(t, db, "--config", config)
	ctx := context.Background()

	// bob reaches 80% with his fourth request and 100% with his fifth; the
	// sixth is refused and alerts nothing more.
	cb := sdk(srv.URL, bob)
	for i := range 6 {
		_, err := cb.Messages.New(ctx, hello())
		if (err != nil) != (i == 5) {
			t.Fatalf("bob's request %d: %v", i+1, err)
		}
	}
	r.await(t, 2)

	// A 401 puts the only account in error; then no account can serve,
	// twice, and one alert says so.
	up.Script(apiKey, upstreamtest.Fail(http.StatusUnauthorized))
	ca := sdk(srv.URL, alice)
	for range 3 {
		if _, err := ca.Messages.New(ctx, hello()); err == nil {
			t.Fatal("served by an account in error")
		}
	}
	r.await(t, 4)

	// Once the account is enabled again, a served request ends the outage.
	mustRun(t, "--db", db, "account", "enable", "team-a")
	if _, err := visibleAfter(time.Now(), func() bool {
		_, err := ca.Messages.New(ctx, hello())
		return err == nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Messages.New(ctx, hello()); err != nil {
		t.Fatal(err)
	}
	if err := srv.stopAndWait(t); err != nil {
		t.Fatal(err)
	}

	got := r.alerts()
	for i := range got {
		if _, err := time.Parse(time.RFC3339, got[i].Time); err != nil {
			t.Errorf("alert %d time %q: %v", i, got[i].Time, err)
		}
		got[i].Time = ""
	}
	fix := `echo "$NEW_KEY" | llmgw account edit team-a --api-key - && llmgw account enable team-a`
	broken := "upstream answered 401 authentication_error: invalid x-api-key"
	want := []alertPayload{
		{Event: "key_limit", Key: "bob", Reason: "key bob has used 80% of its requests limit requests=5/day (4)",
			Text: "llmgw: key bob has used 80% of its requests limit requests=5/day (4)."},
		{Event: "key_limit", Key: "bob",
			Reason: "key bob has used 100% of its requests limit requests=5/day (5): its requests are refused until the window frees",
			Fix:    "llmgw key edit --limit requests=AMOUNT/day bob",
			Text:   "llmgw: key bob has used 100% of its requests limit requests=5/day (5): its requests are refused until the window frees. Fix: `llmgw key edit --limit requests=AMOUNT/day bob`"},
		{Event: "account_error", Account: "team-a", Reason: broken, Fix: fix,
			Text: "llmgw: account team-a was put in error: " + broken + ". Fix: `" + fix + "`"},
		{Event: "no_account", Reason: "no account can serve this request: in error: " + broken + " (team-a)",
			Fix:  "llmgw account list; then mend or enable an account (llmgw account enable NAME)",
			Text: "llmgw: no account can serve requests: no account can serve this request: in error: " + broken + " (team-a). Fix: `llmgw account list; then mend or enable an account (llmgw account enable NAME)`"},
		{Event: "recovered", Reason: "an account serves requests again", Text: "llmgw: recovered: an account serves requests again."},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("alerts (-want +got):\n%s", diff)
	}
}

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy"
)

// AlertsConfig is the alerts section: where events go and when windows
// alert.
type AlertsConfig struct {
	Webhooks []WebhookConfig `yaml:"webhooks"`
	// WindowThreshold is the subscription window utilization (0..1] past
	// which an account's window alerts. Default 0.9.
	WindowThreshold float64 `yaml:"window_threshold"`
}

// WebhookConfig is one receiver of alerts: a URL that takes a JSON POST
// (Slack's incoming webhooks display its text field) and the events it
// wants, all if none are named. "${ENV}" references in the URL are
// expanded, so its secret path can stay out of the file.
type WebhookConfig struct {
	URL    string   `yaml:"url"`
	Events []string `yaml:"events"`
}

// alertKinds are the event names webhooks may ask for.
var alertKinds = []llmgw.EventKind{
	llmgw.EventAccountError, llmgw.EventRefreshFailing, llmgw.EventWindow,
	llmgw.EventKeyLimit, llmgw.EventNoAccount, llmgw.EventRecovered,
}

// eventTest is the kind of the sample event "llmgw alert test" sends.
const eventTest llmgw.EventKind = "test"

// validate expands and checks the webhook URLs and event names, and puts
// the default threshold in place of 0.
func (a *AlertsConfig) validate(lookup func(string) (string, bool)) error {
	switch th := a.WindowThreshold; {
	case th == 0:
		a.WindowThreshold = proxy.DefaultWindowThreshold
	case th < 0 || th > 1:
		return fmt.Errorf("alerts.window_threshold must be a share between 0 and 1 such as 0.9, not %v", th)
	}
	names := make([]string, len(alertKinds))
	for i, k := range alertKinds {
		names[i] = string(k)
	}
	for i := range a.Webhooks {
		w := &a.Webhooks[i]
		u, err := expandEnv(w.URL, lookup)
		if err != nil {
			return fmt.Errorf("alerts.webhooks[%d].url: %w", i, err)
		}
		if !httpURL(u) {
			// The URL may hold a secret: name the entry, show the host at most.
			return fmt.Errorf("alerts.webhooks[%d].url %q must be an http or https URL", i, maskURL(u))
		}
		w.URL = u
		for _, ev := range w.Events {
			if !slices.Contains(names, ev) {
				return fmt.Errorf("alerts.webhooks[%d].events: %q is not one of %s", i, ev, strings.Join(names, ", "))
			}
		}
	}
	return nil
}

// maskURL shows a webhook URL without what may be secret in it: the path,
// query and user info (a Slack webhook's path is its credential).
func maskURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "(unparseable URL)"
	}
	out := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		out += "/…"
	}
	return out
}

// Alert delivery tuning.
const (
	// alertQueueLen bounds each webhook's queue of events to send. Past
	// it the oldest is dropped, with a log line: alerts come in episodes,
	// so a full queue means the receiver is far behind and the newest
	// events say more about now.
	alertQueueLen = 256
	// alertRepeatEvery is the least time between two events of one episode
	// key (kind, subject and scope): repeats within it are dropped.
	alertRepeatEvery = 10 * time.Minute
	// alertRetryFor bounds how long one event is retried.
	alertRetryFor = 5 * time.Minute
	// alertFirstDelay is the wait before the first retry; it doubles up to
	// alertMaxDelay.
	alertFirstDelay = time.Second
	alertMaxDelay   = time.Minute
	// alertPostTimeout bounds one POST.
	alertPostTimeout = 10 * time.Second
)

// alertSender delivers events to the configured webhooks without ever
// making the caller wait: Notify rate-limits and queues; one goroutine per
// webhook posts, retrying with exponential backoff for alertRetryFor. It is
// safe for concurrent use. Close stops it.
type alertSender struct {
	hooks  []*hookWorker
	log    *slog.Logger
	now    func() time.Time
	client *http.Client

	// Tuning, overridden by tests.
	repeatEvery, retryFor, firstDelay, maxDelay time.Duration

	mu   sync.Mutex
	sent map[string]time.Time // episode key → last sent

	stop   chan struct{} // closed by Close: no new retries
	ctx    context.Context
	cancel context.CancelFunc // aborts posts under way, when Close runs out of time
	wg     sync.WaitGroup
	once   sync.Once
}

// hookWorker is one webhook with its queue.
type hookWorker struct {
	url    string
	masked string
	events map[llmgw.EventKind]bool // nil: every event
	queue  chan llmgw.Event
}

// newAlertSender returns a sender for cfg's webhooks, not yet running; nil
// if there are none.
func newAlertSender(cfg AlertsConfig, log *slog.Logger) *alertSender {
	if len(cfg.Webhooks) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &alertSender{
		log: log, now: time.Now,
		// A timeout on the client is right here: an alert is one small
		// request and answer, never a stream.
		client:      &http.Client{Timeout: alertPostTimeout},
		repeatEvery: alertRepeatEvery, retryFor: alertRetryFor, firstDelay: alertFirstDelay, maxDelay: alertMaxDelay,
		sent: map[string]time.Time{}, stop: make(chan struct{}), ctx: ctx, cancel: cancel,
	}
	for _, w := range cfg.Webhooks {
		h := &hookWorker{url: w.URL, masked: maskURL(w.URL), queue: make(chan llmgw.Event, alertQueueLen)}
		if len(w.Events) > 0 {
			h.events = map[llmgw.EventKind]bool{}
			for _, e := range w.Events {
				h.events[llmgw.EventKind(e)] = true
			}
		}
		s.hooks = append(s.hooks, h)
	}
	return s
}

// Start starts one delivery goroutine per webhook.
func (s *alertSender) Start() {
	for _, h := range s.hooks {
		s.wg.Go(func() { s.run(h) })
	}
}

// Notify queues e for every webhook that wants it, unless an event of the
// same episode went out within repeatEvery. It never blocks.
//
// An episode is a kind, a subject (an account, a key or the pool) and a
// scope (a window, a limit and level). An EventRecovered ends every episode
// of its subject, so that the next outage alerts at once.
func (s *alertSender) Notify(e llmgw.Event) {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	if !s.admit(e) {
		s.log.Debug("alert suppressed: repeats an episode already told", "event", string(e.Kind), "subject", e.Subject())
		return
	}
	for _, h := range s.hooks {
		if h.events != nil && !h.events[e.Kind] {
			continue
		}
		s.enqueue(h, e)
	}
}

// admit applies the rate limit.
func (s *alertSender) admit(e llmgw.Event) bool {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	subject := e.Subject()
	if e.Kind == llmgw.EventRecovered {
		for k := range s.sent {
			if strings.HasPrefix(k, subject+"\x00") {
				delete(s.sent, k)
			}
		}
	}
	key := subject + "\x00" + string(e.Kind) + "\x00" + e.Scope
	if last, ok := s.sent[key]; ok && now.Sub(last) < s.repeatEvery {
		return false
	}
	if len(s.sent) >= 4096 {
		// Keep the table small: keys past their quiet time rate-limit
		// nothing.
		for k, t := range s.sent {
			if now.Sub(t) >= s.repeatEvery {
				delete(s.sent, k)
			}
		}
	}
	s.sent[key] = now
	return true
}

// enqueue puts e on h's queue, dropping the oldest event if it is full.
func (s *alertSender) enqueue(h *hookWorker, e llmgw.Event) {
	for {
		select {
		case h.queue <- e:
			return
		default:
		}
		select {
		case old := <-h.queue:
			s.log.Warn("alert queue full: dropped the oldest alert", "webhook", h.masked,
				"event", string(old.Kind), "subject", old.Subject())
		default:
		}
	}
}

// run delivers h's events until Close; then it tries each event still
// queued once, without retries.
func (s *alertSender) run(h *hookWorker) {
	for {
		select {
		case e := <-h.queue:
			s.deliver(h, e)
		case <-s.stop:
			for {
				select {
				case e := <-h.queue:
					s.deliver(h, e)
				default:
					return
				}
			}
		}
	}
}

// deliver posts e to h, retrying failures (a transport error, 408, 429,
// 5xx) with exponential backoff for up to retryFor, and none once Close
// has begun. A failure that retrying cannot mend (another 4xx) or the end
// of the retries is logged.
func (s *alertSender) deliver(h *hookWorker, e llmgw.Event) {
	body := alertBody(e)
	start := s.now()
	delay := s.firstDelay
	for try := 1; ; try++ {
		status, err := post(s.ctx, s.client, h.url, body)
		if err == nil {
			s.log.Debug("alert delivered", "webhook", h.masked, "event", string(e.Kind), "subject", e.Subject(), "tries", try)
			return
		}
		stopping := false
		select {
		case <-s.stop:
			stopping = true
		default:
		}
		if !retryable(status) || stopping || s.now().Add(delay).Sub(start) > s.retryFor {
			s.log.Warn("alert not delivered", "webhook", h.masked, "event", string(e.Kind), "subject", e.Subject(),
				"tries", try, "err", err)
			return
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.stop:
			t.Stop() // one more try, then give up (stopping)
		}
		delay = min(delay*2, s.maxDelay)
	}
}

// retryable reports whether a failed post may succeed later: no answer
// (status 0), 408, 429 or a 5xx.
func retryable(status int) bool {
	return status == 0 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// Close stops taking new retries, tries once each event still queued, and
// waits for that until ctx ends; then it aborts posts under way. Events
// notified after Close are never sent.
func (s *alertSender) Close(ctx context.Context) error {
	s.once.Do(func() { close(s.stop) })
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel()
		<-done // posts end at once now: their context is cancelled
		return fmt.Errorf("alerts still queued: %w", ctx.Err())
	}
}

// alertPayload is the JSON body a webhook gets: text for people (Slack and
// compatible receivers display it), the other fields for scripts. Every
// field is always present; the unknown ones are "".
type alertPayload struct {
	Text    string `json:"text"`
	Event   string `json:"event"`
	Account string `json:"account"`
	Key     string `json:"key"`
	Reason  string `json:"reason"`
	Fix     string `json:"fix"`
	Time    string `json:"time"` // RFC 3339, UTC
}

func alertBody(e llmgw.Event) []byte {
	b, _ := json.Marshal(alertPayload{ // strings only: Marshal cannot fail
		Text: alertText(e), Event: string(e.Kind), Account: e.Account, Key: e.Key,
		Reason: e.Reason, Fix: e.Fix, Time: e.Time.UTC().Format(time.RFC3339),
	})
	return b
}

// alertText is the event as one sentence or two, with the fix.
func alertText(e llmgw.Event) string {
	var b strings.Builder
	b.WriteString("llmgw: ")
	switch e.Kind {
	case llmgw.EventAccountError:
		fmt.Fprintf(&b, "account %s was put in error: %s.", e.Account, e.Reason)
	case llmgw.EventRefreshFailing:
		fmt.Fprintf(&b, "account %s: token refresh keeps failing: %s.", e.Account, e.Reason)
	case llmgw.EventWindow:
		fmt.Fprintf(&b, "account %s: %s.", e.Account, e.Reason)
	case llmgw.EventKeyLimit:
		fmt.Fprintf(&b, "%s.", e.Reason)
	case llmgw.EventNoAccount:
		fmt.Fprintf(&b, "no account can serve requests: %s.", e.Reason)
	case llmgw.EventRecovered:
		if e.Subject() == "pool" {
			fmt.Fprintf(&b, "recovered: %s.", e.Reason)
		} else {
			fmt.Fprintf(&b, "%s recovered: %s.", e.Subject(), e.Reason)
		}
	default:
		fmt.Fprintf(&b, "%s.", e.Reason)
	}
	if e.Fix != "" {
		fmt.Fprintf(&b, " Fix: `%s`", e.Fix)
	}
	return b.String()
}

// post sends one alert body and returns the status; err is set unless the
// receiver answered 2xx. A transport error has status 0.
func post(ctx context.Context, c *http.Client, u string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, alertPostTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "llmgw-alerts")
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text holds the URL, whose path may be secret
		}
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()             // read what we wanted; its Close error tells us nothing
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512)) // a hint for the log line; the rest is not read
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("receiver answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return resp.StatusCode, nil
}

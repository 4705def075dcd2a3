package proxy

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
)

// Kind is what one type of account (API key, Claude Code OAuth, …) brings to
// the proxy: how to shape a request for the upstream and how to read the
// upstream's refusals. The proxy's routing and dialect code never look at an
// account's type; they only call its Kind. Implementations must be safe for
// concurrent use.
type Kind interface {
	// Prepare sets the upstream credentials and any headers or body rules the
	// account needs on req, whose headers already hold what the client sent
	// (minus the client's own credentials). It returns the body to send.
	Prepare(ctx context.Context, a *llmgw.Account, req *http.Request, body []byte) ([]byte, error)
	// Classify reads an upstream error answer: what the request does next
	// and what it means for the account. body is the (bounded) error body;
	// now is the server's clock.
	Classify(a *llmgw.Account, res *http.Response, body []byte, now time.Time) Verdict
}

// Next is what the proxy does with a request after an upstream answer.
type Next int

// The next steps.
const (
	// Deliver hands the answer to the client: a success, or an error about
	// the request itself that no other account would answer differently.
	Deliver Next = iota
	// Retry renews the account's credentials (its Kind must be a Refresher)
	// and sends the request again on the same account, once. The retry is an
	// attempt of its own in the request log.
	Retry
	// TryNext sends the request to the next account.
	TryNext
)

// Effect is what an upstream answer means for the account that gave it,
// whatever the request does next.
type Effect struct {
	// CoolUntil keeps the account out of rotation until then.
	CoolUntil time.Time
	// ModelScoped narrows CoolUntil to requests for the model family of the
	// request that got the answer (a rejected model-scoped window): the
	// account goes on serving other models.
	ModelScoped bool
	// Note, when set, says what the answer means for the account, better
	// than the upstream's own words do; it leads the account's last error.
	Note string
	// Broken, when set, puts the account in status error with this reason
	// until an operator re-enables it. With Retry it applies only if the
	// retry does not help.
	Broken string
	// Transient marks the service's own trouble (5xx, 529): it counts toward
	// a brief cooldown only after several in a row.
	Transient bool
}

// Verdict is a Kind's reading of an upstream error answer.
type Verdict struct {
	Next    Next
	Account Effect
}

// APIKeyKind serves accounts of type api_key.
type APIKeyKind struct{}

// Prepare sets x-api-key.
func (APIKeyKind) Prepare(_ context.Context, a *llmgw.Account, req *http.Request, body []byte) ([]byte, error) {
	req.Header.Set("X-Api-Key", a.APIKey)
	return body, nil
}

// Classify reads an API-key account's error responses.
func (APIKeyKind) Classify(a *llmgw.Account, res *http.Response, body []byte, now time.Time) Verdict {
	return ClassifyCommon(res, body, now)
}

// ClassifyCommon is the reading of upstream errors shared by every kind.
func ClassifyCommon(res *http.Response, body []byte, now time.Time) Verdict {
	detail := anthropic.ParseError(body)
	msg := strings.ToLower(detail.Message)
	describe := func() string {
		s := strconv.Itoa(res.StatusCode)
		if detail.Type != "" {
			s += " " + detail.Type
		}
		if detail.Message != "" {
			s += ": " + detail.Message
		}
		return "upstream answered " + s
	}
	switch code := res.StatusCode; {
	case clientFault(code, detail):
		return Verdict{Next: Deliver}
	case code == http.StatusTooManyRequests && bare429(res.Header):
		return bareVerdict(now)
	case code == http.StatusTooManyRequests:
		return Verdict{Next: TryNext, Account: Effect{CoolUntil: now.Add(rateLimitWait(res.Header, now))}}
	case code == http.StatusUnauthorized:
		return Verdict{Next: TryNext, Account: Effect{Broken: describe()}}
	case code == http.StatusForbidden:
		if accountLevel(msg) {
			return Verdict{Next: TryNext, Account: Effect{Broken: describe()}}
		}
		return Verdict{Next: TryNext, Account: Effect{CoolUntil: now.Add(30 * time.Second)}}
	case code == http.StatusPaymentRequired:
		// billing_error: the account cannot pay. Another may.
		return Verdict{Next: TryNext, Account: Effect{Broken: describe()}}
	case code == http.StatusBadRequest && accountLevel(msg):
		return Verdict{Next: TryNext, Account: Effect{Broken: describe()}}
	case code == http.StatusBadRequest:
		// Any other 400 is about the request (or the client's version):
		// every account would refuse it alike.
		return Verdict{Next: Deliver}
	case code == 529 || code >= 500:
		// 500 api_error, 504 timeout_error, 529 overloaded_error and the
		// like: the service's trouble, which another account may not have.
		return Verdict{Next: TryNext, Account: Effect{Transient: true}}
	case code == http.StatusRequestTimeout:
		return Verdict{Next: TryNext, Account: Effect{Transient: true}}
	}
	// 404, 409 conflict_error, 413 and the rest: about the request. A 409
	// says the request raced another change; Anthropic's and OpenAI's SDKs
	// retry it themselves, so it goes back to the client as it is.
	return Verdict{Next: Deliver}
}

// clientFault reports the upstream errors that are about the client's own
// request or version however the account stands, which every Kind
// delivers untouched before its own rules (so an OAuth account neither
// refreshes nor fails over on them): a 400 whose error.details.error_code
// names the client (claude_code_version_too_old: the client must update,
// and another account would say the same), and the 401 Anthropic gives a
// request that looks like a browser's ("CORS requests are not allowed…"),
// which says nothing about the key or token.
func clientFault(status int, d anthropic.ErrorDetail) bool {
	switch status {
	case http.StatusBadRequest:
		return d.Code() == "claude_code_version_too_old"
	case http.StatusUnauthorized:
		return strings.HasPrefix(strings.TrimSpace(d.Message), "CORS requests are not allowed")
	}
	return false
}

// accountLevel reports whether an error message is about the account (its
// key, organization or balance) rather than the request: such an error would
// fail every request on the account.
func accountLevel(msg string) bool {
	for _, s := range []string{
		"organization has been disabled",
		"oauth authentication is currently not allowed",
		"has been revoked",
		"credit balance",
		"identity verification is required",
		"invalid x-api-key",
		"invalid bearer token",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// defaultRateLimitWait applies to a 429 that names no time to wait.
const defaultRateLimitWait = 30 * time.Second

// rateLimitWait reads how long a 429 asks the account to wait: retry-after-ms,
// retry-after (seconds or an HTTP date), else the latest reset among the
// exhausted rate-limit windows.
func rateLimitWait(h http.Header, now time.Time) time.Duration {
	if d, ok := RetryAfter(h, now); ok {
		return d
	}
	var wait time.Duration
	for name, vals := range h {
		lname := strings.ToLower(name)
		if !strings.HasPrefix(lname, "anthropic-ratelimit-") || !strings.HasSuffix(lname, "-reset") || len(vals) == 0 {
			continue
		}
		base := strings.TrimSuffix(lname, "-reset")
		if rem := h.Get(base + "-remaining"); rem != "" && rem != "0" {
			continue
		}
		var at time.Time
		if secs, err := strconv.ParseInt(vals[0], 10, 64); err == nil {
			at = time.Unix(secs, 0) // the unified headers use epoch seconds
		} else if t, err := time.Parse(time.RFC3339, vals[0]); err == nil {
			at = t
		}
		if d := at.Sub(now); d > wait && d < 8*24*time.Hour {
			wait = d
		}
	}
	if wait > 0 {
		return wait
	}
	return defaultRateLimitWait
}

// RetryAfter reads retry-after-ms or retry-after from h.
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 {
			return time.Duration(ms * float64(time.Millisecond)), true
		}
	}
	if v := h.Get("Retry-After"); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
			return time.Duration(s * float64(time.Second)), true
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(now), 0), true
		}
	}
	return 0, false
}

package proxy

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/llmgw/llmgw/proxy/anthropic"
)

func TestClassifyCommon(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name      string
		status    int
		msg       string
		header    http.Header
		next      Next
		broken    bool
		cooldown  time.Duration
		transient bool
	}{
		{"200", 200, "", nil, Deliver, false, 0, false},
		{"400 request", 400, "max_tokens: field required", nil, Deliver, false, 0, false},
		{"400 org disabled", 400, "This organization has been disabled.", nil, TryNext, true, 0, false},
		{"400 credit", 400, "Your credit balance is too low to access the Anthropic API.", nil, TryNext, true, 0, false},
		{"401", 401, "invalid x-api-key", nil, TryNext, true, 0, false},
		{"401 cors", 401, "CORS requests are not allowed for this Organization because of its settings.", nil, Deliver, false, 0, false},
		{"402 billing", 402, "Your account cannot be billed.", nil, TryNext, true, 0, false},
		{"409 conflict", 409, "conflict", nil, Deliver, false, 0, false},
		{"504 timeout", 504, "Request timed out", nil, TryNext, false, 0, true},
		{"403 other", 403, "not allowed to use this model", nil, TryNext, false, 30 * time.Second, false},
		{"403 org", 403, "OAuth authentication is currently not allowed for this organization", nil, TryNext, true, 0, false},
		{"404", 404, "model: nope", nil, Deliver, false, 0, false},
		{"413", 413, "too large", nil, Deliver, false, 0, false},
		{"429 retry-after", 429, "", http.Header{"Retry-After": {"42"}}, TryNext, false, 42 * time.Second, false},
		{"429 retry-after-ms", 429, "", http.Header{"Retry-After-Ms": {"1500"}}, TryNext, false, 1500 * time.Millisecond, false},
		{"429 reset header", 429, "", http.Header{
			"Anthropic-Ratelimit-Tokens-Remaining":   {"0"},
			"Anthropic-Ratelimit-Tokens-Reset":       {now.Add(90 * time.Second).Format(time.RFC3339)},
			"Anthropic-Ratelimit-Requests-Remaining": {"10"},
			"Anthropic-Ratelimit-Requests-Reset":     {now.Add(time.Hour).Format(time.RFC3339)},
		}, TryNext, false, 90 * time.Second, false},
		{"429 unified reset", 429, "", http.Header{
			"Anthropic-Ratelimit-Unified-Reset": {strconv.FormatInt(now.Add(2*time.Hour).Unix(), 10)},
		}, TryNext, false, 2 * time.Hour, false},
		{"429 bare", 429, "", nil, TryNext, false, defaultRateLimitWait, false},
		{"500", 500, "", nil, TryNext, false, 0, true},
		{"503", 503, "", nil, TryNext, false, 0, true},
		{"529", 529, "Overloaded", nil, TryNext, false, 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = http.Header{}
			}
			res := &http.Response{StatusCode: tt.status, Header: h}
			var body []byte
			if tt.status >= 400 {
				body = anthropic.MarshalError(anthropic.ErrorType(tt.status), tt.msg, "req_1")
			}
			v := ClassifyCommon(res, body, now)
			var cooldown time.Duration
			if !v.Account.CoolUntil.IsZero() {
				cooldown = v.Account.CoolUntil.Sub(now)
			}
			if v.Next != tt.next || (v.Account.Broken != "") != tt.broken || cooldown != tt.cooldown || v.Account.Transient != tt.transient {
				t.Errorf("verdict = %+v, want next %d broken %v cooldown %v transient %v", v, tt.next, tt.broken, tt.cooldown, tt.transient)
			}
		})
	}
}

func TestRetryAfter_HTTPDate(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	h := http.Header{"Retry-After": {now.Add(time.Minute).Format(http.TimeFormat)}}
	if d, ok := RetryAfter(h, now); !ok || d != time.Minute {
		t.Errorf("RetryAfter = %v, %v; want 1m", d, ok)
	}
}

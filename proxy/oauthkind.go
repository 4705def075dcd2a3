package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
)

// TokenSource hands out an OAuth account's current access token and renews
// it. oauth.Manager implements it.
type TokenSource interface {
	// AccessToken returns the account's current access token.
	AccessToken(ctx context.Context, a *llmgw.Account) (string, error)
	// Refresh renews the token after the upstream rejected the token
	// `rejected`. If the token was already renewed meanwhile it returns at
	// once.
	Refresh(ctx context.Context, a *llmgw.Account, rejected string) error
}

// OAuthBeta is the beta flag every OAuth request must carry.
const OAuthBeta = "oauth-2025-04-20"

// ClaudeCodeIdentity is the system block OAuth traffic begins with.
const ClaudeCodeIdentity = "You are Claude Code, Anthropic's official CLI for Claude."

// identityPrefixes are the first-party system texts that count as the
// identity being present already: Claude Code's own, and those of Anthropic's
// Agent SDK, which Anthropic accepts on the same tokens.
var identityPrefixes = []string{
	ClaudeCodeIdentity,
	"You are Claude Code, Anthropic's official CLI for Claude, running within the Claude Agent SDK.",
	"You are a Claude agent, built on Anthropic's Claude Agent SDK.",
}

// OAuthKind serves accounts of type oauth (Claude Code subscriptions): bearer
// token, the OAuth beta flag, and the Claude Code identity as the first
// system block.
type OAuthKind struct {
	Tokens TokenSource
}

var _ Refresher = OAuthKind{}

// Prepare sets the bearer token and beta flag and, on Messages requests, puts
// the identity block in front of the system prompt.
func (k OAuthKind) Prepare(ctx context.Context, a *llmgw.Account, req *http.Request, body []byte) ([]byte, error) {
	tok, err := k.Tokens.AccessToken(ctx, a)
	if err != nil {
		return nil, fmt.Errorf("access token of account %s: %w", a.Name, err)
	}
	req.Header.Del("X-Api-Key")
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Anthropic-Beta", MergeBetas(OAuthBeta, req.Header.Values("Anthropic-Beta")...))
	if req.URL.Path == "/v1/messages" || strings.HasSuffix(req.URL.Path, "/v1/messages") {
		return InjectIdentity(body)
	}
	return body, nil
}

// Refresh renews the token that req carried.
func (k OAuthKind) Refresh(ctx context.Context, a *llmgw.Account, sent http.Header) error {
	rejected := strings.TrimPrefix(sent.Get("Authorization"), "Bearer ")
	return k.Tokens.Refresh(ctx, a, rejected)
}

// Classify reads an OAuth account's error responses: an expired or invalid
// token means refresh; a revoked token or an
// organization that is barred or disabled breaks the account; a 429 cools it
// until the reset when the 5-hour or 7-day window (or the overall status,
// with no model-scoped window rejected) says it is exhausted, cools it for
// the request's model family only when a model-scoped window (7d_oi,
// 7d-sonnet, …) is, and cools it briefly when it carries no rate-limit
// information at all.
func (OAuthKind) Classify(a *llmgw.Account, res *http.Response, body []byte, now time.Time) Verdict {
	detail := anthropic.ParseError(body)
	msg := strings.ToLower(detail.Message)
	reason := fmt.Sprintf("upstream answered %d %s: %s", res.StatusCode, detail.Type, detail.Message)
	switch code := res.StatusCode; {
	case clientFault(code, detail):
		return Verdict{Next: Deliver}
	case strings.Contains(msg, "revoked"),
		strings.Contains(msg, "not allowed for this organization"),
		strings.Contains(msg, "organization has been disabled"):
		return Verdict{Next: TryNext, Account: Effect{Broken: reason + `: run "llmgw account login --name ` + a.Name + `"` + " once the account is usable again"}}
	case code == http.StatusUnauthorized && strings.Contains(msg, "oauth authentication is currently not supported"):
		// The beta flag was missing: our fault, not the account's.
		return Verdict{Next: TryNext}
	case code == http.StatusUnauthorized:
		// Expired or invalid: refresh once and retry; if that does not help,
		// the account is broken.
		return Verdict{Next: Retry, Account: Effect{Broken: reason}}
	case code == http.StatusBadRequest && strings.Contains(msg, "only authorized for use with claude code"):
		// Judged not to come from Claude Code: another account (an API key)
		// may serve it; the account itself is fine.
		return Verdict{Next: TryNext}
	case code == http.StatusTooManyRequests:
		if until, ok := windowReset(res.Header, now); ok {
			return Verdict{Next: TryNext, Account: Effect{CoolUntil: later(until, now.Add(time.Second))}}
		}
		if until, ok := scopedReset(res.Header, now); ok {
			return Verdict{Next: TryNext, Account: Effect{CoolUntil: until, ModelScoped: true}}
		}
		if bare429(res.Header) {
			return bareVerdict(now)
		}
		// Windows that are not exhausted: fast-mode credits, a request-scoped
		// refusal. Try elsewhere for this request only.
		return Verdict{Next: TryNext}
	}
	return ClassifyCommon(res, body, now)
}

// later returns the later of two times.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// windowReset returns the reset time of a rejected 5-hour or 7-day window,
// or of the overall status when it is rejected and no model-scoped window
// is: the rejections that bind the whole account.
func windowReset(h http.Header, now time.Time) (time.Time, bool) {
	ws := ParseWindows(h, "", now)
	var until time.Time
	for _, w := range []llmgw.Window{ws.FiveHour, ws.SevenDay} {
		if w.Status == "rejected" && w.ResetsAt.After(until) {
			until = w.ResetsAt
		}
	}
	if until.IsZero() && ws.Status == "rejected" && !scopedRejected(ws) {
		if secs := h.Get("Anthropic-Ratelimit-Unified-Reset"); secs != "" {
			if t, ok := parseEpoch(secs); ok {
				until = t
			}
		}
	}
	return until, !until.IsZero()
}

// MergeBetas returns first followed by the client's beta flags (each value
// may be a comma list), without duplicates, in order.
func MergeBetas(first string, client ...string) string {
	seen := map[string]bool{first: true}
	out := []string{first}
	for _, v := range client {
		for _, f := range strings.Split(v, ",") {
			f = strings.TrimSpace(f)
			if f != "" && !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	return strings.Join(out, ",")
}

// InjectIdentity makes the request's system prompt begin with the Claude
// Code identity block: a missing system becomes [identity], a string becomes
// [identity, original], an array gets the identity in front, unless one of
// its text blocks already starts with a first-party identity. Every other
// byte of the body is kept as it was; cache_control marks stay where they
// were and none is added.
func InjectIdentity(body []byte) ([]byte, error) {
	start, end, found, err := topLevelValue(body, "system")
	if err != nil {
		return nil, err
	}
	identity := `{"type":"text","text":` + mustJSONString(ClaudeCodeIdentity) + `}`
	if !found {
		open := bytes.IndexByte(body, '{')
		rest := bytes.TrimSpace(body[open+1:])
		sep := ","
		if len(rest) > 0 && rest[0] == '}' {
			sep = ""
		}
		return splice(body, open+1, open+1, `"system":[`+identity+`]`+sep), nil
	}
	value := bytes.TrimSpace(body[start:end])
	switch {
	case len(value) > 0 && value[0] == '"':
		var s string
		if json.Unmarshal(value, &s) != nil {
			return nil, errors.New("system: not a valid string")
		}
		if hasIdentity(s) {
			return body, nil
		}
		return splice(body, start, end, `[`+identity+`,{"type":"text","text":`+string(value)+`}]`), nil
	case len(value) > 0 && value[0] == '[':
		var blocks []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if json.Unmarshal(value, &blocks) != nil {
			return body, nil // the upstream will say what is wrong with it
		}
		for _, b := range blocks {
			if b.Type == "text" && hasIdentity(b.Text) {
				return body, nil
			}
		}
		open := start + bytes.IndexByte(body[start:end], '[')
		sep := ","
		if len(blocks) == 0 {
			sep = ""
		}
		return splice(body, open+1, open+1, identity+sep), nil
	case string(value) == "null":
		return splice(body, start, end, `[`+identity+`]`), nil
	}
	return body, nil
}

func hasIdentity(s string) bool {
	for _, p := range identityPrefixes {
		if strings.HasPrefix(strings.TrimSpace(s), p) {
			return true
		}
	}
	return false
}

func splice(b []byte, from, to int, insert string) []byte {
	out := make([]byte, 0, len(b)+len(insert))
	out = append(out, b[:from]...)
	out = append(out, insert...)
	return append(out, b[to:]...)
}

func mustJSONString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// topLevelValue finds the byte span of a top-level key's value in a JSON
// object without decoding anything else.
func topLevelValue(body []byte, key string) (start, end int, found bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return 0, 0, false, errors.New("request body is not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return 0, 0, false, fmt.Errorf("read request body: %w", err)
		}
		name, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return 0, 0, false, fmt.Errorf("read request body: %w", err)
		}
		if name == key {
			end := int(dec.InputOffset())
			return end - len(raw), end, true, nil
		}
	}
	return 0, 0, false, nil
}

// Package oauth keeps Claude Code OAuth accounts' tokens: the login (PKCE
// through golang.org/x/oauth2, a small JSON token client for the exchange and
// the refresh), and a Manager that holds every account's access token in
// memory and refreshes it ahead of expiry.
//
// Refresh tokens rotate: each one works once. So a refresh happens at most
// once per account at a time, whoever asks for it and in whichever process:
// single flight inside a process, and across processes a lease taken in a
// short write transaction plus a compare-and-swap on the token generation
// (see TokenStore). The new pair is stored before it is used, a stored pair
// is never replaced by an older one, and a response without a new refresh
// token keeps the old one.
//
// The package imports the domain package and the standard library only (plus
// x/oauth2 and x/sync); the database sits behind TokenStore.
package oauth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/llmgw/llmgw"

	"golang.org/x/oauth2"
)

// The values Claude Code itself uses for its login. Private deployments and
// tests override them through Config.
const (
	DefaultAuthorizeURL = "https://claude.ai/oauth/authorize"
	DefaultTokenURL     = "https://platform.claude.com/v1/oauth/token"
	DefaultClientID     = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
	// DefaultRedirectURI is the manual-paste page: it shows CODE#STATE for
	// the user to copy.
	DefaultRedirectURI = "https://platform.claude.com/oauth/code/callback"
)

// DefaultScopes are the scopes a login asks for: what Claude Code asks for,
// without org:create_api_key, which llmgw does not use and which the server
// drops for subscription logins anyway.
func DefaultScopes() []string {
	return []string{"user:profile", "user:inference", "user:sessions:claude_code", "user:mcp_servers", "user:file_upload"}
}

// LoopbackRedirectURI is the redirect URI of a login that listens on
// 127.0.0.1:port. It must say localhost: the authorize server accepts only
// that registered form.
func LoopbackRedirectURI(port int) string {
	return "http://localhost:" + strconv.Itoa(port) + "/callback"
}

// Config says where the authorization and token endpoints are and how the
// Manager refreshes. A Config is a value; copies are independent except for
// HTTPClient and Logger, which are shared.
type Config struct {
	AuthorizeURL string
	TokenURL     string
	ClientID     string
	RedirectURI  string
	Scopes       []string
	// RefreshLead is how long before expiry the Manager refreshes a token.
	// 0 means the smaller of 30 minutes and half the token's lifetime.
	RefreshLead time.Duration
	// HTTPClient makes the token requests. nil means a private client with
	// a 30 s timeout; never http.DefaultClient.
	HTTPClient *http.Client
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger receives the Manager's refresh events; nil means
	// slog.Default(). Tokens are never logged.
	Logger *slog.Logger
	// Notify, if set, hears of a Manager's accounts whose refresh token is
	// dead (llmgw.EventAccountError), whose refreshes keep failing
	// (llmgw.EventRefreshFailing: failingRefreshes in a row, or failing
	// for failingFor) and, after that, refresh again (llmgw.EventRecovered).
	// It must not block.
	Notify func(llmgw.Event)
	// OnRefresh, if set, is told the outcome of each refresh of an
	// account's token: "ok", "failed" (retried with backoff) or
	// "login_required". A refresh cut short by shutdown is not reported.
	// It must not block: the Manager holds its lock while calling it.
	OnRefresh func(account, outcome string)
}

// DefaultConfig returns the real Claude Code endpoints, client id, scopes and
// manual redirect URI.
func DefaultConfig() Config {
	return Config{
		AuthorizeURL: DefaultAuthorizeURL,
		TokenURL:     DefaultTokenURL,
		ClientID:     DefaultClientID,
		RedirectURI:  DefaultRedirectURI,
		Scopes:       DefaultScopes(),
	}
}

func (c *Config) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

func (c *Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.Default().With("component", "oauth")
	}
	return c.Logger
}

// tokenTimeout bounds one token request.
const tokenTimeout = 30 * time.Second

func (c *Config) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	// Token requests are small request/response exchanges, not streams, so
	// a whole-request timeout is right here.
	return &http.Client{Timeout: tokenTimeout, Transport: http.DefaultTransport.(*http.Transport).Clone()}
}

// Grant is what the token endpoint answers to a code exchange or a refresh.
type Grant struct {
	// Token holds the access token, the token type, the refresh token
	// (empty when a refresh did not rotate it) and the absolute expiry
	// (zero if the server gave no expires_in).
	Token oauth2.Token
	// Scopes are the scopes granted.
	Scopes []string
	// Email, AccountUUID and OrganizationUUID identify the subscriber.
	Email            string
	AccountUUID      string
	OrganizationUUID string
}

// ErrInvalidGrant matches a token endpoint's invalid_grant answer: the
// authorization code or refresh token is dead (used, rotated away or
// revoked).
var ErrInvalidGrant = errors.New("refresh token rejected (invalid_grant)")

// ErrLoginRequired matches a LoginRequiredError.
var ErrLoginRequired = llmgw.ErrLoginRequired

// ErrStateMismatch means a pasted code or a callback belongs to another
// login attempt.
var ErrStateMismatch = errors.New("state does not match this login")

// TokenError is an error answer from the token endpoint. Its message never
// holds a token.
type TokenError struct {
	Status      int    // HTTP status
	Code        string // OAuth "error", such as invalid_grant; empty if the body had none
	Description string // OAuth "error_description" or the API error message, shortened
	// RetryAfter is what retry-after-ms or retry-after asked for; 0 if
	// neither was sent.
	RetryAfter time.Duration
}

func (e *TokenError) Error() string {
	var b strings.Builder
	b.WriteString("token endpoint answered ")
	b.WriteString(strconv.Itoa(e.Status))
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Description != "" {
		b.WriteString(": " + e.Description)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalidGrant) true for an invalid_grant answer.
func (e *TokenError) Is(target error) bool {
	return target == ErrInvalidGrant && e.Code == "invalid_grant"
}

// Temporary reports whether trying again later may work: 408, 429 and 5xx.
func (e *TokenError) Temporary() bool {
	return e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// LoginRequiredError says an account's refresh token no longer works (or it
// has none), so only a new login helps. The account has been put in status
// error with Reason, which names the command to run.
type LoginRequiredError struct {
	AccountID int64
	Reason    string
	Err       error // the token endpoint's answer; nil if there was no refresh token
}

func (e *LoginRequiredError) Error() string { return e.Reason }

// Unwrap returns the token endpoint's error.
func (e *LoginRequiredError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrLoginRequired) true.
func (e *LoginRequiredError) Is(target error) bool { return target == ErrLoginRequired }

// loginReason is the status reason of an account whose refresh failed for
// good.
func loginReason(name, why string) string {
	return fmt.Sprintf("%s: run \"llmgw account login --name %s\"", why, name)
}

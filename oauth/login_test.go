package oauth_test

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/llmgw/llmgw/oauth"
	"github.com/llmgw/llmgw/oauth/oauthtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.UnixMilli(1_750_000_000_000)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

var quiet = slog.New(slog.DiscardHandler)

func TestDefaultConfig(t *testing.T) {
	t.Parallel()
	c := oauth.DefaultConfig()
	got := []string{c.AuthorizeURL, c.TokenURL, c.ClientID, c.RedirectURI, strings.Join(c.Scopes, " ")}
	want := []string{
		"https://claude.ai/oauth/authorize",
		"https://platform.claude.com/v1/oauth/token",
		"9d1c250a-e61b-44d9-88ed-5944d1962f5e",
		"https://platform.claude.com/oauth/code/callback",
		"user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload",
	}
	if !slices.Equal(got, want) {
		t.Errorf("DefaultConfig = %q, want %q", got, want)
	}
	if got := oauth.LoopbackRedirectURI(54545); got != "http://localhost:54545/callback" {
		t.Errorf("LoopbackRedirectURI = %q", got)
	}
}

func TestLogin_AuthorizeURLAndExchange(t *testing.T) {
	t.Parallel()
	s := oauthtest.NewServer(t)
	cfg := s.Config()
	cfg.Logger = quiet
	l, err := oauth.NewLogin(cfg)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(l.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for k, want := range map[string]string{
		"code": "true", "response_type": "code", "client_id": oauthtest.ClientID,
		"redirect_uri": cfg.RedirectURI, "scope": strings.Join(cfg.Scopes, " "),
		"code_challenge_method": "S256", "state": l.State,
	} {
		if got := q.Get(k); got != want {
			t.Errorf("authorize URL %s = %q, want %q", k, got, want)
		}
	}
	if len(q.Get("code_challenge")) != 43 || len(l.State) < 32 {
		t.Errorf("challenge %q / state %q too short", q.Get("code_challenge"), l.State)
	}
	if strings.ContainsAny(l.URL, " \n") {
		t.Errorf("URL %q has spaces or newlines", l.URL)
	}

	code, state := s.Authorize(t, l.URL)
	got, err := l.ParseCode(code + "#" + state)
	if err != nil || got != code {
		t.Fatalf("ParseCode = %q, %v; want %q", got, err, code)
	}
	g, err := l.Exchange(context.Background(), got)
	if err != nil {
		t.Fatal(err)
	}
	if !s.AccessTokenValid(g.Token.AccessToken) || !s.RefreshTokenValid(g.Token.RefreshToken) {
		t.Error("exchange returned tokens the server does not know")
	}
	if g.Email != oauthtest.Email || g.AccountUUID != oauthtest.AccountUUID || g.OrganizationUUID != oauthtest.OrganizationUUID {
		t.Errorf("identity = %q %q %q", g.Email, g.AccountUUID, g.OrganizationUUID)
	}
	if g.Token.TokenType != "Bearer" || g.Token.Expiry.IsZero() || time.Until(g.Token.Expiry) > time.Hour {
		t.Errorf("token type %q expiry %v, want Bearer within the hour", g.Token.TokenType, g.Token.Expiry)
	}
	if !slices.Equal(g.Scopes, cfg.Scopes) {
		t.Errorf("scopes = %q, want %q", g.Scopes, cfg.Scopes)
	}
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].ContentType != "application/json" {
		t.Fatalf("token requests = %+v, want one JSON request", reqs)
	}
	for _, k := range []string{"grant_type", "code", "redirect_uri", "client_id", "code_verifier", "state"} {
		if reqs[0].Fields[k] == "" {
			t.Errorf("exchange request lacks %s", k)
		}
	}

	// A code works once.
	if _, err := l.Exchange(context.Background(), got); !errors.Is(err, oauth.ErrInvalidGrant) {
		t.Errorf("second exchange: err = %v, want invalid_grant", err)
	}
}

func TestLogin_VerifierMustMatchChallenge(t *testing.T) {
	t.Parallel()
	s := oauthtest.NewServer(t)
	l1, err := oauth.NewLogin(s.Config())
	if err != nil {
		t.Fatal(err)
	}
	l2, err := oauth.NewLogin(s.Config())
	if err != nil {
		t.Fatal(err)
	}
	code, _ := s.Authorize(t, l1.URL)
	// l2 has another verifier (and state): the server must refuse it.
	if _, err := l2.Exchange(context.Background(), code); !errors.Is(err, oauth.ErrInvalidGrant) {
		t.Errorf("exchange with the wrong verifier: err = %v, want invalid_grant", err)
	}
}

func TestLogin_ParseCode(t *testing.T) {
	t.Parallel()
	l, err := oauth.NewLogin(oauth.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	st := l.State
	tests := []struct {
		name, in, want, err string
	}{
		{"code#state", "abc123#" + st, "abc123", ""},
		{"code#state with spaces", "  abc123#" + st + "\r\n", "abc123", ""},
		{"full callback URL", "http://localhost:5555/callback?code=abc123&state=" + st, "abc123", ""},
		{"path and query", "/callback?code=abc123&state=" + st, "abc123", ""},
		{"manual page URL", "https://platform.claude.com/oauth/code/callback?code=abc123&state=" + st, "abc123", ""},
		{"bare code", "abc123", "abc123", ""},
		{"wrong state", "abc123#someone-elses-state", "", "state does not match"},
		{"wrong state in URL", "http://localhost:5555/callback?code=abc123&state=nope", "", "state does not match"},
		{"user refused", "http://localhost:5555/callback?error=access_denied&error_description=no+thanks", "", "authorization refused: access_denied: no thanks"},
		{"empty", "  ", "", "no code"},
		{"only a state", "#" + st, "", "no code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := l.ParseCode(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("ParseCode(%q) = %q, %v; want error %q", tt.in, got, err, tt.err)
				}
				if strings.Contains(tt.err, "state") && !errors.Is(err, oauth.ErrStateMismatch) {
					t.Errorf("err = %v, want ErrStateMismatch", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseCode(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestClient_FormFallback(t *testing.T) {
	t.Parallel()
	s := oauthtest.NewServer(t)
	s.RequireForm(true)
	cfg := s.Config()
	cfg.Logger = quiet
	l, err := oauth.NewLogin(cfg)
	if err != nil {
		t.Fatal(err)
	}
	code, _ := s.Authorize(t, l.URL)
	g, err := l.Exchange(context.Background(), code)
	if err != nil {
		t.Fatalf("exchange with a form-only server: %v", err)
	}
	if g.Token.AccessToken == "" {
		t.Error("no access token")
	}
	var types []string
	for _, r := range s.Requests() {
		types = append(types, r.ContentType)
	}
	want := []string{"application/json", "application/x-www-form-urlencoded"}
	if !slices.Equal(types, want) {
		t.Errorf("request content types = %q, want %q", types, want)
	}
}

func TestClient_TokenErrors(t *testing.T) {
	t.Parallel()
	s := oauthtest.NewServer(t)
	s.Script(
		oauthtest.Reply{Status: 429, RetryAfter: 42 * time.Second, Body: `{"type":"error","error":{"type":"rate_limit_error","message":"Rate limited. Please try again later."}}`},
		oauthtest.Reply{Status: 503},
	)
	l, err := oauth.NewLogin(s.Config())
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Exchange(context.Background(), "x")
	var te *oauth.TokenError
	if !errors.As(err, &te) || te.Status != 429 || te.RetryAfter != 42*time.Second || !te.Temporary() || te.Code != "rate_limit_error" {
		t.Errorf("429: err = %#v", err)
	}
	_, err = l.Exchange(context.Background(), "x")
	if !errors.As(err, &te) || te.Status != 503 || !te.Temporary() || errors.Is(err, oauth.ErrInvalidGrant) {
		t.Errorf("503: err = %v", err)
	}
	_, err = l.Exchange(context.Background(), "x")
	if !errors.As(err, &te) || te.Temporary() || !errors.Is(err, oauth.ErrInvalidGrant) {
		t.Errorf("unknown code: err = %v, want invalid_grant", err)
	}
}

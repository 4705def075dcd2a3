package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmgw/llmgw/oauth/oauthtest"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// oauthSetup is a fake token endpoint, a fake upstream that accepts only
// the access tokens the token endpoint considers valid, and a config file
// aiming llmgw at both.
type oauthSetup struct {
	tokens *oauthtest.Server
	up     *upstreamtest.Server
	config string
	db     string
}

func newOAuthSetup(t *testing.T) *oauthSetup {
	t.Helper()
	o := oauthtest.NewServer(t)
	up := upstreamtest.NewServer(t, upstreamtest.Reply(func(r *upstreamtest.Request) upstreamtest.Response {
		if !o.AccessTokenValid(r.Key) {
			return upstreamtest.Response{Error: &upstreamtest.Error{Status: 401, Type: "authentication_error",
				Message: "OAuth token has expired. Please obtain a new token or refresh your existing token."}}
		}
		return upstreamtest.Response{}
	}))
	cfg := o.Config()
	config := writeFile(t, "llmgw.yaml", fmt.Sprintf("oauth:\n  authorize_url: %s\n  token_url: %s\n  client_id: %s\n  redirect_uri: %s\n",
		cfg.AuthorizeURL, cfg.TokenURL, cfg.ClientID, cfg.RedirectURI))
	return &oauthSetup{tokens: o, up: up, config: config, db: newDB(t)}
}

// importAccount stores an OAuth account with the given pair and expiry.
func (s *oauthSetup) importAccount(t *testing.T, name, access, refresh string, expires time.Time) {
	t.Helper()
	file := writeFile(t, name+".yaml", fmt.Sprintf("accounts:\n  - name: %s\n    type: oauth\n    access_token: %s\n    refresh_token: %s\n    expires_at: %s\n    base_url: %s\n",
		name, access, refresh, expires.UTC().Format(time.RFC3339), s.up.URL))
	mustRun(t, "--db", s.db, "--config", s.config, "account", "import", file)
}

func (s *oauthSetup) storedTokens(t *testing.T, name string) (access, refresh string) {
	t.Helper()
	db, err := openStore(context.Background(), s.db)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	}()
	a, err := db.GetAccount(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return a.AccessToken, a.RefreshToken
}

func TestServe_OAuthExpiredTokenUnderLoad(t *testing.T) {
	s := newOAuthSetup(t)
	access, refresh, _ := s.tokens.Mint()
	s.tokens.ExpireAccessTokens()
	s.importAccount(t, "alice-max", access, refresh, time.Now().Add(-time.Hour))
	key := createKey(t, s.db, "alice")
	srv := startServe(t, s.db, "--config", s.config)

	const n = 200
	concurrently(t, n, func(int) error {
		_, err := sdk(srv.URL, key).Messages.New(context.Background(), hello())
		return err
	})
	if got := s.tokens.RefreshCalls(); got != 1 {
		t.Errorf("token endpoint got %d refreshes, want exactly 1", got)
	}
	if got := s.tokens.InvalidGrants(); got != 0 {
		t.Errorf("%d invalid_grant answers", got)
	}

	// The upstream saw Claude Code's shape.
	r := s.up.Requests()[0]
	var body struct{ System []struct{ Text string } }
	if err := json.Unmarshal(r.Body, &body); err != nil || len(body.System) == 0 ||
		body.System[0].Text != "You are Claude Code, Anthropic's official CLI for Claude." {
		t.Errorf("system = %+v (%v), want the identity block first", body.System, err)
	}
	if !strings.Contains(r.Header.Get("anthropic-beta"), "oauth-2025-04-20") || r.Header.Get("x-api-key") != "" {
		t.Errorf("headers: beta %q, x-api-key %q", r.Header.Get("anthropic-beta"), r.Header.Get("x-api-key"))
	}

	// The rotated pair is in the database, so a restart uses it without
	// refreshing again.
	if err := srv.stopAndWait(t); err != nil {
		t.Fatal(err)
	}
	newAccess, newRefresh := s.storedTokens(t, "alice-max")
	if newAccess == access || newRefresh == refresh || !s.tokens.RefreshTokenValid(newRefresh) {
		t.Fatalf("database still holds the old pair, or an unusable refresh token")
	}
	srv = startServe(t, s.db, "--config", s.config)
	before := s.up.Count()
	if _, err := sdk(srv.URL, key).Messages.New(context.Background(), hello()); err != nil {
		t.Fatal(err)
	}
	if got := s.up.Requests()[before].Key; got != newAccess {
		t.Errorf("after restart the upstream got another token than the stored one")
	}
	if got := s.tokens.RefreshCalls(); got != 1 {
		t.Errorf("refreshes after restart = %d, want still 1", got)
	}
	out, _ := mustRun(t, "--db", s.db, "account", "list")
	if !strings.Contains(out, "alice-max") || !strings.Contains(out, "EXPIRES IN") {
		t.Errorf("account list lacks the OAuth details:\n%s", out)
	}
}

func TestServe_OAuthCLIRefreshDuringLoad(t *testing.T) {
	s := newOAuthSetup(t)
	access, refresh, _ := s.tokens.Mint()
	s.importAccount(t, "alice-max", access, refresh, time.Now().Add(time.Hour))
	key := createKey(t, s.db, "alice")
	srv := startServe(t, s.db, "--config", s.config)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	requests := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := sdk(srv.URL, key)
			for ctx.Err() == nil {
				_, err := c.Messages.New(context.Background(), hello())
				mu.Lock()
				requests++
				if err != nil {
					failures = append(failures, err)
				}
				mu.Unlock()
			}
		}()
	}
	for range 3 {
		mustRun(t, "--db", s.db, "--config", s.config, "account", "refresh", "alice-max")
	}
	cancel()
	wg.Wait()
	for _, err := range failures {
		t.Errorf("request failed during CLI refreshes: %v", err)
	}
	if requests == 0 {
		t.Fatal("no requests ran")
	}
	if got := s.tokens.InvalidGrants(); got != 0 {
		t.Errorf("%d invalid_grant answers: a refresh token was reused", got)
	}
	_, stored := s.storedTokens(t, "alice-max")
	if !s.tokens.RefreshTokenValid(stored) {
		t.Error("the stored refresh token no longer works: a rotated token was lost")
	}
	if got := s.tokens.RefreshCalls(); got != 3 {
		t.Errorf("refreshes = %d, want the 3 the CLI asked for", got)
	}
	// The server moved to the newest access token.
	newAccess, _ := s.storedTokens(t, "alice-max")
	if err := eventually(func() bool {
		before := s.up.Count()
		if _, err := sdk(srv.URL, key).Messages.New(context.Background(), hello()); err != nil {
			return false
		}
		return s.up.Requests()[before].Key == newAccess
	}); err != nil {
		t.Error("the server never used the token the CLI stored")
	}
}

// TestServe_OAuthTokenInvalidatedEarly: the token's expiry says it is valid,
// but the upstream answers 401. Every request that sees the 401 asks for a
// refresh; one reaches the token endpoint and all are retried.
func TestServe_OAuthTokenInvalidatedEarly(t *testing.T) {
	s := newOAuthSetup(t)
	access, refresh, _ := s.tokens.Mint()
	s.importAccount(t, "alice-max", access, refresh, time.Now().Add(time.Hour))
	s.tokens.ExpireAccessTokens()
	key := createKey(t, s.db, "alice")
	srv := startServe(t, s.db, "--config", s.config)
	const n = 50
	concurrently(t, n, func(int) error {
		_, err := sdk(srv.URL, key).Messages.New(context.Background(), hello())
		return err
	})
	if got := s.tokens.RefreshCalls(); got != 1 {
		t.Errorf("token endpoint got %d refreshes, want exactly 1", got)
	}
}

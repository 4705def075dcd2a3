package oauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// Login is one interactive authorization with PKCE (S256) and a random
// state. Show URL to the user, take back what the browser shows (or what the
// loopback callback receives) with ParseCode, then call Exchange. A Login is
// used by one goroutine at a time.
type Login struct {
	// URL is the authorize URL to open: code=true, response_type=code, the
	// client id, the redirect URI, the scopes, code_challenge,
	// code_challenge_method=S256 and the state.
	URL string
	// State is the random state the URL carries.
	State string
	// RedirectURI is the one the URL names; the exchange repeats it.
	RedirectURI string

	verifier string
	client   *tokenClient
}

// NewLogin starts a login with cfg's endpoints, client id, scopes and
// redirect URI.
func NewLogin(cfg Config) (*Login, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("random state: %w", err)
	}
	l := &Login{
		State:       base64.RawURLEncoding.EncodeToString(b),
		RedirectURI: cfg.RedirectURI,
		verifier:    oauth2.GenerateVerifier(),
		client:      newTokenClient(cfg),
	}
	oc := oauth2.Config{
		ClientID:    cfg.ClientID,
		Endpoint:    oauth2.Endpoint{AuthURL: cfg.AuthorizeURL, TokenURL: cfg.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: cfg.RedirectURI,
		Scopes:      cfg.Scopes,
	}
	// code=true makes the manual callback page show a code to copy; Claude
	// Code sends it with a loopback redirect too.
	l.URL = oc.AuthCodeURL(l.State, oauth2.SetAuthURLParam("code", "true"), oauth2.S256ChallengeOption(l.verifier))
	return l, nil
}

// ParseCode reads what the user pasted, or a callback URL, and returns the
// authorization code. It accepts the CODE#STATE string the manual callback
// page shows, a full callback URL (or just its path and query) with code and
// state parameters, and a bare code. A state that is present and differs
// from l.State is refused with an error wrapping ErrStateMismatch; a
// callback carrying an OAuth error (the user said no) is refused with it.
func (l *Login) ParseCode(input string) (string, error) {
	s := strings.TrimSpace(input)
	var code, state string
	switch {
	case s == "":
		return "", errors.New("no code given")
	case strings.Contains(s, "code=") || strings.Contains(s, "error="):
		u, err := url.Parse(s)
		if err != nil {
			return "", fmt.Errorf("callback URL: %w", err)
		}
		q := u.Query()
		if e := q.Get("error"); e != "" {
			if d := q.Get("error_description"); d != "" {
				e += ": " + shorten(d, 200)
			}
			return "", fmt.Errorf("authorization refused: %s", e)
		}
		code, state = q.Get("code"), q.Get("state")
		if state == "" {
			state = u.Fragment
		}
	case strings.Contains(s, "#"):
		code, state, _ = strings.Cut(s, "#")
	default:
		code = s
	}
	code = strings.TrimSpace(code)
	if code == "" {
		return "", errors.New("no code found in the input")
	}
	if state != "" && state != l.State {
		return "", fmt.Errorf("%w: the code comes from another login attempt; start again", ErrStateMismatch)
	}
	return code, nil
}

// Exchange trades the authorization code for tokens at the token endpoint.
// The grant's Token.Expiry is absolute.
func (l *Login) Exchange(ctx context.Context, code string) (*Grant, error) {
	g, err := l.client.exchange(ctx, code, l.State, l.verifier, l.RedirectURI)
	if err != nil {
		return nil, fmt.Errorf("exchange code: %w", err)
	}
	return g, nil
}

// Package oauthtest runs a fake Claude OAuth authorization server on
// 127.0.0.1 for tests: an authorize endpoint that records the PKCE challenge
// it was shown, and a token endpoint that checks the verifier against it,
// issues short-lived access tokens and rotating refresh tokens, and rejects a
// spent refresh token with invalid_grant, as Anthropic's does. Failures can
// be scripted and requests held, and every token request is counted.
//
// Only tests import it. Its tokens are obviously fake ("sk-ant-oat01-fake-…").
package oauthtest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmgw/llmgw/oauth"
)

// ClientID is the client id the fake server accepts unless WithClientID
// says otherwise. It is not the real one, so that a test that reached the
// real server by mistake would fail.
const ClientID = "00000000-fake-4000-8000-oauthtest000"

// Identity the token responses carry, in the fields Anthropic's carry it in.
const (
	Email            = "subscriber@example.com"
	AccountUUID      = "11111111-1111-4111-8111-111111111111"
	OrganizationUUID = "22222222-2222-4222-8222-222222222222"
)

// Paths of the fake endpoints under Server.URL.
const (
	AuthorizePath = "/oauth/authorize"
	TokenPath     = "/v1/oauth/token"
	CallbackPath  = "/oauth/code/callback" // the manual redirect URI
)

// Reply is a scripted answer of the token endpoint. A Reply is used instead
// of handling the request, so the grant in it is not spent.
type Reply struct {
	Status     int           // HTTP status, e.g. 503 or 429
	RetryAfter time.Duration // sent as retry-after (whole seconds) when > 0
	Body       string        // default: a small OAuth error body
}

// TokenRequest is a token request as the server received it.
type TokenRequest struct {
	ContentType string            // media type only: application/json or application/x-www-form-urlencoded
	Fields      map[string]string // the body's fields
}

// Option configures a Server.
type Option func(*Server)

// WithLifetime sets how long access tokens live (expires_in). Default 1 h.
func WithLifetime(d time.Duration) Option { return func(s *Server) { s.lifetime = d } }

// WithClientID sets the client id the server accepts.
func WithClientID(id string) Option { return func(s *Server) { s.clientID = id } }

// Server is the fake authorization server. Its methods are safe for
// concurrent use.
type Server struct {
	// URL is the server's base URL, http://127.0.0.1:PORT.
	URL string

	srv      *httptest.Server
	clientID string
	lifetime time.Duration

	mu         sync.Mutex
	now        func() time.Time
	codes      map[string]*authCode
	refresh    map[string]bool      // refresh token -> still valid
	access     map[string]time.Time // access token -> expiry
	rotate     bool
	requireFrm bool
	script     []Reply
	hold       chan struct{} // non-nil while token requests are held
	arrived    chan struct{} // gets a value for each held request
	n          int           // tokens issued, for unique values
	refreshes  int
	exchanges  int
	invalid    int
	requests   []TokenRequest
}

type authCode struct {
	challenge, redirectURI, state string
	scopes                        []string
	used                          bool
}

// NewServer starts a fake server on 127.0.0.1, closed when the test ends.
func NewServer(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{
		clientID: ClientID,
		lifetime: time.Hour,
		now:      time.Now,
		codes:    map[string]*authCode{},
		refresh:  map[string]bool{},
		access:   map[string]time.Time{},
		rotate:   true,
	}
	for _, o := range opts {
		o(s)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+AuthorizePath, s.handleAuthorize)
	mux.HandleFunc("POST "+TokenPath, s.handleToken)
	s.srv = httptest.NewServer(mux) // listens on 127.0.0.1
	s.URL = s.srv.URL
	tb.Cleanup(func() {
		s.mu.Lock()
		if s.hold != nil {
			close(s.hold) // never leave a handler blocked
			s.hold = nil
		}
		s.mu.Unlock()
		s.srv.Close()
	})
	return s
}

// Config returns an oauth.Config aimed at this server, with the manual
// redirect URI, the default scopes and a client for the fake server.
func (s *Server) Config() oauth.Config {
	return oauth.Config{
		AuthorizeURL: s.URL + AuthorizePath,
		TokenURL:     s.URL + TokenPath,
		ClientID:     s.clientID,
		RedirectURI:  s.URL + CallbackPath,
		Scopes:       oauth.DefaultScopes(),
		HTTPClient:   s.srv.Client(),
	}
}

// SetNow sets the clock the server judges access-token expiry by (default
// time.Now). expires_in is always the configured lifetime.
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// SetRotation says whether a refresh rotates the refresh token (the default)
// or answers without refresh_token and leaves the old one valid.
func (s *Server) SetRotation(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotate = on
}

// RequireForm makes the token endpoint refuse JSON bodies with 400
// invalid_request "Invalid request format", as one user report says the real
// one did.
func (s *Server) RequireForm(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requireFrm = on
}

// Script queues answers for the next token requests, one each, before any
// is handled normally.
func (s *Server) Script(replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, replies...)
}

// Hold makes token requests wait until release is called. arrived receives
// a value as each request starts waiting (buffered for 1024). release is
// idempotent; the server releases by itself when the test ends.
func (s *Server) Hold() (arrived <-chan struct{}, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hold := make(chan struct{})
	s.hold, s.arrived = hold, make(chan struct{}, 1024)
	var once sync.Once
	return s.arrived, func() {
		once.Do(func() {
			s.mu.Lock()
			if s.hold == hold {
				close(hold)
				s.hold = nil
			}
			s.mu.Unlock()
		})
	}
}

// Mint issues a valid token pair without a login, for tests that create
// accounts directly. expiresIn is the configured lifetime.
func (s *Server) Mint() (access, refresh string, expiresIn time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	access, refresh = s.issueLocked()
	return access, refresh, s.lifetime
}

// Revoke makes a refresh token invalid, as if rotated away elsewhere.
func (s *Server) Revoke(refresh string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.refresh[refresh]; ok {
		s.refresh[refresh] = false
	}
}

// ExpireAccessTokens makes every access token issued so far invalid, as when
// Anthropic invalidates tokens early.
func (s *Server) ExpireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.access {
		s.access[t] = time.Time{}
	}
}

// AccessTokenValid reports whether tok was issued here and has not expired
// by the server's clock. A fake upstream can use it to answer 401.
func (s *Server) AccessTokenValid(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.access[tok]
	return ok && s.now().Before(exp)
}

// RefreshTokenValid reports whether tok is a refresh token that would work.
func (s *Server) RefreshTokenValid(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refresh[tok]
}

// RefreshCalls returns how many refresh_token requests reached the token
// endpoint, scripted and failed ones included.
func (s *Server) RefreshCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshes
}

// ExchangeCalls returns how many authorization_code requests reached the
// token endpoint.
func (s *Server) ExchangeCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exchanges
}

// InvalidGrants returns how many requests were answered invalid_grant.
func (s *Server) InvalidGrants() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.invalid
}

// Requests returns every token request received so far, in order.
func (s *Server) Requests() []TokenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Authorize plays the user approving the login at authURL: it checks the
// query as the authorize endpoint does, records the PKCE challenge and
// returns the code and the state to hand back (the manual page would show
// them as CODE#STATE).
func (s *Server) Authorize(tb testing.TB, authURL string) (code, state string) {
	tb.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		tb.Fatalf("oauthtest: authorize URL: %v", err)
	}
	code, err = s.authorize(u.Query())
	if err != nil {
		tb.Fatalf("oauthtest: authorize: %v", err)
	}
	return code, u.Query().Get("state")
}

// handleAuthorize serves GET /oauth/authorize like a user who approves at
// once: to a loopback redirect URI it redirects with code and state, else it
// shows CODE#STATE as the manual callback page does.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	code, err := s.authorize(q)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	redirect, state := q.Get("redirect_uri"), q.Get("state")
	if strings.HasPrefix(redirect, "http://localhost:") {
		http.Redirect(w, r, redirect+"?"+url.Values{"code": {code}, "state": {state}}.Encode(), http.StatusFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, code+"#"+state+"\n")
}

// authorize checks an authorize query and issues a code.
func (s *Server) authorize(q url.Values) (string, error) {
	switch {
	case q.Get("client_id") != s.clientID:
		return "", fmt.Errorf("unknown client_id %q", q.Get("client_id"))
	case q.Get("response_type") != "code":
		return "", fmt.Errorf("response_type %q, want code", q.Get("response_type"))
	case q.Get("code") != "true":
		return "", fmt.Errorf("code=%q, want true", q.Get("code"))
	case q.Get("code_challenge_method") != "S256":
		return "", fmt.Errorf("code_challenge_method %q, want S256", q.Get("code_challenge_method"))
	case q.Get("code_challenge") == "":
		return "", fmt.Errorf("no code_challenge")
	case q.Get("state") == "":
		return "", fmt.Errorf("no state")
	case q.Get("redirect_uri") == "":
		return "", fmt.Errorf("no redirect_uri")
	case q.Get("scope") == "":
		return "", fmt.Errorf("no scope")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	code := "fake-code-" + randomHex(12)
	s.codes[code] = &authCode{
		challenge:   q.Get("code_challenge"),
		redirectURI: q.Get("redirect_uri"),
		state:       q.Get("state"),
		scopes:      strings.Fields(q.Get("scope")),
	}
	return code, nil
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "unreadable body")
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	fields, perr := parseFields(ct, body)

	s.mu.Lock()
	s.requests = append(s.requests, TokenRequest{ContentType: ct, Fields: fields})
	switch fields["grant_type"] {
	case "refresh_token":
		s.refreshes++
	case "authorization_code":
		s.exchanges++
	}
	hold, arrived := s.hold, s.arrived
	s.mu.Unlock()
	if hold != nil {
		arrived <- struct{}{}
		<-hold
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.script) > 0 {
		rep := s.script[0]
		s.script = s.script[1:]
		if rep.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(rep.RetryAfter.Round(time.Second)/time.Second)))
		}
		if rep.Body == "" {
			rep.Body = `{"error":"server_error","error_description":"scripted failure"}`
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rep.Status)
		_, _ = io.WriteString(w, rep.Body)
		return
	}
	if perr != nil || (s.requireFrm && ct == "application/json") {
		oauthError(w, http.StatusBadRequest, "invalid_request", "Invalid request format")
		return
	}
	if fields["client_id"] != s.clientID {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client")
		return
	}
	switch fields["grant_type"] {
	case "authorization_code":
		s.exchangeLocked(w, fields)
	case "refresh_token":
		s.refreshLocked(w, fields)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type "+fields["grant_type"])
	}
}

func (s *Server) exchangeLocked(w http.ResponseWriter, f map[string]string) {
	c := s.codes[f["code"]]
	switch {
	case c == nil || c.used:
		s.invalid++
		oauthError(w, http.StatusBadRequest, "invalid_grant", "Invalid authorization code")
		return
	case f["redirect_uri"] != c.redirectURI:
		s.invalid++
		oauthError(w, http.StatusBadRequest, "invalid_grant", "Invalid 'redirect_uri' in request.")
		return
	case challenge(f["code_verifier"]) != c.challenge:
		s.invalid++
		oauthError(w, http.StatusBadRequest, "invalid_grant", "Invalid code verifier")
		return
	case f["state"] != c.state:
		oauthError(w, http.StatusBadRequest, "invalid_request", "state does not match")
		return
	}
	c.used = true
	access, refresh := s.issueLocked()
	s.writeTokens(w, access, refresh, granted(c.scopes))
}

func (s *Server) refreshLocked(w http.ResponseWriter, f map[string]string) {
	rt := f["refresh_token"]
	if !s.refresh[rt] {
		s.invalid++
		oauthError(w, http.StatusBadRequest, "invalid_grant", "Refresh token not found or invalid")
		return
	}
	access, refresh := s.issueLocked()
	if s.rotate {
		s.refresh[rt] = false
	} else {
		delete(s.refresh, refresh) // the old one stays the only valid one
		refresh = ""
	}
	scopes := strings.Fields(f["scope"])
	if len(scopes) == 0 {
		scopes = granted(oauth.DefaultScopes())
	}
	s.writeTokens(w, access, refresh, scopes)
}

// issueLocked makes a new access token and a new valid refresh token.
func (s *Server) issueLocked() (access, refresh string) {
	s.n++
	access = fmt.Sprintf("sk-ant-oat01-fake-%d-%s", s.n, randomHex(8))
	refresh = fmt.Sprintf("sk-ant-ort01-fake-%d-%s", s.n, randomHex(8))
	s.access[access] = s.now().Add(s.lifetime)
	s.refresh[refresh] = true
	return access, refresh
}

func (s *Server) writeTokens(w http.ResponseWriter, access, refresh string, scopes []string) {
	resp := map[string]any{
		"token_type":   "Bearer",
		"access_token": access,
		"expires_in":   int64(s.lifetime / time.Second),
		"scope":        strings.Join(scopes, " "),
		"token_uuid":   "33333333-3333-4333-8333-" + randomHex(6),
		"organization": map[string]string{"uuid": OrganizationUUID, "name": "Fake Org"},
		"account":      map[string]string{"uuid": AccountUUID, "email_address": Email},
	}
	if refresh != "" {
		resp["refresh_token"] = refresh
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// granted drops org:create_api_key, as the real server does for
// subscription logins.
func granted(scopes []string) []string {
	return slices.DeleteFunc(slices.Clone(scopes), func(s string) bool { return s == "org:create_api_key" })
}

func parseFields(contentType string, body []byte) (map[string]string, error) {
	out := map[string]string{}
	switch contentType {
	case "application/json":
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			return out, err
		}
		for k, v := range m {
			if s, ok := v.(string); ok {
				out[k] = s
			} else {
				out[k] = fmt.Sprint(v)
			}
		}
	case "application/x-www-form-urlencoded":
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return out, err
		}
		for k := range v {
			out[k] = v.Get(k)
		}
	default:
		return out, fmt.Errorf("content type %q", contentType)
	}
	return out, nil
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

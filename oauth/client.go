package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// maxTokenBody bounds what we read of a token endpoint's answer.
const maxTokenBody = 1 << 20

// tokenClient posts token requests. x/oauth2 always form-encodes them; Claude
// Code sends JSON, so this client does too.
//
// Form fallback: reports disagree on whether the endpoint also takes form
// encoding, and one (pi#2743) saw JSON refused with 400 "Invalid request
// format" while the same request as a form worked. So when a JSON request is
// refused as malformed (415, or 400 with invalid_request or with no OAuth
// error code at all) the client sends the same request once more as a form,
// and keeps using forms if that works. Such a refusal means the server did
// not read the request, so the code or refresh token was not spent and the
// second request is safe. An invalid_grant is never retried: it is the
// answer about the grant itself.
type tokenClient struct {
	cfg  Config
	hc   *http.Client
	form atomic.Bool // the endpoint refused JSON and took a form
}

func newTokenClient(cfg Config) *tokenClient {
	return &tokenClient{cfg: cfg, hc: cfg.httpClient()}
}

// param is one field of a token request, kept in order: Claude Code sends
// them in a fixed order and so do we.
type param struct{ key, value string }

// exchange trades an authorization code for tokens.
func (c *tokenClient) exchange(ctx context.Context, code, state, verifier, redirectURI string) (*Grant, error) {
	return c.post(ctx, []param{
		{"grant_type", "authorization_code"},
		{"code", code},
		{"redirect_uri", redirectURI},
		{"client_id", c.cfg.ClientID},
		{"code_verifier", verifier},
		{"state", state},
	})
}

// refresh trades a refresh token for a new access token (and usually a new
// refresh token). scopes, when known, are the ones granted; asking for more
// than was granted could be refused, so unknown scopes are not sent.
func (c *tokenClient) refresh(ctx context.Context, refreshToken string, scopes []string) (*Grant, error) {
	ps := []param{
		{"grant_type", "refresh_token"},
		{"refresh_token", refreshToken},
		{"client_id", c.cfg.ClientID},
	}
	if len(scopes) > 0 {
		ps = append(ps, param{"scope", strings.Join(scopes, " ")})
	}
	return c.post(ctx, ps)
}

func (c *tokenClient) post(ctx context.Context, ps []param) (*Grant, error) {
	if c.form.Load() {
		return c.do(ctx, ps, true)
	}
	g, err := c.do(ctx, ps, false)
	if !refusedAsMalformed(err) {
		return g, err
	}
	g, ferr := c.do(ctx, ps, true)
	if ferr != nil {
		return nil, err // the JSON answer is the one worth reporting
	}
	c.form.Store(true)
	c.cfg.logger().Warn("token endpoint refused JSON and took a form: using form encoding from now on")
	return g, nil
}

// refusedAsMalformed reports whether err says the server could not read the
// request (see tokenClient).
func refusedAsMalformed(err error) bool {
	var te *TokenError
	if !errors.As(err, &te) {
		return false
	}
	return te.Status == http.StatusUnsupportedMediaType ||
		(te.Status == http.StatusBadRequest && (te.Code == "invalid_request" || te.Code == ""))
}

func (c *tokenClient) do(ctx context.Context, ps []param, form bool) (*Grant, error) {
	var (
		body        []byte
		contentType string
	)
	if form {
		v := url.Values{}
		for _, p := range ps {
			v.Set(p.key, p.value)
		}
		body, contentType = []byte(v.Encode()), "application/x-www-form-urlencoded"
	} else {
		body, contentType = jsonObject(ps), "application/json"
	}
	ctx, cancel := context.WithTimeout(ctx, tokenTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.TokenURL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("token request: %w", err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "llmgw")
	sent := c.cfg.now()
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("token request: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(res.Body, maxTokenBody))
	_ = res.Body.Close() // read whole; a response body's Close error tells us nothing
	if err != nil {
		return nil, fmt.Errorf("read token response: %w", err)
	}
	if res.StatusCode/100 != 2 {
		return nil, tokenError(res, data, sent)
	}
	var tr tokenResponse
	if err := json.Unmarshal(data, &tr); err != nil {
		return nil, fmt.Errorf("token response: %w", err)
	}
	if tr.AccessToken == "" {
		return nil, errors.New("token response has no access_token")
	}
	g := &Grant{
		Token: oauth2.Token{
			AccessToken:  tr.AccessToken,
			TokenType:    tr.TokenType,
			RefreshToken: tr.RefreshToken,
			ExpiresIn:    tr.ExpiresIn,
		},
		Scopes:           strings.Fields(tr.Scope),
		Email:            tr.Account.Email,
		AccountUUID:      tr.Account.UUID,
		OrganizationUUID: tr.Organization.UUID,
	}
	if tr.ExpiresIn > 0 {
		// From when the request was sent: the token may be a little
		// older than its answer, never younger.
		g.Token.Expiry = sent.Add(time.Duration(tr.ExpiresIn) * time.Second)
	}
	return g, nil
}

// jsonObject encodes ps as a JSON object with the keys in order.
func jsonObject(ps []param) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(p.key) // strings always marshal
		v, _ := json.Marshal(p.value)
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// tokenResponse is the token endpoint's answer: the token pair, its
// lifetime, the scopes and the account it belongs to.
type tokenResponse struct {
	TokenType    string `json:"token_type"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
	Account      struct {
		UUID  string `json:"uuid"`
		Email string `json:"email_address"`
	} `json:"account"`
	Organization struct {
		UUID string `json:"uuid"`
	} `json:"organization"`
}

// errorBody covers both error shapes the token host uses: OAuth's
// {"error","error_description"} and the API's {"type":"error","error":{...}}.
type errorBody struct {
	Error            json.RawMessage `json:"error"`
	ErrorDescription string          `json:"error_description"`
}

// tokenError reads an error answer. Only short, single-line JSON fields are
// kept: a Cloudflare challenge page is HTML and says nothing useful.
func tokenError(res *http.Response, data []byte, now time.Time) *TokenError {
	te := &TokenError{Status: res.StatusCode, RetryAfter: retryAfter(res.Header, now)}
	ct, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	var eb errorBody
	if json.Unmarshal(data, &eb) == nil && len(eb.Error) > 0 {
		var code string
		var api struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		}
		switch {
		case json.Unmarshal(eb.Error, &code) == nil:
			te.Code, te.Description = code, eb.ErrorDescription
		case json.Unmarshal(eb.Error, &api) == nil:
			te.Code, te.Description = api.Type, api.Message
		}
	} else if ct != "" && ct != "application/json" {
		te.Description = "(" + ct + " body)"
	}
	te.Code = shorten(te.Code, 64)
	te.Description = shorten(te.Description, 200)
	return te
}

func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// retryAfter reads retry-after-ms, then retry-after (seconds or an HTTP
// date).
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	if v := h.Get("Retry-After"); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
			return time.Duration(s * float64(time.Second))
		}
		if t, err := http.ParseTime(v); err == nil && t.After(now) {
			return t.Sub(now)
		}
	}
	return 0
}

package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw"
	catalog "github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// The tests in this file hold the gateway to the upstream contract of late
// 2026 (Claude Code's gateway protocol, the newer error types, Codex's
// transport), each through the gateway as the real client sends it.

const (
	contractBody = `{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`
	countBody    = `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}`
)

// send makes a raw request to the gateway with the test key and returns the
// status, headers and body.
func send(t *testing.T, method, url, body string, header http.Header) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx(t), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	// The test key goes in x-api-key unless header names a credential; an
	// empty one means none is sent.
	_, apiKey := header["X-Api-Key"]
	_, bearer := header["Authorization"]
	if !apiKey && !bearer && !strings.Contains(url, "key=") {
		req.Header.Set("X-Api-Key", testKey)
	}
	for k, vs := range req.Header {
		if len(vs) == 1 && vs[0] == "" {
			delete(req.Header, k)
		}
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, b
}

// TestContract_VersionAndBetaPassThrough: a pass-through client's
// anthropic-version (2026-10-21 included) and anthropic-beta reach the
// upstream unchanged; 2023-06-01 is added only when none was sent; a
// converted request is sent with the version its body is built for.
func TestContract_VersionAndBetaPassThrough(t *testing.T) {
	for _, tt := range []struct {
		name, path, body string
		header           http.Header
		wantVersion      []string
		wantBeta         []string
	}{
		{"new version and betas", "/v1/messages", contractBody,
			http.Header{"Anthropic-Version": {"2026-10-21"}, "Anthropic-Beta": {"fast-mode-2026-02-01,compact-2026-01-12", "user-profiles"}},
			[]string{"2026-10-21"}, []string{"fast-mode-2026-02-01,compact-2026-01-12", "user-profiles"}},
		{"old version", "/v1/messages", contractBody,
			http.Header{"Anthropic-Version": {"2023-06-01"}}, []string{"2023-06-01"}, nil},
		{"no version", "/v1/messages", contractBody, nil, []string{"2023-06-01"}, nil},
		{"count_tokens", "/v1/messages/count_tokens", countBody,
			http.Header{"Anthropic-Version": {"2026-10-21"}, "Anthropic-Beta": {"token-counting-2024-11-01"}},
			[]string{"2026-10-21"}, []string{"token-counting-2024-11-01"}},
		// The Chat converter builds a 2023-06-01 body whatever the client
		// says; its beta flags still go along.
		{"converted", "/v1/chat/completions", `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}`,
			http.Header{"Anthropic-Version": {"2026-10-21"}, "Anthropic-Beta": {"context-1m-2025-08-07"}},
			[]string{"2023-06-01"}, []string{"context-1m-2025-08-07"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up := upstreamtest.NewServer(t)
			g := newGateway(t, Config{}, account(1, "a", "sk-ant-a", up.URL))
			status, _, body := send(t, http.MethodPost, g.URL+tt.path, tt.body, tt.header)
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, body)
			}
			r := up.Requests()[0]
			if diff := cmp.Diff(tt.wantVersion, r.Header.Values("Anthropic-Version")); diff != "" {
				t.Errorf("upstream anthropic-version (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantBeta, r.Header.Values("Anthropic-Beta")); diff != "" {
				t.Errorf("upstream anthropic-beta (-want +got):\n%s", diff)
			}
		})
	}
}

// TestContract_VersionPassThroughSDKAndOAuth: the Anthropic SDK's request
// with a newer version keeps it upstream; on an OAuth account every client
// beta flag survives next to the OAuth flag.
func TestContract_VersionPassThroughSDKAndOAuth(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := oauthGateway(t, &fakeTokens{token: "sk-ant-oat01-a"}, oauthAccount(1, "max", up.URL))
	_, err := g.client().Messages.New(ctx(t), userMsg("hi"),
		optHeader("anthropic-version", "2026-10-21"), optHeader("anthropic-beta", "fast-mode-2026-02-01,user-profiles"))
	if err != nil {
		t.Fatal(err)
	}
	r := up.Requests()[0]
	if got := r.Header.Values("Anthropic-Version"); len(got) != 1 || got[0] != "2026-10-21" {
		t.Errorf("upstream anthropic-version = %q, want [2026-10-21]", got)
	}
	if got := r.Header.Get("Anthropic-Beta"); got != OAuthBeta+",fast-mode-2026-02-01,user-profiles" {
		t.Errorf("upstream anthropic-beta = %q", got)
	}
}

// TestContract_BetaQueryKept: Claude Code posts to /v1/messages?beta=true;
// the query reaches the upstream (without a client key put there).
func TestContract_BetaQueryKept(t *testing.T) {
	for _, tt := range []struct{ name, query, want string }{
		{"beta", "?beta=true", "beta=true"},
		{"key removed", "?beta=true&key=" + testKey, "beta=true"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up := upstreamtest.NewServer(t)
			g := newGateway(t, Config{}, account(1, "a", "sk-ant-a", up.URL))
			for path, body := range map[string]string{"/v1/messages": contractBody, "/v1/messages/count_tokens": countBody} {
				status, _, body := send(t, http.MethodPost, g.URL+path+tt.query, body, http.Header{"Anthropic-Version": {"2023-06-01"}})
				if status != http.StatusOK {
					t.Fatalf("%s: status %d: %s", path, status, body)
				}
			}
			for _, r := range up.Requests() {
				if r.RawQuery != tt.want {
					t.Errorf("upstream %s query = %q, want %q", r.Path, r.RawQuery, tt.want)
				}
			}
		})
	}
}

// errorBody reads an Anthropic error body.
type errorBody struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		Details struct {
			ErrorCode string `json:"error_code"`
		} `json:"details"`
	} `json:"error"`
}

// TestContract_ClientFaultsDelivered: an upstream error about the client's
// own request or version (a 400 with error_code
// claude_code_version_too_old, any plain 400, the 401 about CORS, a 409)
// reaches the client unchanged, with no failover, no token refresh and no
// mark on the account, on API-key and OAuth accounts alike.
func TestContract_ClientFaultsDelivered(t *testing.T) {
	const tooOld = "Claude Code 2.1.120 is too old for claude-fable-5-1; update to 2.1.255 or later."
	for _, tt := range []struct {
		name   string
		status int
		edits  []upstreamtest.Edit
		code   string
	}{
		{"version too old", 400, []upstreamtest.Edit{upstreamtest.Message(tooOld), upstreamtest.ErrorCode("claude_code_version_too_old")}, "claude_code_version_too_old"},
		{"plain 400", 400, []upstreamtest.Edit{upstreamtest.Message("temperature: not supported by this model")}, ""},
		{"cors 401", 401, []upstreamtest.Edit{upstreamtest.Message("CORS requests are not allowed for this Organization because of its settings. Set the anthropic-dangerous-direct-browser-access header to true.")}, ""},
		{"409 conflict", 409, nil, ""},
	} {
		for _, oauth := range []bool{false, true} {
			name := tt.name + "/api key"
			if oauth {
				name = tt.name + "/oauth"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				up := upstreamtest.NewServer(t, upstreamtest.Script("sk-ant-first", upstreamtest.Fail(tt.status, tt.edits...)))
				tokens := &fakeTokens{token: "sk-ant-first", next: "sk-ant-refreshed"}
				first := account(1, "first", "sk-ant-first", up.URL)
				if oauth {
					first = oauthAccount(1, "first", up.URL)
				}
				second := account(2, "second", "sk-ant-second", up.URL)
				second.Priority = 1
				g := oauthGateway(t, tokens, first, second)
				status, _, body := send(t, http.MethodPost, g.URL+"/v1/messages?beta=true", contractBody,
					http.Header{"Anthropic-Version": {"2023-06-01"}, "User-Agent": {"claude-cli/2.1.120 (external, cli)"}})
				if status != tt.status {
					t.Fatalf("status %d, want %d: %s", status, tt.status, body)
				}
				var e errorBody
				if err := json.Unmarshal(body, &e); err != nil {
					t.Fatalf("body %s: %v", body, err)
				}
				if e.Error.Details.ErrorCode != tt.code || (tt.code != "" && e.Error.Message != tooOld) {
					t.Errorf("client got %s; want the upstream's error with error_code %q", body, tt.code)
				}
				if n := up.Count(); n != 1 || tokens.refreshes != 0 {
					t.Errorf("upstream saw %d requests, %d refreshes; want 1 and 0 (no failover, no refresh)", n, tokens.refreshes)
				}
				if st := g.AccountState(&g.Snapshot().Accounts[0]); st.Status != llmgw.StatusActive || !st.CooldownUntil.IsZero() || st.LastError != "" {
					t.Errorf("account state = %+v, want untouched", st)
				}
			})
		}
	}
}

// TestContract_BillingAndTimeoutFailOver: a 402 billing_error puts the
// account in status error with the upstream's reason and the request goes
// to the next account; a 504 timeout_error fails over like any 5xx and
// leaves the account active.
func TestContract_BillingAndTimeoutFailOver(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status int
		broken bool
	}{
		{"402 billing", 402, true},
		{"504 timeout", 504, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up := upstreamtest.NewServer(t, upstreamtest.Script("sk-ant-first", upstreamtest.Fail(tt.status)))
			first := account(1, "first", "sk-ant-first", up.URL)
			second := account(2, "second", "sk-ant-second", up.URL)
			second.Priority = 1
			g := newGateway(t, Config{}, first, second)
			if _, err := g.client().Messages.New(ctx(t), userMsg("hi")); err != nil {
				t.Fatalf("client saw %v, want the second account's answer", err)
			}
			if n := up.Count(); n != 2 {
				t.Errorf("upstream saw %d requests, want 2", n)
			}
			st := g.AccountState(&g.Snapshot().Accounts[0])
			if broken := st.Status == llmgw.StatusError; broken != tt.broken {
				t.Errorf("account state = %+v, want broken %v", st, tt.broken)
			}
			if tt.broken && !strings.Contains(st.Reason, "billing_error") {
				t.Errorf("reason = %q, want the upstream's billing_error", st.Reason)
			}
		})
	}
}

// TestContract_NewErrorTypesPerDialect: 402 billing_error, 409
// conflict_error and 504 timeout_error reach each dialect's client in its
// own shape, from the one status/type table.
func TestContract_NewErrorTypesPerDialect(t *testing.T) {
	type want struct {
		status     int
		typ, code  string // error.type / error.code (OpenAI), error.status (Gemini)
		anthropicT string
	}
	const gemPath = "/v1beta/models/claude-sonnet-4-5:generateContent"
	gemBody := `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`
	chatBody := `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}`
	respBody := `{"model":"claude-sonnet-4-5","input":"hi"}`
	for _, tt := range []struct {
		upstream                   int
		anthropic, chat, responses want
		gemini                     want
	}{
		{402, want{status: 402, anthropicT: "billing_error"}, want{status: 402, typ: "insufficient_quota", code: "insufficient_quota"},
			want{status: 402, typ: "insufficient_quota", code: "insufficient_quota"}, want{status: 402, code: "RESOURCE_EXHAUSTED"}},
		{409, want{status: 409, anthropicT: "conflict_error"}, want{status: 409, typ: "invalid_request_error", code: "conflict"},
			want{status: 409, typ: "invalid_request_error", code: "conflict"}, want{status: 409, code: "ABORTED"}},
		{504, want{status: 504, anthropicT: "timeout_error"}, want{status: 504, typ: "server_error", code: "timeout"},
			want{status: 504, typ: "server_error", code: "timeout"}, want{status: 504, code: "DEADLINE_EXCEEDED"}},
	} {
		t.Run(http.StatusText(tt.upstream), func(t *testing.T) {
			t.Parallel()
			// A fresh gateway per dialect: a 402 puts its account in error.
			gw := func() *gateway {
				up := upstreamtest.NewServer(t, upstreamtest.Fail(tt.upstream))
				return newGateway(t, Config{}, account(1, "a", "sk-ant-a", up.URL))
			}
			status, _, body := send(t, http.MethodPost, gw().URL+"/v1/messages", contractBody, http.Header{"Anthropic-Version": {"2023-06-01"}})
			var ae errorBody
			_ = json.Unmarshal(body, &ae)
			if status != tt.anthropic.status || ae.Error.Type != tt.anthropic.anthropicT {
				t.Errorf("anthropic: %d %s, want %d %s", status, body, tt.anthropic.status, tt.anthropic.anthropicT)
			}
			for _, d := range []struct {
				name, path, body string
				want             want
			}{
				{"chat", "/v1/chat/completions", chatBody, tt.chat},
				{"responses", "/v1/responses", respBody, tt.responses},
			} {
				status, _, body := send(t, http.MethodPost, gw().URL+d.path, d.body, nil)
				var oe struct {
					Error struct{ Type, Code string }
				}
				_ = json.Unmarshal(body, &oe)
				if status != d.want.status || oe.Error.Type != d.want.typ || oe.Error.Code != d.want.code {
					t.Errorf("%s: %d %s, want %d type %s code %s", d.name, status, body, d.want.status, d.want.typ, d.want.code)
				}
			}
			status, _, body = send(t, http.MethodPost, gw().URL+gemPath, gemBody, http.Header{"X-Goog-Api-Key": {testKey}})
			var ge struct {
				Error struct {
					Code   int
					Status string
				}
			}
			_ = json.Unmarshal(body, &ge)
			if status != tt.gemini.status || ge.Error.Code != tt.gemini.status || ge.Error.Status != tt.gemini.code {
				t.Errorf("gemini: %d %s, want %d %s", status, body, tt.gemini.status, tt.gemini.code)
			}
		})
	}
}

// TestContract_RootProbe: Claude Code's HEAD / probe (and a GET /) get a
// 200 without a client key, and no account is asked.
func TestContract_RootProbe(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{}, account(1, "a", "sk-ant-a", up.URL))
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		req, err := http.NewRequestWithContext(ctx(t), method, g.URL+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := `{"status":"ok","service":"llmgw"}`
		if method == http.MethodHead {
			want = ""
		}
		if res.StatusCode != http.StatusOK || string(body) != want {
			t.Errorf("%s / = %d %q, want 200 %q", method, res.StatusCode, body, want)
		}
	}
	if n := up.Count(); n != 0 {
		t.Errorf("upstream saw %d requests, want none", n)
	}
}

// TestContract_ResponsesWebSocket426: Codex's WebSocket dial to
// /v1/responses is refused with 426 Upgrade Required in the Responses error
// shape, key or no key, so that Codex falls back to HTTP; a real WebSocket
// client sees the 426.
func TestContract_ResponsesWebSocket426(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{}, account(1, "a", "sk-ant-a", up.URL))
	wsHeader := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}
	for _, key := range []string{"Bearer " + testKey, "Bearer wrong", ""} {
		h := wsHeader.Clone()
		if key != "" {
			h.Set("Authorization", key)
		} else {
			h.Set("X-Api-Key", "") // no key at all
		}
		status, header, body := send(t, http.MethodGet, g.URL+"/v1/responses", "", h)
		var e struct {
			Error struct{ Message, Type string }
		}
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("body %s: %v", body, err)
		}
		if status != http.StatusUpgradeRequired || e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, "HTTP") {
			t.Errorf("key %q: %d %s, want 426 in the Responses shape naming HTTP", key, status, body)
		}
		if header.Get("Upgrade") == "" {
			t.Errorf("key %q: a 426 must name the protocol to use in Upgrade", key)
		}
	}

	// A plain GET is a wrong method, not an upgrade.
	if status, _, body := send(t, http.MethodGet, g.URL+"/v1/responses", "", nil); status != http.StatusMethodNotAllowed {
		t.Errorf("plain GET: %d %s, want 405", status, body)
	}

	// A real WebSocket client.
	conn, res, err := websocket.Dial(ctx(t), "ws"+strings.TrimPrefix(g.URL, "http")+"/v1/responses", &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + testKey}},
	})
	if conn != nil {
		_ = conn.CloseNow()
	}
	if res != nil && res.Body != nil {
		_ = res.Body.Close()
	}
	if err == nil || res == nil || res.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("websocket.Dial = %v, %v; want a 426 refusal", res, err)
	}
	if n := up.Count(); n != 0 {
		t.Errorf("upstream saw %d requests, want none", n)
	}
}

// syncBuffer is a log sink safe to read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestContract_SamplingDroppedForNewerModels: converted requests to a model
// whose catalog entry refuses sampling parameters go upstream without
// temperature, top_p and top_k, and a debug line says so; an older model
// keeps them, and a pass-through request is never changed.
func TestContract_SamplingDroppedForNewerModels(t *testing.T) {
	for _, tt := range []struct {
		dialect, path, body string
		header              http.Header
	}{
		{"chat", "/v1/chat/completions", `{"model":"%s","temperature":0.3,"top_p":0.9,"messages":[{"role":"user","content":"hi"}]}`, nil},
		{"responses", "/v1/responses", `{"model":"%s","temperature":0.3,"top_p":0.9,"input":"hi"}`, nil},
		{"gemini", "/v1beta/models/%s:generateContent", `{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generationConfig":{"temperature":0.3,"topP":0.9,"topK":40}}`,
			http.Header{"X-Goog-Api-Key": {testKey}}},
		{"anthropic", "/v1/messages", `{"model":"%s","max_tokens":64,"temperature":0.3,"messages":[{"role":"user","content":"hi"}]}`,
			http.Header{"Anthropic-Version": {"2023-06-01"}}},
	} {
		for _, model := range []string{"claude-opus-4-8", "claude-sonnet-4-5"} {
			t.Run(tt.dialect+"/"+model, func(t *testing.T) {
				t.Parallel()
				up := upstreamtest.NewServer(t)
				var logs syncBuffer
				g := newGateway(t, Config{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))},
					account(1, "a", "sk-ant-a", up.URL))
				path, body := tt.path, tt.body
				if strings.Contains(path, "%s") {
					path = fmt.Sprintf(path, model)
				} else {
					body = fmt.Sprintf(body, model)
				}
				status, _, got := send(t, http.MethodPost, g.URL+path, body, tt.header)
				if status != http.StatusOK {
					t.Fatalf("status %d: %s", status, got)
				}
				var sent struct {
					Temperature *float64 `json:"temperature"`
					TopP        *float64 `json:"top_p"`
					TopK        *int     `json:"top_k"`
				}
				if err := up.Requests()[0].Decode(&sent); err != nil {
					t.Fatal(err)
				}
				dropped := sent.Temperature == nil && sent.TopP == nil && sent.TopK == nil
				wantDropped := model == "claude-opus-4-8" && tt.dialect != "anthropic"
				if dropped != wantDropped {
					t.Errorf("upstream temperature %v top_p %v top_k %v; want dropped %v", sent.Temperature, sent.TopP, sent.TopK, wantDropped)
				}
				if logged := strings.Contains(logs.String(), "temperature dropped: claude-opus-4-8 takes no sampling parameters"); logged != wantDropped {
					t.Errorf("debug log has the drop: %v, want %v; log:\n%s", logged, wantDropped, logs.String())
				}
			})
		}
	}
}

// TestContract_ModelsFromCatalog: with no account to ask, GET /v1/models
// answers from the catalog in Anthropic's format, as Claude Code's model
// discovery reads it: ids starting "claude", pagination fields, and each
// model's max_input_tokens and max_tokens; OpenAI's fields stay.
func TestContract_ModelsFromCatalog(t *testing.T) {
	g := newGateway(t, Config{}, account(1, "a", "sk-ant-a", deadURL(t)))
	page, err := g.client().Models.List(ctx(t), anthropic.ModelListParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) == 0 || page.HasMore || page.FirstID != page.Data[0].ID || page.LastID != page.Data[len(page.Data)-1].ID {
		t.Fatalf("page: %d models, has_more %v, first %q, last %q", len(page.Data), page.HasMore, page.FirstID, page.LastID)
	}
	for _, m := range page.Data {
		want, ok := catalog.Lookup(m.ID)
		if !ok {
			t.Errorf("%s: not in the catalog", m.ID)
			continue
		}
		if !strings.HasPrefix(m.ID, "claude") || m.Type != "model" || m.DisplayName != want.DisplayName || m.CreatedAt.IsZero() {
			t.Errorf("%s: %+v", m.ID, m)
		}
		if m.MaxInputTokens != int64(want.ContextWindow) || m.MaxTokens != int64(want.MaxOutputTokens) || m.MaxTokens == 0 {
			t.Errorf("%s: max_input_tokens %d, max_tokens %d; want %d, %d", m.ID, m.MaxInputTokens, m.MaxTokens, want.ContextWindow, want.MaxOutputTokens)
		}
	}
	one, err := g.client().Models.Get(ctx(t), "claude-opus-4-8", anthropic.ModelGetParams{})
	if err != nil || one.MaxInputTokens != 1_000_000 || one.MaxTokens != 128_000 {
		t.Errorf("Models.Get(claude-opus-4-8) = %+v, %v", one, err)
	}
	var raw struct {
		Object string `json:"object"`
		Data   []struct {
			Object  string `json:"object"`
			OwnedBy string `json:"owned_by"`
		} `json:"data"`
	}
	getJSON(t, g.URL+"/v1/models", &raw)
	if raw.Object != "list" || raw.Data[0].Object != "model" || raw.Data[0].OwnedBy != "anthropic" {
		t.Errorf("OpenAI fields: %+v", raw)
	}
}

// TestContract_CodexNamespaceTools: Codex groups tools under namespace
// tools; the upstream gets them flat, under names Anthropic accepts, and
// the model's call reaches Codex under the namespace and name it declared,
// streamed and whole.
func TestContract_CodexNamespaceTools(t *testing.T) {
	const body = `{"model":"claude-sonnet-4-5","stream":%t,"store":false,"instructions":"You are Codex.",
		"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"find the issue"}]}],
		"tools":[
			{"type":"function","name":"shell","description":"Run a command","strict":false,"parameters":{"type":"object","properties":{"command":{"type":"array","items":{"type":"string"}}},"required":["command"]}},
			{"type":"namespace","name":"codex_apps.github","description":"GitHub connector","tools":[
				{"type":"function","name":"search-issues.v2","description":"Search issues","strict":false,"parameters":{"type":"object","properties":{"q":{"type":"string"}}}},
				{"type":"function","name":"get_issue","description":"Get one issue","strict":false,"parameters":{"type":"object","properties":{"n":{"type":"integer"}}}}]}],
		"tool_choice":"auto","parallel_tool_calls":false}`
	valid := func(name string) bool {
		if name == "" || len(name) > 128 {
			return false
		}
		for _, c := range name {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				return false
			}
		}
		return true
	}
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%t", stream), func(t *testing.T) {
			t.Parallel()
			up := upstreamtest.NewServer(t, upstreamtest.Step(func(req *upstreamtest.Request) upstreamtest.Response {
				// Call the namespaced tool under whatever name it was sent as.
				for _, n := range req.ToolNames {
					if strings.Contains(n, "search") {
						return upstreamtest.OK(upstreamtest.ToolCall(n, map[string]any{"q": "is:open"}))(req)
					}
				}
				return upstreamtest.OK(upstreamtest.Text("no such tool"))(req)
			}))
			g := newGateway(t, Config{}, account(1, "a", "sk-ant-a", up.URL))
			status, _, out := send(t, http.MethodPost, g.URL+"/v1/responses", fmt.Sprintf(body, stream),
				http.Header{"Authorization": {"Bearer " + testKey}, "Originator": {"codex_cli_rs"}})
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, out)
			}
			names := up.Requests()[0].ToolNames
			if len(names) != 3 {
				t.Fatalf("upstream tools = %q, want 3 flat tools", names)
			}
			for _, n := range names {
				if !valid(n) {
					t.Errorf("upstream tool name %q is not valid for Anthropic", n)
				}
			}
			if want := []string{"shell", "codex_apps_github__search-issues_v2", "codex_apps_github__get_issue"}; !cmp.Equal(want, names) {
				t.Errorf("upstream tools = %q, want %q (namespace__name, sanitized)", names, want)
			}

			type call struct {
				Type, Name, Namespace, Arguments string
			}
			var calls []call
			if stream {
				for _, line := range strings.Split(string(out), "\n") {
					data, ok := strings.CutPrefix(line, "data: ")
					if !ok {
						continue
					}
					var ev struct {
						Type string `json:"type"`
						Item call   `json:"item"`
					}
					if json.Unmarshal([]byte(data), &ev) == nil && ev.Type == "response.output_item.done" && ev.Item.Type == "function_call" {
						calls = append(calls, ev.Item)
					}
				}
			} else {
				var resp struct{ Output []call }
				if err := json.Unmarshal(out, &resp); err != nil {
					t.Fatal(err)
				}
				for _, it := range resp.Output {
					if it.Type == "function_call" {
						calls = append(calls, it)
					}
				}
			}
			want := []call{{Type: "function_call", Name: "search-issues.v2", Namespace: "codex_apps.github", Arguments: `{"q":"is:open"}`}}
			if diff := cmp.Diff(want, calls); diff != "" {
				t.Fatalf("function calls as Codex sees them (-want +got):\n%s\nbody:\n%s", diff, out)
			}

			// The next turn carries the call back with its namespace; the
			// upstream sees it under the tool's flattened name.
			next := strings.Replace(fmt.Sprintf(body, stream), `"find the issue"}]}]`, `"find the issue"}]},
				{"type":"function_call","call_id":"call_1","namespace":"codex_apps.github","name":"search-issues.v2","arguments":"{\"q\":\"is:open\"}"},
				{"type":"function_call_output","call_id":"call_1","output":"#42 crash on start"}]`, 1)
			if status, _, out := send(t, http.MethodPost, g.URL+"/v1/responses", next, http.Header{"Authorization": {"Bearer " + testKey}}); status != http.StatusOK {
				t.Fatalf("second turn: status %d: %s", status, out)
			}
			var sent struct {
				Messages []struct {
					Content []struct{ Type, Name string }
				}
			}
			if err := up.Requests()[1].Decode(&sent); err != nil {
				t.Fatal(err)
			}
			var used []string
			for _, m := range sent.Messages {
				for _, b := range m.Content {
					if b.Type == "tool_use" {
						used = append(used, b.Name)
					}
				}
			}
			if !cmp.Equal(used, []string{"codex_apps_github__search-issues_v2"}) {
				t.Errorf("history tool_use names = %q, want the declared tool's upstream name", used)
			}
		})
	}
}

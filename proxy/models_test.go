package proxy

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"
	oaoption "github.com/openai/openai-go/v3/option"

	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// TestModels_BothSDKs checks that one /v1/models document parses in the
// Anthropic and the OpenAI SDK, from the upstream and from the built-in list.
func TestModels_BothSDKs(t *testing.T) {
	up := upstreamtest.NewServer(t)
	for _, tt := range []struct{ name, baseURL string }{
		{"upstream", up.URL},
		{"built-in", deadURL(t)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t, Config{}, account(1, "a", "sk-ant-a", tt.baseURL))
			ap, err := g.client().Models.List(ctx(t), anthropic.ModelListParams{})
			if err != nil {
				t.Fatal(err)
			}
			if len(ap.Data) == 0 || ap.Data[0].ID == "" || ap.Data[0].DisplayName == "" {
				t.Errorf("anthropic SDK read %+v", ap.Data)
			}
			oc := openai.NewClient(oaoption.WithBaseURL(g.URL+"/v1"), oaoption.WithAPIKey(testKey), oaoption.WithMaxRetries(0))
			op, err := oc.Models.List(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(op.Data) != len(ap.Data) || op.Data[0].ID != ap.Data[0].ID || op.Data[0].OwnedBy != "anthropic" || op.Data[0].Created == 0 {
				t.Errorf("openai SDK read %+v", op.Data)
			}
			one, err := oc.Models.Get(ctx(t), ap.Data[0].ID)
			if err != nil || one.ID != ap.Data[0].ID {
				t.Errorf("openai Models.Get = %+v, %v", one, err)
			}
		})
	}
}

// TestGemini_V1Paths: Gemini clients may use /v1/models/{model}:action as
// well as /v1beta; errors there are in Google's shape.
func TestGemini_V1Paths(t *testing.T) {
	up := upstreamtest.NewServer(t)
	g := newGateway(t, Config{}, account(1, "a", "sk-ant-a", up.URL))
	post := func(key string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", g.URL+"/v1/models/claude-sonnet-4-5:generateContent",
			strings.NewReader(`{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`))
		req.Header.Set("x-goog-api-key", key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, out
	}
	if status, out := post(testKey); status != 200 || out["candidates"] == nil {
		t.Errorf("status %d, body %v", status, out)
	}
	status, out := post("wrong-key")
	e, _ := out["error"].(map[string]any)
	if status != 401 || e == nil || e["status"] != "UNAUTHENTICATED" {
		t.Errorf("bad key: status %d, body %v; want Google's 401 shape", status, out)
	}
}

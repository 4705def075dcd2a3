package gemini

import (
	"encoding/json"
	"fmt"

	"github.com/llmgw/llmgw/proxy/anthropic"
)

// Model is one entry of GET /v1beta/models, in the shape google.golang.org/genai
// and the Gemini CLI read.
type Model struct {
	Name                       string   `json:"name"` // models/<id>
	BaseModelID                string   `json:"baseModelId"`
	Version                    string   `json:"version"`
	DisplayName                string   `json:"displayName"`
	Description                string   `json:"description,omitempty"`
	InputTokenLimit            int      `json:"inputTokenLimit"`
	OutputTokenLimit           int      `json:"outputTokenLimit"`
	SupportedGenerationMethods []string `json:"supportedGenerationMethods"`
	Temperature                float64  `json:"temperature"`
	MaxTemperature             float64  `json:"maxTemperature"`
	Thinking                   bool     `json:"thinking"`
}

// contextWindow is the input limit reported for a model whose context
// window the catalog does not know.
const contextWindow = 200000

// ModelEntry describes a model id (an Anthropic id, or an alias's target)
// for the model list, from what catalog c (nil: the built-in one) knows of
// it: display name, context window, output cap (or, when unknown, the
// max_tokens llmgw sends) and whether it thinks. Unknown ids get an entry
// too, named by their id: they pass through to the upstream unchanged.
func ModelEntry(id string, c *anthropic.Catalog) Model {
	if c == nil {
		c = anthropic.Builtin()
	}
	m, _ := c.Lookup(id)
	display := m.DisplayName
	if display == "" {
		display = id
	}
	in := m.ContextWindow
	if in == 0 {
		in = contextWindow
	}
	out := c.MaxTokensCap(id)
	if out == 0 {
		out = c.DefaultMaxTokens(id)
	}
	return Model{
		Name:                       "models/" + id,
		BaseModelID:                id,
		Version:                    "001",
		DisplayName:                display,
		InputTokenLimit:            in,
		OutputTokenLimit:           out,
		SupportedGenerationMethods: []string{"generateContent", "streamGenerateContent", "countTokens"},
		Temperature:                1,
		MaxTemperature:             1,
		Thinking:                   c.Thinking(id) != anthropic.ThinkingNone,
	}
}

// ModelList renders {"models":[…]}.
func ModelList(models []Model) ([]byte, error) {
	if models == nil {
		models = []Model{}
	}
	return json.Marshal(struct {
		Models []Model `json:"models"`
	}{models})
}

// countRequest is an Anthropic count_tokens body: the fields of a Messages
// request that count_tokens accepts.
type countRequest struct {
	Model      string                   `json:"model"`
	System     []anthropic.ContentBlock `json:"system,omitempty"`
	Messages   []anthropic.Message      `json:"messages"`
	Tools      []anthropic.Tool         `json:"tools,omitempty"`
	ToolChoice *anthropic.ToolChoice    `json:"tool_choice,omitempty"`
}

// CountTokensRequest translates a countTokens body ({"contents":…} or
// {"generateContentRequest":{…}}) into the body of Anthropic's
// /v1/messages/count_tokens, and returns the Anthropic model it names.
// Every error is a *RequestError.
func CountTokensRequest(model string, body []byte, opt DecodeOptions) ([]byte, string, Info, error) {
	var wrapper struct {
		GenerateContentRequest  json.RawMessage `json:"generateContentRequest"`
		GenerateContentRequest2 json.RawMessage `json:"generate_content_request"`
	}
	if json.Unmarshal(body, &wrapper) == nil {
		switch {
		case len(wrapper.GenerateContentRequest) > 0:
			body = wrapper.GenerateContentRequest
		case len(wrapper.GenerateContentRequest2) > 0:
			body = wrapper.GenerateContentRequest2
		}
	}
	req, info, err := Decode(model, body, opt)
	if err != nil {
		return nil, "", info, err
	}
	out, err := json.Marshal(countRequest{
		Model: req.Model, System: req.System, Messages: req.Messages, Tools: req.Tools, ToolChoice: req.ToolChoice,
	})
	if err != nil {
		// Unreachable: the request holds plain values and valid raw JSON.
		return nil, "", info, reqErr("", "llmgw could not encode the request")
	}
	return out, req.Model, info, nil
}

// CountTokensResult turns Anthropic's {"input_tokens":N} into Gemini's
// {"totalTokens":N}.
func CountTokensResult(body []byte) ([]byte, error) {
	var r struct {
		InputTokens *int64 `json:"input_tokens"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("decode count_tokens answer: %w", err)
	}
	if r.InputTokens == nil {
		return nil, fmt.Errorf("count_tokens answer has no input_tokens")
	}
	return json.Marshal(map[string]int64{"totalTokens": *r.InputTokens})
}

package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
)

// requestHead is the part of a Messages request the gateway reads. The rest
// of the body goes upstream byte for byte.
type requestHead struct {
	Model     string `json:"model"`
	Stream    bool   `json:"stream"`
	MaxTokens int    `json:"max_tokens"`
	Metadata  struct {
		UserID string `json:"user_id"`
	} `json:"metadata"`
	// The stable prefix, for session affinity; read in the same pass.
	Tools    span `json:"tools"`
	System   span `json:"system"`
	Messages span `json:"messages"`
}

// parseHead checks that body is a JSON object and reads its head.
func parseHead(body []byte, needModel bool) (requestHead, error) {
	var head requestHead
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return head, clientErr(http.StatusBadRequest, "invalid_request_error", "request body is empty: send a JSON object")
	}
	if trimmed[0] != '{' {
		return head, clientErr(http.StatusBadRequest, "invalid_request_error", "request body must be a JSON object")
	}
	if err := json.Unmarshal(trimmed, &head); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return head, clientErr(http.StatusBadRequest, "invalid_request_error",
				fmt.Sprintf("%s: expected %s, got %s", te.Field, te.Type, te.Value))
		}
		return head, clientErr(http.StatusBadRequest, "invalid_request_error", "request body is not valid JSON: "+err.Error())
	}
	if needModel && head.Model == "" {
		return head, clientErr(http.StatusBadRequest, "invalid_request_error", "model: field required")
	}
	return head, nil
}

// anthropicDialect is Anthropic Messages, passed through: the body goes
// upstream byte for byte, the answer comes back the same way, and an
// upstream error reaches the client as the upstream sent it.
type anthropicDialect struct{}

func (anthropicDialect) Name() string { return llmgw.DialectAnthropic }

func (anthropicDialect) Decode(r *http.Request, body []byte) (*Exchange, error) {
	head, err := parseHead(body, true)
	if err != nil {
		return nil, err
	}
	x := &Exchange{Model: head.Model, Stream: head.Stream, MaxTokens: head.MaxTokens, Body: body,
		Encoder: passthrough{requestID: entryFrom(r.Context()).id}}
	if id := head.Metadata.UserID; id != "" {
		x.Session = userSession(id)
	} else if len(head.Messages) > 0 {
		x.stable = [][]byte{head.Tools, head.System, head.Messages}
	}
	return x, nil
}

func (anthropicDialect) Error(e ErrorInfo) (int, []byte) {
	if e.Upstream != nil {
		return e.UpstreamStatus, e.Upstream
	}
	return e.Status, anthropic.MarshalError(e.Type, e.Message, e.RequestID)
}

// countTokens serves POST /v1/messages/count_tokens by forwarding it to an
// account. It is not an inference request and leaves no usage row.
func (s *Server) countTokens(w http.ResponseWriter, r *http.Request) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	head, err := parseHead(body, true)
	if err != nil {
		return err
	}
	entryFrom(r.Context()).model = head.Model
	res, err := s.do(r.Context(), &call{
		method: http.MethodPost, path: "/v1/messages/count_tokens", query: upstreamQuery(r),
		header: upstreamHeader(r.Header), body: body, model: head.Model, key: keyName(r),
	})
	if err != nil {
		return err
	}
	defer res.close()
	entryFrom(r.Context()).account = res.account.Name
	return passBuffered(w, res)
}

// passBuffered writes a non-stream upstream answer unchanged.
func passBuffered(w http.ResponseWriter, res *result) error {
	passHeaders(w.Header(), res.header, true)
	w.WriteHeader(res.status)
	_, _ = w.Write(res.body)
	return nil
}

// models serves GET /v1/models and /v1/models/{id} from an account, or from
// the built-in list when no account can answer. The answer is one document
// both SDK families read: Anthropic's fields (type, display_name,
// created_at, has_more, first_id, last_id) next to OpenAI's (object,
// created, owned_by).
func (s *Server) models(w http.ResponseWriter, r *http.Request) error {
	path := "/v1/models"
	id, err := modelParam(r, "id")
	if err != nil {
		return err
	}
	if id != "" {
		path += "/" + url.PathEscape(id)
	}
	res, err := s.do(r.Context(), &call{
		method: http.MethodGet, path: path, query: upstreamQuery(r), header: upstreamHeader(r.Header), key: keyName(r),
	})
	if err == nil {
		defer res.close()
		if res.status < 300 {
			entryFrom(r.Context()).account = res.account.Name
			if out, ok := dualShapeModels(res.body, id != ""); ok {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(out)
				return nil
			}
		}
	} else if r.Context().Err() != nil {
		return err
	}
	return writeCatalogModels(w, s.cfg.Catalog, id)
}

// modelParam returns the model id in the path parameter name, decoded and
// checked: upstream paths are built from it, so it must stay one segment.
func modelParam(r *http.Request, name string) (string, error) {
	raw := chi.URLParam(r, name)
	id, err := url.PathUnescape(raw)
	if err != nil || !validModelID(id) {
		return "", clientErr(http.StatusNotFound, "not_found_error", "model: not a valid model id: "+strconv.Quote(raw))
	}
	return id, nil
}

// validModelID reports whether id is empty or a plausible model id: letters,
// digits and . _ - : @, starting with a letter or digit (so never a dot
// segment), at most 256 bytes. Anthropic's and Gemini's ids all fit.
func validModelID(id string) bool {
	if len(id) > 256 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-' || c == ':' || c == '@'):
		default:
			return false
		}
	}
	return true
}

// dualShapeModels adds OpenAI's fields to an Anthropic model list (or single
// model). ok is false if body is not one.
func dualShapeModels(body []byte, single bool) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc map[string]any
	if dec.Decode(&doc) != nil {
		return nil, false
	}
	if single {
		addOpenAIModelFields(doc)
		out, err := json.Marshal(doc)
		return out, err == nil
	}
	items, ok := doc["data"].([]any)
	if !ok {
		return nil, false
	}
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			addOpenAIModelFields(m)
		}
	}
	doc["object"] = "list"
	out, err := json.Marshal(doc)
	return out, err == nil
}

func addOpenAIModelFields(m map[string]any) {
	m["object"] = "model"
	m["owned_by"] = "anthropic"
	created := int64(0)
	if s, ok := m["created_at"].(string); ok {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			created = t.Unix()
		}
	}
	m["created"] = created
}

// modelInfo is one model in both SDK families' shapes.
type modelInfo struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	CreatedAt   string `json:"created_at"`
	// MaxInputTokens and MaxTokens are the limits Anthropic's list has
	// carried since March 2026; left out where the catalog does not know
	// them.
	MaxInputTokens int    `json:"max_input_tokens,omitempty"`
	MaxTokens      int    `json:"max_tokens,omitempty"`
	Object         string `json:"object"`
	Created        int64  `json:"created"`
	OwnedBy        string `json:"owned_by"`
}

// writeCatalogModels answers /v1/models from the model catalog when no
// account can: the models on offer, newest first, as the API lists them,
// with their context window and output cap. A model without a release day
// is listed as created at the Unix epoch.
func writeCatalogModels(w http.ResponseWriter, c *anthropic.Catalog, id string) error {
	var list []modelInfo
	for _, m := range c.Models() {
		if m.Created.IsZero() {
			m.Created = time.Unix(0, 0).UTC()
		}
		info := modelInfo{Type: "model", ID: m.SnapshotID(), DisplayName: m.DisplayName,
			CreatedAt: m.Created.Format(time.RFC3339), MaxInputTokens: m.ContextWindow, MaxTokens: m.MaxOutputTokens,
			Object: "model", Created: m.Created.Unix(), OwnedBy: "anthropic"}
		if id == m.SnapshotID() || id == m.ID {
			w.Header().Set("Content-Type", "application/json")
			return json.NewEncoder(w).Encode(info)
		}
		list = append(list, info)
	}
	if id != "" {
		return clientErr(http.StatusNotFound, "not_found_error", "model: "+id)
	}
	doc := map[string]any{"object": "list", "data": list, "has_more": false, "first_id": nil, "last_id": nil}
	if len(list) > 0 {
		doc["first_id"], doc["last_id"] = list[0].ID, list[len(list)-1].ID
	} else {
		doc["data"] = []modelInfo{}
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(doc)
}

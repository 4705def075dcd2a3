package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/gemini"
)

// geminiMethod serves POST /v1beta/models/{model}:{method} (and Gemini's v1
// paths): generateContent and streamGenerateContent are inference, through
// the Gemini dialect; countTokens is a side call.
func (s *Server) geminiMethod(w http.ResponseWriter, r *http.Request) error {
	model, method, err := geminiTarget(r)
	if err != nil {
		return err
	}
	switch method {
	case "generateContent", "streamGenerateContent":
		return s.infer(s.dialects.gemini)(w, r)
	case "countTokens":
		return s.geminiCountTokens(w, r, model)
	case "":
		return clientErr(http.StatusNotFound, "not_found_error",
			fmt.Sprintf("name a method: models/%s:generateContent, :streamGenerateContent or :countTokens", model))
	}
	return clientErr(http.StatusNotFound, "not_found_error",
		fmt.Sprintf("llmgw does not serve %s; it serves generateContent, streamGenerateContent and countTokens", method))
}

// geminiDialect is Google's Gemini generateContent and
// streamGenerateContent (alt=sse, or a JSON array without it).
type geminiDialect struct{ opt gemini.DecodeOptions }

func (geminiDialect) Name() string { return llmgw.DialectGemini }

func (d geminiDialect) Decode(r *http.Request, body []byte) (*Exchange, error) {
	model, method, err := geminiTarget(r)
	if err != nil {
		return nil, err
	}
	stream := method == "streamGenerateContent"
	jsonArray := false
	if stream {
		switch alt := r.URL.Query().Get("alt"); alt {
		case "sse":
		case "", "json":
			jsonArray = true
		default:
			return nil, clientErr(http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("alt=%s is not supported; use alt=sse", alt))
		}
	}
	req, info, err := gemini.Decode(model, body, d.opt)
	if err != nil {
		return nil, geminiRequestError(err)
	}
	info.Stream, info.JSONArray = stream, jsonArray
	x := &Exchange{Model: req.Model, Stream: stream, Request: req,
		Encoder: translated{gemini.NewEncoder(info)},
		Final:   func(acc *anthropic.Accumulator) ([]byte, error) { return gemini.Result(acc, info) },
		Notes:   geminiNotes(info),
	}
	if jsonArray {
		x.ContentType = "application/json"
	}
	return x, nil
}

func (geminiDialect) Error(e ErrorInfo) (int, []byte) {
	return gemini.ErrorBody(e.Status, e.Type, e.Message)
}

// geminiTarget reads the model and the method from the {rest} of
// /v1beta/models/{rest}; the model id must be a valid one.
func geminiTarget(r *http.Request) (model, method string, err error) {
	model, method = splitGeminiTarget(chi.URLParam(r, "rest"))
	if !validModelID(model) {
		return "", "", clientErr(http.StatusNotFound, "not_found_error", "model: not a valid model id: "+strconv.Quote(model))
	}
	return model, method, nil
}

// splitGeminiTarget splits {rest} into the model and the method after the
// last colon.
func splitGeminiTarget(rest string) (model, method string) {
	if u, err := url.PathUnescape(rest); err == nil {
		rest = u
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return rest, ""
	}
	return rest[:i], rest[i+1:]
}

// geminiRequestError turns a decoding error into a 400 for the client.
func geminiRequestError(err error) error {
	var re *gemini.RequestError
	if errors.As(err, &re) {
		return clientErr(http.StatusBadRequest, "invalid_request_error", re.Error())
	}
	return fmt.Errorf("decode gemini request: %w", err)
}

// geminiNotes says, for the debug log, what a Gemini request carried that
// llmgw ignores or had to make up (real clients send some on every request).
func geminiNotes(info gemini.Info) []slog.Attr {
	if len(info.Ignored) == 0 && info.SynthesizedIDs == 0 && info.Orphans == 0 && len(info.Notes) == 0 {
		return nil
	}
	return []slog.Attr{slog.Any("ignored", info.Ignored), slog.Int("synthesized_call_ids", info.SynthesizedIDs),
		slog.Int("orphan_responses", info.Orphans), slog.Any("notes", info.Notes)}
}

// geminiCountTokens serves :countTokens by asking an account's
// /v1/messages/count_tokens. Like the Anthropic route it leaves no usage row.
func (s *Server) geminiCountTokens(w http.ResponseWriter, r *http.Request, model string) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	out, upstreamModel, info, err := gemini.CountTokensRequest(model, body, gemini.DecodeOptions{Aliases: s.cfg.Aliases, Models: s.cfg.Catalog})
	if err != nil {
		return geminiRequestError(err)
	}
	if notes := geminiNotes(info); notes != nil {
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "request simplified",
			append([]slog.Attr{slog.String("request_id", entryFrom(r.Context()).id), slog.String("dialect", llmgw.DialectGemini)}, notes...)...)
	}
	entryFrom(r.Context()).model = upstreamModel
	header := http.Header{}
	header.Set("Content-Type", "application/json")
	header.Set("Anthropic-Version", "2023-06-01")
	res, err := s.do(r.Context(), &call{
		method: http.MethodPost, path: "/v1/messages/count_tokens", header: header, body: out, model: upstreamModel,
	})
	if err != nil {
		return err
	}
	defer res.close()
	entryFrom(r.Context()).account = res.account.Name
	passHeaders(w.Header(), res.header, false)
	answer := res.body
	w.Header().Set("Content-Type", "application/json")
	if res.status >= 400 {
		d := anthropic.ParseError(answer)
		code, b := gemini.ErrorBody(res.status, nonEmpty(d.Type, anthropic.ErrorType(res.status)), nonEmpty(d.Message, http.StatusText(res.status)))
		w.WriteHeader(code)
		_, _ = w.Write(b)
		return nil
	}
	result, err := gemini.CountTokensResult(answer)
	if err != nil {
		return err
	}
	_, _ = w.Write(result)
	return nil
}

// geminiModels serves GET /v1beta/models and /v1beta/models/{model} from
// the model catalog and the configured aliases. An id not in either
// still gets an entry: unknown models pass through to the upstream.
func (s *Server) geminiModels(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	if rest := chi.URLParam(r, "rest"); rest != "" {
		id, _ := splitGeminiTarget(rest)
		id = strings.TrimPrefix(id, "models/")
		if !validModelID(id) {
			return clientErr(http.StatusNotFound, "not_found_error", "model: not a valid model id: "+strconv.Quote(id))
		}
		return geminiWriteJSON(w, s.geminiModel(id))
	}
	var list []gemini.Model
	for _, m := range s.cfg.Catalog.Models() {
		list = append(list, gemini.ModelEntry(m.SnapshotID(), s.cfg.Catalog))
	}
	aliases := make([]string, 0, len(s.cfg.Aliases))
	for a := range s.cfg.Aliases {
		aliases = append(aliases, a)
	}
	sort.Strings(aliases)
	for _, a := range aliases {
		list = append(list, s.geminiModel(a))
	}
	b, err := gemini.ModelList(list)
	if err != nil {
		return fmt.Errorf("encode model list: %w", err)
	}
	_, _ = w.Write(b)
	return nil
}

// geminiModel describes one model id, following an alias to its target.
func (s *Server) geminiModel(id string) gemini.Model {
	target := id
	if a, ok := s.cfg.Aliases[id]; ok && a != "" {
		target = a
	}
	e := gemini.ModelEntry(target, s.cfg.Catalog)
	if target != id {
		e.Name, e.BaseModelID = "models/"+id, id
		e.Description = "alias of " + target
	}
	return e
}

func geminiWriteJSON(w http.ResponseWriter, v any) error {
	b, err := marshalNoEscape(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	_, _ = w.Write(b)
	return nil
}

package proxy

import (
	"errors"
	"fmt"
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

// geminiGenerate serves POST /v1beta/models/{model}:generateContent,
// :streamGenerateContent (alt=sse, or a JSON array without it) and
// :countTokens.
func (s *Server) geminiGenerate(w http.ResponseWriter, r *http.Request) error {
	model, action := geminiTarget(chi.URLParam(r, "rest"))
	if !validModelID(model) {
		return clientErr(http.StatusNotFound, "not_found_error", "model: not a valid model id: "+strconv.Quote(model))
	}
	switch action {
	case "generateContent", "streamGenerateContent":
	case "countTokens":
		return s.geminiCountTokens(w, r, model)
	case "":
		return clientErr(http.StatusNotFound, "not_found_error",
			fmt.Sprintf("name a method: models/%s:generateContent, :streamGenerateContent or :countTokens", model))
	default:
		return clientErr(http.StatusNotFound, "not_found_error",
			fmt.Sprintf("llmgw does not serve %s; it serves generateContent, streamGenerateContent and countTokens", action))
	}
	stream := action == "streamGenerateContent"
	jsonArray := false
	if stream {
		switch alt := r.URL.Query().Get("alt"); alt {
		case "sse":
		case "", "json":
			jsonArray = true
		default:
			return clientErr(http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("alt=%s is not supported; use alt=sse", alt))
		}
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	req, info, err := gemini.Decode(model, body, gemini.DecodeOptions{Aliases: s.cfg.Aliases})
	if err != nil {
		return geminiRequestError(err)
	}
	info.Stream, info.JSONArray = stream, jsonArray
	s.logGeminiDrops(r, info)
	contentType := "text/event-stream"
	if jsonArray {
		contentType = "application/json"
	}
	return s.convert(w, r, &conversion{
		dialect:     llmgw.DialectGemini,
		request:     req,
		stream:      stream,
		encoder:     gemini.NewEncoder(info),
		final:       func(acc *anthropic.Accumulator) ([]byte, error) { return gemini.Result(acc, info) },
		contentType: contentType,
	})
}

// geminiTarget splits the {rest} of /v1beta/models/{rest} into the model
// and the method after the last colon.
func geminiTarget(rest string) (model, action string) {
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

// logGeminiDrops notes, at debug level, the fields a request carried that
// llmgw ignores (real clients send some on every request).
func (s *Server) logGeminiDrops(r *http.Request, info gemini.Info) {
	if len(info.Ignored) == 0 && info.SynthesizedIDs == 0 && info.Orphans == 0 {
		return
	}
	s.log.DebugContext(r.Context(), "gemini request simplified", "request_id", entryFrom(r.Context()).id,
		"dialect", llmgw.DialectGemini, "ignored", info.Ignored, "synthesized_call_ids", info.SynthesizedIDs,
		"orphan_responses", info.Orphans)
}

// geminiCountTokens serves :countTokens by asking an account's
// /v1/messages/count_tokens. Like the Anthropic route it leaves no usage row.
func (s *Server) geminiCountTokens(w http.ResponseWriter, r *http.Request, model string) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	out, upstreamModel, info, err := gemini.CountTokensRequest(model, body, gemini.DecodeOptions{Aliases: s.cfg.Aliases})
	if err != nil {
		return geminiRequestError(err)
	}
	s.logGeminiDrops(r, info)
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
	passRetryHeaders(w.Header(), res.header)
	answer := res.body
	w.Header().Set("Content-Type", "application/json")
	if res.status >= 400 {
		d := anthropic.ParseError(answer)
		code, b := geminiErrorBody(res.status, nonEmpty(d.Type, anthropic.ErrorType(res.status)), nonEmpty(d.Message, http.StatusText(res.status)))
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
// the built-in model list and the configured aliases. An id not in either
// still gets an entry: unknown models pass through to the upstream.
func (s *Server) geminiModels(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	if rest := chi.URLParam(r, "rest"); rest != "" {
		id, _ := geminiTarget(rest)
		id = strings.TrimPrefix(id, "models/")
		if !validModelID(id) {
			return clientErr(http.StatusNotFound, "not_found_error", "model: not a valid model id: "+strconv.Quote(id))
		}
		return geminiWriteJSON(w, s.geminiModel(id))
	}
	var list []gemini.Model
	for _, m := range builtinModels {
		list = append(list, gemini.ModelEntry(m.id, m.name))
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
	target, display := id, ""
	if a, ok := s.cfg.Aliases[id]; ok && a != "" {
		target = a
	}
	for _, m := range builtinModels {
		if m.id == target {
			display = m.name
		}
	}
	e := gemini.ModelEntry(target, display)
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

// geminiErrorBody renders an error in Google's shape, with the status each
// Google SDK maps to its error type.
func geminiErrorBody(status int, errType, msg string) (int, []byte) {
	return gemini.ErrorBody(status, errType, msg)
}

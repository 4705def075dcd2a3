package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/sse"
)

// readBody reads the whole request body once, within the size limit, so it
// can be replayed on another account. The bytes count against the
// process-wide body memory until releaseBody. Once the body is in, the read
// deadline serveRequest set is lifted, so it cannot cut the answer.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	e := entryFrom(r.Context())
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, errTooLarge(s.cfg.MaxBodyBytes)
	}
	factor := int64(1)
	if e.dialect != llmgw.DialectAnthropic {
		factor = convertedBodyFactor
	}
	if limit := s.cfg.MaxBodyMemory / factor; r.ContentLength > limit {
		return nil, clientErr(http.StatusRequestEntityTooLarge, "request_too_large",
			fmt.Sprintf("request body is larger than this gateway's memory budget allows for it (%d bytes)", limit))
	}
	var body []byte
	var err error
	if n := r.ContentLength; n > 0 {
		if !s.chargeBody(e, n*factor) {
			return nil, &errSaturated{limit: s.cfg.MaxBodyMemory}
		}
		body = make([]byte, n)
		_, err = io.ReadFull(r.Body, body)
	} else {
		// Chunked: charge as the bytes arrive.
		body, err = io.ReadAll(&chargedReader{r: http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes), s: s, e: e, factor: factor})
	}
	var (
		tooBig *http.MaxBytesError
		sat    *errSaturated
	)
	switch {
	case err == nil:
		e.bodyRead = true
		_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
		return body, nil
	case errors.As(err, &tooBig):
		return nil, errTooLarge(s.cfg.MaxBodyBytes)
	case errors.As(err, &sat):
		return nil, err
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, clientErr(http.StatusRequestTimeout, "invalid_request_error",
			fmt.Sprintf("the request body did not arrive within %s", s.cfg.BodyReadTimeout))
	case r.Context().Err() != nil, errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return nil, errClientGone
	default:
		// Malformed chunked encoding and the like: the client's fault.
		return nil, clientErr(http.StatusBadRequest, "invalid_request_error", "the request body could not be read: "+err.Error())
	}
}

func errTooLarge(limit int64) error {
	return clientErr(http.StatusRequestEntityTooLarge, "request_too_large",
		fmt.Sprintf("request body is larger than the limit of %d bytes", limit))
}

// chargeBody takes n bytes of the body memory budget for e's request.
func (s *Server) chargeBody(e *entry, n int64) bool {
	if !s.bodyMem.TryAcquire(n) {
		return false
	}
	e.memHeld += n
	return true
}

// releaseBody gives back the body memory r's request holds: call it once no
// copy of the body is needed any more.
func (s *Server) releaseBody(r *http.Request) {
	e := entryFrom(r.Context())
	if e.memHeld > 0 {
		s.bodyMem.Release(e.memHeld)
		e.memHeld = 0
	}
}

// convertedBodyFactor is what a converted request's body costs in memory,
// in multiples of its size: decoding it into the dialect's types, building
// the Anthropic request and encoding it made the peak heap 8 (Chat,
// Responses) to 13 (Gemini) times the body in BenchmarkBodyMemory, while a
// pass-through body costs about itself.
const convertedBodyFactor = 16

// chargedReader charges the bytes it reads, times factor, against the body
// memory budget.
type chargedReader struct {
	r      io.Reader
	s      *Server
	e      *entry
	factor int64
}

func (c *chargedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && !c.s.chargeBody(c.e, int64(n)*c.factor) {
		return n, &errSaturated{limit: c.s.cfg.MaxBodyMemory}
	}
	return n, err
}

// requestHead is the part of a Messages request the gateway reads. The rest
// of the body goes upstream byte for byte.
type requestHead struct {
	Model  string `json:"model"`
	Stream bool   `json:"stream"`
}

// readMessagesRequest reads and checks a Messages-shaped request body.
func (s *Server) readMessagesRequest(w http.ResponseWriter, r *http.Request) ([]byte, requestHead, error) {
	body, err := s.readBody(w, r)
	if err != nil {
		return nil, requestHead{}, err
	}
	head, err := parseHead(body, true)
	return body, head, err
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

// messages serves POST /v1/messages: Anthropic in, Anthropic out.
func (s *Server) messages(w http.ResponseWriter, r *http.Request) error {
	body, head, err := s.readMessagesRequest(w, r)
	if err != nil {
		return err
	}
	u := s.beginUsage(r, llmgw.DialectAnthropic, head.Model, head.Stream)
	var open *opening
	if head.Stream {
		open = s.holdOpening(w, entryFrom(r.Context()), "text/event-stream", anthropicFail(u.RequestID))
	}
	res, err := s.do(r.Context(), &call{
		method: http.MethodPost, path: "/v1/messages", query: upstreamQuery(r),
		header: upstreamHeader(r.Header), body: body, model: head.Model, stream: head.Stream, usage: u, key: keyName(r),
	})
	open.end()
	s.releaseBody(r)
	if err != nil {
		return err
	}
	defer res.close()
	s.deliver(w, r, res, u, open)
	return nil
}

// anthropicFail writes an error as an Anthropic stream's error event.
func anthropicFail(requestID string) func(io.Writer, string, string) error {
	return func(w io.Writer, errType, msg string) error {
		_, err := w.Write(sse.Frame("error", anthropic.MarshalError(errType, msg, requestID)))
		return err
	}
}

// beginUsage starts the usage record of an inference request. The request's
// end (serveRequest) completes it and hands it to the recorder.
func (s *Server) beginUsage(r *http.Request, dialect, model string, stream bool) *llmgw.Usage {
	e := entryFrom(r.Context())
	e.model = model
	u := &llmgw.Usage{
		Time: s.cfg.Now(), RequestID: e.id, Model: model, Dialect: dialect, Stream: stream,
	}
	if k := e.key; k != nil {
		u.KeyID, u.KeyName = k.ID, k.Name
	}
	e.usage = u
	return u
}

// finishUsage completes the record and hands it to the recorder. It runs
// after the client has its answer, whatever happened.
func (s *Server) finishUsage(e *entry, u *llmgw.Usage) {
	u.Duration = s.cfg.Now().Sub(u.Time)
	if u.Status == 0 {
		u.Status = statusClientClosed // the client left before any answer
		u.ErrorType = nonEmpty(u.ErrorType, "client_closed_request")
	}
	if n := len(u.Attempts); n > 0 && u.AccountID == 0 {
		last := u.Attempts[n-1]
		u.AccountID, u.AccountName = last.AccountID, last.AccountName
	}
	e.account = u.AccountName
	s.rec.Record(*u)
}

// deliver writes an upstream answer to an Anthropic client unchanged, and
// fills in u from what passes by.
func (s *Server) deliver(w http.ResponseWriter, r *http.Request, res *result, u *llmgw.Usage, open *opening) {
	u.AccountID, u.AccountName = res.account.ID, res.account.Name
	u.UpstreamID = res.header.Get("Request-Id")
	if !open.isCommitted() {
		copyResponseHeader(w.Header(), res.header)
	}
	switch {
	case res.events != nil:
		s.deliverStream(w, r, res, u, open)
		return
	case res.streamErr != nil: // every try ended in a stream error event
		u.ErrorType, u.ErrorMessage = nonEmpty(res.streamErr.Type, "api_error"), res.streamErr.Message
		u.EndedEarly = true
	case res.status >= 400:
		d := anthropic.ParseError(res.body)
		u.ErrorType, u.ErrorMessage = nonEmpty(d.Type, anthropic.ErrorType(res.status)), d.Message
	default:
		var msg anthropic.MessageHead
		if json.Unmarshal(res.body, &msg) == nil {
			msg.Usage.ApplyTo(&u.Tokens)
		}
	}
	u.TTFB = s.cfg.Now().Sub(u.Time)
	if open.isCommitted() {
		// The stream is open for keep-alives: a refusal is its error event.
		u.Status, u.EndedEarly = http.StatusOK, true
		open.failWith(nonEmpty(u.ErrorType, "api_error"), nonEmpty(u.ErrorMessage, "the upstream answered without a stream"))
		return
	}
	u.Status = res.status
	w.WriteHeader(res.status)
	_, _ = w.Write(res.body)
}

// deliverStream passes an SSE stream through event by event, flushing each,
// and tallies usage on the way. If the upstream breaks off, the client gets an
// Anthropic error event and a clean end instead of a dropped connection.
func (s *Server) deliverStream(w http.ResponseWriter, r *http.Request, res *result, u *llmgw.Usage, open *opening) {
	rc := http.NewResponseController(w)
	if !open.isCommitted() {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Accel-Buffering", "no")
		w.WriteHeader(res.status)
	}
	u.Status = res.status
	var tally anthropic.Tally
	defer func() {
		u.Tokens = tally.Tokens
		if tally.Err != nil {
			u.ErrorType, u.ErrorMessage = tally.Err.Type, tally.Err.Message
		}
		u.EndedEarly = !tally.Stopped
	}()
	first := true
	ka := newKeepAlive(res.events, s.cfg.KeepAlive)
	defer ka.stop()
	for {
		ev, err := ka.next()
		if err != nil {
			if r.Context().Err() != nil {
				u.ErrorType = "client_closed_request"
				return
			}
			if errors.Is(err, io.EOF) && (tally.Stopped || tally.Err != nil) {
				return
			}
			// A stream that broke or ended without message_stop.
			msg := streamEndMessage(err)
			if tally.Err == nil {
				tally.Err = &anthropic.ErrorDetail{Type: "api_error", Message: msg}
				_, _ = w.Write(sse.Frame("error", anthropic.MarshalError("api_error", msg, u.RequestID)))
				_ = rc.Flush()
			}
			return
		}
		tally.Observe(ev.Name, ev.Data)
		if _, err := w.Write(ev.Raw); err != nil {
			u.ErrorType = "client_closed_request"
			return
		}
		// Flush before the next read could wait on the upstream; events that
		// arrived together go out in one write.
		if ka.idle() {
			if err := rc.Flush(); err != nil {
				u.ErrorType = "client_closed_request"
				return
			}
		}
		if first {
			u.TTFB = s.cfg.Now().Sub(u.Time)
			first = false
		}
	}
}

// streamEndMessage says why an upstream stream ended before message_stop.
func streamEndMessage(err error) string {
	if errors.Is(err, sse.ErrFrameTooLarge) {
		return fmt.Sprintf("the upstream sent an event larger than %d bytes", sse.MaxFrame)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the upstream stream ended before the message was complete"
	}
	return "the upstream connection broke mid-stream"
}

// countTokens serves POST /v1/messages/count_tokens by forwarding it to an
// account. It is not an inference request and leaves no usage row.
func (s *Server) countTokens(w http.ResponseWriter, r *http.Request) error {
	body, head, err := s.readMessagesRequest(w, r)
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
	copyResponseHeader(w.Header(), res.header)
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
	return writeBuiltinModels(w, id)
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

// builtinModels answers /v1/models when no account can. Listed newest first,
// as the API does.
var builtinModels = []struct{ id, name, created string }{
	{"claude-opus-4-5-20251101", "Claude Opus 4.5", "2025-11-01T00:00:00Z"},
	{"claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-01T00:00:00Z"},
	{"claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z"},
	{"claude-opus-4-1-20250805", "Claude Opus 4.1", "2025-08-05T00:00:00Z"},
	{"claude-opus-4-20250514", "Claude Opus 4", "2025-05-14T00:00:00Z"},
	{"claude-sonnet-4-20250514", "Claude Sonnet 4", "2025-05-14T00:00:00Z"},
	{"claude-3-5-haiku-20241022", "Claude Haiku 3.5", "2024-10-22T00:00:00Z"},
}

// modelInfo is one model in both SDK families' shapes.
type modelInfo struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	CreatedAt   string `json:"created_at"`
	Object      string `json:"object"`
	Created     int64  `json:"created"`
	OwnedBy     string `json:"owned_by"`
}

func writeBuiltinModels(w http.ResponseWriter, id string) error {
	var list []modelInfo
	for _, m := range builtinModels {
		created, _ := time.Parse(time.RFC3339, m.created)
		info := modelInfo{Type: "model", ID: m.id, DisplayName: m.name, CreatedAt: m.created,
			Object: "model", Created: created.Unix(), OwnedBy: "anthropic"}
		if id == m.id {
			w.Header().Set("Content-Type", "application/json")
			return json.NewEncoder(w).Encode(info)
		}
		list = append(list, info)
	}
	if id != "" {
		return clientErr(http.StatusNotFound, "not_found_error", "model: "+id)
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(map[string]any{
		"object": "list", "data": list, "has_more": false, "first_id": list[0].ID, "last_id": list[len(list)-1].ID,
	})
}

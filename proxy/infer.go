package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
)

// routes is the route table: the inference routes first, one dialect each,
// all served by infer; then the side calls. This file is where a request's
// road starts: infer (below), the dialect's Decode (chat.go, responses.go,
// gemini.go, messages.go), do and attempt (forward.go), answer and pump
// (pump.go), the dialect's encoder, and writeError (errors.go) for what
// fails.
func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(s.serveRequest)
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Get("/metrics", s.serveMetrics) // its own token, never a client key
	// Claude Code probes its gateway with HEAD / before it starts; answer
	// without a key and without asking any account.
	r.Head("/", s.root)
	r.Get("/", s.root)
	// Codex dials a WebSocket here first and falls back to HTTP on a 426;
	// answered before authentication, as it asks nothing of an account.
	r.Get("/v1/responses", s.wrap(s.responsesWebSocket))
	r.Group(func(r chi.Router) {
		r.Use(s.authenticate)
		// Inference: one handler, one dialect each.
		r.Post("/v1/messages", s.wrap(s.infer(s.dialects.anthropic)))
		r.Post("/v1/chat/completions", s.wrap(s.infer(s.dialects.chat)))
		r.Post("/v1/responses", s.wrap(s.infer(s.dialects.responses)))
		r.Post("/v1beta/models/{rest}", s.wrap(s.geminiMethod)) // generateContent, streamGenerateContent, countTokens
		r.Post("/v1/models/{rest}", s.wrap(s.geminiMethod))     // Gemini's v1 paths; Anthropic has no POST here
		// Side calls: no usage row.
		r.Post("/v1/messages/count_tokens", s.wrap(s.countTokens))
		r.Get("/v1/models", s.wrap(s.models))
		r.Get("/v1/models/{id}", s.wrap(s.models))
		r.Get("/v1beta/models", s.wrap(s.geminiModels))
		r.Get("/v1beta/models/{rest}", s.wrap(s.geminiModels))
		r.NotFound(s.wrap(func(w http.ResponseWriter, r *http.Request) error {
			return clientErr(http.StatusNotFound, "not_found_error", "no route for "+r.Method+" "+r.URL.Path)
		}))
		r.MethodNotAllowed(s.wrap(func(w http.ResponseWriter, r *http.Request) error {
			return clientErr(http.StatusMethodNotAllowed, "invalid_request_error", "method "+r.Method+" is not allowed on "+r.URL.Path)
		}))
	})
	return r
}

// handlerFunc is a handler that returns its error for writeError.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) wrap(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// infer is the one handler of every inference route: read the body once,
// let the dialect decode it, choose an account and send it (do, in
// forward.go), answer in the client's dialect (answer, in pump.go). Errors
// go back to the route's wrapper, which renders them through writeError;
// serveRequest records the usage row once the client has its answer.
func (s *Server) infer(d Dialect) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		body, err := s.readBody(w, r)
		if err != nil {
			return err
		}
		x, err := d.Decode(r, body)
		if err != nil {
			return err
		}
		if len(x.Notes) > 0 {
			s.log.LogAttrs(r.Context(), slog.LevelDebug, "request simplified",
				append([]slog.Attr{slog.String("request_id", entryFrom(r.Context()).id), slog.String("dialect", d.Name())}, x.Notes...)...)
		}
		c := &call{method: http.MethodPost, path: "/v1/messages", model: x.Model, key: keyName(r)}
		if x.Request != nil {
			x.Request.Stream = x.Stream || !shortAnswer(x.Request)
			x.Request.AddCacheBreakpoints()
			if c.body, err = marshalNoEscape(x.Request); err != nil {
				return fmt.Errorf("encode upstream request: %w", err)
			}
			c.header, c.stream, c.whole = convertedHeader(r), x.Request.Stream, !x.Stream
		} else {
			c.body, c.query, c.header, c.stream = x.Body, upstreamQuery(r), upstreamHeader(r.Header), x.Stream
		}
		if !s.cfg.NoAffinity {
			if session := sessionOf(r, x, c.body); session != "" {
				c.session, c.ttl = c.key+"\x00"+session, cacheTTL(c.body)
			}
		}
		e := entryFrom(r.Context())
		u := s.beginUsage(e, d.Name(), x.Model, x.Stream)
		c.usage = u
		release, err := s.admit(r.Context(), e, x, len(body))
		defer release()
		if err != nil {
			return err
		}
		if x.Stream {
			s.holdOpening(w, e, x.contentType(), x.Encoder)
		}
		res, err := s.do(r.Context(), c)
		e.open.end()
		s.releaseBody(r)
		if err != nil {
			return err
		}
		defer res.close()
		return s.answer(w, r, res, x, u)
	}
}

// shortAnswerMaxTokens is the largest max_tokens shortAnswer accepts: the
// smallest output the Anthropic SDKs still allow a non-streaming call for
// on every model (they refuse larger ones on some models, and from 21,333
// tokens on every model, as answers that may outlast 10 minutes).
const shortAnswerMaxTokens = 8192

// shortAnswer reports whether a converted request whose client wants the
// answer whole may ask the upstream for it whole too. Such answers are
// otherwise streamed and rebuilt (idle connections are not dropped on a
// long answer; one parser): a whole answer costs the upstream and llmgw
// far less per request, but stays silent until it is done, so it is kept
// to answers that end soon: a bounded max_tokens and no extended thinking,
// which can think for long before its first word.
func shortAnswer(req *anthropic.Request) bool {
	thinks := req.Thinking != nil && req.Thinking.Type != "" && req.Thinking.Type != "disabled"
	return req.MaxTokens > 0 && req.MaxTokens <= shortAnswerMaxTokens && !thinks
}

// convertedHeader is the header of a converted request: Anthropic's, plus
// the beta flags the client asked for.
func convertedHeader(r *http.Request) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Anthropic-Version", "2023-06-01")
	if beta := r.Header.Values("Anthropic-Beta"); len(beta) > 0 {
		h["Anthropic-Beta"] = beta
	}
	return h
}

// beginUsage starts the usage record of an inference request. The request's
// end (serveRequest) completes it and hands it to the recorder.
func (s *Server) beginUsage(e *entry, dialect, model string, stream bool) *llmgw.Usage {
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
	s.settle(e, u)
	if m := s.cfg.Metrics; m != nil {
		m.observe(s.cfg.Catalog, u)
	}
	s.rec.Record(*u)
}

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
	if e.dialect.Name() != llmgw.DialectAnthropic {
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

// marshalNoEscape encodes v without HTML escaping: prompts must reach the
// upstream exactly as written.
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
)

// StreamEncoder turns Anthropic stream events into a client dialect's
// frames. The dialect packages implement it; the proxy feeds it every
// upstream event in order and flushes after each call.
type StreamEncoder interface {
	// Event handles one upstream event (ping included), writing zero or
	// more frames to w.
	Event(w io.Writer, name string, data []byte) error
	// Fail ends the stream with the dialect's error form: the upstream sent
	// an error event, broke off, or ended without message_stop. It is called
	// at most once, and no Event follows.
	Fail(w io.Writer, errType, message string) error
}

// conversion is one client request converted to Anthropic.
type conversion struct {
	dialect string
	request *anthropic.Request
	stream  bool          // the client asked for a stream
	encoder StreamEncoder // for streams
	// final builds the non-streaming answer from the whole upstream stream.
	final func(acc *anthropic.Accumulator) ([]byte, error)
	// contentType of the stream; default text/event-stream.
	contentType string
}

// dialectFor names the client dialect of a request, so that every error on
// its path, authentication included, is in the client's shape.
func dialectFor(method, path string) string {
	switch {
	case method == http.MethodPost && strings.HasPrefix(path, "/v1/models/"):
		return llmgw.DialectGemini // Gemini's v1 generateContent paths
	case strings.HasPrefix(path, "/v1/chat/"):
		return llmgw.DialectOpenAI
	case strings.HasPrefix(path, "/v1/responses"):
		return llmgw.DialectResponses
	case strings.HasPrefix(path, "/v1beta/"):
		return llmgw.DialectGemini
	}
	return llmgw.DialectAnthropic
}

// renderError renders an error in a dialect: it returns the status to send
// (each SDK picks its error type by status) and the body.
func renderError(dialect string, status int, errType, msg string) (int, []byte) {
	switch dialect {
	case llmgw.DialectOpenAI:
		return openaiErrorBody(status, errType, msg)
	case llmgw.DialectResponses:
		return responsesErrorBody(status, errType, msg)
	case llmgw.DialectGemini:
		return geminiErrorBody(status, errType, msg)
	}
	return status, anthropic.MarshalError(errType, msg, "")
}

// convert serves a converted request: it sends c.request upstream (always as
// a stream, which avoids idle timeouts on long answers and needs only one
// parser), with the same account choice and failover as native traffic, and
// answers in the client's dialect.
func (s *Server) convert(w http.ResponseWriter, r *http.Request, c *conversion) error {
	req := c.request
	req.Stream = true
	req.AddCacheBreakpoints()
	body, err := marshalNoEscape(req)
	if err != nil {
		return fmt.Errorf("encode upstream request: %w", err)
	}
	u := s.beginUsage(r, c.dialect, req.Model, c.stream)
	contentType := nonEmpty(c.contentType, "text/event-stream")
	var open *opening
	if c.stream {
		open = s.holdOpening(w, entryFrom(r.Context()), contentType, c.encoder.Fail)
	}

	header := http.Header{}
	header.Set("Content-Type", "application/json")
	header.Set("Anthropic-Version", "2023-06-01")
	if beta := r.Header.Values("Anthropic-Beta"); len(beta) > 0 {
		header["Anthropic-Beta"] = beta
	}
	res, err := s.do(r.Context(), &call{
		method: http.MethodPost, path: "/v1/messages", header: header, body: body,
		model: req.Model, stream: true, whole: !c.stream, usage: u, key: keyName(r),
	})
	open.end()
	s.releaseBody(r)
	if err != nil {
		return err
	}
	defer res.close()
	u.AccountID, u.AccountName = res.account.ID, res.account.Name
	u.UpstreamID = res.header.Get("Request-Id")
	if !open.isCommitted() {
		passRetryHeaders(w.Header(), res.header)
	}

	if res.events == nil && res.acc == nil {
		// An error answer (or a 200 that is not a stream, which we never ask
		// for): render it in the client's dialect, status kept.
		status := res.status
		detail := anthropic.ParseError(res.body)
		switch {
		case res.streamErr != nil:
			// Every try ended in a stream error event before any content.
			detail = *res.streamErr
			status = statusForType(detail.Type)
		case status < 400:
			status, detail = http.StatusBadGateway, anthropic.ErrorDetail{Type: "api_error", Message: "the upstream answered without a stream"}
		}
		typ := nonEmpty(detail.Type, anthropic.ErrorType(status))
		u.Status, u.ErrorType, u.ErrorMessage = status, typ, detail.Message
		if open.isCommitted() {
			u.Status, u.EndedEarly = http.StatusOK, true
			open.failWith(typ, nonEmpty(detail.Message, http.StatusText(status)))
			return nil
		}
		code, out := renderError(c.dialect, status, typ, nonEmpty(detail.Message, http.StatusText(status)))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write(out)
		return nil
	}
	if c.stream {
		s.convertStream(w, r, res, c, u, open)
		return nil
	}
	return s.convertFinal(w, res, c, u)
}

// convertStream translates a live stream event by event.
func (s *Server) convertStream(w http.ResponseWriter, r *http.Request, res *result, c *conversion, u *llmgw.Usage, open *opening) {
	rc := http.NewResponseController(w)
	if !open.isCommitted() {
		streamHeaders(w.Header(), nonEmpty(c.contentType, "text/event-stream"))
		w.WriteHeader(http.StatusOK)
	}
	u.Status = http.StatusOK
	var tally anthropic.Tally
	defer func() {
		u.Tokens = tally.Tokens
		u.EndedEarly = !tally.Stopped
		if tally.Err != nil {
			u.ErrorType, u.ErrorMessage = tally.Err.Type, tally.Err.Message
		}
	}()
	cw := &countingWriter{w: w}
	ka := newKeepAlive(res.events, s.cfg.KeepAlive)
	defer ka.stop()
	for {
		ev, err := ka.next()
		if err != nil {
			if r.Context().Err() != nil {
				u.ErrorType = "client_closed_request"
				return
			}
			if errors.Is(err, io.EOF) && tally.Stopped {
				return
			}
			msg := streamEndMessage(err)
			tally.Err = &anthropic.ErrorDetail{Type: "api_error", Message: msg}
			_ = c.encoder.Fail(cw, "api_error", msg)
			_ = rc.Flush()
			return
		}
		tally.Observe(ev.Name, ev.Data)
		if ev.Name == "error" {
			d := tally.Err
			_ = c.encoder.Fail(cw, d.Type, d.Message)
			_ = rc.Flush()
			return
		}
		if err := c.encoder.Event(cw, ev.Name, ev.Data); err != nil {
			tally.Err = &anthropic.ErrorDetail{Type: "api_error", Message: err.Error()}
			_ = c.encoder.Fail(cw, "api_error", "llmgw could not translate the upstream stream")
			_ = rc.Flush()
			s.log.Error("stream translation failed", "request_id", u.RequestID, "dialect", c.dialect, "err", err)
			return
		}
		if cw.err != nil {
			u.ErrorType = "client_closed_request"
			return
		}
		if cw.n > 0 && u.TTFB == 0 {
			u.TTFB = s.cfg.Now().Sub(u.Time)
		}
		if !ka.idle() && !tally.Stopped {
			continue // more is already here: it leaves in the same write
		}
		if err := rc.Flush(); err != nil {
			u.ErrorType = "client_closed_request"
			return
		}
		if tally.Stopped {
			return
		}
	}
}

// convertFinal answers a non-stream client with one JSON document built
// from the whole upstream stream, which the attempt already read (only the
// rebuilt message is held, never the raw stream).
func (s *Server) convertFinal(w http.ResponseWriter, res *result, c *conversion, u *llmgw.Usage) error {
	u.Tokens = res.acc.Tally.Tokens
	out, err := c.final(res.acc)
	if err != nil {
		return fmt.Errorf("build %s response: %w", c.dialect, err)
	}
	u.Status = http.StatusOK
	u.TTFB = s.cfg.Now().Sub(u.Time)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
	return nil
}

// statusForType is the HTTP status that goes with an Anthropic error type,
// for errors that arrived inside a stream.
func statusForType(typ string) int {
	switch typ {
	case "overloaded_error":
		return 529
	case "rate_limit_error":
		return http.StatusTooManyRequests
	case "invalid_request_error":
		return http.StatusBadRequest
	case "authentication_error":
		return http.StatusUnauthorized
	case "permission_error":
		return http.StatusForbidden
	case "not_found_error":
		return http.StatusNotFound
	case "request_too_large":
		return http.StatusRequestEntityTooLarge
	case "timeout_error":
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// passRetryHeaders copies the headers every dialect's SDK reads to decide on
// a retry, and the upstream request id.
func passRetryHeaders(dst, src http.Header) {
	for _, k := range []string{"retry-after", "retry-after-ms", "x-should-retry", "request-id"} {
		if v := src.Get(k); v != "" {
			dst.Set(k, v)
		}
	}
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

// countingWriter counts bytes written and remembers the first write error
// (the client went away).
type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

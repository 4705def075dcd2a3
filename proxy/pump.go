package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/sse"
)

// answer gives the client the upstream's answer in its dialect and fills in
// the usage record from what passes by. A refusal, or a stream that breaks
// after its first content, comes back as an error for writeError, the one
// place that renders errors and records them.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, res *result, x *Exchange, u *llmgw.Usage) error {
	e := entryFrom(r.Context())
	u.AccountID, u.AccountName = res.account.ID, res.account.Name
	u.UpstreamID = res.header.Get("Request-Id")
	if !e.open.isCommitted() {
		passHeaders(w.Header(), res.header, x.Request == nil)
	}
	switch {
	case res.events != nil:
		return s.pump(w, r, res, x, u)
	case res.acc != nil:
		out, err := x.Final(res.acc)
		if err != nil {
			return fmt.Errorf("build the %s answer: %w", u.Dialect, err)
		}
		res.acc.Tally.Fill(u)
		return s.writeWhole(w, u, http.StatusOK, out)
	case res.streamErr != nil || res.status >= 400:
		return refusal(res)
	case x.Request == nil:
		// A pass-through non-stream answer, byte for byte.
		var tally anthropic.Tally
		tally.ObserveMessage(res.body)
		tally.Fill(u)
		return s.writeWhole(w, u, res.status, res.body)
	}
	return &upstreamError{status: http.StatusBadGateway, typ: "api_error", msg: "the upstream answered without a stream"}
}

// writeWhole writes a whole (non-stream) answer.
func (s *Server) writeWhole(w http.ResponseWriter, u *llmgw.Usage, status int, body []byte) error {
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	u.Status = status
	u.TTFB = s.cfg.Now().Sub(u.Time)
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return nil
}

// pump is the one stream loop, for every dialect: it feeds each upstream
// event to the client's encoder, tallies usage, flushes when the upstream
// has nothing more at hand (events that arrive together leave in one
// write), sends a keep-alive after a silence, and turns a stream that breaks
// or ends without message_stop into the dialect's error at the end.
func (s *Server) pump(w http.ResponseWriter, r *http.Request, res *result, x *Exchange, u *llmgw.Usage) error {
	e := entryFrom(r.Context())
	rc := http.NewResponseController(w)
	if !e.open.isCommitted() {
		streamHeaders(w.Header(), x.contentType())
		w.WriteHeader(res.status)
	}
	u.Status = res.status
	e.stream = x.Encoder // from here on an error is the stream's last event
	var tally anthropic.Tally
	defer func() { tally.Fill(u) }()
	cw := &countingWriter{w: w}
	ka := newKeepAlive(s.cfg.KeepAlive, func() bool {
		// A ping is a keep-alive, not content: it does not count towards
		// the time to first byte.
		if x.Encoder.Event(cw, pingEvent) != nil || cw.err != nil {
			return false
		}
		return rc.Flush() == nil
	})
	defer ka.stop()
	for {
		// The read is outside the lock: a ping may go out meanwhile.
		ev, err := res.events.Next()
		switch {
		case r.Context().Err() != nil:
			return errClientGone
		case err != nil:
			// The upstream broke off, or ended without message_stop.
			return &streamError{typ: "api_error", msg: streamEndMessage(err)}
		}
		ka.lock()
		done, err := s.deliver(rc, cw, ev, x, u, &tally, res.events.Buffered())
		ka.unlock(err == nil && !done)
		if err != nil || done {
			return err
		}
	}
}

// deliver is one turn of pump with the client's writer held: it gives ev to
// the encoder, tallies it, and flushes unless more is already at hand (then
// it leaves in the same write). done is true at the end of the stream; an
// error ends it early.
func (s *Server) deliver(rc *http.ResponseController, cw *countingWriter, ev sse.Event, x *Exchange, u *llmgw.Usage, tally *anthropic.Tally, more bool) (done bool, err error) {
	tally.Observe(ev.Name, ev.Data)
	if err := x.Encoder.Event(cw, ev); err != nil && cw.err == nil {
		s.log.Error("stream translation failed", "request_id", u.RequestID, "dialect", u.Dialect, "err", err)
		return false, &streamError{typ: "api_error", msg: "llmgw could not translate the upstream stream"}
	}
	if cw.err != nil {
		return false, errClientGone
	}
	if cw.n > 0 && u.TTFB == 0 {
		u.TTFB = s.cfg.Now().Sub(u.Time)
	}
	if d := tally.Err; d != nil {
		// The encoder has written the upstream's error event: the stream
		// is over.
		_ = rc.Flush()
		return false, &streamError{typ: nonEmpty(d.Type, "api_error"), msg: d.Message, sent: true}
	}
	if more && !tally.Stopped {
		return false, nil
	}
	if err := rc.Flush(); err != nil {
		return false, errClientGone
	}
	return tally.Stopped, nil
}

// streamError is a stream that broke after its first content: the client
// gets the dialect's error as the stream's last event, unless it was sent
// already (the upstream's own error event, passed on by the encoder).
type streamError struct {
	typ, msg string
	sent     bool
}

func (e *streamError) Error() string { return e.msg }

// upstreamError is the upstream's refusal, after every try.
type upstreamError struct {
	status int // the upstream's status (200 for an error event in a stream's opening)
	typ    string
	msg    string
	header http.Header
	raw    []byte // the upstream's body, for pass-through clients
}

func (e *upstreamError) Error() string {
	return fmt.Sprintf("upstream answered %d %s: %s", e.status, e.typ, e.msg)
}

// refusal turns a result that is an upstream error into one.
func refusal(res *result) error {
	if d := res.streamErr; d != nil {
		// Every try ended in an error event before any content.
		typ := nonEmpty(d.Type, "api_error")
		return &upstreamError{status: res.status, typ: typ, msg: d.Message, header: res.header, raw: res.body}
	}
	d := anthropic.ParseError(res.body)
	return &upstreamError{status: res.status, typ: nonEmpty(d.Type, anthropic.ErrorType(res.status)),
		msg: nonEmpty(d.Message, http.StatusText(res.status)), header: res.header, raw: res.body}
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

// passHeaders copies the upstream headers a client may see: for every
// dialect those its SDK reads to decide on a retry and the upstream's
// request id; for pass-through also the content type and Anthropic's
// rate-limit headers.
func passHeaders(dst, src http.Header, passthrough bool) {
	for k, vs := range src {
		lk := strings.ToLower(k)
		switch {
		case lk == "request-id", lk == "retry-after", lk == "retry-after-ms", lk == "x-should-retry":
		case passthrough && (lk == "content-type" || strings.HasPrefix(lk, "anthropic-ratelimit-")):
		default:
			continue
		}
		dst[k] = vs
	}
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

package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/sse"
)

// call is one client request as it is to be sent upstream, on any account.
type call struct {
	method string
	path   string // upstream path, e.g. /v1/messages
	query  string // raw query to send upstream, client key removed
	header http.Header
	body   []byte // read once, replayed on each attempt
	model  string
	stream bool
	usage  *llmgw.Usage // where attempts are recorded; nil for side calls
	key    string       // the client key's name, for accounts bound to owners
}

// result is the upstream answer that goes to the client. The caller must
// call close when it is done with it.
type result struct {
	status int
	header http.Header
	// Exactly one of body and events/raw is set: body for a buffered answer
	// (errors), events for a live stream, raw for a live non-stream body.
	body    []byte
	events  *sse.Reader
	raw     io.ReadCloser
	account *llmgw.Account
	ttfb    time.Duration
	sent    http.Header // the headers the upstream request carried
	// streamErr is set when body holds a stream's error event that came
	// before any content (status is then the stream's 200).
	streamErr *anthropic.ErrorDetail
	close     func()
}

// errorBodyLimit bounds how much of an upstream error body is kept.
const errorBodyLimit = 1 << 20

// do sends c to the best account, failing over to others on errors that are
// the account's or the service's, until an answer is worth delivering or the
// attempts run out. Nothing has reached the client when it returns.
func (s *Server) do(ctx context.Context, c *call) (*result, error) {
	v := s.view.Load()
	tried := make(map[int64]bool)
	refreshed := make(map[int64]bool)
	var last *result
	var lastErr error
	for n := 0; n < s.cfg.MaxAttempts; n++ {
		pctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		ch, err := s.pool.pick(pctx, v.snap.Accounts, c.model, func(a *llmgw.Account) string { return s.servable(a, c.key) }, tried)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) {
				err = &errBusy{wait: s.cfg.Timeout}
			}
			if last != nil || lastErr != nil {
				break // nothing left to try: answer with what the last try got
			}
			return nil, err
		}
		res, verdict, err := s.attempt(ctx, ch, c)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			lastErr = &errUnreachable{account: ch.a.Name, err: err}
			tried[ch.a.ID] = true
			s.log.LogAttrs(ctx, slog.LevelWarn, "upstream unreachable, failing over",
				slog.String("account", ch.a.Name), slog.String("err", err.Error()))
			continue
		}
		switch verdict.Action {
		case Deliver:
			if last != nil {
				last.close()
			}
			return res, nil
		case Refresh:
			if r, ok := s.cfg.Kinds[ch.a.Type].(Refresher); ok && !refreshed[ch.a.ID] {
				refreshed[ch.a.ID] = true
				rerr := r.Refresh(ctx, ch.a, res.sent)
				if rerr == nil {
					n-- // the retry on the same account is part of the same attempt
					res.close()
					continue
				}
				s.log.LogAttrs(ctx, slog.LevelWarn, "token refresh failed", slog.String("account", ch.a.Name), slog.String("err", rerr.Error()))
			}
			// No refresh helped: the credential itself is bad.
			s.applyVerdict(ch.a, ch.h, Verdict{Broken: verdict.Broken}, verdict.Broken)
		}
		tried[ch.a.ID] = true
		if last != nil {
			last.close()
		}
		last, lastErr = res, nil
		s.log.LogAttrs(ctx, slog.LevelWarn, "upstream refused, failing over",
			slog.String("account", ch.a.Name), slog.Int("status", res.status))
	}
	if last != nil {
		return last, nil
	}
	return nil, lastErr
}

// Refresher is implemented by kinds whose credentials can be renewed, such
// as OAuth access tokens. sent holds the headers of the rejected request.
type Refresher interface {
	Refresh(ctx context.Context, a *llmgw.Account, sent http.Header) error
}

// servable says why an account cannot serve the client key named key, or ""
// if it can.
func (s *Server) servable(a *llmgw.Account, key string) string {
	if _, ok := s.cfg.Kinds[a.Type]; !ok {
		return "accounts of type " + string(a.Type) + " are not supported by this server"
	}
	if !a.ServesKey(key) {
		return "reserved for other client keys"
	}
	return ""
}

// attempt sends c on the chosen account and reads enough of the answer to
// judge it. A non-nil error means no HTTP answer arrived.
func (s *Server) attempt(ctx context.Context, ch choice, c *call) (*result, Verdict, error) {
	a, h := ch.a, ch.h
	kind := s.cfg.Kinds[a.Type]
	released := false
	release := func() {
		if !released {
			released = true
			s.pool.release(h)
		}
	}
	start := s.cfg.Now()
	rec := func(status int, errType string, ttfb time.Duration) {
		if c.usage != nil {
			c.usage.Attempts = append(c.usage.Attempts, llmgw.Attempt{
				AccountID: a.ID, AccountName: a.Name, Status: status, ErrorType: errType, TTFB: ttfb,
			})
		}
	}

	req, err := http.NewRequestWithContext(ctx, c.method, strings.TrimRight(a.BaseURL, "/")+c.path, nil)
	if err != nil {
		release()
		return nil, Verdict{}, fmt.Errorf("build request: %w", err)
	}
	req.URL.RawQuery = c.query
	req.Header = c.header.Clone()
	req.Header.Set("Accept-Encoding", "identity") // the usage parser reads plain SSE
	if req.Header.Get("Anthropic-Version") == "" {
		req.Header.Set("Anthropic-Version", "2023-06-01")
	}
	body, err := kind.Prepare(ctx, a, req, c.body)
	if err != nil {
		release()
		rec(0, "credential_error", 0)
		s.pool.observe(h, 0, true, false)
		if errors.Is(err, llmgw.ErrLoginRequired) {
			s.applyVerdict(a, h, Verdict{Broken: err.Error()}, err.Error())
		}
		return nil, Verdict{}, fmt.Errorf("prepare request: %w", err)
	}
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}

	resp, err := s.client.Do(req)
	ttfb := s.cfg.Now().Sub(start)
	if err != nil {
		release()
		if ctx.Err() == nil {
			rec(0, "connection_error", ttfb)
			s.pool.observe(h, 0, true, true)
			s.noteTransient(a, h, "connection error: "+rootCause(err))
		}
		return nil, Verdict{}, err
	}
	res := &result{status: resp.StatusCode, header: resp.Header, account: a, ttfb: ttfb, sent: req.Header}
	if ws := ParseWindows(resp.Header, s.cfg.Now()); !ws.At.IsZero() {
		h.mu.Lock()
		h.windows = ws
		h.mu.Unlock()
		s.rec.RecordWindows(a.ID, ws)
	}
	res.close = func() {
		resp.Body.Close()
		release()
	}

	if resp.StatusCode < 300 {
		if c.stream && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			// Hold back the events before the first content: an error there
			// (an overload right after the 200) can still fail over, since
			// the client has seen nothing yet.
			events := sse.NewReader(resp.Body)
			held, errEv, ferr := holdPrefix(events)
			if errEv != nil {
				detail := anthropic.ParseError(errEv.Data)
				res.body = bytes.Clone(errEv.Raw)
				res.streamErr = &detail
				resp.Body.Close()
				rec(resp.StatusCode, nonEmpty(detail.Type, "api_error"), ttfb)
				s.pool.observe(h, 0, true, true)
				s.noteTransient(a, h, "stream error: "+detail.Type+": "+detail.Message)
				res.close = release
				return res, Verdict{Action: Failover, Transient: true}, nil
			}
			if ferr != nil && len(held) == 0 {
				res.close()
				rec(0, "connection_error", ttfb)
				s.pool.observe(h, 0, true, true)
				return nil, Verdict{}, ferr
			}
			for i := len(held) - 1; i >= 0; i-- {
				events.Unread(held[i])
			}
			res.events = events
		} else {
			res.raw = resp.Body
		}
		rec(resp.StatusCode, "", ttfb)
		s.pool.observe(h, ttfb, false, false)
		return res, Verdict{Action: Deliver}, nil
	}

	// An error answer: keep its body to judge it and, maybe, to deliver.
	errBody, rerr := io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
	resp.Body.Close()
	res.close = release
	if rerr != nil && ctx.Err() != nil {
		release()
		return nil, Verdict{}, ctx.Err()
	}
	res.body = errBody
	detail := anthropic.ParseError(errBody)
	errType := nonEmpty(detail.Type, anthropic.ErrorType(resp.StatusCode))
	verdict := kind.Classify(a, resp, errBody)
	rec(resp.StatusCode, errType, ttfb)
	if verdict.Action == Deliver {
		// The request's own fault: the account is fine.
		s.pool.observe(h, ttfb, false, false)
		return res, verdict, nil
	}
	s.pool.observe(h, 0, true, verdict.Transient)
	if verdict.Action == Refresh {
		return res, verdict, nil // do decides, once it knows whether a refresh helps
	}
	s.applyVerdict(a, h, verdict, fmt.Sprintf("%d %s: %s", resp.StatusCode, errType, detail.Message))
	return res, verdict, nil
}

// heldEventsMax bounds how many events holdPrefix keeps back.
const heldEventsMax = 16

// holdPrefix reads a stream's events up to its first content (a
// content_block_delta, message_delta or message_stop). It returns them, or
// the error event found among them. A read error ends the prefix early; the
// whole events read so far are still returned, and the stream's end shows on
// the next read.
func holdPrefix(events *sse.Reader) (held []sse.Event, errEv *sse.Event, err error) {
	for len(held) < heldEventsMax {
		ev, err := events.Next()
		if err != nil {
			return held, nil, err // a partial frame is never passed on
		}
		ev = sse.Event{Name: ev.Name, Data: bytes.Clone(ev.Data), Raw: bytes.Clone(ev.Raw)}
		if ev.Name == "error" {
			return held, &ev, nil
		}
		held = append(held, ev)
		switch ev.Name {
		case "content_block_delta", "message_delta", "message_stop":
			return held, nil, nil
		}
	}
	return held, nil, nil
}

// applyVerdict turns a Kind's verdict into account state.
func (s *Server) applyVerdict(a *llmgw.Account, h *health, v Verdict, lastErr string) {
	switch {
	case v.Broken != "":
		st := s.pool.setState(a, h, func(st *llmgw.AccountState) {
			st.Status, st.Reason, st.LastError = llmgw.StatusError, v.Broken, lastErr
		})
		s.rec.RecordState(a.ID, st)
		s.log.Warn("account put in error", "account", a.Name, "reason", v.Broken)
	case v.Cooldown > 0:
		until := s.cfg.Now().Add(v.Cooldown)
		st := s.pool.setState(a, h, func(st *llmgw.AccountState) {
			st.CooldownUntil, st.LastError = until, lastErr
		})
		s.rec.RecordState(a.ID, st)
		s.log.Warn("account cooling down", "account", a.Name, "until", until.Format(time.RFC3339), "err", lastErr)
	case v.Transient:
		s.noteTransient(a, h, lastErr)
	}
}

// noteTransient cools an account briefly once the service has failed on it
// several times in a row: one 529 says nothing about the account, a streak
// says requests should go elsewhere for a moment.
func (s *Server) noteTransient(a *llmgw.Account, h *health, lastErr string) {
	h.mu.Lock()
	streak := h.transients
	h.mu.Unlock()
	if streak < transientStreak {
		return
	}
	until := s.cfg.Now().Add(transientCool)
	st := s.pool.setState(a, h, func(st *llmgw.AccountState) {
		st.CooldownUntil, st.LastError = until, lastErr
	})
	s.rec.RecordState(a.ID, st)
	s.log.Warn("account cooling down after repeated upstream failures", "account", a.Name, "until", until.Format(time.RFC3339), "err", lastErr)
}

// rootCause returns the innermost message of a transport error, without the
// URL that *url.Error adds.
func rootCause(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

func nonEmpty(s, fallback string) string {
	if s != "" {
		return s
	}
	return fallback
}

// hopHeaders are never forwarded upstream: hop-by-hop headers, the client's
// own credentials (a client key must never reach Anthropic) and headers that
// describe the client's connection rather than the request.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Host": true, "Content-Length": true, "Accept-Encoding": true, "Cookie": true,
	"Authorization": true, "X-Api-Key": true, "X-Goog-Api-Key": true,
	"Forwarded": true, "X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true,
	"X-Real-Ip": true, "Via": true,
}

// upstreamHeader copies the client's headers that may go upstream.
func upstreamHeader(in http.Header) http.Header {
	out := make(http.Header, len(in))
	for k, vs := range in {
		if hopHeaders[k] {
			continue
		}
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// upstreamQuery returns the client's query without its key.
func upstreamQuery(r *http.Request) string {
	if r.URL.RawQuery == "" {
		return ""
	}
	q := r.URL.Query()
	if !q.Has("key") {
		return r.URL.RawQuery
	}
	q.Del("key")
	return q.Encode()
}

// copyResponseHeader copies the upstream headers a client may see.
func copyResponseHeader(dst, src http.Header) {
	for k, vs := range src {
		lk := strings.ToLower(k)
		switch {
		case lk == "content-type", lk == "request-id", lk == "retry-after", lk == "retry-after-ms",
			lk == "x-should-retry", strings.HasPrefix(lk, "anthropic-ratelimit-"):
			dst[k] = vs
		}
	}
}

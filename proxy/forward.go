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
	path   string // upstream path, e.g. /v1/messages; built from constants and escaped ids only
	query  string // raw query to send upstream, client key removed
	header http.Header
	body   []byte // read once, replayed on each attempt
	model  string
	// stream asks for an answer read as a stream: its opening (up to the
	// first content) is held back and judged before anything is delivered,
	// and the first-byte limit applies to it.
	stream bool
	// whole marks a client that sees nothing before the whole answer (a
	// converted non-stream request): the answer, stream or not, is read to
	// its end inside the attempt and rebuilt into result.acc, so any failure
	// on the way can still fail over.
	whole bool
	usage *llmgw.Usage // where attempts are recorded; nil for side calls
	key   string       // the client key's name, for accounts bound to owners
	// session is the request's conversation, namespaced by client key, for
	// session affinity; "" for none. ttl is how long its binding lasts.
	session string
	ttl     time.Duration
}

// result is the upstream answer that goes to the client. The caller must
// call close when it is done with it.
type result struct {
	status int
	header http.Header
	// Exactly one of body, events and acc is set: body for a buffered answer
	// (non-stream answers and errors), events for a live stream, acc for a
	// stream read whole (call.whole).
	body    []byte
	events  *sse.Reader
	acc     *anthropic.Accumulator
	account *llmgw.Account
	ttfb    time.Duration
	sent    http.Header // the headers the upstream request carried
	// streamErr is set when body holds a stream's error event that came
	// before any content (status is then the stream's 200).
	streamErr *anthropic.ErrorDetail
	// close releases what a live stream holds (its connection and its
	// account's concurrency slot). Buffered answers hold nothing: their slot
	// was released when the attempt ended.
	close func()
}

// Bounds on what an attempt reads into memory.
const (
	errorBodyLimit  = 1 << 20  // an upstream error body
	answerBodyLimit = 64 << 20 // a whole non-stream answer
)

func noop() {}

// do sends c to the best account, failing over to others on errors that are
// the account's or the service's, until an answer is worth delivering or the
// attempts run out. Nothing has reached the client when it returns. Every
// attempt gives its concurrency slot back when it ends, whatever happens;
// only a delivered live stream keeps its slot, until its close.
func (s *Server) do(ctx context.Context, c *call) (*result, error) {
	v := s.view.Load()
	tried := make(map[int64]bool)
	refreshed := make(map[int64]bool)
	var last *result // the latest refusal, to deliver if nothing better comes; it holds nothing
	var lastErr error
	var retry int64 // the account to retry on after a credential refresh
	var sp *sessionPick
	if c.session != "" {
		sp = &sessionPick{key: c.session, table: s.affinity, ttl: c.ttl}
		sp.bound = s.affinity.lookup(c.session, s.cfg.Now())
		sp.prefer = sp.bound
	}
	// dropSession undoes the binding an attempt made on an account that
	// failed it, so the next attempt and later requests go elsewhere.
	dropSession := func(a *llmgw.Account) {
		if sp != nil {
			s.affinity.unbind(sp.key, a.ID)
			sp.prefer = 0
		}
	}
	for n := 0; n < s.cfg.MaxAttempts; n++ {
		pctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		accts := v.snap.Accounts
		if retry != 0 {
			// After a refresh the retry goes to the same account.
			accts = sameAccount(accts, retry)
			retry = 0
		}
		ch, err := s.pool.pickFor(pctx, pickRequest{accts: accts, model: c.model, tried: tried, session: sp,
			allowed: func(a *llmgw.Account) string { return s.servable(a, c.key) }})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) {
				err = &errBusy{wait: s.cfg.Timeout}
			}
			if len(tried) == 0 && len(accts) == len(v.snap.Accounts) {
				// The first pick, over every account (not a retry on one):
				// an outage if each is down for its own state.
				s.noAccount(err)
			}
			if last != nil || lastErr != nil {
				break // nothing left to try: answer with what the last try got
			}
			return nil, err
		}
		res, verdict, err := s.attempt(ctx, ch, c)
		if err != nil {
			var local *errLocal
			switch {
			case ctx.Err() != nil:
				return nil, ctx.Err()
			case errors.As(err, &local):
				return nil, err // the gateway's own trouble: another account would fare no better
			}
			lastErr = &errUnreachable{account: ch.a.Name, err: err}
			tried[ch.a.ID] = true
			dropSession(ch.a)
			s.log.LogAttrs(ctx, slog.LevelWarn, "upstream failed before the first byte, failing over",
				slog.String("request_id", entryFrom(ctx).id), slog.String("account", ch.a.Name), slog.String("err", rootCause(err)))
			continue
		}
		switch verdict.Next {
		case Deliver:
			s.served()
			if sp != nil && c.usage != nil {
				c.usage.Affinity = sp.outcome(ch.a.ID)
			}
			return res, nil
		case Retry:
			if r, ok := s.cfg.Kinds[ch.a.Type].(Refresher); ok && !refreshed[ch.a.ID] {
				refreshed[ch.a.ID] = true
				rerr := r.Refresh(ctx, ch.a, res.sent)
				if rerr == nil {
					// The same account again; the retry is recorded as an
					// attempt of its own but does not use up one of
					// max_attempts, which count accounts tried.
					n--
					retry = ch.a.ID
					continue
				}
				s.log.LogAttrs(ctx, slog.LevelWarn, "token refresh failed", slog.String("request_id", entryFrom(ctx).id),
					slog.String("account", ch.a.Name), slog.String("err", rerr.Error()))
			}
			// No refresh helped: the credential itself is bad.
			s.applyEffect(ch.a, ch.h, verdict.Account, verdict.Account.Broken)
		}
		tried[ch.a.ID] = true
		dropSession(ch.a)
		last, lastErr = res, nil
		s.log.LogAttrs(ctx, slog.LevelWarn, "upstream refused, failing over",
			slog.String("request_id", entryFrom(ctx).id), slog.String("account", ch.a.Name), slog.Int("status", res.status))
	}
	if last != nil {
		return last, nil
	}
	return nil, lastErr
}

// sameAccount returns the one account of accts with id, as a slice pick
// can choose from.
func sameAccount(accts []llmgw.Account, id int64) []llmgw.Account {
	for i := range accts {
		if accts[i].ID == id {
			return accts[i : i+1]
		}
	}
	return nil
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
	return s.accountSpent(a)
}

// try is one attempt in progress: the account, its slot and the clock.
type try struct {
	s      *Server
	ctx    context.Context // the client's request
	a      *llmgw.Account
	h      *health
	c      *call
	start  time.Time
	cancel context.CancelCauseFunc // ends the upstream request
	timer  *time.Timer             // the first-byte limit, for streams
	whole  *time.Timer             // the whole-answer limit, for answers read whole
	status int                     // the upstream's status, once it answered
	ended  bool
}

// end gives the slot back and ends the upstream request. It is idempotent.
func (t *try) end() {
	if t.ended {
		return
	}
	t.ended = true
	if t.timer != nil {
		t.timer.Stop()
	}
	if t.whole != nil {
		t.whole.Stop()
	}
	t.cancel(nil)
	t.s.pool.release(t.h)
}

func (t *try) record(status int, errType string, ttfb time.Duration) {
	if t.c.usage != nil {
		t.c.usage.Attempts = append(t.c.usage.Attempts, llmgw.Attempt{
			AccountID: t.a.ID, AccountName: t.a.Name, Status: status, ErrorType: errType, TTFB: ttfb,
		})
	}
}

// failed ends a try that got no usable answer and decides whom to blame:
// nobody when the client left or the gateway itself ran out of resources
// (returned as *errLocal), otherwise the account, as a transient failure.
// It returns the error for do.
func (t *try) failed(actx context.Context, err error) error {
	t.end()
	ttfb := t.s.cfg.Now().Sub(t.start)
	switch {
	case t.ctx.Err() != nil:
		// The client left: the request reached the account, which is not to
		// blame.
		t.record(t.status, "client_closed_request", ttfb)
		return t.ctx.Err()
	case errors.Is(context.Cause(actx), errFirstByte):
		err = fmt.Errorf("no first byte within %s: %w", t.s.cfg.FirstByteTimeout, context.DeadlineExceeded)
		t.record(0, "timeout_error", ttfb)
	case errors.Is(context.Cause(actx), errWholeAnswer):
		err = fmt.Errorf("no whole answer within %s: %w", t.s.cfg.Timeout, context.DeadlineExceeded)
		t.record(0, "timeout_error", ttfb)
	case isLocalExhaustion(err):
		t.s.log.Error("the gateway is out of resources", "account", t.a.Name, "err", rootCause(err))
		return &errLocal{err: err}
	case errors.Is(err, sse.ErrFrameTooLarge):
		t.record(0, "api_error", ttfb)
		return &errLocal{err: err, status: http.StatusBadGateway}
	default:
		t.record(0, "connection_error", ttfb)
	}
	t.s.pool.observe(t.h, 0, true, true)
	t.s.noteTransient(t.a, t.h, "connection error: "+rootCause(err))
	return err
}

// The causes with which an attempt's limits end its upstream request.
var (
	errFirstByte   = errors.New("first-byte limit")
	errWholeAnswer = errors.New("whole-answer limit")
)

// attempt sends c on the chosen account and reads enough of the answer to
// judge it: a buffered answer whole, a stream up to its first content, or to
// its end for call.whole. A non-nil error means no usable answer arrived.
// The slot is released before attempt returns unless it returns a live
// stream.
func (s *Server) attempt(ctx context.Context, ch choice, c *call) (*result, Verdict, error) {
	a, h := ch.a, ch.h
	kind := s.cfg.Kinds[a.Type]
	actx, cancel := context.WithCancelCause(ctx)
	t := &try{s: s, ctx: ctx, a: a, h: h, c: c, start: s.cfg.Now(), cancel: cancel}
	if c.stream {
		t.timer = time.AfterFunc(s.cfg.FirstByteTimeout, func() { cancel(errFirstByte) })
	}
	if !c.stream || c.whole {
		// An answer the client gets only whole must come whole within the
		// timeout: an upstream that stalls inside it fails over, since
		// nothing has reached the client.
		t.whole = time.AfterFunc(s.cfg.Timeout, func() { cancel(errWholeAnswer) })
	}
	defer func() {
		if p := recover(); p != nil {
			t.end() // a panicking Kind must not keep the slot
			panic(p)
		}
	}()

	req, err := http.NewRequestWithContext(actx, c.method, strings.TrimRight(a.BaseURL, "/")+c.path, nil)
	if err != nil {
		t.end()
		return nil, Verdict{}, &errLocal{err: fmt.Errorf("build request: %w", err), status: http.StatusInternalServerError}
	}
	req.URL.RawQuery = c.query
	req.Header = c.header.Clone()
	req.Header.Set("Accept-Encoding", "identity") // the usage parser reads plain SSE
	if req.Header.Get("Anthropic-Version") == "" {
		req.Header.Set("Anthropic-Version", "2023-06-01")
	}
	body, err := kind.Prepare(actx, a, req, c.body)
	if err != nil {
		t.end()
		if ctx.Err() != nil {
			return nil, Verdict{}, ctx.Err()
		}
		t.record(0, "credential_error", 0)
		s.pool.observe(h, 0, true, false)
		if errors.Is(err, llmgw.ErrLoginRequired) {
			s.applyEffect(a, h, Effect{Broken: err.Error()}, err.Error())
		}
		return nil, Verdict{}, fmt.Errorf("prepare request: %w", err)
	}
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}

	// Every path below closes the body; a streamed one is closed by
	// res.close once relayed, which bodyclose cannot follow.
	resp, err := s.client.Do(req) //nolint:bodyclose // closed below or by res.close
	ttfb := s.cfg.Now().Sub(t.start)
	if err != nil {
		return nil, Verdict{}, t.failed(actx, err)
	}
	t.status = resp.StatusCode
	res := &result{status: resp.StatusCode, header: resp.Header, account: a, ttfb: ttfb, sent: req.Header, close: noop}
	if ws := ParseWindows(resp.Header, s.pool.family(c.model), s.cfg.Now()); !ws.At.IsZero() {
		h.mu.Lock()
		prev := h.windows
		if prev.At.IsZero() {
			prev = a.Windows
		}
		ws = mergeWindows(prev, ws, ws.At)
		h.windows = ws
		h.mu.Unlock()
		s.rec.RecordWindows(a.ID, ws)
		s.windowsPassed(a, prev, ws)
	}
	if resp.StatusCode >= 300 {
		return s.judgeRefusal(t, kind, resp, res)
	}
	isStream := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	if !isStream || (!c.stream && !c.whole) {
		// A buffered answer (JSON, or any answer a pass-through client asked
		// for without a stream) is read whole before it is judged: a hang-up
		// inside it fails over like any other failure before the first byte.
		b, err := io.ReadAll(io.LimitReader(resp.Body, answerBodyLimit))
		_ = resp.Body.Close() // a client response body's Close error tells us nothing
		if err != nil {
			return nil, Verdict{}, t.failed(actx, err)
		}
		if c.whole {
			// A converted request's whole answer is rebuilt here, so that an
			// unreadable one fails over like a broken stream would.
			acc, err := anthropic.Whole(b)
			if err != nil {
				return nil, Verdict{}, t.failed(actx, fmt.Errorf("unreadable upstream answer: %w", err))
			}
			res.acc = acc
		} else {
			res.body = b
		}
		t.end()
		t.record(resp.StatusCode, "", ttfb)
		s.pool.observe(h, ttfb, false, false)
		return res, Verdict{Next: Deliver}, nil
	}

	// Hold back the events before the first content: a failure there (an
	// overload right after the 200, a hang-up after message_start, silence
	// past the first-byte limit) can still fail over, since the client has
	// seen nothing yet.
	events := sse.NewReader(resp.Body)
	held, errEv, err := holdPrefix(events)
	if err == nil && errEv == nil && t.timer != nil && !t.timer.Stop() {
		err = context.Cause(actx) // the limit struck as the first content arrived
	}
	if err != nil {
		_ = resp.Body.Close()
		if ctx.Err() != nil && c.usage != nil {
			// The client left during the opening: what the upstream already
			// counted (message_start's input) is still charged.
			var tally anthropic.Tally
			for _, ev := range held {
				tally.Observe(ev.Name, ev.Data)
			}
			tally.Fill(c.usage)
		}
		return nil, Verdict{}, t.failed(actx, err)
	}
	if errEv != nil {
		_ = resp.Body.Close()
		return s.streamRefusal(t, res, errEv)
	}
	for i := len(held) - 1; i >= 0; i-- {
		events.Unread(held[i])
	}
	if c.whole {
		acc, errEv, err := collect(events)
		_ = resp.Body.Close()
		switch {
		case err != nil:
			return nil, Verdict{}, t.failed(actx, err)
		case errEv != nil:
			return s.streamRefusal(t, res, errEv)
		}
		t.end()
		res.acc = acc
	} else {
		res.events = events
		res.close = func() {
			_ = resp.Body.Close()
			t.end()
		}
	}
	t.record(resp.StatusCode, "", ttfb)
	s.pool.observe(h, ttfb, false, false)
	return res, Verdict{Next: Deliver}, nil
}

// judgeRefusal reads an upstream error answer and lets the account's kind
// decide what it means.
func (s *Server) judgeRefusal(t *try, kind Kind, resp *http.Response, res *result) (*result, Verdict, error) {
	errBody, rerr := io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
	_ = resp.Body.Close() // read what we wanted; its Close error tells us nothing
	t.end()
	if rerr != nil && t.ctx.Err() != nil {
		return nil, Verdict{}, t.ctx.Err()
	}
	res.body = errBody
	detail := anthropic.ParseError(errBody)
	errType := nonEmpty(detail.Type, anthropic.ErrorType(resp.StatusCode))
	verdict := kind.Classify(t.a, resp, errBody, s.cfg.Now())
	t.record(resp.StatusCode, errType, res.ttfb)
	if verdict.Next == Deliver {
		// The request's own fault: the account is fine.
		s.pool.observe(t.h, res.ttfb, false, false)
		return res, verdict, nil
	}
	s.pool.observe(t.h, 0, true, verdict.Account.Transient)
	if verdict.Next == Retry {
		return res, verdict, nil // do decides, once it knows whether a refresh helps
	}
	lastErr := fmt.Sprintf("%d %s: %s", resp.StatusCode, errType, detail.Message)
	if verdict.Account.Note != "" {
		lastErr = verdict.Account.Note + " (upstream answered " + lastErr + ")"
	}
	if verdict.Account.ModelScoped {
		s.coolFamily(t.a, t.h, s.pool.family(t.c.model), verdict.Account.CoolUntil, lastErr)
		return res, verdict, nil
	}
	s.applyEffect(t.a, t.h, verdict.Account, lastErr)
	return res, verdict, nil
}

// streamRefusal turns an error event that came before any content into a
// refusal to fail over from.
func (s *Server) streamRefusal(t *try, res *result, errEv *sse.Event) (*result, Verdict, error) {
	t.end()
	detail := anthropic.ParseError(errEv.Data)
	res.body = bytes.Clone(errEv.Raw)
	res.streamErr = &detail
	t.record(res.status, nonEmpty(detail.Type, "api_error"), res.ttfb)
	s.pool.observe(t.h, 0, true, true)
	s.noteTransient(t.a, t.h, "stream error: "+detail.Type+": "+detail.Message)
	return res, Verdict{Next: TryNext, Account: Effect{Transient: true}}, nil
}

// collect reads the rest of a stream into an Accumulator: the rebuilt
// message only, never the raw events. It returns the stream's error event
// if one comes, or an error if the stream breaks or ends before
// message_stop.
func collect(events *sse.Reader) (*anthropic.Accumulator, *sse.Event, error) {
	acc := &anthropic.Accumulator{}
	for !acc.Tally.Stopped {
		ev, err := events.Next()
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the stream ended before message_stop
		}
		if err != nil {
			return nil, nil, err
		}
		if ev.Name == "error" {
			ev = sse.Event{Name: ev.Name, Data: bytes.Clone(ev.Data), Raw: bytes.Clone(ev.Raw)}
			return nil, &ev, nil
		}
		if err := acc.Add(ev.Name, ev.Data); err != nil {
			return nil, nil, fmt.Errorf("unreadable upstream event %s: %w", ev.Name, err)
		}
	}
	return acc, nil, nil
}

// heldEventsMax bounds how many events holdPrefix keeps back.
const heldEventsMax = 16

// holdPrefix reads a stream's events up to its first content (a
// content_block_delta, message_delta or message_stop). It returns them, or
// the error event found among them. A read error, or a stream that ends
// before its first content, is an error (returned with the events read so
// far): the client has seen nothing, so the request can still go elsewhere.
func holdPrefix(events *sse.Reader) (held []sse.Event, errEv *sse.Event, err error) {
	for len(held) < heldEventsMax {
		ev, err := events.Next()
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return held, nil, err
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

// applyEffect turns what an answer meant for an account into its state.
func (s *Server) applyEffect(a *llmgw.Account, h *health, v Effect, lastErr string) {
	switch {
	case v.Broken != "":
		var was llmgw.AccountStatus
		st := s.pool.setState(a, h, func(st *llmgw.AccountState) {
			was = st.Status
			st.Status, st.Reason, st.LastError = llmgw.StatusError, v.Broken, lastErr
		})
		s.rec.RecordState(a.ID, st)
		s.log.Warn("account put in error", "account", a.Name, "reason", v.Broken)
		s.accountBroken(a, was, v.Broken)
	case v.CoolUntil.After(s.cfg.Now()):
		until := v.CoolUntil
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

// upstreamHeader copies the client's headers that may go upstream: not the
// hop-by-hop ones, whether fixed or named in the client's Connection header.
func upstreamHeader(in http.Header) http.Header {
	var named map[string]bool
	for _, v := range in["Connection"] {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				if named == nil {
					named = make(map[string]bool)
				}
				named[http.CanonicalHeaderKey(f)] = true
			}
		}
	}
	out := make(http.Header, len(in))
	for k, vs := range in {
		if hopHeaders[k] || named[k] {
			continue
		}
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// headerFields counts a request's header fields, repeated names included.
func headerFields(h http.Header) int {
	n := 0
	for _, vs := range h {
		n += len(vs)
	}
	return n
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

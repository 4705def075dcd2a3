package upstreamtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// wireTool is the part of a request's tool the fake uses.
type wireTool struct {
	Name        string          `json:"name"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// parseBody fills the parsed fields of r from its body, leaving them zero if
// the body is not a Messages request.
func (r *Request) parseBody() {
	var w struct {
		Model    string `json:"model"`
		Stream   bool   `json:"stream"`
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
		Tools    []wireTool `json:"tools"`
		Thinking *struct {
			Type string `json:"type"`
		} `json:"thinking"`
	}
	if json.Unmarshal(r.Body, &w) != nil {
		return
	}
	r.Model, r.Stream, r.tools = w.Model, w.Stream, w.Tools
	for _, t := range w.Tools {
		r.ToolNames = append(r.ToolNames, t.Name)
	}
	r.Thinking = w.Thinking != nil && w.Thinking.Type == "enabled"
	if n := len(w.Messages); n > 0 && w.Messages[n-1].Role == "user" {
		r.LastUserText = contentText(w.Messages[n-1].Content)
	}
}

// contentText returns the text of a message's content: the string itself, or
// its text blocks joined by newlines.
func contentText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var blocks []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &blocks) != nil {
		return ""
	}
	var texts []string
	for _, b := range blocks {
		if b.Type == "text" {
			texts = append(texts, b.Text)
		}
	}
	return strings.Join(texts, "\n")
}

// validateMessages returns the real API's message for an invalid Messages
// body, or "" if it is acceptable.
func validateMessages(body []byte) string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return "There was an issue with your request body: invalid JSON"
	}
	for _, f := range []string{"model", "max_tokens", "messages"} {
		if _, ok := m[f]; !ok {
			return f + ": Field required"
		}
	}
	var msgs []json.RawMessage
	if json.Unmarshal(m["messages"], &msgs) != nil {
		return "messages: Input should be a valid list"
	}
	if len(msgs) == 0 {
		return "messages: at least one message is required"
	}
	return ""
}

// countTokensFields are the top-level fields count_tokens accepts; any other
// is rejected as the real API does ("max_tokens: Extra inputs are not
// permitted").
var countTokensFields = map[string]bool{
	"model": true, "messages": true, "system": true, "tools": true, "tool_choice": true,
	"thinking": true, "cache_control": true, "output_config": true,
	"context_management": true, "mcp_servers": true,
}

// validateCountTokens is validateMessages for count_tokens. It reports the
// first unknown field in body order.
func validateCountTokens(body []byte) string {
	const invalid = "There was an issue with your request body: invalid JSON"
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return invalid
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return invalid
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return invalid
		}
		if !countTokensFields[key] {
			return key + ": Extra inputs are not permitted"
		}
		seen[key] = true
	}
	for _, f := range []string{"model", "messages"} {
		if !seen[f] {
			return f + ": Field required"
		}
	}
	return ""
}

// derive fills the zero fields of r from the request (see Response) and
// copies what it changes, so a hook may return shared values.
func (s *Server) derive(r *Response, req *Request) {
	if r.Error != nil {
		e := r.Error.filled(http.StatusInternalServerError)
		r.Error = &e
		return
	}
	if r.Cut != nil {
		c := *r.Cut
		if c.Error == nil {
			c.Error = &Error{}
		}
		e := c.Error.filled(529)
		c.Error = &e
		r.Cut = &c
	}
	if r.Raw != nil {
		return
	}
	if r.ID == "" {
		r.ID = newID("msg_")
	}
	if r.Model == "" {
		r.Model = req.Model
	}
	if r.Content == nil {
		r.Content = s.defaultContent(req)
	}
	r.Content = slices.Clone(r.Content)
	var size int
	hasTool := false
	for i := range r.Content {
		b := &r.Content[i]
		switch b.Type {
		case "tool_use":
			hasTool = true
			if b.ID == "" {
				b.ID = newID("toolu_")
			}
			if len(b.Input) == 0 {
				b.Input = json.RawMessage("{}")
			}
		case "thinking":
			if b.Signature == "" {
				sum := sha256.Sum256([]byte("upstreamtest:" + b.Thinking))
				b.Signature = base64.StdEncoding.EncodeToString(sum[:])
			}
		}
		size += len(b.Text) + len(b.Input) + len(b.Thinking)
	}
	if r.StopReason == "" {
		r.StopReason = "end_turn"
		if hasTool {
			r.StopReason = "tool_use"
		}
	}
	if r.Usage == (Tokens{}) {
		r.Usage = Tokens{Input: max(1, int64(len(req.Body)/4)), Output: max(1, int64(size/4))}
		if s.cache != nil {
			s.cacheUsage(req, &r.Usage)
		}
	}
	u := &r.Usage
	switch {
	case u.CacheWrite5m == 0 && u.CacheWrite1h == 0:
		u.CacheWrite5m = u.CacheWrite
	case u.CacheWrite == 0:
		u.CacheWrite = u.CacheWrite5m + u.CacheWrite1h
	}
}

// filled returns e with a zero Status set to status and empty Type and
// Message derived from the status.
func (e *Error) filled(status int) Error {
	out := *e
	if out.Status == 0 {
		out.Status = status
	}
	if out.Type == "" {
		out.Type = errorType(out.Status)
	}
	if out.Message == "" {
		out.Message = errorMessage(out.Status)
	}
	return out
}

// defaultContent derives reply content from the request.
func (s *Server) defaultContent(req *Request) []Block {
	var blocks []Block
	if req.Thinking {
		blocks = append(blocks, Block{Type: "thinking", Thinking: "The user wrote something; a short answer will do."})
	}
	if len(req.tools) > 0 && (s.toolUse || strings.Contains(strings.ToLower(req.LastUserText), "use a tool")) {
		t := req.tools[0]
		return append(blocks, Block{Type: "tool_use", Name: t.Name, Input: toolInput(t.InputSchema)})
	}
	text := "Hello from upstreamtest."
	if said := []rune(strings.TrimSpace(req.LastUserText)); len(said) > 0 {
		if len(said) > 40 {
			said = append(said[:40], '…')
		}
		text += " You said: " + string(said)
	}
	return append(blocks, Block{Type: "text", Text: text})
}

// toolInput makes an input object matching a JSON schema's properties.
func toolInput(schema json.RawMessage) json.RawMessage {
	var sc struct {
		Properties map[string]struct {
			Type string `json:"type"`
		} `json:"properties"`
	}
	_ = json.Unmarshal(schema, &sc) // a bad schema just gets {}
	in := make(map[string]any, len(sc.Properties))
	for name, p := range sc.Properties {
		switch p.Type {
		case "integer", "number":
			in[name] = 1
		case "boolean":
			in[name] = true
		case "array":
			in[name] = []any{}
		case "object":
			in[name] = map[string]any{}
		default:
			in[name] = "test"
		}
	}
	b, _ := json.Marshal(in) // cannot fail: plain values
	return b
}

// Wire shapes. Struct field order is the real API's key order.

type wireCacheCreation struct {
	Ephemeral5m int64 `json:"ephemeral_5m_input_tokens"`
	Ephemeral1h int64 `json:"ephemeral_1h_input_tokens"`
}

type wireUsage struct {
	InputTokens              int64             `json:"input_tokens"`
	CacheCreationInputTokens int64             `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64             `json:"cache_read_input_tokens"`
	CacheCreation            wireCacheCreation `json:"cache_creation"`
	OutputTokens             int64             `json:"output_tokens"`
	ServiceTier              string            `json:"service_tier"`
	extra                    map[string]json.RawMessage
}

func (u wireUsage) MarshalJSON() ([]byte, error) {
	type plain wireUsage
	return withFields(plain(u), u.extra)
}

func toWireUsage(t Tokens) wireUsage {
	return wireUsage{
		InputTokens:              t.Input,
		CacheCreationInputTokens: t.CacheWrite,
		CacheReadInputTokens:     t.CacheRead,
		CacheCreation:            wireCacheCreation{t.CacheWrite5m, t.CacheWrite1h},
		OutputTokens:             t.Output,
		ServiceTier:              "standard",
	}
}

// wireDeltaUsage is message_delta's cumulative usage; the input and cache
// fields are omitted in the legacy shape.
type wireDeltaUsage struct {
	InputTokens              *int64 `json:"input_tokens,omitempty"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens,omitempty"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens,omitempty"`
	OutputTokens             int64  `json:"output_tokens"`
	extra                    map[string]json.RawMessage
}

func (u wireDeltaUsage) MarshalJSON() ([]byte, error) {
	type plain wireDeltaUsage
	return withFields(plain(u), u.extra)
}

// withFields marshals v, a struct, with more fields added to the object.
func withFields(v any, fields map[string]json.RawMessage) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil || len(fields) == 0 {
		return b, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, f := range fields {
		m[k] = f
	}
	return json.Marshal(m)
}

// usageFields splits r.UsageJSON into the fields of message_start's usage
// and those of message_delta's (iterations); a whole reply takes both.
func usageFields(r *Response) (start, delta map[string]json.RawMessage) {
	if len(r.UsageJSON) == 0 {
		return nil, nil
	}
	if err := json.Unmarshal(r.UsageJSON, &start); err != nil {
		panic("upstreamtest: UsageJSON: " + err.Error()) // WithUsageJSON checked it; a hand-set field must be right too
	}
	if it, ok := start["iterations"]; ok {
		delta = map[string]json.RawMessage{"iterations": it}
		delete(start, "iterations")
	}
	return start, delta
}

type wireMessage struct {
	ID           string    `json:"id"`
	Type         string    `json:"type"`
	Role         string    `json:"role"`
	Model        string    `json:"model"`
	Content      []any     `json:"content"`
	StopReason   *string   `json:"stop_reason"`
	StopSequence *string   `json:"stop_sequence"`
	Usage        wireUsage `json:"usage"`
}

type wireText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type wireToolUse struct {
	Type  string          `json:"type"`
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

type wireThinking struct {
	Type      string  `json:"type"`
	Thinking  string  `json:"thinking"`
	Signature *string `json:"signature,omitempty"`
}

type wireRedacted struct {
	Type string `json:"type"`
	Data string `json:"data"`
}

type wireTypeOnly struct {
	Type string `json:"type"`
}

// wireBlock is b as it appears in a full message, or, when start is set, in
// content_block_start (with empty text, thinking and input).
func wireBlock(b Block, start bool) any {
	switch b.Type {
	case "text":
		if start {
			return wireText{"text", ""}
		}
		return wireText{"text", b.Text}
	case "tool_use":
		if start {
			return wireToolUse{"tool_use", b.ID, b.Name, json.RawMessage("{}")}
		}
		return wireToolUse{"tool_use", b.ID, b.Name, b.Input}
	case "thinking":
		if start {
			return wireThinking{Type: "thinking"}
		}
		return wireThinking{"thinking", b.Thinking, &b.Signature}
	case "redacted_thinking":
		return wireRedacted{"redacted_thinking", b.Data}
	}
	return wireTypeOnly{b.Type}
}

// blockDeltas returns the delta objects of b's content_block_delta frames.
func blockDeltas(b Block) []any {
	var out []any
	switch b.Type {
	case "text":
		for _, c := range chunks(b.Text) {
			out = append(out, struct {
				Type string `json:"type"`
				Text string `json:"text"`
			}{"text_delta", c})
		}
	case "tool_use":
		var compact bytes.Buffer
		if json.Compact(&compact, b.Input) != nil {
			compact.Reset()
			compact.Write(b.Input)
		}
		// The real API's first fragment is usually empty.
		for _, c := range append([]string{""}, chunks(compact.String())...) {
			out = append(out, struct {
				Type        string `json:"type"`
				PartialJSON string `json:"partial_json"`
			}{"input_json_delta", c})
		}
	case "thinking":
		for _, c := range chunks(b.Thinking) {
			out = append(out, struct {
				Type     string `json:"type"`
				Thinking string `json:"thinking"`
			}{"thinking_delta", c})
		}
		out = append(out, struct {
			Type      string `json:"type"`
			Signature string `json:"signature"`
		}{"signature_delta", b.Signature})
	}
	return out
}

// chunkSizes are the byte lengths deltas are cut to, in turn, so fragments
// split text and JSON at arbitrary points.
var chunkSizes = []int{5, 3, 8, 2, 6, 4}

// chunks splits s into pieces of chunkSizes bytes, never inside a UTF-8
// sequence.
func chunks(s string) []string {
	var out []string
	for i := 0; s != ""; i++ {
		n := min(chunkSizes[i%len(chunkSizes)], len(s))
		for n < len(s) && !utf8.RuneStart(s[n]) {
			n++
		}
		out = append(out, s[:n])
		s = s[n:]
	}
	return out
}

// frame is one SSE frame to send.
type frame struct {
	name  string
	data  []byte
	usage *Tokens // the usage figures the frame reports, if it reports any
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("upstreamtest: marshal: " + err.Error()) // only our own wire types are marshalled
	}
	return b
}

// messageJSON is the full message of a non-streaming reply.
func messageJSON(r *Response) []byte {
	content := make([]any, len(r.Content))
	for i, b := range r.Content {
		content[i] = wireBlock(b, false)
	}
	return mustJSON(wireMessage{
		ID: r.ID, Type: "message", Role: "assistant", Model: r.Model, Content: content,
		StopReason: &r.StopReason, StopSequence: nullable(r.StopSequence), Usage: wholeUsage(r),
	})
}

// wholeUsage is a whole reply's usage: the figures and every extra field.
func wholeUsage(r *Response) wireUsage {
	u := toWireUsage(r.Usage)
	start, delta := usageFields(r)
	for k, f := range delta {
		if start == nil {
			start = map[string]json.RawMessage{}
		}
		start[k] = f
	}
	u.extra = start
	return u
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// streamFrames is the real event sequence for r: message_start, per block
// content_block_start (ping after the first), deltas and content_block_stop,
// then message_delta and message_stop.
func streamFrames(r *Response) []frame {
	start := r.Usage
	start.Output = min(1, start.Output)
	final := r.Usage
	startFields, deltaFields := usageFields(r)
	startUsage := toWireUsage(start)
	startUsage.extra = startFields
	frames := []frame{{
		name: "message_start",
		data: mustJSON(struct {
			Type    string      `json:"type"`
			Message wireMessage `json:"message"`
		}{"message_start", wireMessage{
			ID: r.ID, Type: "message", Role: "assistant", Model: r.Model, Content: []any{},
			Usage: startUsage,
		}}),
		usage: &start,
	}}
	for i, b := range r.Content {
		frames = append(frames, frame{name: "content_block_start", data: mustJSON(struct {
			Type         string `json:"type"`
			Index        int    `json:"index"`
			ContentBlock any    `json:"content_block"`
		}{"content_block_start", i, wireBlock(b, true)})})
		if i == 0 {
			frames = append(frames, frame{name: "ping", data: []byte(`{"type":"ping"}`)})
		}
		for _, d := range blockDeltas(b) {
			frames = append(frames, frame{name: "content_block_delta", data: mustJSON(struct {
				Type  string `json:"type"`
				Index int    `json:"index"`
				Delta any    `json:"delta"`
			}{"content_block_delta", i, d})})
		}
		frames = append(frames, frame{name: "content_block_stop", data: mustJSON(struct {
			Type  string `json:"type"`
			Index int    `json:"index"`
		}{"content_block_stop", i})})
	}
	du := wireDeltaUsage{OutputTokens: final.Output, extra: deltaFields}
	if !r.LegacyDeltaUsage {
		du.InputTokens, du.CacheCreationInputTokens, du.CacheReadInputTokens = &final.Input, &final.CacheWrite, &final.CacheRead
	}
	type stopDelta struct {
		StopReason   *string `json:"stop_reason"`
		StopSequence *string `json:"stop_sequence"`
	}
	frames = append(frames,
		frame{name: "message_delta", data: mustJSON(struct {
			Type  string         `json:"type"`
			Delta stopDelta      `json:"delta"`
			Usage wireDeltaUsage `json:"usage"`
		}{"message_delta", stopDelta{&r.StopReason, nullable(r.StopSequence)}, du}), usage: &final},
		frame{name: "message_stop", data: []byte(`{"type":"message_stop"}`)},
	)
	return frames
}

// cutIndex returns the index of the frame a cut replaces: the one after the
// AfterDeltas-th content_block_delta, or message_delta if there are fewer.
// Without a cut it returns len(frames).
func cutIndex(frames []frame, c *Cut) int {
	if c == nil {
		return len(frames)
	}
	deltas := 0
	for i, f := range frames {
		if f.name == "message_delta" {
			return i
		}
		if f.name == "content_block_delta" {
			if deltas >= c.AfterDeltas {
				return i
			}
			deltas++
		}
	}
	return len(frames)
}

// writeFrame writes and flushes one SSE frame; it reports success.
func writeFrame(w http.ResponseWriter, rc *http.ResponseController, name string, data []byte) bool {
	if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, data); err != nil {
		return false
	}
	return rc.Flush() == nil
}

func startSSE(w http.ResponseWriter) *http.ResponseController {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush() // a failure shows on the first frame write
	return rc
}

// stream sends r as SSE frames, flushing each.
func (s *Server) stream(ctx context.Context, w http.ResponseWriter, r *Response) {
	frames := streamFrames(r)
	cut := cutIndex(frames, r.Cut)
	rc := startSSE(w)
	var sent *Tokens
	for i, f := range frames {
		if i > 0 && !wait(ctx, r.EventDelay) {
			return
		}
		if i == cut {
			s.cutStream(ctx, w, rc, r.Cut)
			return
		}
		if !writeFrame(w, rc, f.name, f.data) {
			return
		}
		if f.usage != nil {
			s.account(sent, *f.usage)
			sent = f.usage
		}
		if i == 0 && !s.hold(ctx, r.Hold) {
			return
		}
	}
}

func (s *Server) cutStream(ctx context.Context, w http.ResponseWriter, rc *http.ResponseController, c *Cut) {
	switch c.Mode {
	case CutAbort:
		panic(http.ErrAbortHandler)
	case CutHang:
		<-ctx.Done()
	default:
		writeFrame(w, rc, "error", mustJSON(struct {
			Type  string    `json:"type"`
			Error wireError `json:"error"`
		}{"error", wireErr(*c.Error)}))
	}
}

// nonStream sends r as one JSON message.
func (s *Server) nonStream(ctx context.Context, w http.ResponseWriter, r *Response, reqID string) {
	if r.Cut != nil && r.Cut.Mode == CutError {
		writeError(w, reqID, r.Cut.Error)
		return
	}
	if !s.hold(ctx, r.Hold) {
		return
	}
	body := messageJSON(r)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if r.Cut != nil {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body[:len(body)/2])
		_ = http.NewResponseController(w).Flush()
		if r.Cut.Mode == CutAbort {
			panic(http.ErrAbortHandler)
		}
		<-ctx.Done()
		return
	}
	// Counted before writing: the client may have the whole body before
	// this handler returns.
	s.account(nil, r.Usage)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// replay sends r.Raw verbatim: SSE frame by frame, or JSON at once.
func (s *Server) replay(ctx context.Context, w http.ResponseWriter, r *Response) {
	raw := bytes.ReplaceAll(r.Raw, []byte("\r\n"), []byte("\n"))
	trimmed := bytes.TrimLeft(raw, " \t\n")
	if !bytes.HasPrefix(trimmed, []byte("event:")) && !bytes.HasPrefix(trimmed, []byte("data:")) {
		var v struct {
			Usage *wireUsageIn `json:"usage"`
		}
		if json.Unmarshal(raw, &v) == nil && v.Usage != nil {
			var t Tokens
			v.Usage.mergeInto(&t)
			s.account(nil, t)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(r.Raw)
		return
	}
	rc := startSSE(w)
	var acc Tokens
	var sent *Tokens
	for i, fr := range bytes.Split(trimmed, []byte("\n\n")) {
		if len(bytes.TrimSpace(fr)) == 0 {
			continue
		}
		if i > 0 && !wait(ctx, r.EventDelay) {
			return
		}
		if _, err := fmt.Fprintf(w, "%s\n\n", fr); err != nil || rc.Flush() != nil {
			return
		}
		if frameUsage(fr, &acc) {
			s.account(sent, acc)
			u := acc
			sent = &u
		}
		if i == 0 && !s.hold(ctx, r.Hold) {
			return
		}
	}
}

// wireUsageIn reads a usage object, telling absent fields from zero ones.
type wireUsageIn struct {
	InputTokens              *int64 `json:"input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
	CacheCreation            *struct {
		Ephemeral5m *int64 `json:"ephemeral_5m_input_tokens"`
		Ephemeral1h *int64 `json:"ephemeral_1h_input_tokens"`
	} `json:"cache_creation"`
}

// mergeInto overwrites the fields of t that u carries.
func (u *wireUsageIn) mergeInto(t *Tokens) {
	set := func(dst *int64, src *int64) {
		if src != nil {
			*dst = *src
		}
	}
	set(&t.Input, u.InputTokens)
	set(&t.Output, u.OutputTokens)
	set(&t.CacheWrite, u.CacheCreationInputTokens)
	set(&t.CacheRead, u.CacheReadInputTokens)
	if u.CacheCreation != nil {
		set(&t.CacheWrite5m, u.CacheCreation.Ephemeral5m)
		set(&t.CacheWrite1h, u.CacheCreation.Ephemeral1h)
	}
}

// frameUsage applies the usage a raw SSE frame carries (message_start's
// message.usage, message_delta's usage) to acc and reports whether it had any.
func frameUsage(fr []byte, acc *Tokens) bool {
	var data []byte
	for line := range bytes.Lines(fr) {
		if d, ok := bytes.CutPrefix(bytes.TrimRight(line, "\n"), []byte("data:")); ok {
			data = append(data, bytes.TrimPrefix(d, []byte(" "))...)
		}
	}
	var ev struct {
		Type    string `json:"type"`
		Message *struct {
			Usage *wireUsageIn `json:"usage"`
		} `json:"message"`
		Usage *wireUsageIn `json:"usage"`
	}
	if json.Unmarshal(data, &ev) != nil {
		return false
	}
	switch {
	case ev.Type == "message_start" && ev.Message != nil && ev.Message.Usage != nil:
		*acc = Tokens{}
		ev.Message.Usage.mergeInto(acc)
		return true
	case ev.Type == "message_delta" && ev.Usage != nil:
		ev.Usage.mergeInto(acc)
		return true
	}
	return false
}

type wireError struct {
	Type    string            `json:"type"`
	Message string            `json:"message"`
	Details *wireErrorDetails `json:"details,omitempty"`
}

type wireErrorDetails struct {
	ErrorCode string `json:"error_code"`
}

// wireErr is e's error object, with details when e has an error code.
func wireErr(e Error) wireError {
	w := wireError{Type: e.Type, Message: e.Message}
	if e.Code != "" {
		w.Details = &wireErrorDetails{ErrorCode: e.Code}
	}
	return w
}

// writeError sends e in the Anthropic error envelope.
func writeError(w http.ResponseWriter, reqID string, e *Error) {
	f := e.filled(http.StatusInternalServerError)
	writeJSON(w, f.Status, struct {
		Type      string    `json:"type"`
		Error     wireError `json:"error"`
		RequestID string    `json:"request_id"`
	}{"error", wireErr(f), reqID})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body := mustJSON(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// countTokens answers POST /v1/messages/count_tokens.
func (s *Server) countTokens(w http.ResponseWriter, req *Request) {
	if msg := validateCountTokens(req.Body); msg != "" {
		writeError(w, req.RequestID, &Error{Status: http.StatusBadRequest, Message: msg})
		return
	}
	writeJSON(w, http.StatusOK, struct {
		InputTokens int `json:"input_tokens"`
	}{max(1, len(req.Body)/4)})
}

type wireModel struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	CreatedAt   string `json:"created_at"`
}

func toWireModel(m Model) wireModel {
	name, created := m.DisplayName, m.CreatedAt
	if name == "" {
		name = m.ID
	}
	if created.IsZero() {
		created = defaultCreatedAt
	}
	return wireModel{"model", m.ID, name, created.UTC().Format("2006-01-02T15:04:05Z07:00")}
}

// listModels answers GET /v1/models with limit, after_id and before_id.
func (s *Server) listModels(w http.ResponseWriter, r *http.Request, reqID string) {
	q := r.URL.Query()
	limit := 20
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, reqID, &Error{Status: http.StatusBadRequest, Message: "limit: Input should be between 1 and 1000"})
			return
		}
		limit = n
	}
	items := s.models
	index := func(id string) int {
		return slices.IndexFunc(items, func(m Model) bool { return m.ID == id })
	}
	if id := q.Get("after_id"); id != "" {
		items = items[index(id)+1:] // an unknown id (-1) keeps the whole list
	}
	var page []Model
	hasMore := false
	if id := q.Get("before_id"); id != "" {
		if i := index(id); i >= 0 {
			items = items[:i]
		}
		hasMore = len(items) > limit
		page = items[max(0, len(items)-limit):]
	} else {
		hasMore = len(items) > limit
		page = items[:min(limit, len(items))]
	}
	data := make([]wireModel, len(page))
	for i, m := range page {
		data[i] = toWireModel(m)
	}
	var first, last *string
	if len(data) > 0 {
		first, last = &data[0].ID, &data[len(data)-1].ID
	}
	writeJSON(w, http.StatusOK, struct {
		Data    []wireModel `json:"data"`
		HasMore bool        `json:"has_more"`
		FirstID *string     `json:"first_id"`
		LastID  *string     `json:"last_id"`
	}{data, hasMore, first, last})
}

// getModel answers GET /v1/models/{id}.
func (s *Server) getModel(w http.ResponseWriter, reqID, id string) {
	for _, m := range s.models {
		if m.ID == id {
			writeJSON(w, http.StatusOK, toWireModel(m))
			return
		}
	}
	writeError(w, reqID, &Error{Status: http.StatusNotFound, Message: "model: " + id})
}

// defaultCreatedAt is the created_at of a Model without one.
var defaultCreatedAt = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// idAlphabet is the base62 alphabet of made-up ids.
const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newID returns prefix + "01" + 22 random base62 characters, the shape of
// real msg_, req_ and toolu_ ids.
func newID(prefix string) string {
	b := make([]byte, 22)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return prefix + "01" + string(b)
}

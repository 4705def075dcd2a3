package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/sse"
)

// Dialect is one client API the gateway speaks: Anthropic Messages (passed
// through), OpenAI Chat Completions, OpenAI Responses, Gemini. Each is a thin
// adapter (chat.go, responses.go, gemini.go, messages.go) over a pure package
// that knows the dialect's shapes; infer drives them all the same way.
type Dialect interface {
	// Name is the dialect's name in the request log (llmgw.Dialect*).
	Name() string
	// Decode reads a client request, whose body was read once, into what
	// goes upstream and how to answer. Its errors are the client's fault and
	// are answered through Error.
	Decode(r *http.Request, body []byte) (*Exchange, error)
	// Error renders an error in the dialect's shape, with the status its
	// SDKs expect for it.
	Error(e ErrorInfo) (status int, body []byte)
}

// ErrorInfo is an error as the gateway knows it, for a Dialect to render.
type ErrorInfo struct {
	Status    int    // the HTTP status, Anthropic's meaning
	Type      string // Anthropic's error type
	Message   string
	Param     string // the request field at fault, where known
	RequestID string // llmgw's request id
	// Upstream is the upstream's own error answer, when there is one: a
	// pass-through client gets it byte for byte, with UpstreamStatus.
	Upstream       []byte
	UpstreamStatus int
}

// Exchange is one decoded client request and how to answer it.
type Exchange struct {
	Model  string
	Stream bool // the client asked for a stream
	// MaxTokens is the pass-through request's max_tokens, for the estimate
	// a limit reserves (a converted request has it in Request).
	MaxTokens int
	// Session is the conversation the request belongs to as the dialect
	// tells it (see sessionOf); "" if it cannot.
	Session string
	// stable are the request's tools, system prompt and messages, raw, when
	// the dialect has them at hand, for the session hash (see sessionOf).
	stable [][]byte
	// Request is the request converted to Anthropic. It is sent as a stream
	// unless the client wants the answer whole and the answer will be short
	// (shortAnswer, in infer.go); Final builds a non-stream client's answer
	// either way. Nil for pass-through, which sends Body byte for byte
	// instead.
	Request *anthropic.Request
	Body    []byte
	// Encoder writes the answer's stream in the client's dialect.
	Encoder StreamEncoder
	// ContentType of the stream; default text/event-stream.
	ContentType string
	// Final builds a non-stream client's answer from the whole upstream
	// answer, streamed or not (converted requests only).
	Final func(acc *anthropic.Accumulator) ([]byte, error)
	// Notes say, for the debug log, what the conversion left out or changed.
	Notes []slog.Attr
}

func (x *Exchange) contentType() string {
	if x.ContentType != "" {
		return x.ContentType
	}
	return "text/event-stream"
}

// StreamEncoder writes upstream stream events in a client's dialect. The
// stream pump feeds it every upstream event in order, error events and the
// pump's own pings included, and flushes when the upstream has nothing more
// at hand.
type StreamEncoder interface {
	// Event handles one upstream event, writing zero or more frames. After
	// an error event the pump writes nothing more.
	Event(w io.Writer, ev sse.Event) error
	// Fail ends the stream with the dialect's error: the upstream broke off
	// or ended without message_stop, or the gateway gave up while the
	// stream's opening was held. It is called at most once, last.
	Fail(w io.Writer, errType, message string) error
}

// DialectEncoder is what the dialect packages implement: they translate an
// event's name and data and know nothing of SSE framing.
type DialectEncoder interface {
	Event(w io.Writer, name string, data []byte) error
	Fail(w io.Writer, errType, message string) error
}

// translated adapts a DialectEncoder to the pump: an upstream error event
// becomes the dialect's failure.
type translated struct{ DialectEncoder }

func (t translated) Event(w io.Writer, ev sse.Event) error {
	if ev.Name == "error" {
		d := anthropic.ParseError(ev.Data)
		return t.Fail(w, nonEmpty(d.Type, "api_error"), d.Message)
	}
	return t.DialectEncoder.Event(w, ev.Name, ev.Data)
}

// passthrough is the byte-faithful encoder: every upstream frame goes to
// the client as it came, error events included.
type passthrough struct{ requestID string }

func (passthrough) Event(w io.Writer, ev sse.Event) error {
	_, err := w.Write(ev.Raw)
	return err
}

func (p passthrough) Fail(w io.Writer, errType, msg string) error {
	_, err := w.Write(sse.Frame("error", anthropic.MarshalError(errType, msg, p.requestID)))
	return err
}

// dialectFor finds the dialect of a request from its path, so that every
// error on its way, authentication included, is in the client's shape.
func (s *Server) dialectFor(method, path string) Dialect {
	switch {
	case method == http.MethodPost && strings.HasPrefix(path, "/v1/models/"):
		return s.dialects.gemini // Gemini's v1 generateContent paths
	case strings.HasPrefix(path, "/v1/chat/"):
		return s.dialects.chat
	case strings.HasPrefix(path, "/v1/responses"):
		return s.dialects.responses
	case strings.HasPrefix(path, "/v1beta/"):
		return s.dialects.gemini
	}
	return s.dialects.anthropic
}

// dialects are the dialects a Server speaks.
type dialects struct {
	anthropic, chat, responses, gemini Dialect
}

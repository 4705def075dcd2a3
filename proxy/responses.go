package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/responses"
)

// responsesDialect is OpenAI Responses (POST /v1/responses), as Codex and
// the Agents SDKs speak it. Nothing is stored: previous_response_id and
// other stateful fields get a 400 in OpenAI's shape.
type responsesDialect struct{ opt responses.DecodeOptions }

func (responsesDialect) Name() string { return llmgw.DialectResponses }

func (d responsesDialect) Decode(_ *http.Request, body []byte) (*Exchange, error) {
	req, info, err := responses.Decode(body, d.opt)
	if err != nil {
		var re *responses.RequestError
		if errors.As(err, &re) {
			return nil, fieldErr(re.Param, re.Error())
		}
		return nil, fmt.Errorf("decode responses request: %w", err)
	}
	x := &Exchange{Model: req.Model, Stream: info.Stream, Request: req, Session: info.Session,
		Encoder: translated{responses.NewEncoder(info)},
		Final:   func(acc *anthropic.Accumulator) ([]byte, error) { return responses.Result(acc, info) },
	}
	if len(info.Notes) > 0 {
		x.Notes = []slog.Attr{slog.Any("notes", info.Notes)}
	}
	return x, nil
}

func (responsesDialect) Error(e ErrorInfo) (int, []byte) {
	status, body := responses.ErrorBody(e.Status, e.Type, e.Message)
	return status, withParam(body, e.Param)
}

// responsesWebSocket answers GET /v1/responses. Codex opens its Responses
// session as a WebSocket there and falls back to POST over HTTP only when
// the upgrade is refused with 426 Upgrade Required; any other refusal ends
// its turn. llmgw speaks HTTP only, so the upgrade gets that 426, in the
// Responses error shape, before authentication: the answer reveals nothing
// and a client whose key is wrong learns so on its HTTP request. A GET
// without an upgrade is refused as a wrong method.
func (s *Server) responsesWebSocket(w http.ResponseWriter, r *http.Request) error {
	if !headerHasToken(r.Header, "Upgrade", "websocket") {
		return clientErr(http.StatusMethodNotAllowed, "invalid_request_error", "method GET is not allowed on /v1/responses: send POST")
	}
	w.Header().Set("Upgrade", "HTTP/1.1")
	return clientErr(http.StatusUpgradeRequired, "invalid_request_error",
		"llmgw does not serve the Responses API over WebSocket: send POST /v1/responses over HTTP")
}

// headerHasToken reports whether a comma-separated header holds token,
// case-insensitively.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), token) {
				return true
			}
		}
	}
	return false
}

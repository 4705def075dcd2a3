package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

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

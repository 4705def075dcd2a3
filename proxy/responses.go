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

// responses serves POST /v1/responses (OpenAI Responses): the request is
// converted to Anthropic, sent through the same account choice and failover
// as native traffic, and answered as a Responses object or event stream.
// Nothing is stored: previous_response_id and other stateful fields get a
// 400 in OpenAI's shape.
func (s *Server) responses(w http.ResponseWriter, r *http.Request) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	req, info, err := responses.Decode(body, responses.DecodeOptions{Aliases: s.cfg.Aliases})
	if err != nil {
		var re *responses.RequestError
		if errors.As(err, &re) {
			return fieldErr(re.Param, re.Error())
		}
		return fmt.Errorf("decode responses request: %w", err)
	}
	if len(info.Notes) > 0 && s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "responses request adjusted",
			slog.String("request_id", entryFrom(r.Context()).id), slog.Any("notes", info.Notes))
	}
	return s.convert(w, r, &conversion{
		dialect: llmgw.DialectResponses,
		request: req,
		stream:  info.Stream,
		encoder: responses.NewEncoder(info),
		final:   func(acc *anthropic.Accumulator) ([]byte, error) { return responses.Result(acc, info) },
	})
}

// responsesErrorBody renders an error in OpenAI's shape for Responses
// clients.
func responsesErrorBody(status int, errType, msg string) (int, []byte) {
	return responses.ErrorBody(status, errType, msg)
}

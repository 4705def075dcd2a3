package proxy

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/openai"
)

// chatCompletions serves POST /v1/chat/completions (OpenAI Chat Completions):
// the request is converted to Anthropic, sent through the same account
// choice and failover as native traffic, and the answer converted back.
func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	req, info, err := openai.DecodeChat(body, openai.DecodeOptions{Aliases: s.cfg.Aliases})
	if err != nil {
		var re *openai.RequestError
		if errors.As(err, &re) {
			return fieldErr(re.Param, re.Error())
		}
		return fmt.Errorf("decode chat request: %w", err)
	}
	if len(info.Ignored) > 0 {
		s.log.Debug("chat request fields ignored", "request_id", entryFrom(r.Context()).id, "fields", info.Ignored)
	}
	return s.convert(w, r, &conversion{
		dialect: llmgw.DialectOpenAI,
		request: req,
		stream:  info.Stream,
		encoder: openai.NewChatEncoder(info),
		final: func(acc *anthropic.Accumulator) ([]byte, error) {
			return openai.ChatResult(acc, info)
		},
	})
}

// openaiErrorBody renders an error in OpenAI's shape, with the status the
// OpenAI SDKs expect for it.
func openaiErrorBody(status int, errType, msg string) (int, []byte) {
	return openai.ErrorBody(status, errType, msg)
}

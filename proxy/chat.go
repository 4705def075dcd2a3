package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/openai"
)

// chatDialect is OpenAI Chat Completions (POST /v1/chat/completions): the
// request is converted to Anthropic and the answer converted back, chunk by
// chunk or whole.
type chatDialect struct{ opt openai.DecodeOptions }

func (chatDialect) Name() string { return llmgw.DialectOpenAI }

func (d chatDialect) Decode(_ *http.Request, body []byte) (*Exchange, error) {
	req, info, err := openai.DecodeChat(body, d.opt)
	if err != nil {
		var re *openai.RequestError
		if errors.As(err, &re) {
			return nil, fieldErr(re.Param, re.Error())
		}
		return nil, fmt.Errorf("decode chat request: %w", err)
	}
	x := &Exchange{Model: req.Model, Stream: info.Stream, Request: req, Session: info.Session,
		Encoder: translated{openai.NewChatEncoder(info)},
		Final:   func(acc *anthropic.Accumulator) ([]byte, error) { return openai.ChatResult(acc, info) },
	}
	if len(info.Ignored) > 0 {
		x.Notes = append(x.Notes, slog.Any("ignored", info.Ignored))
	}
	if len(info.Notes) > 0 {
		x.Notes = append(x.Notes, slog.Any("notes", info.Notes))
	}
	return x, nil
}

func (chatDialect) Error(e ErrorInfo) (int, []byte) {
	status, body := openai.ErrorBody(e.Status, e.Type, e.Message)
	return status, withParam(body, e.Param)
}

// withParam sets error.param in an OpenAI-shaped error body.
func withParam(body []byte, param string) []byte {
	if param == "" {
		return body
	}
	var doc map[string]map[string]any
	if json.Unmarshal(body, &doc) != nil || doc["error"] == nil {
		return body
	}
	doc["error"]["param"] = param
	out, err := marshalNoEscape(doc)
	if err != nil {
		return body
	}
	return out
}

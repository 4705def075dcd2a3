// Package openai converts OpenAI Chat Completions requests to Anthropic
// Messages requests, and Anthropic answers (whole or as stream events) back
// to Chat Completions responses and chunks. It is pure translation: no
// network code, no accounts, no storage.
//
// DecodeChat converts the request, ChatEncoder (streamed) and ChatResult
// (whole) the answer, and ErrorBody an error. Each rule they apply is stated
// where it is applied, and tested on its own in edge_test.go.
package openai

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/llmgw/llmgw/proxy/anthropic"
)

// RequestError is a client request that cannot be converted: malformed, or
// asking for something Anthropic cannot do without changing its meaning
// (n > 1, input audio, an OpenAI file id). It always means HTTP 400 with
// error type invalid_request_error.
type RequestError struct {
	// Param names the offending field the way OpenAI does, such as
	// "messages[2].content[0].image_url" or "n"; empty when the body as a
	// whole is at fault.
	Param string
	// Message says what is wrong and, where it helps, what to send instead.
	Message string
}

// Error returns the message, prefixed with the field when there is one.
func (e *RequestError) Error() string {
	if e.Param == "" {
		return e.Message
	}
	return e.Param + ": " + e.Message
}

// errorObject is OpenAI's error object.
type errorObject struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

type errorEnvelope struct {
	Error errorObject `json:"error"`
}

// ErrorBody renders an Anthropic error (its HTTP status, error type and
// message) as OpenAI's error body {"error":{"message","type","param","code"}}
// and returns the status to send with it. OpenAI SDKs pick their error class
// from the status alone, so the status follows the error, except that 529
// overloaded becomes 503, which every OpenAI SDK knows and retries. A context
// overflow ("prompt is too long", "exceed context limit") carries code
// context_length_exceeded, which makes Codex and other agents compact their
// history; a rate limit carries rate_limit_exceeded (insufficient_quota for a
// spend limit).
func ErrorBody(status int, anthType, msg string) (int, []byte) {
	outStatus, typ, code := mapError(status, anthType, msg)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "215000 tokens > 200000 maximum" stays readable
	if err := enc.Encode(errorEnvelope{Error: errorObject{Message: msg, Type: typ, Code: code}}); err != nil {
		// Cannot happen with strings only; keep a valid body anyway.
		return outStatus, []byte(`{"error":{"message":"internal error","type":"server_error","param":null,"code":null}}`)
	}
	return outStatus, bytes.TrimRight(buf.Bytes(), "\n")
}

// mapError maps an Anthropic error to what OpenAI's API would answer: the
// status to send, OpenAI's error type and code. It serves Chat Completions
// and Responses alike, which share OpenAI's error shape.
func mapError(status int, anthType, msg string) (int, string, *string) {
	code := func(s string) *string { return &s }
	if anthType == "" {
		anthType = anthropic.ErrorType(status)
	}
	lower := strings.ToLower(msg)
	switch anthType {
	case "invalid_request_error":
		if status < 400 || status >= 500 {
			status = http.StatusBadRequest
		}
		switch {
		case anthropic.IsContextOverflow(msg):
			return status, "invalid_request_error", code("context_length_exceeded")
		case status == http.StatusNotFound && strings.Contains(lower, "model"):
			return status, "invalid_request_error", code("model_not_found")
		case status == http.StatusRequestEntityTooLarge:
			return status, "invalid_request_error", code("request_too_large")
		}
		return status, "invalid_request_error", nil
	case "authentication_error":
		// OpenAI itself answers a bad key with invalid_request_error and
		// code invalid_api_key.
		return http.StatusUnauthorized, "invalid_request_error", code("invalid_api_key")
	case "billing_error":
		return http.StatusPaymentRequired, "insufficient_quota", code("insufficient_quota")
	case "permission_error":
		return http.StatusForbidden, "permission_error", nil
	case "not_found_error":
		if strings.Contains(lower, "model") {
			return http.StatusNotFound, "invalid_request_error", code("model_not_found")
		}
		return http.StatusNotFound, "invalid_request_error", nil
	case "conflict_error":
		// OpenAI's SDKs, like Anthropic's, retry a 409 on their own.
		return http.StatusConflict, "invalid_request_error", code("conflict")
	case "request_too_large":
		return http.StatusRequestEntityTooLarge, "invalid_request_error", code("request_too_large")
	case "rate_limit_error":
		if strings.Contains(lower, "spend limit") || strings.Contains(lower, "spend_limit") {
			return http.StatusTooManyRequests, "insufficient_quota", code("insufficient_quota")
		}
		return http.StatusTooManyRequests, "rate_limit_error", code("rate_limit_exceeded")
	case "timeout_error":
		return http.StatusGatewayTimeout, "server_error", code("timeout")
	case "overloaded_error":
		return http.StatusServiceUnavailable, "server_error", code("overloaded")
	case "api_error":
		if status < 500 {
			status = http.StatusInternalServerError
		}
		return status, "server_error", nil
	}
	// An error type newer than this table: go by the status.
	switch {
	case status == 529:
		return http.StatusServiceUnavailable, "server_error", code("overloaded")
	case status >= 500:
		return status, "server_error", nil
	case status >= 400:
		return status, "invalid_request_error", nil
	}
	return http.StatusInternalServerError, "server_error", nil
}

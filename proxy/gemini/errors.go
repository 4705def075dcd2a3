package gemini

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/llmgw/llmgw/proxy/anthropic"
)

// ErrorBody renders an error in Google's shape,
// {"error":{"code":N,"message":…,"status":"…"}}, and returns the HTTP status
// to send with it. google.golang.org/genai turns that body into its
// APIError (Code, Message, Status) and retries by status: 429 and 5xx are
// retryable, 4xx are not. So Anthropic's 529 overloaded becomes 503
// UNAVAILABLE (Google has no 529), 402 billing stays 402 with
// RESOURCE_EXHAUSTED (what the Gemini API answers when prepaid credit runs
// out), 409 conflict is ABORTED (Google's name for 409), 504 timeout
// DEADLINE_EXCEEDED, and anthType decides when status is not an error
// status (an error that arrived inside a stream).
func ErrorBody(status int, anthType, msg string) (int, []byte) {
	if status < 400 {
		status = anthropic.ErrorStatus(anthType)
	}
	code, st := googleStatus(status)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Messages such as "tokens > maximum" stay readable. Encoding plain
	// values cannot fail.
	enc.SetEscapeHTML(false)
	_ = enc.Encode(errorEnvelope{Error: errorObject{Code: code, Message: msg, Status: st}})
	return code, bytes.TrimRight(buf.Bytes(), "\n")
}

type errorEnvelope struct {
	Error errorObject `json:"error"`
}

type errorObject struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
}

// googleStatus maps an HTTP status to the one Google would send and its
// canonical status name.
func googleStatus(status int) (int, string) {
	switch status {
	case http.StatusBadRequest:
		return status, "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return status, "UNAUTHENTICATED"
	case http.StatusPaymentRequired:
		return status, "RESOURCE_EXHAUSTED"
	case http.StatusForbidden:
		return status, "PERMISSION_DENIED"
	case http.StatusNotFound:
		return status, "NOT_FOUND"
	case http.StatusConflict:
		return status, "ABORTED"
	case http.StatusTooManyRequests:
		return status, "RESOURCE_EXHAUSTED"
	case http.StatusServiceUnavailable, 529:
		return http.StatusServiceUnavailable, "UNAVAILABLE"
	case http.StatusBadGateway:
		return status, "UNAVAILABLE"
	case http.StatusGatewayTimeout, http.StatusRequestTimeout:
		return http.StatusGatewayTimeout, "DEADLINE_EXCEEDED"
	case http.StatusNotImplemented:
		return status, "UNIMPLEMENTED"
	}
	if status >= 500 {
		return status, "INTERNAL"
	}
	return status, "INVALID_ARGUMENT" // 405, 413 and other client errors
}

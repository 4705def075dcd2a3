package proxy

import (
	"encoding/json"
	"net/http"
)

// chatCompletions serves POST /v1/chat/completions (OpenAI Chat Completions).
func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) error {
	return clientErr(http.StatusNotImplemented, "api_error", "chat completions are not served yet")
}

// openaiErrorBody renders an error in OpenAI's shape.
func openaiErrorBody(status int, errType, msg string) (int, []byte) {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": errType, "param": nil, "code": nil}})
	return status, b
}

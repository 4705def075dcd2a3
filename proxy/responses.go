package proxy

import (
	"encoding/json"
	"net/http"
)

// responses serves POST /v1/responses (OpenAI Responses).
func (s *Server) responses(w http.ResponseWriter, r *http.Request) error {
	return clientErr(http.StatusNotImplemented, "api_error", "responses are not served yet")
}

// responsesErrorBody renders an error in OpenAI's shape.
func responsesErrorBody(status int, errType, msg string) (int, []byte) {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": errType, "param": nil, "code": nil}})
	return status, b
}

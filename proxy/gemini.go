package proxy

import (
	"encoding/json"
	"net/http"
)

// geminiGenerate serves POST /v1beta/models/{model}:generateContent and
// :streamGenerateContent.
func (s *Server) geminiGenerate(w http.ResponseWriter, r *http.Request) error {
	return clientErr(http.StatusNotImplemented, "api_error", "gemini is not served yet")
}

// geminiModels serves GET /v1beta/models and /v1beta/models/{model}.
func (s *Server) geminiModels(w http.ResponseWriter, r *http.Request) error {
	return clientErr(http.StatusNotImplemented, "api_error", "gemini is not served yet")
}

// geminiErrorBody renders an error in Google's shape.
func geminiErrorBody(status int, errType, msg string) (int, []byte) {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"code": status, "message": msg, "status": "INTERNAL"}})
	return status, b
}

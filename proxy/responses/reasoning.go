package responses

import (
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/llmgw/llmgw/proxy/anthropic"
)

// markerPrefix starts the encrypted_content of every reasoning item llmgw
// emits. Anything else in encrypted_content (OpenAI's Fernet tokens start
// with "gAAAA") is foreign and never reaches the upstream.
const markerPrefix = "llmgw.thinking.v1:"

// sealedThinking is what a marker carries: a thinking block exactly as the
// upstream sent it, or a redacted_thinking block's data.
type sealedThinking struct {
	Type      string `json:"type"` // thinking or redacted_thinking
	Thinking  string `json:"thinking,omitempty"`
	Signature string `json:"signature,omitempty"`
	Data      string `json:"data,omitempty"`
}

// sealThinking returns the encrypted_content for a thinking or
// redacted_thinking block. The thinking text travels inside the marker too,
// so the round trip does not depend on the client keeping the summary text
// byte for byte: a signed block must come back unaltered.
func sealThinking(b sealedThinking) string {
	raw, _ := json.Marshal(b) // strings only: cannot fail
	return markerPrefix + base64.RawURLEncoding.EncodeToString(raw)
}

// openThinking returns the block a marker carries, exactly as the upstream
// sent it. ok is false for foreign or damaged content.
func openThinking(s string) (anthropic.ContentBlock, bool) {
	rest, found := strings.CutPrefix(s, markerPrefix)
	if !found {
		return anthropic.ContentBlock{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return anthropic.ContentBlock{}, false
	}
	var t sealedThinking
	if json.Unmarshal(raw, &t) != nil {
		return anthropic.ContentBlock{}, false
	}
	if t.Type != "thinking" && t.Type != "redacted_thinking" {
		return anthropic.ContentBlock{}, false
	}
	return anthropic.ContentBlock{Type: t.Type, Thinking: t.Thinking, Signature: t.Signature, Data: t.Data}, true
}

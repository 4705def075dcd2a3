package gemini

import (
	"bytes"
	"encoding/base64"
	"encoding/json"

	"github.com/llmgw/llmgw/proxy/anthropic"
)

// carrierPrefix starts the bytes of every thoughtSignature llmgw makes, so
// that Decode can tell ours from Gemini's own.
const carrierPrefix = "llmgw.thinking.v1:"

// carried is a signed thinking or redacted_thinking block, kept whole:
// Anthropic needs both the text and the signature back unchanged.
type carried struct {
	Type      string `json:"type"`
	Thinking  string `json:"thinking,omitempty"`
	Signature string `json:"signature,omitempty"`
	Data      string `json:"data,omitempty"`
}

// encodeCarrier returns the thoughtSignature (base64, as proto-JSON encodes
// bytes) that carries blocks.
func encodeCarrier(blocks []carried) string {
	var buf bytes.Buffer
	buf.WriteString(carrierPrefix)
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(blocks) // strings only: cannot fail
	return base64.StdEncoding.EncodeToString(bytes.TrimRight(buf.Bytes(), "\n"))
}

// decodeCarrier returns the thinking blocks a thoughtSignature carries,
// exactly as they were received, or nil when it is not one of ours.
func decodeCarrier(sig string) []anthropic.ContentBlock {
	s, ok := stdBase64(sig)
	if !ok {
		return nil
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || !bytes.HasPrefix(raw, []byte(carrierPrefix)) {
		return nil
	}
	var list []carried
	if json.Unmarshal(raw[len(carrierPrefix):], &list) != nil {
		return nil
	}
	var out []anthropic.ContentBlock
	for _, c := range list {
		if c.Type == "thinking" || c.Type == "redacted_thinking" {
			out = append(out, anthropic.ContentBlock{Type: c.Type, Thinking: c.Thinking, Signature: c.Signature, Data: c.Data})
		}
	}
	return out
}

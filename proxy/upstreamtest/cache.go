package upstreamtest

import (
	"crypto/sha256"
	"encoding/json"
	"strings"
)

// minCacheTokens is the smallest prefix Anthropic caches (Sonnet and Opus).
const minCacheTokens = 1024

// PromptCache makes derived usage behave like Anthropic's prompt cache: the
// request up to its last cache_control mark (tools, then system, then
// messages, the order the real cache keys on) is the cached prefix; when it
// is at least 1,024 tokens (a token is 4 bytes here), the first request with
// that prefix reports it as cache_creation_input_tokens and every later one
// as cache_read_input_tokens. The prefix is keyed per credential, since
// caches are per organization. Scripted usage is left alone.
func PromptCache() Option {
	return optionFunc(func(s *Server) { s.cache = make(map[[32]byte]bool) })
}

// cacheUsage splits a derived input count into cached and uncached parts.
// The caller holds no lock; cacheUsage takes s.mu.
func (s *Server) cacheUsage(req *Request, u *Tokens) {
	prefix := cachedPrefix(req.Body)
	tokens := int64(len(prefix) / 4)
	if tokens < minCacheTokens {
		return
	}
	key := sha256.Sum256(append([]byte(req.Key+"\x00"), prefix...))
	s.mu.Lock()
	seen := s.cache[key]
	s.cache[key] = true
	s.mu.Unlock()
	u.Input = max(1, u.Input-tokens)
	if seen {
		u.CacheRead = tokens
	} else {
		u.CacheWrite = tokens
	}
}

// cachedPrefix returns the request's content up to and including its last
// cache_control mark, or nil if it has none.
func cachedPrefix(body []byte) []byte {
	var req struct {
		Tools    []json.RawMessage `json:"tools"`
		System   json.RawMessage   `json:"system"`
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if json.Unmarshal(body, &req) != nil {
		return nil
	}
	var parts []string
	parts = append(parts, rawStrings(req.Tools)...)
	parts = append(parts, blocks(req.System)...)
	for _, m := range req.Messages {
		for _, b := range blocks(m.Content) {
			parts = append(parts, m.Role+":"+b)
		}
	}
	last := -1
	for i, p := range parts {
		if strings.Contains(p, `"cache_control"`) {
			last = i
		}
	}
	if last < 0 {
		return nil
	}
	return []byte(strings.Join(parts[:last+1], "\n"))
}

// blocks splits a string-or-array content value into its blocks.
func blocks(raw json.RawMessage) []string {
	var arr []json.RawMessage
	if json.Unmarshal(raw, &arr) == nil {
		return rawStrings(arr)
	}
	if len(raw) > 0 {
		return []string{string(raw)}
	}
	return nil
}

func rawStrings(rs []json.RawMessage) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

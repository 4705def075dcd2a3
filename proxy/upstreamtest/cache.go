package upstreamtest

import (
	"crypto/sha256"
	"encoding/json"
	"strings"
)

// minCacheTokens is the smallest prefix Anthropic caches (Sonnet and Opus).
const minCacheTokens = 1024

// PromptCache makes derived usage behave like Anthropic's prompt cache. A
// request is a list of blocks (tools, then system, then messages: the order
// the real cache keys on); the prefix up to each block marked with
// cache_control is written to the cache, and a request reads the longest
// prefix already cached that ends at a block boundary at most lookback
// blocks before one of its marks. Read tokens are reported as
// cache_read_input_tokens, the rest of the prefix up to the last mark as
// cache_creation_input_tokens. A prefix is cacheable from 1,024 tokens (a
// token is 4 bytes here). Caches are per credential, since they are per
// organization. Scripted usage is left alone.
func PromptCache() Option {
	return optionFunc(func(s *Server) { s.cache = make(map[[32]byte]bool) })
}

// lookback is how many blocks before a cache mark the cache looks for an
// earlier cached prefix.
const lookback = 20

// cacheUsage splits a derived input count into cached and uncached parts.
// The caller holds no lock; cacheUsage takes s.mu.
func (s *Server) cacheUsage(req *Request, u *Tokens) {
	parts := requestBlocks(req.Body)
	last := -1
	for i, p := range parts {
		if strings.Contains(p, `"cache_control"`) {
			last = i
		}
	}
	if last < 0 {
		return
	}
	// The hash and length of each prefix parts[:i+1], chained so the whole
	// request is hashed once.
	hashes := make([][32]byte, last+1)
	lengths := make([]int, last+1)
	var prev [32]byte
	n := 0
	for i := 0; i <= last; i++ {
		h := sha256.New()
		h.Write([]byte(req.Key + "\x00"))
		h.Write(prev[:])
		h.Write([]byte(unmarked(parts[i])))
		copy(hashes[i][:], h.Sum(nil))
		prev = hashes[i]
		n += len(parts[i]) + 1
		lengths[i] = n
	}
	tokens := func(i int) int64 { return int64(lengths[i] / 4) }
	if tokens(last) < minCacheTokens {
		return
	}
	s.mu.Lock()
	// Each mark looks back up to lookback blocks; the longest hit wins.
	read, mark := -1, -1
	for i := last; i >= 0; i-- {
		if strings.Contains(parts[i], `"cache_control"`) {
			mark = i
		}
		if mark-i <= lookback && tokens(i) >= minCacheTokens && s.cache[hashes[i]] {
			read = i
			break
		}
	}
	for i := 0; i <= last; i++ {
		if tokens(i) >= minCacheTokens && strings.Contains(parts[i], `"cache_control"`) {
			s.cache[hashes[i]] = true
		}
	}
	s.mu.Unlock()
	u.Input = max(1, u.Input-tokens(last))
	if read >= 0 {
		u.CacheRead = tokens(read)
	}
	u.CacheWrite = tokens(last) - u.CacheRead
}

// requestBlocks returns the request's content as blocks in cache order:
// tools, system blocks, then each message's blocks prefixed by its role.
func requestBlocks(body []byte) []string {
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
	return parts
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

// unmarked is a block without its cache_control mark, its fields in one
// order: the mark says where to cache, it is not part of what is cached, so
// a block marked in one turn and not the next is the same block.
func unmarked(block string) string {
	role, raw := "", block
	if !strings.HasPrefix(block, "{") { // a message block: "role:{...}"
		r, rest, _ := strings.Cut(block, ":")
		role, raw = r+":", rest
	}
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(raw), &m) != nil {
		return block
	}
	delete(m, "cache_control")
	b, err := json.Marshal(m)
	if err != nil {
		return block
	}
	return role + string(b)
}

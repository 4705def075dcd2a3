package proxy

import (
	"bytes"
	"encoding/json"
	"hash/maphash"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/llmgw/llmgw"
)

// Session affinity: a prompt cache lives in one account (each is its own
// organization), so the turns of one conversation are sent to the account
// that served the conversation before, while that account may serve it.
// This file finds a request's session and keeps the bindings; pool.go's
// tryPick follows them (arrange).

// Binding lifetimes: as long as the cache a request writes could live,
// refreshed on every use.
const (
	affinityTTL     = 5 * time.Minute
	affinityTTLLong = time.Hour // the request asks for 1-hour cache writes
	// maxBindings bounds the table; past it the expired bindings are swept,
	// and if none has expired the oldest-looking one is dropped.
	maxBindings = 200_000
)

// A bound account that answers its first byte this much slower than the
// fastest account it competes with, and at least slowBy slower, gives its
// sessions up: a cache is not worth waiting seconds for.
const (
	slowFactor = 3
	slowBy     = time.Second
)

// sessionOf finds the session a request belongs to, in this order: the
// X-Claude-Code-Session-Id header, the dialect's own session (the session
// part of an Anthropic request's metadata.user_id; OpenAI's
// prompt_cache_key, else user), else a hash of the request's stable prefix
// (tools, system, first message) as it goes upstream. "" when none can be
// told. The caller namespaces it by client key.
func sessionOf(r *http.Request, x *Exchange, upstreamBody []byte) string {
	if h := r.Header.Get("X-Claude-Code-Session-Id"); h != "" {
		return "h:" + h
	}
	if x.Session != "" {
		return "d:" + x.Session
	}
	var parts [][]byte
	ok := false
	if s := x.stable; s != nil {
		parts, ok = stableOf(s[0], s[1], s[2])
	} else {
		parts, ok = stableParts(upstreamBody)
	}
	if !ok {
		return ""
	}
	return "p:" + strconv.FormatUint(hashParts(parts), 36)
}

// userSession returns the session part of Claude Code's metadata.user_id:
// "user_<hash>_account_<uuid>_session_<uuid>", or a JSON object with a
// session_id; otherwise the whole id.
func userSession(userID string) string {
	if strings.HasPrefix(userID, "{") {
		var v struct {
			SessionID string `json:"session_id"`
		}
		if json.Unmarshal([]byte(userID), &v) == nil && v.SessionID != "" {
			return v.SessionID
		}
		return userID
	}
	if _, s, ok := strings.Cut(userID, "_session_"); ok && s != "" {
		return s
	}
	return userID
}

// prefixSeed keys the prefix hashes; they live only in this process.
var prefixSeed = maphash.MakeSeed()

// span keeps the raw bytes of a JSON value without copying them; it is used
// only while the body it points into is alive.
type span []byte

func (s *span) UnmarshalJSON(b []byte) error { *s = b; return nil }

// stableParts returns what stays the same across the turns of a
// conversation in an Anthropic request body: its tools, system prompt and
// first message. ok is false for a body without messages.
func stableParts(body []byte) ([][]byte, bool) {
	var req struct {
		Tools    span `json:"tools"`
		System   span `json:"system"`
		Messages span `json:"messages"`
	}
	if json.Unmarshal(body, &req) != nil {
		return nil, false
	}
	return stableOf(req.Tools, req.System, req.Messages)
}

// stableOf picks the stable parts from a request's tools, system and
// messages values.
func stableOf(tools, system, messages []byte) ([][]byte, bool) {
	first := firstElement(messages)
	if first == nil {
		return nil, false
	}
	return [][]byte{tools, system, first}, true
}

func hashParts(parts [][]byte) uint64 {
	var h maphash.Hash
	h.SetSeed(prefixSeed)
	for _, part := range parts {
		_, _ = h.Write(part)
		_ = h.WriteByte(0)
	}
	return h.Sum64()
}

// firstElement returns the first element of a JSON array, or nil. The
// array is valid JSON (the body was decoded already), so a scan for the
// comma or bracket that closes the first value at depth one is enough: no
// decoder, no copy.
func firstElement(arr []byte) []byte {
	i := 0
	for i < len(arr) && arr[i] != '[' {
		i++
	}
	i++
	for i < len(arr) && (arr[i] == ' ' || arr[i] == '\n' || arr[i] == '\r' || arr[i] == '\t') {
		i++
	}
	start, depth, inString := i, 0, false
	for ; i < len(arr); i++ {
		c := arr[i]
		switch {
		case inString && c == '\\':
			i++ // the escaped character
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth == 0 { // the array's own end
				return trimmedOrNil(arr[start:i])
			}
			depth--
		case c == ',' && depth == 0:
			return trimmedOrNil(arr[start:i])
		}
	}
	return nil
}

func trimmedOrNil(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	return b
}

// cacheTTL is how long a binding for this request should last: an hour
// when it asks for 1-hour cache writes.
func cacheTTL(upstreamBody []byte) time.Duration {
	if bytes.Contains(upstreamBody, []byte(`"ttl":"1h"`)) {
		return affinityTTLLong
	}
	return affinityTTL
}

// bindings maps sessions to the accounts that serve them.
type bindings struct {
	mu        sync.Mutex
	m         map[string]binding
	counts    map[int64]int // live bindings per account, for spreading new sessions
	lastSweep time.Time
}

type binding struct {
	account int64
	until   time.Time
}

func newBindings() *bindings {
	return &bindings{m: map[string]binding{}, counts: map[int64]int{}}
}

// lookup returns the account bound to session, or 0.
func (b *bindings) lookup(session string, now time.Time) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bd, ok := b.m[session]; ok && now.Before(bd.until) {
		return bd.account
	}
	return 0
}

// bind binds session to account until now+ttl, moving it from any account
// it was bound to.
func (b *bindings) bind(session string, account int64, now time.Time, ttl time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Sub(b.lastSweep) > time.Second || len(b.m) >= maxBindings {
		b.sweep(now)
	}
	if old, ok := b.m[session]; ok {
		b.counts[old.account]--
	} else if len(b.m) >= maxBindings {
		for k, old := range b.m { // full of live bindings: drop any one
			delete(b.m, k)
			b.counts[old.account]--
			break
		}
	}
	b.m[session] = binding{account: account, until: now.Add(ttl)}
	b.counts[account]++
}

// unbind drops session's binding if it is to account.
func (b *bindings) unbind(session string, account int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bd, ok := b.m[session]; ok && bd.account == account {
		delete(b.m, session)
		b.counts[account]--
	}
}

// load returns how many live sessions account holds.
func (b *bindings) load(account int64) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.counts[account]
}

// sweep drops expired bindings. The caller holds mu.
func (b *bindings) sweep(now time.Time) {
	b.lastSweep = now
	for k, bd := range b.m {
		if !now.Before(bd.until) {
			delete(b.m, k)
			b.counts[bd.account]--
		}
	}
	for id, n := range b.counts {
		if n <= 0 {
			delete(b.counts, id)
		}
	}
}

// sessionPick is a request's session as the account choice sees it.
type sessionPick struct {
	key   string // the session, namespaced by client key
	table *bindings
	bound int64 // the account it was bound to when the request arrived; 0 if none
	// prefer is the account to follow now: bound, until it fails for this
	// request.
	prefer int64
	ttl    time.Duration // how long a binding lasts
	// why the bound account was not followed, for usage explain.
	why string
}

// arrange puts the bound account first among the candidates, in the order
// they will be tried, when it is there and not far slower than the others;
// for a session without a binding it puts the accounts with the fewest
// sessions first, so new sessions spread. It notes why a binding was not
// followed.
func (sp *sessionPick) arrange(cands []candidate, boundFull bool) []candidate {
	if sp.prefer == 0 {
		loads := make(map[int64]int, len(cands))
		least := -1
		for _, c := range cands {
			n := sp.table.load(c.a.ID)
			loads[c.a.ID] = n
			if least < 0 || n < least {
				least = n
			}
		}
		out := make([]candidate, 0, len(cands))
		for _, c := range cands { // the least loaded first, each group in the given order
			if loads[c.a.ID] == least {
				out = append(out, c)
			}
		}
		for _, c := range cands {
			if loads[c.a.ID] != least {
				out = append(out, c)
			}
		}
		return out
	}
	i := -1
	fastest := time.Duration(0)
	for j, c := range cands {
		c.h.mu.Lock()
		lat := time.Duration(c.h.latencyMs * float64(time.Millisecond))
		c.h.mu.Unlock()
		if c.a.ID == sp.prefer {
			i = j
			continue
		}
		if lat > 0 && (fastest == 0 || lat < fastest) {
			fastest = lat
		}
	}
	sp.why = ""
	switch {
	case i < 0 && boundFull:
		sp.why = "its account was at its concurrency limit"
		return cands
	case i < 0:
		sp.why = "its account could not serve it (cooling down, in error, disabled, removed, or outranked by priority)"
		return cands
	}
	c := cands[i]
	c.h.mu.Lock()
	lat := time.Duration(c.h.latencyMs * float64(time.Millisecond))
	c.h.mu.Unlock()
	if fastest > 0 && lat > slowFactor*fastest && lat-fastest > slowBy {
		sp.why = "its account was far slower to first byte than the others"
		return cands
	}
	out := make([]candidate, 0, len(cands))
	out = append(out, c)
	out = append(out, cands[:i]...)
	return append(out, cands[i+1:]...)
}

// outcome says, for the request log, how the request's session was routed.
func (sp *sessionPick) outcome(account int64) string {
	switch {
	case sp.bound == 0:
		return llmgw.AffinityNew
	case account == sp.bound:
		return llmgw.AffinityFollowed
	case sp.why != "":
		return llmgw.AffinityMoved + ": " + sp.why
	}
	return llmgw.AffinityMoved + ": its account failed for this request"
}

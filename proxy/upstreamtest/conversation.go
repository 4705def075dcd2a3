package upstreamtest

import (
	"encoding/json"
	"fmt"
	"strings"
)

// SessionTurn returns the Messages request body of turn t (from 0) of
// conversation session, shaped as a coding agent sends it: a system prompt
// every conversation shares (about 4,000 tokens, marked for caching), the
// conversation's own first message (a file of about 4,000 tokens), then t
// exchanges of a short answer and a longer user turn, the last user turn
// marked for caching, and metadata.user_id naming the session as Claude
// Code does. With PromptCache, a conversation that stays on one credential
// reads everything but its newest turn from the cache.
func SessionTurn(session, t int) []byte {
	mark := map[string]string{"type": "ephemeral"}
	type block struct {
		Type         string            `json:"type"`
		Text         string            `json:"text"`
		CacheControl map[string]string `json:"cache_control,omitempty"`
	}
	type message struct {
		Role    string  `json:"role"`
		Content []block `json:"content"`
	}
	msgs := []message{{Role: "user", Content: []block{{Type: "text",
		Text: fmt.Sprintf("Conversation %d. Here is the file:\n%s", session, strings.Repeat(fmt.Sprintf("line %d of the file in conversation %d\n", session, session), 400))}}}}
	for i := 1; i <= t; i++ {
		msgs = append(msgs,
			message{Role: "assistant", Content: []block{{Type: "text", Text: fmt.Sprintf("Answer %d: %s", i, strings.Repeat("ok ", 130))}}},
			message{Role: "user", Content: []block{{Type: "text", Text: fmt.Sprintf("Turn %d: %s", i, strings.Repeat("please change the next function ", 25))}}})
	}
	last := &msgs[len(msgs)-1].Content[0]
	last.CacheControl = mark
	body, err := json.Marshal(map[string]any{
		"model":      "claude-sonnet-4-5",
		"max_tokens": 100,
		"system":     []block{{Type: "text", Text: strings.Repeat("You are a careful coding agent. Follow the rules. ", 320), CacheControl: mark}},
		"messages":   msgs,
		"metadata":   map[string]string{"user_id": fmt.Sprintf("user_0123abcd_account_team_session_%08d-0000-4000-8000-000000000000", session)},
	})
	if err != nil {
		panic(err)
	}
	return body
}

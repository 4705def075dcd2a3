package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"

	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// Conversations for the session affinity tests (replicas_test.go, and
// load_affinity_test.go behind the load tag): coding-agent turns from
// upstreamtest.SessionTurn, sent to a fake upstream with a per-account
// prompt cache (upstreamtest.PromptCache).

// converse sends the turns of conversation session, one after the other,
// to the gateway at url with the client key, and fails on any answer but
// 200.
func converse(c *http.Client, url, key string, session, turns int) error {
	for turn := range turns {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url+"/v1/messages",
			bytes.NewReader(upstreamtest.SessionTurn(session, turn)))
		if err != nil {
			return err
		}
		req.Header.Set("x-api-key", key)
		resp, err := c.Do(req)
		if err != nil {
			return fmt.Errorf("conversation %d turn %d: %w", session, turn, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("conversation %d turn %d: status %d", session, turn, resp.StatusCode)
		}
	}
	return nil
}

// sessionRE finds the conversation in a SessionTurn body (its
// metadata.user_id).
var sessionRE = regexp.MustCompile(`_session_([0-9]+)-`)

// sessionAccounts returns, for each conversation the upstream saw, the
// account credentials that served its turns.
func sessionAccounts(reqs []upstreamtest.Request) map[string]map[string]bool {
	out := make(map[string]map[string]bool)
	for _, r := range reqs {
		m := sessionRE.FindSubmatch(r.Body)
		if m == nil {
			continue
		}
		s := string(m[1])
		if out[s] == nil {
			out[s] = make(map[string]bool)
		}
		out[s][r.Key] = true
	}
	return out
}

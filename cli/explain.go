package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	urfave "github.com/urfave/cli/v2"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/store"
)

func explainCommand(env *appEnv) *urfave.Command {
	return &urfave.Command{
		Name:      "explain",
		Usage:     "show what happened to one request: each account tried and what it answered",
		UsageText: "llmgw usage explain REQUEST_ID [--json]",
		Description: `Prints the request log row of one request: who sent it, which accounts were
tried in which order and what each answered, the account that gave the final
answer, the tokens, and the error the client got. REQUEST_ID is the
x-request-id response header (also request_id in the server's log line).
Requests refused before reaching an account (a bad client key, bad JSON) are
not logged.

Example:
  llmgw usage explain llmgw_3f2a9c0d1e4b5a6978877665
  llmgw usage explain --json llmgw_3f2a9c0d1e4b5a6978877665 | jq .attempts`,
		Flags: []urfave.Flag{&urfave.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *urfave.Context) error {
			id, err := oneArg(c, "request id") // flags may follow it: explain ID --json
			if err != nil {
				return err
			}
			return env.withDB(c.Context, func(db *store.DB) error {
				row, err := db.GetRequest(c.Context, id)
				if errors.Is(err, llmgw.ErrNotFound) {
					return fmt.Errorf("no logged request has id %q: requests refused before reaching an account are not logged", id)
				}
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return writeExplainJSON(c.App.Writer, row)
				}
				return writeExplain(c.App.Writer, row)
			})
		},
	}
}

// explainJSON is the --json form of one request.
type explainJSON struct {
	RequestID         string     `json:"request_id"`
	Time              string     `json:"time"`
	Key               string     `json:"key"`
	Model             string     `json:"model"`
	Dialect           string     `json:"dialect"`
	Stream            bool       `json:"stream"`
	Status            int        `json:"status"`
	ErrorType         string     `json:"error_type,omitempty"`
	ErrorMessage      string     `json:"error_message,omitempty"`
	Account           string     `json:"account,omitempty"`
	InputTokens       int64      `json:"input_tokens"`
	OutputTokens      int64      `json:"output_tokens"`
	CacheReadTokens   int64      `json:"cache_read_input_tokens"`
	CacheWriteTokens  int64      `json:"cache_creation_input_tokens"`
	Speed             string     `json:"speed,omitempty"`
	InferenceGeo      string     `json:"inference_geo,omitempty"`
	Iterations        []iterJSON `json:"iterations,omitempty"`
	TTFBMs            int64      `json:"ttfb_ms"`
	DurationMs        int64      `json:"duration_ms"`
	EndedEarly        bool       `json:"ended_early"`
	UpstreamRequestID string     `json:"upstream_request_id,omitempty"`
	// Session is how the request's session was routed: new, followed, or
	// moved with the reason; empty when affinity was off or no session could
	// be told.
	Session  string        `json:"session,omitempty"`
	Attempts []attemptJSON `json:"attempts"`
}

// iterJSON is one of usage.iterations, in Anthropic's field names.
type iterJSON struct {
	Type             string `json:"type"`
	Model            string `json:"model,omitempty"`
	InputTokens      int64  `json:"input_tokens"`
	OutputTokens     int64  `json:"output_tokens"`
	CacheReadTokens  int64  `json:"cache_read_input_tokens"`
	CacheWriteTokens int64  `json:"cache_creation_input_tokens"`
}

type attemptJSON struct {
	Account   string `json:"account"`
	Status    int    `json:"status"`
	ErrorType string `json:"error_type,omitempty"`
	TTFBMs    int64  `json:"ttfb_ms"`
}

func writeExplainJSON(w io.Writer, r *store.UsageRow) error {
	out := explainJSON{
		RequestID: r.RequestID, Time: r.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Key: r.KeyName,
		Model: r.Model, Dialect: r.Dialect, Stream: r.Stream, Status: r.Status, ErrorType: r.ErrorType,
		ErrorMessage: r.ErrorMessage, Account: r.AccountName, InputTokens: r.Tokens.Input, OutputTokens: r.Tokens.Output,
		CacheReadTokens: r.Tokens.CacheRead, CacheWriteTokens: r.Tokens.CacheWrite, TTFBMs: r.TTFB.Milliseconds(),
		DurationMs: r.Duration.Milliseconds(), EndedEarly: r.EndedEarly, UpstreamRequestID: r.UpstreamID,
		Speed: r.Speed, InferenceGeo: r.InferenceGeo,
		Session: r.Affinity, Attempts: []attemptJSON{},
	}
	for _, it := range r.Iterations {
		t := it.Tokens
		out.Iterations = append(out.Iterations, iterJSON{it.Type, it.Model, t.Input, t.Output, t.CacheRead, t.CacheWrite})
	}
	for _, a := range r.Attempts {
		out.Attempts = append(out.Attempts, attemptJSON{a.AccountName, a.Status, a.ErrorType, a.TTFB.Milliseconds()})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func writeExplain(w io.Writer, r *store.UsageRow) error {
	tw := newTable(w)
	mode := "not streamed"
	if r.Stream {
		mode = "streamed"
	}
	outcome := fmt.Sprint(r.Status)
	if r.ErrorType != "" {
		outcome += " " + r.ErrorType
	}
	if r.ErrorMessage != "" {
		outcome += ": " + r.ErrorMessage
	}
	if r.EndedEarly {
		outcome += " (the stream ended early)"
	}
	tw.row("request:\t%s\n", r.RequestID)
	tw.row("time:\t%s\n", formatTime(r.Time))
	tw.row("client key:\t%s\n", orDash(r.KeyName))
	tw.row("model:\t%s (%s, %s)\n", r.Model, r.Dialect, mode)
	tw.row("answer:\t%s\n", outcome)
	tw.row("answered by:\t%s\n", orDash(r.AccountName))
	tw.row("tokens:\tinput %d, output %d, cache read %d, cache write %d (5m %d, 1h %d)\n",
		r.Tokens.Input, r.Tokens.Output, r.Tokens.CacheRead, r.Tokens.CacheWrite, r.Tokens.CacheWrite5m, r.Tokens.CacheWrite1h)
	if r.Speed != "" || r.InferenceGeo != "" {
		tw.row("served:\tspeed %s, inference geo %s\n", orDash(r.Speed), orDash(r.InferenceGeo))
	}
	for i, it := range r.Iterations {
		label := "iterations:"
		if i > 0 {
			label = ""
		}
		t := it.Tokens
		tw.row("%s\t%d. %s on %s: input %d, output %d, cache read %d, cache write %d\n", label, i+1, it.Type,
			nonEmptyOr(it.Model, r.Model), t.Input, t.Output, t.CacheRead, t.CacheWrite)
	}
	tw.row("time to first byte:\t%dms of %dms\n", r.TTFB.Milliseconds(), r.Duration.Milliseconds())
	tw.row("upstream request id:\t%s\n", orDash(r.UpstreamID))
	tw.row("session:\t%s\n", sessionText(r.Affinity))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Attempts) == 0 {
		_, err := fmt.Fprintln(w, "attempts: none (no account could take the request)")
		return err
	}
	if _, err := fmt.Fprintln(w, "attempts:"); err != nil {
		return err
	}
	tw = newTable(w)
	tw.row("  #\tACCOUNT\tSTATUS\tERROR\tTTFB\n")
	for i, a := range r.Attempts {
		status := fmt.Sprint(a.Status)
		if a.Status == 0 {
			status = "-"
		}
		tw.row("  %d\t%s\t%s\t%s\t%dms\n", i+1, a.AccountName, status, orDash(a.ErrorType), a.TTFB.Milliseconds())
	}
	return tw.Flush()
}

// sessionText says how a request's session was routed, for people.
func sessionText(affinity string) string {
	switch {
	case affinity == "":
		return "- (no session affinity)"
	case affinity == llmgw.AffinityNew:
		return "new: bound to the account that answered"
	case affinity == llmgw.AffinityFollowed:
		return "followed: sent to the account that served the session before"
	}
	return affinity // moved: the reason
}

// nonEmptyOr returns s, or def when s is empty.
func nonEmptyOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

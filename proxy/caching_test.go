package proxy

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"

	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// longPrompt is a stable system prompt of well over 1,024 tokens.
var longPrompt = strings.Repeat("You are a careful assistant who follows the team's rules. ", 120)

// TestPromptCaching_EveryDialect sends the same request twice in each
// client dialect against a fake upstream that caches like Anthropic: the
// second answer must report cached tokens in the client's own usage field,
// and no upstream request may carry more than four breakpoints.
func TestPromptCaching_EveryDialect(t *testing.T) {
	for _, tt := range []struct {
		name string
		send func(g *gateway) (cached int64, err error)
	}{
		{"anthropic", func(g *gateway) (int64, error) {
			p := userMsg("What are the rules?")
			p.System = []anthropic.TextBlockParam{{Text: longPrompt, CacheControl: anthropic.NewCacheControlEphemeralParam()}}
			msg, err := g.client().Messages.New(ctx(t), p)
			if err != nil {
				return 0, err
			}
			return msg.Usage.CacheReadInputTokens, nil
		}},
		{"chat completions", func(g *gateway) (int64, error) {
			res, err := g.chatClient().Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{
				Model:    "claude-sonnet-4-5",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage(longPrompt), openai.UserMessage("What are the rules?")},
			})
			if err != nil {
				return 0, err
			}
			return res.Usage.PromptTokensDetails.CachedTokens, nil
		}},
		{"responses", func(g *gateway) (int64, error) {
			p := respParams("What are the rules?")
			p.Instructions = openai.String(longPrompt)
			res, err := respClient(g).Responses.New(ctx(t), p)
			if err != nil {
				return 0, err
			}
			return res.Usage.InputTokensDetails.CachedTokens, nil
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			up := upstreamtest.NewServer(t, upstreamtest.PromptCache())
			g := newGateway(t, Config{}, account(1, "a", "sk-ant-a", up.URL))
			first, err := tt.send(g)
			if err != nil {
				t.Fatal(err)
			}
			second, err := tt.send(g)
			if err != nil {
				t.Fatal(err)
			}
			if first != 0 || second < 1024 {
				t.Errorf("cached tokens = %d then %d, want 0 then at least 1024", first, second)
			}
			for i, r := range up.Requests() {
				if n := bytes.Count(r.Body, []byte(`"cache_control"`)); n > 4 {
					t.Errorf("upstream request %d carries %d breakpoints", i, n)
				}
			}
		})
	}
}

// thinkingStream is an upstream answer that reports how much of its output
// was thinking.
const thinkingStream = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_t\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n" +
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"42\"}}\n\n" +
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
	"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":40,\"output_tokens_details\":{\"thinking_tokens\":25}}}\n\n" +
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"

// TestReasoningTokens_NonStream: the thinking share of the output reaches
// non-streaming Chat and Responses clients too.
func TestReasoningTokens_NonStream(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.Replay([]byte(thinkingStream)))
	g := newGateway(t, Config{}, account(1, "a", "sk-ant-a", up.URL))
	chat, err := g.chatClient().Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{
		Model: "claude-sonnet-4-5", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("q")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := chat.Usage.CompletionTokensDetails.ReasoningTokens; got != 25 || chat.Usage.CompletionTokens != 40 {
		t.Errorf("chat usage = %+v, want 25 reasoning of 40", chat.Usage)
	}
	res, err := respClient(g).Responses.New(ctx(t), respParams("q"))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Usage.OutputTokensDetails.ReasoningTokens; got != 25 {
		t.Errorf("responses reasoning tokens = %d, want 25", got)
	}
}

// TestEveryTryEndsInEarlyStreamError: both accounts answer 200 and then an
// overload event before any content. Anthropic clients get the last such
// stream as it came; converted clients get their dialect's error with a
// retryable status; the row is an error either way.
func TestEveryTryEndsInEarlyStreamError(t *testing.T) {
	up := upstreamtest.NewServer(t, upstreamtest.FailMidStream(0))
	g := newGateway(t, Config{}, account(1, "a", "sk-ant-a", up.URL), account(2, "b", "sk-ant-b", up.URL))

	s := g.client().Messages.NewStreaming(ctx(t), userMsg("hi"))
	for s.Next() {
	}
	if s.Err() == nil || !strings.Contains(s.Err().Error(), "overloaded_error") {
		t.Errorf("anthropic client: err = %v, want the upstream's overloaded_error event", s.Err())
	}
	row := g.rec.wait(t, 1)[0]
	if row.ErrorType != "overloaded_error" || !row.EndedEarly || len(row.Attempts) != 2 {
		t.Errorf("anthropic row = %+v", row)
	}

	_, err := g.chatClient().Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{
		Model: "claude-sonnet-4-5", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("q")},
	})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode < 500 {
		t.Errorf("chat client: err = %v, want a retryable 5xx OpenAI error", err)
	}
	if row := g.rec.wait(t, 2)[1]; row.ErrorType != "overloaded_error" || row.Status < 500 {
		t.Errorf("chat row = %+v", row)
	}
}

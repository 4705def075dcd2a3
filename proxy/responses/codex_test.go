package responses

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw/proxy/anthropic"
)

// testdata/codex_request.json is a Codex CLI turn in the shape Codex CLI
// sends it: instructions, a developer permissions message, AGENTS.md and
// environment context as user messages, history with reasoning items (one
// from an earlier OpenAI model, the rest ours), shell function calls, an
// apply_patch freeform call, the shell/apply_patch/update_plan/view_image/MCP
// tools plus a hosted web_search, and the informational fields Codex sends
// on every turn.

func TestCodexRequest_Decodes(t *testing.T) {
	req, info := decode(t, loadFixture(t, "codex_request.json"))
	mustValidate(t, req)

	if len(req.System) != 2 || !strings.HasPrefix(req.System[0].Text, "You are Codex") ||
		!strings.HasPrefix(req.System[1].Text, "<permissions instructions>") {
		t.Errorf("system = %+v, want instructions then the developer message", req.System)
	}
	var tools []string
	for _, tl := range req.Tools {
		tools = append(tools, tl.Name)
	}
	if diff := cmp.Diff([]string{"shell", "apply_patch", "update_plan", "view_image", "mcp__github__search_issues"}, tools); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
	if !info.Tools["apply_patch"].Custom || info.Tools["shell"].Custom {
		t.Errorf("info tools = %+v", info.Tools)
	}
	if diff := cmp.Diff(customSchema, req.Tools[1].InputSchema, jsonEqual); diff != "" {
		t.Errorf("apply_patch schema (-want +got):\n%s", diff)
	}
	if req.Thinking == nil || req.Thinking.BudgetTokens != 8192 {
		t.Errorf("thinking = %+v, want medium effort's 8192 (the tool loop is signed)", req.Thinking)
	}
	if diff := cmp.Diff(&anthropic.ToolChoice{Type: "auto", DisableParallelToolUse: true}, req.ToolChoice); diff != "" {
		t.Errorf("tool_choice (-want +got):\n%s", diff)
	}

	var shape []string
	for _, m := range req.Messages {
		var kinds []string
		for _, b := range m.Content {
			kinds = append(kinds, b.Type)
		}
		shape = append(shape, m.Role+":"+strings.Join(kinds, ","))
	}
	want := []string{
		"user:text,text,text",
		"assistant:text", // the foreign reasoning item before it was dropped
		"user:text",
		"assistant:thinking,tool_use",
		"user:tool_result",
		"assistant:thinking,tool_use",
		"user:tool_result",
		"assistant:thinking,tool_use",
		"user:tool_result",
	}
	if diff := cmp.Diff(want, shape); diff != "" {
		t.Errorf("conversation shape (-want +got):\n%s", diff)
	}
	patch := req.Messages[5].Content[1]
	var in struct{ Input string }
	if err := json.Unmarshal(patch.Input, &in); err != nil || patch.Name != "apply_patch" || !strings.HasPrefix(in.Input, "*** Begin Patch\n") {
		t.Errorf("apply_patch call = %s %s", patch.Name, patch.Input)
	}
	if sig := req.Messages[3].Content[0].Signature; sig != "EqQBCkgIBxABGAIiQL1sigA+/=" {
		t.Errorf("signature = %q, want it exactly as sealed", sig)
	}

	for _, note := range []string{"ignored include", "ignored store", "ignored prompt_cache_key", "ignored client_metadata",
		"ignored service_tier", "dropped hosted tool tools[5] (web_search)", "dropped input[4]: its encrypted_content was not made by llmgw"} {
		if !slices.ContainsFunc(info.Notes, func(n string) bool { return strings.HasPrefix(n, note) }) {
			t.Errorf("notes %q lack %q", info.Notes, note)
		}
	}
}

// TestCodexRequest_RoundTrip runs a Codex turn through: the fixture is
// decoded, the upstream answers with thinking, text and an apply_patch call,
// the stream is read the way Codex reads it (complete items from
// output_item.done), and those items plus the tool output make the next
// request, which must reach the upstream with the signature and the patch
// unchanged.
func TestCodexRequest_RoundTrip(t *testing.T) {
	body := loadFixture(t, "codex_request.json")
	_, info := decode(t, body)

	patch := "*** Begin Patch\n*** Add File: CHANGELOG.md\n+Renamed greeting to hello.\n*** End Patch\n"
	wrapped := mustMarshal(t, map[string]string{"input": patch})
	up := sseOf(concat(msgStart("msg_01Codex"),
		thinkingBlockEvents(0, "EqQBCkgIBxABGAIiQNewSig==", "Tests pass. ", "Add a changelog entry."),
		textBlockEvents(1, "Tests pass; adding a changelog entry."),
		toolBlockEvents(2, "toolu_01PatchD", "apply_patch", "", wrapped[:20], wrapped[20:]),
		msgStop("tool_use", 120))...)
	evs := parseStream(t, translate(t, info, up))
	term := checkSequence(t, evs)

	// What Codex needs from the stream.
	if evs[0].Data["response"] == nil {
		t.Error("response.created has no response object")
	}
	var done []map[string]any
	for _, ev := range evs {
		switch ev.Name {
		case "response.output_item.done":
			done = append(done, ev.Data["item"].(map[string]any))
		case "response.reasoning_summary_text.delta":
			if _, ok := ev.Data["summary_index"].(float64); !ok {
				t.Errorf("summary delta without summary_index: %s", ev.Raw)
			}
		}
	}
	resp := term.Data["response"].(map[string]any)
	if term.Name != "response.completed" || resp["id"] != "resp_01Codex" {
		t.Errorf("terminal %s, id %v", term.Name, resp["id"])
	}
	u := resp["usage"].(map[string]any)
	for _, k := range []string{"input_tokens", "output_tokens", "total_tokens"} {
		if _, ok := u[k].(float64); !ok {
			t.Errorf("usage lacks %s: %v", k, u)
		}
	}
	if len(done) != 3 {
		t.Fatalf("%d items done, want reasoning, message, custom_tool_call", len(done))
	}
	if done[0]["type"] != "reasoning" || done[0]["id"] == "" || done[0]["summary"] == nil || done[0]["encrypted_content"] == nil {
		t.Errorf("reasoning item = %v", done[0])
	}
	if done[2]["type"] != "custom_tool_call" || done[2]["input"] != patch {
		t.Errorf("custom tool call item = %v", done[2])
	}

	// Codex sends the items back without their ids, then the tool output.
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	var input []json.RawMessage
	if err := json.Unmarshal(doc["input"], &input); err != nil {
		t.Fatal(err)
	}
	for _, it := range done {
		delete(it, "id")
		input = append(input, json.RawMessage(mustMarshal(t, it)))
	}
	input = append(input, json.RawMessage(`{"type":"custom_tool_call_output","call_id":"toolu_01PatchD","output":"Success. Updated the following files:\nA CHANGELOG.md\n"}`))
	doc["input"] = json.RawMessage(mustMarshal(t, input))
	next, _ := decode(t, mustMarshal(t, doc))
	mustValidate(t, next)
	if next.Thinking == nil {
		t.Error("thinking turned off on the next turn: the signed reasoning did not come back")
	}
	n := len(next.Messages)
	turn := next.Messages[n-2]
	want := assistant(
		anthropic.ContentBlock{Type: "thinking", Thinking: "Tests pass. Add a changelog entry.", Signature: "EqQBCkgIBxABGAIiQNewSig=="},
		text("Tests pass; adding a changelog entry."),
		toolUse("toolu_01PatchD", "apply_patch", wrapped))
	if diff := cmp.Diff(want, turn, jsonEqual); diff != "" {
		t.Errorf("replayed assistant turn (-want +got):\n%s", diff)
	}
	if res := next.Messages[n-1].Content[0]; res.Type != "tool_result" || res.ToolUseID != "toolu_01PatchD" {
		t.Errorf("last turn = %+v", next.Messages[n-1])
	}
}

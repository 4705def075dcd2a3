package gemini

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/llmgw/llmgw/proxy/anthropic"
)

// placeholder is the text of the user turn added when a request has none
// (E4): Anthropic needs at least one message, and the first one a user's.
const placeholder = "."

// interrupted is the result given to a function call the history leaves
// unanswered (E9).
const interrupted = "The function call was interrupted: no result was returned."

// Decode translates a generateContent request for model (the model named in
// the path; "models/" is optional) into an Anthropic request, and returns
// what the response side needs in Info. Every error is a *RequestError; no
// input makes it panic. Info.Stream and Info.JSONArray are left for the
// caller to set.
func Decode(model string, body []byte, opt DecodeOptions) (*anthropic.Request, Info, error) {
	info := Info{Names: new(anthropic.ToolNames)}
	model = strings.TrimPrefix(strings.TrimSpace(model), "models/")
	if model == "" {
		return nil, info, reqErr("model", "the request path names no model")
	}
	info.Model = model
	if alias, ok := opt.Aliases[model]; ok && alias != "" {
		model = alias
	}

	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0:
		return nil, info, reqErr("", "request body is empty: send a GenerateContentRequest JSON object")
	case trimmed[0] != '{':
		return nil, info, reqErr("", "request body must be a JSON object")
	}
	gr, err := parseRequest(trimmed)
	if err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			return nil, info, reqErr(fe.path, "%s", describe(fe.err))
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, info, reqErr("", "request body is not valid JSON: %s", se.Error())
		}
		return nil, info, reqErr("", "request body: %s", describe(err))
	}
	for _, k := range gr.Ignored {
		switch k {
		case "safetySettings", "labels", "store", "serviceTier", "continuationToken":
		default:
			k = "(unknown) " + k
		}
		info.Ignored = append(info.Ignored, k)
	}
	if gr.CachedContent != "" {
		return nil, info, reqErr("cachedContent", "cached contents live on Google's servers and llmgw cannot read them; "+
			"send the contents themselves (llmgw caches stable prompt prefixes automatically)")
	}

	req := &anthropic.Request{Model: model}
	d := decoder{info: &info, used: map[string]bool{}}

	gc := gr.GenerationConfig
	if gc == nil {
		gc = &GenerationConfig{}
	}
	info.Ignored = append(info.Ignored, gc.Ignored...)
	if err := d.generation(req, gc); err != nil {
		return nil, info, err
	}
	if err := d.system(req, gr.SystemInstruction); err != nil {
		return nil, info, err
	}
	if err := d.tools(req, gr.Tools, gr.ToolConfig); err != nil {
		return nil, info, err
	}
	if err := d.contents(gr.Contents); err != nil {
		return nil, info, err
	}
	if err := d.jsonOutput(req, gc); err != nil {
		return nil, info, err
	}
	d.thinking(req, gc)
	d.sampling(req, gc)
	req.Messages = d.finish(req.Thinking != nil)
	if len(req.Messages) == 0 {
		if len(req.System) == 0 {
			return nil, info, reqErr("contents", "at least one content with a non-empty part is required")
		}
		req.Messages = []anthropic.Message{userText(placeholder)}
	} else if req.Messages[0].Role != "user" {
		req.Messages = append([]anthropic.Message{userText(placeholder)}, req.Messages...)
	}
	return req, info, nil
}

// decoder holds the state of one Decode.
type decoder struct {
	info  *Info
	msgs  []anthropic.Message
	calls map[int][]call // function calls of each assistant message, by index
	used  map[string]bool
	// budget is the thinking budget asked for; 0 for none.
	budget int
}

// call is a function call in the history: the client's id (possibly
// empty), the id sent upstream, and the client's function name.
type call struct {
	clientID, id, name string
	answer             *anthropic.ContentBlock
}

func userText(s string) anthropic.Message {
	return anthropic.Message{Role: "user", Content: []anthropic.ContentBlock{{Type: "text", Text: s}}}
}

// generation reads the sampling and length settings.
func (d *decoder) generation(req *anthropic.Request, gc *GenerationConfig) error {
	if n := gc.CandidateCount; n != nil && *n > 1 {
		return reqErr("generationConfig.candidateCount", "llmgw returns exactly one candidate; set candidateCount to 1 or leave it out")
	}
	switch n := gc.MaxOutputTokens; {
	case n == nil || *n == 0:
		req.MaxTokens = anthropic.DefaultMaxTokens(req.Model) // E15
	case *n < 0:
		return reqErr("generationConfig.maxOutputTokens", "must be positive, got %d", *n)
	default:
		req.MaxTokens = anthropic.ClampMaxTokens(req.Model, *n) // E16
	}
	if t := gc.Temperature; t != nil && (*t < 0 || *t > 2 || math.IsNaN(*t)) {
		return reqErr("generationConfig.temperature", "must be between 0 and 2, got %v", *t)
	}
	if p := gc.TopP; p != nil && (*p < 0 || *p > 1 || math.IsNaN(*p)) {
		return reqErr("generationConfig.topP", "must be between 0 and 1, got %v", *p)
	}
	for _, s := range gc.StopSequences {
		if strings.TrimSpace(s) != "" { // E24: Anthropic refuses blank ones
			req.StopSequences = append(req.StopSequences, s)
		}
	}
	if len(gc.ResponseModalities) > 0 {
		text := false
		for _, m := range gc.ResponseModalities {
			text = text || strings.EqualFold(m, "TEXT")
		}
		if !text {
			return reqErr("generationConfig.responseModalities", "Claude answers in text only; include TEXT")
		}
	}
	if tc := gc.ThinkingConfig; tc != nil {
		d.info.IncludeThoughts = tc.IncludeThoughts
		def, _ := anthropic.ThinkingBudget("medium")
		switch {
		case tc.ThinkingBudget != nil && *tc.ThinkingBudget == 0:
		case tc.ThinkingBudget != nil && *tc.ThinkingBudget < 0: // -1: dynamic
			d.budget = def
		case tc.ThinkingBudget != nil:
			d.budget = *tc.ThinkingBudget
		case tc.ThinkingLevel != "" && !strings.EqualFold(tc.ThinkingLevel, "THINKING_LEVEL_UNSPECIFIED"):
			b, ok := anthropic.ThinkingBudget(tc.ThinkingLevel)
			if !ok {
				return reqErr("generationConfig.thinkingConfig.thinkingLevel", "unknown level %q; use MINIMAL, LOW, MEDIUM or HIGH", tc.ThinkingLevel)
			}
			d.budget = b
		case tc.IncludeThoughts:
			d.budget = def
		}
	}
	return nil
}

// jsonOutput maps responseMimeType and the response schemas.
func (d *decoder) jsonOutput(req *anthropic.Request, gc *GenerationConfig) error {
	mt := strings.ToLower(strings.TrimSpace(gc.ResponseMIMEType))
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = strings.TrimSpace(mt[:i])
	}
	switch mt {
	case "", "text/plain":
		if len(gc.ResponseSchema) > 0 || len(gc.ResponseJSONSchema) > 0 {
			d.info.Ignored = append(d.info.Ignored, "generationConfig.responseSchema (without responseMimeType application/json)")
		}
		return nil
	case "application/json":
	default:
		return reqErr("generationConfig.responseMimeType", "%q is not supported; use text/plain or application/json", gc.ResponseMIMEType)
	}
	schema := outputSchema(gc.ResponseJSONSchema, false)
	if schema == nil {
		schema = outputSchema(gc.ResponseSchema, true)
	}
	if schema != nil {
		req.OutputConfig = &anthropic.OutputConfig{Format: &anthropic.OutputFormat{Type: "json_schema", Schema: schema}}
		return nil
	}
	// JSON without a schema: Anthropic has no such mode, so ask for it.
	req.System = append(req.System, anthropic.ContentBlock{Type: "text",
		Text: "Answer with a single valid JSON value only: no prose and no markdown code fences."})
	return nil
}

// system reads systemInstruction.
func (d *decoder) system(req *anthropic.Request, si *Content) error {
	if si == nil {
		return nil
	}
	for i, p := range si.Parts {
		switch {
		case p.Text != nil:
			if *p.Text != "" && !p.Thought {
				req.System = append(req.System, anthropic.ContentBlock{Type: "text", Text: *p.Text})
			}
		case p.InlineData != nil || p.FileData != nil || p.FunctionCall != nil || p.FunctionResponse != nil:
			return reqErr(fmt.Sprintf("systemInstruction.parts[%d]", i), "Claude's system prompt takes text only")
		}
	}
	return nil
}

// tools reads the function declarations and the function-calling mode.
func (d *decoder) tools(req *anthropic.Request, tools []Tool, tc *ToolConfig) error {
	names := d.info.Names
	declared := map[string]bool{}
	for i, t := range tools {
		for _, h := range t.Hosted {
			d.info.Ignored = append(d.info.Ignored, fmt.Sprintf("tools[%d].%s", i, h))
		}
		for j, fd := range t.FunctionDeclarations {
			field := fmt.Sprintf("tools[%d].functionDeclarations[%d]", i, j)
			if fd.Name == "" {
				return reqErr(field+".name", "a function needs a name")
			}
			if declared[fd.Name] {
				return reqErr(field+".name", "function %q is declared twice", fd.Name)
			}
			declared[fd.Name] = true
			req.Tools = append(req.Tools, anthropic.Tool{
				Name:        names.Upstream(fd.Name), // E11
				Description: fd.Description,
				InputSchema: toolSchema(fd.Parameters, fd.ParametersJSONSchema), // E38, E39
			})
		}
	}
	if tc == nil || tc.FunctionCallingConfig == nil {
		return nil
	}
	fc := tc.FunctionCallingConfig
	const field = "toolConfig.functionCallingConfig"
	for _, n := range fc.AllowedFunctionNames {
		if !declared[n] {
			return reqErr(field+".allowedFunctionNames", "function %q is not declared in tools", n)
		}
	}
	switch strings.ToUpper(fc.Mode) {
	case "", "AUTO", "MODE_UNSPECIFIED", "VALIDATED":
		return nil
	case "NONE":
		req.ToolChoice = &anthropic.ToolChoice{Type: "none"}
	case "ANY":
		switch len(fc.AllowedFunctionNames) {
		case 0:
			req.ToolChoice = &anthropic.ToolChoice{Type: "any"}
		case 1:
			req.ToolChoice = &anthropic.ToolChoice{Type: "tool", Name: names.Upstream(fc.AllowedFunctionNames[0])}
		default:
			allowed := map[string]bool{}
			for _, n := range fc.AllowedFunctionNames {
				allowed[names.Upstream(n)] = true
			}
			kept := req.Tools[:0]
			for _, t := range req.Tools {
				if allowed[t.Name] {
					kept = append(kept, t)
				}
			}
			req.Tools = kept
			req.ToolChoice = &anthropic.ToolChoice{Type: "any"}
		}
	default:
		return reqErr(field+".mode", "unknown mode %q; use AUTO, ANY, NONE or VALIDATED", fc.Mode)
	}
	if len(req.Tools) == 0 {
		req.ToolChoice = nil // E41: a choice among no tools
	}
	return nil
}

// contents translates the turns, merging consecutive turns of one role
// (E5) and pairing function responses with their calls (E37).
func (d *decoder) contents(contents []Content) error {
	d.calls = map[int][]call{}
	for ci, c := range contents {
		var role string
		switch strings.ToLower(c.Role) {
		case "", "user", "function", "tool":
			role = "user"
		case "model", "assistant":
			role = "assistant"
		default:
			return reqErr(fmt.Sprintf("contents[%d].role", ci), `must be "user" or "model", got %q`, c.Role)
		}
		var blocks []anthropic.ContentBlock
		var calls []call
		for pi, p := range c.Parts {
			field := fmt.Sprintf("contents[%d].parts[%d]", ci, pi)
			if p.ThoughtSignature != "" && role == "assistant" {
				blocks = append(blocks, decodeCarrier(p.ThoughtSignature)...)
			}
			switch {
			case p.FunctionCall != nil:
				if role != "assistant" {
					return reqErr(field+".functionCall", "only model turns can call functions")
				}
				fc := p.FunctionCall
				if fc.Name == "" {
					return reqErr(field+".functionCall.name", "a function call needs a name")
				}
				id := d.callID(fc.ID, ci, pi)
				calls = append(calls, call{clientID: fc.ID, id: id, name: fc.Name})
				blocks = append(blocks, anthropic.ContentBlock{
					Type: "tool_use", ID: id, Name: d.info.Names.Upstream(fc.Name), Input: argsObject(fc.Args), // E10, E11, E12
				})
			case p.FunctionResponse != nil:
				if role != "user" {
					return reqErr(field+".functionResponse", "function responses belong in user turns")
				}
				b, err := d.functionResponse(p.FunctionResponse, field+".functionResponse")
				if err != nil {
					return err
				}
				blocks = append(blocks, b)
			case p.InlineData != nil:
				b, err := inlineBlock(p.InlineData, field+".inlineData")
				if err != nil {
					return err
				}
				blocks = append(blocks, b)
			case p.FileData != nil:
				b, err := fileBlock(p.FileData, field+".fileData")
				if err != nil {
					return err
				}
				blocks = append(blocks, b)
			case p.ExecutableCode != nil:
				if code := p.ExecutableCode.Code; code != "" {
					lang := strings.ToLower(p.ExecutableCode.Language)
					if lang == "language_unspecified" {
						lang = ""
					}
					blocks = append(blocks, anthropic.ContentBlock{Type: "text", Text: "```" + lang + "\n" + code + "\n```"})
				}
			case p.CodeExecutionResult != nil:
				if out := p.CodeExecutionResult.Output; out != "" {
					blocks = append(blocks, anthropic.ContentBlock{Type: "text", Text: "Code execution result (" + p.CodeExecutionResult.Outcome + "):\n" + out})
				}
			case p.Text != nil && *p.Text != "" && !p.Thought: // E1: empty text dropped
				blocks = append(blocks, anthropic.ContentBlock{Type: "text", Text: *p.Text})
			}
		}
		if len(blocks) == 0 {
			continue // E1: a turn with nothing left
		}
		if n := len(d.msgs); n > 0 && d.msgs[n-1].Role == role { // E5
			d.msgs[n-1].Content = append(d.msgs[n-1].Content, blocks...)
			d.calls[n-1] = append(d.calls[n-1], calls...)
			continue
		}
		if len(calls) > 0 {
			d.calls[len(d.msgs)] = calls
		}
		d.msgs = append(d.msgs, anthropic.Message{Role: role, Content: blocks})
	}
	d.pair()
	return nil
}

// callID returns the upstream id of a function call: the client's id made
// valid for Anthropic (E10), or a deterministic one when there is none
// (E37), unique in the request either way.
func (d *decoder) callID(clientID string, ci, pi int) string {
	id := anthropic.SanitizeID(clientID)
	if id == "" {
		id = "call_" + strconv.Itoa(ci) + "_" + strconv.Itoa(pi)
		d.info.SynthesizedIDs++
	}
	for base, n := id, 2; d.used[id]; n++ {
		id = base + "_" + strconv.Itoa(n)
	}
	d.used[id] = true
	return id
}

// pendingResult marks a tool_result whose call is not known yet: Name and
// ToolUseID hold the client's function name and id until pair resolves them.
const pendingResult = "tool_result"

// pair gives every function response the id of the call it answers: by id
// when the client kept ids, else the oldest unanswered call of the same name
// (E37). A call answered twice keeps the last answer (E8); a call left
// unanswered gets an "interrupted" error result, and a response to no call
// becomes text (E9). Results go first in their user turn, in call order.
func (d *decoder) pair() {
	for i := range d.msgs {
		m := &d.msgs[i]
		if m.Role != "user" {
			continue
		}
		var calls []call
		if i > 0 {
			calls = d.calls[i-1]
		}
		hasResults := false
		for _, b := range m.Content {
			hasResults = hasResults || b.Type == pendingResult
		}
		if !hasResults && len(calls) == 0 {
			continue
		}
		var rest []anthropic.ContentBlock
		for _, b := range m.Content {
			if b.Type != pendingResult {
				rest = append(rest, b)
				continue
			}
			k := match(calls, b.ToolUseID, b.Name)
			if k < 0 {
				d.info.Orphans++
				rest = append(rest, orphanText(b))
				continue
			}
			b.ToolUseID, b.Name = calls[k].id, ""
			calls[k].answer = &b
		}
		content := make([]anthropic.ContentBlock, 0, len(calls)+len(rest))
		for _, c := range calls {
			if c.answer != nil {
				content = append(content, *c.answer)
				continue
			}
			content = append(content, anthropic.ContentBlock{
				Type: "tool_result", ToolUseID: c.id, Content: jsonString(interrupted), IsError: true,
			})
		}
		m.Content = append(content, rest...)
	}
	// A final assistant turn with calls awaits results that never came:
	// nothing to pair; the upstream decides.
}

// match finds the call a response answers: the call with its id, else the
// oldest unanswered call of its name, else (a response naming nothing) the
// oldest unanswered call. It returns -1 for none.
func match(calls []call, id, name string) int {
	if id != "" {
		// An answer to a call already answered replaces it (E8).
		for k, c := range calls {
			if c.clientID == id {
				return k
			}
		}
		sid := anthropic.SanitizeID(id)
		for k, c := range calls {
			if c.id == sid {
				return k
			}
		}
	}
	for k, c := range calls {
		if c.answer == nil && c.name == name {
			return k
		}
	}
	if name == "" {
		for k, c := range calls {
			if c.answer == nil {
				return k
			}
		}
	}
	return -1
}

// orphanText renders a function response that answers no call.
func orphanText(b anthropic.ContentBlock) anthropic.ContentBlock {
	var s string
	if json.Unmarshal(b.Content, &s) != nil {
		s = string(b.Content)
	}
	return anthropic.ContentBlock{Type: "text", Text: fmt.Sprintf("Result of function %s: %s", b.Name, s)}
}

// functionResponse builds the (still unpaired) tool_result of a function
// response: response.output or response.result when it is a string, else
// the response as JSON text, plus any media parts (E7).
func (d *decoder) functionResponse(fr *FunctionResponse, field string) (anthropic.ContentBlock, error) {
	b := anthropic.ContentBlock{Type: pendingResult, ToolUseID: fr.ID, Name: fr.Name}
	text := ""
	raw := bytes.TrimSpace(fr.Response)
	if len(raw) > 0 {
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) == nil {
			text = compactJSON(raw)
			for _, k := range []string{"output", "result"} {
				var s string
				if json.Unmarshal(obj[k], &s) == nil && len(obj) == 1 {
					text = s
					break
				}
			}
			if e, ok := obj["error"]; ok && len(obj) == 1 {
				b.IsError = true
				var s string
				if json.Unmarshal(e, &s) == nil {
					text = s
				}
			}
		} else {
			text = compactJSON(raw)
		}
	}
	var media []anthropic.ContentBlock
	for i, p := range fr.Parts {
		pf := fmt.Sprintf("%s.parts[%d]", field, i)
		switch {
		case p.InlineData != nil:
			mb, err := inlineBlock(p.InlineData, pf+".inlineData")
			if err != nil {
				return b, err
			}
			media = append(media, mb)
		case p.FileData != nil:
			mb, err := fileBlock(p.FileData, pf+".fileData")
			if err != nil {
				return b, err
			}
			media = append(media, mb)
		}
	}
	switch {
	case len(media) == 0 && text != "":
		b.Content = jsonString(text)
	case len(media) > 0:
		var list []anthropic.ContentBlock
		if text != "" {
			list = append(list, anthropic.ContentBlock{Type: "text", Text: text})
		}
		list = append(list, media...)
		b.Content, _ = json.Marshal(list)
	}
	return b, nil
}

// thinking turns the asked-for budget into Anthropic's thinking setting
// (E17) and keeps the request valid with it.
func (d *decoder) thinking(req *anthropic.Request, gc *GenerationConfig) {
	if d.budget <= 0 {
		return
	}
	if tc := req.ToolChoice; tc != nil && (tc.Type == "any" || tc.Type == "tool") {
		// Anthropic refuses thinking with a forced function call; the
		// function call is what the client asked for.
		d.info.Ignored = append(d.info.Ignored, "generationConfig.thinkingConfig (with functionCallingConfig mode ANY)")
		return
	}
	if !d.loopHasThinking() {
		// The turn that called the functions being answered came without
		// its signed thinking; Anthropic refuses thinking then.
		d.info.Ignored = append(d.info.Ignored, "generationConfig.thinkingConfig (the function-calling turn has no thinking to continue)")
		return
	}
	budget, maxTokens := anthropic.FitThinking(req.Model, d.budget, req.MaxTokens)
	if budget <= 0 {
		return
	}
	req.Thinking = &anthropic.Thinking{Type: "enabled", BudgetTokens: budget}
	req.MaxTokens = maxTokens
}

// loopHasThinking reports whether a request that ends in function results
// has thinking at the start of the turn that made the calls.
func (d *decoder) loopHasThinking() bool {
	n := len(d.msgs)
	if n < 2 || d.msgs[n-1].Role != "user" || d.msgs[n-2].Role != "assistant" {
		return true
	}
	results := false
	for _, b := range d.msgs[n-1].Content {
		results = results || b.Type == "tool_result"
	}
	if !results {
		return true
	}
	first := d.msgs[n-2].Content[0].Type
	return first == "thinking" || first == "redacted_thinking"
}

// sampling applies Anthropic's rules to temperature, topP and topK (E18,
// E19, E20).
func (d *decoder) sampling(req *anthropic.Request, gc *GenerationConfig) {
	if req.Thinking != nil {
		// With thinking only temperature 1, top_p >= 0.95 and no top_k pass.
		if t := gc.Temperature; t != nil && *t == 1 {
			req.Temperature = ptr(1.0)
		}
		if p := gc.TopP; p != nil && *p >= 0.95 && req.Temperature == nil {
			req.TopP = ptr(*p)
		}
		return
	}
	if t := gc.Temperature; t != nil {
		req.Temperature = ptr(min(*t, 1))
	}
	if p := gc.TopP; p != nil && req.Temperature == nil {
		req.TopP = ptr(*p)
	}
	if k := gc.TopK; k != nil && *k >= 1 && *k < math.MaxInt32 {
		req.TopK = ptr(int(math.Round(*k)))
	}
}

func ptr[T any](v T) *T { return &v }

// finish drops thinking when it is off (Anthropic only reads it with
// thinking on), drops turns left empty, merges what that makes adjacent,
// and joins the text fragments of streamed model turns.
func (d *decoder) finish(thinking bool) []anthropic.Message {
	var out []anthropic.Message
	for _, m := range d.msgs {
		var blocks []anthropic.ContentBlock
		for _, b := range m.Content {
			if !thinking && (b.Type == "thinking" || b.Type == "redacted_thinking") {
				continue
			}
			if m.Role == "assistant" && b.Type == "text" && len(blocks) > 0 && blocks[len(blocks)-1].Type == "text" {
				blocks[len(blocks)-1].Text += b.Text
				continue
			}
			blocks = append(blocks, b)
		}
		if len(blocks) == 0 {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Role == m.Role {
			out[n-1].Content = append(out[n-1].Content, blocks...)
			continue
		}
		out = append(out, anthropic.Message{Role: m.Role, Content: blocks})
	}
	return out
}

// argsObject returns a function call's arguments as a JSON object: {} for
// anything else (E12); a string holding an object is unwrapped.
func argsObject(raw json.RawMessage) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			raw = bytes.TrimSpace([]byte(s))
		}
	}
	if len(raw) > 0 && raw[0] == '{' && json.Valid(raw) {
		return json.RawMessage(compactJSON(raw))
	}
	return json.RawMessage("{}")
}

func compactJSON(raw []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return string(raw)
	}
	return buf.String()
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// Media types Claude reads.
var imageTypes = map[string]string{
	"image/jpeg": "image/jpeg", "image/jpg": "image/jpeg", "image/png": "image/png",
	"image/gif": "image/gif", "image/webp": "image/webp",
}

const supportedMedia = "image/jpeg, image/png, image/gif, image/webp, application/pdf and text/plain"

// mediaType returns the bare, lower-case media type.
func mediaType(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return s
}

func isText(mt string) bool {
	return strings.HasPrefix(mt, "text/") || mt == "application/json"
}

// inlineBlock turns inline data into an image or document block (E40).
func inlineBlock(b *Blob, field string) (anthropic.ContentBlock, error) {
	mt := mediaType(b.MIMEType)
	data, ok := stdBase64(b.Data)
	if !ok {
		return anthropic.ContentBlock{}, reqErr(field+".data", "not valid base64")
	}
	if data == "" {
		return anthropic.ContentBlock{}, reqErr(field+".data", "is empty")
	}
	switch {
	case imageTypes[mt] != "":
		return anthropic.ContentBlock{Type: "image", Source: &anthropic.Source{Type: "base64", MediaType: imageTypes[mt], Data: data}}, nil
	case mt == "application/pdf":
		return anthropic.ContentBlock{Type: "document", Source: &anthropic.Source{Type: "base64", MediaType: mt, Data: data}}, nil
	case isText(mt):
		text, err := base64.StdEncoding.DecodeString(data)
		if err != nil || !utf8.Valid(text) {
			return anthropic.ContentBlock{}, reqErr(field+".data", "a %s document must be UTF-8 text", mt)
		}
		return anthropic.ContentBlock{Type: "document", Source: &anthropic.Source{Type: "text", MediaType: "text/plain", Data: string(text)}}, nil
	}
	return anthropic.ContentBlock{}, reqErr(field+".mimeType", "Claude cannot read %q; it reads %s", b.MIMEType, supportedMedia)
}

// fileBlock turns a file URI into a URL-sourced image or PDF (E40). Only
// https URLs can be passed on: files uploaded to Google (files/…) and gs://
// objects are out of reach.
func fileBlock(f *FileData, field string) (anthropic.ContentBlock, error) {
	uri := strings.TrimSpace(f.FileURI)
	lower := strings.ToLower(uri)
	if !strings.HasPrefix(lower, "https://") || strings.HasPrefix(lower, "https://generativelanguage.googleapis.com/") {
		return anthropic.ContentBlock{}, reqErr(field+".fileUri",
			"llmgw can only pass on https URLs; files uploaded to Google, gs:// objects and plain http URLs are out of reach; send the data inline")
	}
	mt := mediaType(f.MIMEType)
	if mt == "" {
		p := uri
		if i := strings.IndexAny(p, "?#"); i >= 0 {
			p = p[:i]
		}
		mt = mediaType(mime.TypeByExtension(strings.ToLower(path.Ext(p))))
	}
	switch {
	case imageTypes[mt] != "":
		return anthropic.ContentBlock{Type: "image", Source: &anthropic.Source{Type: "url", URL: uri}}, nil
	case mt == "application/pdf":
		return anthropic.ContentBlock{Type: "document", Source: &anthropic.Source{Type: "url", URL: uri}}, nil
	case mt == "":
		return anthropic.ContentBlock{}, reqErr(field+".mimeType", "set the file's MIME type; Claude reads images and PDFs by URL")
	}
	return anthropic.ContentBlock{}, reqErr(field+".mimeType", "Claude reads images and PDFs by URL, not %q", f.MIMEType)
}

// stdBase64 returns s as padded standard base64 (proto-JSON also allows
// the URL-safe alphabet and no padding). ok is false if s is not base64.
func stdBase64(s string) (string, bool) {
	s = strings.TrimSpace(s)
	clean := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/', c == '=':
		case c == '-', c == '_', c == '\n', c == '\r':
			clean = false
		default:
			return "", false
		}
	}
	if !clean {
		s = strings.NewReplacer("-", "+", "_", "/", "\n", "", "\r", "").Replace(s)
	}
	if trimmed := strings.TrimRight(s, "="); len(s)-len(trimmed) > 2 || strings.Contains(trimmed, "=") {
		return "", false
	} else if r := len(trimmed) % 4; r == 1 {
		return "", false
	} else if r != 0 {
		s = trimmed + strings.Repeat("=", 4-r)
	}
	return s, true
}

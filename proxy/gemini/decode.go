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
	"strings"
	"unicode/utf8"

	"github.com/llmgw/llmgw/proxy/anthropic"
)

// Decode translates a generateContent request for model (the model named in
// the path; "models/" is optional) into an Anthropic request, repaired by
// anthropic.Normalize, and returns what the response side needs in Info.
// Every error is a *RequestError; no input makes it panic. Info.Stream and
// Info.JSONArray are left for the caller to set.
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
	d := decoder{info: &info}

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
	if err := d.contents(req, gr.Contents); err != nil {
		return nil, info, err
	}
	if err := d.jsonOutput(req, gc); err != nil {
		return nil, info, err
	}
	if d.budget > 0 {
		req.Thinking = &anthropic.Thinking{Type: "enabled", BudgetTokens: d.budget, Effort: d.effort}
	}
	sampling(req, gc)

	n := anthropic.Normalize(req, anthropic.NormalizeOptions{Models: opt.Models})
	if n.Empty && len(req.System) == 0 {
		// Gemini refuses a request with nothing in it; so does llmgw,
		// rather than send a placeholder alone.
		return nil, info, reqErr("contents", "at least one content with a non-empty part is required")
	}
	info.Orphans, info.Notes = n.Orphans, n.Notes
	if d.budget > 0 && req.Thinking == nil {
		info.Ignored = append(info.Ignored, "generationConfig.thinkingConfig ("+thinkingOff(n.Notes)+")")
	}
	return req, info, nil
}

// thinkingOff returns Normalize's note on why it turned thinking off.
func thinkingOff(notes []string) string {
	for _, s := range notes {
		if strings.HasPrefix(s, "thinking off") {
			return s
		}
	}
	return "thinking off"
}

// decoder holds the state of one Decode.
type decoder struct {
	info *Info
	// budget is the thinking budget asked for; 0 for none.
	budget int
	// effort is the thinkingLevel asked for, lower case; "" for none (a
	// budget, or dynamic thinking).
	effort string
}

// generation reads the sampling and length settings.
func (d *decoder) generation(req *anthropic.Request, gc *GenerationConfig) error {
	if n := gc.CandidateCount; n != nil && *n > 1 {
		return reqErr("generationConfig.candidateCount", "llmgw returns exactly one candidate; set candidateCount to 1 or leave it out")
	}
	switch n := gc.MaxOutputTokens; {
	case n == nil || *n == 0: // Normalize gives the model's default
	case *n < 0:
		return reqErr("generationConfig.maxOutputTokens", "must be positive, got %d", *n)
	default:
		req.MaxTokens = *n
	}
	if t := gc.Temperature; t != nil && (*t < 0 || *t > 2 || math.IsNaN(*t)) {
		return reqErr("generationConfig.temperature", "must be between 0 and 2, got %v", *t)
	}
	if p := gc.TopP; p != nil && (*p < 0 || *p > 1 || math.IsNaN(*p)) {
		return reqErr("generationConfig.topP", "must be between 0 and 1, got %v", *p)
	}
	req.StopSequences = gc.StopSequences
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
			d.budget, d.effort = b, strings.ToLower(tc.ThinkingLevel)
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
				Name:        names.Upstream(fd.Name),
				Description: fd.Description,
				InputSchema: toolSchema(fd.Parameters, fd.ParametersJSONSchema),
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
	return nil
}

// contents translates the turns, one message each, in order: Normalize
// merges consecutive turns of one role and pairs each function response
// with its call (by id, else by function name, else in call order).
func (d *decoder) contents(req *anthropic.Request, contents []Content) error {
	req.Messages = make([]anthropic.Message, 0, len(contents))
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
		// text appends a text block, joined to the one before in a model
		// turn: clients send a streamed answer back as one part per chunk.
		text := func(s string) {
			if role == "assistant" {
				if last := lastBlock(req.Messages, blocks); last != nil && last.Type == "text" {
					last.Text += s
					return
				}
			}
			blocks = append(blocks, anthropic.ContentBlock{Type: "text", Text: s})
		}
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
				if fc.ID == "" {
					d.info.SynthesizedIDs++ // Normalize makes one
				}
				blocks = append(blocks, anthropic.ContentBlock{
					Type: "tool_use", ID: fc.ID, Name: d.info.Names.Upstream(fc.Name), Input: fc.Args,
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
					text("```" + lang + "\n" + code + "\n```")
				}
			case p.CodeExecutionResult != nil:
				if out := p.CodeExecutionResult.Output; out != "" {
					text("Code execution result (" + p.CodeExecutionResult.Outcome + "):\n" + out)
				}
			case p.Text != nil && !p.Thought: // thought text is shown only; the carrier holds the real thinking
				text(*p.Text)
			}
		}
		req.Messages = append(req.Messages, anthropic.Message{Role: role, Content: blocks})
	}
	return nil
}

// lastBlock returns the block before the one being added: the last of
// blocks, else the last of the previous message when it is a model turn
// too, or nil.
func lastBlock(msgs []anthropic.Message, blocks []anthropic.ContentBlock) *anthropic.ContentBlock {
	if n := len(blocks); n > 0 {
		return &blocks[n-1]
	}
	if n := len(msgs); n > 0 && msgs[n-1].Role == "assistant" {
		if c := msgs[n-1].Content; len(c) > 0 {
			return &c[len(c)-1]
		}
	}
	return nil
}

// functionResponse builds the tool_result of a function response:
// response.output or response.result when it is a string, else the response
// as JSON text, plus any media parts. It carries the client's id (maybe
// none) and the function's upstream name, for Normalize to pair it.
func (d *decoder) functionResponse(fr *FunctionResponse, field string) (anthropic.ContentBlock, error) {
	b := anthropic.ContentBlock{Type: "tool_result", ToolUseID: fr.ID}
	if fr.Name != "" {
		b.Name = d.info.Names.Upstream(fr.Name)
	}
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
	blocks := []anthropic.ContentBlock{{Type: "text", Text: text}}
	for i, p := range fr.Parts {
		pf := fmt.Sprintf("%s.parts[%d]", field, i)
		switch {
		case p.InlineData != nil:
			mb, err := inlineBlock(p.InlineData, pf+".inlineData")
			if err != nil {
				return b, err
			}
			blocks = append(blocks, mb)
		case p.FileData != nil:
			mb, err := fileBlock(p.FileData, pf+".fileData")
			if err != nil {
				return b, err
			}
			blocks = append(blocks, mb)
		}
	}
	b.Content = anthropic.ToolResultContent(blocks)
	return b, nil
}

// sampling copies temperature, topP and topK; Normalize fits them to
// Anthropic's rules (temperature at most 1, not with top_p, the thinking
// limits).
func sampling(req *anthropic.Request, gc *GenerationConfig) {
	if t := gc.Temperature; t != nil {
		req.Temperature = ptr(*t)
	}
	if p := gc.TopP; p != nil {
		req.TopP = ptr(*p)
	}
	if k := gc.TopK; k != nil && *k >= 1 && *k < math.MaxInt32 {
		req.TopK = ptr(int(math.Round(*k)))
	}
}

func ptr[T any](v T) *T { return &v }

func compactJSON(raw []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return string(raw)
	}
	return buf.String()
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

// inlineBlock turns inline data into an image or document block.
func inlineBlock(b *Blob, field string) (anthropic.ContentBlock, error) {
	mt := mediaType(b.MIMEType)
	data, ok := stdBase64(b.Data)
	if !ok {
		return anthropic.ContentBlock{}, reqErr(field+".data", "not valid base64")
	}
	if data == "" {
		return anthropic.ContentBlock{}, reqErr(field+".data", "is empty")
	}
	if canon, ok := anthropic.ImageMediaType(mt); ok {
		return anthropic.ContentBlock{Type: "image", Source: &anthropic.Source{Type: "base64", MediaType: canon, Data: data}}, nil
	}
	switch {
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

// fileBlock turns a file URI into a URL-sourced image or PDF. Only
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
	if _, ok := anthropic.ImageMediaType(mt); ok {
		return anthropic.ContentBlock{Type: "image", Source: &anthropic.Source{Type: "url", URL: uri}}, nil
	}
	switch {
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

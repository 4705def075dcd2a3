package responses

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/llmgw/llmgw/proxy/anthropic"
)

// wireItem is any input item. Only the fields of its type are set.
type wireItem struct {
	Type             string            `json:"type"`
	Role             string            `json:"role"`
	Content          json.RawMessage   `json:"content"`
	CallID           string            `json:"call_id"`
	Name             string            `json:"name"`
	Namespace        string            `json:"namespace"`
	Arguments        json.RawMessage   `json:"arguments"`
	Input            json.RawMessage   `json:"input"`
	Output           json.RawMessage   `json:"output"`
	EncryptedContent *string           `json:"encrypted_content"`
	Tools            []json.RawMessage `json:"tools"`
}

// wirePart is a content part of a message or of a tool output.
type wirePart struct {
	Type     string          `json:"type"`
	Text     string          `json:"text"`
	Refusal  string          `json:"refusal"`
	ImageURL json.RawMessage `json:"image_url"`
	FileID   string          `json:"file_id"`
	FileData string          `json:"file_data"`
	FileURL  string          `json:"file_url"`
	Filename string          `json:"filename"`
}

// turns builds the system blocks and the message list from input items.
// Items are walked in order, each becoming a turn of its own; Normalize
// merges adjacent turns of one role and repairs what Anthropic would refuse.
type turns struct {
	d      *decoder
	system []anthropic.ContentBlock
	msgs   []anthropic.Message
}

// add appends a turn to the conversation.
func (b *turns) add(role string, blocks ...anthropic.ContentBlock) {
	b.msgs = append(b.msgs, anthropic.Message{Role: role, Content: blocks})
}

// input reads the input field: a string (one user message) or items.
func (b *turns) input(raw json.RawMessage) error {
	if isNull(raw) {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		b.add("user", textBlock(s))
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return badParam("input", "expected a string or an array of items")
	}
	for i, it := range items {
		if err := b.item(fmt.Sprintf("input[%d]", i), it); err != nil {
			return err
		}
	}
	return nil
}

func textBlock(s string) anthropic.ContentBlock { return anthropic.ContentBlock{Type: "text", Text: s} }

// item reads one input item.
func (b *turns) item(p string, raw json.RawMessage) error {
	var it wireItem
	if err := json.Unmarshal(raw, &it); err != nil {
		return jsonError(p, err, "expected an item object")
	}
	typ := it.Type
	if typ == "" && it.Role != "" {
		typ = "message" // easy input messages may omit the type
	}
	switch typ {
	case "message":
		return b.message(p, &it)
	case "function_call":
		if it.Name == "" {
			return badParam(p+".name", "field required")
		}
		// The call id and arguments as sent: Normalize makes the id valid
		// and unique and the arguments an object.
		b.add("assistant", anthropic.ContentBlock{
			Type: "tool_use", ID: it.CallID, Name: b.d.upstreamName(it.Namespace, it.Name), Input: it.Arguments,
		})
	case "custom_tool_call":
		if it.Name == "" {
			return badParam(p+".name", "field required")
		}
		var in string
		if !isNull(it.Input) {
			if err := json.Unmarshal(it.Input, &in); err != nil {
				return badParam(p+".input", "expected a string")
			}
		}
		wrapped, _ := marshal(map[string]string{"input": in}) // a string map: cannot fail
		b.add("assistant", anthropic.ContentBlock{
			Type: "tool_use", ID: it.CallID, Name: b.d.upstreamName(it.Namespace, it.Name), Input: wrapped,
		})
	case "function_call_output", "custom_tool_call_output":
		if it.CallID == "" {
			return badParam(p+".call_id", "field required")
		}
		content, isErr, err := b.toolOutput(p+".output", it.Output)
		if err != nil {
			return err
		}
		b.add("user", anthropic.ContentBlock{Type: "tool_result", ToolUseID: it.CallID, Content: content, IsError: isErr})
	case "reasoning":
		if it.EncryptedContent == nil || *it.EncryptedContent == "" {
			b.d.note("dropped %s: a reasoning item without encrypted_content cannot be replayed", p)
			return nil
		}
		blk, ok := openThinking(*it.EncryptedContent)
		if !ok {
			b.d.note("dropped %s: its encrypted_content was not made by llmgw", p)
			return nil
		}
		b.add("assistant", blk)
	case "additional_tools":
		return b.d.declareTools(it.Tools, p+".tools")
	case "item_reference":
		return badParam(p, "item_reference needs server-side state, which llmgw does not keep; send the item itself")
	case "":
		return badParam(p+".type", "field required")
	default:
		// local_shell_call, web_search_call, compaction, ghost_snapshot, mcp_*…:
		// items of hosted tools or of other providers, with nothing Anthropic
		// can replay.
		b.d.note("dropped %s (%s item)", p, typ)
	}
	return nil
}

// message reads a message item.
func (b *turns) message(p string, it *wireItem) error {
	switch it.Role {
	case "system", "developer":
		// Hoisted into system, in order, wherever they appear.
		blocks, err := b.parts(p+".content", it.Content, it.Role)
		if err != nil {
			return err
		}
		b.system = append(b.system, blocks...)
	case "user", "assistant":
		blocks, err := b.parts(p+".content", it.Content, it.Role)
		if err != nil {
			return err
		}
		b.add(it.Role, blocks...)
	case "":
		return badParam(p+".role", "field required")
	default:
		return badParam(p+".role", "unknown role %q (use user, assistant, system or developer)", it.Role)
	}
	return nil
}

// parts reads message content: a string or a list of parts.
func (b *turns) parts(p string, raw json.RawMessage, role string) ([]anthropic.ContentBlock, error) {
	if isNull(raw) {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []anthropic.ContentBlock{textBlock(s)}, nil
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, badParam(p, "expected a string or an array of content parts")
	}
	var out []anthropic.ContentBlock
	for i, pr := range parts {
		pp := fmt.Sprintf("%s[%d]", p, i)
		var part wirePart
		if err := json.Unmarshal(pr, &part); err != nil {
			return nil, jsonError(pp, err, "expected a content part object")
		}
		switch part.Type {
		case "input_text", "output_text", "text":
			out = append(out, textBlock(part.Text))
			continue
		case "refusal":
			out = append(out, textBlock(part.Refusal))
			continue
		case "input_audio":
			return nil, badParam(pp, "audio input is not supported by Anthropic models")
		}
		if role != "user" {
			if part.Type == "input_image" || part.Type == "input_file" {
				return nil, badParam(pp, "%s messages take text only, not %s", role, part.Type)
			}
			b.d.note("dropped %s (%s part)", pp, part.Type)
			continue
		}
		blk, ok, err := media(pp, &part)
		if err != nil {
			return nil, err
		}
		if !ok {
			b.d.note("dropped %s (%s part)", pp, part.Type)
			continue
		}
		out = append(out, blk)
	}
	return out, nil
}

// media converts an input_image or input_file part. ok is false for other
// part types.
func media(p string, part *wirePart) (anthropic.ContentBlock, bool, error) {
	switch part.Type {
	case "input_image":
		blk, err := image(p, part)
		return blk, true, err
	case "input_file":
		blk, err := file(p, part)
		return blk, true, err
	}
	return anthropic.ContentBlock{}, false, nil
}

// image converts an input_image: a data URL becomes a base64 source, an
// http(s) URL a url source (not downloaded: the URL source has no 5 MB base64
// cap), a file id is refused (only OpenAI holds the file).
func image(p string, part *wirePart) (anthropic.ContentBlock, error) {
	if part.FileID != "" {
		return anthropic.ContentBlock{}, badParam(p+".file_id",
			"OpenAI file ids cannot be read through llmgw; send the image as a data URL or an https URL")
	}
	var u string
	if !isNull(part.ImageURL) {
		if json.Unmarshal(part.ImageURL, &u) != nil {
			var o struct {
				URL string `json:"url"`
			}
			if json.Unmarshal(part.ImageURL, &o) != nil {
				return anthropic.ContentBlock{}, badParam(p+".image_url", "expected a string")
			}
			u = o.URL
		}
	}
	if u == "" {
		return anthropic.ContentBlock{}, badParam(p+".image_url", "field required")
	}
	if strings.HasPrefix(u, "data:") {
		mt, data, isBase64, err := anthropic.ParseDataURL(u)
		if err != nil || !isBase64 {
			return anthropic.ContentBlock{}, badParam(p+".image_url", "expected a base64 data URL (data:image/png;base64,…)")
		}
		canon, ok := anthropic.ImageMediaType(mt)
		if !ok {
			return anthropic.ContentBlock{}, badParam(p+".image_url", "image type %q is not supported (use jpeg, png, gif or webp)", mt)
		}
		return anthropic.ContentBlock{Type: "image", Source: &anthropic.Source{Type: "base64", MediaType: canon, Data: data}}, nil
	}
	if isHTTP(u) {
		return anthropic.ContentBlock{Type: "image", Source: &anthropic.Source{Type: "url", URL: u}}, nil
	}
	return anthropic.ContentBlock{}, badParam(p+".image_url", "expected a data URL or an http(s) URL")
}

func isHTTP(u string) bool {
	pu, err := url.Parse(u)
	return err == nil && (pu.Scheme == "https" || pu.Scheme == "http") && pu.Host != ""
}

// file converts an input_file to a document: PDF as base64 or URL, plain
// text as a text source. A file id is refused (only OpenAI holds the file).
func file(p string, part *wirePart) (anthropic.ContentBlock, error) {
	switch {
	case part.FileID != "":
		return anthropic.ContentBlock{}, badParam(p+".file_id",
			"OpenAI file ids cannot be read through llmgw; send the file as file_data or file_url")
	case part.FileData != "":
		mt, data, isBase64, err := anthropic.ParseDataURL(part.FileData)
		if err != nil {
			// Bare base64: the file name says what it is.
			mt, data, isBase64 = mediaTypeOf(part.Filename), part.FileData, true
		}
		switch {
		case mt == "application/pdf":
			if !isBase64 {
				return anthropic.ContentBlock{}, badParam(p+".file_data", "a PDF must be base64-encoded")
			}
			return anthropic.ContentBlock{Type: "document", Source: &anthropic.Source{Type: "base64", MediaType: mt, Data: data}}, nil
		case strings.HasPrefix(mt, "text/"), mt == "application/json":
			text, err := decodeText(data, isBase64)
			if err != nil {
				return anthropic.ContentBlock{}, badParam(p+".file_data", "%s", err.Error())
			}
			return anthropic.ContentBlock{Type: "document", Source: &anthropic.Source{Type: "text", MediaType: "text/plain", Data: text}}, nil
		case mt == "":
			return anthropic.ContentBlock{}, badParam(p+".file_data", "unknown file type: send a data URL (data:application/pdf;base64,…) or a filename with an extension")
		}
		if canon, ok := anthropic.ImageMediaType(mt); ok && isBase64 {
			return anthropic.ContentBlock{Type: "image", Source: &anthropic.Source{Type: "base64", MediaType: canon, Data: data}}, nil
		}
		return anthropic.ContentBlock{}, badParam(p+".file_data", "file type %q is not supported (use PDF or plain text)", mt)
	case part.FileURL != "":
		if !isHTTP(part.FileURL) {
			return anthropic.ContentBlock{}, badParam(p+".file_url", "expected an http(s) URL")
		}
		return anthropic.ContentBlock{Type: "document", Source: &anthropic.Source{Type: "url", URL: part.FileURL}}, nil
	}
	return anthropic.ContentBlock{}, badParam(p, "input_file needs file_data or file_url")
}

func mediaTypeOf(filename string) string {
	switch strings.ToLower(path.Ext(filename)) {
	case ".pdf":
		return "application/pdf"
	case ".txt", ".md", ".csv", ".log":
		return "text/plain"
	case ".json":
		return "application/json"
	case ".png":
		return "image/png"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".gif":
		return "image/gif"
	case ".webp":
		return "image/webp"
	}
	return ""
}

func decodeText(data string, isBase64 bool) (string, error) {
	var raw []byte
	if isBase64 {
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return "", fmt.Errorf("file is not valid base64")
		}
		raw = b
	} else {
		s, err := url.PathUnescape(data)
		if err != nil {
			return "", fmt.Errorf("file data is not a valid data URL")
		}
		raw = []byte(s)
	}
	if !utf8.Valid(raw) {
		return "", fmt.Errorf("a text file must be UTF-8")
	}
	return string(raw), nil
}

// toolOutput converts a function or custom tool output: a string, a list of
// parts (a single text part becomes a plain string), or Codex's older
// {content, success} object. Empty output gives no content.
func (b *turns) toolOutput(p string, raw json.RawMessage) (json.RawMessage, bool, error) {
	if isNull(raw) {
		return nil, false, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return anthropic.ToolResultContent([]anthropic.ContentBlock{textBlock(s)}), false, nil
	}
	if isObject(raw) {
		var o struct {
			Content json.RawMessage `json:"content"`
			Success *bool           `json:"success"`
		}
		if err := json.Unmarshal(raw, &o); err != nil {
			return nil, false, jsonError(p, err, "expected a string or an array of content parts")
		}
		out, _, err := b.toolOutput(p+".content", o.Content)
		return out, o.Success != nil && !*o.Success, err
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, false, badParam(p, "expected a string or an array of content parts")
	}
	var blocks []anthropic.ContentBlock
	for i, pr := range parts {
		pp := fmt.Sprintf("%s[%d]", p, i)
		var part wirePart
		if err := json.Unmarshal(pr, &part); err != nil {
			// A bare string in the list is text too.
			var t string
			if json.Unmarshal(pr, &t) != nil {
				return nil, false, jsonError(pp, err, "expected a content part object")
			}
			part = wirePart{Type: "input_text", Text: t}
		}
		switch part.Type {
		case "input_text", "output_text", "text":
			blocks = append(blocks, textBlock(part.Text))
			continue
		}
		blk, ok, err := media(pp, &part)
		if err != nil {
			return nil, false, err
		}
		if !ok {
			b.d.note("dropped %s (%s part)", pp, part.Type)
			continue
		}
		blocks = append(blocks, blk)
	}
	return anthropic.ToolResultContent(blocks), false, nil
}

// marshal encodes v without HTML escaping: text reaches the upstream as
// written.
func marshal(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return json.RawMessage(bytes.TrimRight(buf.Bytes(), "\n")), nil
}

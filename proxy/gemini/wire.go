package gemini

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// The request types below are the parts of a GenerateContentRequest that
// llmgw reads. Google's proto-JSON accepts both the camelCase and the
// snake_case spelling of every field name, and reads null as absent, so
// parseRequest first rewrites the body to camelCase keys without null
// members (fold), then decodes it into these types with encoding/json.
// Fields llmgw does not read (safetySettings, labels, videoMetadata…) are
// skipped.

// Request is a generateContent / streamGenerateContent request body.
type Request struct {
	Contents          []Content         `json:"contents"`
	SystemInstruction *Content          `json:"systemInstruction"`
	Tools             []Tool            `json:"tools"`
	ToolConfig        *ToolConfig       `json:"toolConfig"`
	GenerationConfig  *GenerationConfig `json:"generationConfig"`
	CachedContent     string            `json:"cachedContent"`
	// Model is not used: some clients repeat the model in the body, and
	// the one in the path wins.
	Model json.RawMessage `json:"model"`
	// Ignored lists the top-level fields present that llmgw ignores.
	Ignored []string `json:"-"`
}

// Content is one turn: a role and its parts.
type Content struct {
	Role  string `json:"role"`
	Parts []Part `json:"parts"`
}

// Part is one piece of a turn. At most one of its data fields is set;
// Thought and ThoughtSignature may accompany any of them.
type Part struct {
	Text                *string              `json:"text"` // nil if absent; "" is an empty text part
	Thought             bool                 `json:"thought"`
	ThoughtSignature    string               `json:"thoughtSignature"` // base64, as proto-JSON encodes bytes
	InlineData          *Blob                `json:"inlineData"`
	FileData            *FileData            `json:"fileData"`
	FunctionCall        *FunctionCall        `json:"functionCall"`
	FunctionResponse    *FunctionResponse    `json:"functionResponse"`
	ExecutableCode      *ExecutableCode      `json:"executableCode"`
	CodeExecutionResult *CodeExecutionResult `json:"codeExecutionResult"`
}

// Blob is inline data: a MIME type and base64 bytes.
type Blob struct {
	MIMEType string `json:"mimeType"`
	Data     string `json:"data"`
}

// FileData refers to a file by URI.
type FileData struct {
	MIMEType string `json:"mimeType"`
	FileURI  string `json:"fileUri"`
}

// FunctionCall is a call the model made, as a client sends it back in the
// history.
type FunctionCall struct {
	ID   string          `json:"id"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args"` // kept raw: the arguments are the client's data
}

// FunctionResponse is the result of a function call, sent by the client.
type FunctionResponse struct {
	ID       string                 `json:"id"`
	Name     string                 `json:"name"`
	Response json.RawMessage        `json:"response"` // kept raw
	Parts    []FunctionResponsePart `json:"parts"`
}

// FunctionResponsePart is media attached to a function response.
type FunctionResponsePart struct {
	InlineData *Blob     `json:"inlineData"`
	FileData   *FileData `json:"fileData"`
}

// ExecutableCode is code Gemini's own code-execution tool ran, found in
// histories recorded against Google.
type ExecutableCode struct {
	Language string `json:"language"`
	Code     string `json:"code"`
}

// CodeExecutionResult is the output of ExecutableCode.
type CodeExecutionResult struct {
	Outcome string `json:"outcome"`
	Output  string `json:"output"`
}

// Tool is one entry of tools: function declarations, or a Google-hosted
// tool that llmgw cannot run (Hosted names it).
type Tool struct {
	FunctionDeclarations []FunctionDeclaration `json:"functionDeclarations"`
	Hosted               []string              `json:"-"`
}

// FunctionDeclaration declares a function the model may call. Parameters is
// Google's OpenAPI-subset Schema; ParametersJSONSchema is plain JSON Schema.
type FunctionDeclaration struct {
	Name                 string          `json:"name"`
	Description          string          `json:"description"`
	Parameters           json.RawMessage `json:"parameters"`
	ParametersJSONSchema json.RawMessage `json:"parametersJsonSchema"`
}

// ToolConfig holds the function-calling mode.
type ToolConfig struct {
	FunctionCallingConfig *FunctionCallingConfig `json:"functionCallingConfig"`
}

// FunctionCallingConfig says whether and which functions the model must
// call.
type FunctionCallingConfig struct {
	Mode                 string   `json:"mode"`
	AllowedFunctionNames []string `json:"allowedFunctionNames"`
}

// GenerationConfig holds the sampling and output settings.
type GenerationConfig struct {
	MaxOutputTokens    *int            `json:"maxOutputTokens"`
	Temperature        *float64        `json:"temperature"`
	TopP               *float64        `json:"topP"`
	TopK               *float64        `json:"topK"` // a number in Google's proto
	StopSequences      []string        `json:"stopSequences"`
	CandidateCount     *int            `json:"candidateCount"`
	ResponseMIMEType   string          `json:"responseMimeType"`
	ResponseSchema     json.RawMessage `json:"responseSchema"`
	ResponseJSONSchema json.RawMessage `json:"responseJsonSchema"`
	ResponseModalities []string        `json:"responseModalities"`
	ThinkingConfig     *ThinkingConfig `json:"thinkingConfig"`
	// Ignored lists the fields present that llmgw ignores.
	Ignored []string `json:"-"`
}

// ThinkingConfig configures the model's thinking.
type ThinkingConfig struct {
	IncludeThoughts bool   `json:"includeThoughts"`
	ThinkingBudget  *int   `json:"thinkingBudget"`
	ThinkingLevel   string `json:"thinkingLevel"`
}

// freeForm are the keys whose values are the client's data rather than
// proto messages: fold copies them as sent, keys, nulls and all.
var freeForm = map[string]bool{
	"args": true, "response": true, // functionCall, functionResponse
	"parameters": true, "parametersJsonSchema": true, // functionDeclarations
	"responseSchema": true, "responseJsonSchema": true, // generationConfig
}

// parseRequest decodes a GenerateContentRequest, a JSON object. Invalid JSON
// gives a *json.SyntaxError, a value of the wrong type a *fieldError naming
// its path.
func parseRequest(body []byte) (*Request, error) {
	if err := json.Unmarshal(body, new(json.RawMessage)); err != nil {
		return nil, err
	}
	doc, err := fold(body)
	if err != nil {
		return nil, err
	}
	var r Request
	if err := json.Unmarshal(doc, &r); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, &fieldError{path: pathAt(doc, te.Offset), err: err}
		}
		return nil, err
	}
	// The same document again, for the names of what r left out. Neither
	// can fail: doc has just been decoded into r.
	var top map[string]json.RawMessage
	var keys struct {
		GenerationConfig map[string]json.RawMessage   `json:"generationConfig"`
		Tools            []map[string]json.RawMessage `json:"tools"`
	}
	_ = json.Unmarshal(doc, &top)
	_ = json.Unmarshal(doc, &keys)
	r.Ignored = unknownKeys[Request](top)
	if r.GenerationConfig != nil {
		for _, k := range unknownKeys[GenerationConfig](keys.GenerationConfig) {
			r.GenerationConfig.Ignored = append(r.GenerationConfig.Ignored, "generationConfig."+k)
		}
	}
	for i := range min(len(r.Tools), len(keys.Tools)) {
		r.Tools[i].Hosted = unknownKeys[Tool](keys.Tools[i])
	}
	return &r, nil
}

// fold returns the JSON value doc (valid JSON) with every object key in
// camelCase and every member whose value is null left out, except inside
// freeForm values, which it copies as they are.
func fold(doc []byte) ([]byte, error) {
	if bytes.IndexByte(doc, '_') < 0 && !bytes.Contains(doc, []byte("null")) {
		// No key can be snake_case and no member null: nothing to fold,
		// and a large body is not copied at all. Most requests are so.
		return doc, nil
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var out bytes.Buffer
	out.Grow(len(doc)) // folding only shortens; one allocation for a large body
	tok, err := dec.Token()
	if err == nil {
		err = foldValue(doc, dec, tok, &out)
	}
	return out.Bytes(), err
}

// foldValue writes to out the value that starts with tok, reading the rest
// of it from dec, which reads doc. Scalars inside it are copied as the
// client wrote them (a long text is copied once, never decoded and encoded
// again).
func foldValue(doc []byte, dec *json.Decoder, tok json.Token, out *bytes.Buffer) error {
	delim, ok := tok.(json.Delim)
	if !ok {
		b, err := json.Marshal(tok)
		out.Write(b)
		return err
	}
	out.WriteByte(byte(delim))
	n := 0
	next := func() { // before each element or member written
		if n++; n > 1 {
			out.WriteByte(',')
		}
	}
	for dec.More() {
		var name []byte
		if delim == '{' {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := k.(string)
			key = camel(key)
			name, _ = json.Marshal(key)
			if freeForm[key] {
				var raw json.RawMessage
				if err := dec.Decode(&raw); err != nil {
					return err
				}
				if string(raw) != "null" {
					next()
					out.Write(name)
					out.WriteByte(':')
					out.Write(raw)
				}
				continue
			}
		}
		if c := peek(doc, dec.InputOffset()); c != '{' && c != '[' {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return err
			}
			if name != nil && string(raw) == "null" {
				continue // a member set to null is left out; an element stays
			}
			next()
			if name != nil {
				out.Write(name)
				out.WriteByte(':')
			}
			out.Write(raw)
			continue
		}
		v, err := dec.Token()
		if err != nil {
			return err
		}
		next()
		if name != nil {
			out.Write(name)
			out.WriteByte(':')
		}
		if err := foldValue(doc, dec, v, out); err != nil {
			return err
		}
	}
	end, err := dec.Token()
	if err != nil {
		return err
	}
	out.WriteByte(byte(end.(json.Delim)))
	return nil
}

// peek returns the first byte of the value that starts at or after off in
// doc, past the whitespace and separators the decoder has not read yet.
func peek(doc []byte, off int64) byte {
	for _, c := range doc[min(off, int64(len(doc))):] {
		switch c {
		case ' ', '\t', '\r', '\n', ':', ',':
		default:
			return c
		}
	}
	return 0
}

// pathAt returns the path, as in contents[1].parts[0].text, of the value in
// the JSON document doc at which encoding/json reported an
// UnmarshalTypeError: off is where the value ends if it is a literal, or
// just past its opening bracket if it is an object or array.
func pathAt(doc []byte, off int64) string {
	type frame struct {
		array bool
		index int    // of the current element, in an array
		key   string // of the current member, in an object
		value bool   // in an object, whether key's value comes next
	}
	var stack []frame
	dec := json.NewDecoder(bytes.NewReader(doc))
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		var top *frame
		if n := len(stack); n > 0 {
			top = &stack[n-1]
		}
		switch {
		case tok == json.Delim('}') || tok == json.Delim(']'):
			stack = stack[:len(stack)-1]
			if n := len(stack); n > 0 {
				stack[n-1].value = false
			}
			continue
		case top != nil && !top.array && !top.value:
			top.key, _ = tok.(string)
			top.value = true
			continue
		case top != nil && top.array:
			top.index++
		}
		if dec.InputOffset() >= off {
			var b strings.Builder
			for _, f := range stack {
				switch {
				case f.array:
					b.WriteString("[" + strconv.Itoa(f.index) + "]")
				case b.Len() > 0:
					b.WriteString("." + f.key)
				default:
					b.WriteString(f.key)
				}
			}
			return b.String()
		}
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, frame{array: d == '[', index: -1})
		} else if top != nil {
			top.value = false
		}
	}
}

// unknownKeys returns, sorted, the keys of obj that encoding/json matches to
// no field of the struct T (it matches names case-insensitively).
func unknownKeys[T any](obj map[string]json.RawMessage) []string {
	t := reflect.TypeFor[T]()
	var out []string
	for k := range obj {
		known := false
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			known = known || name != "-" && strings.EqualFold(name, k)
		}
		if !known {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// fieldError is a decoding error at a field path.
type fieldError struct {
	path string
	err  error
}

func (e *fieldError) Error() string { return e.path + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// camel turns a snake_case key into camelCase; other keys are unchanged.
func camel(k string) string {
	if !strings.Contains(k, "_") {
		return k
	}
	var b strings.Builder
	up := false
	for i, r := range k {
		switch {
		case r == '_' && i > 0:
			up = true
		case up:
			b.WriteString(strings.ToUpper(string(r)))
			up = false
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// describe turns a JSON decoding error into a short message for a client.
func describe(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("expected %s, got %s", jsonKind(te.Type.Kind().String()), te.Value)
	case errors.As(err, &se):
		return "not valid JSON: " + se.Error()
	}
	return err.Error()
}

// jsonKind names a Go kind as its JSON type.
func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	}
	return k
}

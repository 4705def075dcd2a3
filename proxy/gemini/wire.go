package gemini

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// The request types below are the parts of a GenerateContentRequest that
// llmgw reads. Google's proto-JSON accepts both the camelCase and the
// snake_case spelling of every field name, so each type decodes itself
// through eachField, which folds snake_case to camelCase. Fields llmgw does
// not read (safetySettings, labels, videoMetadata…) are skipped unparsed.

// Request is a generateContent / streamGenerateContent request body.
type Request struct {
	Contents          []Content
	SystemInstruction *Content
	Tools             []Tool
	ToolConfig        *ToolConfig
	GenerationConfig  *GenerationConfig
	CachedContent     string
	// Ignored lists the top-level fields present that llmgw ignores.
	Ignored []string
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *Request) UnmarshalJSON(b []byte) error {
	return eachField(b, func(key string, raw json.RawMessage) error {
		switch key {
		case "contents":
			return decodeList(raw, &r.Contents)
		case "systemInstruction":
			return json.Unmarshal(raw, &r.SystemInstruction)
		case "tools":
			return decodeList(raw, &r.Tools)
		case "toolConfig":
			return json.Unmarshal(raw, &r.ToolConfig)
		case "generationConfig":
			return json.Unmarshal(raw, &r.GenerationConfig)
		case "cachedContent":
			return json.Unmarshal(raw, &r.CachedContent)
		case "model":
			// Some clients repeat the model in the body; the path wins.
		default:
			r.Ignored = append(r.Ignored, key)
		}
		return nil
	})
}

// Content is one turn: a role and its parts.
type Content struct {
	Role  string
	Parts []Part
}

// UnmarshalJSON implements json.Unmarshaler.
func (c *Content) UnmarshalJSON(b []byte) error {
	return eachField(b, func(key string, raw json.RawMessage) error {
		switch key {
		case "role":
			return json.Unmarshal(raw, &c.Role)
		case "parts":
			return decodeList(raw, &c.Parts)
		}
		return nil
	})
}

// Part is one piece of a turn. At most one of its data fields is set;
// Thought and ThoughtSignature may accompany any of them.
type Part struct {
	Text                string
	HasText             bool
	Thought             bool
	ThoughtSignature    string // base64, as proto-JSON encodes bytes
	InlineData          *Blob
	FileData            *FileData
	FunctionCall        *FunctionCall
	FunctionResponse    *FunctionResponse
	ExecutableCode      *ExecutableCode
	CodeExecutionResult *CodeExecutionResult
}

// UnmarshalJSON implements json.Unmarshaler.
func (p *Part) UnmarshalJSON(b []byte) error {
	return eachField(b, func(key string, raw json.RawMessage) error {
		switch key {
		case "text":
			p.HasText = true
			return json.Unmarshal(raw, &p.Text)
		case "thought":
			return json.Unmarshal(raw, &p.Thought)
		case "thoughtSignature":
			return json.Unmarshal(raw, &p.ThoughtSignature)
		case "inlineData":
			return json.Unmarshal(raw, &p.InlineData)
		case "fileData":
			return json.Unmarshal(raw, &p.FileData)
		case "functionCall":
			return json.Unmarshal(raw, &p.FunctionCall)
		case "functionResponse":
			return json.Unmarshal(raw, &p.FunctionResponse)
		case "executableCode":
			return json.Unmarshal(raw, &p.ExecutableCode)
		case "codeExecutionResult":
			return json.Unmarshal(raw, &p.CodeExecutionResult)
		}
		return nil
	})
}

// Blob is inline data: a MIME type and base64 bytes.
type Blob struct {
	MIMEType string
	Data     string
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Blob) UnmarshalJSON(b []byte) error {
	return eachField(b, func(key string, raw json.RawMessage) error {
		switch key {
		case "mimeType":
			return json.Unmarshal(raw, &d.MIMEType)
		case "data":
			return json.Unmarshal(raw, &d.Data)
		}
		return nil
	})
}

// FileData refers to a file by URI.
type FileData struct {
	MIMEType string
	FileURI  string
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *FileData) UnmarshalJSON(b []byte) error {
	return eachField(b, func(key string, raw json.RawMessage) error {
		switch key {
		case "mimeType":
			return json.Unmarshal(raw, &d.MIMEType)
		case "fileUri":
			return json.Unmarshal(raw, &d.FileURI)
		}
		return nil
	})
}

// FunctionCall is a call the model made, as a client sends it back in the
// history.
type FunctionCall struct {
	ID   string
	Name string
	Args json.RawMessage // kept raw: the arguments are the client's data
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *FunctionCall) UnmarshalJSON(b []byte) error {
	return eachField(b, func(key string, raw json.RawMessage) error {
		switch key {
		case "id":
			return json.Unmarshal(raw, &f.ID)
		case "name":
			return json.Unmarshal(raw, &f.Name)
		case "args":
			f.Args = raw
		}
		return nil
	})
}

// FunctionResponse is the result of a function call, sent by the client.
type FunctionResponse struct {
	ID       string
	Name     string
	Response json.RawMessage // kept raw
	Parts    []FunctionResponsePart
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *FunctionResponse) UnmarshalJSON(b []byte) error {
	return eachField(b, func(key string, raw json.RawMessage) error {
		switch key {
		case "id":
			return json.Unmarshal(raw, &f.ID)
		case "name":
			return json.Unmarshal(raw, &f.Name)
		case "response":
			f.Response = raw
		case "parts":
			return decodeList(raw, &f.Parts)
		}
		return nil
	})
}

// FunctionResponsePart is media attached to a function response.
type FunctionResponsePart struct {
	InlineData *Blob
	FileData   *FileData
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *FunctionResponsePart) UnmarshalJSON(b []byte) error {
	return eachField(b, func(key string, raw json.RawMessage) error {
		switch key {
		case "inlineData":
			return json.Unmarshal(raw, &f.InlineData)
		case "fileData":
			return json.Unmarshal(raw, &f.FileData)
		}
		return nil
	})
}

// ExecutableCode is code Gemini's own code-execution tool ran, found in
// histories recorded against Google.
type ExecutableCode struct {
	Language string
	Code     string
}

// UnmarshalJSON implements json.Unmarshaler.
func (e *ExecutableCode) UnmarshalJSON(b []byte) error {
	return eachField(b, func(key string, raw json.RawMessage) error {
		switch key {
		case "language":
			return json.Unmarshal(raw, &e.Language)
		case "code":
			return json.Unmarshal(raw, &e.Code)
		}
		return nil
	})
}

// CodeExecutionResult is the output of ExecutableCode.
type CodeExecutionResult struct {
	Outcome string
	Output  string
}

// UnmarshalJSON implements json.Unmarshaler.
func (e *CodeExecutionResult) UnmarshalJSON(b []byte) error {
	return eachField(b, func(key string, raw json.RawMessage) error {
		switch key {
		case "outcome":
			return json.Unmarshal(raw, &e.Outcome)
		case "output":
			return json.Unmarshal(raw, &e.Output)
		}
		return nil
	})
}

// Tool is one entry of tools: function declarations, or a Google-hosted
// tool that llmgw cannot run (Hosted names it).
type Tool struct {
	FunctionDeclarations []FunctionDeclaration
	Hosted               []string
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Tool) UnmarshalJSON(b []byte) error {
	return eachField(b, func(key string, raw json.RawMessage) error {
		if key == "functionDeclarations" {
			return decodeList(raw, &t.FunctionDeclarations)
		}
		t.Hosted = append(t.Hosted, key)
		return nil
	})
}

// FunctionDeclaration declares a function the model may call. Parameters is
// Google's OpenAPI-subset Schema; ParametersJSONSchema is plain JSON Schema.
type FunctionDeclaration struct {
	Name                 string
	Description          string
	Parameters           json.RawMessage
	ParametersJSONSchema json.RawMessage
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *FunctionDeclaration) UnmarshalJSON(b []byte) error {
	return eachField(b, func(key string, raw json.RawMessage) error {
		switch key {
		case "name":
			return json.Unmarshal(raw, &f.Name)
		case "description":
			return json.Unmarshal(raw, &f.Description)
		case "parameters":
			f.Parameters = raw
		case "parametersJsonSchema":
			f.ParametersJSONSchema = raw
		}
		return nil
	})
}

// ToolConfig holds the function-calling mode.
type ToolConfig struct {
	FunctionCallingConfig *FunctionCallingConfig
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *ToolConfig) UnmarshalJSON(b []byte) error {
	return eachField(b, func(key string, raw json.RawMessage) error {
		if key == "functionCallingConfig" {
			return json.Unmarshal(raw, &t.FunctionCallingConfig)
		}
		return nil
	})
}

// FunctionCallingConfig says whether and which functions the model must
// call.
type FunctionCallingConfig struct {
	Mode                 string
	AllowedFunctionNames []string
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *FunctionCallingConfig) UnmarshalJSON(b []byte) error {
	return eachField(b, func(key string, raw json.RawMessage) error {
		switch key {
		case "mode":
			return json.Unmarshal(raw, &f.Mode)
		case "allowedFunctionNames":
			return json.Unmarshal(raw, &f.AllowedFunctionNames)
		}
		return nil
	})
}

// GenerationConfig holds the sampling and output settings.
type GenerationConfig struct {
	MaxOutputTokens    *int
	Temperature        *float64
	TopP               *float64
	TopK               *float64 // a number in Google's proto
	StopSequences      []string
	CandidateCount     *int
	ResponseMIMEType   string
	ResponseSchema     json.RawMessage
	ResponseJSONSchema json.RawMessage
	ResponseModalities []string
	ThinkingConfig     *ThinkingConfig
	// Ignored lists the fields present that llmgw ignores.
	Ignored []string
}

// UnmarshalJSON implements json.Unmarshaler.
func (g *GenerationConfig) UnmarshalJSON(b []byte) error {
	return eachField(b, func(key string, raw json.RawMessage) error {
		switch key {
		case "maxOutputTokens":
			return json.Unmarshal(raw, &g.MaxOutputTokens)
		case "temperature":
			return json.Unmarshal(raw, &g.Temperature)
		case "topP":
			return json.Unmarshal(raw, &g.TopP)
		case "topK":
			return json.Unmarshal(raw, &g.TopK)
		case "stopSequences":
			return json.Unmarshal(raw, &g.StopSequences)
		case "candidateCount":
			return json.Unmarshal(raw, &g.CandidateCount)
		case "responseMimeType":
			return json.Unmarshal(raw, &g.ResponseMIMEType)
		case "responseSchema":
			g.ResponseSchema = raw
		case "responseJsonSchema":
			g.ResponseJSONSchema = raw
		case "responseModalities":
			return json.Unmarshal(raw, &g.ResponseModalities)
		case "thinkingConfig":
			return json.Unmarshal(raw, &g.ThinkingConfig)
		default:
			g.Ignored = append(g.Ignored, "generationConfig."+key)
		}
		return nil
	})
}

// ThinkingConfig configures the model's thinking.
type ThinkingConfig struct {
	IncludeThoughts bool
	ThinkingBudget  *int
	ThinkingLevel   string
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *ThinkingConfig) UnmarshalJSON(b []byte) error {
	return eachField(b, func(key string, raw json.RawMessage) error {
		switch key {
		case "includeThoughts":
			return json.Unmarshal(raw, &t.IncludeThoughts)
		case "thinkingBudget":
			return json.Unmarshal(raw, &t.ThinkingBudget)
		case "thinkingLevel":
			return json.Unmarshal(raw, &t.ThinkingLevel)
		}
		return nil
	})
}

// fieldError is a decoding error at a field path.
type fieldError struct {
	path string
	err  error
}

func (e *fieldError) Error() string { return e.path + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// at prefixes err's path with name (a key, or an [index]).
func at(name string, err error) error {
	if err == nil {
		return nil
	}
	var fe *fieldError
	if errors.As(err, &fe) {
		sep := "."
		if strings.HasPrefix(fe.path, "[") {
			sep = ""
		}
		return &fieldError{path: name + sep + fe.path, err: fe.err}
	}
	return &fieldError{path: name, err: err}
}

// errNotObject is returned when a JSON object is expected.
var errNotObject = errors.New("expected an object")

// eachField calls fn for every key of the JSON object b, with the key in
// camelCase whatever spelling the client used. null decodes as nothing.
func eachField(b []byte, fn func(key string, raw json.RawMessage) error) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	if len(b) == 0 || b[0] != '{' {
		return errNotObject
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic errors and lists
	for _, k := range keys {
		raw := m[k]
		key := camel(k)
		if string(bytes.TrimSpace(raw)) == "null" {
			continue
		}
		if err := fn(key, raw); err != nil {
			return at(key, err)
		}
	}
	return nil
}

// decodeList decodes a JSON array element by element, so that an error
// names the element's index.
func decodeList[T any](raw json.RawMessage, dst *[]T) error {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return err
	}
	out := make([]T, len(items))
	for i, item := range items {
		if err := json.Unmarshal(item, &out[i]); err != nil {
			return at("["+strconv.Itoa(i)+"]", err)
		}
	}
	*dst = out
	return nil
}

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
	case errors.Is(err, errNotObject):
		return "expected an object"
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

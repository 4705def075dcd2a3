package gemini

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/llmgw/llmgw/proxy/anthropic"
)

// schemaMode says how convertSchema treats a schema.
type schemaMode struct {
	// google: the schema is Google's OpenAPI-subset Schema (parameters,
	// responseSchema): keys may be snake_case, types UPPERCASE, nullable a
	// flag, and a few keys (propertyOrdering, example) mean nothing to JSON
	// Schema.
	google bool
	// output: the schema constrains Claude's answer (output_config.format),
	// which accepts a narrower JSON Schema: every object closed with
	// additionalProperties false, no numeric, length or pattern limits.
	output bool
}

// toolSchema returns a function declaration's parameter schema in a form
// Anthropic accepts as input_schema. parametersJsonSchema wins over
// parameters when both are given.
func toolSchema(params, jsonSchema json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(jsonSchema)) > 0 && string(bytes.TrimSpace(jsonSchema)) != "null" {
		return anthropic.NormalizeSchema(jsonSchema)
	}
	if len(params) == 0 {
		return anthropic.NormalizeSchema(nil)
	}
	var v any
	if json.Unmarshal(params, &v) != nil {
		return anthropic.NormalizeSchema(nil)
	}
	out, err := json.Marshal(convertSchema(v, schemaMode{google: true}, 0))
	if err != nil {
		return anthropic.NormalizeSchema(nil)
	}
	return anthropic.NormalizeSchema(out)
}

// outputSchema returns the schema of a JSON answer (responseJsonSchema, or
// responseSchema in Google's form) as output_config.format accepts it, or
// nil if there is none usable.
func outputSchema(schema json.RawMessage, google bool) json.RawMessage {
	var v any
	if len(schema) == 0 || json.Unmarshal(schema, &v) != nil {
		return nil
	}
	if _, ok := v.(map[string]any); !ok {
		return nil
	}
	out, err := json.Marshal(convertSchema(v, schemaMode{google: google, output: true}, 0))
	if err != nil {
		return nil
	}
	return out
}

// unsupportedInOutput are the JSON Schema keywords Anthropic's structured
// outputs refuse.
var unsupportedInOutput = map[string]bool{
	"minimum": true, "maximum": true, "exclusiveMinimum": true, "exclusiveMaximum": true,
	"multipleOf": true, "minLength": true, "maxLength": true, "pattern": true,
	"maxItems": true, "minProperties": true, "maxProperties": true, "uniqueItems": true,
}

// outputFormats are the string formats structured outputs accept.
var outputFormats = map[string]bool{
	"date-time": true, "time": true, "date": true, "duration": true, "email": true,
	"hostname": true, "uri": true, "ipv4": true, "ipv6": true, "uuid": true,
}

// convertSchema converts one schema node (a parsed JSON value).
func convertSchema(v any, mode schemaMode, depth int) any {
	node, ok := v.(map[string]any)
	if !ok || depth > 64 {
		return v
	}
	out := make(map[string]any, len(node))
	for k, val := range node {
		if mode.google {
			k = camel(k)
		}
		switch k {
		case "properties", "$defs", "definitions", "patternProperties":
			// Maps of name → schema: the names are data, never renamed.
			if m, ok := val.(map[string]any); ok {
				nm := make(map[string]any, len(m))
				for name, s := range m {
					nm[name] = convertSchema(s, mode, depth+1)
				}
				out[k] = nm
			}
		case "items", "additionalProperties", "not", "contains":
			out[k] = convertSchema(val, mode, depth+1)
		case "anyOf", "oneOf", "allOf", "prefixItems":
			if list, ok := val.([]any); ok {
				nl := make([]any, len(list))
				for i, s := range list {
					nl[i] = convertSchema(s, mode, depth+1)
				}
				out[k] = nl
			}
		case "type":
			if s, ok := val.(string); ok {
				s = strings.ToLower(s)
				if s == "type_unspecified" || s == "" {
					continue
				}
				out[k] = s
			} else {
				out[k] = val
			}
		case "propertyOrdering", "example":
			if !mode.google {
				out[k] = val
			}
		case "format":
			s, _ := val.(string)
			switch {
			case mode.google && s == "enum": // Google's marker for enum strings
			case mode.output && !outputFormats[s]:
			default:
				out[k] = val
			}
		default:
			out[k] = val
		}
	}
	if n, ok := out["nullable"].(bool); ok {
		delete(out, "nullable")
		if t, ok := out["type"].(string); ok && n {
			out["type"] = []any{t, "null"}
		}
	}
	if mode.output {
		for k := range unsupportedInOutput {
			delete(out, k)
		}
		if n, ok := out["minItems"].(float64); ok && n > 1 {
			delete(out, "minItems")
		}
		if isObjectSchema(out) {
			out["additionalProperties"] = false
		}
	}
	return out
}

// isObjectSchema reports whether a schema node describes an object.
func isObjectSchema(n map[string]any) bool {
	switch t := n["type"].(type) {
	case string:
		return t == "object"
	case []any:
		for _, x := range t {
			if x == "object" {
				return true
			}
		}
		return false
	}
	_, hasProps := n["properties"]
	return hasProps
}

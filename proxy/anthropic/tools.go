package anthropic

import (
	"encoding/json"
	"strconv"
	"strings"
)

// ToolNames maps client tool names to names Anthropic accepts
// (^[a-zA-Z0-9_-]{1,128}$) and back, so a response can restore the name the
// client declared. The zero value is ready to use; it is not safe for
// concurrent use.
type ToolNames struct {
	up     map[string]string // client → upstream
	client map[string]string // upstream → client
}

// Upstream returns the name to send for a client's tool name.
func (m *ToolNames) Upstream(name string) string {
	if u, ok := m.up[name]; ok {
		return u
	}
	u := sanitize(name, 128)
	if u == "" {
		u = "tool"
	}
	// Two client names that sanitize alike get distinct upstream names.
	for i := 2; ; i++ {
		if other, taken := m.client[u]; !taken || other == name {
			break
		}
		suffix := "_" + strconv.Itoa(i)
		u = sanitize(name, 128-len(suffix)) + suffix
	}
	if m.up == nil {
		m.up, m.client = make(map[string]string), make(map[string]string)
	}
	m.up[name], m.client[u] = u, name
	return u
}

// Client returns the client's name for an upstream tool name.
func (m *ToolNames) Client(upstream string) string {
	if c, ok := m.client[upstream]; ok {
		return c
	}
	return upstream
}

// SanitizeID turns a tool call id into one Anthropic accepts
// (^[a-zA-Z0-9_-]+$). The same input always gives the same output, so a
// tool_use and its tool_result stay paired. An empty id stays empty: the
// caller must generate one.
func SanitizeID(id string) string { return sanitize(id, 0) }

func sanitize(s string, limit int) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if limit > 0 && b.Len() >= limit {
			break
		}
	}
	return b.String()
}

// emptySchema is the input schema of a tool that declares none.
var emptySchema = json.RawMessage(`{"type":"object","properties":{}}`)

// NormalizeSchema turns a client's tool parameter schema into one Anthropic
// accepts: an object schema without top-level anyOf/oneOf/allOf, with $ref
// inlined from $defs/definitions, JSON Schema type names in lower case
// (Gemini sends OBJECT, STRING…), Gemini's nullable folded into the type, and
// an empty object schema when none is given. Malformed input gives the empty
// schema rather than an error: a tool without a usable schema can still be
// called.
func NormalizeSchema(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return emptySchema
	}
	var root any
	if err := json.Unmarshal(raw, &root); err != nil {
		return emptySchema
	}
	obj, ok := root.(map[string]any)
	if !ok {
		return emptySchema
	}
	defs := map[string]any{}
	for _, k := range []string{"$defs", "definitions"} {
		if d, ok := obj[k].(map[string]any); ok {
			for name, v := range d {
				defs["#/"+k+"/"+name] = v
			}
		}
	}
	n := normalizeNode(obj, defs, 0).(map[string]any)
	delete(n, "$defs")
	delete(n, "definitions")
	delete(n, "$schema")
	// Top-level unions: merge the alternatives' properties into one object.
	for _, k := range []string{"anyOf", "oneOf", "allOf"} {
		alts, ok := n[k].([]any)
		if !ok {
			continue
		}
		delete(n, k)
		props, _ := n["properties"].(map[string]any)
		if props == nil {
			props = map[string]any{}
		}
		for _, alt := range alts {
			if m, ok := alt.(map[string]any); ok {
				if p, ok := m["properties"].(map[string]any); ok {
					for name, v := range p {
						if _, exists := props[name]; !exists {
							props[name] = v
						}
					}
				}
			}
		}
		n["properties"] = props
	}
	n["type"] = "object"
	if _, ok := n["properties"]; !ok {
		n["properties"] = map[string]any{}
	}
	out, err := json.Marshal(n)
	if err != nil {
		return emptySchema
	}
	return out
}

// normalizeNode lower-cases types, folds nullable, inlines $ref, recursively.
func normalizeNode(v any, defs map[string]any, depth int) any {
	if depth > 32 {
		return map[string]any{} // a reference cycle: stop inlining
	}
	switch x := v.(type) {
	case map[string]any:
		if ref, ok := x["$ref"].(string); ok {
			if target, ok := defs[ref]; ok {
				return normalizeNode(target, defs, depth+1)
			}
			delete(x, "$ref")
		}
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[k] = normalizeNode(val, defs, depth+1)
		}
		if t, ok := out["type"].(string); ok {
			out["type"] = strings.ToLower(t)
		}
		if nullable, ok := out["nullable"].(bool); ok {
			delete(out, "nullable")
			if t, ok := out["type"].(string); ok && nullable {
				out["type"] = []any{t, "null"}
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = normalizeNode(val, defs, depth+1)
		}
		return out
	}
	return v
}

package responses

import (
	"encoding/json"
	"fmt"

	"github.com/llmgw/llmgw/proxy/anthropic"
)

// customSchema is the input schema of a freeform custom tool upstream: one
// string, unwrapped again on the way back.
var customSchema = json.RawMessage(`{"type":"object","properties":{"input":{"type":"string","description":"The raw input for the tool, exactly as the tool expects it (not JSON-encoded)."}},"required":["input"]}`)

// wireTool is any entry of tools[]: function and custom tools are flat in
// the Responses API (not nested under "function" as in Chat Completions,
// though that shape is tolerated), namespace tools group others.
type wireTool struct {
	Type        string            `json:"type"`
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Parameters  json.RawMessage   `json:"parameters"`
	Format      *wireCustomFormat `json:"format"`
	Tools       []json.RawMessage `json:"tools"`
	Function    *struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

type wireCustomFormat struct {
	Type       string `json:"type"` // text or grammar
	Syntax     string `json:"syntax"`
	Definition string `json:"definition"`
}

// declaredTool is one upstream tool in declaration order.
type declaredTool struct {
	upstream string
	tool     anthropic.Tool
}

// declareTools reads tools[] (or an additional_tools item's tools).
// Function and custom tools are declared; namespace tools are flattened into
// "<namespace>__<name>"; hosted tools Anthropic cannot run for the client
// (web_search, file_search, mcp, computer, code_interpreter, image
// generation, local shell…) are dropped with a note, not refused: real
// clients declare them on every turn.
func (d *decoder) declareTools(raw []json.RawMessage, param string) error {
	for i, r := range raw {
		p := fmt.Sprintf("%s[%d]", param, i)
		var t wireTool
		if err := json.Unmarshal(r, &t); err != nil {
			return jsonError(p, err, "expected a tool object")
		}
		switch t.Type {
		case "function", "custom":
			if err := d.declare(p, "", "", &t); err != nil {
				return err
			}
		case "namespace":
			if t.Name == "" {
				return badParam(p+".name", "field required")
			}
			for j, ir := range t.Tools {
				ip := fmt.Sprintf("%s.tools[%d]", p, j)
				var inner wireTool
				if err := json.Unmarshal(ir, &inner); err != nil {
					return jsonError(ip, err, "expected a tool object")
				}
				if inner.Type != "function" && inner.Type != "custom" {
					d.note("dropped %s tool %s in namespace %s", inner.Type, inner.Name, t.Name)
					continue
				}
				if err := d.declare(ip, t.Name, t.Description, &inner); err != nil {
					return err
				}
			}
		case "":
			if t.Function == nil {
				return badParam(p+".type", "field required")
			}
			t.Type = "function"
			if err := d.declare(p, "", "", &t); err != nil {
				return err
			}
		default:
			d.note("dropped hosted tool %s (%s): Anthropic cannot run it for the client", p, t.Type)
		}
	}
	return nil
}

// declare adds one function or custom tool.
func (d *decoder) declare(param, namespace, nsDescription string, t *wireTool) error {
	name, desc, params := t.Name, t.Description, t.Parameters
	if f := t.Function; f != nil && name == "" {
		name, desc, params = f.Name, f.Description, f.Parameters
	}
	if name == "" {
		return badParam(param+".name", "field required")
	}
	display := name
	if namespace != "" {
		display = namespace + "__" + name
		if nsDescription != "" {
			desc += "\n\n(Part of the " + namespace + " tools: " + nsDescription + ")"
		}
	}
	up := d.names.Upstream(display)
	if _, dup := d.tools[up]; dup {
		d.note("dropped duplicate tool %s", display)
		return nil
	}
	custom := t.Type == "custom"
	schema := anthropic.NormalizeSchema(params)
	if custom {
		schema = customSchema
		if f := t.Format; f != nil && f.Type == "grammar" && f.Definition != "" {
			// Anthropic has no grammar-constrained tools: give the model the
			// grammar to follow instead.
			desc += "\n\nThis is a freeform tool: put the raw text in `input`, not JSON. The text must match this " +
				f.Syntax + " grammar:\n" + f.Definition
		}
	}
	d.tools[up] = Tool{Name: name, Namespace: namespace, Custom: custom}
	d.byClient[toolKey{namespace, name}] = up
	d.defs = append(d.defs, declaredTool{up, anthropic.Tool{Name: up, Description: desc, InputSchema: schema}})
	return nil
}

// upstreamName is the upstream name for a tool a history item names.
func (d *decoder) upstreamName(namespace, name string) string {
	if up, ok := d.byClient[toolKey{namespace, name}]; ok {
		return up
	}
	if namespace != "" {
		return d.names.Upstream(namespace + "__" + name)
	}
	return d.names.Upstream(name)
}

func (d *decoder) toolList() []anthropic.Tool {
	if len(d.defs) == 0 {
		return nil
	}
	out := make([]anthropic.Tool, len(d.defs))
	for i, t := range d.defs {
		out[i] = t.tool
	}
	return out
}

// findTool returns the upstream name of a tool named in tool_choice: flat
// first, else the only namespaced tool of that name.
func (d *decoder) findTool(name string) (string, bool) {
	if up, ok := d.byClient[toolKey{"", name}]; ok {
		return up, true
	}
	for _, t := range d.defs {
		if d.tools[t.upstream].Name == name {
			return t.upstream, true
		}
	}
	return "", false
}

type wireToolChoice struct {
	Type     string `json:"type"`
	Name     string `json:"name"`
	Mode     string `json:"mode"`
	Function *struct {
		Name string `json:"name"`
	} `json:"function"`
	Tools []struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"tools"`
}

// toolChoice maps tool_choice and parallel_tool_calls. A choice among no
// tools is not read (Anthropic refuses one, and Codex sends auto with only
// hosted tools): it could only name a tool that is not there.
func (d *decoder) toolChoice(req *anthropic.Request, raw json.RawMessage, parallel *bool) error {
	if len(req.Tools) == 0 {
		if !isNull(raw) {
			d.note("tool_choice dropped: no tools to choose from")
		}
		return nil
	}
	var choice *anthropic.ToolChoice
	if !isNull(raw) {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			switch s {
			case "auto":
				choice = &anthropic.ToolChoice{Type: "auto"}
			case "none":
				choice = &anthropic.ToolChoice{Type: "none"}
			case "required":
				choice = &anthropic.ToolChoice{Type: "any"}
			default:
				return badParam("tool_choice", "unknown value %q (use auto, none, required or a tool)", s)
			}
		} else {
			var o wireToolChoice
			if err := json.Unmarshal(raw, &o); err != nil {
				return jsonError("tool_choice", err, "expected a string or an object")
			}
			switch o.Type {
			case "function", "custom":
				name := o.Name
				if name == "" && o.Function != nil {
					name = o.Function.Name
				}
				up, ok := d.findTool(name)
				if !ok {
					return badParam("tool_choice.name", "no function or custom tool named %q in tools", name)
				}
				choice = &anthropic.ToolChoice{Type: "tool", Name: up}
			case "allowed_tools":
				keep := map[string]bool{}
				for _, t := range o.Tools {
					if up, ok := d.findTool(t.Name); ok && (t.Type == "function" || t.Type == "custom") {
						keep[up] = true
					}
				}
				kept := req.Tools[:0:0]
				for _, t := range req.Tools {
					if keep[t.Name] {
						kept = append(kept, t)
					}
				}
				req.Tools = kept
				choice = &anthropic.ToolChoice{Type: "auto"}
				if o.Mode == "required" {
					choice.Type = "any"
				}
			case "":
				return badParam("tool_choice.type", "field required")
			default:
				// A hosted tool (web_search, file_search, mcp…): it was
				// dropped from tools, so it cannot be forced.
				d.note("tool_choice %s became auto: that tool is not available", o.Type)
				choice = &anthropic.ToolChoice{Type: "auto"}
			}
		}
	}
	if parallel != nil && !*parallel {
		if choice == nil {
			choice = &anthropic.ToolChoice{Type: "auto"}
		}
		choice.DisableParallelToolUse = true
	}
	req.ToolChoice = choice
	return nil
}

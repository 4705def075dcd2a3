package anthropic

import "strings"

// families are the model families Anthropic's subscription windows tell
// apart: a model-scoped window (7d-sonnet, 7d_oi) binds one of them.
var families = [...]string{"opus", "sonnet", "haiku", "fable", "mythos"}

// Family returns the model's family (opus, sonnet, haiku, fable or mythos),
// read from its id, or "" if the id names none.
func (m Model) Family() string { return familyIn(m.ID) }

// Family returns the family of the model a name means: the catalog's model
// if it knows the name, else the family word in the name itself, so that a
// model newer than the catalog ("claude-sonnet-6") still counts as a Sonnet.
// It returns "" if neither says.
func (c *Catalog) Family(name string) string {
	if m, ok := c.Lookup(name); ok {
		if f := m.Family(); f != "" {
			return f
		}
	}
	return familyIn(name)
}

// FamilyIn returns the family word among the parts of a name, or "" if
// there is none: a window name such as 7d-sonnet names its family this way.
func FamilyIn(name string) string { return familyIn(name) }

// familyIn finds a family word among the parts of a model name or window
// name ("claude-3-7-sonnet", "anthropic.claude-opus-4-5-v1:0", "7d-sonnet").
func familyIn(name string) string {
	parts := strings.FieldsFunc(strings.ToLower(name), func(r rune) bool {
		return r == '-' || r == '_' || r == '.' || r == '@' || r == ':' || r == '/' || r == '[' || r == ']'
	})
	for _, p := range parts {
		for _, f := range families {
			if p == f {
				return f
			}
		}
	}
	return ""
}

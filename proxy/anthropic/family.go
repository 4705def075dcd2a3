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
// It returns "" if neither says. It allocates nothing: routing calls it for
// every request.
func (c *Catalog) Family(name string) string {
	if i, ok := c.index(name); ok {
		if f := familyIn(c.models[i].ID); f != "" {
			return f
		}
	}
	return familyIn(name)
}

// FamilyIn returns the family word among the parts of a name, or "" if
// there is none: a window name such as 7d-sonnet names its family this way.
func FamilyIn(name string) string { return familyIn(name) }

// familyIn finds a family word among the parts of a model name or window
// name ("claude-3-7-sonnet", "anthropic.claude-opus-4-5-v1:0", "7d-sonnet"),
// ignoring case.
func familyIn(name string) string {
	start := 0
	for i := 0; i <= len(name); i++ {
		if i < len(name) && !strings.ContainsRune("-_.@:/[]", rune(name[i])) {
			continue
		}
		for _, f := range families {
			if strings.EqualFold(name[start:i], f) {
				return f
			}
		}
		start = i + 1
	}
	return ""
}

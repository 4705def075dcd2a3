package anthropic

import "testing"

func TestCatalog_Family(t *testing.T) {
	t.Parallel()
	c := Builtin()
	for _, tt := range []struct{ name, want string }{
		{"claude-sonnet-5-5", "sonnet"},
		{"claude-opus-4-5-20251101", "opus"},
		{"claude-3-7-sonnet-latest", "sonnet"},
		{"claude-haiku-4-5", "haiku"},
		{"claude-fable-5-1", "fable"},
		{"claude-mythos-5", "mythos"},
		{"claude-sonnet-9", "sonnet"}, // unknown to the catalog: the name says
		{"anthropic.claude-opus-4-5-v1:0", "opus"},
		{"gpt-4o", ""},
		{"claude-sonnetish-1", ""},
	} {
		if got := c.Family(tt.name); got != tt.want {
			t.Errorf("Family(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := FamilyIn("7d-sonnet"); got != "sonnet" {
		t.Errorf("FamilyIn(7d-sonnet) = %q, want sonnet", got)
	}
	if got := FamilyIn("7d_oi"); got != "" {
		t.Errorf("FamilyIn(7d_oi) = %q, want none", got)
	}
}

func TestCatalog_Family_NoAllocs(t *testing.T) {
	c := Builtin()
	if n := testing.AllocsPerRun(100, func() { _ = c.Family("claude-sonnet-4-5-20250929") }); n != 0 {
		t.Errorf("Family allocates %v times per call, want 0: routing calls it for every request", n)
	}
}

package cli

import (
	"fmt"
	"strings"

	urfave "github.com/urfave/cli/v2"
)

// urfave's own suggestions (App.Suggest) are not used: they pick the nearest
// name by Jaro-Winkler with no cut-off, so every typo gets some suggestion,
// and they print to stdout only on the paths this App replaces with its own
// errors (OnUsageError, the unknown-command actions).

// maxSuggestDistance is the most edits a suggestion may be from what was
// typed.
const maxSuggestDistance = 2

// closest returns the candidate nearest to typed, or "" if none is within
// maxSuggestDistance edits (and nearer than retyping the whole word).
func closest(typed string, candidates []string) string {
	best, bestD := "", maxSuggestDistance+1
	for _, c := range candidates {
		if d := editDistance(typed, c); d < bestD && d < len(typed) {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance returns the edits (insert, delete, substitute, or swap two
// adjacent bytes) that turn a into b: the optimal string alignment distance,
// which counts the commonest typo, a swap (lsit), as one edit.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// commandNames returns the visible names (and aliases) of cmds.
func commandNames(cmds []*urfave.Command) []string {
	var names []string
	for _, c := range cmds {
		if !c.Hidden {
			names = append(names, c.Names()...)
		}
	}
	return names
}

// flagNames returns the names of the visible flags, as typed (--name, -h).
func flagNames(flags []urfave.Flag) []string {
	var names []string
	for _, f := range flags {
		if vf, ok := f.(urfave.VisibleFlag); ok && !vf.IsVisible() {
			continue
		}
		for _, n := range f.Names() {
			names = append(names, dashes(n))
		}
	}
	return names
}

func dashes(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// unknownCommand is the error for an unknown command: prefix is "llmgw
// GROUP" for a subcommand, cmds what could have been meant.
// For the App's own commands prefix is "" and the names stand alone.
func unknownCommand(prefix, typed string, cmds []*urfave.Command) error {
	full := func(name string) string { return strings.TrimSpace(prefix + " " + name) }
	help := "llmgw"
	if prefix != "" {
		help = prefix
	}
	if s := closest(typed, commandNames(cmds)); s != "" {
		return fmt.Errorf("unknown command %q: did you mean %q?", full(typed), full(s))
	}
	return fmt.Errorf("unknown command %q: see \"%s --help\"", full(typed), help)
}

// flagSuggestion returns ": did you mean "--name"?" for a flag close to one
// of flags, or "".
func flagSuggestion(typed string, flags []urfave.Flag) string {
	typed = dashes(strings.TrimLeft(typed, "-"))
	if s := closest(typed, flagNames(flags)); s != "" {
		return fmt.Sprintf(": did you mean %q?", s)
	}
	return ""
}

// undefinedFlag extracts the flag from the flag package's "flag provided
// but not defined: -name" error, or returns "".
func undefinedFlag(err error) string {
	name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: ")
	if !ok {
		return ""
	}
	return name
}

package cli

import (
	"strings"

	urfave "github.com/urfave/cli/v2"
)

// globalValueFlags are the global flags that take a value and may also
// follow the command (llmgw account list --db x), as they may precede it.
var globalValueFlags = []string{"db", "config", "log-level", "log-format"}

// acceptGlobalFlags lets every command accept the global value flags after
// its name. urfave parses the App's flags only before the command, and a
// command refuses flags it does not define; so each command gets hidden
// copies, which only keep its own parse from failing. The values they parse
// are not read: hoistGlobalFlags, run from the App's Before hook, has set
// them on the App's flags already.
func acceptGlobalFlags(cmds []*urfave.Command) {
	for _, c := range cmds {
		for _, name := range globalValueFlags {
			c.Flags = append(c.Flags, &urfave.StringFlag{Name: name, Hidden: true})
		}
		acceptGlobalFlags(c.Subcommands)
	}
}

// hoistGlobalFlags sets the App's global value flags from the arguments
// that follow the command (c is the App's context, so c.Args() starts with
// the command name). A flag given after the command wins over the same one
// before it, the later being the nearer to what the user typed last.
// Arguments after "--" are left alone; a flag missing its value is left for
// the command's parse to report.
func hoistGlobalFlags(c *urfave.Context) error {
	args := c.Args().Slice()
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return nil
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !isGlobalValueFlag(name) {
			continue
		}
		if !hasValue {
			if i+1 == len(args) {
				return nil
			}
			i++
			value = args[i]
		}
		if err := c.Set(name, value); err != nil {
			return err
		}
	}
	return nil
}

func isGlobalValueFlag(name string) bool {
	for _, g := range globalValueFlags {
		if g == name {
			return true
		}
	}
	return false
}

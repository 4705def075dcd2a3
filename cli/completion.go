package cli

import (
	"fmt"
	"io"

	urfave "github.com/urfave/cli/v2"
)

// The bash and zsh scripts ask llmgw itself for the candidates: urfave
// answers "llmgw WORDS... --generate-bash-completion" with the commands or
// (after a "-") the flags that may come next, one a line. urfave v2 keeps
// its sample scripts in its repository, not in the library, so these are
// our own.

const bashCompletion = `# bash completion for llmgw: llmgw completion bash
_llmgw_complete() {
	local cur="${COMP_WORDS[COMP_CWORD]}" words
	if [[ "$cur" == -* ]]; then
		words=$("${COMP_WORDS[@]:0:COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
	else
		words=$("${COMP_WORDS[@]:0:COMP_CWORD}" --generate-bash-completion 2>/dev/null)
	fi
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o bashdefault -o default -F _llmgw_complete llmgw
`

const zshCompletion = `#compdef llmgw
# zsh completion for llmgw: llmgw completion zsh
_llmgw() {
	local -a candidates
	local cur="${words[CURRENT]}"
	if [[ "$cur" == -* ]]; then
		candidates=("${(@f)$(${words[1,CURRENT-1]} "$cur" --generate-bash-completion 2>/dev/null)}")
	else
		candidates=("${(@f)$(${words[1,CURRENT-1]} --generate-bash-completion 2>/dev/null)}")
	fi
	if [[ -n "${candidates[1]}" ]]; then
		_describe 'llmgw' candidates
	else
		_files
	fi
}
if [[ "$funcstack[1]" == "_llmgw" ]]; then
	_llmgw "$@"
else
	compdef _llmgw llmgw
fi
`

func completionCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "completion",
		Usage:     "print a shell completion script for bash, zsh or fish",
		UsageText: "llmgw completion bash|zsh|fish",
		Description: `Prints a script that completes llmgw's commands and flags. Load it from the
shell's startup file, or install it where the shell looks for completions.

Example:
  echo 'source <(llmgw completion bash)' >> ~/.bashrc
  llmgw completion zsh > "${fpath[1]}/_llmgw"
  llmgw completion fish > ~/.config/fish/completions/llmgw.fish`,
		Action: func(c *urfave.Context) error {
			shell, err := oneArg(c, "shell (bash, zsh or fish)")
			if err != nil {
				return err
			}
			return writeCompletion(c.App, c.App.Writer, shell)
		},
	}
}

func writeCompletion(app *urfave.App, w io.Writer, shell string) error {
	var script string
	switch shell {
	case "bash":
		script = bashCompletion
	case "zsh":
		script = zshCompletion
	case "fish":
		s, err := app.ToFishCompletion()
		if err != nil {
			return fmt.Errorf("fish completion: %w", err)
		}
		script = s
	default:
		return fmt.Errorf("unknown shell %q: want bash, zsh or fish", shell)
	}
	_, err := io.WriteString(w, script)
	return err
}

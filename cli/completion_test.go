package cli

import (
	"os"
	"strings"
	"testing"
)

func TestCompletion_Scripts(t *testing.T) {
	t.Parallel()
	for _, shell := range []string{"bash", "zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			t.Parallel()
			stdout, _ := mustRun(t, "completion", shell)
			if !strings.Contains(stdout, "llmgw") {
				t.Errorf("completion %s does not mention llmgw:\n%s", shell, stdout)
			}
			if shell == "fish" && !strings.Contains(stdout, "complete -c llmgw") {
				t.Errorf("fish completion has no complete commands:\n%s", stdout)
			}
			if shell != "fish" && !strings.Contains(stdout, "--generate-bash-completion") {
				t.Errorf("%s completion does not ask llmgw for candidates:\n%s", shell, stdout)
			}
		})
	}
	_, _, err := run(t, "completion", "tcsh")
	wantErr(t, err, `unknown shell "tcsh"`)
}

// TestCompletion_ListsCommands is not parallel: urfave's completion reads
// os.Args (the word being completed) rather than the arguments it was
// given, so the test sets os.Args as the shell would.
func TestCompletion_ListsCommands(t *testing.T) {
	complete := func(args ...string) string {
		t.Helper()
		saved := os.Args
		os.Args = append([]string{"llmgw"}, args...)
		defer func() { os.Args = saved }()
		stdout, _ := mustRun(t, args...)
		return stdout
	}
	stdout := complete("--generate-bash-completion")
	for _, want := range []string{"account\n", "db\n", "serve\n", "completion\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("completion candidates lack %q:\n%s", want, stdout)
		}
	}
	stdout = complete("db", "--generate-bash-completion")
	if !strings.Contains(stdout, "backup\n") || !strings.Contains(stdout, "status\n") {
		t.Errorf("db completion candidates:\n%s", stdout)
	}
	stdout = complete("db", "backup", "--f", "--generate-bash-completion")
	if stdout != "--force\n" {
		t.Errorf("db backup --f completes to %q, want --force", stdout)
	}
}

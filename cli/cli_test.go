package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	urfave "github.com/urfave/cli/v2"
)

// run runs llmgw with args and returns what it wrote.
func run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = New(&out, &errOut).RunContext(context.Background(), append([]string{"llmgw"}, args...))
	return out.String(), errOut.String(), err
}

// mustRun runs llmgw with args and fails the test if it returns an error.
func mustRun(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := run(t, args...)
	if err != nil {
		t.Fatalf("llmgw %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr)
	}
	return stdout, stderr
}

// newDB returns the path of a new, migrated database in a temporary
// directory.
func newDB(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "llmgw.db")
	mustRun(t, "--db", p, "db", "migrate")
	return p
}

// wantErr fails the test unless err is non-nil and its message contains
// every one of want.
func wantErr(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want an error containing %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("err = %q, want it to contain %q", err, w)
		}
	}
}

func TestHelp_EveryCommandHasAnExample(t *testing.T) {
	t.Parallel()
	var paths [][]string
	var walk func(prefix []string, cmds []*urfave.Command)
	walk = func(prefix []string, cmds []*urfave.Command) {
		for _, c := range cmds {
			p := append(append([]string(nil), prefix...), c.Name)
			paths = append(paths, p)
			walk(p, c.Subcommands)
		}
	}
	walk(nil, New(nil, nil).Commands)
	paths = append(paths, nil) // llmgw --help
	if len(paths) < 15 {
		t.Fatalf("found %d commands, want at least 15", len(paths))
	}
	for _, p := range paths {
		t.Run(strings.Join(append([]string{"llmgw"}, p...), " "), func(t *testing.T) {
			t.Parallel()
			stdout, _ := mustRun(t, append(p, "--help")...)
			if !strings.Contains(stdout, "Example") {
				t.Errorf("help has no Example:\n%s", stdout)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	app := New(&out, &bytes.Buffer{})
	app.Version = "v1.2.3"
	if err := app.RunContext(context.Background(), []string{"llmgw", "version"}); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "v1.2.3\n"; got != want {
		t.Errorf("version output = %q, want %q", got, want)
	}
}

func TestHelp_CommandAndVersionFlag(t *testing.T) {
	t.Parallel()
	stdout, _ := mustRun(t, "help", "account", "add")
	if !strings.Contains(stdout, "llmgw account add --name NAME --api-key KEY") {
		t.Errorf("help account add printed:\n%s", stdout)
	}
	stdout, _ = mustRun(t, "--version")
	if stdout != "dev\n" {
		t.Errorf("--version printed %q, want \"dev\\n\"", stdout)
	}
}

func TestApp_UnknownCommandsFail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"account"}, `"llmgw account" needs a command`},
		{[]string{"account", "frobnicate"}, `unknown command "llmgw account frobnicate"`},
		{[]string{"account", "add", "--frobnicate"}, `see "llmgw account add --help"`},
		{[]string{"account", "show"}, "missing account name"},
		{[]string{"account", "show", "a", "--jsn"}, `unknown flag "--jsn" after account name: did you mean "--json"? see "llmgw account show --help"`},
		{[]string{"account", "show", "a", "--frobnicate"}, `unknown flag "--frobnicate" after account name: see "llmgw account show --help"`},
		{[]string{"account", "show", "a", "b"}, `unexpected argument "b" after account name`},
		{[]string{"key", "edit", "alice", "--limit"}, `flag "--limit" needs a value after key name`},
		{[]string{"version", "extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			args := append([]string{"--db", filepath.Join(t.TempDir(), "x.db")}, tt.args...)
			_, _, err := run(t, args...)
			wantErr(t, err, tt.want)
		})
	}
}

// writeFile writes content to name in a temporary directory and returns its
// path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

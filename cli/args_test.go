package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/store"
)

func TestApp_GlobalFlagsAfterCommand(t *testing.T) {
	t.Parallel()
	p := newDB(t)
	other := filepath.Join(t.TempDir(), "other.db")
	mustRun(t, "db", "migrate", "--db", other)
	mustRun(t, "account", "add", "--name", "main", "--api-key", testAPIKey, "--db", p)

	tests := [][]string{
		{"account", "list", "--db", p},
		{"account", "list", "--db=" + p},
		{"account", "show", "main", "--db", p},
		{"account", "show", "main", "--json", "--db", p},
		{"--db", other, "account", "list", "--db", p}, // after wins
		{"--log-level", "warn", "account", "list", "--log-format", "json", "--db", p},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			stdout, _ := mustRun(t, args...)
			if !strings.Contains(stdout, "main") {
				t.Errorf("printed %q, want the account of %s", stdout, p)
			}
		})
	}

	_, _, err := run(t, "account", "list", "--log-level", "loud", "--db", p)
	wantErr(t, err, "loud")
	_, _, err = run(t, "account", "list", "--db")
	wantErr(t, err, "flag needs an argument")
}

func TestUsageExplain_FlagAfterID(t *testing.T) {
	t.Parallel()
	p := newDB(t)
	withStore(t, p, func(ctx context.Context, db *store.DB) {
		w := store.NewUsageWriter(db, store.UsageWriterOptions{})
		w.Record(llmgw.Usage{Time: time.Now(), RequestID: "llmgw_flagafter", Model: "claude-sonnet-4-5", Status: 200,
			Dialect: llmgw.DialectAnthropic})
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})
	stdout, _ := mustRun(t, "usage", "explain", "llmgw_flagafter", "--json", "--db", p)
	var got explainJSON
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || got.RequestID != "llmgw_flagafter" {
		t.Errorf("usage explain ID --json = %+v, %v\n%s", got, err, stdout)
	}
	_, _, err := run(t, "--db", p, "usage", "explain")
	wantErr(t, err, "missing request id")
}

func TestApp_Suggestions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"acount"}, `unknown command "acount": did you mean "account"?`},
		{[]string{"serv"}, `did you mean "serve"?`},
		{[]string{"zzzzzzzz"}, `unknown command "zzzzzzzz": see "llmgw --help"`},
		{[]string{"account", "lsit"}, `unknown command "llmgw account lsit": did you mean "llmgw account list"?`},
		{[]string{"db", "bakup", "x"}, `did you mean "llmgw db backup"?`},
		{[]string{"account", "add", "--nme", "x"}, `unknown flag "--nme": did you mean "--name"? see "llmgw account add --help"`},
		{[]string{"--dbb", "x", "account", "list"}, `unknown flag "--dbb": did you mean "--db"?`},
		{[]string{"account", "list", "--jsno"}, `did you mean "--json"?`},
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

func TestEditDistance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{{"", "", 0}, {"acount", "account", 1}, {"lsit", "list", 1}, {"kitten", "sitting", 3}, {"", "abc", 3}}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestJSON_OneDocument runs every command that has a --json flag and checks
// that its stdout is exactly one JSON document and its stderr holds none.
func TestJSON_OneDocument(t *testing.T) {
	t.Parallel()
	p := newDB(t)
	mustRun(t, "--db", p, "account", "add", "--name", "main", "--api-key", testAPIKey)
	mustRun(t, "--db", p, "key", "create", "--name", "alice")
	withStore(t, p, func(ctx context.Context, db *store.DB) {
		w := store.NewUsageWriter(db, store.UsageWriterOptions{})
		w.Record(llmgw.Usage{Time: time.Now(), RequestID: "llmgw_json1", Model: "claude-sonnet-4-5", Status: 200,
			Dialect: llmgw.DialectAnthropic, KeyName: "alice"})
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})
	runs := map[string][]string{
		"version":       {"version", "--json"},
		"account list":  {"account", "list", "--json"},
		"account show":  {"account", "show", "main", "--json"},
		"db status":     {"db", "status", "--json"},
		"key list":      {"key", "list", "--json"},
		"key show":      {"key", "show", "alice", "--json"},
		"usage explain": {"usage", "explain", "llmgw_json1", "--json"},
		"status":        {"status", "--json"},
		"doctor":        {"doctor", "--json", "--offline"},
	}
	// Every command with --json must be in runs.
	var walk func(prefix string, cmds []*urfave.Command)
	walk = func(prefix string, cmds []*urfave.Command) {
		for _, c := range cmds {
			name := strings.TrimSpace(prefix + " " + c.Name)
			if commandFlag(c, "json") != nil {
				if _, ok := runs[name]; !ok {
					t.Errorf("%s has --json but TestJSON_OneDocument does not run it", name)
				}
			}
			walk(name, c.Subcommands)
		}
	}
	walk("", New(nil, nil).Commands)

	for name, args := range runs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			err := New(&out, &errOut).RunContext(context.Background(), append([]string{"llmgw", "--db", p}, args...))
			// doctor finds problems here (the port, maybe) and says so in
			// its document as well as in its error.
			if err != nil && name != "doctor" {
				t.Fatalf("%s: %v\nstderr: %s", name, err, errOut.String())
			}
			dec := json.NewDecoder(&out)
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, out.String())
			}
			if err := dec.Decode(&v); !errors.Is(err, io.EOF) {
				t.Errorf("stdout holds more than one JSON document: %v\n%s", err, out.String())
			}
			if s := errOut.String(); strings.Contains(s, "{") {
				t.Errorf("stderr holds JSON: %s", s)
			}
		})
	}
}

func TestVersion_JSON(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	app := New(&out, io.Discard)
	app.Version = "v1.2.3"
	if err := app.RunContext(context.Background(), []string{"llmgw", "version", "--json"}); err != nil {
		t.Fatal(err)
	}
	var got versionJSON
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Version != "v1.2.3" || !strings.HasPrefix(got.Go, "go") {
		t.Errorf("version --json = %+v, want version v1.2.3 and a go version", got)
	}
}

func TestHelp_HidesGlobalFlagCopies(t *testing.T) {
	t.Parallel()
	stdout, _ := mustRun(t, "account", "list", "--help")
	if strings.Contains(stdout, "--db") || strings.Contains(stdout, "--log-level") {
		t.Errorf("account list --help shows the global flags' hidden copies:\n%s", stdout)
	}
}

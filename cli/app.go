// Package cli is the llmgw command line: it parses flags and the config file,
// opens the store and wires the proxy together. It is the only package that
// knows about every other one.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/llmgw/llmgw/store"
)

// defaultDBPath is where the database lives when neither --db nor LLMGW_DB
// says otherwise.
const defaultDBPath = "./llmgw.db"

// appEnv is what every command shares: the writers, the global flags and the
// loaded configuration. New creates one per App; its fields are filled by the
// App's Before hook, after flag parsing and before any command runs.
type appEnv struct {
	stdout io.Writer // data: the command's output, for scripts
	stderr io.Writer // logs, progress and notes

	dbPath     string  // --db
	configPath string  // --config; empty when no file is used
	cfg        *Config // the config file (or defaults) with flags applied
	cfgErr     error   // why the config did not load, for doctor, which runs on the defaults

	// keyFile, when set, is the secret key file for dbPath ahead of every
	// other source: db copy's --to-key-file, for its target.
	keyFile string

	now func() time.Time
}

// logger builds the process logger from the logging configuration (with the
// --log-level and --log-format flags already applied). The returned func
// closes the log file, if any.
func (e *appEnv) logger() (*slog.Logger, func() error, error) {
	return newLogger(e.cfg.Logging, e.stderr)
}

// openDB opens the database for a command that reads or writes it. It refuses
// a file that does not exist (rather than creating an empty one), a
// database with pending migrations and a secret key that is missing or does
// not open every account (secretkey.go), and says which command fixes each.
// The caller closes the DB.
func (e *appEnv) openDB(ctx context.Context) (*store.DB, error) {
	db, err := e.openExisting(ctx)
	if err != nil {
		return nil, err
	}
	n, err := db.Pending(ctx)
	if err != nil {
		_ = db.Close()  // the Pending error is the one worth reporting
		return nil, err // the store's errors name the file
	}
	if n > 0 {
		_ = db.Close()
		return nil, fmt.Errorf("database %s has %d pending %s: run \"llmgw db migrate\"",
			e.dbName(), n, plural(n, "migration", "migrations"))
	}
	if err := e.useSecretKey(ctx, db); err != nil {
		_ = db.Close() // the key error is the one worth reporting
		return nil, err
	}
	return db, nil
}

// withDB opens the database with openDB, calls fn and closes it.
func (e *appEnv) withDB(ctx context.Context, fn func(db *store.DB) error) (err error) {
	db, err := e.openDB(ctx)
	if err != nil {
		return err
	}
	defer closeDB(db, &err)
	return fn(db)
}

// closeDB closes db and reports a close error into *err unless it already
// holds one.
func closeDB(db *store.DB, err *error) {
	if cerr := db.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("close database: %w", cerr)
	}
}

// openExisting opens the database without checking migrations, but only if
// the file already exists. A PostgreSQL database is never created by Open,
// so a URL goes straight to it.
func (e *appEnv) openExisting(ctx context.Context) (*store.DB, error) {
	if store.IsPostgresURL(e.dbPath) {
		return e.openAny(ctx)
	}
	if _, err := os.Stat(e.dbPath); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("database %s does not exist: run \"llmgw db migrate\" to create it, or pass --db PATH", e.dbPath)
	}
	return e.openAny(ctx)
}

// dbName is --db for messages: the path, or the URL with its password
// hidden.
func (e *appEnv) dbName() string {
	if store.IsPostgresURL(e.dbPath) {
		return store.RedactURL(e.dbPath)
	}
	return e.dbPath
}

// openAny opens (and creates if needed) the database without checking
// migrations; only "db migrate" uses it directly.
func (e *appEnv) openAny(ctx context.Context) (*store.DB, error) {
	return store.Open(ctx, e.dbPath) // its errors name the file
}

// New returns the llmgw command line application. Commands write their
// output to stdout and logs, progress and notes to stderr. The caller may set
// the returned App's Version before running it. Each call returns an
// independent App; an App is not safe for concurrent runs.
func New(stdout, stderr io.Writer) *urfave.App {
	app, _ := newApp(stdout, stderr)
	return app
}

// newApp returns the App and the environment its commands share, which tests
// inspect.
func newApp(stdout, stderr io.Writer) (*urfave.App, *appEnv) {
	env := &appEnv{stdout: stdout, stderr: stderr, now: time.Now}
	app := &urfave.App{
		Name:      "llmgw",
		Usage:     "an Anthropic API gateway over a pool of accounts",
		UsageText: "llmgw [global options] command [command options] [arguments...]",
		Description: `llmgw spreads Anthropic API traffic over a pool of accounts, steps around
broken or rate-limited ones, and records who used what. State lives in one
SQLite file, or a PostgreSQL database (--db PATH or postgres:// URL). Global
options may go before or after the command.

Example:
  llmgw db migrate
  printenv ANTHROPIC_API_KEY | llmgw account add --name main --api-key -
  llmgw key create --name alice
  llmgw serve`,
		Version:   "dev",
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []urfave.Flag{
			&urfave.StringFlag{Name: "db", Value: defaultDBPath, EnvVars: []string{"LLMGW_DB"}, Usage: "SQLite database `PATH`, or a postgres:// URL"},
			&urfave.StringFlag{Name: "config", EnvVars: []string{"LLMGW_CONFIG"}, Usage: "optional YAML config file `PATH`"},
			&urfave.StringFlag{Name: "log-level", Usage: "log `LEVEL`: debug, info, warn or error (default: config file, else info)"},
			&urfave.StringFlag{Name: "log-format", Usage: "log `FORMAT`: text or json (default: config file, else text on a terminal, json otherwise)"},
			&urfave.BoolFlag{Name: "version", Aliases: []string{"v"}, Usage: "print the version"},
			helpFlag(),
		},
		// urfave's own --help and --version flags are package variables that
		// every run writes to, so two Apps running at once (parallel tests)
		// would race on them. This App brings its own: see helpFlag.
		HideVersion: true,
		Before: func(c *urfave.Context) error {
			if err := hoistGlobalFlags(c); err != nil {
				return err
			}
			err := env.load(c)
			if err != nil && c.Args().First() == "doctor" {
				// doctor reports a bad config as one of its findings.
				env.cfg, env.cfgErr = defaultConfig(), err
				return nil
			}
			return err
		},
		Action: func(c *urfave.Context) error {
			switch {
			case c.Args().Present():
				return unknownCommand("", c.Args().First(), c.App.Commands)
			case c.Bool("version"):
				_, err := fmt.Fprintln(c.App.Writer, c.App.Version)
				return err
			}
			return urfave.ShowAppHelp(c)
		},
		Commands: []*urfave.Command{
			dbCommand(env),
			accountCommand(env),
			keyCommand(env),
			usageCommand(env),
			serveCommand(env),
			alertCommand(env),
			statusCommand(env),
			doctorCommand(env),
			versionCommand(),
			completionCommand(),
			helpCommand(),
		},
		// "llmgw ... --generate-bash-completion" lists what may come next,
		// for the scripts of "llmgw completion".
		EnableBashCompletion: true,
		// Never let urfave call os.Exit: main decides the exit status.
		ExitErrHandler: func(*urfave.Context, error) {},
		OnUsageError:   usageError,
	}
	ownHelp(app.Commands)
	acceptGlobalFlags(app.Commands)
	return app, env
}

// helpFlag returns a --help flag for one command. urfave's shared HelpFlag
// would otherwise be added to every command; see New.
func helpFlag() urfave.Flag {
	return &urfave.BoolFlag{Name: "help", Aliases: []string{"h"}, Usage: "show help"}
}

// ownHelp gives every command its own --help flag and hides urfave's shared
// help flag and help subcommand, which are package variables.
func ownHelp(cmds []*urfave.Command) {
	for _, c := range cmds {
		c.HideHelp, c.HideHelpCommand = true, true
		c.Flags = append(c.Flags, helpFlag())
		ownHelp(c.Subcommands)
	}
}

// helpCommand is "llmgw help [COMMAND...]". Having a command of this name
// also keeps urfave from adding its shared one.
func helpCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "help",
		Aliases:   []string{"h"},
		Usage:     "show help for llmgw or a command",
		UsageText: "llmgw help [COMMAND [SUBCOMMAND]]",
		Description: `Example:
  llmgw help account add`,
		Action: func(c *urfave.Context) error {
			if !c.Args().Present() {
				return urfave.ShowAppHelp(c)
			}
			// Run the same App again as "llmgw COMMAND... --help".
			args := append(append([]string{c.App.Name}, c.Args().Slice()...), "--help")
			return c.App.RunContext(c.Context, args)
		},
	}
}

// load fills env from the global flags and the config file.
func (e *appEnv) load(c *urfave.Context) error {
	e.dbPath = c.String("db")
	e.configPath = c.String("config")
	cfg, err := LoadConfig(e.configPath)
	if err != nil {
		return err
	}
	if c.IsSet("log-level") {
		cfg.Logging.Level = c.String("log-level")
	}
	if c.IsSet("log-format") {
		cfg.Logging.Format = c.String("log-format")
	}
	if err := cfg.Logging.validate(); err != nil {
		return err
	}
	e.cfg = cfg
	return nil
}

// usageError turns a flag parsing error into one that says where help is,
// and which flag was meant if the unknown one is close to a known one.
func usageError(c *urfave.Context, err error, _ bool) error {
	if f := undefinedFlag(err); f != "" {
		if s := flagSuggestion(f, c.Command.Flags); s != "" {
			return fmt.Errorf("unknown flag %q%s see \"%s --help\"", dashes(strings.TrimLeft(f, "-")), s, c.Command.HelpName)
		}
	}
	return fmt.Errorf("%w: see \"%s --help\"", err, c.Command.HelpName)
}

// groupCommand returns a command that only holds subcommands: run bare or
// with an unknown subcommand it says what to do instead of printing help
// and exiting 0.
func groupCommand(name, usage, description string, subs ...*urfave.Command) *urfave.Command {
	for _, s := range subs {
		if s.OnUsageError == nil {
			s.OnUsageError = usageError
		}
	}
	return &urfave.Command{
		Name:         name,
		Usage:        usage,
		UsageText:    "llmgw " + name + " COMMAND [command options] [arguments...]",
		Description:  description,
		Subcommands:  subs,
		OnUsageError: usageError,
		Action: func(c *urfave.Context) error {
			if c.Args().Present() {
				return unknownCommand("llmgw "+name, c.Args().First(), subs)
			}
			return fmt.Errorf("\"llmgw %s\" needs a command: see \"llmgw %s --help\"", name, name)
		},
	}
}

// versionCommand prints the App's version; see version.go.
func versionCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "version",
		Usage:     "print the llmgw version",
		UsageText: "llmgw version [--json]",
		Description: `--json prints {"version", "go", "commit"}; commit only when the binary was
built from a git checkout.

Example:
  llmgw version
  llmgw version --json`,
		Flags: []urfave.Flag{&urfave.BoolFlag{Name: "json", Usage: "print one JSON document"}},
		Action: func(c *urfave.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, newVersionJSON(c.App.Version))
			}
			_, err := fmt.Fprintln(c.App.Writer, c.App.Version)
			return err
		},
	}
}

// noArgs rejects positional arguments for commands that take none.
func noArgs(c *urfave.Context) error {
	if c.Args().Present() {
		return fmt.Errorf("unexpected argument %q: see \"%s --help\" (flags go before arguments)",
			c.Args().First(), c.Command.HelpName)
	}
	return nil
}

// oneArg returns the single positional argument of a command, such as an
// account name, or an error that shows the expected usage. Flags may follow
// the argument (llmgw key edit alice --limit usd=20/day): urfave stops
// parsing flags at the first argument, so the rest are parsed here.
func oneArg(c *urfave.Context, what string) (string, error) {
	switch c.NArg() {
	case 0:
		return "", fmt.Errorf("missing %s: usage: %s", what, c.Command.UsageText)
	case 1:
	default:
		if err := flagsAfterArg(c, c.Args().Tail()); err != nil {
			var suggest string
			if uf := (*unknownFlagError)(nil); errors.As(err, &uf) {
				suggest = flagSuggestion(uf.flag, c.Command.Flags)
			}
			if suggest != "" {
				return "", fmt.Errorf("%w after %s%s see \"%s --help\"", err, what, suggest, c.Command.HelpName)
			}
			return "", fmt.Errorf("%w after %s: see \"%s --help\"", err, what, c.Command.HelpName)
		}
	}
	if strings.TrimSpace(c.Args().First()) == "" {
		return "", fmt.Errorf("empty %s: usage: %s", what, c.Command.UsageText)
	}
	return c.Args().First(), nil
}

// flagsAfterArg sets the command's flags given in args, which followed its
// positional argument: --name VALUE, --name=VALUE, or --name for a boolean.
func flagsAfterArg(c *urfave.Context, args []string) error {
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name == "" {
			return fmt.Errorf("unexpected argument %q", a)
		}
		f := commandFlag(c.Command, name)
		if f == nil {
			return &unknownFlagError{flag: a}
		}
		if _, isBool := f.(*urfave.BoolFlag); isBool && !hasValue {
			value, hasValue = "true", true
		}
		if !hasValue {
			if i+1 == len(args) {
				return fmt.Errorf("flag %q needs a value", a)
			}
			i++
			value = args[i]
		}
		if err := c.Set(name, value); err != nil {
			return fmt.Errorf("flag %q: %w", a, err)
		}
	}
	return nil
}

// unknownFlagError is flagsAfterArg's error for a flag the command lacks.
type unknownFlagError struct{ flag string }

func (e *unknownFlagError) Error() string { return fmt.Sprintf("unknown flag %q", e.flag) }

// commandFlag finds a command's flag by any of its names.
func commandFlag(cmd *urfave.Command, name string) urfave.Flag {
	for _, f := range cmd.Flags {
		if slices.Contains(f.Names(), name) {
			return f
		}
	}
	return nil
}

// plural picks the singular or plural form for n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// formatTime formats t in local time for tables, or "-" when zero.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// jsonTime is a time for JSON output: RFC 3339, or null when zero.
func jsonTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.Format(time.RFC3339)
	return &s
}

package cli

import (
	"errors"
	"fmt"
	"strings"

	urfave "github.com/urfave/cli/v2"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/store"
)

func accountEditCommand(env *appEnv) *urfave.Command {
	return &urfave.Command{
		Name:  "edit",
		Usage: "change some settings of an account, keeping the rest",
		UsageText: "llmgw account edit [--api-key KEY] [--base-url URL] [--priority N] [--weight N] [--max-concurrency N] " +
			"[--models PATTERN,... | --clear-models] [--owner-key KEYNAME]... [--clear-owner-keys] " +
			"[--limit KIND=AMOUNT/WINDOW]... [--clear-limits] [--rename NEW] NAME",
		Description: `Changes only what the flags given say. Everything else stays: the other
settings, the status and cooldown, the statistics and an OAuth account's
tokens. A running server follows within a second. Flags may come before or
after NAME.

--api-key replaces an api_key account's key; --api-key - reads it from the
first line of stdin, which keeps it out of the shell history and the process
list. An oauth account gets new tokens from "llmgw account login" instead.
--base-url '' goes back to the default (the config file's upstream.base_url,
else $LLMGW_ANTHROPIC_BASE_URL, else https://api.anthropic.com).
--models replaces the model patterns; --clear-models allows every model.
--owner-key (repeatable) replaces the client keys the account serves, as on
"account add"; each must be a live key ("llmgw key list") or a static key of
the config file. --clear-owner-keys lets the account serve every key again.
--limit (repeatable) sets a limit, replacing the account's limit of the same
kind and window and keeping the others; --clear-limits drops every limit
first, so with --limit it replaces them all.
--rename NEW renames the account; request log rows written before keep the
old name.

Example:
  llmgw account edit --priority 2 backup
  echo "$NEW_KEY" | llmgw account edit --api-key - main
  llmgw account edit --limit usd=50/day --limit requests=60/1m main
  llmgw account edit --clear-limits --clear-owner-keys --rename team-1 main`,
		Flags: []urfave.Flag{
			&urfave.StringFlag{Name: "api-key", Usage: "new Anthropic API `KEY` (api_key accounts), or - to read it from stdin"},
			&urfave.StringFlag{Name: "base-url", Usage: "upstream base `URL`; empty for the default"},
			&urfave.IntFlag{Name: "priority", Usage: "priority `N`; lower is tried first", DefaultText: "unchanged"},
			&urfave.IntFlag{Name: "weight", Usage: "relative share `N` of traffic within a priority", DefaultText: "unchanged"},
			&urfave.IntFlag{Name: "max-concurrency", Usage: "most simultaneous requests `N`; 0 is unlimited", DefaultText: "unchanged"},
			&urfave.StringFlag{Name: "models", Usage: "comma-separated model glob `PATTERNS`, replacing the account's"},
			&urfave.BoolFlag{Name: "clear-models", Usage: "allow every model"},
			&urfave.StringSliceFlag{Name: "owner-key", Usage: "serve only the client key named `KEYNAME` (repeatable), replacing the account's owner keys"},
			&urfave.BoolFlag{Name: "clear-owner-keys", Usage: "serve every client key"},
			&urfave.StringSliceFlag{Name: "limit", Usage: "set the limit `KIND=AMOUNT/WINDOW` (repeatable), replacing one of the same kind and window"},
			&urfave.BoolFlag{Name: "clear-limits", Usage: "drop every limit (before applying --limit)"},
			&urfave.StringFlag{Name: "rename", Usage: "new account `NAME`"},
		},
		Action: func(c *urfave.Context) error {
			name, err := oneArg(c, "account name")
			if err != nil {
				return err
			}
			change, what, err := editFromFlags(c, env.cfg.DefaultBaseURL())
			if err != nil {
				return err
			}
			return env.withDB(c.Context, func(db *store.DB) error {
				if err := env.checkOwnerKeyFlag(c, db); err != nil {
					return err
				}
				a, err := db.UpdateAccount(c.Context, name, change)
				switch {
				case errors.Is(err, llmgw.ErrNotFound):
					return accountError(name, err)
				case errors.Is(err, llmgw.ErrConflict):
					return fmt.Errorf("account %q already exists: choose another name for --rename", c.String("rename"))
				case err != nil:
					return err // the store's and change's errors name the account
				}
				if a.Name != name {
					what = append([]string{"renamed to " + a.Name}, what[1:]...)
				}
				_, err = printEscaped(c.App.Writer, "edited account %s: %s\n", name, strings.Join(what, ", "))
				return err
			})
		},
	}
}

// editFromFlags returns the change "account edit" makes, and what it
// changes, from the flags given. It reads the API key from stdin for
// --api-key - before anything is opened.
func editFromFlags(c *urfave.Context, defaultBaseURL string) (change func(*llmgw.Account) error, what []string, err error) {
	// The flags in the order the confirmation names what they change.
	flags := []struct{ flag, what string }{
		{"rename", "name"},
		{"api-key", "api key"},
		{"base-url", "base url"},
		{"priority", "priority"},
		{"weight", "weight"},
		{"max-concurrency", "max concurrency"},
		{"clear-models", "models"},
		{"models", "models"},
		{"clear-owner-keys", "owner keys"},
		{"owner-key", "owner keys"},
		{"clear-limits", "limits"},
		{"limit", "limits"},
	}
	for _, f := range flags {
		if c.IsSet(f.flag) && (len(what) == 0 || what[len(what)-1] != f.what) {
			what = append(what, f.what)
		}
	}
	if len(what) == 0 {
		return nil, nil, fmt.Errorf("nothing to change: give at least one flag (see \"%s --help\")", c.Command.HelpName)
	}
	var key string
	if c.IsSet("api-key") {
		if c.String("api-key") == "" {
			return nil, nil, errors.New("--api-key is empty: give the new key, or - to read it from stdin")
		}
		if key, err = apiKeyFlag(c); err != nil {
			return nil, nil, err
		}
	}
	if c.IsSet("rename") && strings.TrimSpace(c.String("rename")) == "" {
		return nil, nil, errors.New("--rename is empty: give the new account name")
	}
	limits, err := flagLimits(c)
	if err != nil {
		return nil, nil, err
	}
	change = func(a *llmgw.Account) error {
		if c.IsSet("api-key") {
			if a.Type != llmgw.AccountAPIKey {
				return fmt.Errorf("account %s is an %s account: --api-key is only for api_key accounts (new tokens come from \"llmgw account login\")", a.Name, a.Type)
			}
			a.APIKey = key
		}
		if c.Bool("clear-models") {
			a.Models = nil
		}
		if c.Bool("clear-owner-keys") {
			a.OwnerKeys = nil
		}
		// The flags add, login and edit share: only those given.
		applyAccountFlags(c, a, false, defaultBaseURL)
		if c.Bool("clear-limits") {
			a.Limits = nil
		}
		a.Limits = llmgw.SetLimits(a.Limits, limits)
		if c.IsSet("rename") {
			a.Name = c.String("rename")
		}
		return nil
	}
	return change, what, nil
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	urfave "github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/store"
)

func accountImportCommand(env *appEnv) *urfave.Command {
	return &urfave.Command{
		Name:      "import",
		Usage:     "create or update accounts from a YAML file or Claude Code's credentials",
		UsageText: "llmgw account import [--replace] FILE (- for stdin)\n   llmgw account import --claude-credentials PATH --name NAME [--base-url URL] [--priority N] [--weight N] [--max-concurrency N] [--models PATTERN,...] [--owner-key KEYNAME]...",
		Description: `Creates or updates (by name) every account in the file, in one transaction: a
file with any error changes nothing, and importing the same file twice is
harmless. FILE - reads the file from stdin. Fields: name, type (api_key, the
default, or oauth), api_key, access_token, refresh_token, expires_at (RFC
3339, or unix seconds or milliseconds), base_url, priority, weight (default
1), max_concurrency (0 = unlimited), models (a list or a comma-separated
string of glob patterns), owner_keys (client key names, a list or a
comma-separated string: the account then serves only those keys; each must
be a live key or a static key of the config file), limits (a list or a
comma-separated string of KIND=AMOUNT/WINDOW, e.g. [usd=100/day,
tokens=2M/5h]). "${VAR}" in any value is replaced by that environment
variable.

An account that is already stored keeps every field the file leaves out, so
a file with only name and api_key rotates the key and changes nothing else.
A field given empty ("models: []", "base_url: ''") sets it empty (or to its
default). The OAuth token fields go together: giving any of access_token,
refresh_token and expires_at replaces all three, as a new login would. An
import that would change an account's type is refused; with --replace,
each account in the file replaces the stored one whole, as imports did
before: fields the file leaves out get their defaults, and the type may
change. State (status, cooldown) and statistics are kept either way.

OAuth tokens in the file replace the stored ones only if they differ and do
not expire earlier: once the server has refreshed an account, the file's
refresh token is spent, and re-importing the file keeps the newer tokens.

--claude-credentials PATH reads Claude Code's credentials file
(~/.claude/.credentials.json, its claudeAiOauth object) into the oauth account
--name. Claude Code and llmgw then share one rotating refresh token, so log
Claude Code in again afterwards (or use "llmgw account login" instead).

` + oauthHelp + `

Example:
  llmgw account import accounts.yaml
  printf 'accounts:\n  - name: main\n    api_key: %s\n' "$NEW_KEY" | llmgw account import -
  llmgw account import --claude-credentials ~/.claude/.credentials.json --name alice-max --owner-key alice

  # accounts.yaml
  accounts:
    - name: main
      api_key: ${ANTHROPIC_API_KEY}
    - name: backup
      api_key: ${ANTHROPIC_BACKUP_KEY}
      priority: 1
      models: [claude-sonnet-*, claude-haiku-*]
      limits: [usd=100/day, tokens=2M/5h]
    - name: alice-max
      type: oauth
      refresh_token: ${ALICE_REFRESH_TOKEN}
      owner_keys: [alice]`,
		Flags: append([]urfave.Flag{
			&urfave.StringFlag{Name: "claude-credentials", Usage: "import Claude Code's credentials file at `PATH` instead of a YAML file"},
			&urfave.StringFlag{Name: "name", Usage: "account `NAME` for --claude-credentials"},
			&urfave.BoolFlag{Name: "replace", Usage: "let each account in the file replace the stored one whole (fields it leaves out get their defaults), which also allows changing its type"},
		}, accountFlags()...),
		Action: func(c *urfave.Context) error {
			if p := c.String("claude-credentials"); p != "" {
				if err := noArgs(c); err != nil {
					return err
				}
				if c.IsSet("replace") {
					return errors.New("--replace only goes with an accounts file")
				}
				return importClaudeCredentials(c, env, p)
			}
			for _, f := range []string{"name", "base-url", "priority", "weight", "max-concurrency", "models", "owner-key"} {
				if c.IsSet(f) {
					return fmt.Errorf("--%s only goes with --claude-credentials; a YAML file holds its own settings", f)
				}
			}
			file, err := oneArg(c, "file")
			if err != nil {
				return err
			}
			var data []byte
			if file == "-" {
				file = "stdin" // for errors: "stdin:12: ..."
				data, err = io.ReadAll(c.App.Reader)
			} else {
				data, err = os.ReadFile(file)
			}
			if err != nil {
				return fmt.Errorf("read accounts: %w", err)
			}
			entries, err := parseAccounts(file, data, env.cfg.DefaultBaseURL(), os.LookupEnv)
			if err != nil {
				return err
			}
			return env.withDB(c.Context, func(db *store.DB) error {
				if err := checkImportOwners(c.Context, env, db, file, entries); err != nil {
					return err
				}
				var mergeErr error // already names the file and line
				created, updated, err := db.MergeAccounts(c.Context, func(stored []llmgw.Account) ([]llmgw.Account, error) {
					accts, err := mergeAccounts(file, entries, stored, c.Bool("replace"))
					mergeErr = err
					return accts, err
				})
				switch {
				case mergeErr != nil:
					return mergeErr
				case err != nil:
					return fmt.Errorf("import %s: %w", file, err)
				}
				_, err = fmt.Fprintf(c.App.Writer, "imported %d %s (%d created, %d updated)\n",
					len(entries), plural(len(entries), "account", "accounts"), created, updated)
				return err
			})
		},
	}
}

// accountFields returns the keys an entry of an accounts file may have.
func accountFields() []string {
	return []string{
		"name", "type", "api_key", "access_token", "refresh_token", "expires_at",
		"base_url", "priority", "weight", "max_concurrency", "models", "owner_keys", "limits",
	}
}

// importEntry is one account of an accounts file: the account as if it were
// new (every field the file leaves out at its default), and which fields the
// file gives, each with the line of its value, so that an import can merge
// it into the stored account.
type importEntry struct {
	llmgw.Account
	fields map[string]int
	line   int
}

// has reports whether the file gives field (a key of accountFields).
func (e *importEntry) has(field string) bool {
	_, ok := e.fields[field]
	return ok
}

// parseAccounts decodes an accounts file. Every error names the file and
// line ("accounts.yaml:12: ..."); none shows a secret. lookup resolves
// "${VAR}" references. An entry is not validated here: what it leaves out
// may come from the stored account (see mergeAccounts).
func parseAccounts(file string, data []byte, defaultBaseURL string, lookup func(string) (string, bool)) ([]importEntry, error) {
	errAt := func(line int, format string, args ...any) error {
		return fmt.Errorf("%s:%d: "+format, append([]any{file, line}, args...)...)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, yamlError(err))
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: no accounts: the file needs a top-level \"accounts:\" list", file)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, errAt(root.Line, "the file needs a top-level \"accounts:\" list")
	}
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "accounts" {
			return nil, errAt(k.Line, "unknown key %q: the only top-level key is accounts", k.Value)
		}
		list = resolveAlias(v)
	}
	if list == nil || list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
		line := root.Line
		if list != nil {
			line = list.Line
		}
		return nil, errAt(line, "no accounts: \"accounts:\" must be a non-empty list")
	}

	entries := make([]importEntry, 0, len(list.Content))
	firstLine := map[string]int{}
	for _, item := range list.Content {
		item = resolveAlias(item)
		a, fields, err := parseAccount(item, defaultBaseURL, lookup)
		if err != nil {
			var le *lineError
			if errors.As(err, &le) {
				return nil, errAt(le.line, "%w", le.err)
			}
			return nil, errAt(item.Line, "%w", err)
		}
		if strings.TrimSpace(a.Name) == "" {
			return nil, errAt(item.Line, "%w", a.Validate()) // "account name is required"
		}
		if at, ok := firstLine[a.Name]; ok {
			return nil, errAt(item.Line, "account %q is listed twice (first at line %d)", a.Name, at)
		}
		firstLine[a.Name] = item.Line
		entries = append(entries, importEntry{Account: a, fields: fields, line: item.Line})
	}
	return entries, nil
}

// mergeAccounts returns the accounts an import stores: for an entry whose
// account is not stored yet, or every entry with replace, the entry as it
// is (fields it leaves out at their defaults); otherwise the stored account
// with the fields the entry gives. Changing an account's type needs
// replace. Errors name the file and line, and every account is validated.
func mergeAccounts(file string, entries []importEntry, stored []llmgw.Account, replace bool) ([]llmgw.Account, error) {
	byName := make(map[string]*llmgw.Account, len(stored))
	for i := range stored {
		byName[stored[i].Name] = &stored[i]
	}
	out := make([]llmgw.Account, 0, len(entries))
	for i := range entries {
		e := &entries[i]
		a := e.Account
		if old := byName[e.Name]; old != nil && !replace {
			var err error
			if a, err = e.mergeInto(*old); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", file, e.line, err)
			}
		}
		if err := a.Validate(); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, e.line, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// hasTokens reports whether the entry gives any field of an OAuth token set:
// access_token, refresh_token, expires_at. They go together: an entry that
// gives one replaces the stored set (what it leaves out empty), as a new
// login would, so that an access token is never paired with another
// login's refresh token.
func (e *importEntry) hasTokens() bool {
	return e.has("access_token") || e.has("refresh_token") || e.has("expires_at")
}

// mergeInto returns old with the fields the entry gives. The type may not
// change (that replaces the account: --replace), and an entry without a
// type may not carry the other type's secrets, which would read as one.
func (e *importEntry) mergeInto(old llmgw.Account) (llmgw.Account, error) {
	if e.has("type") && e.Type != old.Type {
		return old, fmt.Errorf("account %q is %s in the database and %s in the file: changing the type replaces the account whole, so run the import with --replace",
			e.Name, old.Type, e.Type)
	}
	if !e.has("type") {
		switch {
		case old.Type == llmgw.AccountOAuth && e.has("api_key"):
			return old, fmt.Errorf("account %q is an oauth account and api_key is for api_key accounts: to change its type, give type: api_key and run the import with --replace", e.Name)
		case old.Type == llmgw.AccountAPIKey && e.hasTokens():
			return old, fmt.Errorf("account %q is an api_key account and access_token, refresh_token and expires_at are for oauth accounts: to change its type, give type: oauth and run the import with --replace", e.Name)
		}
	}
	a := old
	// Copies, so that the stored account's slices stay its own.
	a.Models, a.OwnerKeys, a.Limits = slices.Clone(old.Models), slices.Clone(old.OwnerKeys), slices.Clone(old.Limits)
	if e.has("api_key") {
		a.APIKey = e.APIKey
	}
	if e.hasTokens() {
		a.AccessToken, a.RefreshToken, a.ExpiresAt = e.AccessToken, e.RefreshToken, e.ExpiresAt
		// What came with the old tokens; the first refresh learns it anew.
		a.Scopes, a.Email, a.AccountUUID, a.OrganizationUUID, a.LastRefresh = nil, "", "", "", time.Time{}
	}
	if e.has("base_url") {
		a.BaseURL = e.BaseURL // the default if the file gives it empty
	}
	if e.has("priority") {
		a.Priority = e.Priority
	}
	if e.has("weight") {
		a.Weight = e.Weight
	}
	if e.has("max_concurrency") {
		a.MaxConcurrency = e.MaxConcurrency
	}
	if e.has("models") {
		a.Models = e.Models
	}
	if e.has("owner_keys") {
		a.OwnerKeys = e.OwnerKeys
	}
	if e.has("limits") {
		a.Limits = e.Limits
	}
	return a, nil
}

// checkImportOwners refuses owner_keys names no client key has, at the
// line that gives them.
func checkImportOwners(ctx context.Context, env *appEnv, db *store.DB, file string, entries []importEntry) error {
	var known map[string]bool
	for i := range entries {
		e := &entries[i]
		if len(e.OwnerKeys) == 0 {
			continue
		}
		if known == nil {
			var err error
			if known, err = env.keyNames(ctx, db); err != nil {
				return err
			}
		}
		if err := unknownOwnerKey(known, e.OwnerKeys, "owner_keys"); err != nil {
			return fmt.Errorf("%s:%d: account %q: %w", file, e.fields["owner_keys"], e.Name, err)
		}
	}
	return nil
}

// lineError is an error at a line other than the entry's own.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }
func (e *lineError) Unwrap() error { return e.err }

func at(n *yaml.Node, format string, args ...any) error {
	return &lineError{line: n.Line, err: fmt.Errorf(format, args...)}
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// parseAccount decodes one entry of an accounts file, and returns the
// fields it gives with the line of each value. Merge keys ("<<: *defaults")
// are applied first, so the entry's own fields win.
func parseAccount(n *yaml.Node, defaultBaseURL string, lookup func(string) (string, bool)) (llmgw.Account, map[string]int, error) {
	a := llmgw.Account{Type: llmgw.AccountAPIKey, Weight: 1}
	if n.Kind != yaml.MappingNode {
		return a, nil, errors.New("an account must be a mapping of fields (name: ..., api_key: ...)")
	}
	fields, err := entryFields(n)
	if err != nil {
		return a, nil, err
	}
	given := make(map[string]int, len(fields))
	for _, f := range fields {
		if err := setAccountField(&a, f.key, f.value, lookup); err != nil {
			return a, nil, err
		}
		given[f.key.Value] = f.value.Line
	}
	if a.BaseURL == "" {
		a.BaseURL = defaultBaseURL
	}
	return a, given, nil
}

type field struct {
	key   *yaml.Node
	value *yaml.Node
}

// entryFields lists the fields of mapping n in the order to apply them:
// merged mappings first, then n's own keys. Unknown and repeated keys are
// errors at their line.
func entryFields(n *yaml.Node) ([]field, error) {
	var merged, own []field
	known := accountFields()
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolveAlias(n.Content[i+1])
		if k.Tag == "!!merge" {
			srcs := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				srcs = v.Content
			}
			for _, src := range srcs {
				src = resolveAlias(src)
				if src.Kind != yaml.MappingNode {
					return nil, at(k, "a merge (<<) needs a mapping")
				}
				fs, err := entryFields(src)
				if err != nil {
					return nil, err
				}
				merged = append(merged, fs...)
			}
			continue
		}
		if !slices.Contains(known, k.Value) {
			return nil, at(k, "unknown field %q (fields: %s)", k.Value, strings.Join(known, ", "))
		}
		if first, ok := seen[k.Value]; ok {
			return nil, at(k, "field %q repeats line %d", k.Value, first)
		}
		seen[k.Value] = k.Line
		own = append(own, field{k, v})
	}
	return append(merged, own...), nil
}

// setAccountField sets one field of a from YAML node v, expanding "${VAR}".
// Errors carry v's line and never show secret values.
func setAccountField(a *llmgw.Account, key *yaml.Node, v *yaml.Node, lookup func(string) (string, bool)) error {
	name := key.Value
	switch name {
	case "models", "owner_keys", "limits":
		list, err := listField(name, v, lookup)
		if err != nil {
			return err
		}
		switch name {
		case "models":
			a.Models = list
		case "owner_keys":
			a.OwnerKeys = list
		default:
			a.Limits = nil
			for _, s := range list {
				l, err := llmgw.ParseLimit(s)
				if err != nil {
					return at(v, "limits: %w", err)
				}
				if a.Limits, err = llmgw.AddLimit(a.Limits, l); err != nil {
					return at(v, "limits: %w", err)
				}
			}
		}
		return nil
	}
	if v.Kind != yaml.ScalarNode {
		return at(v, "%s must be a single value, not a list or mapping", name)
	}
	if v.Tag == "!!null" {
		return nil // "name:" with no value: leave the default
	}
	s, err := expandEnv(v.Value, lookup)
	if err != nil {
		return at(v, "%w", err)
	}
	switch name {
	case "name":
		a.Name = s
	case "type":
		a.Type = llmgw.AccountType(s)
	case "api_key":
		a.APIKey = s
	case "access_token":
		a.AccessToken = s
	case "refresh_token":
		a.RefreshToken = s
	case "base_url":
		a.BaseURL = s
	case "expires_at":
		t, err := parseExpiresAt(s)
		if err != nil {
			return at(v, "%w", err)
		}
		a.ExpiresAt = t
	case "priority", "weight", "max_concurrency":
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return at(v, "%s must be a whole number, not %q", name, s)
		}
		switch name {
		case "priority":
			a.Priority = n
		case "weight":
			a.Weight = n
		default:
			a.MaxConcurrency = n
		}
	}
	return nil
}

// listField decodes models, owner_keys or limits: a list of values or a
// comma-separated string.
func listField(name string, v *yaml.Node, lookup func(string) (string, bool)) ([]string, error) {
	switch v.Kind {
	case yaml.ScalarNode:
		if v.Tag == "!!null" {
			return nil, nil
		}
		s, err := expandEnv(v.Value, lookup)
		if err != nil {
			return nil, at(v, "%w", err)
		}
		return splitList(s), nil
	case yaml.SequenceNode:
		var out []string
		for _, m := range v.Content {
			m = resolveAlias(m)
			if m.Kind != yaml.ScalarNode {
				return nil, at(m, "%s must be a list or a comma-separated string", name)
			}
			s, err := expandEnv(m.Value, lookup)
			if err != nil {
				return nil, at(m, "%w", err)
			}
			out = append(out, splitList(s)...)
		}
		return out, nil
	}
	return nil, at(v, "%s must be a list or a comma-separated string", name)
}

// parseExpiresAt accepts RFC 3339, unix seconds, or unix milliseconds (any
// number of at least 1e12, which as seconds would be the year 33658).
func parseExpiresAt(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		switch {
		case n < 0:
			return time.Time{}, fmt.Errorf("expires_at %d is negative", n)
		case n >= 1e12:
			return time.UnixMilli(n).UTC(), nil
		default:
			return time.Unix(n, 0).UTC(), nil
		}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("expires_at %q is not an RFC 3339 time (2026-01-02T15:04:05Z) or unix seconds or milliseconds", s)
	}
	return t, nil
}

package cli

import (
	"errors"
	"fmt"
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
		UsageText: "llmgw account import FILE.yaml\n   llmgw account import --claude-credentials PATH --name NAME [--base-url URL] [--priority N] [--weight N] [--max-concurrency N] [--models PATTERN,...] [--owner-key KEYNAME]...",
		Description: `Creates or updates (by name) every account in the file, in one transaction: a
file with any error changes nothing, and importing the same file twice is
harmless. Fields: name, type (api_key, the default, or oauth), api_key,
access_token, refresh_token, expires_at (RFC 3339, or unix seconds or
milliseconds), base_url, priority, weight (default 1), max_concurrency
(0 = unlimited), models (a list or a comma-separated string of glob patterns),
owner_keys (client key names, a list or a comma-separated string: the
account then serves only those keys). "${VAR}" in any value is replaced by
that environment variable.

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
  llmgw account import --claude-credentials ~/.claude/.credentials.json --name alice-max --owner-key alice

  # accounts.yaml
  accounts:
    - name: main
      api_key: ${ANTHROPIC_API_KEY}
    - name: backup
      api_key: ${ANTHROPIC_BACKUP_KEY}
      priority: 1
      models: [claude-sonnet-*, claude-haiku-*]
    - name: alice-max
      type: oauth
      refresh_token: ${ALICE_REFRESH_TOKEN}
      owner_keys: [alice]`,
		Flags: append([]urfave.Flag{
			&urfave.StringFlag{Name: "claude-credentials", Usage: "import Claude Code's credentials file at `PATH` instead of a YAML file"},
			&urfave.StringFlag{Name: "name", Usage: "account `NAME` for --claude-credentials"},
		}, accountFlags()...),
		Action: func(c *urfave.Context) error {
			if p := c.String("claude-credentials"); p != "" {
				if err := noArgs(c); err != nil {
					return err
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
			data, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("read accounts: %w", err)
			}
			accts, err := parseAccounts(file, data, env.cfg.DefaultBaseURL(), os.LookupEnv)
			if err != nil {
				return err
			}
			return env.withDB(c.Context, func(db *store.DB) error {
				created, updated, err := db.UpsertAccounts(c.Context, accts)
				if err != nil {
					return fmt.Errorf("import %s: %w", file, err)
				}
				_, err = fmt.Fprintf(c.App.Writer, "imported %d %s (%d created, %d updated)\n",
					len(accts), plural(len(accts), "account", "accounts"), created, updated)
				return err
			})
		},
	}
}

// accountFields returns the keys an entry of an accounts file may have.
func accountFields() []string {
	return []string{
		"name", "type", "api_key", "access_token", "refresh_token", "expires_at",
		"base_url", "priority", "weight", "max_concurrency", "models", "owner_keys",
	}
}

// parseAccounts decodes an accounts file. Every error names the file and
// line ("accounts.yaml:12: ..."); none shows a secret. lookup resolves
// "${VAR}" references.
func parseAccounts(file string, data []byte, defaultBaseURL string, lookup func(string) (string, bool)) ([]llmgw.Account, error) {
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

	accts := make([]llmgw.Account, 0, len(list.Content))
	firstLine := map[string]int{}
	for _, item := range list.Content {
		item = resolveAlias(item)
		a, err := parseAccount(item, defaultBaseURL, lookup)
		if err != nil {
			var le *lineError
			if errors.As(err, &le) {
				return nil, errAt(le.line, "%w", le.err)
			}
			return nil, errAt(item.Line, "%w", err)
		}
		if err := a.Validate(); err != nil {
			return nil, errAt(item.Line, "%w", err)
		}
		if at, ok := firstLine[a.Name]; ok {
			return nil, errAt(item.Line, "account %q is listed twice (first at line %d)", a.Name, at)
		}
		firstLine[a.Name] = item.Line
		accts = append(accts, a)
	}
	return accts, nil
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

// parseAccount decodes one entry of an accounts file. Merge keys
// ("<<: *defaults") are applied first, so the entry's own fields win.
func parseAccount(n *yaml.Node, defaultBaseURL string, lookup func(string) (string, bool)) (llmgw.Account, error) {
	a := llmgw.Account{Type: llmgw.AccountAPIKey, Weight: 1}
	if n.Kind != yaml.MappingNode {
		return a, errors.New("an account must be a mapping of fields (name: ..., api_key: ...)")
	}
	fields, err := entryFields(n)
	if err != nil {
		return a, err
	}
	for _, f := range fields {
		if err := setAccountField(&a, f.key, f.value, lookup); err != nil {
			return a, err
		}
	}
	if a.BaseURL == "" {
		a.BaseURL = defaultBaseURL
	}
	return a, nil
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
	case "models", "owner_keys":
		list, err := listField(name, v, lookup)
		if err != nil {
			return err
		}
		if name == "models" {
			a.Models = list
		} else {
			a.OwnerKeys = list
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

// listField decodes models or owner_keys: a list of values or a
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

package cli

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/store"
)

func keyCommand(env *appEnv) *urfave.Command {
	return groupCommand("key", "manage the client keys team members use to call llmgw",
		`Client keys authenticate callers of llmgw. Only a hash of each key is stored:
the key itself is printed once, by "key create".

Example:
  llmgw key create --name alice --expires 90d
  llmgw key list
  llmgw key revoke alice`,
		&urfave.Command{
			Name:      "create",
			Usage:     "create a client key and print it once",
			UsageText: "llmgw key create --name NAME [--expires DURATION]",
			Description: `Creates a client key and prints it alone on the last line of output; it cannot
be shown again. --expires takes a Go duration or days, e.g. 720h or 30d.

Example:
  llmgw key create --name alice --expires 30d
  KEY=$(llmgw key create --name ci | tail -n 1)`,
			Flags: []urfave.Flag{
				&urfave.StringFlag{Name: "name", Usage: "unique key `NAME`, e.g. the person or tool using it"},
				&urfave.StringFlag{Name: "expires", Usage: "lifetime `DURATION`, e.g. 30d or 12h; default never"},
			},
			Action: func(c *urfave.Context) error {
				if err := noArgs(c); err != nil {
					return err
				}
				return env.keyCreate(c)
			},
		},
		&urfave.Command{
			Name:      "list",
			Usage:     "list client keys",
			UsageText: "llmgw key list [--json]",
			Description: `Lists every client key with its visible prefix, never the key. Times are local.

Example:
  llmgw key list
  llmgw key list --json`,
			Flags: []urfave.Flag{
				&urfave.BoolFlag{Name: "json", Usage: "print a JSON array instead of a table"},
			},
			Action: func(c *urfave.Context) error {
				if err := noArgs(c); err != nil {
					return err
				}
				return env.keyList(c)
			},
		},
		&urfave.Command{
			Name:      "revoke",
			Usage:     "revoke a client key",
			UsageText: "llmgw key revoke NAME",
			Description: `Revokes the key for good; a running server rejects it within a second.

Example:
  llmgw key revoke alice`,
			Action: func(c *urfave.Context) error {
				name, err := oneArg(c, "key name")
				if err != nil {
					return err
				}
				return env.withDB(c.Context, func(db *store.DB) error {
					if err := db.RevokeKey(c.Context, name); err != nil {
						if errors.Is(err, llmgw.ErrNotFound) {
							return fmt.Errorf("client key %q %w: see \"llmgw key list\"", name, llmgw.ErrNotFound)
						}
						return fmt.Errorf("revoke key %s: %w", name, err)
					}
					_, err := printEscaped(c.App.Writer, "revoked client key %s\n", name)
					return err
				})
			},
		},
	)
}

func (e *appEnv) keyCreate(c *urfave.Context) error {
	name := c.String("name")
	if strings.TrimSpace(name) == "" {
		return errors.New("--name is required: llmgw key create --name NAME")
	}
	if strings.ContainsAny(name, " \t\r\n") {
		return fmt.Errorf("key name %q must not contain spaces", name)
	}
	now := e.now()
	k := llmgw.ClientKey{Name: name, CreatedAt: now}
	if s := c.String("expires"); s != "" {
		d, err := parseDuration(s)
		if err != nil {
			return fmt.Errorf("--expires: %w", err)
		}
		if d <= 0 {
			return fmt.Errorf("--expires %s must be positive", s)
		}
		k.ExpiresAt = now.Add(d)
	}
	key, err := newClientKey()
	if err != nil {
		return err
	}
	k.Prefix, k.Hash = llmgw.VisiblePrefix(key), llmgw.HashKey(key)
	return e.withDB(c.Context, func(db *store.DB) error {
		if err := db.InsertKey(c.Context, &k); err != nil {
			if errors.Is(err, llmgw.ErrConflict) {
				return fmt.Errorf("client key %q already exists: choose another name (see \"llmgw key list\")", name)
			}
			return fmt.Errorf("create key %s: %w", name, err)
		}
		expires := "never expires"
		if !k.ExpiresAt.IsZero() {
			expires = "expires " + formatTime(k.ExpiresAt)
		}
		// The key goes alone on the last line so scripts can take it with tail -n 1.
		_, err := printEscaped(c.App.Writer, "created client key %s (%s); it is shown only this once:\n%s\n", name, expires, key)
		return err
	})
}

// newClientKey returns llmgw.KeyPrefix followed by 48 hex characters (24
// bytes) from crypto/rand.
func newClientKey() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	return llmgw.KeyPrefix + hex.EncodeToString(b), nil
}

// daysPrefix matches a leading day count such as the "30d" of "30d12h".
var daysPrefix = regexp.MustCompile(`^(\d+)d`)

// parseDuration parses a Go duration that may start with a day count: 30d,
// 1d12h, 90m.
func parseDuration(s string) (time.Duration, error) {
	var d time.Duration
	rest := strings.TrimSpace(s)
	if m := daysPrefix.FindStringSubmatch(rest); m != nil {
		days, err := strconv.Atoi(m[1])
		if err != nil || days > 100*365 {
			return 0, fmt.Errorf("%q has too many days", s)
		}
		d = time.Duration(days) * 24 * time.Hour
		rest = rest[len(m[0]):]
	}
	if rest == "" {
		if d == 0 && strings.TrimSpace(s) == "" {
			return 0, errors.New("empty duration")
		}
		return d, nil
	}
	rd, err := time.ParseDuration(rest)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 30d, 12h or 90m", s)
	}
	return d + rd, nil
}

func (e *appEnv) keyList(c *urfave.Context) error {
	return e.withDB(c.Context, func(db *store.DB) error {
		keys, err := db.ListKeys(c.Context)
		if err != nil {
			return fmt.Errorf("list keys: %w", err)
		}
		now := e.now()
		if c.Bool("json") {
			out := make([]keyJSON, len(keys))
			for i := range keys {
				k := &keys[i]
				out[i] = keyJSON{
					Name:      k.Name,
					Prefix:    k.Prefix,
					Status:    keyStatus(k, now),
					CreatedAt: jsonTime(k.CreatedAt),
					LastUsed:  jsonTime(k.LastUsed),
					ExpiresAt: jsonTime(k.ExpiresAt),
					RevokedAt: jsonTime(k.RevokedAt),
				}
			}
			return writeJSON(c.App.Writer, out)
		}
		if len(keys) == 0 {
			// A hint on stderr; the (empty) table below is the answer.
			_, _ = fmt.Fprintln(c.App.ErrWriter, `no client keys yet: create one with "llmgw key create --name NAME"`)
		}
		return writeKeyTable(c.App.Writer, keys, now)
	})
}

func writeKeyTable(w io.Writer, keys []llmgw.ClientKey, now time.Time) error {
	tw := newTable(w)
	tw.row("NAME\tPREFIX\tCREATED\tLAST USED\tEXPIRES\tSTATUS\n")
	for i := range keys {
		k := &keys[i]
		expires := "never"
		if !k.ExpiresAt.IsZero() {
			expires = formatTime(k.ExpiresAt)
		}
		tw.row("%s\t%s…\t%s\t%s\t%s\t%s\n", k.Name, k.Prefix, formatTime(k.CreatedAt),
			formatTime(k.LastUsed), expires, keyStatus(k, now))
	}
	return tw.Flush()
}

// keyStatus is "active", "revoked" or "expired".
func keyStatus(k *llmgw.ClientKey, now time.Time) string {
	switch {
	case !k.RevokedAt.IsZero():
		return "revoked"
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return "expired"
	}
	return "active"
}

// keyJSON is a client key in "key list --json". It never holds the key or
// its hash.
type keyJSON struct {
	Name      string  `json:"name"`
	Prefix    string  `json:"prefix"`
	Status    string  `json:"status"`
	CreatedAt *string `json:"created_at"`
	LastUsed  *string `json:"last_used"`
	ExpiresAt *string `json:"expires_at"`
	RevokedAt *string `json:"revoked_at"`
}

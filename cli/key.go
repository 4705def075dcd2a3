package cli

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/policy"
	"github.com/llmgw/llmgw/store"
)

// keyPolicyFlags are the policy flags key create and key edit share.
func keyPolicyFlags() []urfave.Flag {
	return []urfave.Flag{
		&urfave.StringFlag{Name: "models", Usage: "comma-separated model glob `PATTERNS` the key may use, e.g. 'claude-sonnet-*,claude-haiku-*'; default every model"},
		&urfave.StringFlag{Name: "expires", Usage: "expiry `WHEN`: a date (2027-01-31, midnight in server.timezone), an RFC 3339 time, or a duration from now (90m, 30d); default never"},
		&urfave.IntFlag{Name: "max-concurrency", Usage: "most requests `N` in flight at once; more wait for a slot; 0 is unlimited"},
		&urfave.StringSliceFlag{Name: "limit", Usage: "a limit `KIND=AMOUNT/WINDOW`, repeatable: usd=20/day, tokens=2M/5h, requests=60/1m (windows: day, week, month, total or a duration)"},
	}
}

func keyCommand(env *appEnv) *urfave.Command {
	return groupCommand("key", "manage the client keys team members use to call llmgw",
		`Client keys authenticate callers of llmgw and carry the team's policy: which
models a key may use, how many requests it may run at once, and limits on
what it may spend per window. Only a hash of each key is stored: the key
itself is printed once, by "key create" or "key rotate".

Example:
  llmgw key create --name alice --expires 90d --limit usd=20/day
  llmgw key show alice
  llmgw key revoke alice`,
		&urfave.Command{
			Name:      "create",
			Usage:     "create a client key and print it once",
			UsageText: "llmgw key create --name NAME [--models PATTERNS] [--expires 2027-01-31|30d] [--max-concurrency N] [--limit KIND=AMOUNT/WINDOW ...]",
			Description: `Creates a client key and prints the key, and only the key, on standard output;
it cannot be shown again. Notes go to standard error. A revoked key's name can
be used again.

A request outside the key's models gets 403; one over a limit gets 429 with
Retry-After, before it reaches any account; one over --max-concurrency waits
for a slot (up to server.timeout_seconds) and then gets 429. An expired key
gets 401 saying when it expired.

Example:
  llmgw key create --name alice --expires 30d
  KEY=$(llmgw key create --name ci --models 'claude-haiku-*' --limit requests=60/1m)
  llmgw key create --name bob --limit usd=20/day --limit tokens=2M/5h --max-concurrency 4`,
			Flags: append([]urfave.Flag{
				&urfave.StringFlag{Name: "name", Usage: "unique key `NAME`, e.g. the person or tool using it"},
			}, keyPolicyFlags()...),
			Action: func(c *urfave.Context) error {
				if err := noArgs(c); err != nil {
					return err
				}
				return env.keyCreate(c)
			},
		},
		&urfave.Command{
			Name:      "edit",
			Usage:     "change a client key's policy",
			UsageText: "llmgw key edit NAME [--models PATTERNS] [--expires WHEN] [--max-concurrency N] [--limit KIND=AMOUNT/WINDOW ...] [--clear-limits] [--clear-models] [--no-expiry]",
			Description: `Changes only what the flags name; a running server applies it within a second.
A --limit replaces a limit of the same kind and window and keeps the others;
--clear-limits drops them all first.

Example:
  llmgw key edit alice --limit usd=40/day
  llmgw key edit alice --clear-limits --limit requests=100/1m
  llmgw key edit alice --no-expiry --clear-models`,
			Flags: append(keyPolicyFlags(),
				&urfave.BoolFlag{Name: "clear-limits", Usage: "drop every limit (before adding those given with --limit)"},
				&urfave.BoolFlag{Name: "clear-models", Usage: "allow every model again"},
				&urfave.BoolFlag{Name: "no-expiry", Usage: "the key never expires"},
			),
			Action: func(c *urfave.Context) error {
				name, err := oneArg(c, "key name")
				if err != nil {
					return err
				}
				return env.keyEdit(c, name)
			},
		},
		&urfave.Command{
			Name:      "show",
			Usage:     "show a client key's policy and its use against each limit",
			UsageText: "llmgw key show NAME [--json]",
			Description: `Shows a key's policy and, for each limit, how much of it is used now and when
the window resets (a sliding window: when its oldest use leaves it). Use is
summed from the request log, as the server does; requests in flight are not
in the log yet.

Example:
  llmgw key show alice
  llmgw key show alice --json | jq '.limits[] | {limit, used, resets_at}'`,
			Flags: []urfave.Flag{
				&urfave.BoolFlag{Name: "json", Usage: "print JSON instead of text"},
			},
			Action: func(c *urfave.Context) error {
				name, err := oneArg(c, "key name")
				if err != nil {
					return err
				}
				return env.keyShow(c, name)
			},
		},
		&urfave.Command{
			Name:      "list",
			Usage:     "list client keys",
			UsageText: "llmgw key list [--json]",
			Description: `Lists every client key with its visible prefix, never the key, its status
(active, expired, revoked, or static for keys from the config file) and its
limits with their use now. Times are local.

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
			Name:      "rotate",
			Usage:     "give a client key a new secret",
			UsageText: "llmgw key rotate NAME",
			Description: `Replaces the key's secret and prints the new key, and only it, on standard
output. The name, policy and history stay; the old secret stops working on a
running server within a second.

Example:
  KEY=$(llmgw key rotate alice)`,
			Action: func(c *urfave.Context) error {
				name, err := oneArg(c, "key name")
				if err != nil {
					return err
				}
				return env.keyRotate(c, name)
			},
		},
		&urfave.Command{
			Name:      "revoke",
			Usage:     "revoke a client key",
			UsageText: "llmgw key revoke NAME",
			Description: `Revokes the key for good; a running server rejects it within a second. The
name can be given to a new key later.

Example:
  llmgw key revoke alice`,
			Action: func(c *urfave.Context) error {
				name, err := oneArg(c, "key name")
				if err != nil {
					return err
				}
				return env.withDB(c.Context, func(db *store.DB) error {
					if err := db.RevokeKey(c.Context, name); err != nil {
						return keyError(name, "revoke", err)
					}
					_, err := printEscaped(c.App.Writer, "revoked client key %s\n", name)
					return err
				})
			},
		},
	)
}

// keyError explains a store error about the key named name.
func keyError(name, verb string, err error) error {
	switch {
	case errors.Is(err, llmgw.ErrNotFound):
		return fmt.Errorf("client key %q %w: see \"llmgw key list\"", name, llmgw.ErrNotFound)
	case errors.Is(err, llmgw.ErrConflict):
		return fmt.Errorf("client key %q already exists: choose another name (see \"llmgw key list\")", name)
	}
	return fmt.Errorf("%s key %s: %w", verb, name, err)
}

func (e *appEnv) keyCreate(c *urfave.Context) error {
	name := c.String("name")
	if strings.TrimSpace(name) == "" {
		return errors.New("--name is required: llmgw key create --name NAME")
	}
	k := llmgw.ClientKey{Name: name, CreatedAt: e.now()}
	if err := e.applyKeyFlags(c, &k); err != nil {
		return err
	}
	if err := k.Validate(); err != nil {
		return err
	}
	key, err := newClientKey()
	if err != nil {
		return err
	}
	k.Prefix, k.Hash = llmgw.VisiblePrefix(key), llmgw.HashKey(key)
	return e.withDB(c.Context, func(db *store.DB) error {
		if err := db.InsertKey(c.Context, &k); err != nil {
			return keyError(name, "create", err)
		}
		expires := "never expires"
		if !k.ExpiresAt.IsZero() {
			expires = "expires " + formatTime(k.ExpiresAt)
		}
		// The key alone on standard output, so KEY=$(llmgw key create ...) works.
		_, _ = printEscaped(c.App.ErrWriter, "created client key %s (%s); it is shown only this once\n", name, expires)
		_, err := fmt.Fprintln(c.App.Writer, key)
		return err
	})
}

// applyKeyFlags applies the policy flags that were given to k.
func (e *appEnv) applyKeyFlags(c *urfave.Context, k *llmgw.ClientKey) error {
	if c.Bool("clear-models") {
		k.Models = nil
	}
	if c.IsSet("models") {
		k.Models = splitList(c.String("models"))
	}
	if c.Bool("no-expiry") {
		if c.IsSet("expires") {
			return errors.New("--no-expiry and --expires contradict each other: give one")
		}
		k.ExpiresAt = time.Time{}
	}
	if c.IsSet("expires") {
		at, err := parseExpiry(c.String("expires"), e.now(), e.cfg.Location())
		if err != nil {
			return fmt.Errorf("--expires: %w", err)
		}
		k.ExpiresAt = at
	}
	if c.IsSet("max-concurrency") {
		k.MaxConcurrency = c.Int("max-concurrency")
	}
	limits, err := flagLimits(c)
	if err != nil {
		return err
	}
	if c.Bool("clear-limits") {
		k.Limits = nil
	}
	k.Limits = llmgw.SetLimits(k.Limits, limits)
	return nil
}

// parseExpiry reads --expires: a date (midnight in loc), an RFC 3339 time,
// or a duration from now (90m, 30d). It must be in the future.
func parseExpiry(s string, now time.Time, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	var at time.Time
	if d, err := parseDuration(s); err == nil {
		at = now.Add(d)
	} else if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		at = t
	} else if t, err := time.Parse(time.RFC3339, s); err == nil {
		at = t
	} else {
		return time.Time{}, fmt.Errorf("%q is not a date (2027-01-31), an RFC 3339 time or a duration (90m, 30d)", s)
	}
	if !at.After(now) {
		return time.Time{}, fmt.Errorf("%s is not in the future", s)
	}
	return at, nil
}

func (e *appEnv) keyEdit(c *urfave.Context, name string) error {
	return e.withDB(c.Context, func(db *store.DB) error {
		k, err := db.UpdateKey(c.Context, name, func(k *llmgw.ClientKey) error { return e.applyKeyFlags(c, k) })
		if err != nil {
			return keyError(name, "edit", err)
		}
		_, err = printEscaped(c.App.Writer, "updated client key %s: %s\n", name, policySummary(&k))
		return err
	})
}

// policySummary is a key's policy in one line.
func policySummary(k *llmgw.ClientKey) string {
	parts := []string{"models " + cmp.Or(strings.Join(k.Models, ","), "any")}
	if k.MaxConcurrency > 0 {
		parts = append(parts, "max concurrency "+strconv.Itoa(k.MaxConcurrency))
	} else {
		parts = append(parts, "max concurrency unlimited")
	}
	if len(k.Limits) == 0 {
		parts = append(parts, "no limits")
	}
	for _, l := range k.Limits {
		parts = append(parts, l.Display())
	}
	if k.ExpiresAt.IsZero() {
		parts = append(parts, "never expires")
	} else {
		parts = append(parts, "expires "+formatTime(k.ExpiresAt))
	}
	return strings.Join(parts, "; ")
}

func (e *appEnv) keyRotate(c *urfave.Context, name string) error {
	key, err := newClientKey()
	if err != nil {
		return err
	}
	return e.withDB(c.Context, func(db *store.DB) error {
		_, err := db.UpdateKey(c.Context, name, func(k *llmgw.ClientKey) error {
			k.Prefix, k.Hash, k.RotatedAt = llmgw.VisiblePrefix(key), llmgw.HashKey(key), e.now()
			return nil
		})
		if err != nil {
			return keyError(name, "rotate", err)
		}
		_, _ = printEscaped(c.App.ErrWriter, "rotated client key %s: the old secret stops working; the new one is shown only this once\n", name)
		_, err = fmt.Fprintln(c.App.Writer, key)
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

// keyView is a client key with its use against its limits, for key list
// and key show. Static keys come from the config file and have no policy.
type keyView struct {
	llmgw.ClientKey
	static bool
	use    []policy.Use
}

// keyViews reads every key, the config file's static ones after the
// stored ones, with the use of those that have limits.
func (e *appEnv) keyViews(ctx context.Context, db *store.DB, now time.Time) ([]keyView, error) {
	keys, err := db.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	log := usageLog{db: db, catalog: e.cfg.Catalog()}
	out := make([]keyView, 0, len(keys)+len(e.cfg.Auth.APIKeys))
	for _, k := range keys {
		v := keyView{ClientKey: k}
		if k.RevokedAt.IsZero() {
			if v.use, err = log.use(ctx, policy.Subject{ID: k.ID}, k.Limits, now, e.cfg.Location()); err != nil {
				return nil, err
			}
		}
		out = append(out, v)
	}
	for _, sk := range e.cfg.Auth.APIKeys {
		out = append(out, keyView{ClientKey: llmgw.ClientKey{Name: sk.Name, Prefix: llmgw.VisiblePrefix(sk.Key)}, static: true})
	}
	return out, nil
}

func (e *appEnv) keyList(c *urfave.Context) error {
	return e.withDB(c.Context, func(db *store.DB) error {
		now := e.now()
		keys, err := e.keyViews(c.Context, db, now)
		if err != nil {
			return err
		}
		if c.Bool("json") {
			out := make([]keyJSON, len(keys))
			for i := range keys {
				out[i] = newKeyJSON(&keys[i], now)
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

func writeKeyTable(w io.Writer, keys []keyView, now time.Time) error {
	tw := newTable(w)
	tw.row("NAME\tPREFIX\tCREATED\tLAST USED\tEXPIRES\tSTATUS\tLIMITS\n")
	for i := range keys {
		k := &keys[i]
		expires := "never"
		if !k.ExpiresAt.IsZero() {
			expires = formatTime(k.ExpiresAt)
		}
		tw.row("%s\t%s…\t%s\t%s\t%s\t%s\t%s\n", k.Name, k.Prefix, formatTime(k.CreatedAt),
			formatTime(k.LastUsed), expires, k.status(now), k.compactLimits())
	}
	return tw.Flush()
}

// compactLimits is the LIMITS column: each limit's use and amount, and the
// model and concurrency bounds; "-" for none.
func (k *keyView) compactLimits() string {
	var parts []string
	if t := useText(k.use); t != "" {
		parts = append(parts, t)
	} else if len(k.Limits) > 0 { // revoked: no use summed
		parts = append(parts, limitsText(k.Limits, ""))
	}
	if len(k.Models) > 0 {
		parts = append(parts, "models "+strings.Join(k.Models, ","))
	}
	if k.MaxConcurrency > 0 {
		parts = append(parts, "max "+strconv.Itoa(k.MaxConcurrency)+" at once")
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

// useText is limits with their use, compactly: "usd 3.20/20.00 per day,
// requests 60/60 per 1m (reached)"; "" for none.
func useText(uses []policy.Use) string {
	parts := make([]string, len(uses))
	for i, u := range uses {
		l := u.Limit
		parts[i] = fmt.Sprintf("%s %s/%s per %s", l.Kind, l.FormatAmount(u.Used), l.FormatAmount(l.Amount), l.Window)
		if u.Spent() {
			parts[i] += " (reached)"
		}
	}
	return strings.Join(parts, ", ")
}

// status is "active", "revoked", "expired", "limited" (a limit is spent)
// or "static".
func (k *keyView) status(now time.Time) string {
	switch {
	case k.static:
		return "static"
	case !k.RevokedAt.IsZero():
		return "revoked"
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return "expired"
	}
	for _, u := range k.use {
		if u.Spent() {
			return "limited"
		}
	}
	return "active"
}

func (e *appEnv) keyShow(c *urfave.Context, name string) error {
	return e.withDB(c.Context, func(db *store.DB) error {
		now := e.now()
		keys, err := e.keyViews(c.Context, db, now)
		if err != nil {
			return err
		}
		// The live key of that name, else its latest revoked one.
		i := slices.IndexFunc(keys, func(k keyView) bool { return k.Name == name && k.RevokedAt.IsZero() })
		if i < 0 {
			i = slices.IndexFunc(keys, func(k keyView) bool { return k.Name == name })
			for j := range keys {
				if keys[j].Name == name {
					i = j
				}
			}
		}
		if i < 0 {
			return keyError(name, "show", llmgw.ErrNotFound)
		}
		k := &keys[i]
		if c.Bool("json") {
			return writeJSON(c.App.Writer, newKeyJSON(k, now))
		}
		return writeKeyShow(c.App.Writer, k, now)
	})
}

func writeKeyShow(w io.Writer, k *keyView, now time.Time) error {
	tw := newTable(w)
	expires := "never"
	if !k.ExpiresAt.IsZero() {
		expires = formatTime(k.ExpiresAt)
	}
	tw.row("name:\t%s\n", k.Name)
	tw.row("prefix:\t%s…\n", k.Prefix)
	tw.row("status:\t%s\n", k.status(now))
	if !k.static {
		tw.row("created:\t%s\n", formatTime(k.CreatedAt))
		tw.row("last used:\t%s\n", formatTime(k.LastUsed))
		tw.row("expires:\t%s\n", expires)
		if !k.RotatedAt.IsZero() {
			tw.row("rotated:\t%s\n", formatTime(k.RotatedAt))
		}
		if !k.RevokedAt.IsZero() {
			tw.row("revoked:\t%s\n", formatTime(k.RevokedAt))
		}
	}
	tw.row("models:\t%s\n", cmp.Or(strings.Join(k.Models, ", "), "any"))
	conc := "unlimited"
	if k.MaxConcurrency > 0 {
		conc = strconv.Itoa(k.MaxConcurrency)
	}
	tw.row("max concurrency:\t%s\n", conc)
	if len(k.Limits) == 0 {
		tw.row("limits:\tnone\n")
	}
	for _, u := range k.use {
		tw.row("limit %s:\t%s used of %s, %s left; %s\n", u.Limit.String(), u.Limit.FormatAmount(u.Used),
			u.Limit.FormatAmount(u.Limit.Amount), u.Limit.FormatAmount(max(u.Limit.Amount-u.Used, 0)), resetText(u))
	}
	return tw.Flush()
}

// resetText says when a limit's use goes down next.
func resetText(u policy.Use) string {
	switch {
	case u.Limit.Window.Calendar == llmgw.WindowTotal:
		return "never resets"
	case u.Resets.IsZero():
		return "nothing used in the window"
	case u.Limit.Window.Calendar == "":
		return "oldest use leaves the window " + formatTime(u.Resets)
	}
	return "resets " + formatTime(u.Resets)
}

// keyJSON is a client key in "key list --json" and "key show --json". It
// never holds the key or its hash.
type keyJSON struct {
	Name           string      `json:"name"`
	Prefix         string      `json:"prefix"`
	Status         string      `json:"status"`
	Source         string      `json:"source"` // database or config
	CreatedAt      *string     `json:"created_at"`
	LastUsed       *string     `json:"last_used"`
	ExpiresAt      *string     `json:"expires_at"`
	RevokedAt      *string     `json:"revoked_at"`
	RotatedAt      *string     `json:"rotated_at"`
	Models         []string    `json:"models"`
	MaxConcurrency int         `json:"max_concurrency"`
	Limits         []limitJSON `json:"limits"`
}

// limitJSON is a limit with its use now.
type limitJSON struct {
	Limit     string  `json:"limit"` // as --limit takes it
	Kind      string  `json:"kind"`
	Amount    float64 `json:"amount"`
	Window    string  `json:"window"`
	Used      float64 `json:"used"`
	Remaining float64 `json:"remaining"`
	Spent     bool    `json:"spent"`
	ResetsAt  *string `json:"resets_at"` // null: never, or nothing used in a sliding window
}

func newKeyJSON(k *keyView, now time.Time) keyJSON {
	j := keyJSON{
		Name: k.Name, Prefix: k.Prefix, Status: k.status(now), Source: "database",
		CreatedAt: jsonTime(k.CreatedAt), LastUsed: jsonTime(k.LastUsed), ExpiresAt: jsonTime(k.ExpiresAt),
		RevokedAt: jsonTime(k.RevokedAt), RotatedAt: jsonTime(k.RotatedAt),
		Models: nonNil(k.Models), MaxConcurrency: k.MaxConcurrency, Limits: limitsJSON(k.Limits, k.use),
	}
	if k.static {
		j.Source = "config"
	}
	return j
}

// limitsJSON pairs limits with their use (use may be nil: not summed).
func limitsJSON(limits []llmgw.Limit, use []policy.Use) []limitJSON {
	out := make([]limitJSON, len(limits))
	for i, l := range limits {
		u := policy.Use{Limit: l}
		if i < len(use) {
			u = use[i]
		}
		out[i] = limitJSON{Limit: l.String(), Kind: string(l.Kind), Amount: l.Amount, Window: l.Window.String(),
			Used: u.Used, Remaining: max(l.Amount-u.Used, 0), Spent: u.Spent(), ResetsAt: jsonTime(u.Resets)}
	}
	return out
}

// nonNil makes a nil list an empty one, so JSON shows [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/policy"
	"github.com/llmgw/llmgw/store"
)

// disabledReason is the status reason "account disable" records.
const disabledReason = "disabled by operator"

func accountCommand(env *appEnv) *urfave.Command {
	return groupCommand("account", "manage the upstream Anthropic accounts",
		`Accounts are the upstream credentials llmgw spreads requests over. Secrets are
stored in the database and never printed back: list and show mask them.

Claude subscription accounts (Claude Code OAuth) come in with "account login"
or "account import --claude-credentials"; the server keeps their tokens fresh.

Example:
  printenv ANTHROPIC_API_KEY | llmgw account add --name main --api-key -
  llmgw account login --name alice-max --owner-key alice
  llmgw account import accounts.yaml
  llmgw account edit --priority 1 --limit usd=100/day main
  llmgw account list`,
		accountAddCommand(env),
		accountLoginCommand(env),
		accountImportCommand(env),
		accountEditCommand(env),
		accountRefreshCommand(env),
		accountListCommand(env),
		accountShowCommand(env),
		accountStatusCommand(env, "enable", "let an account serve again", "clears the status reason and any cooldown"),
		accountStatusCommand(env, "disable", "stop an account from serving", `sets the status to disabled with the reason "`+disabledReason+`"`),
		accountRemoveCommand(env),
	)
}

func accountAddCommand(env *appEnv) *urfave.Command {
	return &urfave.Command{
		Name:      "add",
		Usage:     "add an Anthropic API-key account",
		UsageText: "llmgw account add --name NAME --api-key KEY [--base-url URL] [--priority N] [--weight N] [--max-concurrency N] [--models PATTERN,...] [--owner-key KEYNAME]... [--limit KIND=AMOUNT/WINDOW]...",
		Description: `Adds one API-key account. --api-key - reads the key from the first line of
stdin, which keeps it out of the shell history and the process list. Use
"llmgw account import" to add many accounts or to update existing ones.

--base-url defaults to the config file's upstream.base_url, else the
LLMGW_ANTHROPIC_BASE_URL environment variable, else https://api.anthropic.com.
Lower --priority numbers are tried first; --weight shares traffic within a
priority; --models limits the account to models matching the glob patterns;
--owner-key (repeatable) makes the account serve only the named client keys;
each must be a live key ("llmgw key list") or a static key of the config
file. --limit (repeatable) bounds what the account may serve in a window: KIND is
usd, tokens or requests; WINDOW is day, week, month, total or a duration
such as 5h or 30d (usd=100/day, tokens=2M/5h, requests=60/1m); one limit per
kind and window.

Example:
  printenv ANTHROPIC_API_KEY | llmgw account add --name main --api-key -
  printenv BACKUP_KEY | llmgw account add --name backup --api-key - --priority 1 --models 'claude-sonnet-*,claude-haiku-*'
  llmgw account add --name capped --api-key - --limit usd=100/day --limit tokens=2M/5h < capped.key`,
		Flags: []urfave.Flag{
			&urfave.StringFlag{Name: "name", Usage: "unique account `NAME` (no spaces)"},
			&urfave.StringFlag{Name: "api-key", Usage: "Anthropic API `KEY`, or - to read it from stdin"},
			&urfave.StringFlag{Name: "base-url", Usage: "upstream base `URL` (default: config, else $LLMGW_ANTHROPIC_BASE_URL, else https://api.anthropic.com)"},
			&urfave.IntFlag{Name: "priority", Usage: "priority `N`; lower is tried first"},
			&urfave.IntFlag{Name: "weight", Value: 1, Usage: "relative share `N` of traffic within a priority"},
			&urfave.IntFlag{Name: "max-concurrency", Usage: "most simultaneous requests `N`; 0 is unlimited"},
			&urfave.StringFlag{Name: "models", Usage: "comma-separated model glob `PATTERNS`; empty allows every model"},
			ownerKeyFlag(),
			limitFlag(),
		},
		Action: func(c *urfave.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			limits, err := flagLimits(c)
			if err != nil {
				return err
			}
			a := llmgw.Account{
				Name:           c.String("name"),
				Type:           llmgw.AccountAPIKey,
				APIKey:         c.String("api-key"),
				BaseURL:        c.String("base-url"),
				Priority:       c.Int("priority"),
				Weight:         c.Int("weight"),
				MaxConcurrency: c.Int("max-concurrency"),
				Models:         splitList(c.String("models")),
				OwnerKeys:      ownerKeys(c),
				Limits:         limits,
				State:          llmgw.AccountState{Status: llmgw.StatusActive},
			}
			switch {
			case a.Name == "":
				return errors.New("--name is required: llmgw account add --name NAME --api-key KEY")
			case a.APIKey == "":
				return errors.New("--api-key is required: llmgw account add --name NAME --api-key KEY (or --api-key - to read it from stdin)")
			}
			if a.APIKey, err = apiKeyFlag(c); err != nil {
				return err
			}
			if a.BaseURL == "" {
				a.BaseURL = env.cfg.DefaultBaseURL()
			}
			if err := a.Validate(); err != nil {
				return err
			}
			return env.withDB(c.Context, func(db *store.DB) error {
				if err := env.checkOwnerKeyFlag(c, db); err != nil {
					return err
				}
				if err := db.InsertAccount(c.Context, &a); err != nil {
					if errors.Is(err, llmgw.ErrConflict) {
						return fmt.Errorf("account %q already exists: choose another name, or update it with \"llmgw account import\"", a.Name)
					}
					return fmt.Errorf("add account %s: %w", a.Name, err)
				}
				_, err := printEscaped(c.App.Writer, "added account %s (%s, %s)\n", a.Name, a.Type, a.BaseURL)
				return err
			})
		},
	}
}

// limitFlag is --limit, repeatable.
func limitFlag() urfave.Flag {
	return &urfave.StringSliceFlag{Name: "limit", Usage: "bound the account to `KIND=AMOUNT/WINDOW`, e.g. usd=100/day or tokens=2M/5h (repeatable)"}
}

// flagLimits returns the --limit values, commas also splitting. Two of the
// same kind and window are an error.
func flagLimits(c *urfave.Context) ([]llmgw.Limit, error) {
	var out []llmgw.Limit
	for _, v := range c.StringSlice("limit") {
		for _, s := range splitList(v) {
			l, err := llmgw.ParseLimit(s)
			if err != nil {
				return nil, fmt.Errorf("--limit: %w", err)
			}
			if out, err = llmgw.AddLimit(out, l); err != nil {
				return nil, fmt.Errorf("--limit: %w", err)
			}
		}
	}
	return out, nil
}

// limitsText lists limits for people, or says there are none.
func limitsText(limits []llmgw.Limit, none string) string {
	if len(limits) == 0 {
		return none
	}
	return strings.Join(limitStrings(limits), ", ")
}

// limitStrings are the limits as Limit.Display writes them.
func limitStrings(limits []llmgw.Limit) []string {
	out := make([]string, len(limits))
	for i, l := range limits {
		out[i] = l.Display()
	}
	return out
}

// apiKeyFlag returns --api-key, or with --api-key - the first line of
// stdin, which keeps the key out of the shell history and the process list.
func apiKeyFlag(c *urfave.Context) (string, error) {
	key := c.String("api-key")
	if key != "-" {
		return key, nil
	}
	key, err := readSecretLine(c.App.Reader)
	if err != nil {
		return "", fmt.Errorf("read api key from stdin: %w", err)
	}
	return key, nil
}

// readSecretLine reads the first line of r, without its line ending.
func readSecretLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.TrimSpace(line) == "" {
		return "", errors.New("stdin is empty")
	}
	return line, nil
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func accountListCommand(env *appEnv) *urfave.Command {
	return &urfave.Command{
		Name:      "list",
		Usage:     "list accounts with their status and statistics",
		UsageText: "llmgw account list [--json]",
		Description: `Lists every account: status and its reason, priority, weight, the requests in
flight against its max concurrency ("n/max", ∞ for unlimited; "-" when no
server runs: see "llmgw status"), cooldown (until when, and the error that
started it), and the request statistics the server records. A second table shows, for oauth
accounts, the subscriber, when the access token expires, the last refresh,
the 5-hour and 7-day subscription windows (utilization, status, reset) and
the windows scoped to one model family (7d_oi, 7d-sonnet, ...) as the server
last saw them; and, for every account bound to client keys or
carrying limits, those keys and limits. Times are local. Secrets are masked.

Example:
  llmgw account list
  llmgw account list --json | jq '.[] | select(.status != "active") | .name'`,
		Flags: []urfave.Flag{
			&urfave.BoolFlag{Name: "json", Usage: "print a JSON array instead of a table"},
		},
		Action: func(c *urfave.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			return env.withDB(c.Context, func(db *store.DB) error {
				accts, err := db.ListAccounts(c.Context)
				if err != nil {
					return fmt.Errorf("list accounts: %w", err)
				}
				stats, err := db.AccountStats(c.Context)
				if err != nil {
					return fmt.Errorf("account statistics: %w", err)
				}
				now := env.now()
				uses, err := env.accountUses(c.Context, db, accts, now)
				if err != nil {
					return err
				}
				inflight, err := liveInFlight(c.Context, db, now)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return writeJSON(c.App.Writer, accountsJSON(accts, stats, uses, inflight, now))
				}
				if len(accts) == 0 {
					// A hint on stderr; the (empty) table below is the answer.
					_, _ = fmt.Fprintln(c.App.ErrWriter, `no accounts yet: add one with "llmgw account add" or "llmgw account import"`)
				}
				return writeAccountTable(c.App.Writer, accts, stats, uses, inflight, now)
			})
		},
	}
}

// accountUses sums each limited account's use against its limits, as the
// server counts it.
func (e *appEnv) accountUses(ctx context.Context, db *store.DB, accts []llmgw.Account, now time.Time) (map[int64][]policy.Use, error) {
	log := usageLog{db: db, catalog: e.cfg.Catalog()}
	uses := map[int64][]policy.Use{}
	for _, a := range accts {
		u, err := log.use(ctx, policy.Subject{Account: true, ID: a.ID}, a.Limits, now, e.cfg.Location())
		if err != nil {
			return nil, err
		}
		uses[a.ID] = u
	}
	return uses, nil
}

// writeAccountTable prints the account list. inflight is what the running
// servers have in flight per account, nil when none runs (IN FLIGHT "-").
func writeAccountTable(w io.Writer, accts []llmgw.Account, stats map[int64]llmgw.AccountStats, uses map[int64][]policy.Use,
	inflight map[int64]int, now time.Time,
) error {
	tw := newTable(w)
	tw.row("NAME\tTYPE\tSTATUS\tPRIORITY\tWEIGHT\tIN FLIGHT\tCOOLDOWN\tREQUESTS\tERRORS\tAVG LATENCY\tLAST USED\n")
	for i := range accts {
		a := &accts[i]
		st := stats[a.ID]
		inf := "-"
		if inflight != nil {
			inf = inFlightText(inflight[a.ID], a.MaxConcurrency)
		}
		tw.row("%s\t%s\t%s\t%d\t%d\t%s\t%s\t%d\t%d\t%s\t%s\n",
			a.Name, a.Type, statusText(a.State)+spentText(uses[a.ID]), a.Priority, a.Weight, inf,
			cooldownReasonText(a.State, now), st.Requests, st.Errors, latencyText(st), formatTime(st.LastUsed))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeOAuthTable(w, accts, uses, now)
}

// spentText marks an account whose own limit is spent: the server skips it
// until the window frees.
func spentText(uses []policy.Use) string {
	for _, u := range uses {
		if u.Spent() {
			return ", limit reached"
		}
	}
	return ""
}

// writeOAuthTable lists what only OAuth, bound and limited accounts have;
// nothing if there are none, so a plain API-key listing stays as it was.
func writeOAuthTable(w io.Writer, accts []llmgw.Account, uses map[int64][]policy.Use, now time.Time) error {
	var rows []*llmgw.Account
	for i := range accts {
		if a := &accts[i]; a.Type == llmgw.AccountOAuth || len(a.OwnerKeys) > 0 || len(a.Limits) > 0 {
			rows = append(rows, a)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	tw := newTable(w)
	tw.row("ACCOUNT\tEMAIL\tEXPIRES IN\tLAST REFRESH\t5H WINDOW\t7D WINDOW\tSCOPED WINDOWS\tOWNER KEYS\tLIMITS\n")
	for _, a := range rows {
		email, expires, refreshed, h5, d7, scoped := "-", "-", "-", "-", "-", "-"
		if a.Type == llmgw.AccountOAuth {
			email, expires, refreshed = orDash(a.Email), expiresIn(a.ExpiresAt, now), formatTime(a.LastRefresh)
			h5, d7 = windowText(a.Windows.FiveHour, now), windowText(a.Windows.SevenDay, now)
			scoped = scopedWindowsText(a.Windows.Scoped, now)
		}
		tw.row("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, email, expires, refreshed, h5, d7, scoped, ownersText(a.OwnerKeys),
			orDash(useText(uses[a.ID])))
	}
	return tw.Flush()
}

// windowText is a subscription window for a table: "42% allowed, resets in
// 2h13m", or "-" if never seen.
func windowText(w llmgw.Window, now time.Time) string {
	if w.Status == "" && w.Utilization == 0 && w.ResetsAt.IsZero() {
		return "-"
	}
	s := strconv.FormatFloat(w.Utilization*100, 'f', 0, 64) + "%"
	if w.Status != "" {
		s += " " + w.Status
	}
	if w.ResetsAt.After(now) {
		s += ", resets in " + expiresIn(w.ResetsAt, now)
	}
	return s
}

// ownersText lists owner keys, or says that every key is served.
func ownersText(keys []string) string {
	if len(keys) == 0 {
		return "any"
	}
	return strings.Join(keys, ",")
}

// statusText is the status with its reason, e.g. "error: invalid x-api-key".
func statusText(s llmgw.AccountState) string {
	st := string(s.Status)
	if st == "" {
		st = string(llmgw.StatusActive)
	}
	if s.Reason != "" {
		st += ": " + oneLine(s.Reason)
	}
	return st
}

// cooldownText is when the cooldown ends and which model families the
// account does not serve until when ("fable until 2026-12-09 14:05:00"), or
// "-" if it is not cooling down at now.
func cooldownText(s llmgw.AccountState, now time.Time) string {
	t, f := activeCooldown(s, now), familyCooldownsText(s, now)
	switch {
	case f == "":
		return formatTime(t)
	case t.IsZero():
		return f
	}
	return formatTime(t) + "; " + f
}

// cooldownReasonText is the COOLDOWN column of account list: "until
// 2026-12-09 14:05:10 (429 rate_limit_error: ...)" and the model families
// cooling down; "-" if none is at now.
func cooldownReasonText(s llmgw.AccountState, now time.Time) string {
	var parts []string
	if t := activeCooldown(s, now); !t.IsZero() {
		p := "until " + formatTime(t)
		if r := cooldownReason(s, now); r != "" {
			p += " (" + truncate(r, cooldownReasonMax) + ")"
		}
		parts = append(parts, p)
	}
	if f := familyCooldownsText(s, now); f != "" {
		parts = append(parts, f)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

// cooldownReasonMax keeps a long upstream error from widening a table;
// --json and "account show" have it whole.
const cooldownReasonMax = 60

// cooldownReason is why the account is cooling down: the error that
// started the cooldown, or "" if it is not cooling down at now.
func cooldownReason(s llmgw.AccountState, now time.Time) string {
	if activeCooldown(s, now).IsZero() {
		return ""
	}
	return oneLine(s.LastError)
}

// truncate shortens s to n runes, marking the cut with "…".
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// activeCooldown is when the account's cooldown ends, or zero if it is not
// cooling down at now: a cooldown that has passed is over, even though the
// database keeps its time until the server writes a newer state.
func activeCooldown(s llmgw.AccountState, now time.Time) time.Time {
	if !s.CooldownUntil.After(now) {
		return time.Time{}
	}
	return s.CooldownUntil
}

func latencyText(st llmgw.AccountStats) string {
	if st.AvgLatencyMs <= 0 {
		return "-"
	}
	return strconv.FormatFloat(st.AvgLatencyMs, 'f', 0, 64) + "ms"
}

// oneLine keeps a table row on one line whatever an upstream error said.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// accountJSON is an account in "account list --json": snake_case fields,
// secrets masked with llmgw.Mask, times in RFC 3339 or null.
type accountJSON struct {
	ID             int64    `json:"id"`
	Name           string   `json:"name"`
	Type           string   `json:"type"`
	Status         string   `json:"status"`
	Reason         string   `json:"reason"`
	BaseURL        string   `json:"base_url"`
	Priority       int      `json:"priority"`
	Weight         int      `json:"weight"`
	MaxConcurrency int      `json:"max_concurrency"`
	Models         []string `json:"models"`
	APIKey         string   `json:"api_key,omitempty"`
	AccessToken    string   `json:"access_token,omitempty"`
	RefreshToken   string   `json:"refresh_token,omitempty"`
	ExpiresAt      *string  `json:"expires_at"`
	OwnerKeys      []string `json:"owner_keys"`
	Limits         []string `json:"limits"` // as Limit.Display writes them: usd=100.00/day
	// LimitUse is each limit with its use now (account list only).
	LimitUse []limitJSON `json:"limit_use,omitempty"`
	// OAuth accounts only.
	ExpiresIn        string       `json:"expires_in,omitempty"` // "7h12m", "expired" or "unknown"
	LastRefresh      *string      `json:"last_refresh,omitempty"`
	RefreshError     string       `json:"refresh_error,omitempty"`
	Scopes           []string     `json:"scopes,omitempty"`
	Email            string       `json:"email,omitempty"`
	AccountUUID      string       `json:"account_uuid,omitempty"`
	OrganizationUUID string       `json:"organization_uuid,omitempty"`
	TokenGeneration  int64        `json:"token_generation,omitempty"`
	Windows          *windowsJSON `json:"windows,omitempty"`
	// ScopedWindows are the windows that bind one model family each.
	ScopedWindows []scopedWindowJSON `json:"scoped_windows,omitempty"`

	CooldownUntil *string `json:"cooldown_until"` // null unless cooling down now
	// CooldownReason is the error that started the cooldown; "" unless
	// cooling down now.
	CooldownReason string `json:"cooldown_reason"`
	// InFlight is the requests the running servers have on the account
	// now (account list only); null when no server runs.
	InFlight *int `json:"in_flight"`
	// FamilyCooldowns are the model families the account does not serve
	// now, while it serves the others.
	FamilyCooldowns []familyCooldownJSON `json:"family_cooldowns"`
	LastError       string               `json:"last_error"`
	LastErrorAt     *string              `json:"last_error_at"`
	Requests        int64                `json:"requests"`
	Errors          int64                `json:"errors"`
	AvgLatencyMs    float64              `json:"avg_latency_ms"`
	LastUsed        *string              `json:"last_used"`
	CreatedAt       *string              `json:"created_at"`
	UpdatedAt       *string              `json:"updated_at"`
}

// windowsJSON are an OAuth account's subscription windows in JSON.
type windowsJSON struct {
	Status     string     `json:"status"`
	FiveHour   windowJSON `json:"five_hour"`
	SevenDay   windowJSON `json:"seven_day"`
	ObservedAt *string    `json:"observed_at"`
}

// windowJSON is one subscription window; utilization is a fraction 0..1.
type windowJSON struct {
	Status      string  `json:"status"`
	Utilization float64 `json:"utilization"`
	ResetsAt    *string `json:"resets_at"`
}

func newAccountJSON(a *llmgw.Account, st llmgw.AccountStats, now time.Time) accountJSON {
	models := a.Models
	if models == nil {
		models = []string{}
	}
	owners := a.OwnerKeys
	if owners == nil {
		owners = []string{}
	}
	status := a.State.Status
	if status == "" {
		status = llmgw.StatusActive
	}
	out := accountJSON{
		ID:              a.ID,
		Name:            a.Name,
		Type:            string(a.Type),
		Status:          string(status),
		Reason:          a.State.Reason,
		BaseURL:         a.BaseURL,
		Priority:        a.Priority,
		Weight:          a.Weight,
		MaxConcurrency:  a.MaxConcurrency,
		Models:          models,
		APIKey:          llmgw.Mask(a.APIKey),
		AccessToken:     llmgw.Mask(a.AccessToken),
		RefreshToken:    llmgw.Mask(a.RefreshToken),
		ExpiresAt:       jsonTime(a.ExpiresAt),
		OwnerKeys:       owners,
		Limits:          limitStrings(a.Limits),
		CooldownUntil:   jsonTime(activeCooldown(a.State, now)),
		CooldownReason:  cooldownReason(a.State, now),
		FamilyCooldowns: familyCooldownsJSON(a.State, now),
		LastError:       lastError(a, st),
		LastErrorAt:     jsonTime(st.LastErrorAt),
		Requests:        st.Requests,
		Errors:          st.Errors,
		AvgLatencyMs:    st.AvgLatencyMs,
		LastUsed:        jsonTime(st.LastUsed),
		CreatedAt:       jsonTime(a.CreatedAt),
		UpdatedAt:       jsonTime(a.UpdatedAt),
	}
	if a.Type == llmgw.AccountOAuth {
		out.ExpiresIn = expiresIn(a.ExpiresAt, now)
		out.LastRefresh = jsonTime(a.LastRefresh)
		out.RefreshError = a.RefreshError
		out.Scopes = a.Scopes
		out.Email, out.AccountUUID, out.OrganizationUUID = a.Email, a.AccountUUID, a.OrganizationUUID
		out.TokenGeneration = a.TokenGeneration
		if !a.Windows.At.IsZero() {
			w := a.Windows
			out.Windows = &windowsJSON{
				Status:     w.Status,
				FiveHour:   windowJSON{w.FiveHour.Status, w.FiveHour.Utilization, jsonTime(w.FiveHour.ResetsAt)},
				SevenDay:   windowJSON{w.SevenDay.Status, w.SevenDay.Utilization, jsonTime(w.SevenDay.ResetsAt)},
				ObservedAt: jsonTime(w.At),
			}
			out.ScopedWindows = scopedWindowsJSON(w.Scoped)
		}
	}
	return out
}

// lastError prefers the state the server wrote back over the statistics.
func lastError(a *llmgw.Account, st llmgw.AccountStats) string {
	if a.State.LastError != "" {
		return a.State.LastError
	}
	return st.LastError
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func accountShowCommand(env *appEnv) *urfave.Command {
	return &urfave.Command{
		Name:      "show",
		Usage:     "show one account in full, secrets masked",
		UsageText: "llmgw account show NAME [--json]",
		Description: `--json prints the account as "llmgw account list --json" prints each one.

Example:
  llmgw account show main
  llmgw account show main --json`,
		Flags: []urfave.Flag{&urfave.BoolFlag{Name: "json", Usage: "print one JSON document"}},
		Action: func(c *urfave.Context) error {
			name, err := oneArg(c, "account name")
			if err != nil {
				return err
			}
			return env.withDB(c.Context, func(db *store.DB) error {
				a, err := db.GetAccount(c.Context, name)
				if err != nil {
					return accountError(name, err)
				}
				stats, err := db.AccountStats(c.Context)
				if err != nil {
					return fmt.Errorf("account statistics: %w", err)
				}
				if c.Bool("json") {
					return env.writeAccountJSON(c, db, a, stats)
				}
				return writeAccount(c.App.Writer, a, stats[a.ID], env.now())
			})
		},
	}
}

func writeAccount(w io.Writer, a *llmgw.Account, st llmgw.AccountStats, now time.Time) error {
	tw := newTable(w)
	row := func(k, v string) { tw.row("%s:\t%s\n", k, v) }
	row("name", a.Name)
	row("type", string(a.Type))
	row("status", statusText(a.State))
	row("base url", a.BaseURL)
	row("priority", strconv.Itoa(a.Priority))
	row("weight", strconv.Itoa(a.Weight))
	if a.MaxConcurrency == 0 {
		row("max concurrency", "unlimited")
	} else {
		row("max concurrency", strconv.Itoa(a.MaxConcurrency))
	}
	if len(a.Models) == 0 {
		row("models", "all")
	} else {
		row("models", strings.Join(a.Models, ", "))
	}
	if a.APIKey != "" {
		row("api key", llmgw.Mask(a.APIKey))
	}
	if a.AccessToken != "" {
		row("access token", llmgw.Mask(a.AccessToken))
	}
	if a.RefreshToken != "" {
		row("refresh token", llmgw.Mask(a.RefreshToken))
	}
	if a.Type == llmgw.AccountOAuth {
		row("token expires", formatTime(a.ExpiresAt))
		row("expires in", expiresIn(a.ExpiresAt, now))
		row("last refresh", formatTime(a.LastRefresh))
		row("refresh error", orDash(oneLine(a.RefreshError)))
		row("email", orDash(a.Email))
		row("account uuid", orDash(a.AccountUUID))
		row("organization uuid", orDash(a.OrganizationUUID))
		row("scopes", orDash(strings.Join(a.Scopes, " ")))
		row("windows status", orDash(a.Windows.Status))
		row("5h window", windowText(a.Windows.FiveHour, now))
		row("7d window", windowText(a.Windows.SevenDay, now))
		for _, w := range a.Windows.Scoped {
			row(w.Label()+" window", windowText(w.Window, now))
		}
		if a.Windows.Claim != "" {
			row("binding window", a.Windows.Claim)
		}
		row("windows seen", formatTime(a.Windows.At))
	}
	row("owner keys", ownersText(a.OwnerKeys))
	row("limits", limitsText(a.Limits, "none"))
	row("cooldown until", cooldownText(a.State, now))
	row("last error", orDash(oneLine(lastError(a, st))))
	row("last error at", formatTime(st.LastErrorAt))
	row("requests", strconv.FormatInt(st.Requests, 10))
	row("errors", strconv.FormatInt(st.Errors, 10))
	row("avg latency", latencyText(st))
	row("last used", formatTime(st.LastUsed))
	row("created", formatTime(a.CreatedAt))
	row("updated", formatTime(a.UpdatedAt))
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// accountError turns a store error about the named account into one that
// says what to do.
func accountError(name string, err error) error {
	if errors.Is(err, llmgw.ErrNotFound) {
		return fmt.Errorf("account %q %w: see \"llmgw account list\"", name, llmgw.ErrNotFound)
	}
	return fmt.Errorf("account %s: %w", name, err)
}

// accountStatusCommand is "account enable" or "account disable".
func accountStatusCommand(env *appEnv, verb, usage, effect string) *urfave.Command {
	status, reason := llmgw.StatusActive, ""
	if verb == "disable" {
		status, reason = llmgw.StatusDisabled, disabledReason
	}
	return &urfave.Command{
		Name:      verb,
		Usage:     usage,
		UsageText: "llmgw account " + verb + " NAME",
		Description: "Sets the account's status; " + effect + `. A running server follows
within a second.

Example:
  llmgw account ` + verb + " main",
		Action: func(c *urfave.Context) error {
			name, err := oneArg(c, "account name")
			if err != nil {
				return err
			}
			return env.withDB(c.Context, func(db *store.DB) error {
				if err := db.SetAccountStatus(c.Context, name, status, reason); err != nil {
					return accountError(name, err)
				}
				_, err := printEscaped(c.App.Writer, "%sd account %s\n", verb, name)
				return err
			})
		},
	}
}

func accountRemoveCommand(env *appEnv) *urfave.Command {
	return &urfave.Command{
		Name:      "remove",
		Usage:     "delete an account",
		UsageText: "llmgw account remove NAME",
		Description: `Deletes the account and its secrets. Its past usage rows stay in the request log.
To stop an account temporarily, use "llmgw account disable".

Example:
  llmgw account remove old-key`,
		Action: func(c *urfave.Context) error {
			name, err := oneArg(c, "account name")
			if err != nil {
				return err
			}
			return env.withDB(c.Context, func(db *store.DB) error {
				if err := db.DeleteAccount(c.Context, name); err != nil {
					return accountError(name, err)
				}
				_, err := printEscaped(c.App.Writer, "removed account %s\n", name)
				return err
			})
		},
	}
}

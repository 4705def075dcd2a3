package llmgw

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// AccountType is the kind of credential an account holds.
type AccountType string

// Account types.
const (
	AccountAPIKey AccountType = "api_key"
	AccountOAuth  AccountType = "oauth"
)

// AccountStatus says whether an account may serve.
type AccountStatus string

// Account statuses. Only StatusActive accounts serve.
const (
	StatusActive   AccountStatus = "active"
	StatusDisabled AccountStatus = "disabled"
	StatusError    AccountStatus = "error"
)

// DefaultBaseURL is Anthropic's API.
const DefaultBaseURL = "https://api.anthropic.com"

// Account is one upstream Anthropic credential in the pool. Values in a
// Snapshot are shared between goroutines and must not be modified.
type Account struct {
	ID             int64
	Name           string
	Type           AccountType
	BaseURL        string
	Priority       int      // lower is preferred
	Weight         int      // relative share within a priority, >= 1
	MaxConcurrency int      // 0 means unlimited
	Models         []string // glob patterns (path.Match); empty allows every model
	CreatedAt      time.Time
	UpdatedAt      time.Time

	// Secrets. Never log or print them; use Mask.
	APIKey       string
	AccessToken  string
	RefreshToken string
	ExpiresAt    time.Time // access token expiry, OAuth only

	// OAuth facts from the token endpoint (OAuth only).
	Scopes           []string
	Email            string
	AccountUUID      string
	OrganizationUUID string
	// TokenGeneration moves every time a new token pair is stored (login,
	// import, refresh); the refresh compare-and-swap is keyed on it.
	TokenGeneration int64
	LastRefresh     time.Time
	RefreshError    string // last transient refresh failure, empty when fine

	// OwnerKeys, when not empty, are the names of the only client keys this
	// account serves (binding a subscription to its owner).
	OwnerKeys []string

	// Limits bound what the account may serve per window; an account whose
	// limit is spent is skipped until its window frees.
	Limits []Limit

	// State is what the server learned while serving, persisted so that the
	// CLI can show it and a restart keeps it.
	State AccountState
	// Windows are the subscription usage windows last reported for an OAuth
	// account.
	Windows Windows
}

// Window is one subscription usage window, as Anthropic reports it in the
// anthropic-ratelimit-unified-* headers of OAuth responses.
type Window struct {
	Status      string    // allowed, allowed_warning or rejected; empty if never seen
	Utilization float64   // fraction used, 0..1
	ResetsAt    time.Time // zero if unknown
}

// Windows are an account's subscription windows.
type Windows struct {
	Status   string // the overall unified status
	FiveHour Window
	SevenDay Window
	// Scoped are the windows that bind one model family only (7d_oi,
	// 7d-sonnet, …), at most one per name and family, ordered by name and
	// family. A response reports those of its own model; the others are kept
	// from earlier responses until they reset.
	Scoped []ScopedWindow
	// Claim is the window that binds now, as the upstream names it in
	// representative-claim (five_hour, seven_day, …); empty if not said.
	Claim string
	At    time.Time // when they were read; zero if never
}

// ScopedWindow is a subscription window that binds one model family only:
// a rejection in it stops that family on the account, not the account.
type ScopedWindow struct {
	Name   string // the window as the headers name it: 7d_oi, 7d-sonnet
	Family string // the model family it binds: opus, sonnet, haiku, fable, mythos, or a model id if the family is unknown
	Window
}

// Label names a scoped window for people: "7d sonnet" for 7d-sonnet (whose
// name says its family), "7d_oi fable" for 7d_oi seen on Fable requests.
func (w ScopedWindow) Label() string {
	if strings.Contains(w.Name, w.Family) {
		return strings.ReplaceAll(w.Name, "-", " ")
	}
	return w.Name + " " + w.Family
}

// ServesKey reports whether the account may serve the named client key.
func (a *Account) ServesKey(keyName string) bool {
	if len(a.OwnerKeys) == 0 {
		return true
	}
	for _, k := range a.OwnerKeys {
		if k == keyName {
			return true
		}
	}
	return false
}

// AccountState is the part of an account that changes while serving. The
// newer of two states (by At) wins, so an operator's `account enable` beats
// a cooldown the server set earlier, and the server's own write-back never
// undoes a later operator change.
type AccountState struct {
	Status        AccountStatus
	Reason        string    // why the status is not active; empty when active
	CooldownUntil time.Time // zero if not cooling down
	LastError     string
	// FamilyCooldowns keep the account from serving one model family each
	// (a rejected model-scoped window) while it serves other models. At
	// most one per family, ordered by family; the slice is never modified
	// in place (use WithFamilyCooldown).
	FamilyCooldowns []FamilyCooldown
	At              time.Time // when this state was decided
}

// FamilyCooldown keeps an account from serving one model family until Until.
type FamilyCooldown struct {
	Family string
	Until  time.Time
}

// CoolingFor returns when the account's cooldown for family ends, or zero
// if it has none (it may have passed).
func (s AccountState) CoolingFor(family string) time.Time {
	for _, c := range s.FamilyCooldowns {
		if c.Family == family {
			return c.Until
		}
	}
	return time.Time{}
}

// WithFamilyCooldown returns s's family cooldowns with family cooling until
// then, replacing an earlier one for that family and dropping those that
// have passed at now. s is not modified.
func (s AccountState) WithFamilyCooldown(family string, until, now time.Time) []FamilyCooldown {
	out := make([]FamilyCooldown, 0, len(s.FamilyCooldowns)+1)
	for _, c := range s.FamilyCooldowns {
		if c.Family != family && c.Until.After(now) {
			out = append(out, c)
		}
	}
	out = append(out, FamilyCooldown{Family: family, Until: until})
	slices.SortFunc(out, func(a, b FamilyCooldown) int { return strings.Compare(a.Family, b.Family) })
	return out
}

// Serves reports whether the account's model allowlist admits model.
func (a *Account) Serves(model string) bool { return matchModel(a.Models, model) }

// Validate checks an account before it is stored. Errors wrap ErrInvalid.
func (a *Account) Validate() error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
	}
	switch {
	case strings.TrimSpace(a.Name) == "":
		return fail("account name is required")
	case strings.ContainsAny(a.Name, " \t\r\n"):
		return fail("account name %q must not contain spaces", a.Name)
	}
	switch a.Type {
	case AccountAPIKey:
		if a.APIKey == "" {
			return fail("account %s: api_key is required for type api_key", a.Name)
		}
	case AccountOAuth:
		if a.AccessToken == "" && a.RefreshToken == "" {
			return fail("account %s: access_token or refresh_token is required for type oauth", a.Name)
		}
	default:
		return fail("account %s: type must be api_key or oauth, not %q", a.Name, a.Type)
	}
	if u, err := url.Parse(a.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fail("account %s: base URL %q must be an http or https URL", a.Name, a.BaseURL)
	}
	if a.Weight < 1 {
		return fail("account %s: weight must be at least 1", a.Name)
	}
	if a.MaxConcurrency < 0 {
		return fail("account %s: max concurrency must be 0 (unlimited) or more", a.Name)
	}
	if err := ValidModelPatterns(a.Models); err != nil {
		return fail("account %s: %s", a.Name, err.Error())
	}
	if err := ValidLimits(a.Limits); err != nil {
		return fmt.Errorf("account %s: limits: %w", a.Name, err)
	}
	return nil
}

// AccountStats are the running totals the store keeps per account.
type AccountStats struct {
	Requests     int64
	Errors       int64
	LastUsed     time.Time
	LastError    string
	LastErrorAt  time.Time
	AvgLatencyMs float64 // mean time to first byte of successful attempts
}

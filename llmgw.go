// Package llmgw holds the domain types shared by every part of the gateway:
// accounts, client keys, the serving snapshot and usage records. It imports
// only the standard library, so the proxy can use these types without
// depending on the store.
package llmgw

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// Snapshot is an immutable view of everything the proxy needs to serve a
// request: the accounts that can be chosen and the client keys that are
// accepted. The proxy holds it behind an atomic pointer and never modifies
// it; a reload builds a new one.
type Snapshot struct {
	// Version is the change counter the snapshot was loaded at.
	Version int64
	// Accounts are ordered by ID, which is creation order.
	Accounts []Account
	// Keys are every client key the store holds, revoked and expired ones
	// included, so that a rejection can say why.
	Keys []ClientKey
	// LoadedAt is when the snapshot was read.
	LoadedAt time.Time
}

// ClientKey is a key a team member's tools use to call llmgw. Only its hash is
// ever stored; the key itself is shown once, when it is created (or rotated).
// Values in a Snapshot are shared between goroutines and must not be
// modified.
type ClientKey struct {
	ID        int64
	Name      string
	Prefix    string // the first characters of the key, safe to show
	Hash      string // HashKey of the key
	CreatedAt time.Time
	LastUsed  time.Time // zero if never used
	ExpiresAt time.Time // zero if it never expires
	RevokedAt time.Time // zero if not revoked
	RotatedAt time.Time // when the secret was last replaced; zero if never

	// Policy.

	// Models are glob patterns (path.Match, as Account.Models); empty
	// allows every model.
	Models []string
	// MaxConcurrency bounds the key's requests in flight; 0 means unlimited.
	MaxConcurrency int
	// Limits bound what the key may use per window; none means unlimited.
	Limits []Limit
}

// Usable reports whether the key may be used at time now, and if not, why.
func (k *ClientKey) Usable(now time.Time) (bool, string) {
	switch {
	case !k.RevokedAt.IsZero():
		return false, "client key " + k.Name + " has been revoked"
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return false, "client key " + k.Name + " expired at " + k.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return true, ""
}

// Allows reports whether the key's model allowlist admits model. It matches
// exactly as Account.Serves does.
func (k *ClientKey) Allows(model string) bool { return matchModel(k.Models, model) }

// Validate checks a key's policy before it is stored. Errors wrap
// ErrInvalid.
func (k *ClientKey) Validate() error {
	switch {
	case strings.TrimSpace(k.Name) == "":
		return fmt.Errorf("%w: key name is required", ErrInvalid)
	case strings.ContainsAny(k.Name, " \t\r\n"):
		return fmt.Errorf("%w: key name %q must not contain spaces", ErrInvalid, k.Name)
	case k.MaxConcurrency < 0:
		return fmt.Errorf("%w: key %s: max concurrency must be 0 (unlimited) or more", ErrInvalid, k.Name)
	}
	if err := ValidModelPatterns(k.Models); err != nil {
		return fmt.Errorf("%w: key %s: %w", ErrInvalid, k.Name, err)
	}
	if err := ValidLimits(k.Limits); err != nil {
		return fmt.Errorf("key %s: limits: %w", k.Name, err)
	}
	return nil
}

// ValidModelPatterns reports the first malformed glob pattern among
// patterns.
func ValidModelPatterns(patterns []string) error {
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil || p == "" || strings.Contains(p, ",") {
			return fmt.Errorf("model pattern %q is malformed", p)
		}
	}
	return nil
}

// matchModel reports whether model matches one of the glob patterns, or
// patterns is empty. Accounts and client keys share it, so an allowlist
// means the same on both.
func matchModel(patterns []string, model string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, model); ok {
			return true
		}
	}
	return false
}

// KeyPrefix is the fixed start of every client key llmgw makes.
const KeyPrefix = "sk-llmgw-"

// HashKey returns the hex SHA-256 of a client key. Keys are 32 random bytes,
// so a fast hash is enough: there is nothing to brute-force.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// VisiblePrefix returns the part of a key that may be shown in listings.
func VisiblePrefix(key string) string {
	n := len(KeyPrefix) + 4
	if len(key) < n+8 { // short static keys: show very little
		n = min(4, len(key)/4)
	}
	return key[:n]
}

// Mask returns a form of a secret that is safe to print: its first few
// characters and its length.
func Mask(secret string) string {
	if secret == "" {
		return ""
	}
	n := 6
	if len(secret) < 16 {
		n = 0
	}
	return secret[:n] + "…(" + strconv.Itoa(len(secret)) + " chars)"
}

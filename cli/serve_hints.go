package cli

import (
	"log/slog"
	"strings"
	"time"

	"github.com/llmgw/llmgw"
)

// warnFirstRun tells an operator starting serve on an empty database what
// is missing, with the exact commands that fix it: without an account every
// request fails with 503, without a client key with 401.
func warnFirstRun(log *slog.Logger, env *appEnv, snap *llmgw.Snapshot, now time.Time) {
	llmgwCmd := "llmgw"
	if env.dbPath != defaultDBPath {
		llmgwCmd += " --db " + shellQuote(env.dbName()) // logged: no password
	}
	if len(snap.Accounts) == 0 {
		log.Warn("no upstream account: every request fails until one is added (the server picks it up within a second)",
			"fix", llmgwCmd+" account add --name NAME --api-key -",
			"fix_subscription", llmgwCmd+" account login --name NAME")
	}
	if len(env.cfg.Auth.APIKeys) == 0 && !anyLiveKey(snap.Keys, now) {
		log.Warn("no client key: every request is refused until one is created (the server picks it up within a second)",
			"fix", llmgwCmd+" key create --name NAME")
	}
}

// anyLiveKey reports whether a key is neither revoked nor expired at now.
func anyLiveKey(keys []llmgw.ClientKey, now time.Time) bool {
	for _, k := range keys {
		if k.RevokedAt.IsZero() && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt)) {
			return true
		}
	}
	return false
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=+,@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

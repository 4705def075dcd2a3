package proxy

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/llmgw/llmgw"

// depRules say, per package, what it must not depend on (directly or not)
// and why. Imports flow one way: cli → {store, proxy, oauth} → llmgw, and
// the dialect packages are pure translation.
var depRules = []struct {
	pkgs string            // a go list pattern
	bad  map[string]string // forbidden dependency → why
	// only, when set, allows nothing outside the standard library but
	// these packages (the domain types in the root package among them).
	only []string
}{
	{
		pkgs: mod + "/proxy/...",
		bad: map[string]string{
			"database/sql":       "the request path never waits on a database: it serves from the in-memory snapshot",
			"modernc.org/sqlite": "the request path never waits on a database: it serves from the in-memory snapshot",
			mod + "/store":       "the proxy declares the interfaces it needs (UsageRecorder); the store implements them",
			mod + "/migrations":  "schema is the store's business",
			mod + "/cli":         "wiring happens only in cli, which imports the proxy, not the other way",
			mod + "/oauth":       "the proxy gets tokens through its TokenSource interface; cli wires the oauth manager in",
		},
	},
	{
		// The dialect packages: what a client dialect and Anthropic look like,
		// and nothing of serving.
		pkgs: mod + "/proxy/anthropic " + mod + "/proxy/openai " + mod + "/proxy/gemini " + mod + "/proxy/sse",
		bad: map[string]string{
			mod + "/proxy": "a dialect is pure translation; the proxy drives it through the Dialect interface",
		},
		only: []string{mod, mod + "/proxy/anthropic"},
	},
	{
		pkgs: mod + "/proxy/responses",
		bad: map[string]string{
			mod + "/proxy": "a dialect is pure translation; the proxy drives it through the Dialect interface",
		},
		// Responses shares OpenAI's error shape and mapping with Chat.
		only: []string{mod, mod + "/proxy/anthropic", mod + "/proxy/openai"},
	},
	{
		pkgs: mod + "/store/...",
		bad: map[string]string{
			"net/http":         "the store knows nothing of HTTP: it is used by the CLI and the server alike",
			mod + "/proxy":     "the store implements the proxy's interfaces without importing it (cli asserts they fit)",
			mod + "/cli":       "wiring happens only in cli",
			mod + "/oauth":     "the oauth package declares the TokenStore it needs; the store implements it",
			"golang.org/x/net": "no HTTP machinery in the store",
		},
	},
	{
		pkgs: mod,
		bad:  map[string]string{},
		only: []string{}, // the domain types depend on the standard library only
	},
}

func TestDeps(t *testing.T) {
	for _, rule := range depRules {
		args := append([]string{"list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}"}, strings.Fields(rule.pkgs)...)
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		allowed := map[string]bool{}
		for _, p := range rule.only {
			allowed[p] = true
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			dep, std, _ := strings.Cut(line, " ")
			for bad, why := range rule.bad {
				// A module outside this one is forbidden whole; a package of
				// this one alone (its subpackages are other packages).
				if dep == bad || !strings.HasPrefix(bad, mod) && strings.HasPrefix(dep, bad+"/") {
					t.Errorf("%s depends on %s: %s", rule.pkgs, dep, why)
				}
			}
			if rule.only != nil && std != "true" && !allowed[dep] && !inRule(dep, rule.pkgs) {
				t.Errorf("%s depends on %s: it may use only the standard library and %v", rule.pkgs, dep, rule.only)
			}
		}
	}
}

// inRule reports whether dep is one of the packages a rule is about.
func inRule(dep, pkgs string) bool {
	for _, p := range strings.Fields(pkgs) {
		if dep == p {
			return true
		}
	}
	return false
}

package cli

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// enableExamples returns the example config with its "#>" example lines
// enabled: each loses its "#> ", and the key above them its [] or {}.
func enableExamples(src string) string {
	lines := strings.Split(src, "\n")
	for i, l := range lines {
		if rest, ok := strings.CutPrefix(l, "#> "); ok {
			lines[i] = rest
			continue
		}
		if !regexp.MustCompile(`:\s*(\[\]|\{\})`).MatchString(l) {
			continue
		}
		// Does a "#>" line follow, past comment-only lines?
		for _, next := range lines[i+1:] {
			t := strings.TrimSpace(next)
			if strings.HasPrefix(next, "#>") {
				lines[i] = regexp.MustCompile(`:\s*(\[\]|\{\})`).ReplaceAllString(l, ":")
				break
			}
			if !strings.HasPrefix(t, "#") {
				break
			}
		}
	}
	return strings.Join(lines, "\n")
}

// TestDeploy_ConfigExample is not parallel: the example's ${ENV} references
// are resolved from the process environment (t.Setenv).
func TestDeploy_ConfigExample(t *testing.T) {
	for _, env := range []string{"LLMGW_CI_KEY", "LLMGW_OTHER_KEY"} {
		t.Setenv(env, "llmgw-example-FAKE-"+env)
	}
	t.Setenv("SLACK_WEBHOOK_URL", "https://hooks.example.com/services/FAKE")
	path := filepath.Join("..", "deploy", "config.example.yaml")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatalf("the example as shipped: %v", err)
	}
	// As shipped, it is the defaults.
	def := defaultConfig()
	if err := def.validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Listen() != def.Listen() || cfg.Server.TimeoutSeconds != def.Server.TimeoutSeconds ||
		cfg.Upstream.MaxAttempts != def.Upstream.MaxAttempts || cfg.Alerts.WindowThreshold != def.Alerts.WindowThreshold {
		t.Errorf("the example's values differ from the defaults")
	}

	enabled := writeFile(t, "config.yaml", enableExamples(string(src)))
	cfg, err = LoadConfig(enabled)
	if err != nil {
		t.Fatalf("the example with its examples enabled: %v", err)
	}
	if len(cfg.Auth.APIKeys) != 2 || len(cfg.Models.Catalog) != 2 || len(cfg.Alerts.Webhooks) != 2 ||
		len(cfg.Prices) != 2 || len(cfg.Server.TrustedProxies) != 2 || cfg.Models.Aliases["gpt-4o"] == "" {
		t.Errorf("enabled examples did not all load: %+v", cfg)
	}

	// Every key of Config appears in the example, so that a new key gets
	// documented there.
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(enableExamples(string(src))), &doc); err != nil {
		t.Fatal(err)
	}
	for _, key := range configKeys(reflect.TypeFor[Config](), "") {
		if !hasKey(doc, strings.Split(key, ".")) {
			t.Errorf("deploy/config.example.yaml lacks %s", key)
		}
	}
}

// configKeys lists the dotted YAML keys of the struct t, descending into
// struct fields (not into maps, lists or types with their own decoding).
func configKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for f := range t.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		keys = append(keys, prefix+tag)
		if f.Type.Kind() == reflect.Struct {
			keys = append(keys, configKeys(f.Type, prefix+tag+".")...)
		}
	}
	return keys
}

func hasKey(doc map[string]any, path []string) bool {
	v, ok := doc[path[0]]
	if !ok {
		return false
	}
	if len(path) == 1 {
		return true
	}
	m, ok := v.(map[string]any)
	return ok && hasKey(m, path[1:])
}

func TestDeploy_AccountsExample(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", "deploy", "accounts.example.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	lookup := func(name string) (string, bool) {
		asked = append(asked, name)
		return "sk-ant-example-FAKE-" + name, true
	}
	entries, err := parseAccounts(path, data, defaultConfig().DefaultBaseURL(), lookup)
	if err != nil {
		t.Fatal(err)
	}
	accts, err := mergeAccounts(path, entries, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]bool{}
	for _, a := range accts {
		types[string(a.Type)] = true
	}
	if !types["api_key"] || !types["oauth"] {
		t.Errorf("the example has types %v, want an api_key and an oauth account", types)
	}
	if len(asked) < 4 {
		t.Errorf("the example reads %v from the environment, want every secret from ${ENV}", asked)
	}
	if regexp.MustCompile(`(api_key|access_token|refresh_token):\s*[^$\s]`).Match(data) {
		t.Error("the example holds a literal secret; use ${ENV}")
	}
}

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/oauth"
)

func TestLoadConfig_Defaults(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Server: ServerConfig{
			Host: "127.0.0.1", Port: 8080, TimeoutSeconds: 600,
			MaxConnections: 0, // derived from the open-file limit by serve
			MaxHeaderBytes: 64 << 10, MaxHeaderCount: 200, BodyReadTimeoutSeconds: 60,
			MaxBodyMemoryBytes: 512 << 20, MaxWaiting: 1024,
		},
		Logging:  LoggingConfig{Level: "info"},
		Upstream: UpstreamConfig{MaxAttempts: 3, MaxBodyBytes: 32 << 20, FirstByteTimeoutSeconds: 60},
		Alerts:   AlertsConfig{WindowThreshold: 0.9},
	}
	if diff := cmp.Diff(want, cfg, cmpopts.IgnoreUnexported(Config{})); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if got := cfg.BodyReadTimeout(); got != time.Minute {
		t.Errorf("BodyReadTimeout() = %v, want 1m", got)
	}
	if got := cfg.FirstByteTimeout(); got != time.Minute {
		t.Errorf("FirstByteTimeout() = %v, want 1m", got)
	}
	if got := cfg.Listen(); got != "127.0.0.1:8080" {
		t.Errorf("Listen() = %q, want 127.0.0.1:8080", got)
	}
	if got := cfg.Timeout(); got != 10*time.Minute {
		t.Errorf("Timeout() = %v, want 10m", got)
	}
}

func TestLoadConfig_File(t *testing.T) {
	// Not parallel: sets an environment variable.
	t.Setenv("LLMGW_TEST_STATIC_KEY", "sk-static-FAKE-from-env-0123")
	p := writeFile(t, "llmgw.yaml", `server:
  host: 0.0.0.0
  port: 9090
  max_connections: 5000
  max_header_bytes: 32768
  max_header_count: 100
  body_read_timeout_seconds: 30
  max_body_memory_bytes: 134217728
  max_waiting: 64
auth:
  api_keys:
    - sk-static-FAKE-plain-0123456
    - name: ci
      key: ${LLMGW_TEST_STATIC_KEY}
    - key: sk-static-FAKE-third-0123456
logging:
  level: debug
  format: json
upstream:
  base_url: http://127.0.0.1:9999
  max_attempts: 5
  first_byte_timeout_seconds: 45
prices:
  "claude-opus-4-5*": {input: 4, output: 20}
  my-model: {input: 1, output: 2, cache_read: 0.5}
`)
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Server: ServerConfig{
			Host: "0.0.0.0", Port: 9090, TimeoutSeconds: 600,
			MaxConnections: 5000, MaxHeaderBytes: 32 << 10, MaxHeaderCount: 100,
			BodyReadTimeoutSeconds: 30, MaxBodyMemoryBytes: 128 << 20, MaxWaiting: 64,
		},
		Auth: AuthConfig{APIKeys: []StaticKey{
			{Name: "static-1", Key: "sk-static-FAKE-plain-0123456"},
			{Name: "ci", Key: "sk-static-FAKE-from-env-0123"},
			{Name: "static-3", Key: "sk-static-FAKE-third-0123456"},
		}},
		Logging:  LoggingConfig{Level: "debug", Format: "json"},
		Alerts:   AlertsConfig{WindowThreshold: 0.9},
		Upstream: UpstreamConfig{BaseURL: "http://127.0.0.1:9999", MaxAttempts: 5, MaxBodyBytes: 32 << 20, FirstByteTimeoutSeconds: 45},
		Prices: map[string]Price{
			"claude-opus-4-5*": {Input: 4, Output: 20, CacheRead: 0.4, CacheWrite5m: 5, CacheWrite1h: 8},
			"my-model":         {Input: 1, Output: 2, CacheRead: 0.5, CacheWrite5m: 1.25, CacheWrite1h: 2},
		},
	}
	if diff := cmp.Diff(want, cfg, cmpopts.IgnoreUnexported(Config{})); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if got := cfg.Listen(); got != "0.0.0.0:9090" {
		t.Errorf("Listen() = %q", got)
	}
	if got := cfg.DefaultBaseURL(); got != "http://127.0.0.1:9999" {
		t.Errorf("DefaultBaseURL() = %q", got)
	}
}

func TestLoadConfig_Errors(t *testing.T) {
	t.Parallel()
	const unset = "LLMGW_TEST_SURELY_UNSET_VARIABLE"
	tests := []struct {
		name string
		body string
		want string
	}{
		{"unknown top-level key", "server:\n  port: 1\nsevrer: {}\n", `line 3: unknown key "sevrer"`},
		{"unknown nested key", "server:\n  port: 1\n  hots: x\n", `line 3: unknown key "hots"`},
		{"unknown static key field", "auth:\n  api_keys:\n    - name: a\n      secret: sk-static-FAKE-0123456789\n", `line 4: unknown field "secret"`},
		{"unknown price field", "prices:\n  x: {input: 1, output: 2, cache: 3}\n", `line 2: unknown field "cache"`},
		{"bad type", "server:\n  port: eighty\n", "line 2:"},
		{"short static key", "auth:\n  api_keys:\n    - short\n", "line 3: api key must be at least 16 characters"},
		{"unset env in static key", "auth:\n  api_keys:\n    - ${" + unset + "}\n", "line 3: environment variable " + unset + " is not set"},
		{"duplicate static key name", "auth:\n  api_keys:\n    - {name: a, key: sk-static-FAKE-0123456789}\n    - {name: a, key: sk-static-FAKE-9876543210}\n", `name "a" is used twice`},
		{"price without output", "prices:\n  x: {input: 1}\n", "line 2: a price needs input and output"},
		{"bad price pattern", "prices:\n  \"x[\": {input: 1, output: 1}\n", "malformed"},
		{"bad port", "server:\n  port: 70000\n", "server.port 70000 is out of range"},
		{"bad timeout", "server:\n  timeout_seconds: 0\n", "server.timeout_seconds must be positive"},
		{"bad timezone", "server:\n  timezone: Mars/Olympus\n", `server.timezone "Mars/Olympus" is not UTC, Local or an IANA zone name`},
		{"bad affinity", "routing:\n  affinity: sometimes\n", `routing.affinity "sometimes" is not on or off`},
		{"bad log level", "logging:\n  level: loud\n", `log level "loud"`},
		{"bad log format", "logging:\n  format: xml\n", `log format "xml"`},
		{"bad max attempts", "upstream:\n  max_attempts: 0\n", "upstream.max_attempts must be at least 1"},
		{"negative max connections", "server:\n  max_connections: -1\n", "server.max_connections must be 0 (derived from the open-file limit) or positive, not -1"},
		{"negative max header bytes", "server:\n  max_header_bytes: -1\n", "server.max_header_bytes must be 0 (the default, 65536) or positive, not -1"},
		{"negative max header count", "server:\n  max_header_count: -5\n", "server.max_header_count must be 0 (the default, 200) or positive, not -5"},
		{"negative body read timeout", "server:\n  body_read_timeout_seconds: -1\n", "server.body_read_timeout_seconds must be 0 (the default, 60) or positive"},
		{"negative max waiting", "server:\n  max_waiting: -1\n", "server.max_waiting must be 0 (the default, 1024) or positive"},
		{"negative max body memory", "server:\n  max_body_memory_bytes: -1\n", "server.max_body_memory_bytes must be 0 (the default, 536870912) or positive"},
		{"body memory below one body", "server:\n  max_body_memory_bytes: 1000\nupstream:\n  max_body_bytes: 2000\n", "server.max_body_memory_bytes (1000) must be at least upstream.max_body_bytes (2000)"},
		{"negative first byte timeout", "upstream:\n  first_byte_timeout_seconds: -1\n", "upstream.first_byte_timeout_seconds must be 0 (the default, 60) or positive"},
		{"bad type for a limit", "server:\n  max_waiting: lots\n", "line 2:"},
		{"short metrics token", "server:\n  metrics_token: FAKE-short\n", "server.metrics_token must be at least 16 characters"},
		{"bad metrics listen", "server:\n  metrics_listen: localhost\n", `server.metrics_listen "localhost" is not host:port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := writeFile(t, "llmgw.yaml", tt.body)
			_, err := LoadConfig(p)
			wantErr(t, err, p, tt.want)
			if err != nil && strings.Contains(err.Error(), "FAKE") {
				t.Errorf("error shows a key: %v", err)
			}
		})
	}
	_, err := LoadConfig(filepath.Join(t.TempDir(), "missing.yaml"))
	wantErr(t, err, "read config", "missing.yaml")
}

// TestLoadConfig_ZeroLimitsMeanDefaults: a limit set to 0 takes its default.
func TestLoadConfig_ZeroLimitsMeanDefaults(t *testing.T) {
	t.Parallel()
	p := writeFile(t, "llmgw.yaml", `server:
  max_connections: 0
  max_header_bytes: 0
  max_header_count: 0
  body_read_timeout_seconds: 0
  max_body_memory_bytes: 0
  max_waiting: 0
upstream:
  first_byte_timeout_seconds: 0
`)
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(defaultConfig(), cfg, cmpopts.IgnoreUnexported(Config{})); diff != "" {
		t.Errorf("zero limits (-want defaults +got):\n%s", diff)
	}
}

func TestConfig_CommandLineErrors(t *testing.T) {
	t.Parallel()
	p := writeFile(t, "llmgw.yaml", "server:\n  port: 1\n  hots: x\n")
	_, _, err := run(t, "--config", p, "--db", filepath.Join(t.TempDir(), "x.db"), "account", "list")
	wantErr(t, err, "config "+p+": line 3: unknown key \"hots\"")
}

func TestConfig_FlagsOverrideFile(t *testing.T) {
	t.Parallel()
	p := writeFile(t, "llmgw.yaml", "logging:\n  level: error\n  format: text\n  file: /tmp/x.log\n")
	tests := []struct {
		args []string
		want LoggingConfig
	}{
		{nil, LoggingConfig{Level: "info"}},
		{[]string{"--config", p}, LoggingConfig{Level: "error", Format: "text", File: "/tmp/x.log"}},
		{[]string{"--config", p, "--log-level", "debug", "--log-format", "json"}, LoggingConfig{Level: "debug", Format: "json", File: "/tmp/x.log"}},
	}
	for _, tt := range tests {
		app, env := newApp(&bytes.Buffer{}, &bytes.Buffer{})
		if err := app.RunContext(context.Background(), append(append([]string{"llmgw"}, tt.args...), "version")); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, env.cfg.Logging); diff != "" {
			t.Errorf("%v: logging config (-want +got):\n%s", tt.args, diff)
		}
	}
	_, _, err := run(t, "--log-format", "xml", "version")
	wantErr(t, err, `log format "xml" is not text or json`)
}

func TestLoadConfig_EnvironmentOverridesFile(t *testing.T) {
	t.Parallel()
	const env = "http://env.example/x"
	file := writeFile(t, "llmgw.yaml", "server:\n  metrics_token: metrics-file-FAKE-0123456789\n"+
		"logging:\n  file: /file/llmgw.log\n"+
		"upstream:\n  base_url: http://file.example/base\n"+
		"oauth:\n  authorize_url: http://file.example/authorize\n  token_url: http://file.example/token\n")
	// get reads the value a variable overrides through the accessor the
	// commands use; inFile is what the file above sets it to.
	for _, v := range []struct {
		name, inFile, def string
		get               func(*Config) string
	}{
		{baseURLEnv, "http://file.example/base", llmgw.DefaultBaseURL, (*Config).DefaultBaseURL},
		{oauthAuthorizeURLEnv, "http://file.example/authorize", oauth.DefaultAuthorizeURL,
			func(c *Config) string { return c.OAuthConfig().AuthorizeURL }},
		{oauthTokenURLEnv, "http://file.example/token", oauth.DefaultTokenURL,
			func(c *Config) string { return c.OAuthConfig().TokenURL }},
		{metricsTokenEnv, "metrics-file-FAKE-0123456789", "", func(c *Config) string { return c.Server.MetricsToken }},
		{logFileEnv, "/file/llmgw.log", "", func(c *Config) string { return c.Logging.File }},
	} {
		for _, tt := range []struct {
			name string
			path string // the config file; "" is none
			set  bool   // whether the variable is set
			env  string // its value; set but empty counts as unset
			want string
		}{
			{"env and file", file, true, env, env},
			{"file only", file, false, "", v.inFile},
			{"empty env and file", file, true, "", v.inFile},
			{"env only", "", true, env, env},
			{"neither", "", false, "", v.def},
		} {
			t.Run(v.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				cfg, err := loadConfig(tt.path, func(name string) (string, bool) {
					if name == v.name {
						return tt.env, tt.set
					}
					return "", false
				})
				if err != nil {
					t.Fatal(err)
				}
				if got := v.get(cfg); got != tt.want {
					t.Errorf("%s = %q, want %q", v.name, got, tt.want)
				}
			})
		}
	}
}

// TestConfig_Precedence runs the App with each environment variable llmgw
// reads, to check flag > environment > config file > default.
func TestConfig_Precedence(t *testing.T) {
	// Not parallel: sets environment variables.
	for _, name := range []string{"LLMGW_DB", "LLMGW_CONFIG", baseURLEnv, oauthAuthorizeURLEnv, oauthTokenURLEnv, metricsTokenEnv, logFileEnv, listenEnv} {
		t.Setenv(name, "") // restores the caller's value afterwards
		if err := os.Unsetenv(name); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	envFile := writeFile(t, "env.yaml", "logging:\n  level: warn\n")
	flagFile := writeFile(t, "flag.yaml", "logging:\n  level: error\n"+
		"upstream:\n  base_url: http://file.example/base\n"+
		"oauth:\n  authorize_url: http://file.example/authorize\n  token_url: http://file.example/token\n")
	load := func(t *testing.T, args ...string) *appEnv {
		t.Helper()
		app, env := newApp(&bytes.Buffer{}, &bytes.Buffer{})
		if err := app.RunContext(context.Background(), append(append([]string{"llmgw"}, args...), "version")); err != nil {
			t.Fatal(err)
		}
		return env
	}

	t.Run("LLMGW_DB", func(t *testing.T) {
		if got := load(t).dbPath; got != defaultDBPath {
			t.Errorf("default: dbPath = %q, want %q", got, defaultDBPath)
		}
		t.Setenv("LLMGW_DB", filepath.Join(dir, "env.db"))
		if got, want := load(t).dbPath, filepath.Join(dir, "env.db"); got != want {
			t.Errorf("env: dbPath = %q, want %q", got, want)
		}
		if got, want := load(t, "--db", filepath.Join(dir, "flag.db")).dbPath, filepath.Join(dir, "flag.db"); got != want {
			t.Errorf("flag and env: dbPath = %q, want %q", got, want)
		}
	})
	t.Run("LLMGW_CONFIG", func(t *testing.T) {
		if got := load(t).cfg.Logging.Level; got != "info" {
			t.Errorf("default: log level = %q, want info", got)
		}
		t.Setenv("LLMGW_CONFIG", envFile)
		if e := load(t); e.configPath != envFile || e.cfg.Logging.Level != "warn" {
			t.Errorf("env: config %q, log level %q; want %q, warn", e.configPath, e.cfg.Logging.Level, envFile)
		}
		if e := load(t, "--config", flagFile); e.configPath != flagFile || e.cfg.Logging.Level != "error" {
			t.Errorf("flag and env: config %q, log level %q; want %q, error", e.configPath, e.cfg.Logging.Level, flagFile)
		}
	})
	t.Run("LLMGW_OAUTH_*_URL", func(t *testing.T) {
		// No flag sets these two.
		oc := load(t, "--config", flagFile).cfg.OAuthConfig()
		if oc.AuthorizeURL != "http://file.example/authorize" || oc.TokenURL != "http://file.example/token" {
			t.Errorf("file only: %s, %s; want the file's", oc.AuthorizeURL, oc.TokenURL)
		}
		t.Setenv(oauthAuthorizeURLEnv, "http://env.example/authorize")
		t.Setenv(oauthTokenURLEnv, "http://env.example/token")
		oc = load(t, "--config", flagFile).cfg.OAuthConfig()
		if oc.AuthorizeURL != "http://env.example/authorize" || oc.TokenURL != "http://env.example/token" {
			t.Errorf("env and file: %s, %s; want the environment's", oc.AuthorizeURL, oc.TokenURL)
		}
	})
	t.Run(baseURLEnv, func(t *testing.T) {
		db := newDB(t)
		add := func(name string, args ...string) {
			t.Helper()
			mustRun(t, append([]string{"--db", db, "--config", flagFile, "account", "add", "--name", name, "--api-key", testAPIKey}, args...)...)
		}
		add("file")
		t.Setenv(baseURLEnv, "http://env.example/base")
		add("env")
		add("flag", "--base-url", "http://flag.example/base")
		var got []string
		for _, a := range listJSON(t, db) {
			got = append(got, a.Name+" "+a.BaseURL)
		}
		want := []string{"file http://file.example/base", "env http://env.example/base", "flag http://flag.example/base"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("base URLs (-want +got):\n%s", diff)
		}
	})
}

func TestNewLogger(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, closeFn, err := newLogger(LoggingConfig{Level: "warn"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "account", "a1")
	if err := closeFn(); err != nil {
		t.Fatal(err)
	}
	// Not a terminal, so JSON.
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("log output %q is not one JSON record: %v", buf.String(), err)
	}
	if rec["msg"] != "shown" || rec["account"] != "a1" {
		t.Errorf("record = %v", rec)
	}

	file := filepath.Join(t.TempDir(), "llmgw.log")
	log, closeFn, err = newLogger(LoggingConfig{Format: "text", File: file}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("to the file")
	if err := closeFn(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "msg=\"to the file\"") {
		t.Errorf("log file = %q, want a text record", b)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("log file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}

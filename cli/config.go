package cli

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/oauth"
	"github.com/llmgw/llmgw/proxy"
	"github.com/llmgw/llmgw/proxy/anthropic"
)

// Config is the optional YAML configuration file. LoadConfig fills in the
// defaults and puts the environment variables over the file (see envKeys);
// flags given on the command line override what it holds. A Config is built
// once per process and not modified after the command starts.
type Config struct {
	Server   ServerConfig   `yaml:"server"`
	Auth     AuthConfig     `yaml:"auth"`
	Logging  LoggingConfig  `yaml:"logging"`
	Upstream UpstreamConfig `yaml:"upstream"`
	OAuth    OAuthConfig    `yaml:"oauth"`
	Models   ModelsConfig   `yaml:"models"`
	Routing  RoutingConfig  `yaml:"routing"`
	Alerts   AlertsConfig   `yaml:"alerts"`
	// Prices maps a model glob pattern (path.Match, e.g. "claude-opus-4-5*")
	// to its price in USD per million tokens. They take precedence over the
	// catalog's prices; among several matching patterns the longest wins.
	Prices map[string]Price `yaml:"prices"`

	// catalog is the model catalog the file makes: the built-in one with
	// models.catalog and prices applied. validate builds it; see Catalog.
	catalog *anthropic.Catalog
	// location is server.timezone, loaded by validate; see Location.
	location *time.Location
	// trustedProxies is server.trusted_proxies, parsed by validate.
	trustedProxies []netip.Prefix
}

// RoutingConfig tunes how requests are spread over accounts.
type RoutingConfig struct {
	// Affinity keeps a conversation's turns on the account that holds its
	// prompt cache: "on" (the default) or "off".
	Affinity string `yaml:"affinity"`
}

// affinityOff reports whether routing.affinity turns session affinity off.
func (r RoutingConfig) affinityOff() bool { return r.Affinity == "off" || r.Affinity == "false" }

// ServerConfig says where and how long the gateway serves.
type ServerConfig struct {
	Host string `yaml:"host"` // default 127.0.0.1
	Port int    `yaml:"port"` // default 8080; 0 picks a free port
	// TimeoutSeconds bounds upstream waits, waits for an account slot and
	// the shutdown drain. Default 600.
	TimeoutSeconds int `yaml:"timeout_seconds"`
	// MaxConnections caps the client connections open at once; more wait
	// in the kernel's accept queue. 0 (the default) derives it from the
	// open-file limit: see defaultMaxConnections.
	MaxConnections int `yaml:"max_connections"`
	// MaxHeaderBytes bounds a request's header block; more is refused with
	// 431 before any handler runs. Default 64 KiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxHeaderCount bounds the number of request header fields; more is
	// refused with 431. Default 200.
	MaxHeaderCount int `yaml:"max_header_count"`
	// BodyReadTimeoutSeconds bounds the time to read a request body.
	// Default 60.
	BodyReadTimeoutSeconds int `yaml:"body_read_timeout_seconds"`
	// MaxBodyMemoryBytes bounds the memory request bodies take at once
	// across the process (a converted body counts 16 times its size, for
	// its decoded and re-encoded copies); past it requests get 503.
	// Default 512 MiB.
	MaxBodyMemoryBytes int64 `yaml:"max_body_memory_bytes"`
	// MaxWaiting bounds the requests waiting at once for an account slot;
	// past it requests get 503. Default 1024.
	MaxWaiting int `yaml:"max_waiting"`
	// Timezone is where the calendar windows of limits (day, week, month)
	// begin: UTC (the default), Local or an IANA name such as Europe/Berlin.
	Timezone string `yaml:"timezone"`
	// TrustedProxies are the reverse proxies in front of llmgw, as IP
	// addresses or CIDR ranges: only for a connection from one of them does
	// the request log take the client's address from X-Forwarded-For.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// MetricsToken opens GET /metrics on the main listener to scrapers that
	// send it as a Bearer token (a client key never does). At least 16
	// characters; LLMGW_METRICS_TOKEN overrides it. Empty: /metrics answers
	// 404 there.
	MetricsToken string `yaml:"metrics_token"`
	// MetricsListen is an address (host:port) that serves /metrics to
	// anyone who reaches it, without a token: bind it to a private
	// interface. Empty: none.
	MetricsListen string `yaml:"metrics_listen"`
	// SecretKeyFile is the file holding the key that encrypts account
	// secrets; LLMGW_SECRET_KEY_FILE overrides it. Empty: the systemd
	// credential llmgw-secret-key, else the database path plus ".key"
	// (see secretKeySource).
	SecretKeyFile string `yaml:"secret_key_file"`
	// AuthFailuresPerMinute is how many requests with a wrong client key
	// one client address may send per minute before its requests get 429.
	// 0: the default, 20.
	AuthFailuresPerMinute int `yaml:"auth_failures_per_minute"`
	// TLSCertFile and TLSKeyFile, both or neither, serve HTTPS on the
	// listener; SIGHUP reloads them.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
}

// metricsOn reports whether metrics are exposed anywhere, and so
// collected: with neither server.metrics_token nor server.metrics_listen,
// serve collects none.
func (s ServerConfig) metricsOn() bool { return s.MetricsToken != "" || s.MetricsListen != "" }

// AuthConfig holds the static client keys accepted in addition to the ones
// made by "llmgw key create".
type AuthConfig struct {
	APIKeys []StaticKey `yaml:"api_keys"`
}

// StaticKey is a client key from the config file. In YAML it is either a
// plain string (the key, named "static-N" after its 1-based position) or a
// mapping {name, key}. "${ENV}" references in either are expanded; a key
// must be at least 16 characters long.
type StaticKey struct {
	Name string
	Key  string
}

// LoggingConfig configures the process logger.
type LoggingConfig struct {
	Level  string `yaml:"level"`  // debug, info (default), warn or error
	Format string `yaml:"format"` // "text" or "json"; "" picks text on a terminal, json otherwise
	File   string `yaml:"file"`   // "" logs to stderr; otherwise appended to this file (mode 0600)
}

// UpstreamConfig configures how requests reach Anthropic.
type UpstreamConfig struct {
	BaseURL      string `yaml:"base_url"`       // default base URL for new accounts; see DefaultBaseURL
	MaxAttempts  int    `yaml:"max_attempts"`   // accounts tried per request, default 3
	MaxBodyBytes int64  `yaml:"max_body_bytes"` // request body limit, default 32 MiB
	// FirstByteTimeoutSeconds bounds the wait for a streamed answer's
	// headers and first content; past it the attempt fails over. Default 60.
	FirstByteTimeoutSeconds int `yaml:"first_byte_timeout_seconds"`
}

// ModelsConfig holds model-name settings for converted clients and the
// models added to or changed in the built-in catalog.
type ModelsConfig struct {
	// Aliases map names that OpenAI or Gemini clients insist on (gpt-4o) to
	// Anthropic model ids (claude-sonnet-4-5). Names not listed pass through
	// unchanged.
	Aliases map[string]string `yaml:"aliases"`
	// Catalog adds models to the built-in catalog, or changes built-in ones
	// (see CatalogEntry).
	Catalog []CatalogEntry `yaml:"catalog"`
}

// OAuthConfig overrides the Claude Code OAuth endpoints and the refresh
// lead. Empty values keep the real Claude Code values. The
// LLMGW_OAUTH_AUTHORIZE_URL and LLMGW_OAUTH_TOKEN_URL environment variables
// override the two URLs of the file. Only tests and private deployments need
// it.
type OAuthConfig struct {
	AuthorizeURL string   `yaml:"authorize_url"`
	TokenURL     string   `yaml:"token_url"`
	ClientID     string   `yaml:"client_id"`
	RedirectURI  string   `yaml:"redirect_uri"` // the manual-paste redirect; login --listen replaces it
	Scopes       []string `yaml:"scopes"`
	// RefreshLeadSeconds is how long before expiry the server refreshes a
	// token; 0 means the smaller of 30 minutes and half its lifetime.
	RefreshLeadSeconds int `yaml:"refresh_lead_seconds"`
}

// Price is what a model costs, in USD per million tokens. In YAML the fields
// are input, output, cache_read, cache_write_5m and cache_write_1h; omitted
// cache prices are derived from the input price as Anthropic does: reads cost
// 0.1×, 5-minute writes 1.25× and 1-hour writes 2× the input price.
type Price struct {
	Input        float64
	Output       float64
	CacheRead    float64
	CacheWrite5m float64
	CacheWrite1h float64
}

// Defaults.
const (
	defaultHost           = "127.0.0.1"
	defaultPort           = 8080
	defaultTimeoutSeconds = 600
	defaultLogLevel       = "info"
	defaultMaxAttempts    = 3
	defaultMaxBodyBytes   = 32 << 20
	minStaticKeyLen       = 16

	defaultMaxHeaderBytes          = 64 << 10 // Go's own default is 1 MiB
	defaultMaxHeaderCount          = 200
	defaultBodyReadTimeoutSeconds  = 60
	defaultMaxBodyMemoryBytes      = 512 << 20
	defaultMaxWaiting              = 1024
	defaultFirstByteTimeoutSeconds = 60
)

// The environment variables that override config file keys.
const (
	baseURLEnv           = "LLMGW_ANTHROPIC_BASE_URL"  // upstream.base_url
	oauthAuthorizeURLEnv = "LLMGW_OAUTH_AUTHORIZE_URL" // oauth.authorize_url
	oauthTokenURLEnv     = "LLMGW_OAUTH_TOKEN_URL"     // oauth.token_url
	metricsTokenEnv      = "LLMGW_METRICS_TOKEN"       // server.metrics_token
	logFileEnv           = "LLMGW_LOG_FILE"            // logging.file
)

// envKeys maps each environment variable to the config key it overrides.
// The order is flag > environment > config file > default: a set, non-empty
// variable replaces the file's value, and flags (account add --base-url)
// replace both. LLMGW_DB and LLMGW_CONFIG have no file key; urfave gives
// their flags precedence (app.go), as it gives serve's --listen over
// LLMGW_LISTEN, which stands for server.host and server.port (serve.go).
var envKeys = []struct {
	name string
	key  func(*Config) *string
}{
	{baseURLEnv, func(c *Config) *string { return &c.Upstream.BaseURL }},
	{oauthAuthorizeURLEnv, func(c *Config) *string { return &c.OAuth.AuthorizeURL }},
	{oauthTokenURLEnv, func(c *Config) *string { return &c.OAuth.TokenURL }},
	{metricsTokenEnv, func(c *Config) *string { return &c.Server.MetricsToken }},
	{logFileEnv, func(c *Config) *string { return &c.Logging.File }},
}

// applyEnv puts each environment variable of envKeys that lookup finds set
// and non-empty over its config key. The values are not validated, as
// before they could override the file.
func (c *Config) applyEnv(lookup func(string) (string, bool)) {
	for _, e := range envKeys {
		if v, ok := lookup(e.name); ok && v != "" {
			*e.key(c) = v
		}
	}
}

func defaultConfig() *Config {
	return &Config{
		Server: ServerConfig{
			Host:                   defaultHost,
			Port:                   defaultPort,
			TimeoutSeconds:         defaultTimeoutSeconds,
			MaxHeaderBytes:         defaultMaxHeaderBytes,
			MaxHeaderCount:         defaultMaxHeaderCount,
			BodyReadTimeoutSeconds: defaultBodyReadTimeoutSeconds,
			MaxBodyMemoryBytes:     defaultMaxBodyMemoryBytes,
			MaxWaiting:             defaultMaxWaiting,
		},
		Logging: LoggingConfig{Level: defaultLogLevel},
		Alerts:  AlertsConfig{WindowThreshold: proxy.DefaultWindowThreshold},
		Upstream: UpstreamConfig{
			MaxAttempts:             defaultMaxAttempts,
			MaxBodyBytes:            defaultMaxBodyBytes,
			FirstByteTimeoutSeconds: defaultFirstByteTimeoutSeconds,
		},
	}
}

// LoadConfig reads the YAML config file at path over the defaults, then the
// environment variables of envKeys over the file. An empty path reads no
// file. Unknown keys, bad values and unset "${ENV}" variables in static keys
// are errors that name the file and line.
func LoadConfig(path string) (*Config, error) {
	return loadConfig(path, os.LookupEnv)
}

// loadConfig is LoadConfig with the environment's lookup passed in.
func loadConfig(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	cfg, err := readConfig(path)
	if err != nil {
		return nil, err
	}
	cfg.applyEnv(lookupEnv)
	return cfg, nil
}

// readConfig reads the YAML config file at path over the defaults; an empty
// path returns the defaults.
func readConfig(path string) (*Config, error) {
	cfg := defaultConfig()
	if path == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config %s: %w", path, yamlError(err))
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// unknownField matches yaml.v3's message for a key that KnownFields rejects.
var unknownField = regexp.MustCompile(`^line (\d+): field (\S+) not found in type \S+$`)

// yamlError rewrites yaml.v3's multi-line type errors into one line that
// names keys rather than Go types. Other errors pass through.
func yamlError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		if sub := unknownField.FindStringSubmatch(m); sub != nil {
			m = fmt.Sprintf("line %s: unknown key %q", sub[1], sub[2])
		}
		msgs[i] = m
	}
	// A new error on purpose: the TypeError's own text is the multi-line one
	// being replaced, and no caller tests for it.
	return errors.New(strings.Join(msgs, "; "))
}

// minMetricsTokenLen is the shortest server.metrics_token accepted, as for
// static client keys.
const minMetricsTokenLen = 16

// validateMetrics checks server.metrics_token and server.metrics_listen.
// The token is never shown.
func (s ServerConfig) validateMetrics() error {
	if s.MetricsToken != "" && len(s.MetricsToken) < minMetricsTokenLen {
		return fmt.Errorf("server.metrics_token must be at least %d characters", minMetricsTokenLen)
	}
	if s.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(s.MetricsListen); err != nil || port == "" {
			return fmt.Errorf("server.metrics_listen %q is not host:port", s.MetricsListen)
		}
	}
	return nil
}

// validate checks values and fills in derived ones (static key names).
func (c *Config) validate() error {
	if c.Server.Port < 0 || c.Server.Port > 65535 {
		return fmt.Errorf("server.port %d is out of range 0-65535", c.Server.Port)
	}
	if c.Server.TimeoutSeconds <= 0 {
		return fmt.Errorf("server.timeout_seconds must be positive, not %d", c.Server.TimeoutSeconds)
	}
	if c.Upstream.MaxAttempts < 1 {
		return fmt.Errorf("upstream.max_attempts must be at least 1, not %d", c.Upstream.MaxAttempts)
	}
	if c.Upstream.MaxBodyBytes <= 0 {
		return fmt.Errorf("upstream.max_body_bytes must be positive, not %d", c.Upstream.MaxBodyBytes)
	}
	if err := c.validateLimits(); err != nil {
		return err
	}
	if err := c.Server.validateMetrics(); err != nil {
		return err
	}
	if err := c.Server.validateTLS(); err != nil {
		return err
	}
	loc, err := time.LoadLocation(cmp.Or(c.Server.Timezone, "UTC"))
	if err != nil {
		return fmt.Errorf("server.timezone %q is not UTC, Local or an IANA zone name such as Europe/Berlin", c.Server.Timezone)
	}
	c.location = loc
	switch c.Routing.Affinity {
	case "", "on", "off", "true", "false":
	default:
		return fmt.Errorf("routing.affinity %q is not on or off", c.Routing.Affinity)
	}
	if err := c.Logging.validate(); err != nil {
		return err
	}
	if c.trustedProxies, err = parsePrefixes(c.Server.TrustedProxies); err != nil {
		return err
	}
	if err := c.Alerts.validate(os.LookupEnv); err != nil {
		return err
	}
	for from, to := range c.Models.Aliases {
		if strings.TrimSpace(from) == "" || strings.TrimSpace(to) == "" {
			return fmt.Errorf("models.aliases: %q: %q: neither name may be empty", from, to)
		}
	}
	if err := c.OAuth.validate(); err != nil {
		return err
	}
	names := make(map[string]bool)
	keys := make(map[string]bool)
	for i := range c.Auth.APIKeys {
		k := &c.Auth.APIKeys[i]
		if k.Name == "" {
			k.Name = "static-" + strconv.Itoa(i+1)
		}
		if names[k.Name] {
			return fmt.Errorf("auth.api_keys: name %q is used twice", k.Name)
		}
		if keys[k.Key] {
			// Name the entry, never the key.
			return fmt.Errorf("auth.api_keys: key %q repeats an earlier key", k.Name)
		}
		names[k.Name], keys[k.Key] = true, true
	}
	for pattern, p := range c.Prices {
		if _, err := path.Match(pattern, ""); err != nil {
			return fmt.Errorf("prices: pattern %q is malformed: %w", pattern, err)
		}
		if p.Input < 0 || p.Output < 0 || p.CacheRead < 0 || p.CacheWrite5m < 0 || p.CacheWrite1h < 0 {
			return fmt.Errorf("prices: %q has a negative price", pattern)
		}
	}
	cat, err := buildCatalog(c.Models.Catalog, c.Prices)
	if err != nil {
		return err
	}
	c.catalog = cat
	return nil
}

// Catalog returns the model catalog: the built-in one, with the models of
// models.catalog added or changed, and the prices patterns over every
// model's price. The proxy lists it, fits converted requests to it, and
// usage report prices with it. It is built once, when the file is read.
func (c *Config) Catalog() *anthropic.Catalog {
	if c.catalog != nil {
		return c.catalog
	}
	// A Config not read from a file (the defaults) has no models.catalog.
	return anthropic.Builtin().WithPrices(catalogPrices(c.Prices))
}

// validateLimits checks the bounds of the server and upstream sections and
// puts the default in place of each 0. server.max_connections stays 0: its
// default depends on the process (see defaultMaxConnections).
func (c *Config) validateLimits() error {
	if c.Server.AuthFailuresPerMinute < 0 {
		return fmt.Errorf("server.auth_failures_per_minute must be 0 (the default, %d) or positive, not %d",
			proxy.DefaultAuthFailuresPerMinute, c.Server.AuthFailuresPerMinute)
	}
	if c.Server.MaxConnections < 0 {
		return fmt.Errorf("server.max_connections must be 0 (derived from the open-file limit) or positive, not %d", c.Server.MaxConnections)
	}
	for _, l := range []struct {
		key string
		val *int
		def int
	}{
		{"server.max_header_bytes", &c.Server.MaxHeaderBytes, defaultMaxHeaderBytes},
		{"server.max_header_count", &c.Server.MaxHeaderCount, defaultMaxHeaderCount},
		{"server.body_read_timeout_seconds", &c.Server.BodyReadTimeoutSeconds, defaultBodyReadTimeoutSeconds},
		{"server.max_waiting", &c.Server.MaxWaiting, defaultMaxWaiting},
		{"upstream.first_byte_timeout_seconds", &c.Upstream.FirstByteTimeoutSeconds, defaultFirstByteTimeoutSeconds},
	} {
		switch {
		case *l.val < 0:
			return fmt.Errorf("%s must be 0 (the default, %d) or positive, not %d", l.key, l.def, *l.val)
		case *l.val == 0:
			*l.val = l.def
		}
	}
	switch mem := &c.Server.MaxBodyMemoryBytes; {
	case *mem < 0:
		return fmt.Errorf("server.max_body_memory_bytes must be 0 (the default, %d) or positive, not %d", defaultMaxBodyMemoryBytes, *mem)
	case *mem == 0:
		*mem = defaultMaxBodyMemoryBytes
	}
	if c.Server.MaxBodyMemoryBytes < c.Upstream.MaxBodyBytes {
		// Else a body of the allowed size could never be held.
		return fmt.Errorf("server.max_body_memory_bytes (%d) must be at least upstream.max_body_bytes (%d)",
			c.Server.MaxBodyMemoryBytes, c.Upstream.MaxBodyBytes)
	}
	return nil
}

// validate checks the level and format names.
func (l LoggingConfig) validate() error {
	if _, err := parseLevel(l.Level); err != nil {
		return err
	}
	switch l.Format {
	case "", "text", "json":
		return nil
	}
	return fmt.Errorf("log format %q is not text or json", l.Format)
}

// validate checks the URLs, scopes and lead of the oauth section.
func (o OAuthConfig) validate() error {
	for _, u := range []struct{ key, val string }{
		{"oauth.authorize_url", o.AuthorizeURL}, {"oauth.token_url", o.TokenURL}, {"oauth.redirect_uri", o.RedirectURI},
	} {
		if u.val != "" && !httpURL(u.val) {
			return fmt.Errorf("%s %q must be an http or https URL", u.key, u.val)
		}
	}
	for _, sc := range o.Scopes {
		if sc == "" || strings.ContainsAny(sc, " \t\r\n") {
			return fmt.Errorf("oauth.scopes: %q must be one scope, without spaces", sc)
		}
	}
	if o.RefreshLeadSeconds < 0 {
		return fmt.Errorf("oauth.refresh_lead_seconds must be 0 (automatic) or more, not %d", o.RefreshLeadSeconds)
	}
	return nil
}

// httpURL reports whether s is an absolute http or https URL.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// OAuthConfig returns the OAuth settings: each value from the oauth section
// (the config file, with LLMGW_OAUTH_AUTHORIZE_URL and LLMGW_OAUTH_TOKEN_URL
// over its two URLs) if set, else the real Claude Code values
// (oauth.DefaultConfig). Command-line flags (login --listen) apply on top.
// HTTPClient, Now and Logger are left for the caller to set.
func (c *Config) OAuthConfig() oauth.Config {
	oc := oauth.DefaultConfig()
	o := c.OAuth
	if o.AuthorizeURL != "" {
		oc.AuthorizeURL = o.AuthorizeURL
	}
	if o.TokenURL != "" {
		oc.TokenURL = o.TokenURL
	}
	if o.ClientID != "" {
		oc.ClientID = o.ClientID
	}
	if o.RedirectURI != "" {
		oc.RedirectURI = o.RedirectURI
	}
	if len(o.Scopes) > 0 {
		oc.Scopes = slices.Clone(o.Scopes)
	}
	oc.RefreshLead = time.Duration(o.RefreshLeadSeconds) * time.Second
	return oc
}

// Listen returns the address the server listens on, host:port.
func (c *Config) Listen() string {
	return net.JoinHostPort(c.Server.Host, strconv.Itoa(c.Server.Port))
}

// parsePrefixes parses server.trusted_proxies: each an IP address (a
// single-address range) or a CIDR range.
func parsePrefixes(in []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(in))
	for _, s := range in {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("server.trusted_proxies: %q is not an IP address or a CIDR range such as 10.0.0.0/8", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// TrustedProxies returns server.trusted_proxies as address ranges.
func (c *Config) TrustedProxies() []netip.Prefix { return c.trustedProxies }

// Location returns server.timezone, where the calendar windows of limits
// begin.
func (c *Config) Location() *time.Location {
	if c.location == nil {
		return time.UTC
	}
	return c.location
}

// Timeout returns server.timeout_seconds as a duration.
func (c *Config) Timeout() time.Duration {
	return time.Duration(c.Server.TimeoutSeconds) * time.Second
}

// BodyReadTimeout returns server.body_read_timeout_seconds as a duration.
func (c *Config) BodyReadTimeout() time.Duration {
	return time.Duration(c.Server.BodyReadTimeoutSeconds) * time.Second
}

// FirstByteTimeout returns upstream.first_byte_timeout_seconds as a
// duration.
func (c *Config) FirstByteTimeout() time.Duration {
	return time.Duration(c.Upstream.FirstByteTimeoutSeconds) * time.Second
}

// DefaultBaseURL returns the base URL new accounts get when --base-url is
// not given: the LLMGW_ANTHROPIC_BASE_URL environment variable, else
// upstream.base_url from the config file, else llmgw.DefaultBaseURL.
func (c *Config) DefaultBaseURL() string {
	if c.Upstream.BaseURL != "" {
		return c.Upstream.BaseURL // the environment's, if set: see applyEnv
	}
	return llmgw.DefaultBaseURL
}

// UnmarshalYAML decodes a static key from a string or a {name, key} mapping.
func (k *StaticKey) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		key, err := expandEnv(n.Value, os.LookupEnv)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		k.Key = key
	case yaml.MappingNode:
		err := eachField(n, []string{"name", "key"}, func(name string, v *yaml.Node) error {
			if v.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: %s must be a string", v.Line, name)
			}
			s, err := expandEnv(v.Value, os.LookupEnv)
			if err != nil {
				return fmt.Errorf("line %d: %w", v.Line, err)
			}
			if name == "name" {
				k.Name = s
			} else {
				k.Key = s
			}
			return nil
		})
		if err != nil {
			return err
		}
	default:
		return fmt.Errorf("line %d: an api_keys entry must be a key or {name, key}", n.Line)
	}
	if len(k.Key) < minStaticKeyLen {
		// Never echo the key, not even a short one.
		return fmt.Errorf("line %d: api key must be at least %d characters long", n.Line, minStaticKeyLen)
	}
	if strings.ContainsAny(k.Name, " \t\r\n") {
		return fmt.Errorf("line %d: api key name %q must not contain spaces", n.Line, k.Name)
	}
	return nil
}

// UnmarshalYAML decodes a price and derives omitted cache prices.
func (p *Price) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a price must be a mapping {input, output, ...}", n.Line)
	}
	var read, w5, w1 *float64
	seen := map[string]bool{}
	err := eachField(n, []string{"input", "output", "cache_read", "cache_write_5m", "cache_write_1h"}, func(name string, v *yaml.Node) error {
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: %s must be a number", v.Line, name)
		}
		f, err := strconv.ParseFloat(v.Value, 64)
		if err != nil {
			return fmt.Errorf("line %d: %s must be a number, not %q", v.Line, name, v.Value)
		}
		seen[name] = true
		switch name {
		case "input":
			p.Input = f
		case "output":
			p.Output = f
		case "cache_read":
			read = &f
		case "cache_write_5m":
			w5 = &f
		case "cache_write_1h":
			w1 = &f
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !seen["input"] || !seen["output"] {
		return fmt.Errorf("line %d: a price needs input and output", n.Line)
	}
	*p = derivePrice(p.Input, p.Output)
	if read != nil {
		p.CacheRead = *read
	}
	if w5 != nil {
		p.CacheWrite5m = *w5
	}
	if w1 != nil {
		p.CacheWrite1h = *w1
	}
	return nil
}

// eachField calls fn for each key of mapping n, rejecting keys not in known
// and repeated keys with their line. yaml.v3 drops KnownFields inside custom
// unmarshalers, so they check keys with this.
func eachField(n *yaml.Node, known []string, fn func(name string, v *yaml.Node) error) error {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !slices.Contains(known, k.Value) {
			return fmt.Errorf("line %d: unknown field %q (known: %s)", k.Line, k.Value, strings.Join(known, ", "))
		}
		if at, ok := seen[k.Value]; ok {
			return fmt.Errorf("line %d: field %q repeats line %d", k.Line, k.Value, at)
		}
		seen[k.Value] = k.Line
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		if err := fn(k.Value, v); err != nil {
			return err
		}
	}
	return nil
}

// envRef matches a "${NAME}" reference. Only the braced form is expanded, so
// a secret that happens to contain "$" survives.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces each "${NAME}" in s with the variable's value. An unset
// variable is an error naming it; no value is ever shown.
func expandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	var missing string
	out := envRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		v, ok := lookup(name)
		if !ok && missing == "" {
			missing = name
		}
		return v
	})
	if missing != "" {
		return "", fmt.Errorf("environment variable %s is not set", missing)
	}
	return out, nil
}

// parseLevel parses a log level name; "" is info.
func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if s == "" {
		return slog.LevelInfo, nil
	}
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log level %q is not debug, info, warn or error", s)
	}
	return l, nil
}

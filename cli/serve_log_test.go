package cli

import (
	"context"
	"regexp"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/llmgw/llmgw/proxy/upstreamtest"
)

// server.trusted_proxies reaches the request log: behind a trusted proxy
// the client is X-Forwarded-For's, and its User-Agent is logged.
func TestServe_LogLineClientBehindTrustedProxy(t *testing.T) {
	up := upstreamtest.NewServer(t)
	db := newDB(t)
	mustRun(t, "--db", db, "account", "add", "--name", "a", "--api-key", "sk-ant-aaaaaaaaaaaaaaaa", "--base-url", up.URL)
	key := createKey(t, db, "alice")
	config := writeFile(t, "llmgw.yaml", "server:\n  trusted_proxies: [127.0.0.1]\n")
	srv := startServe(t, db, "--config", config)
	c := sdk(srv.URL, key)
	if _, err := c.Messages.New(context.Background(), hello(),
		option.WithHeader("X-Forwarded-For", "198.51.100.1, 203.0.113.9"), option.WithHeader("User-Agent", "curl/8.0")); err != nil {
		t.Fatal(err)
	}
	srv.stderr.await(t, regexp.MustCompile(`"msg":"request".*"client":"203\.0\.113\.9","user_agent":"curl/8\.0"`))
}

// Command llmgw is an Anthropic API gateway over a pool of accounts.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/llmgw/llmgw/cli"
)

var version = "dev" // set with -ldflags "-X main.version=..."

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	app := cli.New(os.Stdout, os.Stderr)
	app.Version = version
	err := app.RunContext(ctx, os.Args)
	if stop(); err != nil { // stop restores default signal handling
		fmt.Fprintf(os.Stderr, "llmgw: %v\n", err)
		os.Exit(1)
	}
}

package cli

import (
	"os"
	"testing"

	"github.com/llmgw/llmgw/store/storetest"
)

// TestMain stops the PostgreSQL cluster that storetest.Postgres started,
// if any.
func TestMain(m *testing.M) {
	code := m.Run()
	storetest.StopPostgres()
	os.Exit(code)
}

package proxy

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the request path away from the database: nothing under
// proxy/ may import the store, database/sql or SQLite.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case dep == "database/sql", strings.HasPrefix(dep, "modernc.org/sqlite"),
			dep == "github.com/llmgw/llmgw/store", dep == "github.com/llmgw/llmgw/migrations",
			dep == "github.com/llmgw/llmgw/cli":
			t.Errorf("proxy depends on %s", dep)
		}
	}
}

package migrations_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite"

	"github.com/llmgw/llmgw/migrations"
)

// TestMigrations_UpDownUp checks that every migration applies, reverts
// cleanly (Down leaves no tables behind) and applies again.
func TestMigrations_UpDownUp(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "m.db")+"?_pragma=foreign_keys(on)")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	}()
	p, err := goose.NewProvider(goose.DialectSQLite3, db, migrations.FS, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.ListSources()) == 0 {
		t.Fatal("no migrations embedded")
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 0); err != nil {
		t.Fatal(err)
	}
	var n int
	err = db.QueryRowContext(ctx, `
		SELECT count(*) FROM sqlite_schema
		WHERE type IN ('table', 'index', 'trigger') AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name != ?`,
		goose.DefaultTablename).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d schema objects left after migrating down, want 0", n)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("Up after Down: %v", err)
	}
}

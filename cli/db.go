package cli

import (
	"fmt"
	"path/filepath"

	urfave "github.com/urfave/cli/v2"
)

func dbCommand(env *appEnv) *urfave.Command {
	return groupCommand("db", "manage the database schema",
		`The database is one SQLite file, or a PostgreSQL database given as a
postgres:// URL (--db, env LLMGW_DB). Its schema changes only through
migrations embedded in the binary.

Example:
  llmgw --db /var/lib/llmgw/llmgw.db db migrate
  llmgw db status`,
		&urfave.Command{
			Name:      "migrate",
			Usage:     "create the database or apply its pending migrations",
			UsageText: "llmgw db migrate",
			Description: `Creates the database file if it does not exist (readable by its owner only) and
applies every pending migration, printing each one. Then it encrypts any
account secrets stored in plain text, creating the key file next to the
database (the database path plus ".key", mode 0600) if no key is configured
and none exists yet. Safe to run repeatedly.

Example:
  llmgw db migrate`,
			Action: func(c *urfave.Context) error {
				if err := noArgs(c); err != nil {
					return err
				}
				return env.dbMigrate(c)
			},
		},
		&urfave.Command{
			Name:      "status",
			Usage:     "list migrations and whether each is applied",
			UsageText: "llmgw db status [--json]",
			Description: `Lists every migration the binary knows and when it was applied. Exits
non-zero when any is pending, so that scripts can check before "serve".
--json prints {"version", "pending", "migrations": [{"version", "name",
"applied_at"}]}, applied_at null for a pending one.

Example:
  llmgw db status
  llmgw db status --json | jq .pending`,
			Flags: []urfave.Flag{&urfave.BoolFlag{Name: "json", Usage: "print one JSON document"}},
			Action: func(c *urfave.Context) error {
				if err := noArgs(c); err != nil {
					return err
				}
				return env.dbStatus(c)
			},
		},
		dbBackupCommand(env),
		rotateKeyCommand(env),
		dbCopyCommand(env),
	)
}

func (e *appEnv) dbMigrate(c *urfave.Context) (err error) {
	db, err := e.openAny(c.Context)
	if err != nil {
		return err
	}
	defer closeDB(db, &err)
	results, merr := db.Migrate(c.Context)
	// Report what was applied even when a later migration failed.
	for _, r := range results {
		if r == nil || r.Source == nil || r.Error != nil {
			continue
		}
		if _, err := fmt.Fprintf(c.App.Writer, "applied %d %s\n", r.Source.Version, filepath.Base(r.Source.Path)); err != nil {
			return err
		}
	}
	if merr != nil {
		return merr // the store's errors name the file
	}
	if err := e.migrateSecrets(c.Context, db); err != nil {
		return err
	}
	if len(results) == 0 {
		_, err = fmt.Fprintln(c.App.Writer, "database is up to date")
	}
	return err
}

func (e *appEnv) dbStatus(c *urfave.Context) (err error) {
	db, err := e.openExisting(c.Context)
	if err != nil {
		return err
	}
	defer closeDB(db, &err)
	status, err := db.MigrationStatus(c.Context)
	if err != nil {
		return err // the store's errors name the file
	}
	if c.Bool("json") {
		err = writeJSON(c.App.Writer, newDBStatusJSON(status))
	} else {
		err = writeDBStatus(c.App.Writer, status)
	}
	if err != nil {
		return err
	}
	if n := pendingCount(status); n > 0 {
		return fmt.Errorf("database %s has %d pending %s: run \"llmgw db migrate\"",
			e.dbName(), n, plural(n, "migration", "migrations"))
	}
	return nil
}

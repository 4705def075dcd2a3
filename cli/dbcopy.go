package cli

import (
	"errors"
	"fmt"
	"path/filepath"

	urfave "github.com/urfave/cli/v2"

	"github.com/llmgw/llmgw/store"
)

func dbCopyCommand(env *appEnv) *urfave.Command {
	return &urfave.Command{
		Name:      "copy",
		Usage:     "copy a whole database to a new SQLite file or PostgreSQL database",
		UsageText: "llmgw db copy --from SRC --to DST [--to-key-file FILE]",
		Description: `Copies every account (with its OAuth tokens, owner keys, limits, state and
subscription windows), account statistics, client key and request-log row from
SRC to DST, keeping their ids, in one transaction on DST. Each of SRC and DST
is an SQLite file or a postgres:// URL, so this moves an SQLite pool to
PostgreSQL and back. Server status rows are not copied.

SRC must be migrated; its secret key is found as for --db SRC. DST is created
and migrated if needed, and must hold no accounts, keys, statistics or usage:
a non-empty DST is refused. Its key is --to-key-file, else the key --db DST
would use: a configured one (LLMGW_SECRET_KEY_FILE, server.secret_key_file,
the systemd credential), else for a file DST.key, created if missing. A
PostgreSQL DST with no configured key needs --to-key-file. Secrets are
decrypted with SRC's key and encrypted with DST's. New ids in DST continue
past the highest one SRC handed out. Stop the server on SRC first: writes
after the copy starts are not copied.

Example:
  llmgw db copy --from ./llmgw.db --to postgres://llmgw@db.internal/llmgw --to-key-file /etc/llmgw/secret.key
  LLMGW_SECRET_KEY_FILE=/etc/llmgw/secret.key llmgw db copy --from postgres://llmgw@db.internal/llmgw --to ./back.db`,
		Flags: []urfave.Flag{
			&urfave.StringFlag{Name: "from", Usage: "the database to copy: an SQLite file or a postgres:// URL", Required: true},
			&urfave.StringFlag{Name: "to", Usage: "the new database: an SQLite file or a postgres:// URL", Required: true},
			&urfave.StringFlag{Name: "to-key-file", Usage: "the secret key `FILE` for the new database"},
		},
		Action: func(c *urfave.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			return env.dbCopy(c)
		},
	}
}

func (e *appEnv) dbCopy(c *urfave.Context) (err error) {
	ctx := c.Context
	from, to := c.String("from"), c.String("to")
	if from == to || !store.IsPostgresURL(from) && !store.IsPostgresURL(to) && filepath.Clean(from) == filepath.Clean(to) {
		return errors.New("--from and --to name the same database")
	}
	// The source and the target each resolve their key as --db would.
	srcEnv, dstEnv := *e, *e
	srcEnv.dbPath = from
	dstEnv.dbPath, dstEnv.keyFile = to, c.String("to-key-file")

	// Know the target's key before writing anything.
	dstKey := dstEnv.secretKeySource()
	if dstKey.postgres {
		return fmt.Errorf("no secret key for %s: pass --to-key-file FILE (a new key: \"openssl rand -base64 32 > FILE; chmod 600 FILE\"), or set %s", dstEnv.dbName(), secretKeyFileEnv)
	}
	if !dstKey.managed {
		_, err := readSecretKey(dstKey)
		switch {
		case errors.Is(err, errKeyMissing) && dstEnv.keyFile != "":
			return fmt.Errorf("no secret key: %s does not exist: create a new key with \"openssl rand -base64 32 > FILE; chmod 600 FILE\"", dstKey)
		case errors.Is(err, errKeyMissing):
			return dstEnv.missingKeyError(dstKey)
		case err != nil:
			return err
		}
	}

	src, err := srcEnv.openDB(ctx) // migrated, and its key opens its secrets
	if err != nil {
		return err
	}
	defer closeDB(src, &err)
	dst, err := dstEnv.openAny(ctx)
	if err != nil {
		return err
	}
	defer closeDB(dst, &err)
	n, err := dst.Pending(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		res, err := dst.Migrate(ctx)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(e.stderr, "migrated %s: applied %d %s\n", dstEnv.dbName(), len(res), plural(len(res), "migration", "migrations")); err != nil {
			return err
		}
	}
	if err := dst.CheckCopyTarget(ctx); err != nil {
		return err
	}
	// Sets the target's key, creating DST.key if it is the default and
	// missing, and writes its key check.
	if err := dstEnv.migrateSecrets(ctx, dst); err != nil {
		return err
	}
	stats, err := store.Copy(ctx, src, dst)
	if err != nil {
		return err
	}

	w := c.App.Writer
	if _, err := fmt.Fprintf(w, "copied %s to %s\n", srcEnv.dbName(), dstEnv.dbName()); err != nil {
		return err
	}
	t := newTable(w)
	t.row("TABLE\tROWS\n")
	for _, r := range stats.Tables {
		t.row("%s\t%d\n", r.Table, r.Rows)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "re-encrypted %d account %s with the key from %s\n", stats.Secrets, plural(stats.Secrets, "secret", "secrets"), dstKey)
	return err
}

package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	urfave "github.com/urfave/cli/v2"
)

func dbBackupCommand(env *appEnv) *urfave.Command {
	return &urfave.Command{
		Name:      "backup",
		Usage:     "write a consistent copy of the database to a file",
		UsageText: "llmgw db backup [--force] FILE",
		Description: `Writes a consistent copy of the database to FILE (mode 0600) with SQLite's
VACUUM INTO. It is safe while "llmgw serve" runs: the copy is one snapshot,
and the server goes on writing. FILE must not exist unless --force is given;
the copy is written next to it and renamed over it only once complete.

To restore: stop serve, copy the backup over the database file (removing any
-wal and -shm files next to it), and start serve again.

Example:
  llmgw db backup /var/backups/llmgw-$(date +%F).db
  llmgw db backup --force /var/backups/llmgw-latest.db`,
		Flags: []urfave.Flag{
			&urfave.BoolFlag{Name: "force", Usage: "replace FILE if it exists"},
		},
		Action: func(c *urfave.Context) error {
			file, err := oneArg(c, "backup file")
			if err != nil {
				return err
			}
			return env.dbBackup(c, file, c.Bool("force"))
		},
	}
}

func (e *appEnv) dbBackup(c *urfave.Context, file string, force bool) (err error) {
	if _, err := os.Lstat(file); err == nil && !force {
		return fmt.Errorf("%s exists: pass --force to replace it", file)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("backup file: %w", err)
	}
	db, err := e.openExisting(c.Context)
	if err != nil {
		return err
	}
	defer closeDB(db, &err)

	// Write next to FILE and rename, so that a failed backup never leaves a
	// half-written FILE or destroys the one --force replaces. The temporary
	// name comes from CreateTemp; Backup wants a name that does not exist.
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return fmt.Errorf("backup file: %w", err)
	}
	tmpName := tmp.Name()
	if err := errors.Join(tmp.Close(), os.Remove(tmpName)); err != nil {
		return fmt.Errorf("backup file: %w", err)
	}
	if err := db.Backup(c.Context, tmpName); err != nil {
		return err // Backup removed tmpName and named both files
	}
	if err := os.Rename(tmpName, file); err != nil {
		return errors.Join(fmt.Errorf("backup file: %w", err), os.Remove(tmpName))
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		abs = file
	}
	_, err = fmt.Fprintf(c.App.Writer, "backed up %s to %s\n", e.dbName(), abs)
	return err
}

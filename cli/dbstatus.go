package cli

import (
	"io"
	"path/filepath"

	"github.com/pressly/goose/v3"
)

// dbStatusJSON is "llmgw db status --json".
type dbStatusJSON struct {
	Version    int64           `json:"version"` // the highest applied migration, 0 for none
	Pending    int             `json:"pending"`
	Migrations []migrationJSON `json:"migrations"`
}

type migrationJSON struct {
	Version   int64   `json:"version"`
	Name      string  `json:"name"`
	AppliedAt *string `json:"applied_at"` // null while pending
}

func newDBStatusJSON(status []*goose.MigrationStatus) dbStatusJSON {
	out := dbStatusJSON{Pending: pendingCount(status), Migrations: []migrationJSON{}}
	for _, s := range status {
		m := migrationJSON{Version: s.Source.Version, Name: filepath.Base(s.Source.Path)}
		if s.State == goose.StateApplied {
			m.AppliedAt = jsonTime(s.AppliedAt)
			out.Version = max(out.Version, s.Source.Version)
		}
		out.Migrations = append(out.Migrations, m)
	}
	return out
}

func writeDBStatus(w io.Writer, status []*goose.MigrationStatus) error {
	tw := newTable(w)
	tw.row("VERSION\tFILE\tAPPLIED AT\n")
	for _, s := range status {
		applied := "pending"
		if s.State == goose.StateApplied {
			applied = formatTime(s.AppliedAt)
		}
		tw.row("%d\t%s\t%s\n", s.Source.Version, filepath.Base(s.Source.Path), applied)
	}
	return tw.Flush()
}

func pendingCount(status []*goose.MigrationStatus) int {
	n := 0
	for _, s := range status {
		if s.State == goose.StatePending {
			n++
		}
	}
	return n
}

// Package migrations holds llmgw's SQL schema as goose migration files, one
// set per database: SQLite's in this directory, PostgreSQL's in postgres/.
// Files are named NNNNN_name.sql and are never edited once merged; a change
// to the schema is a new file in each directory, with the same meaning in
// both.
package migrations

import (
	"embed"
	"io/fs"
)

// FS holds every SQLite migration file. The store runs them through a goose
// Provider; nothing else should read them.
//
//go:embed *.sql
var FS embed.FS

//go:embed postgres/*.sql
var postgresFiles embed.FS

// Postgres holds every PostgreSQL migration file, at its root as FS holds
// SQLite's. The store runs them through a goose Provider; nothing else
// should read them.
var Postgres = sub(postgresFiles, "postgres")

func sub(fsys fs.FS, dir string) fs.FS {
	f, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err) // dir is a constant that the embed directive names
	}
	return f
}

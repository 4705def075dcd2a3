// Package migrations holds llmgw's SQL schema as goose migration files.
// Files are named NNNNN_name.sql and are never edited once merged; a change
// to the schema is a new file.
package migrations

import "embed"

// FS holds every migration file. The store runs them through a goose
// Provider; nothing else should read them.
//
//go:embed *.sql
var FS embed.FS

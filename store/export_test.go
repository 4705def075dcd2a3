package store

import (
	"database/sql"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Rebind is rebind, for the external tests.
var Rebind = rebind

// OpenPostgresRaw opens a plain handle on a PostgreSQL database that
// rewrites "?" placeholders as the store's pools do, for checks the store's
// API does not offer.
func OpenPostgresRaw(url string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(pgConnector{Connector: stdlib.GetConnector(*cfg)}), nil
}

// OpenSecret returns the plain text of a secret stored in column of account
// id, sealed with key, for tests that compare databases row by row.
func OpenSecret(key []byte, id int64, column, stored string) (string, error) {
	s, err := newSealer(key)
	if err != nil {
		return "", err
	}
	return s.open(secretAD(id, column), stored)
}

// Package migrations holds the database schema as numbered, forward-only SQL
// files. internal/postgres applies them in order, each in a transaction.
package migrations

import "embed"

// FS holds the migration files, named NNNN_description.sql.
//
//go:embed *.sql
var FS embed.FS

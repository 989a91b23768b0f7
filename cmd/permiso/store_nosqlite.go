//go:build nosqlite

package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/permiso/permiso/config"
)

// sqliteBuilt reports whether this binary holds the embedded SQLite
// backend. The container image is built with -tags nosqlite: it runs
// against PostgreSQL, and leaving SQLite out keeps the image small
// (docs/deployment.md, "The image").
const sqliteBuilt = false

// openSQLite refuses: this build has no SQLite backend.
func openSQLite(context.Context, config.Config, *slog.Logger) (store, error) {
	return nil, errors.New("DATABASE_URL: this build of permiso has no SQLite backend (the container image is built " +
		"with -tags nosqlite for PostgreSQL); use a postgresql:// DATABASE_URL, or the release binary for SQLite")
}

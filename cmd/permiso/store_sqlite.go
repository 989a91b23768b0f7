//go:build !nosqlite

package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/permiso/permiso/config"
	"github.com/permiso/permiso/sqlite"
)

// sqliteBuilt reports whether this binary holds the embedded SQLite
// backend (every build but the container image's, docs/deployment.md,
// "The image").
const sqliteBuilt = true

// openSQLite opens the embedded SQLite database of DATABASE_URL.
func openSQLite(ctx context.Context, cfg config.Config, logger *slog.Logger) (store, error) {
	db, err := sqlite.Open(ctx, cfg.SQLitePath(), sqlite.Options{Logger: logger, Echo: cfg.DatabaseEcho})
	if err != nil {
		return nil, fmt.Errorf("open SQLite database %s: %w", cfg.SQLitePath(), err)
	}
	return db, nil
}

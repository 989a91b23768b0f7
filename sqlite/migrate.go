package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/migrations"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns the embedded migrations of this backend, in order.
func Migrations() ([]migrations.Migration, error) {
	return migrations.Load(migrationFS, "migrations")
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at TEXT
) STRICT`

// MigrateUp applies every pending migration, each in its own BEGIN IMMEDIATE
// transaction on the writer connection, and records it in
// schema_migrations. Whether a migration is applied is checked inside that
// transaction, so concurrent migrators (goroutines or processes) apply each
// one exactly once.
func (db *DB) MigrateUp(ctx context.Context) ([]permiso.MigrationStatus, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, fmt.Errorf("sqlite: load migrations: %w", err)
	}
	if _, err := db.w().exec(ctx, createMigrationsTable); err != nil {
		return nil, fmt.Errorf("sqlite: create schema_migrations: %w", err)
	}
	var applied []permiso.MigrationStatus
	for _, m := range ms {
		var done bool
		at := now()
		err := db.inTx(ctx, func(c conn) error {
			var one int
			err := c.queryRow(ctx, "SELECT 1 FROM schema_migrations WHERE version = ?", m.Version).Scan(&one)
			if err == nil {
				return nil // applied meanwhile by someone else
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if _, err := c.exec(ctx, m.Up); err != nil {
				return err
			}
			if _, err := c.exec(ctx,
				"INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
				m.Version, m.Name, ts(at)); err != nil {
				return err
			}
			done = true
			return nil
		})
		if err != nil {
			return applied, fmt.Errorf("sqlite: migration %04d_%s up: %w", m.Version, m.Name, err)
		}
		if done {
			db.log.InfoContext(ctx, "migration applied", "backend", "sqlite", "version", m.Version, "name", m.Name)
			applied = append(applied, permiso.MigrationStatus{Version: m.Version, Name: m.Name, Applied: true, AppliedAt: &at})
		}
	}
	return applied, nil
}

// MigrateDown reverts the newest n applied migrations, newest first, each in
// its own transaction.
func (db *DB) MigrateDown(ctx context.Context, n int) ([]permiso.MigrationStatus, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, fmt.Errorf("sqlite: load migrations: %w", err)
	}
	byVersion := map[int]migrations.Migration{}
	for _, m := range ms {
		byVersion[m.Version] = m
	}
	if _, err := db.w().exec(ctx, createMigrationsTable); err != nil {
		return nil, fmt.Errorf("sqlite: create schema_migrations: %w", err)
	}
	var reverted []permiso.MigrationStatus
	for range n {
		var st *permiso.MigrationStatus
		err := db.inTx(ctx, func(c conn) error {
			var version int
			err := c.queryRow(ctx, "SELECT version FROM schema_migrations ORDER BY version DESC LIMIT 1").Scan(&version)
			if errors.Is(err, sql.ErrNoRows) {
				return nil // nothing left to revert
			}
			if err != nil {
				return err
			}
			m, ok := byVersion[version]
			if !ok {
				return fmt.Errorf("applied migration %d is unknown to this binary", version)
			}
			if _, err := c.exec(ctx, m.Down); err != nil {
				return fmt.Errorf("migration %04d_%s down: %w", m.Version, m.Name, err)
			}
			if _, err := c.exec(ctx, "DELETE FROM schema_migrations WHERE version = ?", version); err != nil {
				return err
			}
			st = &permiso.MigrationStatus{Version: m.Version, Name: m.Name}
			return nil
		})
		if err != nil {
			return reverted, fmt.Errorf("sqlite: migrate down: %w", err)
		}
		if st == nil {
			break
		}
		db.log.InfoContext(ctx, "migration reverted", "backend", "sqlite", "version", st.Version, "name", st.Name)
		reverted = append(reverted, *st)
	}
	return reverted, nil
}

// MigrationStatus lists every embedded migration and whether (and when) it
// is applied. It writes nothing.
func (db *DB) MigrationStatus(ctx context.Context) ([]permiso.MigrationStatus, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, fmt.Errorf("sqlite: load migrations: %w", err)
	}
	applied := map[int]*time.Time{}
	var n int
	if err := db.r().queryRow(ctx,
		"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").Scan(&n); err != nil {
		return nil, fmt.Errorf("sqlite: migration status: %w", err)
	}
	if n > 0 {
		rows, err := db.r().query(ctx, "SELECT version, applied_at FROM schema_migrations")
		if err != nil {
			return nil, fmt.Errorf("sqlite: migration status: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var v int
			var at *time.Time
			if err := rows.Scan(&v, nullTimeCol{&at}); err != nil {
				return nil, fmt.Errorf("sqlite: migration status: %w", err)
			}
			applied[v] = at
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("sqlite: migration status: %w", err)
		}
	}
	out := make([]permiso.MigrationStatus, 0, len(ms))
	for _, m := range ms {
		at, ok := applied[m.Version]
		out = append(out, permiso.MigrationStatus{Version: m.Version, Name: m.Name, Applied: ok, AppliedAt: at})
	}
	return out, nil
}

package postgres

import (
	"context"
	"embed"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/migrations"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// MigrationLockKey is the pg_advisory_lock key held while migrations run
// ("permiso"), so that several instances starting at once apply each
// migration exactly once.
const MigrationLockKey = 7350123

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL
)`

// Migrations returns the embedded migrations of this backend, ordered by
// version.
func Migrations() ([]migrations.Migration, error) {
	return migrations.Load(migrationFS, "migrations")
}

// MigrateUp applies every pending migration in version order, each in its
// own transaction and recorded in schema_migrations. The whole run holds
// the session-level advisory lock MigrationLockKey on one connection, so
// concurrent callers are serialized and the later ones find nothing to do.
func (db *DB) MigrateUp(ctx context.Context) ([]permiso.MigrationStatus, error) {
	all, err := Migrations()
	if err != nil {
		return nil, err
	}
	var applied []permiso.MigrationStatus
	err = db.withMigrationLock(ctx, func(conn *pgxpool.Conn) error {
		done, err := appliedVersions(ctx, conn)
		if err != nil {
			return err
		}
		for _, m := range all {
			if _, ok := done[m.Version]; ok {
				continue
			}
			at := now()
			err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, m.Up); err != nil {
					return err
				}
				_, err := tx.Exec(ctx,
					`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
					m.Version, m.Name, at)
				return err
			})
			if err != nil {
				return fmt.Errorf("postgres: migration %04d_%s up: %w", m.Version, m.Name, err)
			}
			db.logger.InfoContext(ctx, "migration applied", "version", m.Version, "name", m.Name)
			applied = append(applied, permiso.MigrationStatus{Version: m.Version, Name: m.Name, Applied: true, AppliedAt: &at})
		}
		return nil
	})
	return applied, err
}

// MigrateDown reverts the newest n applied migrations, newest first, each in
// its own transaction, under the same advisory lock as MigrateUp. n <= 0
// reverts nothing.
func (db *DB) MigrateDown(ctx context.Context, n int) ([]permiso.MigrationStatus, error) {
	if n <= 0 {
		return nil, nil
	}
	all, err := Migrations()
	if err != nil {
		return nil, err
	}
	byVersion := make(map[int]migrations.Migration, len(all))
	for _, m := range all {
		byVersion[m.Version] = m
	}
	var reverted []permiso.MigrationStatus
	err = db.withMigrationLock(ctx, func(conn *pgxpool.Conn) error {
		done, err := appliedVersions(ctx, conn)
		if err != nil {
			return err
		}
		versions := make([]int, 0, len(done))
		for v := range done {
			versions = append(versions, v)
		}
		sort.Sort(sort.Reverse(sort.IntSlice(versions)))
		for i, v := range versions {
			if i >= n {
				break
			}
			m, ok := byVersion[v]
			if !ok {
				return fmt.Errorf("postgres: migration %d is applied but unknown to this binary; cannot revert it", v)
			}
			err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, m.Down); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `DELETE FROM schema_migrations WHERE version = $1`, v)
				return err
			})
			if err != nil {
				return fmt.Errorf("postgres: migration %04d_%s down: %w", m.Version, m.Name, err)
			}
			db.logger.InfoContext(ctx, "migration reverted", "version", m.Version, "name", m.Name)
			reverted = append(reverted, permiso.MigrationStatus{Version: m.Version, Name: m.Name})
		}
		return nil
	})
	return reverted, err
}

// MigrationStatus lists every embedded migration and whether it is applied,
// plus any applied version this binary does not know (a newer binary ran).
func (db *DB) MigrationStatus(ctx context.Context) ([]permiso.MigrationStatus, error) {
	all, err := Migrations()
	if err != nil {
		return nil, err
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, mapErr(err, "connection", opRead)
	}
	defer conn.Release()
	done, err := appliedVersions(ctx, conn)
	if err != nil {
		return nil, err
	}
	out := make([]permiso.MigrationStatus, 0, len(all))
	known := map[int]bool{}
	for _, m := range all {
		known[m.Version] = true
		s := permiso.MigrationStatus{Version: m.Version, Name: m.Name}
		if r, ok := done[m.Version]; ok {
			s.Applied, s.AppliedAt = true, &r.at
		}
		out = append(out, s)
	}
	for v, r := range done {
		if !known[v] {
			out = append(out, permiso.MigrationStatus{Version: v, Name: r.name, Applied: true, AppliedAt: &r.at})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

type appliedRow struct {
	name string
	at   time.Time
}

// appliedVersions reads schema_migrations; a missing table means nothing is
// applied. The table is looked up through the search_path.
func appliedVersions(ctx context.Context, conn *pgxpool.Conn) (map[int]appliedRow, error) {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("postgres: reading schema_migrations: %w", err)
	}
	out := map[int]appliedRow{}
	if !exists {
		return out, nil
	}
	rows, err := conn.Query(ctx, `SELECT version, name, applied_at FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("postgres: reading schema_migrations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		var r appliedRow
		if err := rows.Scan(&v, &r.name, &r.at); err != nil {
			return nil, fmt.Errorf("postgres: reading schema_migrations: %w", err)
		}
		r.at = r.at.UTC()
		out[v] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: reading schema_migrations: %w", err)
	}
	return out, nil
}

// withMigrationLock acquires one connection, takes the session-level
// advisory lock MigrationLockKey on it, ensures schema_migrations exists,
// runs fn, and unlocks. If unlocking fails the connection is closed rather
// than returned to the pool, which releases the lock server-side.
func (db *DB) withMigrationLock(ctx context.Context, fn func(*pgxpool.Conn) error) (err error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return mapErr(err, "connection", opRead)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(MigrationLockKey)); err != nil {
		conn.Release()
		return fmt.Errorf("postgres: taking the migration lock: %w", err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, uerr := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, int64(MigrationLockKey)); uerr != nil {
			// Closing the session drops its advisory locks.
			_ = conn.Hijack().Close(uctx)
			return
		}
		conn.Release()
	}()
	if _, err := conn.Exec(ctx, createMigrationsTable); err != nil {
		return fmt.Errorf("postgres: creating schema_migrations: %w", err)
	}
	return fn(conn)
}

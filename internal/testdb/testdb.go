// Package testdb opens the databases that tests outside the storage
// backends run on: a migrated SQLite database in memory or in a file, and
// a migrated PostgreSQL database in a schema of its own
// (PERMISO_TEST_DATABASE_URL), each closed, and the schema dropped, when
// the test ends; and Migrate, for a database a test (or a backend's
// benchmark) opens itself.
package testdb

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/postgres"
	"github.com/permiso/permiso/sqlite"
)

// PostgresURLVar names the environment variable holding the PostgreSQL
// server the tests use.
const PostgresURLVar = "PERMISO_TEST_DATABASE_URL"

// SQLite returns a migrated SQLite database in memory, closed when t ends.
func SQLite(t testing.TB) *sqlite.DB {
	t.Helper()
	return SQLiteAt(t, sqlite.Memory)
}

// SQLiteAt opens the SQLite database at path (a file, or sqlite.Memory)
// and migrates it; it is closed when t ends, if nothing (a cache wrapping
// it) has closed it before.
func SQLiteAt(t testing.TB, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("sqlite.Open(%s): %v", path, err)
	}
	Migrate(t, db)
	return db
}

// Migrator is a database the tests open: *sqlite.DB or *postgres.DB.
type Migrator interface {
	MigrateUp(ctx context.Context) ([]permiso.MigrationStatus, error)
	Close() error
}

// Migrate closes db when t ends and applies every migration to it now,
// failing t on an error.
func Migrate(t testing.TB, db Migrator) {
	t.Helper()
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.MigrateUp(context.Background()); err != nil {
		t.Fatalf("MigrateUp: %v", err)
	}
}

// RedisURLVar names the environment variable holding the Redis server the
// tests use.
const RedisURLVar = "PERMISO_TEST_REDIS_URL"

// RedisURL returns the Redis server the tests use, or skips t without
// PERMISO_TEST_REDIS_URL.
func RedisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(RedisURLVar)
	if u == "" {
		t.Skip(RedisURLVar + " is not set")
	}
	return u
}

// HasPostgres reports whether PERMISO_TEST_DATABASE_URL is set.
func HasPostgres() bool { return os.Getenv(PostgresURLVar) != "" }

// HasRedis reports whether PERMISO_TEST_REDIS_URL is set.
func HasRedis() bool { return os.Getenv(RedisURLVar) != "" }

// Postgres returns a migrated PostgreSQL database in a fresh schema named
// after prefix, closed and the schema dropped when t ends. It skips t
// without PERMISO_TEST_DATABASE_URL.
func Postgres(t testing.TB, prefix string) *postgres.DB {
	t.Helper()
	raw := os.Getenv(PostgresURLVar)
	if raw == "" {
		t.Skip(PostgresURLVar + " is not set; skipping PostgreSQL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%s: %v", PostgresURLVar, err)
	}
	if q := u.Query(); q.Get("synchronous_commit") == "" {
		// Throw-away schemas need no durability.
		q.Set("synchronous_commit", "off")
		u.RawQuery = q.Encode()
	}
	dbURL := u.String()
	norm, err := postgres.NormalizeURL(dbURL)
	if err != nil {
		t.Fatalf("%s: %v", PostgresURLVar, err)
	}
	schema := "permiso_" + prefix + "_" + strings.ToLower(rand.Text()[:12])
	Exec(t, norm, "CREATE SCHEMA "+schema)
	t.Cleanup(func() { Exec(t, norm, "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	db, err := postgres.Open(context.Background(), dbURL, postgres.Options{MaxConns: 8, SearchPath: schema})
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	Migrate(t, db)
	return db
}

// Exec runs sql with args on a short-lived connection to the PostgreSQL
// server at dsn (a pgx connection string), and fails t on an error.
func Exec(t testing.TB, dsn, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// Schema creates a schema named prefix and a random suffix on the
// PostgreSQL server at base, dropped when t ends, and returns its name and
// base with search_path set to it.
func Schema(t testing.TB, base, prefix string) (name, dsn string) {
	t.Helper()
	name = prefix + strings.ToLower(rand.Text()[:12])
	Exec(t, base, "CREATE SCHEMA "+name)
	t.Cleanup(func() { Exec(t, base, "DROP SCHEMA IF EXISTS "+name+" CASCADE") })
	return name, WithQuery(t, base, "search_path", name)
}

// WithQuery returns the URL raw with its query parameter key set to value;
// a URL that does not parse fails t.
func WithQuery(t testing.TB, raw, key, value string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

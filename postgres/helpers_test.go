package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/permiso/permiso"
)

// testURL returns PERMISO_TEST_DATABASE_URL or skips the test. Test
// sessions run with synchronous_commit=off (pgx passes unknown URL
// parameters to the server as run-time parameters): throw-away schemas need
// no durability, and it makes each migration several times faster.
func testURL(t testing.TB) string {
	t.Helper()
	raw := os.Getenv("PERMISO_TEST_DATABASE_URL")
	if raw == "" {
		t.Skip("PERMISO_TEST_DATABASE_URL is not set; skipping PostgreSQL tests")
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("PERMISO_TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	if q.Get("synchronous_commit") == "" {
		q.Set("synchronous_commit", "off")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// adminExec runs sql over a plain, short-lived admin connection.
func adminExec(t testing.TB, dbURL, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	norm, err := NormalizeURL(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, norm)
	if err != nil {
		t.Fatalf("admin connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("admin exec %q: %v", sql, err)
	}
}

// newSchema creates an empty schema of its own for the test and drops it
// (CASCADE) when the test ends. Cleanups run last-in first-out, so pools
// opened after this call are closed before the schema is dropped.
func newSchema(t testing.TB) (dbURL, schema string) {
	t.Helper()
	dbURL = testURL(t)
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema = "permiso_test_" + hex.EncodeToString(b)
	adminExec(t, dbURL, `CREATE SCHEMA `+schema)
	t.Cleanup(func() { adminExec(t, dbURL, `DROP SCHEMA IF EXISTS `+schema+` CASCADE`) })
	return dbURL, schema
}

// openIn opens a DB whose search_path is schema, closed at cleanup.
func openIn(t testing.TB, dbURL, schema string) *DB {
	t.Helper()
	return openWith(t, dbURL, Options{MaxConns: 4, SearchPath: schema})
}

// openWith opens a DB at dbURL with o, closed at cleanup.
func openWith(t testing.TB, dbURL string, o Options) *DB {
	t.Helper()
	db, err := Open(context.Background(), dbURL, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// migrated applies every migration to db and returns it.
func migrated(t testing.TB, db *DB) *DB {
	t.Helper()
	if _, err := db.MigrateUp(context.Background()); err != nil {
		t.Fatalf("MigrateUp: %v", err)
	}
	return db
}

// newTestDB returns a migrated DB in a fresh schema of its own.
func newTestDB(t testing.TB) *DB {
	t.Helper()
	dbURL, schema := newSchema(t)
	return migrated(t, openIn(t, dbURL, schema))
}

// userSession creates an active user named name, a session of it and the
// session's first refresh token (hash name+"-0"), as a login does.
func userSession(t testing.TB, db *DB, name string) (permiso.User, permiso.Session, permiso.RefreshToken) {
	t.Helper()
	u := activeUser(t, db, name)
	now := time.Now().UTC()
	sess, first := sessionToken(t, db, u.ID, name+"-0", now, now.Add(time.Hour))
	return u, sess, first
}

// activeUser creates an active user named name.
func activeUser(t testing.TB, db *DB, name string) permiso.User {
	t.Helper()
	u, err := db.CreateUser(t.Context(), permiso.User{Username: name, Email: name + "@example.com",
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", IsActive: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// sessionToken creates a session of the user opened at from (its last
// activity too) that expires at until, and its refresh token with hash,
// issued at from for an hour, with the scope read:profile.
func sessionToken(t testing.TB, db *DB, userID uuid.UUID, hash string, from, until time.Time) (permiso.Session, permiso.RefreshToken) {
	t.Helper()
	sess, tok, err := db.CreateSessionWithToken(t.Context(), permiso.Session{ID: uuid.New(), UserID: userID, IPAddress: "192.0.2.1",
		CreatedAt: from, LastActivity: from, ExpiresAt: until},
		permiso.RefreshToken{ID: uuid.New(), TokenHash: hash, UserID: userID, FamilyID: uuid.New(), Scopes: []string{"read:profile"},
			IssuedAt: from, ExpiresAt: from.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return sess, tok
}

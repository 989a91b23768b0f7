package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/sqlite"
	"github.com/permiso/permiso/storetest"
)

// open opens path and registers its Close.
func open(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// migrated opens path and applies every migration.
func migrated(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db := open(t, path)
	if _, err := db.MigrateUp(t.Context()); err != nil {
		t.Fatalf("MigrateUp: %v", err)
	}
	return db
}

func TestConformanceFile(t *testing.T) {
	storetest.Run(t, func(t *testing.T) permiso.Store {
		return migrated(t, filepath.Join(t.TempDir(), "permiso.db"))
	})
}

func TestConformanceMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) permiso.Store {
		return migrated(t, sqlite.Memory)
	})
}

func TestMigrations(t *testing.T) {
	ctx := t.Context()
	db := open(t, filepath.Join(t.TempDir(), "m.db"))

	// The test holds for any number n of migrations: a migration added
	// later changes nothing here.
	st, err := db.MigrationStatus(ctx)
	if err != nil {
		t.Fatalf("MigrationStatus on an empty database: %v", err)
	}
	n := len(st)
	if n < 3 || len(permiso.Pending(st)) != n {
		t.Fatalf("status of an empty database = %+v, want at least 3, all pending", st)
	}

	applied, err := db.MigrateUp(ctx)
	if err != nil {
		t.Fatalf("MigrateUp: %v", err)
	}
	if len(applied) != n || applied[0].Name != "schema" || applied[1].Name != "seed" || applied[2].Name != "client_tokens_revoked_before" {
		t.Fatalf("MigrateUp applied %+v, want all %d, from 0001_schema, 0002_seed and 0003_client_tokens_revoked_before", applied, n)
	}
	for i, m := range applied {
		if m.Version != i+1 {
			t.Fatalf("MigrateUp applied %+v, want versions 1..%d in order", applied, n)
		}
	}
	st, err = db.MigrationStatus(ctx)
	if err != nil {
		t.Fatalf("MigrationStatus: %v", err)
	}
	for _, m := range st {
		if !m.Applied || m.AppliedAt == nil {
			t.Errorf("migration %d not applied after MigrateUp: %+v", m.Version, m)
		}
	}

	again, err := db.MigrateUp(ctx)
	if err != nil || len(again) != 0 {
		t.Fatalf("second MigrateUp = %+v, %v; want a no-op", again, err)
	}

	// Down to the schema alone: every migration after it, newest first.
	reverted, err := db.MigrateDown(ctx, n-1)
	if err != nil {
		t.Fatalf("MigrateDown(%d): %v", n-1, err)
	}
	if len(reverted) != n-1 || reverted[0].Version != n || reverted[n-2].Version != 2 {
		t.Fatalf("MigrateDown(%d) reverted %+v, want versions %d down to 2", n-1, reverted, n)
	}
	if _, err := db.GetRoleByName(ctx, permiso.RoleAdmin); !errors.Is(err, permiso.ErrNotFound) {
		t.Fatalf("GetRoleByName(admin) after reverting the seed: %v, want ErrNotFound", err)
	}
	st, _ = db.MigrationStatus(ctx)
	if p := permiso.Pending(st); len(p) != n-1 || p[0].Version != 2 {
		t.Fatalf("pending after MigrateDown(%d) = %+v, want versions 2..%d", n-1, p, n)
	}

	applied, err = db.MigrateUp(ctx)
	if err != nil || len(applied) != n-1 || applied[0].Version != 2 {
		t.Fatalf("MigrateUp after down = %+v, %v; want versions 2..%d again", applied, err, n)
	}
	if _, err := db.GetRoleByName(ctx, permiso.RoleAdmin); err != nil {
		t.Fatalf("GetRoleByName(admin) after re-applying the seed: %v", err)
	}

	// Down past the start reverts what there is and stops.
	reverted, err = db.MigrateDown(ctx, n+2)
	if err != nil || len(reverted) != n {
		t.Fatalf("MigrateDown(%d) = %+v, %v; want all %d reverted", n+2, reverted, err, n)
	}
	st, _ = db.MigrationStatus(ctx)
	if len(permiso.Pending(st)) != n {
		t.Fatalf("pending after full down = %+v, want all %d", st, n)
	}
	if _, err := db.MigrateUp(ctx); err != nil {
		t.Fatalf("MigrateUp after full down: %v", err)
	}
}

// TestSeedIdempotent re-runs the seed SQL over seeded data (the state a
// lost schema_migrations row would leave) and checks nothing doubles.
func TestSeedIdempotent(t *testing.T) {
	ctx := t.Context()
	db := migrated(t, filepath.Join(t.TempDir(), "seed.db"))
	ms, err := sqlite.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := db.ExecForTest(ctx, ms[1].Up); err != nil {
			t.Fatalf("re-running the seed: %v", err)
		}
	}
	_, roles, err := db.ListRoles(ctx, permiso.RoleFilter{})
	if err != nil || roles != 3 {
		t.Fatalf("roles after re-seeding = %d, %v; want 3", roles, err)
	}
	_, scopes, err := db.ListScopes(ctx, permiso.ScopeFilter{})
	if err != nil || scopes != 11 {
		t.Fatalf("scopes after re-seeding = %d, %v; want 11", scopes, err)
	}
	admin, err := db.GetRoleByName(ctx, permiso.RoleAdmin)
	if err != nil || len(admin.Scopes) != 11 {
		t.Fatalf("admin scopes after re-seeding = %d, %v; want 11", len(admin.Scopes), err)
	}
}

// TestConcurrentMigrators starts several stores on one file at once; each
// migration must be applied exactly once.
func TestConcurrentMigrators(t *testing.T) {
	path := filepath.Join(t.TempDir(), "race.db")
	const n = 4
	dbs := make([]*sqlite.DB, n)
	for i := range dbs {
		dbs[i] = open(t, path)
	}
	storetest.RaceMigrators(t, dbs)
}

func TestBackup(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	db := migrated(t, filepath.Join(dir, "live.db"))
	u, err := db.CreateUser(ctx, permiso.User{
		Username: "backup", Email: "backup@example.com", PasswordHash: "h", IsActive: true,
	}, nil)
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	out := filepath.Join(dir, "copy.db")
	if err := db.Backup(ctx, out); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if err := db.Backup(ctx, out); !errors.Is(err, permiso.ErrAlreadyExists) {
		t.Errorf("Backup onto an existing file: %v, want ErrAlreadyExists", err)
	}
	cp := open(t, out)
	got, err := cp.GetUser(ctx, u.ID)
	if err != nil {
		t.Fatalf("GetUser in the backup: %v", err)
	}
	if got.Username != "backup" {
		t.Errorf("backup user = %q, want backup", got.Username)
	}
	st, err := cp.MigrationStatus(ctx)
	if err != nil || len(permiso.Pending(st)) != 0 {
		t.Errorf("backup migration status = %+v, %v; want all applied", st, err)
	}

	mem := migrated(t, sqlite.Memory)
	if err := mem.Backup(ctx, filepath.Join(dir, "mem.db")); err != nil {
		t.Fatalf("Backup of :memory: %v", err)
	}
	if _, err := open(t, filepath.Join(dir, "mem.db")).GetRoleByName(ctx, permiso.RoleUser); err != nil {
		t.Errorf("GetRoleByName in the :memory: backup: %v", err)
	}
}

func TestEcho(t *testing.T) {
	ctx := t.Context()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	db, err := sqlite.Open(ctx, sqlite.Memory, sqlite.Options{Logger: log, Echo: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.MigrateUp(ctx); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if _, err := db.GetUserByUsername(ctx, "secret-name"); !errors.Is(err, permiso.ErrNotFound) {
		t.Fatalf("GetUserByUsername: %v", err)
	}
	out := buf.String()
	if !strings.Contains(out, "level=DEBUG") || !strings.Contains(out, "FROM users") {
		t.Errorf("echo log = %q, want the statement at debug level", out)
	}
	if strings.Contains(out, "secret-name") {
		t.Errorf("echo log %q contains a statement argument", out)
	}

	buf.Reset()
	quiet, err := sqlite.Open(ctx, sqlite.Memory, sqlite.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	_ = quiet.Ping(ctx)
	if buf.Len() != 0 {
		t.Errorf("without Echo the log got %q", buf.String())
	}
}

func TestPragmas(t *testing.T) {
	db := migrated(t, filepath.Join(t.TempDir(), "p.db"))
	for name, want := range map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "5000", "synchronous": "1"} {
		w, r, err := db.PragmaForTest(t.Context(), name)
		if err != nil {
			t.Fatalf("PRAGMA %s: %v", name, err)
		}
		if w != want || r != want {
			t.Errorf("PRAGMA %s = %q (writer), %q (reader), want %q", name, w, r, want)
		}
	}
	if _, r, _ := db.PragmaForTest(t.Context(), "query_only"); r != "1" {
		t.Errorf("readers are not query_only: %q", r)
	}
	if _, err := sqlite.Open(t.Context(), "file:x.db?mode=ro", sqlite.Options{}); err == nil {
		t.Error("Open accepted a URI with parameters")
	}
}

// TestSessionExpiryIndexCreatedBefore: an index of the deployment guide's
// name created by hand at version 7 does not stop version 8, which
// creates it (docs/deployment.md, "Upgrade notes").
func TestSessionExpiryIndexCreatedBefore(t *testing.T) {
	ctx := t.Context()
	db := migrated(t, filepath.Join(t.TempDir(), "idx.db"))
	if _, err := db.MigrateDown(ctx, 1); err != nil {
		t.Fatalf("MigrateDown: %v", err)
	}
	if err := db.ExecForTest(ctx, "CREATE INDEX idx_user_sessions_expires_at ON user_sessions(expires_at)"); err != nil {
		t.Fatalf("create the index at version 7: %v", err)
	}
	if _, err := db.MigrateUp(ctx); err != nil {
		t.Fatalf("MigrateUp over an index created before: %v", err)
	}
	if err := db.ExecForTest(ctx, "CREATE INDEX idx_user_sessions_expires_at ON user_sessions(expires_at)"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("creating the index again at version 8: %v; want already exists", err)
	}
}

// TestCommitCutOffByClientGone: a write transaction whose request's
// context is cancelled before its commit (the client went away, and
// database/sql rolled the transaction back) answers the cancellation, so
// that the request is counted as the client gone (permiso.ClientGone, 499;
// docs/deployment.md, "Monitoring") rather than a 500 "transaction has
// already been committed or rolled back"; nothing of it is committed.
func TestCommitCutOffByClientGone(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "cut.db"))
	ctx := t.Context()
	if err := db.ExecForTest(ctx, "CREATE TABLE cut (x INTEGER PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	err := db.CutOffCommitForTest(ctx, "INSERT INTO cut VALUES (1)")
	if !errors.Is(err, context.Canceled) || errors.Is(err, sql.ErrTxDone) {
		t.Fatalf("cut-off commit: %v, want the request's cancellation", err)
	}
	if err := db.ExecForTest(ctx, "INSERT INTO cut VALUES (1)"); err != nil {
		t.Fatalf("the cut-off transaction's row is there: %v", err)
	}
}

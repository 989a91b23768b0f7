package postgres

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testtool"
	"github.com/permiso/permiso/storetest"
)

func TestNormalizeURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgresql://u:p@h:5432/db":         "postgresql://u:p@h:5432/db",
		"postgres://u@h/db?sslmode=disable":  "postgresql://u@h/db?sslmode=disable",
		"postgresql+asyncpg://u:p@h:5432/db": "postgresql://u:p@h:5432/db",
		"postgres+psycopg2://h/db":           "postgresql://h/db",
		"POSTGRESQL://h/db":                  "postgresql://h/db",
	} {
		got, err := NormalizeURL(in)
		if err != nil || got != want {
			t.Errorf("NormalizeURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"sqlite://permiso.db", "mysql://h/db", "host=h dbname=db", ""} {
		if _, err := NormalizeURL(in); !errors.Is(err, permiso.ErrInvalid) {
			t.Errorf("NormalizeURL(%q) error = %v; want ErrInvalid", in, err)
		}
	}
}

func TestOpenBadURLHidesPassword(t *testing.T) {
	_, err := Open(context.Background(), "postgresql://u:s3cretpw@127.0.0.1:1/db?connect_timeout=1", Options{})
	if err == nil {
		t.Fatal("Open of an unreachable server succeeded")
	}
	if strings.Contains(err.Error(), "s3cretpw") {
		t.Fatalf("error leaks the password: %v", err)
	}
	if strings.Contains(permiso.ErrorMessage(err), "127.0.0.1") {
		t.Fatalf("caller-safe message leaks driver text: %q", permiso.ErrorMessage(err))
	}
}

func TestMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, schema := newSchema(t)
	db := openIn(t, url, schema)

	// The test holds for any number n of migrations: a migration added
	// later changes nothing here.
	st, err := db.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := len(st)
	if n < 3 || len(permiso.Pending(st)) != n {
		t.Fatalf("fresh status = %+v; want at least 3, all pending", st)
	}

	applied, err := db.MigrateUp(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != n || applied[0].Name != "schema" || applied[1].Name != "seed" ||
		applied[2].Name != "client_tokens_revoked_before" {
		t.Fatalf("applied = %+v", applied)
	}
	for i, m := range applied {
		if m.Version != i+1 {
			t.Fatalf("applied = %+v; want versions 1..%d in order", applied, n)
		}
	}
	st, err = db.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st {
		if !m.Applied || m.AppliedAt == nil || m.AppliedAt.Location() != time.UTC {
			t.Fatalf("status after up = %+v", st)
		}
	}

	again, err := db.MigrateUp(ctx)
	if err != nil || len(again) != 0 {
		t.Fatalf("second MigrateUp = %+v, %v; want no-op", again, err)
	}

	// Down to the schema alone: every migration after it, newest first.
	reverted, err := db.MigrateDown(ctx, n-1)
	if err != nil || len(reverted) != n-1 || reverted[0].Version != n || reverted[n-2].Version != 2 {
		t.Fatalf("MigrateDown(%d) = %+v, %v", n-1, reverted, err)
	}
	if _, err := db.GetRoleByName(ctx, permiso.RoleAdmin); !errors.Is(err, permiso.ErrNotFound) {
		t.Fatalf("admin role after seed down: %v; want ErrNotFound", err)
	}
	st, _ = db.MigrationStatus(ctx)
	if p := permiso.Pending(st); len(p) != n-1 || p[0].Version != 2 {
		t.Fatalf("pending after down %d = %+v", n-1, p)
	}

	applied, err = db.MigrateUp(ctx)
	if err != nil || len(applied) != n-1 || applied[0].Version != 2 {
		t.Fatalf("MigrateUp after down = %+v, %v", applied, err)
	}
	admin, err := db.GetRoleByName(ctx, permiso.RoleAdmin)
	if err != nil || len(admin.Scopes) != len(permiso.DefaultScopes) {
		t.Fatalf("admin role after re-seed = %+v, %v", admin, err)
	}

	// Down everything, then up again from scratch.
	if reverted, err := db.MigrateDown(ctx, n+7); err != nil || len(reverted) != n {
		t.Fatalf("MigrateDown(%d) = %+v, %v", n+7, reverted, err)
	}
	if applied, err := db.MigrateUp(ctx); err != nil || len(applied) != n {
		t.Fatalf("MigrateUp after full down = %+v, %v", applied, err)
	}
}

func TestSeed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := newTestDB(t)
	user, err := db.GetRoleByName(ctx, permiso.RoleUser)
	if err != nil {
		t.Fatal(err)
	}
	if user.ID.String() != "00000000-0000-4000-8000-000000000001" {
		t.Errorf("user role id = %s", user.ID)
	}
	var names []string
	for _, s := range user.Scopes {
		names = append(names, s.Name)
	}
	if strings.Join(names, " ") != "read:profile write:profile" {
		t.Errorf("user role scopes = %v", names)
	}
	if _, err := db.GetRoleByName(ctx, permiso.RoleService); err != nil {
		t.Error(err)
	}
	scopes, total, err := db.ListScopes(ctx, permiso.ScopeFilter{})
	if err != nil || total != len(permiso.DefaultScopes) || len(scopes) != total {
		t.Fatalf("ListScopes = %d, %d, %v", len(scopes), total, err)
	}
	for _, s := range scopes {
		if s.Resource == nil || *s.Resource != s.ResourceName() {
			t.Errorf("scope %s resource = %v", s.Name, s.Resource)
		}
	}
}

func TestConcurrentMigrateUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, schema := newSchema(t)
	const n = 5
	dbs := make([]*DB, n)
	for i := range dbs {
		dbs[i] = openIn(t, url, schema)
	}
	st := storetest.RaceMigrators(t, dbs)
	var rows int
	if err := dbs[0].pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&rows); err != nil || rows != len(st) {
		t.Errorf("schema_migrations rows = %d, %v; want %d", rows, err, len(st))
	}
	var where string
	if err := dbs[0].pool.QueryRow(ctx, `SELECT schemaname FROM pg_tables WHERE tablename = 'schema_migrations' AND schemaname = $1`, schema).Scan(&where); err != nil {
		t.Errorf("schema_migrations is not in the test schema: %v", err)
	}
}

func TestIndexNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, schema := newSchema(t)
	db := openIn(t, url, schema)
	if _, err := db.MigrateUp(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := db.pool.Query(ctx, `SELECT indexname FROM pg_indexes WHERE schemaname = $1`, schema)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		have[name] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		// The deployment guide's names.
		"idx_users_email", "idx_users_username", "idx_refresh_tokens_user_id",
		"idx_user_sessions_user_id", "idx_user_sessions_expires_at",
		// The others of docs/data-model.md.
		"idx_users_created_at", "idx_roles_name", "idx_scopes_name", "idx_scopes_resource",
		"idx_user_roles_role_id", "idx_role_scopes_scope_id", "idx_service_clients_client_id",
		"idx_refresh_tokens_token_hash", "idx_refresh_tokens_session_id",
		"idx_password_history_user_id", "idx_action_tokens_token_hash", "idx_action_tokens_user_id",
		"idx_audit_events_occurred_at", "idx_audit_events_action", "idx_audit_events_actor_id",
		// Migration 3.
		"idx_user_sessions_client_id",
	} {
		if !have[name] {
			t.Errorf("index %s is missing", name)
		}
	}
	// Migration 7 dropped the indexes that only clean-ups read and every
	// refresh rotation wrote, and migration 8 restored the guide's
	// idx_user_sessions_expires_at (docs/data-model.md).
	for _, name := range []string{"idx_refresh_tokens_expires_at", "idx_refresh_tokens_family_id"} {
		if have[name] {
			t.Errorf("index %s is still there after migration 7", name)
		}
	}
}

func TestBackup(t *testing.T) {
	t.Parallel()
	testtool.Require(t, "pg_dump", "apt-get install -y postgresql-client", "CI")
	db := newTestDB(t)
	out := filepath.Join(t.TempDir(), "backup.sql")
	if err := db.Backup(context.Background(), out); err != nil {
		if strings.Contains(err.Error(), "server version mismatch") {
			t.Skipf("pg_dump is older than the server: %v", err)
		}
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CREATE TABLE", "users", "00000000-0000-4000-8000-000000000002"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("dump lacks %q", want)
		}
	}
}

// TestGuideIndexStatements runs the deployment guide's "Database
// Optimization" statements on a migrated database, as an operator
// following it would (docs/deployment.md, "Indexes"): the migrations have
// created every index the guide names under its name, so each CREATE INDEX
// answers "already exists" (SQLSTATE 42P07) and changes nothing, and the
// ANALYZE statements run.
func TestGuideIndexStatements(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := newTestDB(t)
	for _, stmt := range []string{
		"CREATE INDEX CONCURRENTLY idx_users_email ON users(email)",
		"CREATE INDEX CONCURRENTLY idx_users_username ON users(username)",
		"CREATE INDEX CONCURRENTLY idx_refresh_tokens_user_id ON refresh_tokens(user_id)",
		"CREATE INDEX CONCURRENTLY idx_user_sessions_user_id ON user_sessions(user_id)",
		"CREATE INDEX CONCURRENTLY idx_user_sessions_expires_at ON user_sessions(expires_at)",
	} {
		_, err := db.pool.Exec(ctx, stmt)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42P07" {
			t.Errorf("%s: %v; want SQLSTATE 42P07 (the migrations created it)", stmt, err)
		}
	}
	for _, stmt := range []string{"ANALYZE users", "ANALYZE refresh_tokens", "ANALYZE user_sessions"} {
		if _, err := db.pool.Exec(ctx, stmt); err != nil {
			t.Errorf("%s: %v", stmt, err)
		}
	}
}

// TestSessionExpiryIndexCreatedBefore: an operator who ran the deployment
// guide's CREATE INDEX CONCURRENTLY while the schema was at version 7 can
// still migrate to version 8 (docs/deployment.md, "Upgrade notes"): a
// valid index of that name is kept, and one an interrupted concurrent
// build left invalid is built again.
func TestSessionExpiryIndexCreatedBefore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := newTestDB(t)
	valid := func() (exists, valid bool) {
		t.Helper()
		err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('idx_user_sessions_expires_at')),
			COALESCE((SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('idx_user_sessions_expires_at')), false)`).Scan(&exists, &valid)
		if err != nil {
			t.Fatal(err)
		}
		return exists, valid
	}
	for _, c := range []struct {
		name    string
		prepare []string
	}{
		{"valid", []string{"CREATE INDEX CONCURRENTLY idx_user_sessions_expires_at ON user_sessions(expires_at)"}},
		{"invalid", []string{
			"CREATE INDEX CONCURRENTLY idx_user_sessions_expires_at ON user_sessions(expires_at)",
			// What an interrupted concurrent build leaves behind.
			"UPDATE pg_index SET indisvalid = false WHERE indexrelid = to_regclass('idx_user_sessions_expires_at')",
		}},
	} {
		if _, err := db.MigrateDown(ctx, 1); err != nil {
			t.Fatalf("%s: MigrateDown: %v", c.name, err)
		}
		if exists, _ := valid(); exists {
			t.Fatalf("%s: the index is still there at version 7", c.name)
		}
		for _, stmt := range c.prepare {
			if _, err := db.pool.Exec(ctx, stmt); err != nil {
				t.Fatalf("%s: %s: %v", c.name, stmt, err)
			}
		}
		if _, err := db.MigrateUp(ctx); err != nil {
			t.Fatalf("%s: MigrateUp over an index created before: %v", c.name, err)
		}
		if exists, ok := valid(); !exists || !ok {
			t.Errorf("%s: after version 8 the index exists %v, valid %v; want both", c.name, exists, ok)
		}
	}
}

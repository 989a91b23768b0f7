package postgres

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testlog"
)

// TestSmoke exercises the backend-specific paths (error mapping, the
// compare-and-swap of refresh tokens, RESTRICT foreign keys) directly; the
// storetest suite covers the behaviour shared with SQLite.
func TestSmoke(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := newTestDB(t)
	now := time.Now()
	userRole, err := db.GetRoleByName(ctx, permiso.RoleUser)
	if err != nil {
		t.Fatal(err)
	}

	u, err := db.CreateUser(ctx, permiso.User{Username: "alice", Email: "alice@example.com",
		PasswordHash: "h", IsActive: true, CreatedAt: now}, []uuid.UUID{userRole.ID})
	if err != nil {
		t.Fatal(err)
	}
	if u.CreatedAt.Location() != time.UTC || !u.CreatedAt.Equal(now.Truncate(time.Microsecond)) {
		t.Errorf("CreatedAt = %v; want %v in UTC", u.CreatedAt, now)
	}
	if got := u.ScopeNames(); len(got) != 2 {
		t.Errorf("scopes = %v", got)
	}
	_, err = db.CreateUser(ctx, permiso.User{Username: "ALICE", Email: "other@example.com", PasswordHash: "h"}, nil)
	if !errors.Is(err, permiso.ErrAlreadyExists) || permiso.ErrorMessage(err) != "Username already exists" {
		t.Errorf("duplicate username (other case): %v", err)
	}
	_, err = db.CreateUser(ctx, permiso.User{Username: "bob", Email: "bob@example.com", PasswordHash: "h"}, []uuid.UUID{uuid.New()})
	if !errors.Is(err, permiso.ErrNotFound) {
		t.Errorf("unknown role: %v", err)
	}
	if _, err := db.GetUserByUsername(ctx, "bob"); !errors.Is(err, permiso.ErrNotFound) {
		t.Errorf("bob was written despite the unknown role: %v", err)
	}
	if got, err := db.GetUserByLogin(ctx, "Alice@Example.com"); err != nil || got.ID != u.ID {
		t.Errorf("GetUserByLogin by email = %v, %v", got.ID, err)
	}
	if err := db.DeleteRole(ctx, userRole.ID); !errors.Is(err, permiso.ErrConflict) {
		t.Errorf("DeleteRole in use: %v", err)
	}
	if err := db.DeleteScope(ctx, userRole.Scopes[0].ID); !errors.Is(err, permiso.ErrConflict) {
		t.Errorf("DeleteScope in use: %v", err)
	}

	s, err := db.CreateSession(ctx, permiso.Session{UserID: u.ID, IPAddress: "192.0.2.1", ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateSession(ctx, permiso.Session{UserID: uuid.New(), IPAddress: "x", ExpiresAt: now}); !errors.Is(err, permiso.ErrNotFound) {
		t.Errorf("session of unknown user: %v", err)
	}
	rt, err := db.CreateRefreshToken(ctx, permiso.RefreshToken{TokenHash: "h0", UserID: u.ID, SessionID: s.ID,
		Scopes: []string{"write:profile", "read:profile", "read:profile"}, ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if rt.FamilyID != rt.ID || len(rt.Scopes) != 2 || rt.Scopes[0] != "read:profile" {
		t.Errorf("refresh token = %+v", rt)
	}

	// Of many concurrent rotations of one token exactly one succeeds.
	var wins, conflicts atomic.Int32
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := db.UseRefreshToken(ctx, "h0", permiso.RefreshToken{TokenHash: "h1-" + uuid.NewString(),
				UserID: u.ID, SessionID: s.ID, FamilyID: rt.FamilyID, ParentID: &rt.ID,
				ExpiresAt: now.Add(time.Hour)}, now.Add(time.Duration(i)*time.Second))
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, permiso.ErrConflict):
				conflicts.Add(1)
			default:
				t.Errorf("UseRefreshToken: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 || conflicts.Load() != 9 {
		t.Errorf("wins = %d, conflicts = %d; want 1 and 9", wins.Load(), conflicts.Load())
	}
	if err := db.UseRefreshToken(ctx, "nope", permiso.RefreshToken{}, now); !errors.Is(err, permiso.ErrNotFound) {
		t.Errorf("UseRefreshToken(unknown): %v", err)
	}
	if n, err := db.RevokeRefreshFamily(ctx, rt.FamilyID, "reuse", now); err != nil || n != 2 {
		t.Errorf("RevokeRefreshFamily = %d, %v; want 2 (the used token and its replacement)", n, err)
	}

	// Audit details round-trip through JSONB.
	if err := db.AppendAuditEvents(ctx, []permiso.AuditEvent{{ActorType: "system", Action: "login.success",
		Result: "success", Details: map[string]any{"n": 1.0, "s": "x"}}, {ActorType: "system",
		Action: "logout", Result: "success"}}); err != nil {
		t.Fatal(err)
	}
	evs, total, err := db.ListAuditEvents(ctx, permiso.AuditFilter{Action: "login."})
	if err != nil || total != 1 || evs[0].Details["s"] != "x" {
		t.Errorf("ListAuditEvents = %+v, %d, %v", evs, total, err)
	}
}

// TestEcho checks that Options.Echo logs statements at debug level without
// their arguments.
func TestEcho(t *testing.T) {
	t.Parallel()
	url, schema := newSchema(t)
	var buf testlog.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	db := openWith(t, url, Options{Echo: true, Logger: logger, SearchPath: schema, MaxConns: 2})
	var n int
	if err := db.pool.QueryRow(context.Background(), `SELECT length($1::text)`, "secret-argument").Scan(&n); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "SELECT length($1::text)") || !strings.Contains(out, "level=DEBUG") {
		t.Errorf("echo log lacks the statement: %s", out)
	}
	if strings.Contains(out, "secret-argument") {
		t.Errorf("echo log leaks an argument: %s", out)
	}
}

package postgres

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// lockedBuffer is a bytes.Buffer safe for the pool's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// take returns what was written and empties the buffer.
func (l *lockedBuffer) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	l.b.Reset()
	return s
}

// TestRefreshRoundTrips counts what a refresh sends to PostgreSQL, with
// the statement echo (DATABASE_ECHO; a pgx batch is one round trip and
// one record): the refresh grant's read of the token with its session,
// then the rotation as one batch of BEGIN, one statement and COMMIT. Two
// round trips and one commit per refresh (docs/benchmarks.md, "The
// refresh path").
func TestRefreshRoundTrips(t *testing.T) {
	t.Parallel()
	dbURL, schema := newSchema(t)
	var log lockedBuffer
	db, err := Open(t.Context(), dbURL, Options{MaxConns: 2, SearchPath: schema, Echo: true,
		Logger: slog.New(slog.NewJSONHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx := t.Context()
	if _, err := db.MigrateUp(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	u, err := db.CreateUser(ctx, permiso.User{Username: "trips", Email: "trips@example.com", PasswordHash: "h", IsActive: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sess, first, err := db.CreateSessionWithToken(ctx, permiso.Session{ID: uuid.New(), UserID: u.ID, IPAddress: "::1",
		CreatedAt: now, LastActivity: now, ExpiresAt: now.Add(time.Hour)},
		permiso.RefreshToken{ID: uuid.New(), TokenHash: "trips-0", UserID: u.ID, FamilyID: uuid.New(),
			IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	log.take()

	tok, _, err := db.GetRefreshTokenSession(ctx, first.TokenHash)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.UseRefreshToken(ctx, tok.TokenHash, permiso.RefreshToken{ID: uuid.New(), TokenHash: "trips-1",
		UserID: u.ID, SessionID: sess.ID, FamilyID: tok.FamilyID, ParentID: &tok.ID,
		IssuedAt: now, ExpiresAt: now.Add(time.Hour)}, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	var trips []map[string]any
	for line := range strings.Lines(log.take()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["msg"] == "sql" {
			trips = append(trips, rec)
		}
	}
	if len(trips) != 2 {
		t.Fatalf("a refresh made %d round trips, want 2: %v", len(trips), trips)
	}
	if trips[0]["batch"] != nil || !strings.HasPrefix(trips[0]["sql"].(string), "SELECT") {
		t.Errorf("first round trip = %v, want the read of the token and its session", trips[0])
	}
	stmts := strings.Split(trips[1]["sql"].(string), ";\n")
	if trips[1]["batch"] != true || len(stmts) != 3 || stmts[0] != "BEGIN" || !strings.HasPrefix(stmts[1], "WITH") || stmts[2] != "COMMIT" {
		t.Errorf("second round trip = %q, want one batch of BEGIN, the rotation and COMMIT", stmts)
	}
}

package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testlog"
)

// TestRefreshRoundTrips counts what a refresh sends to PostgreSQL, with
// the statement echo (DATABASE_ECHO; a pgx batch is one round trip and
// one record): the refresh grant's read of the token with its session,
// then the rotation as one batch of BEGIN, one statement and COMMIT. Two
// round trips and one commit per refresh (docs/benchmarks.md, "The
// refresh path").
func TestRefreshRoundTrips(t *testing.T) {
	t.Parallel()
	dbURL, schema := newSchema(t)
	logger, log := testlog.NewLogger()
	db, err := Open(t.Context(), dbURL, Options{MaxConns: 2, SearchPath: schema, Echo: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx := t.Context()
	if _, err := db.MigrateUp(ctx); err != nil {
		t.Fatal(err)
	}
	u, sess, first := userSession(t, db, "trips")
	now := time.Now().UTC()
	before := len(log.Records(t, "sql"))

	tok, _, err := db.GetRefreshTokenSession(ctx, first.TokenHash)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.UseRefreshToken(ctx, tok.TokenHash, permiso.RefreshToken{ID: uuid.New(), TokenHash: "trips-1",
		UserID: u.ID, SessionID: sess.ID, FamilyID: tok.FamilyID, ParentID: &tok.ID,
		IssuedAt: now, ExpiresAt: now.Add(time.Hour)}, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	trips := log.Records(t, "sql")[before:]
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

package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/cache"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/testlog"
	"github.com/permiso/permiso/internal/testwire"
	"github.com/permiso/permiso/oauth2"
)

// TestRefreshRoundTrips counts what a refresh (oauth2's token endpoint,
// grant_type=refresh_token) sends to PostgreSQL, with the statement echo
// (DATABASE_ECHO; a pgx batch is one round trip and one record): the
// checked rotation (RotateRefreshToken, no read before it) as one
// statement sent alone, in a transaction of its own, without BEGIN and
// COMMIT. One round trip and one commit per refresh (docs/benchmarks.md,
// "The refresh path").
func TestRefreshRoundTrips(t *testing.T) {
	t.Parallel()
	dbURL, schema := newSchema(t)
	logger, log := testlog.NewLogger()
	db := migrated(t, openWith(t, dbURL, Options{MaxConns: 2, SearchPath: schema, Echo: true, Logger: logger}))
	ctx := t.Context()
	u, sess, _ := userSession(t, db, "trips")
	opaque := permiso.NewOpaqueToken()
	now := time.Now().UTC()
	if _, err := db.CreateRefreshToken(ctx, permiso.RefreshToken{ID: uuid.New(), TokenHash: permiso.HashToken(opaque),
		UserID: u.ID, SessionID: sess.ID, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// Behind the in-process cache, as serve runs it: the user comes from
	// the cache (read once here, before counting).
	cs, err := cache.New(ctx, db, cache.Options{TTL: time.Minute, Bus: cache.NewLocalBus()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.GetUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	svc := oauth2.NewService(oauth2.Config{Issuer: "trips", AccessTokenLifetime: time.Minute,
		RefreshTokenLifetime: time.Hour, ReuseGrace: time.Second}, oauth2.Deps{
		Users: cs, Clients: cs, Tokens: cs, Sessions: cs, Hasher: testwire.Hasher(),
		Signer:      testwire.HS256(t, "0123456789abcdef0123456789abcdef-trips", "trips", time.Now),
		Revocations: inprocess.NewRevocations()})
	before := len(log.Records(t, "sql"))
	resp, err := svc.Token(ctx, oauth2.TokenRequest{GrantType: oauth2.GrantRefreshToken, RefreshToken: opaque}, oauth2.RequestMeta{}, nil)
	if err != nil || resp.RefreshToken == "" {
		t.Fatalf("refresh: %+v, %v", resp, err)
	}
	trips := log.Records(t, "sql")[before:]
	if len(trips) != 1 {
		t.Fatalf("a refresh made %d round trips, want 1: %v", len(trips), trips)
	}
	if sql, _ := trips[0]["sql"].(string); trips[0]["batch"] == true || !strings.HasPrefix(sql, "WITH cand AS") || strings.Contains(sql, ";") {
		t.Errorf("round trip = %v, want the checked rotation alone", trips[0])
	}
}

package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// Bench runs the store benchmarks of the hot paths (docs/benchmarks.md,
// "Store"): the client lookup of every client authentication, the user
// lookup of every bearer check, a login's session, a refresh rotation and
// an audit write. newStore returns a fresh, migrated store for each.
func Bench(b *testing.B, newStore func(b *testing.B) permiso.Store) {
	b.Run("ClientLookup", func(b *testing.B) {
		s, ctx := newStore(b), b.Context()
		c := benchClient(b, s)
		for b.Loop() {
			if _, err := s.GetServiceClientByClientID(ctx, c.ClientID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("UserLookup", func(b *testing.B) {
		s, ctx := newStore(b), b.Context()
		u := benchUser(b, s)
		for b.Loop() {
			if _, err := s.GetUser(ctx, u.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("SessionCreate", func(b *testing.B) {
		s, ctx := newStore(b), b.Context()
		u := benchUser(b, s)
		now := time.Now().UTC()
		for b.Loop() {
			if _, err := s.CreateSession(ctx, permiso.Session{UserID: u.ID, IPAddress: "192.0.2.1",
				CreatedAt: now, LastActivity: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RefreshRotation", func(b *testing.B) {
		s, ctx := newStore(b), b.Context()
		u := benchUser(b, s)
		now := time.Now().UTC()
		sess, err := s.CreateSession(ctx, permiso.Session{UserID: u.ID, IPAddress: "192.0.2.1",
			CreatedAt: now, LastActivity: now, ExpiresAt: now.Add(time.Hour)})
		if err != nil {
			b.Fatal(err)
		}
		family := uuid.New()
		tok := func(i int) permiso.RefreshToken {
			return permiso.RefreshToken{ID: uuid.New(), TokenHash: hashOf(fmt.Sprint("bench-", i)), UserID: u.ID,
				SessionID: sess.ID, FamilyID: family, Scopes: []string{"read:profile"},
				IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
		}
		if _, err := s.CreateRefreshToken(ctx, tok(0)); err != nil {
			b.Fatal(err)
		}
		i := 0
		for b.Loop() {
			next := tok(i + 1)
			next.ParentID = nil
			if err := s.UseRefreshToken(ctx, hashOf(fmt.Sprint("bench-", i)), next, now); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("AuditInsert", func(b *testing.B) {
		s, ctx := newStore(b), b.Context()
		for b.Loop() {
			if err := s.AppendAuditEvents(ctx, []permiso.AuditEvent{{OccurredAt: time.Now().UTC(), ActorType: "system",
				Action: "bench.event", Result: "success", Details: map[string]any{"k": "v"}}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ClientUpdate", func(b *testing.B) {
		s, ctx := newStore(b), b.Context()
		c := benchClient(b, s)
		for b.Loop() {
			if _, err := s.UpdateServiceClient(ctx, c.ID, func(x *permiso.ServiceClient) error {
				x.TotalRequests++
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchClient(b *testing.B, s permiso.Store) permiso.ServiceClient {
	b.Helper()
	now := time.Now().UTC()
	c, err := s.CreateServiceClient(context.Background(), permiso.ServiceClient{ClientID: "bench-client",
		SecretHash: hashOf("bench"), Name: "Bench", ClientType: "confidential", IsActive: true,
		RateLimitPerMinute: 60, RateLimitPerHour: 1000, CreatedAt: now, UpdatedAt: now},
		[]uuid.UUID{scopeReadProfileID, scopeWriteProfileID})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func benchUser(b *testing.B, s permiso.Store) permiso.User {
	b.Helper()
	now := time.Now().UTC()
	u, err := s.CreateUser(context.Background(), permiso.User{Username: "bench", Email: "bench@example.com",
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", IsActive: true,
		PasswordChangedAt: now, CreatedAt: now, UpdatedAt: now}, []uuid.UUID{roleUserID})
	if err != nil {
		b.Fatal(err)
	}
	return u
}

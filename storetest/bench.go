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
// lookup of every bearer check, a login's session, a refresh rotation, an
// audit write and a client update. newStore returns a fresh, migrated
// store for each. Besides the wall time, each reports the CPU time of the
// whole process per operation (cpu-ns/op), which a busy shared machine
// disturbs much less: for SQLite it is the whole cost; for PostgreSQL the
// client's side only.
func Bench(b *testing.B, newStore func(b *testing.B) permiso.Store) {
	cases := []struct {
		name  string
		setup func(b *testing.B, s permiso.Store) func(ctx context.Context, i int) error
	}{
		{"ClientLookup", func(b *testing.B, s permiso.Store) func(context.Context, int) error {
			c := benchClient(b, s)
			return func(ctx context.Context, _ int) error {
				_, err := s.GetServiceClientByClientID(ctx, c.ClientID)
				return err
			}
		}},
		{"UserLookup", func(b *testing.B, s permiso.Store) func(context.Context, int) error {
			u := benchUser(b, s)
			return func(ctx context.Context, _ int) error {
				_, err := s.GetUser(ctx, u.ID)
				return err
			}
		}},
		{"SessionCreate", func(b *testing.B, s permiso.Store) func(context.Context, int) error {
			u := benchUser(b, s)
			now := time.Now().UTC()
			return func(ctx context.Context, _ int) error {
				_, err := s.CreateSession(ctx, permiso.Session{UserID: u.ID, IPAddress: "192.0.2.1",
					CreatedAt: now, LastActivity: now, ExpiresAt: now.Add(time.Hour)})
				return err
			}
		}},
		{"RefreshRotation", func(b *testing.B, s permiso.Store) func(context.Context, int) error {
			tok, now := benchRefresh(b, s)
			return func(ctx context.Context, i int) error {
				return s.UseRefreshToken(ctx, hashOf(fmt.Sprint("bench-", i)), tok(i+1), now)
			}
		}},
		// What the refresh grant asks of the store when the token passes
		// every check: the checked rotation on a permiso.RefreshRotator,
		// else the read of the token with its session and the rotation
		// (docs/benchmarks.md, "The refresh path").
		{"RefreshGrant", func(b *testing.B, s permiso.Store) func(context.Context, int) error {
			tok, now := benchRefresh(b, s)
			if r := permiso.RefreshRotatorOf(s); r != nil {
				return func(ctx context.Context, i int) error {
					_, _, ok, err := r.RotateRefreshToken(ctx, permiso.RefreshRotation{Hash: hashOf(fmt.Sprint("bench-", i)),
						Now: now, SessionLifetime: 24 * time.Hour, Replacement: tok(i + 1)})
					if err == nil && !ok {
						err = permiso.ErrConflict
					}
					return err
				}
			}
			return func(ctx context.Context, i int) error {
				hash := hashOf(fmt.Sprint("bench-", i))
				if _, _, err := s.GetRefreshTokenSession(ctx, hash); err != nil {
					return err
				}
				return s.UseRefreshToken(ctx, hash, tok(i+1), now)
			}
		}},
		{"AuditInsert", func(b *testing.B, s permiso.Store) func(context.Context, int) error {
			return func(ctx context.Context, _ int) error {
				return s.AppendAuditEvents(ctx, []permiso.AuditEvent{{OccurredAt: time.Now().UTC(), ActorType: "system",
					Action: "bench.event", Result: "success", Details: map[string]any{"k": "v"}}})
			}
		}},
		{"ClientUpdate", func(b *testing.B, s permiso.Store) func(context.Context, int) error {
			c := benchClient(b, s)
			return func(ctx context.Context, _ int) error {
				_, err := s.UpdateServiceClient(ctx, c.ID, func(x *permiso.ServiceClient) error {
					x.TotalRequests++
					return nil
				})
				return err
			}
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			op := tc.setup(b, newStore(b))
			ctx := b.Context()
			cpu := cpuTime()
			i := 0
			for b.Loop() {
				if err := op(ctx, i); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(i), "cpu-ns/op")
		})
	}
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

// benchRefresh creates a user, a session and its refresh token "bench-0"
// for the refresh benchmarks; tok(i) is the token "bench-i" of the
// session, now the time they use.
func benchRefresh(b *testing.B, s permiso.Store) (tok func(i int) permiso.RefreshToken, now time.Time) {
	u := benchUser(b, s)
	now = time.Now().UTC()
	sess, err := s.CreateSession(context.Background(), permiso.Session{UserID: u.ID, IPAddress: "192.0.2.1",
		CreatedAt: now, LastActivity: now, ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	family := uuid.New()
	tok = func(i int) permiso.RefreshToken {
		return permiso.RefreshToken{ID: uuid.New(), TokenHash: hashOf(fmt.Sprint("bench-", i)), UserID: u.ID,
			SessionID: sess.ID, FamilyID: family, Scopes: []string{"read:profile"},
			IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	if _, err := s.CreateRefreshToken(context.Background(), tok(0)); err != nil {
		b.Fatal(err)
	}
	return tok, now.Add(time.Second)
}

package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// BenchmarkRotation compares PostgreSQL's own refresh rotation
// (DB.UseRefreshToken: one statement with its BEGIN and COMMIT in one
// round trip) with the shared statements every backend can run
// (sqlstore.Store.UseRefreshToken, five round trips): the reason
// PostgreSQL keeps its own (docs/benchmarks.md, "The refresh path").
func BenchmarkRotation(b *testing.B) {
	for _, path := range []struct {
		name string
		use  func(db *DB) func(context.Context, string, permiso.RefreshToken, time.Time) error
	}{
		{"OneRoundTrip", func(db *DB) func(context.Context, string, permiso.RefreshToken, time.Time) error {
			return db.UseRefreshToken
		}},
		{"Shared", func(db *DB) func(context.Context, string, permiso.RefreshToken, time.Time) error {
			return db.shared.UseRefreshToken
		}},
	} {
		b.Run(path.name, func(b *testing.B) {
			db := newTestDB(b)
			ctx := b.Context()
			use := path.use(db)
			now := time.Now().UTC()
			u, err := db.CreateUser(ctx, permiso.User{Username: "rot", Email: "rot@example.com", PasswordHash: "h"}, nil)
			if err != nil {
				b.Fatal(err)
			}
			sess, err := db.CreateSession(ctx, permiso.Session{UserID: u.ID, IPAddress: "192.0.2.1", ExpiresAt: now.Add(time.Hour)})
			if err != nil {
				b.Fatal(err)
			}
			family := uuid.New()
			tok := func(i int) permiso.RefreshToken {
				return permiso.RefreshToken{TokenHash: fmt.Sprint("rot-", i), UserID: u.ID, SessionID: sess.ID,
					FamilyID: family, Scopes: []string{"read:profile"}, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
			}
			if _, err := db.CreateRefreshToken(ctx, tok(0)); err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				if err := use(ctx, fmt.Sprint("rot-", i), tok(i+1), now); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

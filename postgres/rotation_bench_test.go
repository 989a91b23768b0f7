package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// BenchmarkRotation compares the store's part of a refresh on
// PostgreSQL: the checked rotation (DB.RotateRefreshToken: the checks and
// the rotation in one statement with its BEGIN and COMMIT, one round
// trip: the refresh grant now), the read of the token with its session
// followed by DB.UseRefreshToken (two round trips: the refresh grant
// before the checked rotation, and now when that rotates nothing),
// DB.UseRefreshToken alone, and the shared statements every backend can
// run (sqlstore.Store.UseRefreshToken, five round trips): the reasons
// PostgreSQL keeps its own (docs/benchmarks.md, "The refresh path").
func BenchmarkRotation(b *testing.B) {
	type rotate func(ctx context.Context, db *DB, hash string, next permiso.RefreshToken, now time.Time) error
	for _, path := range []struct {
		name string
		use  rotate
	}{
		{"Checked", func(ctx context.Context, db *DB, hash string, next permiso.RefreshToken, now time.Time) error {
			_, _, ok, err := db.RotateRefreshToken(ctx, permiso.RefreshRotation{Hash: hash, Now: now,
				SessionLifetime: 24 * time.Hour, Replacement: next})
			if err == nil && !ok {
				err = permiso.ErrConflict
			}
			return err
		}},
		{"ReadThenOneRoundTrip", func(ctx context.Context, db *DB, hash string, next permiso.RefreshToken, now time.Time) error {
			if _, _, err := db.GetRefreshTokenSession(ctx, hash); err != nil {
				return err
			}
			return db.UseRefreshToken(ctx, hash, next, now)
		}},
		{"OneRoundTrip", func(ctx context.Context, db *DB, hash string, next permiso.RefreshToken, now time.Time) error {
			return db.UseRefreshToken(ctx, hash, next, now)
		}},
		{"Shared", func(ctx context.Context, db *DB, hash string, next permiso.RefreshToken, now time.Time) error {
			return db.shared.UseRefreshToken(ctx, hash, next, now)
		}},
	} {
		b.Run(path.name, func(b *testing.B) {
			db := newTestDB(b)
			ctx := b.Context()
			now := time.Now().UTC()
			u, err := db.CreateUser(ctx, permiso.User{Username: "rot", Email: "rot@example.com", PasswordHash: "h", IsActive: true}, nil)
			if err != nil {
				b.Fatal(err)
			}
			sess, err := db.CreateSession(ctx, permiso.Session{UserID: u.ID, IPAddress: "192.0.2.1", CreatedAt: now,
				LastActivity: now, ExpiresAt: now.Add(time.Hour)})
			if err != nil {
				b.Fatal(err)
			}
			family := uuid.New()
			tok := func(i int) permiso.RefreshToken {
				return permiso.RefreshToken{ID: uuid.New(), TokenHash: fmt.Sprint("rot-", i), UserID: u.ID, SessionID: sess.ID,
					FamilyID: family, Scopes: []string{"read:profile"}, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
			}
			if _, err := db.CreateRefreshToken(ctx, tok(0)); err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				if err := path.use(ctx, db, fmt.Sprint("rot-", i), tok(i+1), now.Add(time.Second)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

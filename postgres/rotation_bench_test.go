package postgres

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// BenchmarkRotation compares the store's part of a refresh on
// PostgreSQL: the checked rotation (DB.RotateRefreshToken: the checks and
// the rotation in one statement sent alone, one round trip: the refresh
// grant now), the read of the token with its session
// followed by DB.UseRefreshToken (two round trips: the refresh grant
// before the checked rotation, and now when that rotates nothing),
// DB.UseRefreshToken alone, and the shared statements every backend can
// run (sqlstore.Store.UseRefreshToken, five round trips): the reasons
// PostgreSQL keeps its own (docs/benchmarks.md, "The refresh path").
//
// Besides the time, it reports the CPU time per operation of this process
// (cpu-ns/op) and of the PostgreSQL server process of its one connection
// (server-cpu-ns/op, when the server runs on this machine: read from
// /proc), which a busy shared machine disturbs much less than the time.
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
			db, pid := oneConnDB(b)
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
			server, client := processCPU(pid), processCPU(os.Getpid())
			for b.Loop() {
				if err := path.use(ctx, db, fmt.Sprint("rot-", i), tok(i+1), now.Add(time.Second)); err != nil {
					b.Fatal(err)
				}
				i++
			}
			if server >= 0 && client >= 0 {
				b.ReportMetric(float64(processCPU(pid)-server)/float64(i), "server-cpu-ns/op")
				b.ReportMetric(float64(processCPU(os.Getpid())-client)/float64(i), "cpu-ns/op")
			}
		})
	}
}

// oneConnDB opens a migrated store in a schema of its own with one
// connection, so that its server process (pid) does all of a benchmark's
// work there and its CPU time can be read (processCPU).
func oneConnDB(b *testing.B) (db *DB, pid int) {
	b.Helper()
	dbURL, schema := newSchema(b)
	db, err := Open(b.Context(), dbURL, Options{MaxConns: 1, SearchPath: schema})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	if _, err := db.MigrateUp(b.Context()); err != nil {
		b.Fatal(err)
	}
	if err := db.pool.QueryRow(b.Context(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		b.Fatal(err)
	}
	return db, pid
}

// processCPU is the CPU time (user and system) process pid has used, from
// /proc/<pid>/stat in clock ticks of 10 ms (the kernel's USER_HZ of 100),
// or -1 when it cannot be read (not Linux, or the server runs elsewhere).
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// The fields after the command name (in parentheses, which may hold
	// spaces): state is the first, utime and stime the 12th and 13th.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

package postgres

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

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
	db = migrated(b, openWith(b, dbURL, Options{MaxConns: 1, SearchPath: schema}))
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

// BenchmarkRotationConcurrent is the checked rotation as a loaded server
// sends it: 16 goroutines, each rotating a chain of its own (its own user
// and session), through one pool of 8 connections, with
// synchronous_commit on as in a deployment. Rotations that find the
// statement slots busy queue and go together (rotation_batch.go). It
// reports the CPU time per rotation of this process (cpu-ns/op) and of
// the pool's PostgreSQL server processes together (server-cpu-ns/op), and
// rotations per commit of the schema's database (rotations/commit; the
// database's other sessions count too, so read it on an otherwise idle
// database).
func BenchmarkRotationConcurrent(b *testing.B) {
	const workers, conns = 16, 8
	dbURL, schema := newSchema(b)
	u, err := url.Parse(dbURL)
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set("synchronous_commit", "on")
	u.RawQuery = q.Encode()
	db := migrated(b, openWith(b, u.String(), Options{MaxConns: conns, SearchPath: schema}))
	ctx := b.Context()
	// Open every connection now and note its server process.
	held := make([]*pgxpool.Conn, conns)
	pids := make([]int, conns)
	for i := range held {
		if held[i], err = db.pool.Acquire(ctx); err != nil {
			b.Fatal(err)
		}
		if err := held[i].QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pids[i]); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range held {
		c.Release()
	}
	now := time.Now().UTC()
	type chain struct {
		next int
		user uuid.UUID
		sess uuid.UUID
	}
	chains := make([]*chain, workers)
	for c := range chains {
		usr := activeUser(b, db, fmt.Sprint("rot", c))
		sess, _ := sessionToken(b, db, usr.ID, fmt.Sprint("rot-", c, "-0"), now, now.Add(time.Hour))
		chains[c] = &chain{user: usr.ID, sess: sess.ID}
	}
	commits := func() (n int64) {
		if err := db.pool.QueryRow(ctx, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").Scan(&n); err != nil {
			b.Fatal(err)
		}
		return n
	}
	serverCPU := func() (t time.Duration) {
		for _, pid := range pids {
			c := processCPU(pid)
			if c < 0 {
				return -1
			}
			t += c
		}
		return t
	}
	var taken atomic.Int32
	var rotations atomic.Int64
	server, client, commit0 := serverCPU(), processCPU(os.Getpid()), commits()
	b.SetParallelism(workers / runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) {
		c := int(taken.Add(1)-1) % workers
		ch := chains[c]
		for pb.Next() {
			i := ch.next
			_, _, ok, err := db.RotateRefreshToken(ctx, permiso.RefreshRotation{Hash: fmt.Sprint("rot-", c, "-", i), Now: now.Add(time.Second),
				SessionLifetime: 24 * time.Hour, Replacement: permiso.RefreshToken{ID: uuid.New(), TokenHash: fmt.Sprint("rot-", c, "-", i+1),
					ExpiresAt: now.Add(time.Hour)}})
			if err != nil || !ok {
				b.Errorf("chain %d step %d: rotated %v, %v", c, i, ok, err)
				return
			}
			ch.next++
			rotations.Add(1)
		}
	})
	n := float64(rotations.Load())
	// pg_stat_database counts a session's commits when it reports its
	// statistics, at most once a second; wait for the last ones.
	time.Sleep(1100 * time.Millisecond)
	if s := serverCPU(); s >= 0 && server >= 0 {
		b.ReportMetric(float64(s-server)/n, "server-cpu-ns/op")
	}
	if c := processCPU(os.Getpid()); c >= 0 && client >= 0 {
		b.ReportMetric(float64(c-client)/n, "cpu-ns/op")
	}
	b.ReportMetric(n/float64(commits()-commit0), "rotations/commit")
}

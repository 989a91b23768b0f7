package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/permiso/permiso"
)

// TestDriverErrorsMapped: errors that mean "the database cannot answer
// now" become EUNAVAILABLE (503 with Retry-After), never an internal
// error; constraint errors keep their domain codes.
func TestDriverErrorsMapped(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want permiso.Code
	}{
		{"backend terminated (57P01)", &pgconn.PgError{Severity: "FATAL", Code: "57P01"}, permiso.EUNAVAILABLE},
		{"server crashed (57P02)", &pgconn.PgError{Severity: "FATAL", Code: "57P02"}, permiso.EUNAVAILABLE},
		{"server starting (57P03)", &pgconn.PgError{Severity: "FATAL", Code: "57P03"}, permiso.EUNAVAILABLE},
		{"connection failure (08006)", &pgconn.PgError{Code: "08006"}, permiso.EUNAVAILABLE},
		{"too many connections (53300)", &pgconn.PgError{Code: "53300"}, permiso.EUNAVAILABLE},
		{"statement timeout (57014)", &pgconn.PgError{Code: "57014"}, permiso.EUNAVAILABLE},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), permiso.EUNAVAILABLE},
		{"network error", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, permiso.EUNAVAILABLE},
		{"network timeout", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, permiso.EUNAVAILABLE},
		{"conn closed", fmt.Errorf("exec: %w", pgconn.ErrConnClosed), permiso.EUNAVAILABLE},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), permiso.EUNAVAILABLE},
		{"unique violation", &pgconn.PgError{Code: "23505"}, permiso.EEXISTS},
		{"no rows", pgx.ErrNoRows, permiso.ENOTFOUND},
		{"internal error (XX000)", &pgconn.PgError{Code: "XX000"}, permiso.EINTERNAL},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := permiso.ErrorCode(mapErr(c.err, "thing", opRead)); got != c.want {
				t.Errorf("mapErr(%v) code %q, want %q", c.err, got, c.want)
			}
		})
	}
	for _, c := range []struct {
		err  error
		lost bool
	}{
		{&pgconn.PgError{Code: "57P01"}, true},
		{&pgconn.PgError{Code: "08006"}, true},
		{fmt.Errorf("read: %w", io.EOF), true},
		{&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, true},
		// Not retried on another connection: the statement may be slow
		// rather than lost, or the server not there at all.
		{&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, false},
		{&pgconn.PgError{Code: "57P03"}, false},
		{&pgconn.PgError{Code: "57014"}, false},
		{&pgconn.PgError{Code: "23505"}, false},
	} {
		if got := connectionLost(c.err); got != c.lost {
			t.Errorf("connectionLost(%v) = %v, want %v", c.err, got, c.lost)
		}
	}
	for _, sql := range []string{"SELECT 1", "  select\n* FROM users", "\tSELECT\tx"} {
		if !readOnly(sql) {
			t.Errorf("readOnly(%q) = false", sql)
		}
	}
	for _, sql := range []string{"UPDATE users SET x = 1", "WITH d AS (DELETE FROM users) SELECT 1", "SELECTION", "INSERT INTO t SELECT 1"} {
		if readOnly(sql) {
			t.Errorf("readOnly(%q) = true", sql)
		}
	}
}

// TestConnectionsTerminated ends every connection of the store's pool on
// the server (pg_terminate_backend, as an administrator or a failover
// does) while they sit idle, then uses the store at once: reads,
// transactions and refresh rotations (checked or not) go through on new connections; a
// single write is answered EUNAVAILABLE (it may have been applied, so it
// is not repeated) or succeeds, and is never an internal error.
func TestConnectionsTerminated(t *testing.T) {
	db := newTestDB(t)
	ctx := t.Context()
	u, sess, first := userSession(t, db, "conn-lost")

	steps := []struct {
		name string
		run  func() error
		// mayBeUnavailable: a single write outside a transaction, not
		// repeated after its connection broke.
		mayBeUnavailable bool
	}{
		{"read (GetUser)", func() error { _, err := db.GetUser(ctx, u.ID); return err }, false},
		{"read (ListSessions)", func() error { _, err := db.ListSessions(ctx, u.ID, true, time.Now()); return err }, false},
		{"transaction (UpdateUser)", func() error {
			_, err := db.UpdateUser(ctx, u.ID, func(x *permiso.User) error { again := "Again"; x.FirstName = &again; return nil })
			return err
		}, false},
		{"rotation (UseRefreshToken)", func() error {
			return db.UseRefreshToken(ctx, first.TokenHash, permiso.RefreshToken{ID: uuid.New(), TokenHash: "conn-lost-1",
				UserID: u.ID, SessionID: sess.ID, FamilyID: first.FamilyID, ParentID: &first.ID,
				IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}, time.Now())
		}, false},
		{"checked rotation (RotateRefreshToken)", func() error {
			_, _, ok, err := db.RotateRefreshToken(ctx, permiso.RefreshRotation{Hash: "conn-lost-1", Now: time.Now(),
				SessionLifetime: time.Hour, Replacement: permiso.RefreshToken{ID: uuid.New(), TokenHash: "conn-lost-2",
					ExpiresAt: time.Now().Add(time.Hour)}})
			if err == nil && !ok {
				err = errors.New("the replacement of the first rotation was not rotated")
			}
			return err
		}, false},
		{"login (CreateSessionWithToken)", func() error {
			n := time.Now().UTC()
			_, _, err := db.CreateSessionWithToken(ctx, permiso.Session{ID: uuid.New(), UserID: u.ID, IPAddress: "::1",
				CreatedAt: n, LastActivity: n, ExpiresAt: n.Add(time.Hour)},
				permiso.RefreshToken{ID: uuid.New(), TokenHash: "conn-lost-" + uuid.NewString(), UserID: u.ID,
					FamilyID: uuid.New(), IssuedAt: n, ExpiresAt: n.Add(time.Hour)})
			return err
		}, false},
		{"single write (DeleteExpiredSessions)", func() error { _, err := db.DeleteExpiredSessions(ctx, time.Now()); return err }, true},
	}
	for _, st := range steps {
		if n := terminatePool(t, db); n == 0 {
			t.Fatalf("%s: no connection of the pool was terminated", st.name)
		}
		err := st.run()
		switch {
		case err == nil:
		case st.mayBeUnavailable && errors.Is(err, permiso.ErrUnavailable):
		default:
			t.Errorf("%s after the pool's connections were terminated: %v (code %q)", st.name, err, permiso.ErrorCode(err))
		}
	}
	// The store answers normally afterwards.
	if _, err := db.GetUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
}

// terminatePool opens every connection the pool may hold, leaves them idle
// and terminates them on the server; it waits until they are gone and
// returns how many were terminated.
func terminatePool(t *testing.T, db *DB) int {
	t.Helper()
	ctx := t.Context()
	n := int(db.pool.Config().MaxConns)
	pids := make([]uint32, n)
	conns := make([]*pgxpool.Conn, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := db.pool.Acquire(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			conns[i] = c
			pids[i] = c.Conn().PgConn().PID()
		}()
	}
	wg.Wait()
	for _, c := range conns {
		if c != nil {
			c.Release()
		}
	}
	admin, err := pgx.Connect(ctx, mustNormalize(t, testURL(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var ended int
	if err := admin.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
		FROM pg_stat_activity WHERE pid = ANY($1)`, pids).Scan(&ended); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		var left int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)`, pids).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			return ended
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d terminated connections still listed", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustNormalize(t *testing.T, raw string) string {
	t.Helper()
	u, err := NormalizeURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

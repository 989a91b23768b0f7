package postgres

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/permiso/permiso"
)

// holder is a transaction of the test's own, on a connection of its own,
// that holds locks the statement under test waits for.
type holder struct {
	conn *pgxpool.Conn
	pid  uint32
}

// hold opens a transaction on a connection of db's pool and runs lock in
// it; release ends the transaction (and with it the locks).
func hold(t *testing.T, db *DB, lock string, args ...any) *holder {
	t.Helper()
	c, err := db.pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	h := &holder{conn: c, pid: c.Conn().PgConn().PID()}
	if _, err := c.Exec(t.Context(), "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(t.Context(), lock, args...); err != nil {
		t.Fatal(err)
	}
	return h
}

// waitBlocked returns once a backend waits for a lock h holds.
func (h *holder) waitBlocked(t *testing.T, db *DB) {
	t.Helper()
	for {
		var n int
		if err := db.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`,
			int32(h.pid)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// release commits h's transaction and gives its connection back.
func (h *holder) release(t *testing.T) {
	t.Helper()
	defer h.conn.Release()
	if _, err := h.conn.Exec(context.WithoutCancel(t.Context()), "COMMIT"); err != nil {
		t.Fatal(err)
	}
}

// cutOff runs call on a request context while another transaction holds
// lock (with args), which call's statement waits for: once it waits, the
// request is cancelled (its client went away) and the lock released. It
// returns call's error once whatever call's statement did is committed:
// the lock, taken again, is had only after call's transaction ended.
func cutOff(t *testing.T, db *DB, lock string, args []any, call func(ctx context.Context) error) error {
	t.Helper()
	h := hold(t, db, lock, args...)
	ctx, leave := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- call(ctx) }()
	h.waitBlocked(t, db)
	leave()
	h.release(t)
	err := <-done
	hold(t, db, lock, args...).release(t)
	return err
}

// sessionCutOff creates, in a database of its own, an active user named
// name with a session and its refresh token (hash name), and runs call
// with them cut off while another transaction holds the session's row
// (cutOff). It returns the database and call's error.
func sessionCutOff(t *testing.T, name string, call func(ctx context.Context, db *DB, now time.Time, tok permiso.RefreshToken) error) (*DB, error) {
	t.Helper()
	db := newTestDB(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := activeUser(t, db, name)
	sess, tok := sessionToken(t, db, u.ID, name, now.Add(-time.Minute), now.Add(time.Hour))
	return db, cutOff(t, db, `SELECT 1 FROM user_sessions WHERE id = $1 FOR UPDATE`, []any{sess.ID}, func(ctx context.Context) error {
		return call(ctx, db, now, tok)
	})
}

// TestCutOffRotationTakenBack: a refresh whose client goes away while its
// rotation, sent alone, waits in PostgreSQL (here for the session's row
// lock, held by another transaction) gets the cancellation, and the
// rotation, which PostgreSQL runs to its commit once the lock is free,
// is taken back (sent, undoAbandoned): the token is unused again and its
// replacement gone, so that the client's retry after the grace window is
// not taken for reuse (docs/security-model.md, "Refresh token reuse").
func TestCutOffRotationTakenBack(t *testing.T) {
	db, err := sessionCutOff(t, "cut", func(ctx context.Context, db *DB, now time.Time, _ permiso.RefreshToken) error {
		_, _, ok, err := db.RotateRefreshToken(ctx, permiso.RefreshRotation{Hash: "cut", Now: now, SessionLifetime: 24 * time.Hour,
			Replacement: permiso.RefreshToken{ID: uuid.New(), TokenHash: "cut-next", ExpiresAt: now.Add(time.Hour)}})
		if err == nil && ok {
			err = errors.New("rotated, answered as delivered")
		}
		return err
	})
	ctx := t.Context()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cut-off rotation answered %v, want the request's cancellation", err)
	}
	tok, _, err := db.GetRefreshTokenSession(ctx, "cut")
	if err != nil || tok.UsedAt != nil {
		t.Errorf("cut-off token %+v, %v; want it unused", tok, err)
	}
	if _, _, err := db.GetRefreshTokenSession(ctx, "cut-next"); !errors.Is(err, permiso.ErrNotFound) {
		t.Errorf("cut-off rotation's replacement: %v, want not found", err)
	}
}

// TestCutOffCommitAnswersWhatWasCommitted: a transaction (inTx) whose
// request is cancelled while its COMMIT waits in PostgreSQL (here for a
// deferred trigger's lock, held by another transaction) answers what
// PostgreSQL did: committed, no error; the caller then learns from its
// own context that the client went away, and takes back what it must
// (an unconfirmed login's session: docs/security-model.md, "Refresh token
// reuse"). Before, it answered the cancellation although committed.
func TestCutOffCommitAnswersWhatWasCommitted(t *testing.T) {
	db := newTestDB(t)
	ctx := t.Context()
	key := time.Now().UnixNano()
	for _, q := range []string{
		`CREATE TABLE cut (x int)`,
		`CREATE FUNCTION cut_wait() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_advisory_xact_lock(` + "current_setting('permiso.cut_key')::bigint" + `); RETURN NULL; END $$`,
		`CREATE CONSTRAINT TRIGGER cut_wait AFTER INSERT ON cut DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION cut_wait()`,
	} {
		if _, err := db.pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	err := cutOff(t, db, `SELECT pg_advisory_xact_lock($1)`, []any{key}, func(ctx context.Context) error {
		return db.inTx(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT set_config('permiso.cut_key', $1, true)`, strconv.FormatInt(key, 10)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO cut VALUES (1)`)
			return err
		})
	})
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM cut`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if (err == nil) != (n == 1) {
		t.Fatalf("inTx answered %v, and %d rows were committed", err, n)
	}
	if err != nil {
		t.Fatalf("inTx answered %v; its COMMIT, sent before the request ended, should have run to its answer", err)
	}
}

// TestCutOffSpendAnswersWhatWasCommitted: PostgreSQL's own spend of a
// refresh token (UseRefreshToken: the refresh that asks for a scope, or
// that lost a race), cut off by its client while its statement waits for
// the session's row lock, answers what PostgreSQL did: the token spent
// and its replacement stored, no error (docs/security-model.md, "Refresh
// token reuse": committed, it stands and its answer is a success).
func TestCutOffSpendAnswersWhatWasCommitted(t *testing.T) {
	db, err := sessionCutOff(t, "spent", func(ctx context.Context, db *DB, now time.Time, tok permiso.RefreshToken) error {
		return db.UseRefreshToken(ctx, "spent", permiso.RefreshToken{ID: uuid.New(), TokenHash: "spent-next", UserID: tok.UserID,
			SessionID: tok.SessionID, FamilyID: tok.FamilyID, ParentID: &tok.ID, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}, now)
	})
	ctx := t.Context()
	got, _, gerr := db.GetRefreshTokenSession(ctx, "spent")
	if gerr != nil {
		t.Fatal(gerr)
	}
	if (err == nil) != (got.UsedAt != nil) {
		t.Fatalf("UseRefreshToken answered %v, and the token's used_at is %v", err, got.UsedAt)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("UseRefreshToken answered %v, want success or the request's cancellation", err)
	}
}

// TestCutOffStatementStopsWaiting: a refresh's statement that waits for
// the session's row lock when its client goes away is stopped by
// PostgreSQL at once (a cancel request), not left waiting to commit once
// the lock is free: the call answers the request's cancellation while the
// lock is still held, no backend waits for the lock any more, and nothing
// is written when it is released (DB.alone; docs/security-model.md,
// "Refresh token reuse"). A statement left waiting would hold its
// connection and its rotation slot meanwhile, and commit a rotation
// stamped with its request's time long after, which a later presentation
// would take for reuse.
func TestCutOffStatementStopsWaiting(t *testing.T) {
	db := newTestDB(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := activeUser(t, db, "wait")
	sess, tok := sessionToken(t, db, u.ID, "wait", now.Add(-time.Minute), now.Add(time.Hour))
	for name, call := range map[string]func(ctx context.Context) error{
		"rotation": func(ctx context.Context) error {
			_, _, _, err := db.RotateRefreshToken(ctx, permiso.RefreshRotation{Hash: "wait", Now: now, SessionLifetime: 24 * time.Hour,
				Replacement: permiso.RefreshToken{ID: uuid.New(), TokenHash: "wait-rotated", ExpiresAt: now.Add(time.Hour)}})
			return err
		},
		"spend": func(ctx context.Context) error {
			return db.UseRefreshToken(ctx, "wait", permiso.RefreshToken{ID: uuid.New(), TokenHash: "wait-spent", UserID: tok.UserID,
				SessionID: tok.SessionID, FamilyID: tok.FamilyID, ParentID: &tok.ID, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}, now)
		},
	} {
		h := hold(t, db, `SELECT 1 FROM user_sessions WHERE id = $1 FOR UPDATE`, sess.ID)
		ctx, leave := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- call(ctx) }()
		h.waitBlocked(t, db)
		leave()
		err := <-done // the lock is still held
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s cut off while it waited: %v, want the request's cancellation", name, err)
		}
		var waiting int
		if err := db.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`,
			int32(h.pid)).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting != 0 {
			t.Errorf("%s cut off: %d statements still wait for the lock", name, waiting)
		}
		h.release(t)
	}
	got, _, err := db.GetRefreshTokenSession(t.Context(), "wait")
	if err != nil || got.UsedAt != nil {
		t.Fatalf("token %+v, %v; want it unused", got, err)
	}
	for _, next := range []string{"wait-rotated", "wait-spent"} {
		if _, _, err := db.GetRefreshTokenSession(t.Context(), next); !errors.Is(err, permiso.ErrNotFound) {
			t.Errorf("replacement %s: %v, want not found", next, err)
		}
	}
}

package postgres

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// TestRotationsTogether queues rotations behind busy statement slots, as
// under load, and sends them as one batchRotationSQL statement
// (rotation_batch.go): each is answered as if sent alone. Of two
// rotations of the same token one wins and the other's replacement is not
// written; a rotation refused (expired session, unknown hash) writes
// nothing; the answer of a rotated one is what a read finds afterwards.
func TestRotationsTogether(t *testing.T) {
	db := newTestDB(t)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := activeUser(t, db, "batch")
	from := now.Add(-time.Minute)
	sessionToken(t, db, u.ID, "a", from, now.Add(time.Hour))
	sessionToken(t, db, u.ID, "b", from, now.Add(time.Hour))
	gone, _ := sessionToken(t, db, u.ID, "c", from, now.Add(-time.Second))

	// Every slot busy: the calls below queue.
	db.rot.mu.Lock()
	db.rot.running = rotationsInFlight
	db.rot.mu.Unlock()
	presented := []string{"a", "a", "b", "c", "unknown"}
	type answer struct {
		t       permiso.RefreshToken
		sess    permiso.Session
		rotated bool
		err     error
	}
	answers := make([]answer, len(presented))
	var wg sync.WaitGroup
	for i, hash := range presented {
		wg.Go(func() {
			a := &answers[i]
			a.t, a.sess, a.rotated, a.err = db.RotateRefreshToken(ctx, permiso.RefreshRotation{Hash: hash, Now: now,
				SessionLifetime: 24 * time.Hour, Replacement: permiso.RefreshToken{ID: uuid.New(), TokenHash: fmt.Sprint(hash, "-next-", i),
					ExpiresAt: now.Add(time.Hour)}})
		})
	}
	for queued := 0; queued < len(presented); time.Sleep(time.Millisecond) {
		db.rot.mu.Lock()
		queued = len(db.rot.queue)
		db.rot.mu.Unlock()
	}
	batch := db.rot.next()
	if len(batch) != len(presented) {
		t.Fatalf("batch of %d, want %d", len(batch), len(presented))
	}
	db.drain(ctx, batch)
	wg.Wait()
	db.rot.mu.Lock()
	running := db.rot.running
	db.rot.running = 0
	db.rot.mu.Unlock()
	if running != rotationsInFlight-1 {
		t.Errorf("slots running after the batch = %d, want %d", running, rotationsInFlight-1)
	}

	won := 0
	for i, a := range answers {
		if a.err != nil {
			t.Fatalf("%s: %v", presented[i], a.err)
		}
		next := fmt.Sprint(presented[i], "-next-", i)
		stored, _, err := db.GetRefreshTokenSession(ctx, next)
		switch {
		case a.rotated:
			if err != nil {
				t.Fatalf("%s rotated, its replacement %s: %v", presented[i], next, err)
			}
			if stored.ParentID == nil || *stored.ParentID != a.t.ID || stored.SessionID != a.t.SessionID || stored.IssuedAt != now {
				t.Errorf("%s: replacement %+v, want the child of %v issued at %v", presented[i], stored, a.t.ID, now)
			}
			// The answer is the token and session as now stored.
			t2, s2, err := db.GetRefreshTokenSession(ctx, presented[i])
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(t2, a.t) || !reflect.DeepEqual(s2, a.sess) {
				t.Errorf("%s: answered %+v %+v, stored %+v %+v", presented[i], a.t, a.sess, t2, s2)
			}
			if a.t.UsedAt == nil || !a.t.UsedAt.Equal(now) || !a.sess.LastActivity.Equal(now) {
				t.Errorf("%s: used at %v, session active at %v, want %v", presented[i], a.t.UsedAt, a.sess.LastActivity, now)
			}
			if presented[i] == "a" {
				won++
			}
		case err == nil:
			t.Errorf("%s not rotated, but its replacement %s was written", presented[i], next)
		}
	}
	if won != 1 || !answers[2].rotated || answers[3].rotated || answers[4].rotated {
		t.Errorf("rotated: a %d times, b %v, c %v, unknown %v; want a once, b only", won, answers[2].rotated, answers[3].rotated, answers[4].rotated)
	}
	c, cs, err := db.GetRefreshTokenSession(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if c.UsedAt != nil || !cs.LastActivity.Equal(gone.LastActivity) {
		t.Errorf("the refused rotation wrote: token used at %v, session active at %v", c.UsedAt, cs.LastActivity)
	}
}

// TestRotationsQueuedUnderLoad rotates many chains at once through
// RotateRefreshToken (some rotations queue and go together, others alone):
// every rotation succeeds and each chain ends with one unused token.
func TestRotationsQueuedUnderLoad(t *testing.T) {
	db := newTestDB(t)
	ctx := t.Context()
	now := time.Now().UTC()
	const chains, steps = 12, 15
	var wg sync.WaitGroup
	for c := range chains {
		u := activeUser(t, db, fmt.Sprint("load", c))
		sessionToken(t, db, u.ID, fmt.Sprint(c, "-0"), now, now.Add(time.Hour))
		wg.Go(func() {
			for i := range steps {
				_, _, ok, err := db.RotateRefreshToken(ctx, permiso.RefreshRotation{Hash: fmt.Sprint(c, "-", i), Now: now,
					SessionLifetime: 24 * time.Hour, Replacement: permiso.RefreshToken{ID: uuid.New(), TokenHash: fmt.Sprint(c, "-", i+1), ExpiresAt: now.Add(time.Hour)}})
				if err != nil || !ok {
					t.Errorf("chain %d step %d: rotated %v, %v", c, i, ok, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for c := range chains {
		last, _, err := db.GetRefreshTokenSession(ctx, fmt.Sprint(c, "-", steps))
		if err != nil || last.UsedAt != nil {
			t.Errorf("chain %d: last token %+v, %v; want it unused", c, last, err)
		}
	}
}

// TestAbandonedBatchedRotationTakenBack: a refresh that gives up (its
// context cancelled: the client went away) after its queued rotation was
// taken into a batch gets an error, and the batch's rotation of its token
// is taken back (undoAbandoned): the token is unused again and its
// replacement, which never reached the client, is gone, so that the
// client's retry is not taken for reuse. The other rotation of the batch
// stands.
func TestAbandonedBatchedRotationTakenBack(t *testing.T) {
	db := newTestDB(t)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := activeUser(t, db, "gone")
	for _, hash := range []string{"left", "stayed"} {
		sessionToken(t, db, u.ID, hash, now.Add(-time.Minute), now.Add(time.Hour))
	}
	db.rot.mu.Lock()
	db.rot.running = rotationsInFlight // every slot busy: both calls queue
	db.rot.mu.Unlock()
	leftCtx, leave := context.WithCancel(ctx)
	errs := map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for hash, c := range map[string]context.Context{"left": leftCtx, "stayed": ctx} {
		wg.Go(func() {
			_, _, ok, err := db.RotateRefreshToken(c, permiso.RefreshRotation{Hash: hash, Now: now, SessionLifetime: 24 * time.Hour,
				Replacement: permiso.RefreshToken{ID: uuid.New(), TokenHash: hash + "-next", ExpiresAt: now.Add(time.Hour)}})
			if err == nil && !ok {
				err = fmt.Errorf("not rotated")
			}
			mu.Lock()
			errs[hash] = err
			mu.Unlock()
		})
	}
	for queued := 0; queued < 2; time.Sleep(time.Millisecond) {
		db.rot.mu.Lock()
		queued = len(db.rot.queue)
		db.rot.mu.Unlock()
	}
	batch := db.rot.next()
	leave() // after the batch took it: too late to withdraw
	db.drain(ctx, batch)
	wg.Wait()
	db.rot.mu.Lock()
	db.rot.running = 0
	db.rot.mu.Unlock()

	if errs["left"] == nil || errs["stayed"] != nil {
		t.Fatalf("errors: abandoned %v, waited %v; want an error for the abandoned one only", errs["left"], errs["stayed"])
	}
	left, _, err := db.GetRefreshTokenSession(ctx, "left")
	if err != nil || left.UsedAt != nil {
		t.Errorf("abandoned token %+v, %v; want it unused", left, err)
	}
	if _, _, err := db.GetRefreshTokenSession(ctx, "left-next"); !errors.Is(err, permiso.ErrNotFound) {
		t.Errorf("abandoned rotation's replacement: %v, want not found", err)
	}
	stayed, _, err := db.GetRefreshTokenSession(ctx, "stayed")
	if err != nil || stayed.UsedAt == nil {
		t.Errorf("waited-for token %+v, %v; want it used", stayed, err)
	}
	if _, _, err := db.GetRefreshTokenSession(ctx, "stayed-next"); err != nil {
		t.Errorf("waited-for rotation's replacement: %v", err)
	}
}

// TestRevokeRetriedAfterDeadlock: a revocation of a user's sessions that
// PostgreSQL aborts to break a deadlock over two of them (as with a batch
// of rotations that locks them in the other order, rotation_batch.go) is
// run again and succeeds (sqlstore, revokeSessionsWhere): every session
// and its token end revoked, and the caller sees no error.
func TestRevokeRetriedAfterDeadlock(t *testing.T) {
	db := newTestDB(t)
	ctx := t.Context()
	deadlocks := func() int64 {
		var n int64
		if err := db.pool.QueryRow(ctx, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := deadlocks()
	for round := range 2 {
		u, s1, _ := userSession(t, db, fmt.Sprint("deadlock", round))
		now := time.Now().UTC()
		s2, _, err := db.CreateSessionWithToken(ctx, permiso.Session{ID: uuid.New(), UserID: u.ID, IPAddress: "::1",
			CreatedAt: now, LastActivity: now, ExpiresAt: now.Add(time.Hour)},
			permiso.RefreshToken{ID: uuid.New(), TokenHash: fmt.Sprint("deadlock", round, "-second"), UserID: u.ID, FamilyID: uuid.New(),
				IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		// The other transaction holds one session (the first in one
		// round, the second in the other: whichever the revocation's
		// plan visits second is the one that deadlocks), waits until the
		// revocation waits for it, then asks for the other session.
		first, second := s1.ID, s2.ID
		if round == 1 {
			first, second = second, first
		}
		tx, err := db.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "SELECT 1 FROM user_sessions WHERE id = $1 FOR UPDATE", first); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		var revoked []permiso.Session
		go func() {
			var err error
			revoked, err = db.RevokeUserSessions(ctx, u.ID, nil, "test", time.Now().UTC())
			done <- err
		}()
		for waiting := false; !waiting; time.Sleep(5 * time.Millisecond) {
			if err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
				AND wait_event_type = 'Lock' AND query LIKE 'UPDATE user_sessions SET revoked_at%')`).Scan(&waiting); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := tx.Exec(ctx, "SELECT 1 FROM user_sessions WHERE id = $1 FOR UPDATE", second); err != nil {
			t.Logf("round %d: the other transaction was the deadlock's victim: %v", round, err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("round %d: revoke: %v", round, err)
		}
		if len(revoked) != 2 {
			t.Errorf("round %d: revoked %d sessions, want 2", round, len(revoked))
		}
		for _, hash := range []string{fmt.Sprint("deadlock", round, "-0"), fmt.Sprint("deadlock", round, "-second")} {
			tok, sess, err := db.GetRefreshTokenSession(ctx, hash)
			if err != nil || tok.RevokedAt == nil || sess.RevokedAt == nil {
				t.Errorf("round %d: %s: token revoked at %v, session revoked at %v, %v; want both revoked", round, hash, tok.RevokedAt, sess.RevokedAt, err)
			}
		}
	}
	if deadlocks() == before {
		t.Error("no deadlock happened: the test did not exercise the retry")
	}
}

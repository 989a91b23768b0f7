package postgres

import (
	"context"
	"strconv"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/sqlstore"
)

// Rotations in flight (docs/benchmarks.md, "Refresh: rotations sent
// together (2026-12-07, refresh)"). A refresh whose rotation finds fewer than
// rotationsInFlight statements of RotateRefreshToken running sends its
// own at once, alone (checkedRotationSQL); one that finds them all
// running waits in the queue, and whichever statement finishes next sends
// everything queued as one statement (batchRotationSQL), up to
// maxRotationBatch rotations. Under little load nothing waits and every
// rotation is sent alone; under much load a statement, its round trip
// and its commit serve several refreshes instead of one.
const (
	rotationsInFlight = 2
	maxRotationBatch  = 64
)

// rotation is one RotateRefreshToken call: its arguments (as
// checkedRotationSQL takes them) and, once done is closed, its outcome.
type rotation struct {
	args    []any
	replID  uuid.UUID
	done    chan struct{}
	t       permiso.RefreshToken
	sess    permiso.Session
	rotated bool
	err     error
}

// rotations is the queue of rotations waiting for a statement, and the
// count of statements running.
type rotations struct {
	mu      sync.Mutex
	running int
	queue   []*rotation
}

// enter reports whether r may be sent now (a statement slot was free);
// otherwise r is queued and will be sent by the statement that frees one.
func (q *rotations) enter(r *rotation) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.running < rotationsInFlight {
		q.running++
		return true
	}
	q.queue = append(q.queue, r)
	return false
}

// withdraw takes r out of the queue, when no statement has taken it yet
// (its refresh gave up waiting: nothing of it is sent), and reports
// whether it did.
func (q *rotations) withdraw(r *rotation) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, x := range q.queue {
		if x == r {
			q.queue = append(q.queue[:i], q.queue[i+1:]...)
			return true
		}
	}
	return false
}

// next takes the queued rotations for the next statement of a slot that
// has just finished one, or frees the slot (nil) when none wait.
func (q *rotations) next() []*rotation {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) == 0 {
		q.running--
		return nil
	}
	n := min(len(q.queue), maxRotationBatch)
	batch := make([]*rotation, n)
	copy(batch, q.queue)
	q.queue = append(q.queue[:0], q.queue[n:]...)
	return batch
}

// drain sends batch, then the rotations queued meanwhile, batch after
// batch, on the slot its caller held, and frees it when the queue is
// empty. ctx carries no cancellation: the waiting refreshes are not the
// caller's.
func (db *DB) drain(ctx context.Context, batch []*rotation) {
	for ; batch != nil; batch = db.rot.next() {
		db.rotateBatch(ctx, batch)
	}
}

// rotateBatch sends batch as one statement when it holds more than one
// rotation. If that statement fails (a deadlock with another batch over
// the same sessions, a lost connection, any error), nothing of it was
// written, and each rotation is sent again alone, which answers it as
// RotateRefreshToken always has.
func (db *DB) rotateBatch(ctx context.Context, batch []*rotation) {
	defer func() {
		for _, r := range batch {
			close(r.done)
		}
	}()
	if len(batch) > 1 || db.together {
		err := db.rotateTogether(ctx, batch)
		if err == nil {
			return
		}
		if db.together {
			for _, r := range batch {
				r.err = err
			}
			return
		}
	}
	for _, r := range batch {
		db.rotateAlone(ctx, r)
	}
}

// rotateTogether runs batchRotationSQL for batch and sets each rotation's
// outcome; it returns the statement's error, and sets nothing then.
func (db *DB) rotateTogether(ctx context.Context, batch []*rotation) error {
	cols := make([][]any, len(batchRotationInputs))
	for i := range cols {
		cols[i] = make([]any, len(batch))
		for j, r := range batch {
			cols[i][j] = r.args[i]
		}
	}
	args := make([]any, len(cols))
	for i, c := range cols {
		args[i] = c
	}
	type out struct {
		t    permiso.RefreshToken
		sess permiso.Session
	}
	got := make(map[uuid.UUID]out, len(batch))
	_, err := db.alone(ctx, batchRotationSQL, args, func(row pgx.Rows) error {
		var o out
		var repl uuid.UUID
		if err := row.Scan(append(sqlstore.RefreshTokens.Dest(db.d, &o.t, sqlstore.Sessions.Dest(db.d, &o.sess)...), &repl)...); err != nil {
			return mapErr(err, "refresh token", opWrite)
		}
		sqlstore.RefreshTokens.Normalize(&o.t)
		sqlstore.Sessions.Normalize(&o.sess)
		got[repl] = o
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range batch {
		if o, ok := got[r.replID]; ok {
			r.t, r.sess, r.rotated = o.t, o.sess, true
		}
	}
	return nil
}

// batchRotationInputs are the names batchRotationSQL gives the columns of
// its input, in the order of checkedRotationSQL's arguments ?1 to ?11,
// with each column's type.
var batchRotationInputs = []struct{ name, typ string }{
	{"hash", "text"}, {"now", "timestamptz"}, {"client", "uuid"}, {"since", "timestamptz"}, {"born_after", "timestamptz"},
	{"lifetime_us", "bigint"}, {"repl_id", "uuid"}, {"repl_hash", "text"}, {"repl_expires", "timestamptz"},
	{"repl_ip", "text"}, {"repl_ua", "text"},
}

// batchRotationSQL is checkedRotationSQL for several rotations at once:
// its ?1 to ?11 are arrays, one element per rotation (unnest makes them the
// rows of in), and every condition and value of checkedRotationSQL is
// taken from the rotation's row. A session that two rotations of the
// batch name is touched once, by one of them; the other's token is
// not marked (used joins the row touched returned, which carries the
// rotation's replacement id), and that rotation answers no row, as one
// that lost a race to a concurrent rotation does. Each answer carries the
// replacement id of its rotation (last column, r_id).
var batchRotationSQL = func() string {
	var unnest, names []string
	for i, in := range batchRotationInputs {
		unnest = append(unnest, "?"+strconv.Itoa(i+1)+"::"+in.typ+"[]")
		names = append(names, in.name)
	}
	carried := []string{"hash", "now", "lifetime_us", "repl_id", "repl_hash", "repl_expires", "repl_ip", "repl_ua"}
	var touchedRet []string
	for _, c := range sqlstore.Sessions.Cols {
		touchedRet = append(touchedRet, "s."+c.Name)
	}
	for _, c := range carried {
		touchedRet = append(touchedRet, "cand."+c+" AS c_"+c)
	}
	repl := map[string]string{
		"id": "c_repl_id", "token_hash": "c_repl_hash", "user_id": "user_id", "client_id": "client_id",
		"session_id": "session_id", "family_id": "family_id", "parent_id": "id",
		"issued_at": "c_now", "expires_at": "LEAST(c_repl_expires, s_created_at + c_lifetime_us * interval '1 microsecond')",
		"used_at": "NULL::timestamptz", "revoked_at": "NULL::timestamptz", "revocation_reason": "NULL::text",
		"client_ip": "c_repl_ip", "user_agent": "c_repl_ua", "scopes": "scopes",
	}
	values, usedRet, out := rotationColumns("batchRotationSQL", repl)
	for _, c := range carried {
		usedRet = append(usedRet, "touched.c_"+c)
	}
	out = append(out, "c_repl_id AS r_id")
	return `WITH cand AS (
	SELECT rt.session_id, i.* FROM unnest(` + strings.Join(unnest, ", ") + `) AS i (` + strings.Join(names, ", ") + `)
	JOIN refresh_tokens AS rt ON rt.token_hash = i.hash
	JOIN users AS u ON u.id = rt.user_id
	WHERE rt.used_at IS NULL AND rt.revoked_at IS NULL AND rt.expires_at > i.now
		AND rt.client_id IS NOT DISTINCT FROM i.client
		AND (i.since IS NULL OR rt.issued_at >= i.since)
		AND u.is_active AND (u.tokens_revoked_before IS NULL OR rt.issued_at >= u.tokens_revoked_before)
), touched AS (
	UPDATE user_sessions AS s SET last_activity = cand.now,
		expires_at = GREATEST(s.expires_at, LEAST(cand.repl_expires, s.created_at + cand.lifetime_us * interval '1 microsecond'))
	FROM cand
	WHERE s.id = cand.session_id AND s.revoked_at IS NULL AND s.expires_at > cand.now AND s.created_at > cand.born_after
	RETURNING ` + strings.Join(touchedRet, ", ") + `
), used AS (
	UPDATE refresh_tokens AS rt SET used_at = touched.c_now FROM touched
	WHERE rt.token_hash = touched.c_hash AND rt.used_at IS NULL AND rt.revoked_at IS NULL AND rt.session_id = touched.id
	RETURNING ` + strings.Join(usedRet, ", ") + `
), ins AS (
	INSERT INTO refresh_tokens (` + sqlstore.RefreshTokens.Names() + `)
	SELECT ` + strings.Join(values, ", ") + ` FROM used
)
SELECT ` + strings.Join(out, ", ") + ` FROM used`
}()

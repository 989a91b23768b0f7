package postgres

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/sqlstore"
)

// UseRefreshToken is PostgreSQL's own path for the rotation, the one
// store call on the refresh hot path (docs/benchmarks.md, "The refresh
// path"): one statement (rotationSQL) sent alone, in a transaction of its
// own, so that a rotation costs one round trip and one commit, where the shared statements (sqlstore.Store.UseRefreshToken)
// take five round trips. It touches the session, marks the unused,
// unrevoked token with the given hash as used at now with one conditional
// UPDATE (a compare-and-swap) and inserts replacement; if no row matched
// it returns ErrConflict (already used or revoked) or ErrNotFound (no such
// token) and writes no token, so of any number of concurrent callers
// exactly one succeeds. It passes the same conformance tests as the
// shared path.
//
// A rotation that finds its connection lost before any answer (one the
// server ended while it sat in the pool) is sent again on another
// connection: it has not been committed.
//
// Like a transaction's COMMIT (inTx), the statement is sent only while
// ctx lasts, and its answer is what PostgreSQL did, never a cancellation
// of a rotation that was committed (DB.alone).
func (db *DB) UseRefreshToken(ctx context.Context, hash string, replacement permiso.RefreshToken, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return mapErr(err, "refresh token", opWrite)
	}
	t := sqlstore.RefreshDefaults(replacement)
	for attempt := 0; ; attempt++ {
		lost, err := db.useRefreshToken(ctx, hash, t, now)
		if !lost || attempt >= int(db.cfg.MaxConns) || ctx.Err() != nil {
			return err
		}
	}
}

// useRefreshToken is one attempt of UseRefreshToken; lost reports that
// the connection was lost before the statement answered (DB.alone).
func (db *DB) useRefreshToken(ctx context.Context, hash string, t permiso.RefreshToken, now time.Time) (lost bool, err error) {
	var inserted, exists bool
	lost, err = db.alone(ctx, rotationSQL, append(sqlstore.RefreshTokens.Args(db.d, &t), ts(now), hash), func(r pgx.Rows) error {
		if err := r.Scan(&inserted, &exists); err != nil {
			return mapErr(err, "refresh token", opWrite)
		}
		return nil
	})
	switch {
	case err != nil:
		return lost, err
	case !inserted && !exists:
		return false, permiso.Errorf(permiso.ENOTFOUND, "%s", sqlstore.RefreshTokenMessages.NotFound)
	case !inserted:
		return false, permiso.Errorf(permiso.ECONFLICT, "%s", sqlstore.RefreshTokenSpentMessage)
	}
	return false, nil
}

// alone sends the statement q (bound) with args on its own: PostgreSQL
// runs a single statement of the extended query protocol in a
// transaction of its own, committed when the statement has run (at the
// Sync that ends the query), so that q is atomic and costs one round trip
// and one commit, without the BEGIN and COMMIT that an explicit
// transaction would send and have the server execute around it
// (docs/benchmarks.md, "The refresh path"). scan is given each row q
// answers. lost reports that the connection was lost before q answered
// anything (as when the server ended the connection while it sat in the
// pool): q has not been committed, and it may be sent again.
//
// q runs to its answer, which is what PostgreSQL did, whatever becomes of
// the request ctx: pgx cannot take back a statement it has sent, and a
// statement cut off on the client's side may still be committed (an
// attack measured most of the rotations whose clients hung up within
// milliseconds as committed), so that what the caller takes back when its
// request ended (undoAbandoned, the service's compensations) would not
// be. When ctx ends while q runs, PostgreSQL is asked to cancel q (a
// cancel request): q, waiting for a lock or running, then stops at once
// and rolls back, or has committed already; either way its answer comes
// back at once and frees the connection (its request gets ctx's error
// when q failed, the client gone rather than a database error). The
// connection of a cancelled statement is closed rather than reused: a
// cancel request that arrived late would stop its next statement. q is
// bounded by sentTimeout (sent) while ctx lasts; a request that ends
// while it waits for a connection sends nothing.
func (db *DB) alone(ctx context.Context, q string, args []any, scan func(pgx.Rows) error) (lost bool, err error) {
	conn, err := db.pool.Acquire(ctx) // nothing is sent while the request waits for a connection
	if err != nil {
		return false, mapErr(err, "refresh token", opWrite)
	}
	sctx, cancel := sent(ctx)
	defer cancel()
	cancelled := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(cancelled)
		cctx, cancel := context.WithTimeout(context.Background(), sentTimeout)
		defer cancel()
		_ = conn.Conn().PgConn().CancelRequest(cctx)
	})
	defer func() {
		if !stop() {
			<-cancelled
			_ = conn.Conn().Close(context.Background())
			if err != nil && ctx.Err() != nil {
				lost, err = false, mapErr(ctx.Err(), "refresh token", opWrite)
			}
		}
		conn.Release()
	}()
	rows, err := conn.Query(sctx, db.d.Bind(q), args...)
	if err != nil {
		return connectionLost(err), mapErr(err, "refresh token", opWrite)
	}
	defer rows.Close()
	answered := false
	for rows.Next() {
		answered = true
		if err := scan(rows); err != nil {
			return false, err
		}
	}
	if err := rows.Err(); err != nil {
		return !answered && connectionLost(err), mapErr(err, "refresh token", opWrite)
	}
	return false, nil
}

var _ permiso.RefreshRotator = (*DB)(nil)

// RotateRefreshToken is permiso.RefreshRotator: the refresh grant's
// checks and its rotation in one statement (checkedRotationSQL), sent
// alone in a transaction of its own (DB.alone), so that the common
// refresh costs one round trip and one commit and no read before it
// (docs/benchmarks.md, "The refresh path"). Like UseRefreshToken, a
// rotation that finds its connection lost before any answer is sent again
// on another connection. Under load, rotations that find
// rotationsInFlight statements running queue and are sent together, as one
// statement of the same checks (batchRotationSQL, rotation_batch.go); a
// refresh that gives up waiting (ctx done) before its rotation is sent
// withdraws it. A rotation once sent, alone or in a batch, runs to its
// answer whatever its refresh does (DB.alone), so that its outcome is known; when
// it rotated and its refresh gave up meanwhile, it is taken back
// (undoAbandoned) and the refresh gets ctx's error.
func (db *DB) RotateRefreshToken(ctx context.Context, r permiso.RefreshRotation) (permiso.RefreshToken, permiso.Session, bool, error) {
	var since any // NULL: no client cut-off
	if !r.IssuedSince.IsZero() {
		// issued_at >= since on the stored microseconds: a cut-off
		// between two microseconds counts from the next one, as the
		// comparison of the exact times does.
		s := ts(r.IssuedSince)
		if s.Before(r.IssuedSince) {
			s = s.Add(time.Microsecond)
		}
		since = s
	}
	var client any
	if r.ClientID != nil {
		client = *r.ClientID
	}
	repl := r.Replacement
	rot := &rotation{args: []any{r.Hash, ts(r.Now), client, since, ts(r.Now.Add(-r.SessionLifetime)), r.SessionLifetime.Microseconds(),
		repl.ID, repl.TokenHash, ts(repl.ExpiresAt), repl.ClientIP, repl.UserAgent}, replID: repl.ID, done: make(chan struct{})}
	if db.together {
		db.rotateBatch(ctx, []*rotation{rot})
	} else if !db.rot.enter(rot) {
		// Queued: sent with the others waiting by the next statement to
		// finish (rotation_batch.go).
		select {
		case <-rot.done:
		case <-ctx.Done():
			if db.rot.withdraw(rot) {
				return permiso.RefreshToken{}, permiso.Session{}, false, mapErr(ctx.Err(), "refresh token", opWrite)
			}
			<-rot.done // already sent: taken back below if it rotated
		}
		if err := db.undoAbandoned(ctx, rot); err != nil {
			return permiso.RefreshToken{}, permiso.Session{}, false, err
		}
	} else {
		if err := ctx.Err(); err != nil {
			// Gone before anything was sent: nothing is.
			db.free(ctx)
			return permiso.RefreshToken{}, permiso.Session{}, false, mapErr(err, "refresh token", opWrite)
		}
		db.rotateAlone(ctx, rot)
		db.free(ctx)
		if err := db.undoAbandoned(ctx, rot); err != nil {
			return permiso.RefreshToken{}, permiso.Session{}, false, err
		}
	}
	return rot.t, rot.sess, rot.rotated, rot.err
}

// free hands the statement slot its caller held to the rotations queued
// meanwhile, or frees it (rotation_batch.go). The batch runs on ctx's
// values without its cancellation: the refreshes waiting are not ctx's.
func (db *DB) free(ctx context.Context) {
	if batch := db.rot.next(); batch != nil {
		go db.drain(context.WithoutCancel(ctx), batch)
	}
}

// undoAbandoned takes back r's rotation when it rotated but its refresh
// gave up meanwhile (ctx done: the client went away or timed out): the
// replacement would never reach the client, and its retry after the
// grace window would be taken for reuse and end the session. A rotation
// runs without the cancellation of its refresh, so that its outcome is
// known: sent in a batch, the batch is not its refresh's; sent alone, it
// runs to its answer (DB.alone). It returns ctx's error when it took the
// rotation back, nil otherwise.
func (db *DB) undoAbandoned(ctx context.Context, r *rotation) error {
	if !r.rotated || ctx.Err() == nil {
		return nil
	}
	uctx, cancel := sent(ctx)
	defer cancel()
	if err := db.UndoRefreshRotation(uctx, r.t.ID, r.replID); err != nil {
		return err
	}
	return mapErr(ctx.Err(), "refresh token", opWrite)
}

// rotateAlone sends r's rotation alone (checkedRotationSQL), again on
// another connection when its connection was lost before any answer.
func (db *DB) rotateAlone(ctx context.Context, r *rotation) {
	for attempt := 0; ; attempt++ {
		var t permiso.RefreshToken
		var sess permiso.Session
		rotated := false
		lost, err := db.alone(ctx, checkedRotationSQL, r.args, func(row pgx.Rows) error {
			if err := row.Scan(sqlstore.RefreshTokens.Dest(db.d, &t, sqlstore.Sessions.Dest(db.d, &sess)...)...); err != nil {
				return mapErr(err, "refresh token", opWrite)
			}
			rotated = true
			return nil
		})
		if err == nil {
			if rotated {
				sqlstore.RefreshTokens.Normalize(&t)
				sqlstore.Sessions.Normalize(&sess)
				r.t, r.sess, r.rotated = t, sess, true
			}
			return
		}
		if !lost || attempt >= int(db.cfg.MaxConns) || ctx.Err() != nil {
			r.err = err
			return
		}
	}
}

// UndoRefreshRotation implements permiso.RefreshRotator: one statement
// (undoRotationSQL), its own transaction.
func (db *DB) UndoRefreshRotation(ctx context.Context, presented, replacement uuid.UUID) error {
	if _, err := db.pool.Exec(ctx, db.d.Bind(undoRotationSQL), presented, replacement); err != nil {
		return mapErr(err, "refresh token", opWrite)
	}
	return nil
}

// undoRotationSQL deletes the replacement ?2 of the presented token ?1
// while it is unused and unrevoked (it never left the server), and only
// then clears the presented token's used_at, unless the token was revoked
// meanwhile (a grace retry spent, its family revoked): what the rotation
// wrote, and nothing written since, is taken back.
const undoRotationSQL = `WITH gone AS (
	DELETE FROM refresh_tokens WHERE id = ?2 AND parent_id = ?1 AND used_at IS NULL AND revoked_at IS NULL
	RETURNING 1
)
UPDATE refresh_tokens SET used_at = NULL
WHERE id = ?1 AND used_at IS NOT NULL AND revoked_at IS NULL AND EXISTS (SELECT 1 FROM gone)`

// rotationSQL is the whole rotation in one statement, in the order of
// the shared path: the session row is locked first, as by every
// transaction that locks a session and its refresh tokens (revoke-all,
// logout), so that a rotation cannot deadlock with them.
//
//   - touched applies permiso.TouchSession (last activity now, expiry
//     moved forward, never back), but only if the presented token looked
//     unused and unrevoked when the statement began: a refused rotation
//     does not touch the session. (A rotation that loses a race with a
//     concurrent one still touches it, with the winner's values give or
//     take the time between the two; its grace retry touches it anyway.)
//   - used marks the token used; the scalar subquery over touched makes
//     it run after touched, so the session is locked before the token.
//     Of concurrent rotations exactly one matches (the row lock of the
//     UPDATE; the others find used_at set when they recheck the row).
//   - ins inserts the replacement only when used matched.
//
// It answers whether the replacement was inserted and whether a token has
// the hash at all (ErrConflict or ErrNotFound). Its arguments are
// sqlstore.RefreshTokens' values of the replacement
// (RefreshTokens.Args), then the time of use and the presented hash.
var rotationSQL = func() string {
	n := len(sqlstore.RefreshTokens.Cols)
	marks := make([]string, n)
	col := map[string]string{}
	for i, c := range sqlstore.RefreshTokens.Cols {
		marks[i] = "?" + strconv.Itoa(i+1)
		col[c.Name] = marks[i]
	}
	now, hash := "?"+strconv.Itoa(n+1), "?"+strconv.Itoa(n+2)
	return `WITH live AS (
	SELECT 1 FROM refresh_tokens WHERE token_hash = ` + hash + ` AND used_at IS NULL AND revoked_at IS NULL
), touched AS (
	UPDATE user_sessions SET last_activity = ` + now + `, expires_at = GREATEST(expires_at, ` + col["expires_at"] + `)
	WHERE id = ` + col["session_id"] + ` AND EXISTS (SELECT 1 FROM live)
	RETURNING 1
), used AS (
	UPDATE refresh_tokens SET used_at = ` + now + `
	WHERE token_hash = ` + hash + ` AND used_at IS NULL AND revoked_at IS NULL
		AND (SELECT count(*) FROM touched) >= 0
	RETURNING 1
), ins AS (
	INSERT INTO refresh_tokens (` + sqlstore.RefreshTokens.Names() + `)
	SELECT ` + strings.Join(marks, ", ") + ` FROM used
	RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM ins), EXISTS (SELECT 1 FROM refresh_tokens WHERE token_hash = ` + hash + `)`
}()

// checkedRotationSQL is RotateRefreshToken's statement: rotationSQL with
// the refresh grant's checks (oauth2/grants.go, refreshGrant) made in SQL
// instead of on a token read first, and the replacement built from the
// presented token's row.
//
//   - cand finds the token by its hash and keeps it only when the token's
//     and its user's checks hold: unused, unrevoked, not expired; its
//     client the authenticated one (?3, NULL for a first-party token)
//     and, with a client, issued at or after the client's cut-off (?4,
//     NULL without); its user active and without a revoke-all cut-off
//     after the token's issue.
//   - touched touches the session (permiso.TouchSession) when cand found
//     the token and the session's checks hold on the row it locks (by
//     primary key; a revocation committed meanwhile leaves it untouched):
//     not revoked, not expired, created after ?5 (now minus the absolute
//     session lifetime). The replacement's expiry is ?9 capped at the end
//     of the session's absolute lifetime (created_at plus ?6
//     microseconds).
//   - used marks the token used, joined with the session touched returns:
//     after touched (the session's row lock first, as in rotationSQL and
//     revoke-all), and only if touched touched it. It returns the token
//     and that session (its columns prefixed "s_"), so that what follows
//     reads one row and joins nothing.
//   - ins inserts the replacement: ?7 id, ?8 hash, ?10 client IP, ?11 user
//     agent; user, client, session, family and scopes the presented
//     token's, its parent the presented token, issued at ?2. A statement
//     in WITH that changes data runs to completion whether or not the
//     query reads it: used's row is inserted for, or the statement fails.
//
// It answers the presented token (now used) and its session (touched), or
// no row when nothing was rotated.
var checkedRotationSQL = func() string {
	repl := map[string]string{
		"id": "?7::uuid", "token_hash": "?8::text", "user_id": "used.user_id", "client_id": "used.client_id",
		"session_id": "used.session_id", "family_id": "used.family_id", "parent_id": "used.id",
		"issued_at": "?2", "expires_at": "LEAST(?9::timestamptz, used.s_created_at + ?6::bigint * interval '1 microsecond')",
		"used_at": "NULL::timestamptz", "revoked_at": "NULL::timestamptz", "revocation_reason": "NULL::text",
		"client_ip": "?10::text", "user_agent": "?11::text", "scopes": "used.scopes",
	}
	values, returning, out := rotationColumns("checkedRotationSQL", repl)
	return `WITH cand AS (
	SELECT rt.session_id FROM refresh_tokens AS rt
	JOIN users AS u ON u.id = rt.user_id
	WHERE rt.token_hash = ?1 AND rt.used_at IS NULL AND rt.revoked_at IS NULL AND rt.expires_at > ?2
		AND rt.client_id IS NOT DISTINCT FROM ?3::uuid
		AND (?4::timestamptz IS NULL OR rt.issued_at >= ?4::timestamptz)
		AND u.is_active AND (u.tokens_revoked_before IS NULL OR rt.issued_at >= u.tokens_revoked_before)
), touched AS (
	UPDATE user_sessions SET last_activity = ?2,
		expires_at = GREATEST(expires_at, LEAST(?9::timestamptz, created_at + ?6::bigint * interval '1 microsecond'))
	WHERE id = (SELECT session_id FROM cand) AND revoked_at IS NULL AND expires_at > ?2 AND created_at > ?5
	RETURNING ` + sqlstore.Sessions.Names() + `
), used AS (
	UPDATE refresh_tokens AS rt SET used_at = ?2 FROM touched
	WHERE rt.token_hash = ?1 AND rt.used_at IS NULL AND rt.revoked_at IS NULL AND rt.session_id = touched.id
	RETURNING ` + strings.Join(returning, ", ") + `
), ins AS (
	INSERT INTO refresh_tokens (` + sqlstore.RefreshTokens.Names() + `)
	SELECT ` + strings.Join(values, ", ") + ` FROM used
)
SELECT ` + strings.Join(out, ", ") + ` FROM used`
}()

// rotationColumns gives, for the rotation statement stmt (named in the
// panic when repl lacks a column), the replacement's values from repl in
// sqlstore.RefreshTokens' column order, the RETURNING of its used (the
// token's columns from rt, the session's from touched, prefixed "s_") and
// the columns of its answer.
func rotationColumns(stmt string, repl map[string]string) (values, returning, out []string) {
	values = make([]string, len(sqlstore.RefreshTokens.Cols))
	for i, c := range sqlstore.RefreshTokens.Cols {
		v, ok := repl[c.Name]
		if !ok {
			panic("postgres: " + stmt + " has no value for refresh_tokens." + c.Name)
		}
		values[i] = v
		returning = append(returning, "rt."+c.Name)
		out = append(out, c.Name)
	}
	for _, c := range sqlstore.Sessions.Cols {
		returning = append(returning, "touched."+c.Name+" AS s_"+c.Name)
		out = append(out, "s_"+c.Name)
	}
	return values, returning, out
}

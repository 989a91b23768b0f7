package postgres

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/sqlstore"
)

// UseRefreshToken is PostgreSQL's own path for the rotation, the one
// store call on the refresh hot path (docs/benchmarks.md, "The refresh
// path"): one statement (rotationSQL) sent with its BEGIN and COMMIT as
// one pipelined batch, so that a rotation costs one round trip and one
// commit, where the shared statements (sqlstore.Store.UseRefreshToken)
// take five round trips. It touches the session, marks the unused,
// unrevoked token with the given hash as used at now with one conditional
// UPDATE (a compare-and-swap) and inserts replacement; if no row matched
// it returns ErrConflict (already used or revoked) or ErrNotFound (no such
// token) and writes no token, so of any number of concurrent callers
// exactly one succeeds. It passes the same conformance tests as the
// shared path.
//
// A rotation whose BEGIN finds its connection lost (one the server ended
// while it sat in the pool) is sent again on another connection: nothing
// of it has run.
func (db *DB) UseRefreshToken(ctx context.Context, hash string, replacement permiso.RefreshToken, now time.Time) error {
	t := sqlstore.RefreshDefaults(replacement)
	for attempt := 0; ; attempt++ {
		beginLost, err := db.useRefreshToken(ctx, hash, t, now)
		if !beginLost || attempt >= int(db.cfg.MaxConns) || ctx.Err() != nil {
			return err
		}
	}
}

// useRefreshToken is one attempt of UseRefreshToken; beginLost reports
// that its BEGIN failed because the connection was lost.
func (db *DB) useRefreshToken(ctx context.Context, hash string, t permiso.RefreshToken, now time.Time) (beginLost bool, err error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return false, mapErr(err, "transaction", opRead)
	}
	defer conn.Release()
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(db.d.Bind(rotationSQL), append(sqlstore.RefreshTokens.Args(db.d, &t), ts(now), hash)...)
	b.Queue("COMMIT")
	var inserted, exists bool
	br := conn.SendBatch(ctx, b)
	err = func() error {
		if _, err := br.Exec(); err != nil {
			beginLost = connectionLost(err)
			return mapErr(err, "transaction", opWrite)
		}
		if err := br.QueryRow().Scan(&inserted, &exists); err != nil {
			return mapErr(err, "refresh token", opWrite)
		}
		if _, err := br.Exec(); err != nil {
			return mapErr(err, "transaction", opWrite)
		}
		return nil
	}()
	if cerr := br.Close(); err == nil && cerr != nil {
		err = mapErr(cerr, "transaction", opWrite)
	}
	// After an error the server skipped the rest of the batch, COMMIT
	// included: the connection is left in an aborted transaction, and the
	// pool closes a connection released in any transaction rather than
	// reuse it, which rolls the transaction back.
	switch {
	case err != nil:
		return beginLost, err
	case !inserted && !exists:
		return false, permiso.Errorf(permiso.ENOTFOUND, "%s", sqlstore.RefreshTokenMessages.NotFound)
	case !inserted:
		return false, permiso.Errorf(permiso.ECONFLICT, "%s", sqlstore.RefreshTokenSpentMessage)
	}
	return false, nil
}

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

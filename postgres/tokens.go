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
// store call that a benchmark showed to gain from the protocol
// (docs/benchmarks.md, "Store"): the whole transaction is sent as one
// pipelined batch, one round trip, then one for COMMIT or ROLLBACK, where
// the shared statements (sqlstore.Store.UseRefreshToken) take five. It
// marks the unused, unrevoked token with the given hash as used at now
// with one conditional UPDATE (a compare-and-swap) and inserts
// replacement in the same statement; if no row matched it returns
// ErrConflict (already used or revoked) or ErrNotFound (no such token)
// and writes nothing, so of any number of concurrent callers exactly one
// succeeds. It passes the same conformance tests as the shared path.
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
	// The session row comes first: every transaction that locks a
	// session and its refresh tokens (revoke-all, logout) takes them in
	// this order, so a rotation cannot deadlock with them.
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(db.d.Bind(sqlstore.TouchSessionSQL), ts(now), ts(t.ExpiresAt), t.SessionID)
	b.Queue(db.d.Bind(useRefreshSQL), append(sqlstore.RefreshTokens.Args(db.d, &t), ts(now), hash)...)
	b.Queue(`SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE token_hash = $1)`, hash)
	var inserted int64
	var exists bool
	br := conn.SendBatch(ctx, b)
	err = func() error {
		if _, err := br.Exec(); err != nil {
			beginLost = connectionLost(err)
			return mapErr(err, "transaction", opWrite)
		}
		if _, err := br.Exec(); err != nil {
			return mapErr(err, "session", opWrite)
		}
		tag, err := br.Exec()
		if err != nil {
			return mapErr(err, "refresh token", opWrite)
		}
		inserted = tag.RowsAffected()
		if err := br.QueryRow().Scan(&exists); err != nil {
			return mapErr(err, "refresh token", opRead)
		}
		return nil
	}()
	if cerr := br.Close(); err == nil && cerr != nil {
		err = mapErr(cerr, "refresh token", opWrite)
	}
	end := "COMMIT"
	if err != nil || inserted == 0 {
		end = "ROLLBACK" // also after an error: the transaction is aborted
	}
	if _, eerr := conn.Exec(context.WithoutCancel(ctx), end); eerr != nil && err == nil {
		err = mapErr(eerr, "transaction", opWrite)
	}
	switch {
	case err != nil:
		return beginLost, err
	case inserted == 0 && !exists:
		return false, permiso.Errorf(permiso.ENOTFOUND, "%s", sqlstore.RefreshTokenMessages.NotFound)
	case inserted == 0:
		return false, permiso.Errorf(permiso.ECONFLICT, "%s", sqlstore.RefreshTokenSpentMessage)
	}
	return false, nil
}

// useRefreshSQL marks the presented token used and inserts its
// replacement in one statement: the INSERT reads the UPDATE's RETURNING,
// so nothing is inserted when the token is unknown, used or revoked, and
// of concurrent rotations exactly one matches (the row lock of the
// UPDATE). Its columns are sqlstore.RefreshTokens': the replacement's
// values are the first arguments (RefreshTokens.Args), then the time of
// use and the presented hash.
var useRefreshSQL = func() string {
	n := len(sqlstore.RefreshTokens.Cols)
	marks := make([]string, n)
	for i := range marks {
		marks[i] = "?" + strconv.Itoa(i+1)
	}
	return `WITH used AS (
	UPDATE refresh_tokens SET used_at = ?` + strconv.Itoa(n+1) + `
	WHERE token_hash = ?` + strconv.Itoa(n+2) + ` AND used_at IS NULL AND revoked_at IS NULL
	RETURNING 1)
INSERT INTO refresh_tokens (` + sqlstore.RefreshTokens.Names() + `)
SELECT ` + strings.Join(marks, ", ") + ` FROM used`
}()

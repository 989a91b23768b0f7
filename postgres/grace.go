package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/sqlstore"
)

// UseRefreshTokenGrace spends the one grace retry of a rotated token: one
// conditional UPDATE (a compare-and-swap: concurrent callers serialize on
// the row lock and re-check the condition) revokes it, reason
// permiso.RevocationGraceUsed, when it was used at or after usedSince and is
// not revoked, and replacement is inserted, in one transaction. Otherwise it
// returns ErrConflict (or ErrNotFound for an unknown hash) and writes
// nothing.
func (db *DB) UseRefreshTokenGrace(ctx context.Context, hash string, replacement permiso.RefreshToken, usedSince, now time.Time) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		// The session row first: every transaction that locks a session
		// and its refresh tokens (revoke-all, logout) takes them in this
		// order, so a rotation cannot deadlock with them on PostgreSQL.
		if err := touchSession(ctx, tx, replacement, now); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $2, revocation_reason = $3
			WHERE token_hash = $1 AND used_at IS NOT NULL AND used_at >= $4 AND revoked_at IS NULL`,
			hash, ts(now), permiso.RevocationGraceUsed, ts(usedSince))
		if err != nil {
			return mapErr(err, "refresh token", opWrite)
		}
		if tag.RowsAffected() == 0 {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE token_hash = $1)`, hash).Scan(&exists); err != nil {
				return mapErr(err, "refresh token", opRead)
			}
			if !exists {
				return permiso.Errorf(permiso.ENOTFOUND, "%s", sqlstore.RefreshTokenMessages.NotFound)
			}
			return permiso.Errorf(permiso.ECONFLICT, "refresh token not rotated within the grace window, or its retry already spent")
		}
		_, err = insertRefresh(ctx, tx, replacement)
		return err
	})
}

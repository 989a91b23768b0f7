package sqlite

import (
	"context"
	"time"

	"github.com/permiso/permiso"
)

// UseRefreshTokenGrace spends the one grace retry of a rotated token: one
// conditional UPDATE revokes it (reason permiso.RevocationGraceUsed) when it
// was used at or after usedSince and is not revoked, and replacement is
// inserted, in one write transaction. Otherwise it returns ErrConflict (or
// ErrNotFound for an unknown hash) and writes nothing.
func (db *DB) UseRefreshTokenGrace(ctx context.Context, hash string, replacement permiso.RefreshToken, usedSince, now time.Time) error {
	return db.inTx(ctx, func(c conn) error {
		// The session row first: every transaction that locks a session
		// and its refresh tokens (revoke-all, logout) takes them in this
		// order, so a rotation cannot deadlock with them on PostgreSQL.
		if err := touchSession(ctx, c, replacement, now); err != nil {
			return err
		}
		n, err := c.execN(ctx, `UPDATE refresh_tokens SET revoked_at = ?, revocation_reason = ?
			WHERE token_hash = ? AND used_at IS NOT NULL AND used_at >= ? AND revoked_at IS NULL`,
			ts(now), permiso.RevocationGraceUsed, hash, ts(usedSince))
		if err != nil {
			return refreshErr("use refresh token grace", err)
		}
		if n == 0 {
			var one int
			if err := c.queryRow(ctx, "SELECT 1 FROM refresh_tokens WHERE token_hash = ?", hash).Scan(&one); err != nil {
				return refreshErr("use refresh token grace", err)
			}
			return permiso.Errorf(permiso.ECONFLICT, "Refresh token not rotated within the grace window, or its retry already spent")
		}
		_, err = insertRefresh(ctx, c, replacement)
		return err
	})
}

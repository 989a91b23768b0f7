package sqlite

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// ChangePasswordIfCurrent is ChangePassword, in one write transaction,
// only while the stored hash equals expectedOldHash; otherwise it returns
// ErrConflict and writes nothing.
func (db *DB) ChangePasswordIfCurrent(ctx context.Context, userID uuid.UUID, expectedOldHash, newHash string, now time.Time, keep int) error {
	return db.inTx(ctx, func(c conn) error {
		var old string
		if err := c.queryRow(ctx, "SELECT password_hash FROM users WHERE id = ?", userID).Scan(&old); err != nil {
			return userErr("change password", err)
		}
		n, err := c.execN(ctx,
			"UPDATE users SET password_hash = ?, password_changed_at = ?, updated_at = ? WHERE id = ? AND password_hash = ?",
			newHash, ts(now), ts(now), userID, expectedOldHash)
		if err != nil {
			return userErr("change password", err)
		}
		if n == 0 {
			return permiso.Errorf(permiso.ECONFLICT, "The password was changed meanwhile")
		}
		if _, err := c.exec(ctx,
			"INSERT INTO password_history (id, user_id, password_hash, created_at) VALUES (?, ?, ?, ?)",
			newID(), userID, old, ts(now)); err != nil {
			return userErr("change password", err)
		}
		if _, err := c.exec(ctx, `DELETE FROM password_history WHERE user_id = ?1 AND id NOT IN (
				SELECT id FROM password_history WHERE user_id = ?1
				ORDER BY created_at DESC, id DESC LIMIT ?2)`, userID, max(keep, 0)); err != nil {
			return userErr("prune password history", err)
		}
		return nil
	})
}

package postgres

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/permiso/permiso"
)

// ChangePasswordIfCurrent is ChangePassword, in one transaction with the
// user row locked, only while the stored hash equals expectedOldHash;
// otherwise it returns ErrConflict and writes nothing.
func (db *DB) ChangePasswordIfCurrent(ctx context.Context, userID uuid.UUID, expectedOldHash, newHash string, now time.Time, keep int) error {
	at := ts(now)
	return db.inTx(ctx, func(tx pgx.Tx) error {
		var old string
		err := tx.QueryRow(ctx, `SELECT password_hash FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&old)
		if err != nil {
			return mapErr(err, "user", opRead)
		}
		if old != expectedOldHash {
			return permiso.Errorf(permiso.ECONFLICT, "The password was changed meanwhile")
		}
		if _, err := tx.Exec(ctx, `INSERT INTO password_history (id, user_id, password_hash, created_at)
			VALUES ($1, $2, $3, $4)`, newV7(), userID, old, at); err != nil {
			return mapErr(err, "password history", opWrite)
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2, password_changed_at = $3,
			updated_at = $3 WHERE id = $1`, userID, newHash, at); err != nil {
			return mapErr(err, "user", opWrite)
		}
		_, err = tx.Exec(ctx, `DELETE FROM password_history WHERE user_id = $1 AND id NOT IN (
			SELECT id FROM password_history WHERE user_id = $1
			ORDER BY created_at DESC, id DESC LIMIT $2)`, userID, max(keep, 0))
		return mapErr(err, "password history", opWrite)
	})
}

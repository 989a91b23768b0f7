package sqlite

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

const actionCols = "id, user_id, purpose, token_hash, created_at, expires_at, used_at"

func scanAction(s scanner) (permiso.ActionToken, error) {
	var t permiso.ActionToken
	err := s.Scan(&t.ID, &t.UserID, &t.Purpose, &t.TokenHash, timeCol{&t.CreatedAt},
		timeCol{&t.ExpiresAt}, nullTimeCol{&t.UsedAt})
	return t, err
}

func actionErr(op string, err error) error {
	return errMap{op: op, notFound: "Token not found", exists: "Token already exists",
		fk: "User not found", fkCode: permiso.ENOTFOUND}.wrap(err)
}

// CreateActionToken stores t (ID generated when zero, CreatedAt defaults to
// now). An unknown user yields ErrNotFound, a taken hash ErrAlreadyExists.
func (db *DB) CreateActionToken(ctx context.Context, t permiso.ActionToken) (permiso.ActionToken, error) {
	if t.ID == uuid.Nil {
		t.ID = newID()
	}
	t.CreatedAt = orNow(t.CreatedAt)
	_, err := db.w().exec(ctx, "INSERT INTO action_tokens ("+actionCols+") VALUES (?, ?, ?, ?, ?, ?, ?)",
		t.ID, t.UserID, t.Purpose, t.TokenHash, ts(t.CreatedAt), ts(t.ExpiresAt), tsPtr(t.UsedAt))
	if err != nil {
		return permiso.ActionToken{}, actionErr("create action token", err)
	}
	return t, nil
}

// GetActionToken returns the unused, unexpired token with this purpose and
// hash without consuming it.
func (db *DB) GetActionToken(ctx context.Context, purpose, hash string, now time.Time) (permiso.ActionToken, error) {
	t, err := scanAction(db.r().queryRow(ctx, `SELECT `+actionCols+` FROM action_tokens
		WHERE purpose = ? AND token_hash = ? AND used_at IS NULL AND expires_at > ?`, purpose, hash, ts(now)))
	return t, actionErr("get action token", err)
}

// ConsumeActionToken marks the unused, unexpired token with this purpose
// and hash used at now and returns it, in one statement; of concurrent
// callers exactly one succeeds, the others get ErrNotFound.
func (db *DB) ConsumeActionToken(ctx context.Context, purpose, hash string, now time.Time) (permiso.ActionToken, error) {
	var out permiso.ActionToken
	err := db.inTx(ctx, func(c conn) (err error) {
		out, err = scanAction(c.queryRow(ctx, `UPDATE action_tokens SET used_at = ?1
			WHERE purpose = ?2 AND token_hash = ?3 AND used_at IS NULL AND expires_at > ?1
			RETURNING `+actionCols, ts(now), purpose, hash))
		return actionErr("consume action token", err)
	})
	return out, err
}

// DeleteExpiredActionTokens removes tokens that expired before now or were
// used.
func (db *DB) DeleteExpiredActionTokens(ctx context.Context, now time.Time) (int, error) {
	n, err := db.w().execN(ctx, "DELETE FROM action_tokens WHERE expires_at < ? OR used_at IS NOT NULL", ts(now))
	return n, actionErr("delete expired action tokens", err)
}

package postgres

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/permiso/permiso"
)

const actionColumns = `id, user_id, purpose, token_hash, created_at, expires_at, used_at`

func scanAction(row pgx.Row) (permiso.ActionToken, error) {
	var t permiso.ActionToken
	err := row.Scan(&t.ID, &t.UserID, &t.Purpose, &t.TokenHash, &t.CreatedAt, &t.ExpiresAt, &t.UsedAt)
	t.CreatedAt = utc(t.CreatedAt)
	t.ExpiresAt = utc(t.ExpiresAt)
	t.UsedAt = utcp(t.UsedAt)
	return t, err
}

// CreateActionToken stores t (ID generated when zero, CreatedAt defaulting
// to the current time); an unknown user yields ErrNotFound, a duplicate
// hash ErrAlreadyExists and an unknown purpose ErrInvalid.
func (db *DB) CreateActionToken(ctx context.Context, t permiso.ActionToken) (permiso.ActionToken, error) {
	if t.ID == uuid.Nil {
		t.ID = uuid.New()
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	out, err := scanAction(db.q.QueryRow(ctx, `INSERT INTO action_tokens (`+actionColumns+`)
		VALUES ($1,$2,$3,$4,$5,$6,$7) RETURNING `+actionColumns,
		t.ID, t.UserID, t.Purpose, t.TokenHash, ts(t.CreatedAt), ts(t.ExpiresAt), tsp(t.UsedAt)))
	if err != nil {
		return permiso.ActionToken{}, mapErr(err, "action token", opWrite)
	}
	return out, nil
}

// GetActionToken returns the unused, unexpired token with this purpose and
// hash without consuming it.
func (db *DB) GetActionToken(ctx context.Context, purpose, hash string, now time.Time) (permiso.ActionToken, error) {
	t, err := scanAction(db.q.QueryRow(ctx, `SELECT `+actionColumns+` FROM action_tokens
		WHERE purpose = $1 AND token_hash = $2 AND used_at IS NULL AND expires_at > $3`, purpose, hash, ts(now)))
	if err != nil {
		return permiso.ActionToken{}, mapErr(err, "action token", opRead)
	}
	return t, nil
}

// ConsumeActionToken marks the unused, unexpired token with this purpose
// and hash used at now with one conditional UPDATE ... RETURNING, so of any
// number of concurrent callers exactly one succeeds; the others, and any
// unknown, used, expired or other-purpose token, get ErrNotFound.
func (db *DB) ConsumeActionToken(ctx context.Context, purpose, hash string, now time.Time) (permiso.ActionToken, error) {
	t, err := scanAction(db.q.QueryRow(ctx, `UPDATE action_tokens SET used_at = $3
		WHERE purpose = $1 AND token_hash = $2 AND used_at IS NULL AND expires_at > $3
		RETURNING `+actionColumns, purpose, hash, ts(now)))
	if err != nil {
		return permiso.ActionToken{}, mapErr(err, "action token", opRead)
	}
	return t, nil
}

// DeleteExpiredActionTokens removes tokens that expired before now or were
// used, and returns how many were removed.
func (db *DB) DeleteExpiredActionTokens(ctx context.Context, now time.Time) (int, error) {
	tag, err := db.q.Exec(ctx, `DELETE FROM action_tokens WHERE expires_at < $1 OR used_at IS NOT NULL`, ts(now))
	if err != nil {
		return 0, mapErr(err, "action tokens", opDelete)
	}
	return int(tag.RowsAffected()), nil
}

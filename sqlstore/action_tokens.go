package sqlstore

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// ActionTokens describes the action_tokens table.
var ActionTokens = NewTable("action_tokens", "at", Fields[permiso.ActionToken]([]string{"id", "created_at"},
	"id", "user_id", "purpose", "token_hash", "created_at", "expires_at", "used_at")...)

func (s *Store) actionErr(op string, err error) error {
	return s.errOf(err, op, ActionTokenMessages, false, UserMessages.NotFound)
}

// CreateActionToken stores t (ID generated when zero, CreatedAt defaults to
// now). An unknown user yields ErrNotFound, a taken hash ErrAlreadyExists.
func (s *Store) CreateActionToken(ctx context.Context, t permiso.ActionToken) (permiso.ActionToken, error) {
	if t.ID == uuid.Nil {
		t.ID = newID()
	}
	t.CreatedAt = orNow(t.CreatedAt)
	out, err := ActionTokens.Scan(s.d, s.queryRow(ctx, s.c.Pool(), ActionTokens.Insert()+" RETURNING "+ActionTokens.Names(),
		ActionTokens.Args(s.d, &t)...))
	if err != nil {
		return permiso.ActionToken{}, s.actionErr("create action token", err)
	}
	return out, nil
}

// GetActionToken returns the unused, unexpired token with this purpose and
// hash without consuming it.
func (s *Store) GetActionToken(ctx context.Context, purpose, hash string, now time.Time) (permiso.ActionToken, error) {
	t, err := ActionTokens.Scan(s.d, s.queryRow(ctx, s.c.Reader(), ActionTokens.Select()+
		" WHERE at.purpose = ? AND at.token_hash = ? AND at.used_at IS NULL AND at.expires_at > ?", purpose, hash, s.d.Time(now)))
	if err != nil {
		return permiso.ActionToken{}, s.actionErr("get action token", err)
	}
	return t, nil
}

// ConsumeActionToken marks the unused, unexpired token with this purpose
// and hash used at now and returns it, in one statement; of concurrent
// callers exactly one succeeds, the others get ErrNotFound.
func (s *Store) ConsumeActionToken(ctx context.Context, purpose, hash string, now time.Time) (permiso.ActionToken, error) {
	t, err := ActionTokens.Scan(s.d, s.queryRow(ctx, s.c.Pool(), `UPDATE action_tokens SET used_at = ?1
		WHERE purpose = ?2 AND token_hash = ?3 AND used_at IS NULL AND expires_at > ?1
		RETURNING `+ActionTokens.Names(), s.d.Time(now), purpose, hash))
	if err != nil {
		return permiso.ActionToken{}, s.actionErr("consume action token", err)
	}
	return t, nil
}

// DeleteExpiredActionTokens removes tokens that expired before now or were
// used.
func (s *Store) DeleteExpiredActionTokens(ctx context.Context, now time.Time) (int, error) {
	n, err := s.exec(ctx, s.c.Pool(), "DELETE FROM action_tokens WHERE expires_at < ? OR used_at IS NOT NULL", s.d.Time(now))
	return int(n), s.actionErr("delete expired action tokens", err)
}

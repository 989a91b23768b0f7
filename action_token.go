package permiso

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Purposes of single-use action tokens.
const (
	PurposePasswordReset     = "password_reset"
	PurposeEmailVerification = "email_verification"
)

// ActionToken is a single-use token mailed to a user (password reset, email
// verification). Only its SHA-256 hash is stored.
type ActionToken struct {
	ID        uuid.UUID
	UserID    uuid.UUID
	Purpose   string
	TokenHash string // hex SHA-256; unique
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// ActionTokenStore persists single-use action tokens.
type ActionTokenStore interface {
	CreateActionToken(ctx context.Context, t ActionToken) (ActionToken, error)
	// GetActionToken returns the token with this purpose and hash if it is
	// unused and not expired at now, without consuming it (to check a
	// request before spending the token); anything else yields ErrNotFound.
	GetActionToken(ctx context.Context, purpose, hash string, now time.Time) (ActionToken, error)
	// ConsumeActionToken atomically marks the token with this purpose and
	// hash used at now and returns it. A token that is unknown, used,
	// expired at now or of another purpose yields ErrNotFound; of any
	// number of concurrent callers exactly one succeeds.
	ConsumeActionToken(ctx context.Context, purpose, hash string, now time.Time) (ActionToken, error)
	// DeleteExpiredActionTokens removes tokens that expired before now or
	// were used; it returns how many were removed.
	DeleteExpiredActionTokens(ctx context.Context, now time.Time) (int, error)
}

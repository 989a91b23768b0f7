package permiso

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Authentication methods references (RFC 8176 §2) of a sign-in.
const (
	// AMRPassword: a password was checked.
	AMRPassword = "pwd"
	// AMROTP: a one-time password (TOTP, RFC 6238) or a recovery code was
	// checked after the password (docs/mfa.md).
	AMROTP = "otp"
)

// Session is one login of a user: it ties together the refresh-token family
// and the access tokens issued from it (their "sid" claim).
type Session struct {
	ID           uuid.UUID
	UserID       uuid.UUID
	ClientID     *uuid.UUID
	IPAddress    string
	UserAgent    *string
	CreatedAt    time.Time
	LastActivity time.Time
	ExpiresAt    time.Time
	RevokedAt    *time.Time
	// AMR are the authentication methods of the sign-in that opened the
	// session (RFC 8176 §2: AMRPassword, then AMROTP after a second
	// factor), in the order used; the access and ID tokens of the session
	// carry them, refreshes included (docs/mfa.md).
	AMR []string
}

// Active reports whether the session is neither revoked nor expired at now.
func (s Session) Active(now time.Time) bool {
	return s.RevokedAt == nil && now.Before(s.ExpiresAt)
}

// SessionStats are counts over sessions at a point in time.
type SessionStats struct {
	Active       int
	Expired      int
	Revoked      int
	CreatedSince int
}

// SessionStore persists sessions.
type SessionStore interface {
	CreateSession(ctx context.Context, s Session) (Session, error)
	// CreateSessionWithToken stores a new session and the first refresh
	// token of its family (first.SessionID must be s.ID) in one
	// transaction: both are stored or neither, so a login that fails
	// half-way never leaves a session without its refresh token. Errors
	// are those of CreateSession and CreateRefreshToken.
	CreateSessionWithToken(ctx context.Context, s Session, first RefreshToken) (Session, RefreshToken, error)
	GetSession(ctx context.Context, id uuid.UUID) (Session, error)
	// ListSessions returns the user's sessions ordered by created_at, id;
	// with activeOnly, only those active at now.
	ListSessions(ctx context.Context, userID uuid.UUID, activeOnly bool, now time.Time) ([]Session, error)
	UpdateSession(ctx context.Context, id uuid.UUID, fn func(*Session) error) (Session, error)
	// RevokeSession marks the session revoked and revokes every refresh
	// token of it, in one transaction. Revoking a revoked session is a
	// no-op that still returns the session.
	RevokeSession(ctx context.Context, id uuid.UUID, reason string, now time.Time) (Session, error)
	// RevokeUserSessions revokes every active session of the user (except
	// the one given, when not nil) and their refresh tokens; it returns the
	// revoked sessions.
	RevokeUserSessions(ctx context.Context, userID uuid.UUID, except *uuid.UUID, reason string, now time.Time) ([]Session, error)
	// RevokeClientSessions revokes every active session opened through the
	// service client with this row id, and their refresh tokens, in one
	// transaction; it returns the revoked sessions ordered by created_at,
	// id.
	RevokeClientSessions(ctx context.Context, clientID uuid.UUID, reason string, now time.Time) ([]Session, error)
	// ListSessionsRevokedSince returns every session revoked at or after
	// since, ordered by revoked_at, id: what the revocation store must hold
	// about sessions while their access tokens may live (it is rebuilt
	// from this when Redis comes back without its data).
	ListSessionsRevokedSince(ctx context.Context, since time.Time) ([]Session, error)
	// DeleteExpiredSessions removes sessions that expired before now.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)
	SessionStats(ctx context.Context, now, createdSince time.Time) (SessionStats, error)
}

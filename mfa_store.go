package permiso

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"
)

// MFAFactor is one second factor of a user (docs/mfa.md). Secret is the
// factor's secret sealed by mfa.Box, never the plaintext. A factor with no
// ConfirmedAt is a pending enrollment: it does not count at sign-in.
type MFAFactor struct {
	UserID      uuid.UUID
	Kind        string
	Secret      string
	CreatedAt   time.Time
	ConfirmedAt *time.Time
}

// MFARequiredBy reports whether u must sign in with a second factor
// because they hold one of roles (MFA_REQUIRED_ROLES, docs/mfa.md). A role
// gained or lost takes effect at the user's next sign-in.
func MFARequiredBy(u User, roles []string) bool {
	for _, r := range u.RoleNames() {
		if slices.Contains(roles, r) {
			return true
		}
	}
	return false
}

// Confirmed reports whether the factor completed its enrollment.
func (f MFAFactor) Confirmed() bool { return f.ConfirmedAt != nil }

// MFAStore persists second factors and recovery codes (only the codes'
// hashes, mfa.HashRecoveryCode).
type MFAStore interface {
	// PutPendingMFAFactor stores f as a pending enrollment (CreatedAt
	// defaults to now, ConfirmedAt is ignored), replacing a pending factor
	// of the same user and kind, with one statement. A confirmed factor of
	// that kind yields ErrConflict and is left alone; an unknown user
	// ErrNotFound.
	PutPendingMFAFactor(ctx context.Context, f MFAFactor) (MFAFactor, error)
	// GetMFAFactor returns the user's factor of this kind, pending or
	// not; ErrNotFound when there is none.
	GetMFAFactor(ctx context.Context, userID uuid.UUID, kind string) (MFAFactor, error)
	// ListMFAFactors returns the user's factors, ordered by kind.
	ListMFAFactors(ctx context.Context, userID uuid.UUID) ([]MFAFactor, error)
	// ConfirmMFAFactor marks the pending factor confirmed at at and
	// replaces the user's recovery codes with codeHashes, in one
	// transaction. A factor already confirmed yields ErrConflict (nothing
	// written, of any number of concurrent callers one succeeds); none
	// ErrNotFound.
	ConfirmMFAFactor(ctx context.Context, userID uuid.UUID, kind string, at time.Time, codeHashes []string) (MFAFactor, error)
	// DeleteMFAFactor removes the user's factor of this kind and, when no
	// confirmed factor remains, the user's recovery codes, in one
	// transaction; ErrNotFound when there was no such factor.
	DeleteMFAFactor(ctx context.Context, userID uuid.UUID, kind string) error
	// DeleteUserMFA removes every factor and recovery code of the user
	// (an administrator's reset) and returns how many factors it removed.
	DeleteUserMFA(ctx context.Context, userID uuid.UUID) (int, error)
	// ReplaceRecoveryCodes replaces the user's recovery codes with
	// codeHashes (created at at) in one transaction: the old ones stop
	// working.
	ReplaceRecoveryCodes(ctx context.Context, userID uuid.UUID, codeHashes []string, at time.Time) error
	// UseRecoveryCode marks the user's unused code with this hash used at
	// at, with one conditional UPDATE: of concurrent callers one succeeds.
	// An unknown or already used code yields ErrNotFound.
	UseRecoveryCode(ctx context.Context, userID uuid.UUID, codeHash string, at time.Time) error
	// RecoveryCodeUsable reports, without spending it, whether the user
	// has an unused code with this hash: sign-in checks a code before it
	// spends its single-use step (an mfa_token, a pending sign-in) and
	// spends the code only after winning that step, so that requests
	// racing for one step do not burn the losers' codes (docs/mfa.md).
	RecoveryCodeUsable(ctx context.Context, userID uuid.UUID, codeHash string) (bool, error)
	// CountRecoveryCodes returns how many of the user's codes are unused.
	CountRecoveryCodes(ctx context.Context, userID uuid.UUID) (int, error)
	// ListMFAFactorsAfter returns up to limit factors of all users, ordered
	// by user id and kind, that come after (afterUser, afterKind): a
	// page of a walk over every factor (permiso mfa rekey). uuid.Nil and
	// "" start at the first.
	ListMFAFactorsAfter(ctx context.Context, afterUser uuid.UUID, afterKind string, limit int) ([]MFAFactor, error)
	// ReplaceMFASecret sets the factor's sealed secret to newSecret if it
	// still is oldSecret, with one conditional UPDATE; ErrConflict when it
	// changed meanwhile, ErrNotFound when the factor is gone.
	ReplaceMFASecret(ctx context.Context, userID uuid.UUID, kind, oldSecret, newSecret string) error
	// CountConfirmedMFAFactors returns how many confirmed factors exist in
	// all (a production server needs MFA_ENCRYPTION_KEY once it is not 0).
	CountConfirmedMFAFactors(ctx context.Context) (int, error)
}

// MFATokenLifetime is how long an mfa_token lives (docs/mfa.md,
// "Sign-in").
const MFATokenLifetime = 5 * time.Minute

// MFAToken is the stored form of an mfa_token: the pending second step of
// a password-grant sign-in. Only the token's hash is kept (HashToken).
type MFAToken struct {
	TokenHash string
	UserID    uuid.UUID
	// ClientID is the row id of the client that made the password grant;
	// nil for a first-party login without client authentication. Only the
	// same client may exchange the token.
	ClientID *uuid.UUID
	// Enroll marks a token of mfa_enrollment_required: the user must
	// enroll a factor first, and the enrollment routes accept the token
	// as a bearer.
	Enroll bool
	// Scopes are the scopes the password grant decided.
	Scopes []string
	// AuthTime is when the password was checked (taken before the user
	// was read): a password change or revoke-all after it ends the token.
	AuthTime  time.Time
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// MFATokenStore persists mfa_tokens.
type MFATokenStore interface {
	// CreateMFAToken stores a new, unused token. A taken hash yields
	// ErrAlreadyExists; an unknown user or client ErrNotFound.
	CreateMFAToken(ctx context.Context, t MFAToken) error
	// GetMFAToken returns the token with this hash, used or not, expired
	// or not; ErrNotFound when there is none.
	GetMFAToken(ctx context.Context, hash string) (MFAToken, error)
	// UseMFAToken marks the unused token with this hash used at now, with
	// one conditional UPDATE: of any number of concurrent callers exactly
	// one succeeds. A used token yields ErrConflict; an unknown one, or
	// one expired at now, ErrNotFound.
	UseMFAToken(ctx context.Context, hash string, now time.Time) error
	// DeleteUserMFATokens removes every mfa_token of the user (a lockout
	// ends them) and returns how many.
	DeleteUserMFATokens(ctx context.Context, userID uuid.UUID) (int, error)
	// DeleteExpiredMFATokens removes tokens that expired before before or
	// were used.
	DeleteExpiredMFATokens(ctx context.Context, before time.Time) (int, error)
}

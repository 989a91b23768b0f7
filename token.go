package permiso

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// RefreshToken is the stored form of an opaque refresh token: only its
// SHA-256 hash is kept (docs/oauth.md). Tokens of one login share a FamilyID.
type RefreshToken struct {
	ID        uuid.UUID
	TokenHash string // hex SHA-256 of the opaque token; unique
	UserID    uuid.UUID
	// ClientID is the row id of the service client the token was issued to
	// (nil for first-party logins); only that client may refresh it.
	ClientID  *uuid.UUID
	SessionID uuid.UUID
	FamilyID  uuid.UUID
	ParentID  *uuid.UUID
	// Scopes granted at login; a refresh never widens them.
	Scopes           []string
	IssuedAt         time.Time
	ExpiresAt        time.Time
	UsedAt           *time.Time
	RevokedAt        *time.Time
	RevocationReason *string
	ClientIP         *string
	UserAgent        *string
}

// TouchSession is what a rotation does to the session of its replacement
// token (UseRefreshToken, UseRefreshTokenGrace): last_activity becomes
// now, and expires_at moves forward to the replacement's expiry when that
// is later (the idle timeout slides; it never moves back). A revoked
// session stays revoked.
const TouchSession = "last_activity = now, expires_at = max(expires_at, replacement.ExpiresAt)"

// RevocationGraceUsed is the revocation reason of a rotated refresh token
// whose one grace retry was spent (UseRefreshTokenGrace): presenting it
// again is reuse.
const RevocationGraceUsed = "grace_used"

// RevocationReuseDetected is the revocation reason of the tokens of a
// family in which reuse was detected.
const RevocationReuseDetected = "reuse_detected"

// TokenStore persists refresh tokens.
type TokenStore interface {
	CreateRefreshToken(ctx context.Context, t RefreshToken) (RefreshToken, error)
	GetRefreshTokenByHash(ctx context.Context, hash string) (RefreshToken, error)
	// GetRefreshTokenSession returns the token with this hash, used or
	// not, and its session, read together in one statement: the refresh
	// grant's one read (docs/benchmarks.md, "The refresh path"). An unknown
	// hash yields ErrNotFound.
	GetRefreshTokenSession(ctx context.Context, hash string) (RefreshToken, Session, error)
	// UseRefreshToken atomically marks the unused, unrevoked token with the
	// given hash as used at now and inserts replacement (one transaction).
	// When the token was already used or revoked (for example by a
	// concurrent request) it returns ErrConflict and writes nothing, so of
	// any number of concurrent callers exactly one succeeds. An unknown hash
	// yields ErrNotFound; a replacement whose hash is taken yields
	// ErrAlreadyExists and leaves the original unused. In the same
	// transaction it touches replacement's session (TouchSession), so a
	// rotation is one short transaction (docs/architecture.md, "Performance by design").
	UseRefreshToken(ctx context.Context, hash string, replacement RefreshToken, now time.Time) error
	// UseRefreshTokenGrace is the one grace retry of a rotated token (RFC
	// 9700 §4.14.2): atomically, with one conditional UPDATE (a
	// compare-and-swap), it revokes the token with the given hash, when it
	// was used at or after usedSince and is not revoked, with reason
	// RevocationGraceUsed, and inserts replacement, in one transaction. A
	// token that is unused, revoked (its retry already spent included) or
	// used before usedSince yields ErrConflict and nothing is written, so
	// of any number of concurrent retries exactly one succeeds. An unknown
	// hash yields ErrNotFound. Like UseRefreshToken it touches the session.
	UseRefreshTokenGrace(ctx context.Context, hash string, replacement RefreshToken, usedSince, now time.Time) error
	// RevokeRefreshFamily revokes every unrevoked token of the family and
	// returns how many were revoked.
	RevokeRefreshFamily(ctx context.Context, familyID uuid.UUID, reason string, now time.Time) (int, error)
	// DeleteExpiredRefreshTokens removes tokens that expired before now.
	DeleteExpiredRefreshTokens(ctx context.Context, now time.Time) (int, error)
}

// SigningKey is an asymmetric JWT signing key kept in the database.
type SigningKey struct {
	ID         string // the JWS "kid"
	Algorithm  string // RS256, ES256, EdDSA
	PrivateKey []byte // PKCS#8 DER
	PublicKey  []byte // PKIX DER
	CreatedAt  time.Time
	// RetiredAt is set when a newer key takes over signing; the key keeps
	// verifying (and is published) until ExpiresAt.
	RetiredAt *time.Time
	ExpiresAt *time.Time
}

// KeyStore persists signing keys.
type KeyStore interface {
	CreateSigningKey(ctx context.Context, k SigningKey) (SigningKey, error)
	// ListSigningKeys returns keys not expired at now, newest first.
	ListSigningKeys(ctx context.Context, now time.Time) ([]SigningKey, error)
	// RetireSigningKeys retires every unretired key of the algorithm except
	// keepID, setting RetiredAt = now and ExpiresAt = expiresAt.
	RetireSigningKeys(ctx context.Context, algorithm, keepID string, now, expiresAt time.Time) (int, error)
}

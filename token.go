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
	// was used at or after usedSince, is not revoked and no token whose
	// parent it is (its rotation's replacement, or a grace sibling) has
	// been used, with reason RevocationGraceUsed, and inserts replacement,
	// in one transaction. A token that is unused, revoked (its retry
	// already spent included), used before usedSince, or whose replacement
	// was used (the client that rotated it received the replacement, so
	// the presentation is of a copy: reuse) yields ErrConflict and nothing
	// is written, so of any number of concurrent retries exactly one
	// succeeds. An unknown hash yields ErrNotFound. Like UseRefreshToken it
	// touches the session, first: a use of the replacement committed
	// before the retry locked the session is seen by the retry.
	UseRefreshTokenGrace(ctx context.Context, hash string, replacement RefreshToken, usedSince, now time.Time) error
	// RevokeRefreshFamily revokes every unrevoked token of the family and
	// returns how many were revoked.
	RevokeRefreshFamily(ctx context.Context, familyID uuid.UUID, reason string, now time.Time) (int, error)
	// DeleteExpiredRefreshTokens removes tokens that expired before now.
	DeleteExpiredRefreshTokens(ctx context.Context, now time.Time) (int, error)
}

// RefreshRotation is one refresh grant's rotation with every check of the
// presented token, its session and its user made in the store
// (RefreshRotator): the checks oauth2's refresh grant makes on the token
// it read, so that the common refresh needs no read first
// (docs/benchmarks.md, "The refresh path").
type RefreshRotation struct {
	Hash string    // hash of the presented token
	Now  time.Time // the time of use
	// ClientID is the row id of the authenticated client, nil without
	// client authentication: the token's client must be the same (a
	// first-party token has none).
	ClientID *uuid.UUID
	// IssuedSince: with a client, a token issued before it is dead (the
	// client's creation or its revoke-all cut-off,
	// ServiceClient.IssuedTokenDead); zero checks nothing.
	IssuedSince time.Time
	// SessionLifetime is the absolute lifetime of a session: the session
	// must have been created less than this before Now, and the
	// replacement expires at the latest when it ends.
	SessionLifetime time.Duration
	// Replacement's ID, TokenHash, ExpiresAt (before the cap at the end of
	// the session's lifetime), ClientIP and UserAgent are stored; its
	// user, client, session, family and scopes are the presented token's,
	// its parent is the presented token and it is issued at Now.
	Replacement RefreshToken
}

// RefreshRotator is implemented by a store that makes a refresh grant's
// rotation in one statement (PostgreSQL). RotateRefreshToken rotates the
// token with r.Hash only when all of these hold: it is unused, unrevoked
// and not expired at r.Now; its client is r.ClientID; with a client, it
// was issued at or after r.IssuedSince; its session is not revoked, not
// expired and was created less than r.SessionLifetime before r.Now; its
// user is active and has no revoke-all cut-off after the token's issue.
// Then, atomically as UseRefreshToken, it marks the token used, inserts
// the replacement and touches the session (TouchSession), and returns the
// presented token (now used) and its session (touched). When any check
// fails, or a concurrent rotation won, it returns ok false and writes no
// token: the caller reads the token to decide the answer. A call whose
// ctx ends before its answer (the client went away) leaves nothing: its
// rotation was not sent, or it is taken back, and it returns ctx's error;
// the caller reads the token all the same, so that a replay is detected.
//
// UndoRefreshRotation takes back a rotation RotateRefreshToken made whose
// answer could not be issued (the access token could not be signed): it
// deletes the replacement, when it is still unused and unrevoked, and
// then marks the presented token unused again, unless it was revoked
// meanwhile. A refused refresh thus leaves the presented token as it
// found it, as on a store without a rotator, where the token is signed
// before the rotation: a later retry is not taken for reuse.
type RefreshRotator interface {
	RotateRefreshToken(ctx context.Context, r RefreshRotation) (presented RefreshToken, session Session, ok bool, err error)
	UndoRefreshRotation(ctx context.Context, presented, replacement uuid.UUID) error
}

// RefreshRotatorOf returns s as a RefreshRotator, looking through stores
// that wrap another (an Unwrap() Store method: the in-process cache), or
// nil when no store on the way is one.
func RefreshRotatorOf(s any) RefreshRotator {
	for s != nil {
		if r, ok := s.(RefreshRotator); ok {
			return r
		}
		u, ok := s.(interface{ Unwrap() Store })
		if !ok {
			return nil
		}
		s = u.Unwrap()
	}
	return nil
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

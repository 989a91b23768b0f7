package permiso

import (
	"context"
	"time"
)

// Access token kinds: the "type" claim (as the original service wrote it).
const (
	TokenTypeAccess  = "access"  // a user's access token (password or refresh grant)
	TokenTypeService = "service" // a client_credentials token
)

// AccessClaims are the claims of a JWT access token (RFC 9068 plus the
// original service's claims, SPEC §4).
type AccessClaims struct {
	Issuer    string
	Subject   string // user id, or client_id for client credentials
	Audience  []string
	ExpiresAt time.Time
	IssuedAt  time.Time
	NotBefore time.Time
	ID        string // jti
	ClientID  string // when a client is involved
	Scopes    []string
	Type      string // TokenTypeAccess or TokenTypeService
	SessionID string // sid, user tokens
	Roles     []string
	Username  string
	Email     string
	// IsSuperuser is set on user tokens, IsTrusted on service tokens.
	IsSuperuser *bool
	IsTrusted   *bool
}

// TokenSigner issues and verifies access tokens.
type TokenSigner interface {
	// Sign returns the compact JWS of c, signed with the current key; the
	// header carries typ "at+jwt" and the key's kid.
	Sign(ctx context.Context, c AccessClaims) (string, error)
	// Verify checks the signature with a pinned algorithm list and a kid of
	// our own keys, requires exp, iat and jti, and checks iss, aud and typ.
	// Every failure is an EINVALIDTOKEN *Error with a caller-safe message.
	Verify(ctx context.Context, token string) (AccessClaims, error)
}

// RevocationStore keeps which access tokens no longer count, shared by
// every instance (Redis) or kept in process. Entries expire on their own
// when the tokens they revoke would have expired anyway (TTL = remaining
// life, at least one second).
type RevocationStore interface {
	// RevokeToken revokes one access token by jti until expiresAt.
	RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error
	// RevokeSession revokes every access token carrying sid, until
	// expiresAt (the latest expiry of a token of that session).
	RevokeSession(ctx context.Context, sid string, expiresAt time.Time) error
	// RevokeSubjectBefore revokes every token of the subject issued before
	// cutoff, remembered until expiresAt. A later call with an earlier
	// cutoff never moves the cutoff back. The comparison is at the one-second
	// resolution of the iat claim (iat < cutoff truncated to seconds), so a
	// token issued in the cutoff's own second is not caught by this rule:
	// callers revoke the subject's sessions (sid) as well, which leaves no
	// gap and never rejects a login made right after the cutoff.
	RevokeSubjectBefore(ctx context.Context, subject string, cutoff, expiresAt time.Time) error
	// IsRevoked reports, in one round trip, whether the token with this jti,
	// sid (may be empty), subject and issue time is revoked by any of the
	// three rules above.
	IsRevoked(ctx context.Context, jti, sid, subject string, issuedAt time.Time) (bool, error)
}

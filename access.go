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
// original service's claims, docs/oauth.md "Access tokens").
type AccessClaims struct {
	Issuer    string
	Subject   string // user id, or client_id for client credentials
	Audience  []string
	ExpiresAt time.Time
	// IssuedAt is written to iat in whole seconds. Verify returns the
	// issue time as TokenIssuedAt reads it: to the millisecond from a jti
	// made by NewTokenID, else the iat second.
	IssuedAt  time.Time
	NotBefore time.Time
	ID        string // jti; NewTokenID(IssuedAt) for tokens permiso issues
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
	// AMR are the authentication methods of the sign-in behind a user
	// token (RFC 8176 §2, the "amr" claim RFC 9068 §2.2.3.1 allows): the
	// session's (Session.AMR). Empty on service tokens.
	AMR []string
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
//
// Cut-offs (RevokeSubjectBefore, RevokeAllBefore) are exact to the
// millisecond: a token is revoked by one when its issue time, as
// TokenIssuedAt reads it from the token (the jti's millisecond, or the
// start of the iat second for a token without one), is before the cut-off.
// A store keeps a cut-off at least to the millisecond, rounding up, never
// down (callers pass RevocationCutoff values, which are whole
// milliseconds). So a token issued before a cut-off never survives it, and
// one issued at or after it is never caught by it.
type RevocationStore interface {
	// RevokeToken revokes one access token by jti until expiresAt.
	RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error
	// RevokeSession revokes every access token carrying sid, until
	// expiresAt (the latest expiry of a token of that session).
	RevokeSession(ctx context.Context, sid string, expiresAt time.Time) error
	// RevokeSubjectBefore revokes every token of the subject (a user id,
	// or ClientRevocationSubject of a client_id for service tokens) issued
	// before cutoff, remembered until expiresAt. A later call with an
	// earlier cutoff never moves the cutoff back.
	RevokeSubjectBefore(ctx context.Context, subject string, cutoff, expiresAt time.Time) error
	// RevokeAllBefore revokes every token, whatever its subject, issued
	// before cutoff (a global revoke-all), remembered until expiresAt (the
	// longest life of any token). It never moves the cutoff back. It is
	// one entry: IsRevoked reads it with the others, in the same round
	// trip.
	RevokeAllBefore(ctx context.Context, cutoff, expiresAt time.Time) error
	// IsRevoked reports, in one round trip, whether the token with this jti,
	// sid (may be empty), subject and issue time (TokenIssuedAt) is
	// revoked by any of the four rules above. Empty identifiers are
	// skipped; with all three empty there is no token and the answer is
	// false.
	IsRevoked(ctx context.Context, jti, sid, subject string, issuedAt time.Time) (bool, error)
}

// ClientRevocationSubject is the revocation-store subject of the service
// tokens of the client with this client_id: "client:" + clientID, so that
// a client_id can never be taken for a user id (a UUID) or the other way
// round.
func ClientRevocationSubject(clientID string) string { return "client:" + clientID }

package permiso

import (
	"context"
	"time"
)

// IDTokenClaims are the claims of an OpenID Connect ID token (OpenID
// Connect Core 1.0 §2, §3.1.3.6, §5.1).
type IDTokenClaims struct {
	Issuer    string
	Subject   string
	Audience  []string
	ExpiresAt time.Time
	IssuedAt  time.Time
	// AuthTime is when the user authenticated (auth_time).
	AuthTime time.Time
	Nonce    string
	// AMR are the authentication methods references (RFC 8176 §2), e.g.
	// "pwd".
	AMR []string
	// ACR is the authentication context class reference (OpenID Connect
	// Core 1.0 §2): urn:permiso:acr:mfa after a second factor,
	// urn:permiso:acr:pwd for a password alone (docs/oidc.md).
	ACR string
	// AuthorizedParty is azp: the client the token was issued to.
	AuthorizedParty string
	// AccessTokenHash is at_hash (OpenID Connect Core 1.0 §3.1.3.6),
	// computed by the signer from the access token issued with it.
	AccessToken string
	// SessionID is sid (OpenID Connect Front-Channel Logout 1.0 §3): the
	// browser session.
	SessionID string
	// Claims are the standard claims the granted scopes release
	// (OpenID Connect Core 1.0 §5.4: profile, email).
	Claims map[string]any
}

// IDTokenSigner signs ID tokens with an asymmetric key published in the
// JWKS, whatever algorithm access tokens use.
type IDTokenSigner interface {
	// SignIDToken returns the compact JWS of c with header typ "JWT" and
	// the key's kid, and at_hash computed from c.AccessToken.
	SignIDToken(ctx context.Context, c IDTokenClaims) (string, error)
	// IDTokenAlgorithm is the JWS algorithm of ID tokens.
	IDTokenAlgorithm() string
	// VerifyIDTokenHint checks the signature and issuer of an ID token
	// given back as id_token_hint, whether or not it expired; failures are
	// EINVALIDTOKEN.
	VerifyIDTokenHint(ctx context.Context, token string) (IDTokenHint, error)
}

// IDTokenHint is what RP-initiated logout reads from an id_token_hint.
type IDTokenHint struct {
	Subject   string
	Audience  []string
	SessionID string
}

package permiso

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// OpenID Connect provider: the domain part (docs/oidc.md). The protocol
// lives in oauth2 (authorize.go, code.go); the hosted pages in httpapi.

// Grant type and client authentication names of the browser flow
// (RFC 6749 §4.1.3, RFC 7591 §2).
const (
	GrantTypeAuthorizationCode = "authorization_code"
	AuthMethodNone             = "none"
	AuthMethodSecretBasic      = "client_secret_basic"
	AuthMethodSecretPost       = "client_secret_post"
)

// Limits of the browser flow's values.
const (
	// AuthCodeLifetime is how long an authorization code lives: RFC 6749
	// §4.1.2 recommends at most ten minutes; permiso allows one.
	AuthCodeLifetime = 60 * time.Second
	// MaxRedirectURIs bounds a client's registered redirect URIs.
	MaxRedirectURIs = 20
	// MaxRedirectURILength bounds one redirect URI, in bytes.
	MaxRedirectURILength = 2000
)

// AllowsGrant reports whether the client registered grant (GrantTypes).
func (c ServiceClient) AllowsGrant(grant string) bool {
	return slices.Contains(c.GrantTypes, grant)
}

// AuthMethod is the client's token endpoint authentication method
// (RFC 7591 §2): TokenEndpointAuthMethod, client_secret_basic when empty.
func (c ServiceClient) AuthMethod() string {
	if c.TokenEndpointAuthMethod == "" {
		return AuthMethodSecretBasic
	}
	return c.TokenEndpointAuthMethod
}

// HasRedirectURI reports whether uri is one of the client's registered
// redirect URIs, by exact string comparison (RFC 9700 §2.1, §4.1.3: no
// pattern, no prefix, no normalization).
func (c ServiceClient) HasRedirectURI(uri string) bool {
	return uri != "" && slices.Contains(c.RedirectURIs, uri)
}

// HasPostLogoutRedirectURI is HasRedirectURI for PostLogoutRedirectURIs
// (OpenID Connect RP-Initiated Logout 1.0 §3).
func (c ServiceClient) HasPostLogoutRedirectURI(uri string) bool {
	return uri != "" && slices.Contains(c.PostLogoutRedirectURIs, uri)
}

// RedirectURIProblem says what is wrong with a redirect URI offered for
// registration, or "" when it may be registered:
//   - an absolute URI without a fragment (RFC 6749 §3.1.2), without user
//     information, at most MaxRedirectURILength bytes;
//   - https, or http only on the loopback IP literals 127.0.0.1 and
//     [::1] as native apps use them (RFC 8252 §7.3; "localhost" is
//     refused, §8.3; no other spelling of a loopback address);
//   - in the canonical form that exact matching compares: a lower-case
//     scheme and host, a port (when given) from 1 to 65535, no backslash;
//   - no wildcard character: registration is by exact value (RFC 9700
//     §2.1).
func RedirectURIProblem(raw string) string {
	if raw == "" {
		return "must not be empty"
	}
	if len(raw) > MaxRedirectURILength {
		return "is too long"
	}
	if !ValidText(raw) || strings.ContainsAny(raw, " \t\r\n*") {
		return "must not contain spaces, control characters or wildcards"
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return "must be an absolute http or https URL"
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "must not contain a fragment (RFC 6749 §3.1.2)"
	}
	if u.User != nil {
		return "must not contain user information"
	}
	if strings.Contains(raw, "\\") {
		return "must not contain a backslash"
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "must be an absolute http or https URL"
	}
	if !strings.HasPrefix(raw, u.Scheme+"://") || u.Host != strings.ToLower(u.Host) {
		return "must have a lower-case scheme and host"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 || p[0] == '0' {
			return "must have a port from 1 to 65535"
		}
	}
	if u.Scheme == "http" {
		if h := u.Hostname(); h != "127.0.0.1" && h != "::1" {
			return "http is allowed only on the loopback addresses 127.0.0.1 and [::1] (RFC 8252 §7.3); use https"
		}
	}
	return ""
}

// PKCE (RFC 7636). Only S256 is accepted: "plain" gives no protection
// against a code intercepted together with its request (RFC 7636 §4.2,
// RFC 9700 §2.1.1).
const PKCEMethodS256 = "S256"

// ValidCodeVerifier reports whether v has the form of a code_verifier
// (RFC 7636 §4.1): 43 to 128 characters of [A-Z] [a-z] [0-9] "-" "." "_"
// "~".
func ValidCodeVerifier(v string) bool {
	return len(v) >= 43 && len(v) <= 128 && unreserved(v)
}

// ValidCodeChallenge reports whether c has the form of an S256
// code_challenge: BASE64URL(SHA256(verifier)) without padding, 43
// characters (RFC 7636 §4.2).
func ValidCodeChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil
}

func unreserved(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// S256Challenge returns BASE64URL(SHA256(ASCII(verifier))) (RFC 7636
// §4.2).
func S256Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// VerifyPKCE reports whether verifier matches the S256 challenge
// (RFC 7636 §4.6), comparing in constant time.
func VerifyPKCE(challenge, verifier string) bool {
	if !ValidCodeVerifier(verifier) || !ValidCodeChallenge(challenge) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(S256Challenge(verifier)), []byte(challenge)) == 1
}

// AuthCode is the stored form of an authorization code (RFC 6749 §4.1.2):
// only the hash of the code is kept (HashToken), and it is bound to the
// client, the redirect URI and the PKCE challenge of the request that
// obtained it.
type AuthCode struct {
	CodeHash string
	// ClientID is the row id of the client the code was issued to.
	ClientID uuid.UUID
	UserID   uuid.UUID
	// BrowserSessionID is the browser session (the "sid" of the ID token)
	// in which the user authorized the client.
	BrowserSessionID uuid.UUID
	RedirectURI      string
	Scopes           []string
	Nonce            string
	CodeChallenge    string
	// AuthTime is when the user authenticated (the ID token's auth_time).
	AuthTime time.Time
	// AMR are the authentication methods of the browser session the code
	// was issued in (RFC 8176 §2; Session.AMR), carried into the tokens
	// of its exchange.
	AMR       []string
	CreatedAt time.Time
	ExpiresAt time.Time
	// UsedAt is set when the code is exchanged; SessionID is the session
	// the exchange opened, whose tokens are revoked when the code is
	// presented again (RFC 6749 §4.1.2).
	UsedAt    *time.Time
	SessionID *uuid.UUID
}

// BrowserSession is a sign-in on the hosted pages: a session of the
// user_sessions table (it shows in /sessions and ends with logout,
// revoke-all and password changes) reached through the opaque value of the
// browser's session cookie, of which only the hash is kept.
type BrowserSession struct {
	Session
	TokenHash string
	// AuthTime is when the user entered their password (OpenID Connect
	// Core 1.0 §2, auth_time).
	AuthTime time.Time
}

// OIDCStore persists what the browser flow needs.
type OIDCStore interface {
	// CreateAuthCode stores a new, unused code. A taken hash yields
	// ErrAlreadyExists; an unknown client, user or browser session
	// ErrNotFound.
	CreateAuthCode(ctx context.Context, c AuthCode) error
	// GetAuthCode returns the code with this hash, used or not, expired or
	// not; ErrNotFound when there is none.
	GetAuthCode(ctx context.Context, hash string) (AuthCode, error)
	// RedeemAuthCode marks the unused code with this hash as used at now by
	// the session sessionID, with one conditional UPDATE: of any number of
	// concurrent callers exactly one succeeds. A code already used yields
	// ErrConflict and writes nothing; an unknown hash, or a code expired at
	// now, ErrNotFound.
	RedeemAuthCode(ctx context.Context, hash string, sessionID uuid.UUID, now time.Time) error
	// DeleteExpiredAuthCodes removes codes that expired before before.
	DeleteExpiredAuthCodes(ctx context.Context, before time.Time) (int, error)
	// CreateBrowserSession stores the session s and its browser-session
	// record (b.Session is ignored; the record's session is s) in one
	// transaction.
	CreateBrowserSession(ctx context.Context, s Session, b BrowserSession) (BrowserSession, error)
	// GetBrowserSession returns the browser session whose cookie value has
	// this hash, with its session as stored (revoked or expired or not);
	// ErrNotFound when there is none.
	GetBrowserSession(ctx context.Context, tokenHash string) (BrowserSession, error)
	// BrowserSessionIDs returns the ids of the user's sessions that are
	// browser sessions (in any state), in no particular order.
	BrowserSessionIDs(ctx context.Context, userID uuid.UUID) ([]uuid.UUID, error)
}

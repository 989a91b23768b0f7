package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/oauth2"
)

// realm is the protection space named in WWW-Authenticate challenges.
const realm = "permiso"

// principalFrom returns the authenticated caller of a request that passed
// guard (reqInfo.principal).
func principalFrom(ctx context.Context) (oauth2.Principal, bool) {
	if info := infoFrom(ctx); info != nil && info.principal != nil {
		return *info.principal, true
	}
	return oauth2.Principal{}, false
}

var (
	errNoToken = permiso.Errorf(permiso.EUNAUTHORIZED, "No authentication token provided")
)

// bearerToken extracts the token of an "Authorization: Bearer" header
// (RFC 6750 §2.1; the scheme is case-insensitive). ok is false when the
// header is absent or uses another scheme. Tokens in the query string or
// the body (RFC 6750 §2.2, §2.3) are not accepted: they end up in logs.
func bearerToken(r *http.Request) (token string, ok bool) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(headerValue(r.Header, "Authorization")), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(rest)
	return token, token != ""
}

// authenticate runs the one bearer check (oauth2.Service.Authenticate) for
// the request. On a route that admits it (access.mfaEnrollment), a bearer
// that is not a JWT (no ".") is taken for the mfa_token of an
// mfa_enrollment_required answer (oauth2.Service.AuthenticateMFAEnrollment);
// everywhere else such a token is an invalid access token.
func (s *server) authenticate(r *http.Request, a access, limits *permiso.Limits) (oauth2.Principal, error) {
	token, ok := bearerToken(r)
	if !ok {
		return oauth2.Principal{}, errNoToken
	}
	if a.mfaEnrollment && !strings.Contains(token, ".") {
		return s.auth.AuthenticateMFAEnrollment(r.Context(), token, limits)
	}
	return s.auth.Authenticate(r.Context(), token, limits)
}

// bearerChallenge returns the WWW-Authenticate value for a 401 or 403 of
// the bearer scheme (RFC 6750 §3): no error attribute when no token was
// sent (§3.1), else invalid_token or insufficient_scope with a description.
func bearerChallenge(code permiso.Code, description string) string {
	var b strings.Builder
	b.WriteString(`Bearer realm="` + realm + `"`)
	var name string
	switch code {
	case permiso.EINVALIDTOKEN:
		name = "invalid_token"
	case permiso.EINSUFFICIENTSCOPE:
		name = "insufficient_scope"
	default:
		return b.String()
	}
	b.WriteString(`, error="` + name + `"`)
	if description != "" {
		b.WriteString(`, error_description="` + quoteSafe(description) + `"`)
	}
	return b.String()
}

// quoteSafe keeps only the characters RFC 6750 §3 allows in
// error_description (%x20-21 / %x23-5B / %x5D-7E).
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == 0x20 || r == 0x21 || (r >= 0x23 && r <= 0x5B) || (r >= 0x5D && r <= 0x7E) {
			return r
		}
		return -1
	}, s)
}

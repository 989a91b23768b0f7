package oauth2

import (
	"encoding/base64"
	"net/url"
	"sort"
	"strings"

	"github.com/permiso/permiso"
)

// Grant types of the token endpoint (RFC 6749 §4.3.2, §4.4.2, §6).
const (
	GrantPassword          = "password"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	// GrantMFA exchanges the mfa_token of a password grant answered
	// mfa_required (or mfa_enrollment_required) and a one-time password or
	// a recovery code for tokens (docs/mfa.md, "Sign-in"). An extension
	// grant: its type is an absolute URI (RFC 6749 §4.5).
	GrantMFA = "urn:permiso:params:oauth:grant-type:mfa"
)

// ClientAuthMethod says how the client authenticated at the token endpoint.
// The values are the RFC 7591 §2 token_endpoint_auth_method names.
type ClientAuthMethod string

// Client authentication methods (RFC 6749 §2.3.1).
const (
	ClientAuthNone  ClientAuthMethod = "none"
	ClientAuthBasic ClientAuthMethod = "client_secret_basic"
	ClientAuthPost  ClientAuthMethod = "client_secret_post"
)

// Limits on parameter values, in bytes. Longer values are rejected before
// any lookup or hashing work.
const (
	MaxUsernameLength     = 320 // an email address (RFC 5321 §4.5.3.1 path limits)
	MaxPasswordLength     = 4096
	MaxTokenLength        = 4096
	MaxClientIDLength     = 256
	MaxClientSecretLength = 512
	maxParamNameInError   = 64
	maxAuthorizationLen   = 8192
)

// TokenRequest is a parsed token endpoint request (RFC 6749 §4.3.2, §4.4.2,
// §6). Empty strings mean the parameter was absent.
type TokenRequest struct {
	GrantType    string
	Username     string
	Password     string
	RefreshToken string
	// Code, RedirectURI and CodeVerifier are the authorization_code
	// grant's (RFC 6749 §4.1.3, RFC 7636 §4.5).
	Code         string
	RedirectURI  string
	CodeVerifier string
	// MFAToken and one of OTP or RecoveryCode: the mfa grant.
	MFAToken     string
	OTP          string
	RecoveryCode string
	// Scope is the sorted, de-duplicated list of requested scopes;
	// ScopeGiven reports whether any scope was requested at all.
	Scope      []string
	ScopeGiven bool
	// ClientID and ClientSecret are the client's credentials, from HTTP
	// Basic or from the form (ClientAuth says which); both are set or
	// neither.
	ClientID     string
	ClientSecret string
	ClientAuth   ClientAuthMethod
}

// ParseTokenRequest parses the application/x-www-form-urlencoded body of a
// token request and the request's Authorization header. Every error is an
// *Error with a 4xx status:
//
//   - a parameter sent more than once is invalid_request naming it
//     (RFC 6749 §3.2); a parameter sent without a value counts as absent
//     (§3.1);
//   - grant_type defaults to "password" when absent (as the original service
//     did); an unknown one is unsupported_grant_type;
//   - the client authenticates with HTTP Basic (§2.3.1: client_id and
//     client_secret form-urlencoded, then base64) or with client_id and
//     client_secret in the form, never both (§2.3: invalid_request). A
//     malformed Basic header is invalid_client with a Basic challenge; a
//     client_id without client_secret (or the reverse) is invalid_client.
//     An Authorization header with another scheme is ignored: it is not
//     client authentication at this endpoint;
//   - username and password (password grant) and refresh_token (refresh
//     grant) are required: invalid_request "Missing parameter: username".
//     A username of any other bytes is the password grant's to judge: one
//     that names no account (invalid UTF-8, NUL, control characters) is an
//     unknown user, invalid_grant;
//   - scope is parsed by ParseScope (invalid_scope);
//   - absurdly long values are invalid_request.
func ParseTokenRequest(form url.Values, authorization string) (TokenRequest, error) {
	// RFC 6749 §3.2: "Request and response parameters MUST NOT be included
	// more than once." Checked for every parameter, in name order, so the
	// error is deterministic.
	names := make([]string, 0, len(form))
	for name, vs := range form {
		if len(vs) > 1 {
			names = append(names, name)
		}
	}
	if len(names) > 0 {
		sort.Strings(names)
		return TokenRequest{}, repeated(names[0])
	}
	get := func(name string) string { return form.Get(name) }

	var err error
	req := TokenRequest{GrantType: get("grant_type"), ClientAuth: ClientAuthNone}
	switch req.GrantType {
	case "":
		req.GrantType = GrantPassword
	case GrantPassword, GrantRefreshToken, GrantClientCredentials, GrantAuthorizationCode, GrantMFA:
	default:
		return TokenRequest{}, ErrUnsupportedGrantType.WithDescription("Unsupported grant type")
	}

	// Client authentication (RFC 6749 §2.3.1). A public client sends its
	// client_id alone in the authorization_code grant (§4.1.3) and in the
	// refresh of the tokens it got (§6).
	if (req.GrantType == GrantAuthorizationCode || req.GrantType == GrantRefreshToken) && get("client_secret") == "" && get("client_id") != "" &&
		!strings.EqualFold(strings.SplitN(strings.TrimLeft(authorization, " "), " ", 2)[0], "Basic") {
		req.ClientID = get("client_id")
		if len(req.ClientID) > MaxClientIDLength {
			return TokenRequest{}, ErrInvalidClient
		}
	} else if req.ClientID, req.ClientSecret, req.ClientAuth, err = parseClientCredentials(get, authorization); err != nil {
		return TokenRequest{}, err
	}

	req.Username = get("username")
	req.Password = get("password")
	req.RefreshToken = get("refresh_token")
	switch {
	case len(req.Username) > MaxUsernameLength:
		return TokenRequest{}, tooLong("username")
	case len(req.Password) > MaxPasswordLength:
		return TokenRequest{}, tooLong("password")
	case len(req.RefreshToken) > MaxTokenLength:
		return TokenRequest{}, tooLong("refresh_token")
	}
	switch req.GrantType {
	case GrantPassword:
		if req.Username == "" {
			return TokenRequest{}, missing("username")
		}
		if req.Password == "" {
			return TokenRequest{}, missing("password")
		}
		req.RefreshToken = ""
	case GrantRefreshToken:
		if req.RefreshToken == "" {
			return TokenRequest{}, missing("refresh_token")
		}
		req.Username, req.Password = "", ""
	case GrantClientCredentials:
		req.Username, req.Password, req.RefreshToken = "", "", ""
	case GrantMFA:
		req.Username, req.Password, req.RefreshToken = "", "", ""
		return parseMFAParams(req, get)
	case GrantAuthorizationCode:
		req.Username, req.Password, req.RefreshToken = "", "", ""
		req.Code, req.RedirectURI, req.CodeVerifier = get("code"), get("redirect_uri"), get("code_verifier")
		switch {
		case req.Code == "":
			return TokenRequest{}, missing("code")
		case req.RedirectURI == "":
			// OpenID Connect Core 1.0 §3.1.3.1: the redirect_uri of the
			// authorization request is always sent.
			return TokenRequest{}, missing("redirect_uri")
		case len(req.Code) > MaxTokenLength:
			return TokenRequest{}, tooLong("code")
		case len(req.RedirectURI) > permiso.MaxRedirectURILength:
			return TokenRequest{}, tooLong("redirect_uri")
		case len(req.CodeVerifier) > 128:
			return TokenRequest{}, tooLong("code_verifier")
		}
		// The scope parameter is not part of this grant (§4.1.3).
		return req, nil
	}

	scope, err := ParseScope(get("scope"))
	if err != nil {
		return TokenRequest{}, err
	}
	req.Scope, req.ScopeGiven = scope, len(scope) > 0
	return req, nil
}

// ParseClientCredentials extracts a client's credentials from a request to
// the introspection or revocation endpoint (RFC 7662 §2.1, RFC 7009 §2.1),
// with the token endpoint's rules: HTTP Basic or client_id/client_secret in
// the form, never both; a repeated parameter is invalid_request. method is
// ClientAuthNone when no credentials were sent.
func ParseClientCredentials(form url.Values, authorization string) (id, secret string, method ClientAuthMethod, err error) {
	for _, name := range []string{"client_id", "client_secret"} {
		if len(form[name]) > 1 {
			return "", "", ClientAuthNone, repeated(name)
		}
	}
	return parseClientCredentials(form.Get, authorization)
}

func parseClientCredentials(get func(string) string, authorization string) (id, secret string, method ClientAuthMethod, err error) {
	basicID, basicSecret, basic, err := parseBasic(authorization)
	if err != nil {
		return "", "", ClientAuthNone, err
	}
	formID, formSecret := get("client_id"), get("client_secret")
	switch {
	case basic && (formID != "" || formSecret != ""):
		// §2.3: "The client MUST NOT use more than one authentication
		// method in each request."
		return "", "", ClientAuthNone, ErrInvalidRequest.WithDescription("Client credentials were sent both in the Authorization header and in the request body")
	case basic:
		return basicID, basicSecret, ClientAuthBasic, nil
	case formID != "" || formSecret != "":
		switch {
		case formID == "":
			return "", "", ClientAuthNone, ErrInvalidClient.WithDescription("Missing parameter: client_id")
		case formSecret == "":
			return "", "", ClientAuthNone, ErrInvalidClient.WithDescription("Missing parameter: client_secret")
		case len(formID) > MaxClientIDLength || len(formSecret) > MaxClientSecretLength:
			return "", "", ClientAuthNone, ErrInvalidClient
		}
		return formID, formSecret, ClientAuthPost, nil
	}
	return "", "", ClientAuthNone, nil
}

// errMalformedBasic answers Basic credentials that cannot be decoded;
// built once, not per request.
var errMalformedBasic = ErrInvalidClient.WithDescription("Malformed HTTP Basic client credentials").WithBasicChallenge()

// parseBasic decodes an "Authorization: Basic" header (RFC 7617 §2,
// RFC 6749 §2.3.1). ok is false when the header is absent or uses another
// scheme.
func parseBasic(h string) (id, secret string, ok bool, err error) {
	scheme, rest, _ := strings.Cut(strings.TrimLeft(h, " "), " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "", "", false, nil
	}
	malformed := errMalformedBasic
	if len(h) > maxAuthorizationLen {
		return "", "", false, malformed
	}
	raw, derr := decodeBasic(strings.Trim(rest, " "))
	if derr != nil {
		return "", "", false, malformed
	}
	encID, encSecret, found := strings.Cut(raw, ":")
	if !found {
		return "", "", false, malformed
	}
	// RFC 6749 §2.3.1: both are application/x-www-form-urlencoded before
	// being joined with ':', so a ':' in a client id arrives as %3A.
	id, err1 := url.QueryUnescape(encID)
	secret, err2 := url.QueryUnescape(encSecret)
	switch {
	case err1 != nil || err2 != nil:
		return "", "", false, malformed
	case id == "" || secret == "":
		return "", "", false, ErrInvalidClient.WithBasicChallenge()
	case len(id) > MaxClientIDLength || len(secret) > MaxClientSecretLength:
		return "", "", false, ErrInvalidClient.WithBasicChallenge()
	}
	return id, secret, true, nil
}

// basicOnStack is the longest credentials parameter of a Basic header
// (base64) that decodeBasic decodes on the stack; a client_id and a
// secret of permiso's are well under it.
const basicOnStack = 344

// decodeBasic is string(base64.StdEncoding.DecodeString(s)), the
// credentials of a Basic header (TestDecodeBasicIsDecodeString): one of
// at most basicOnStack bytes is decoded through buffers on the stack, so
// that the string is the only copy on the heap.
func decodeBasic(s string) (string, error) {
	if len(s) > basicOnStack {
		raw, err := base64.StdEncoding.DecodeString(s)
		return string(raw), err
	}
	var src [basicOnStack]byte
	var dst [basicOnStack / 4 * 3]byte
	n, err := base64.StdEncoding.Decode(dst[:], append(src[:0], s...))
	return string(dst[:n]), err
}

func missing(name string) *Error {
	return ErrInvalidRequest.WithDescription("Missing parameter: " + name)
}

func tooLong(name string) *Error {
	return ErrInvalidRequest.WithDescription("Parameter too long: " + name)
}

// repeated names the parameter when its name is safe to echo in an
// error_description (RFC 6749 §5.2 character set, bounded length).
func repeated(name string) *Error {
	if len(name) <= maxParamNameInError && safeDescription(name) && name != "" {
		return ErrInvalidRequest.WithDescription("Repeated parameter: " + name)
	}
	return ErrInvalidRequest.WithDescription("Repeated parameter")
}

// safeDescription reports whether s uses only the characters RFC 6749 §5.2
// allows in error_description: %x20-21 / %x23-5B / %x5D-7E.
func safeDescription(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// MaxMFACodeLength bounds a presented otp or recovery_code.
const MaxMFACodeLength = 64

// parseMFAParams reads the mfa grant's parameters: mfa_token and exactly
// one of otp and recovery_code. The mfa grant takes no scope: it issues
// what the password grant decided.
func parseMFAParams(req TokenRequest, get func(string) string) (TokenRequest, error) {
	req.MFAToken, req.OTP, req.RecoveryCode = get("mfa_token"), get("otp"), get("recovery_code")
	switch {
	case req.MFAToken == "":
		return TokenRequest{}, missing("mfa_token")
	case len(req.MFAToken) > MaxTokenLength:
		return TokenRequest{}, tooLong("mfa_token")
	case req.OTP == "" && req.RecoveryCode == "":
		return TokenRequest{}, missing("otp or recovery_code")
	case req.OTP != "" && req.RecoveryCode != "":
		return TokenRequest{}, ErrInvalidRequest.WithDescription("Send either otp or recovery_code, not both")
	case len(req.OTP) > MaxMFACodeLength:
		return TokenRequest{}, tooLong("otp")
	case len(req.RecoveryCode) > MaxMFACodeLength:
		return TokenRequest{}, tooLong("recovery_code")
	}
	return req, nil
}

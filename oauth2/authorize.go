package oauth2

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/permiso/permiso"
)

// The authorization endpoint of the authorization code flow (RFC 6749
// §4.1.1, OpenID Connect Core 1.0 §3.1.2): docs/oidc.md.

// Scopes of OpenID Connect (OpenID Connect Core 1.0 §5.4, §11). They are
// granted to any user who asks through a client of the browser flow; the
// other scopes of a request are permiso's, granted only when the user holds
// them.
const (
	ScopeOpenID        = "openid"
	ScopeProfile       = "profile"
	ScopeEmail         = "email"
	ScopeOfflineAccess = "offline_access"
)

// OIDCScopes lists the OpenID Connect scopes permiso grants.
var OIDCScopes = []string{ScopeEmail, ScopeOfflineAccess, ScopeOpenID, ScopeProfile}

// Values of the prompt parameter (OpenID Connect Core 1.0 §3.1.2.1).
const (
	PromptNone    = "none"
	PromptLogin   = "login"
	PromptConsent = "consent"
)

// Errors of the authorization endpoint (RFC 6749 §4.1.2.1, OpenID Connect
// Core 1.0 §3.1.2.6). Sent to the client's redirect URI, never as a
// status of their own.
var (
	ErrAccessDenied = &Error{Code: "access_denied", Status: http.StatusBadRequest,
		Description: "The user or the authorization server denied the request"}
	ErrUnsupportedResponseType = &Error{Code: "unsupported_response_type", Status: http.StatusBadRequest,
		Description: "Only response_type=code is supported"}
	ErrLoginRequired = &Error{Code: "login_required", Status: http.StatusBadRequest,
		Description: "The user is not signed in"}
	ErrConsentRequired = &Error{Code: "consent_required", Status: http.StatusBadRequest,
		Description: "The user has not consented to this client"}
	ErrRequestNotSupported = &Error{Code: "request_not_supported", Status: http.StatusBadRequest,
		Description: "Request objects are not supported"}
	ErrRequestURINotSupported = &Error{Code: "request_uri_not_supported", Status: http.StatusBadRequest,
		Description: "request_uri is not supported"}
)

// authorizeParams are the parameters of an authorization request that
// permiso reads; the hosted forms carry them from page to page.
var authorizeParams = []string{"client_id", "redirect_uri", "response_type", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "prompt", "max_age", "login_hint", "response_mode",
	"request", "request_uri", "acr_values"}

// Limits of the authorization request's free-form values, in bytes.
const (
	MaxStateLength     = 2048
	MaxNonceLength     = 512
	MaxLoginHintLength = MaxUsernameLength
)

// AuthorizeRequest is a validated authorization request.
type AuthorizeRequest struct {
	// Client is the client the request names, active and registered for
	// the authorization code grant; RedirectURI is one of its registered
	// redirect URIs (exact match).
	Client      permiso.ServiceClient
	RedirectURI string
	State       string
	// Scope is the requested scope, sorted and de-duplicated.
	Scope         []string
	Nonce         string
	CodeChallenge string
	Prompt        []string
	// MaxAge is max_age in seconds, or -1 when absent.
	MaxAge    int
	LoginHint string
	// ACRValues are the requested acr values, in order of preference
	// (OpenID Connect Core 1.0 §3.1.2.1); values permiso does not define
	// are kept and ignored.
	ACRValues []string
	// Params are the request's parameters as permiso read them, for the
	// hosted forms to send back.
	Params url.Values
}

// WantsMFA reports whether the request's acr_values ask for ACRMFA: a
// sign-in with a second factor (docs/oidc.md, "Second factor").
func (r AuthorizeRequest) WantsMFA() bool { return slices.Contains(r.ACRValues, ACRMFA) }

// HasPrompt reports whether the request's prompt includes p.
func (r AuthorizeRequest) HasPrompt(p string) bool { return slices.Contains(r.Prompt, p) }

// AuthorizeError is an error of the authorization endpoint. When Redirect
// is true, client_id and redirect_uri were valid and the error goes back
// to the client (RFC 6749 §4.1.2.1) at RedirectURL; otherwise the user
// sees an error page and is never redirected (RFC 6749 §4.1.2.1: "MUST
// NOT automatically redirect the user-agent to the invalid redirection
// URI"; RFC 9700 §4.11, open redirectors).
type AuthorizeError struct {
	Err         *Error
	Redirect    bool
	RedirectURL string
}

func (e *AuthorizeError) Error() string { return e.Err.Error() }
func (e *AuthorizeError) Unwrap() error { return e.Err }

// ParseAuthorizeRequest validates an authorization request (RFC 6749
// §4.1.1, RFC 7636 §4.3, OpenID Connect Core 1.0 §3.1.2.1, §3.1.2.2).
// client_id and redirect_uri are checked first: until both are known
// good, every error is one for the error page. After that, errors are
// redirected to the client with state and iss (RFC 9207 §2).
//
// Every error is an *AuthorizeError; store failures are *AuthorizeError
// with a server_error or temporarily_unavailable that is not redirected.
func (s *Service) ParseAuthorizeRequest(ctx context.Context, q url.Values) (AuthorizeRequest, error) {
	page := func(desc string) error {
		return &AuthorizeError{Err: ErrInvalidRequest.WithDescription(desc)}
	}
	if !s.OIDCEnabled() {
		return AuthorizeRequest{}, &AuthorizeError{Err: ErrTemporarilyUnavailable.WithDescription("The OpenID Connect provider is not configured")}
	}
	for _, name := range []string{"client_id", "redirect_uri"} {
		if len(q[name]) > 1 {
			return AuthorizeRequest{}, page("Repeated parameter: " + name)
		}
	}
	clientID, redirectURI := q.Get("client_id"), q.Get("redirect_uri")
	if clientID == "" {
		return AuthorizeRequest{}, page("Missing parameter: client_id")
	}
	if len(clientID) > MaxClientIDLength || !permiso.ValidIdentifier(clientID) {
		return AuthorizeRequest{}, page("Unknown client")
	}
	c, err := s.deps.Clients.GetServiceClientByClientID(ctx, clientID)
	switch {
	case errors.Is(err, permiso.ErrNotFound):
		return AuthorizeRequest{}, page("Unknown client")
	case err != nil:
		return AuthorizeRequest{}, &AuthorizeError{Err: s.oauthError(ctx, err, metaFrom(ctx))}
	case !c.IsActive || !c.AllowsGrant(permiso.GrantTypeAuthorizationCode):
		return AuthorizeRequest{}, page("This client may not use the authorization code flow")
	}
	// OpenID Connect Core 1.0 §3.1.2.1: redirect_uri is REQUIRED, and
	// must match a registered one exactly (RFC 9700 §4.1.3).
	if redirectURI == "" {
		return AuthorizeRequest{}, page("Missing parameter: redirect_uri")
	}
	if !c.HasRedirectURI(redirectURI) {
		return AuthorizeRequest{}, page("The redirect_uri is not registered for this client")
	}

	r := AuthorizeRequest{Client: c, RedirectURI: redirectURI, MaxAge: -1, Params: url.Values{}}
	for _, name := range authorizeParams {
		if v, ok := q[name]; ok && len(v) > 0 {
			r.Params[name] = []string{v[0]}
		}
	}
	r.State = q.Get("state")
	if !permiso.ValidText(r.State) || strings.ContainsRune(r.State, '\r') {
		// A state that is not valid UTF-8, or holds a NUL, a carriage
		// return (HTML forms turn it into a line feed) or another control
		// character than tab and line feed, cannot be carried by the
		// hosted pages byte for byte: the client could not check it, so
		// nothing goes back to it (the error page).
		return AuthorizeRequest{}, page("Invalid parameter: state (valid UTF-8 without control characters)")
	}
	redirect := func(e *Error) error {
		return &AuthorizeError{Err: e, Redirect: true, RedirectURL: s.ErrorRedirect(r, e)}
	}
	// RFC 6749 §3.1: parameters MUST NOT be included more than once.
	for _, name := range authorizeParams {
		if len(q[name]) > 1 {
			return r, redirect(ErrInvalidRequest.WithDescription("Repeated parameter: " + name))
		}
	}
	if len(r.State) > MaxStateLength {
		// The state is not echoed: it is what is wrong.
		r.State = ""
		return r, redirect(tooLong("state"))
	}
	switch {
	case q.Get("request") != "":
		return r, redirect(ErrRequestNotSupported)
	case q.Get("request_uri") != "":
		return r, redirect(ErrRequestURINotSupported)
	}
	switch rt := q.Get("response_type"); rt {
	case "code":
	case "":
		return r, redirect(missing("response_type"))
	default:
		return r, redirect(ErrUnsupportedResponseType)
	}
	if rm := q.Get("response_mode"); rm != "" && rm != "query" {
		return r, redirect(ErrInvalidRequest.WithDescription("Only response_mode=query is supported"))
	}
	if r.Scope, err = ParseScope(q.Get("scope")); err != nil {
		return r, redirect(AsError(err))
	}
	r.Nonce = q.Get("nonce")
	if len(r.Nonce) > MaxNonceLength || !permiso.ValidText(r.Nonce) {
		return r, redirect(ErrInvalidRequest.WithDescription("Invalid parameter: nonce"))
	}
	// PKCE (RFC 7636 §4.3, §4.4.1): S256 only; required for public
	// clients (RFC 9700 §2.1.1), accepted from every client.
	r.CodeChallenge = q.Get("code_challenge")
	method := q.Get("code_challenge_method")
	switch {
	case r.CodeChallenge == "" && method != "":
		return r, redirect(missing("code_challenge"))
	case r.CodeChallenge == "" && c.AuthMethod() == permiso.AuthMethodNone:
		return r, redirect(ErrInvalidRequest.WithDescription("PKCE is required: code_challenge with code_challenge_method=S256"))
	case r.CodeChallenge != "" && method != permiso.PKCEMethodS256:
		// An absent method means "plain" (RFC 7636 §4.3), refused.
		return r, redirect(ErrInvalidRequest.WithDescription("Only code_challenge_method=S256 is supported"))
	case r.CodeChallenge != "" && !permiso.ValidCodeChallenge(r.CodeChallenge):
		return r, redirect(ErrInvalidRequest.WithDescription("Invalid parameter: code_challenge"))
	}
	if p := q.Get("prompt"); p != "" {
		r.Prompt = strings.Fields(p)
		for _, v := range r.Prompt {
			switch v {
			case PromptNone, PromptLogin, PromptConsent, "select_account":
			default:
				return r, redirect(ErrInvalidRequest.WithDescription("Unsupported prompt value"))
			}
		}
		// OpenID Connect Core 1.0 §3.1.2.1: none with any other value is
		// an error.
		if r.HasPrompt(PromptNone) && len(r.Prompt) > 1 {
			return r, redirect(ErrInvalidRequest.WithDescription("prompt=none cannot be combined with other values"))
		}
	}
	if v := q.Get("max_age"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return r, redirect(ErrInvalidRequest.WithDescription("Invalid parameter: max_age"))
		}
		r.MaxAge = n
	}
	if v := q.Get("acr_values"); v != "" {
		if len(v) > MaxStateLength || !permiso.ValidText(v) {
			return r, redirect(ErrInvalidRequest.WithDescription("Invalid parameter: acr_values"))
		}
		r.ACRValues = strings.Fields(v)
	}
	r.LoginHint = q.Get("login_hint")
	if len(r.LoginHint) > MaxLoginHintLength || !permiso.ValidText(r.LoginHint) {
		r.LoginHint = ""
	}
	return r, nil
}

// IDTokenAlgorithm is the JWS algorithm of ID tokens; "" without the
// browser flow.
func (s *Service) IDTokenAlgorithm() string {
	if s.deps.IDTokens == nil {
		return ""
	}
	return s.deps.IDTokens.IDTokenAlgorithm()
}

// OIDCEnabled reports whether the browser flow is wired (Deps.OIDC and
// Deps.IDTokens).
func (s *Service) OIDCEnabled() bool { return s.deps.OIDC != nil && s.deps.IDTokens != nil }

// ErrorRedirect is the URL that sends error e back to the client
// (RFC 6749 §4.1.2.1) with state and iss (RFC 9207 §2).
func (s *Service) ErrorRedirect(r AuthorizeRequest, e *Error) string {
	v := url.Values{"error": {e.Code}}
	if e.Description != "" && safeDescription(e.Description) {
		v.Set("error_description", e.Description)
	}
	return s.redirectWith(r, v)
}

func (s *Service) redirectWith(r AuthorizeRequest, v url.Values) string {
	if r.State != "" {
		v.Set("state", r.State)
	}
	v.Set("iss", s.cfg.OIDCIssuer)
	u, err := url.Parse(r.RedirectURI)
	if err != nil {
		// Registered URIs are parsed when registered (RedirectURIProblem).
		return r.RedirectURI
	}
	// The registered query is kept (RFC 6749 §3.1.2); the response's
	// parameters are added to it.
	q := u.Query()
	for k, vs := range v {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String()
}

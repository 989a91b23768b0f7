package oauth2

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// Browser sign-in and the authorization decision of the hosted pages
// (docs/oidc.md).

// Audit actions of the browser flow.
const (
	// ActionAuthorize records an authorization code issued to a client.
	ActionAuthorize = "oauth.authorize"
	// ActionCodeReuse records an authorization code presented again
	// (RFC 6749 §4.1.2): what its first exchange issued is revoked.
	ActionCodeReuse = "token.code_reuse"
)

// DefaultBrowserSessionLifetime is Config.BrowserSessionLifetime when zero.
const DefaultBrowserSessionLifetime = 12 * time.Hour

// AuthMethodPassword is the amr value of a password sign-in (RFC 8176 §2).
const AuthMethodPassword = permiso.AMRPassword

// AuthMethodOTP is the amr value added by a second factor (RFC 8176 §2).
const AuthMethodOTP = permiso.AMROTP

// sessionAMR returns the authentication methods a session, code or grant
// records: amr, or a password alone when none were recorded (rows written
// before migration 6 default to "pwd" too). The result is a copy.
func sessionAMR(amr []string) []string {
	if len(amr) == 0 {
		return []string{AuthMethodPassword}
	}
	return append([]string(nil), amr...)
}

// SignIn authenticates a user on the hosted sign-in page. It takes the
// password grant's path (verifyPassword): the request's limit batch first
// (the per-IP login limit), then the lockout, a dummy verification for an
// unknown user and the same invalid_grant "Invalid username or password"
// for unknown users and wrong passwords, the same audit events, and
// account_disabled or password_expired only after a correct password.
//
// On success it opens a new browser session (never reusing one the browser
// presented: no session fixation) and returns the cookie value, of which
// only the hash is stored. A user who has a second factor, or must enroll
// one, gets no session: the error is a *SecondStepRequired, for the pages
// to begin the second step (BeginSecondStep, docs/oidc.md "Second
// factor").
func (s *Service) SignIn(ctx context.Context, login, password string, meta RequestMeta, limits *permiso.Limits) (cookie string, b permiso.BrowserSession, u permiso.User, err error) {
	cookie, b, u, err = s.signIn(ctx, login, password, meta, limits)
	if _, ok := errors.AsType[*SecondStepRequired](err); ok {
		return "", permiso.BrowserSession{}, permiso.User{}, err
	}
	if err != nil {
		return "", permiso.BrowserSession{}, permiso.User{}, s.oauthError(ctx, err, meta)
	}
	return cookie, b, u, nil
}

func (s *Service) signIn(ctx context.Context, login, password string, meta RequestMeta, limits *permiso.Limits) (string, permiso.BrowserSession, permiso.User, error) {
	none := permiso.User{}
	switch {
	case login == "":
		return "", permiso.BrowserSession{}, none, missing("username")
	case password == "":
		return "", permiso.BrowserSession{}, none, missing("password")
	case len(login) > MaxUsernameLength:
		return "", permiso.BrowserSession{}, none, tooLong("username")
	case len(password) > MaxPasswordLength:
		return "", permiso.BrowserSession{}, none, tooLong("password")
	}
	if !s.OIDCEnabled() {
		return "", permiso.BrowserSession{}, none, ErrTemporarilyUnavailable.WithDescription("The OpenID Connect provider is not configured")
	}
	if err := s.checkBatch(ctx, limits, nil); err != nil {
		return "", permiso.BrowserSession{}, none, err
	}
	authTime := s.now()
	u, needsRehash, sf, err := s.verifyPassword(ctx, login, password, meta)
	if err != nil {
		return "", permiso.BrowserSession{}, none, err
	}
	if s.cfg.PasswordMaxAge > 0 && u.PasswordChangedAt.Add(s.cfg.PasswordMaxAge).Before(s.now()) {
		s.auditUser(ctx, meta, u, ActionLoginFailure, "failure", map[string]any{"reason": "password_expired", "method": "browser"})
		return "", permiso.BrowserSession{}, none, ErrPasswordExpired
	}
	if sf.Enrolled || sf.Required {
		// No session until the second step (docs/oidc.md, "Second factor").
		return "", permiso.BrowserSession{}, u, &SecondStepRequired{User: u, AuthTime: authTime, Enroll: !sf.Enrolled}
	}
	cookie, b, err := s.openBrowserSession(ctx, u, authTime, []string{AuthMethodPassword}, meta)
	if err != nil {
		return "", permiso.BrowserSession{}, none, err
	}
	s.recordLogin(ctx, u, password, needsRehash, s.now())
	s.auditUser(ctx, meta, u, ActionLoginSuccess, "success", map[string]any{"session_id": b.ID.String(), "method": "browser"})
	return cookie, b, u, nil
}

// openBrowserSession opens a browser session of u signed in at authTime
// with the authentication methods amr, and returns its cookie value (only
// its hash is stored). A password change or revoke-all that raced the
// sign-in wins (login_race.go).
func (s *Service) openBrowserSession(ctx context.Context, u permiso.User, authTime time.Time, amr []string, meta RequestMeta) (string, permiso.BrowserSession, error) {
	now := s.now()
	cookie := permiso.NewOpaqueToken()
	b, err := s.deps.OIDC.CreateBrowserSession(ctx, permiso.Session{
		ID: uuid.New(), UserID: u.ID, IPAddress: ipString(meta), UserAgent: optional(meta.UserAgent),
		CreatedAt: now, LastActivity: now, ExpiresAt: now.Add(s.cfg.BrowserSessionLifetime), AMR: amr,
	}, permiso.BrowserSession{TokenHash: permiso.HashToken(cookie), AuthTime: authTime})
	if err != nil {
		return "", permiso.BrowserSession{}, err
	}
	if err := s.recheckLogin(ctx, &grant{user: &u, authTime: authTime}, b.ID, meta); err != nil {
		return "", permiso.BrowserSession{}, err
	}
	return cookie, b, nil
}

// BrowserSession returns the browser session of a session cookie's value
// and its user, when the session is active, the user is active and nothing
// revoked the user's tokens since the sign-in; ErrNotFound otherwise.
func (s *Service) BrowserSession(ctx context.Context, cookie string) (permiso.BrowserSession, permiso.User, error) {
	none := permiso.Errorf(permiso.ENOTFOUND, "No browser session")
	if !s.OIDCEnabled() || cookie == "" || len(cookie) > MaxTokenLength {
		return permiso.BrowserSession{}, permiso.User{}, none
	}
	b, err := s.deps.OIDC.GetBrowserSession(ctx, permiso.HashToken(cookie))
	if err != nil {
		if errors.Is(err, permiso.ErrNotFound) {
			return permiso.BrowserSession{}, permiso.User{}, none
		}
		return permiso.BrowserSession{}, permiso.User{}, err
	}
	if !b.Active(s.now()) {
		return permiso.BrowserSession{}, permiso.User{}, none
	}
	u, err := s.deps.Users.GetUser(ctx, b.UserID)
	if err != nil {
		if errors.Is(err, permiso.ErrNotFound) {
			return permiso.BrowserSession{}, permiso.User{}, none
		}
		return permiso.BrowserSession{}, permiso.User{}, err
	}
	if !u.IsActive || u.TokensRevokedBefore != nil && b.AuthTime.Before(*u.TokensRevokedBefore) {
		return permiso.BrowserSession{}, permiso.User{}, none
	}
	return b, u, nil
}

// EndBrowserSession ends a browser session (sign-out): the session and
// the access tokens that name it.
func (s *Service) EndBrowserSession(ctx context.Context, b permiso.BrowserSession, meta RequestMeta) error {
	if err := s.endSession(ctx, b.ID, "signout", s.now()); err != nil {
		return err
	}
	s.audit(ctx, meta, permiso.AuditEvent{ActorType: "user", ActorID: ptr(b.UserID.String()),
		Action: ActionLogout, Result: "success", TargetType: ptr("session"), TargetID: ptr(b.ID.String()),
		Details: map[string]any{"method": "browser"}})
	return nil
}

// AuthorizeStep is what the authorization endpoint does next.
type AuthorizeStep int

// The steps of an authorization request.
const (
	// StepSignIn shows the sign-in page.
	StepSignIn AuthorizeStep = iota
	// StepConsent shows the consent page.
	StepConsent
	// StepIssue issues the code and redirects to the client.
	StepIssue
	// StepSecondFactor asks a browser session signed in with a password
	// alone for a second factor (or its enrollment): the request's
	// acr_values ask for ACRMFA (StepUp).
	StepSecondFactor
)

// NextStep decides what an authorization request needs (OpenID Connect
// Core 1.0 §3.1.2.3): b is the browser session (nil when none); fresh
// says the user signed in during this request; consented that they just
// approved the client on the consent page.
//
//   - without a session, or when prompt=login asks for a new sign-in, or
//     when the sign-in is older than max_age: the sign-in page, or
//     login_required with prompt=none;
//   - a request whose acr_values ask for ACRMFA, in a session signed in
//     with a password alone: the second step (StepSecondFactor), or
//     login_required with prompt=none;
//   - a client that is not trusted needs the user's consent on every
//     authorization (consent is not remembered yet), as do
//     prompt=consent and a request for an admin:* scope the client holds
//     (even from a trusted client): the consent page, or
//     consent_required with prompt=none;
//   - then the code is issued.
func (s *Service) NextStep(r AuthorizeRequest, b *permiso.BrowserSession, fresh, consented bool) (AuthorizeStep, error) {
	signIn := b == nil ||
		r.HasPrompt(PromptLogin) && !fresh ||
		r.MaxAge >= 0 && !fresh && s.now().Sub(b.AuthTime) > time.Duration(r.MaxAge)*time.Second
	if signIn {
		if r.HasPrompt(PromptNone) {
			return StepSignIn, s.redirectError(r, ErrLoginRequired)
		}
		return StepSignIn, nil
	}
	if r.WantsMFA() && !slices.Contains(b.AMR, AuthMethodOTP) {
		if r.HasPrompt(PromptNone) {
			return StepSecondFactor, s.redirectError(r, ErrLoginRequired)
		}
		return StepSecondFactor, nil
	}
	if !consented && (!r.Client.IsTrusted || r.HasPrompt(PromptConsent) || needsConsent(r)) {
		if r.HasPrompt(PromptNone) {
			return StepConsent, s.redirectError(r, ErrConsentRequired)
		}
		return StepConsent, nil
	}
	return StepIssue, nil
}

func (s *Service) redirectError(r AuthorizeRequest, e *Error) error {
	return &AuthorizeError{Err: e, Redirect: true, RedirectURL: s.ErrorRedirect(r, e)}
}

// DenyAuthorization is the answer when the user refuses consent: the
// client gets access_denied (RFC 6749 §4.1.2.1).
func (s *Service) DenyAuthorization(r AuthorizeRequest) string {
	return s.ErrorRedirect(r, ErrAccessDenied.WithDescription("The user denied the request"))
}

// GrantedScopes is what an authorization request grants user u: the
// OpenID Connect scopes it asks for, and the permiso scopes it asks for
// that the user holds and the client holds (its scope_ids): never more
// than either. A client that holds no scope gets none of the user's, so
// that the delegation rule on a client's scopes (a delegated
// administrator gives a client only scopes it holds) bounds what the
// client's browser flow can collect from the users who sign in through it.
func GrantedScopes(r AuthorizeRequest, u permiso.User) []string {
	return codeFlowScopes(r.Scope, u, r.Client)
}

// codeFlowScopes is the ceiling of the browser flow: the OpenID Connect
// scopes of requested, and its other scopes that both user u and client c
// hold.
func codeFlowScopes(requested []string, u permiso.User, c permiso.ServiceClient) []string {
	oidc := intersect(requested, OIDCScopes)
	own := intersect(intersect(requested, validScopes(u.ScopeNames())), c.ScopeNames())
	return permiso.SortedUnique(append(oidc, own...))
}

// needsConsent reports whether the request asks for an administrative
// scope (admin:*) that the user would grant: the user is asked for it
// even by a trusted client (docs/oidc.md, "Consent").
func needsConsent(r AuthorizeRequest) bool {
	for _, sc := range r.Scope {
		if strings.HasPrefix(sc, "admin:") && containsScope(r.Client.ScopeNames(), sc) {
			return true
		}
	}
	return false
}

// IssueCode issues an authorization code for r to the signed-in user
// (RFC 6749 §4.1.2) and returns the redirect URL with code, state and iss
// (RFC 9207 §2). Only the code's hash is stored; it lives
// permiso.AuthCodeLifetime and is bound to the client, the redirect URI,
// the PKCE challenge, the nonce and the browser session.
func (s *Service) IssueCode(ctx context.Context, r AuthorizeRequest, b permiso.BrowserSession, u permiso.User, meta RequestMeta) (string, error) {
	now := s.now()
	code := permiso.NewOpaqueToken()
	scopes := GrantedScopes(r, u)
	if err := s.deps.OIDC.CreateAuthCode(ctx, permiso.AuthCode{
		CodeHash: permiso.HashToken(code), ClientID: r.Client.ID, UserID: u.ID, BrowserSessionID: b.ID,
		RedirectURI: r.RedirectURI, Scopes: scopes, Nonce: r.Nonce, CodeChallenge: r.CodeChallenge,
		AuthTime: b.AuthTime, AMR: sessionAMR(b.AMR), CreatedAt: now, ExpiresAt: now.Add(permiso.AuthCodeLifetime),
	}); err != nil {
		return "", s.oauthError(ctx, err, meta)
	}
	s.auditUser(ctx, meta, u, ActionAuthorize, "success", map[string]any{
		"client_id": r.Client.ClientID, "scopes": scopes, "session_id": b.ID.String()})
	return s.redirectWith(r, map[string][]string{"code": {code}}), nil
}

// UserInfo returns the claims of the userinfo endpoint (OpenID Connect
// Core 1.0 §5.3) for a bearer: sub and the claims of the token's scopes.
// The token must be a user's and carry openid (RFC 6750 §3.1
// insufficient_scope otherwise).
func (s *Service) UserInfo(p Principal) (map[string]any, error) {
	if p.User == nil || !containsScope(p.Claims.Scopes, ScopeOpenID) {
		return nil, permiso.Errorf(permiso.EFORBIDDEN, "The access token does not carry the openid scope")
	}
	claims := UserClaims(*p.User, p.Claims.Scopes)
	claims["sub"] = p.User.ID.String()
	return claims, nil
}

// UserClaims are the standard claims that scopes release about u (OpenID
// Connect Core 1.0 §5.4): profile gives name, given_name, family_name,
// preferred_username and updated_at; email gives email and
// email_verified.
func UserClaims(u permiso.User, scopes []string) map[string]any {
	c := map[string]any{}
	if containsScope(scopes, ScopeProfile) {
		c["name"] = u.FullName()
		c["preferred_username"] = u.Username
		if u.FirstName != nil && *u.FirstName != "" {
			c["given_name"] = *u.FirstName
		}
		if u.LastName != nil && *u.LastName != "" {
			c["family_name"] = *u.LastName
		}
		if !u.UpdatedAt.IsZero() {
			c["updated_at"] = u.UpdatedAt.Unix()
		}
	}
	if containsScope(scopes, ScopeEmail) {
		c["email"] = u.Email
		c["email_verified"] = u.IsVerified
	}
	return c
}

func containsScope(scopes []string, s string) bool {
	for _, x := range scopes {
		if x == s {
			return true
		}
	}
	return false
}

// scopeString joins scopes for a response.
func scopeString(scopes []string) string { return strings.Join(scopes, " ") }

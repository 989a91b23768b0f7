package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/oauth2"
)

// The authorization endpoint, its hosted sign-in and consent pages, and
// userinfo (docs/oidc.md). Each handler parses, makes its service calls in
// oauth2 (which holds every rule) and answers with a page or a redirect.

// Paths of the browser flow below the API prefix.
const (
	pathAuthorize  = "/oauth2/authorize"
	pathConsent    = "/oauth2/consent"
	pathUserinfo   = "/oauth2/userinfo"
	pathHostedCSS  = "/oauth2/style.css"
	pathEndSession = "/oauth2/logout"
	pathPassword   = "/oauth2/password"
)

// freshSignIn is how recent a sign-in must be for the consent step to
// count it as made for this authorization (prompt=login, max_age).
const freshSignIn = 10 * time.Minute

// authorizeError answers an authorization error: back to the client when
// client_id and redirect_uri were valid (RFC 6749 §4.1.2.1), otherwise an
// error page that redirects nowhere.
func (s *server) authorizeError(w http.ResponseWriter, r *http.Request, err error) {
	if clientClosed(w, r, err) {
		return
	}
	var ae *oauth2.AuthorizeError
	if errors.As(err, &ae) && ae.Redirect {
		redirectTo(w, ae.RedirectURL)
		return
	}
	e := oauth2.AsError(err)
	if ae != nil {
		e = ae.Err
	}
	status := http.StatusBadRequest
	if e.Status >= 500 {
		status = e.Status
	}
	if e.Status >= 500 && !e.Logged() {
		s.logger.ErrorContext(r.Context(), "authorization endpoint error", "error", err.Error(),
			"request_id", RequestID(r.Context()))
	}
	s.errorPage(w, r, status, pageMessage(e))
}

// pageMessage is what a page says about an OAuth error.
func pageMessage(e *oauth2.Error) string {
	switch {
	case e.Status >= 500:
		return "The service is unavailable right now. Try again in a moment."
	case e.Description != "":
		return e.Description + "."
	}
	return "The request is not valid."
}

// browserSession returns the request's browser session, if its cookie
// names an active one.
func (s *server) browserSession(r *http.Request) (*permiso.BrowserSession, permiso.User, error) {
	v := s.cookie(r, sessionCookie)
	if v == "" {
		return nil, permiso.User{}, nil
	}
	b, u, err := s.auth.BrowserSession(r.Context(), v)
	switch {
	case errors.Is(err, permiso.ErrNotFound):
		return nil, permiso.User{}, nil
	case err != nil:
		return nil, permiso.User{}, err
	}
	return &b, u, nil
}

// pageIn is what a hosted page's handler starts from: the request's
// parameters (the query, or the form once its CSRF token is checked) and
// the browser session, if any.
type pageIn struct {
	form url.Values
	b    *permiso.BrowserSession
	u    permiso.User
}

// pageFunc is a hosted page's handler; an error it returns is answered by
// authorizeError (back to the client, or the error page).
type pageFunc func(w http.ResponseWriter, r *http.Request, in pageIn) error

// page adapts a pageFunc, as handlerFunc adapts the JSON handlers: it
// reads the query (GET) or the form, whose CSRF token must match when
// csrf is set (readPageForm), and looks up the browser session.
func (s *server) page(csrf bool, h pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var form url.Values
		switch {
		case r.Method == http.MethodGet:
			form = r.URL.Query()
		case csrf:
			var ok bool
			if form, ok = s.readPageForm(w, r); !ok {
				return
			}
		default:
			var err error
			if form, err = readParams(r, false); err != nil {
				s.errorPage(w, r, http.StatusBadRequest, "The form could not be read.")
				return
			}
		}
		b, u, err := s.browserSession(r)
		if err == nil {
			err = h(w, r, pageIn{form: form, b: b, u: u})
		}
		if err != nil {
			s.authorizeError(w, r, err)
		}
	})
}

// authorizePage is page for the pages that carry an authorization
// request: h gets it parsed and validated.
func (s *server) authorizePage(csrf bool, h func(w http.ResponseWriter, r *http.Request, in pageIn, ar oauth2.AuthorizeRequest) error) http.Handler {
	return s.page(csrf, func(w http.ResponseWriter, r *http.Request, in pageIn) error {
		ar, err := s.auth.ParseAuthorizeRequest(r.Context(), in.form)
		if err != nil {
			return err
		}
		return h(w, r, in, ar)
	})
}

// handleAuthorize is GET /oauth2/authorize (RFC 6749 §4.1.1, OpenID
// Connect Core 1.0 §3.1.2.1).
func (s *server) handleAuthorize() http.Handler {
	return s.authorizePage(false, func(w http.ResponseWriter, r *http.Request, in pageIn, ar oauth2.AuthorizeRequest) error {
		return s.authorizeStep(w, r, ar, in.b, in.u, false, false)
	})
}

// authorizeStep does what the request needs next: the sign-in page, the
// consent page, or the code.
func (s *server) authorizeStep(w http.ResponseWriter, r *http.Request, ar oauth2.AuthorizeRequest, b *permiso.BrowserSession, u permiso.User, fresh, consented bool) error {
	step, err := s.auth.NextStep(ar, b, fresh, consented)
	if err != nil {
		return err
	}
	switch step {
	case oauth2.StepSignIn:
		s.signInPage(w, r, ar, http.StatusOK, "", ar.LoginHint)
	case oauth2.StepSecondFactor:
		st, err := s.auth.StepUp(r.Context(), *b, u)
		if err != nil {
			return err
		}
		return s.secondStep(w, r, ar, st, b.ID)
	case oauth2.StepConsent:
		csrf := s.csrfToken(w, r)
		params := url.Values{}
		for k, v := range ar.Params {
			params[k] = v
		}
		params.Set(consentBindingField, consentBinding(csrf, b, ar.Params))
		s.renderPage(w, r, http.StatusOK, "consent", origin(ar.RedirectURI), pageData{
			Title: "Allow access?", Action: s.apiPrefix() + pathConsent, Params: params,
			CSRF: csrf, ClientName: ar.Client.Name, Username: u.Username,
			Scopes: scopeWords(oauth2.GrantedScopes(ar, u)),
		})
	default:
		target, err := s.auth.IssueCode(r.Context(), ar, *b, u, meta(r))
		if err != nil {
			return err
		}
		redirectTo(w, target)
	}
	return nil
}

func (s *server) signInPage(w http.ResponseWriter, r *http.Request, ar oauth2.AuthorizeRequest, status int, msg, username string) {
	s.renderPage(w, r, status, "signin", origin(ar.RedirectURI), pageData{
		Title: "Sign in", Action: s.apiPrefix() + pathAuthorize, Params: ar.Params, CSRF: s.csrfToken(w, r),
		ClientName: ar.Client.Name, Username: username, Error: msg,
	})
}

// readPageForm reads a hosted form and checks its CSRF token; it answers
// the error page itself and returns false when the form is refused.
func (s *server) readPageForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	form, err := readParams(r, false)
	if err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "The form could not be read.")
		return nil, false
	}
	if !s.csrfValid(r, form) {
		s.formExpired(w, r)
		return nil, false
	}
	return form, true
}

// formExpired answers a form whose CSRF token or binding does not match.
func (s *server) formExpired(w http.ResponseWriter, r *http.Request) {
	s.errorPage(w, r, http.StatusForbidden, "The form has expired or did not come from this site. Go back and try again.")
}

// handleSignIn is POST /oauth2/authorize: the sign-in form, carrying the
// authorization request. The user is authenticated by the password grant's
// path (oauth2.Service.SignIn: limits, lockout, dummy hash, audit), with
// the per-IP login limit.
func (s *server) handleSignIn() settlingHandler {
	return func(r *http.Request, limits *permiso.Limits) reply {
		rec := newReplyRecorder()
		s.signIn(rec, r, limits)
		return rec.replay
	}
}

func (s *server) signIn(w http.ResponseWriter, r *http.Request, limits *permiso.Limits) {
	s.authorizePage(false, func(w http.ResponseWriter, r *http.Request, in pageIn, ar oauth2.AuthorizeRequest) error {
		form := in.form
		if form.Get(csrfField) == "" && form.Get("username") == "" && form.Get("password") == "" {
			// An authorization request sent by POST (OpenID Connect Core 1.0
			// §3.1.2.1: the authorization endpoint supports GET and POST): it
			// is answered as GET answers it. It changes nothing a GET could
			// not, and SameSite=Lax keeps the session cookie off a cross-site
			// POST.
			return s.authorizeStep(w, r, ar, in.b, in.u, false, false)
		}
		if !s.csrfValid(r, form) {
			s.formExpired(w, r)
			return nil
		}
		username := form.Get("username")
		s.addLimit(limits, r, limitLogin)
		cookie, b, u, err := s.auth.SignIn(r.Context(), username, form.Get("password"), meta(r), limits)
		if st, ok := errors.AsType[*oauth2.SecondStepRequired](err); ok {
			return s.secondStep(w, r, ar, st, uuid.Nil)
		}
		if err != nil {
			return s.signInFailed(w, r, ar, username, err)
		}
		// A new session cookie replaces whatever the browser had: no session
		// fixation.
		s.setCookie(w, r, sessionCookie, cookie, 0)
		return s.authorizeStep(w, r, ar, &b, u, true, false)
	}).ServeHTTP(w, r)
}

// signInFailed answers a refused sign-in: the sign-in page again with the
// reason the password grant would give, the password page for an expired
// password, nothing for a rate-limited request (the route answers 429
// once the batch is settled).
func (s *server) signInFailed(w http.ResponseWriter, r *http.Request, ar oauth2.AuthorizeRequest, username string, err error) error {
	e := oauth2.AsError(err)
	switch {
	case e.Status >= 500:
		return err
	case e.Code == oauth2.ErrRateLimited.Code:
	case e.Code == oauth2.ErrPasswordExpired.Code:
		// Only after a correct password (the password grant's rule).
		s.passwordPage(w, r, ar, http.StatusForbidden, username, "", nil)
	default:
		s.signInPage(w, r, ar, signInStatus(e), signInMessage(e), username)
	}
	return nil
}

func signInStatus(e *oauth2.Error) int {
	if e.Status == http.StatusTooManyRequests || e.Status == http.StatusLocked || e.Status == http.StatusForbidden {
		return e.Status
	}
	return http.StatusUnauthorized
}

// signInMessage is the sign-in page's answer: the same for an unknown user
// and a wrong password (the password grant's invalid_grant); the account's
// state only after a correct password, as the password grant says it.
func signInMessage(e *oauth2.Error) string {
	switch e.Code {
	case oauth2.ErrAccountLocked.Code, oauth2.ErrTooManyAttempts.Code:
		return "Too many failed sign-ins. Try again later."
	case oauth2.ErrAccountDisabled.Code:
		return "This account is disabled."
	case oauth2.ErrInvalidRequest.Code:
		return "Enter your username or email and your password."
	}
	return "Invalid username or password."
}

func (s *server) passwordPage(w http.ResponseWriter, r *http.Request, ar oauth2.AuthorizeRequest, status int, username, msg string, problems []string) {
	s.renderPage(w, r, status, "password", origin(ar.RedirectURI), pageData{
		Title: "Change your password", Action: s.apiPrefix() + pathPassword, Params: ar.Params, CSRF: s.csrfToken(w, r),
		ClientName: ar.Client.Name, Username: username, Error: msg, Problems: problems,
	})
}

// handlePasswordChange is POST /oauth2/password: the expired-password
// page, for expired passwords only (oauth2.Service.ChangePasswordIfExpired). The change is POST /auth/change-password's
// (oauth2.Service.ChangeExpiredPassword: the current password checked
// like a login, the password policy, the history, every session ended);
// then the user is signed in with the new password and the authorization
// goes on.
func (s *server) handlePasswordChange() http.Handler {
	return s.authorizePage(true, func(w http.ResponseWriter, r *http.Request, in pageIn, ar oauth2.AuthorizeRequest) error {
		form := in.form
		username, current, next := form.Get("username"), form.Get("current_password"), form.Get("new_password")
		if next == "" || next != form.Get("confirm_password") {
			s.passwordPage(w, r, ar, http.StatusUnprocessableEntity, username, "Enter the same new password twice.", nil)
			return nil
		}
		if err := s.auth.ChangePasswordIfExpired(r.Context(), username, current, next, meta(r)); err != nil {
			if errors.Is(err, oauth2.ErrPasswordNotExpired) {
				// Only after a correct password: sign in with it.
				s.signInPage(w, r, ar, http.StatusBadRequest, "Your password has not expired. Sign in with it.", username)
				return nil
			}
			var pe *permiso.Error
			if errors.As(err, &pe) && pe.Code == permiso.EINVALID {
				var problems []string
				for _, d := range pe.Details {
					problems = append(problems, d.Message)
				}
				s.passwordPage(w, r, ar, http.StatusUnprocessableEntity, username, "The new password cannot be used.", problems)
				return nil
			}
			e := oauth2.AsError(err)
			if e.Status >= 500 {
				return err
			}
			s.passwordPage(w, r, ar, signInStatus(e), username, signInMessage(e), nil)
			return nil
		}
		cookie, b, u, err := s.auth.SignIn(r.Context(), username, next, meta(r), nil)
		if st, ok := errors.AsType[*oauth2.SecondStepRequired](err); ok {
			return s.secondStep(w, r, ar, st, uuid.Nil)
		}
		if err != nil {
			return err
		}
		s.setCookie(w, r, sessionCookie, cookie, 0)
		return s.authorizeStep(w, r, ar, &b, u, true, false)
	})
}

// consentBindingField is the consent form's field that binds the
// authorization request it carries to the browser's CSRF token and
// browser session (consentBinding).
const consentBindingField = "consent_binding"

// consentBinding is the MAC of the authorization request's parameters as
// the consent page showed them, keyed with the browser's CSRF token (a
// secret of this browser, never readable by another site) and bound to
// the browser session: the consent form cannot be altered (another client,
// more scopes, no code_challenge) nor used in another session, and the
// CSRF token changes once the form is accepted, so it is used once.
func consentBinding(csrf string, b *permiso.BrowserSession, params url.Values) string {
	m := hmac.New(sha256.New, []byte("permiso consent\x00"+csrf))
	if b != nil {
		m.Write([]byte(b.ID.String()))
	}
	m.Write([]byte{0})
	m.Write([]byte(params.Encode()))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// withoutCSRFCookie returns r without its CSRF cookie, so that the next
// csrfToken sets a new one: the token of an accepted consent form is spent.
func (s *server) withoutCSRFCookie(r *http.Request) *http.Request {
	name := s.cookieName(r, csrfCookie)
	r2 := r.Clone(r.Context())
	r2.Header.Del("Cookie")
	for _, c := range r.Cookies() {
		if c.Name != name {
			r2.AddCookie(c)
		}
	}
	return r2
}

// handleConsent is POST /oauth2/consent: the user allows or denies the
// client (OpenID Connect Core 1.0 §3.1.2.4). The form must carry the
// binding its page was shown with (consentBinding), and is spent once
// accepted.
func (s *server) handleConsent() http.Handler {
	return s.authorizePage(true, func(w http.ResponseWriter, r *http.Request, in pageIn, ar oauth2.AuthorizeRequest) error {
		b, u := in.b, in.u
		if b == nil {
			// Signed out meanwhile: sign in again.
			return s.authorizeStep(w, r, ar, nil, u, false, false)
		}
		want := consentBinding(s.cookie(r, csrfCookie), b, ar.Params)
		if got := in.form[consentBindingField]; len(got) != 1 || !hmac.Equal([]byte(strings.TrimSpace(got[0])), []byte(want)) {
			s.formExpired(w, r)
			return nil
		}
		// The form is spent: a new CSRF token from now on.
		r = s.withoutCSRFCookie(r)
		s.csrfToken(w, r)
		switch in.form.Get("decision") {
		case "allow":
			fresh := time.Since(b.AuthTime) <= freshSignIn
			return s.authorizeStep(w, r, ar, b, u, fresh, true)
		case "deny":
			redirectTo(w, s.auth.DenyAuthorization(ar))
		default:
			s.errorPage(w, r, http.StatusBadRequest, "Choose Allow or Deny.")
		}
		return nil
	})
}

// handleEndSession is GET /oauth2/logout, the end_session_endpoint
// (OpenID Connect RP-Initiated Logout 1.0 §2): a signed-in browser is
// asked to confirm; without a session it goes on at once.
func (s *server) handleEndSession() http.Handler {
	return s.page(false, func(w http.ResponseWriter, r *http.Request, in pageIn) error {
		lr, err := s.auth.ParseLogoutRequest(r.Context(), in.form)
		if err != nil {
			return err
		}
		if in.b == nil {
			s.signedOut(w, r, lr)
			return nil
		}
		d := pageData{Title: "Sign out?", Action: s.apiPrefix() + pathEndSession, Params: lr.Params,
			CSRF: s.csrfToken(w, r), Username: in.u.Username}
		if lr.Client != nil {
			d.ClientName = lr.Client.Name
		}
		s.renderPage(w, r, http.StatusOK, "signout", origin(lr.PostLogoutRedirectURI), d)
		return nil
	})
}

// handleSignOut is POST /oauth2/logout: the confirmation form. It ends
// the browser session, clears its cookie and returns to the registered
// post_logout_redirect_uri with state, or shows the signed-out page.
func (s *server) handleSignOut() http.Handler {
	return s.page(true, func(w http.ResponseWriter, r *http.Request, in pageIn) error {
		lr, err := s.auth.ParseLogoutRequest(r.Context(), in.form)
		if err != nil {
			return err
		}
		if in.b != nil {
			if err := s.auth.EndBrowserSession(r.Context(), *in.b, meta(r)); err != nil {
				return err
			}
		}
		s.signedOut(w, r, lr)
		return nil
	})
}

func (s *server) signedOut(w http.ResponseWriter, r *http.Request, lr oauth2.LogoutRequest) {
	s.setCookie(w, r, sessionCookie, "", -1)
	if target := s.auth.LogoutRedirect(lr); target != "" {
		redirectTo(w, target)
		return
	}
	s.renderPage(w, r, http.StatusOK, "signedout", "", pageData{Title: "Signed out"})
}

// scopeWords says what each scope lets the client do, for the consent
// page.
func scopeWords(scopes []string) []string {
	out := make([]string, 0, len(scopes))
	for _, sc := range scopes {
		switch sc {
		case oauth2.ScopeOpenID:
			out = append(out, "Know who you are on this service")
		case oauth2.ScopeProfile:
			out = append(out, "See your name and username")
		case oauth2.ScopeEmail:
			out = append(out, "See your email address")
		case oauth2.ScopeOfflineAccess:
			out = append(out, "Keep access while you are not using it")
		default:
			out = append(out, "Use your permission “"+sc+"”")
		}
	}
	return out
}

// handleUserinfo is GET and POST /oauth2/userinfo (OpenID Connect Core
// 1.0 §5.3): the claims of the bearer token's scopes.
func (s *server) handleUserinfo() http.Handler {
	return handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		p, _ := principalFrom(r.Context())
		claims, err := s.auth.UserInfo(p)
		if err != nil {
			return err
		}
		writeNoStore(w, http.StatusOK, claims)
		return nil
	})
}

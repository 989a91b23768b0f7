package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/mfa"
	"github.com/permiso/permiso/oauth2"
)

// The second step of a hosted sign-in (docs/oidc.md, "Second factor"):
// the code page and the enrollment page. The rules (who is asked, the
// pending sign-in's lifetime, binding and single use, the lockout) are
// oauth2's; enrollment is the identity service's.

// Paths of the second step below the API prefix.
const (
	pathMFA       = "/oauth2/mfa"
	pathMFAEnroll = "/oauth2/mfa/enroll"
)

// pendingCookie holds the sealed pending sign-in (oauth2.PendingSignIn)
// until the second step succeeds. It is not a session: /oauth2/authorize
// does not read it.
const pendingCookie = "permiso_mfa"

// pendingBinding binds a pending sign-in to this browser (its CSRF token,
// a secret no other site reads) and to the authorization request it was
// started for.
func pendingBinding(csrf string, params url.Values) string {
	m := hmac.New(sha256.New, []byte("permiso mfa\x00"+csrf))
	m.Write([]byte(params.Encode()))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// secondStep starts the second step of st: the pending sign-in's cookie,
// then the code page or the enrollment page. replaces is the
// password-only browser session a step-up replaces.
func (s *server) secondStep(w http.ResponseWriter, r *http.Request, ar oauth2.AuthorizeRequest, st *oauth2.SecondStepRequired, replaces uuid.UUID) error {
	csrf := s.csrfToken(w, r)
	cookie, err := s.auth.BeginSecondStep(st, pendingBinding(csrf, ar.Params), replaces)
	if err != nil {
		return err
	}
	s.setCookie(w, r, pendingCookie, cookie, int(oauth2.PendingSignInLifetime.Seconds()))
	if st.Enroll {
		enr, err := s.ident.BeginTOTP(r.Context(), s.pageActor(r, st.User), st.User.ID)
		if err != nil {
			return err
		}
		return s.enrollPage(w, r, ar, http.StatusOK, "", enr)
	}
	s.codePage(w, r, ar, http.StatusOK, "")
	return nil
}

func (s *server) pageActor(r *http.Request, u permiso.User) identity.Actor {
	return identity.Actor{UserID: u.ID, Request: meta(r)}
}

func (s *server) codePage(w http.ResponseWriter, r *http.Request, ar oauth2.AuthorizeRequest, status int, msg string) {
	s.renderPage(w, r, status, "mfa", origin(ar.RedirectURI), pageData{
		Title: "Enter your code", Action: s.apiPrefix() + pathMFA, Params: ar.Params, CSRF: s.csrfToken(w, r),
		ClientName: ar.Client.Name, Error: msg,
	})
}

func (s *server) enrollPage(w http.ResponseWriter, r *http.Request, ar oauth2.AuthorizeRequest, status int, msg string, enr identity.TOTPEnrollment) error {
	qr, err := mfa.QRSVG(enr.URI)
	if err != nil {
		return err
	}
	s.renderPage(w, r, status, "enroll", origin(ar.RedirectURI), pageData{
		Title: "Set up an authenticator app", Action: s.apiPrefix() + pathMFAEnroll, Params: ar.Params,
		CSRF: s.csrfToken(w, r), ClientName: ar.Client.Name, Error: msg,
		// mfa.QRSVG draws one path from the URI's modules: no script,
		// reference or text, nothing of the request.
		QRSVG: qr, Secret: enr.Secret,
	})
	return nil
}

// pending returns the request's pending sign-in; when there is none (or
// it is gone, or for another step), it clears the cookie, answers the
// sign-in page and returns false.
func (s *server) pending(w http.ResponseWriter, r *http.Request, ar oauth2.AuthorizeRequest, enroll bool) (oauth2.PendingSignIn, permiso.User, bool, error) {
	p, u, err := s.auth.PendingSignIn(r.Context(), s.cookie(r, pendingCookie), pendingBinding(s.cookie(r, csrfCookie), ar.Params))
	if err == nil && p.Enroll == enroll {
		return p, u, true, nil
	}
	if err != nil && !errors.Is(err, oauth2.ErrPendingSignInGone) {
		return p, u, false, err
	}
	s.setCookie(w, r, pendingCookie, "", -1)
	s.signInPage(w, r, ar, http.StatusBadRequest, "Your sign-in has expired. Sign in again.", "")
	return p, u, false, nil
}

// secondStepFailed answers an error of a code check: a locked account
// ends the pending sign-in (back to the sign-in page, as a locked login
// says it); checks in flight ask to retry; a wrong code (wrong true)
// shows the page again with one message for every wrong, used or replayed
// code. Other errors are returned, for authorizeError.
func (s *server) secondStepFailed(w http.ResponseWriter, r *http.Request, ar oauth2.AuthorizeRequest, p oauth2.PendingSignIn, err error, again func(status int, msg string) error) error {
	switch permiso.ErrorCode(err) {
	case permiso.ELOCKED:
		s.auth.KillPendingSignIn(r.Context(), p)
		s.setCookie(w, r, pendingCookie, "", -1)
		s.signInPage(w, r, ar, http.StatusLocked, signInMessage(oauth2.ErrAccountLocked), "")
		return nil
	case permiso.ENOTFOUND, permiso.ECONFLICT:
		// The enrollment was confirmed or replaced meanwhile (another tab).
		s.auth.KillPendingSignIn(r.Context(), p)
		s.setCookie(w, r, pendingCookie, "", -1)
		s.signInPage(w, r, ar, http.StatusBadRequest, "Your sign-in has expired. Sign in again.", "")
		return nil
	case permiso.ETOOMANYATTEMPTS:
		return again(http.StatusTooManyRequests, "Too many sign-in checks at once. Try again in a moment.")
	case permiso.EINVALIDCODE, permiso.EINVALID:
		return again(http.StatusUnauthorized, "That code is not valid. Try again.")
	}
	return err
}

// completeSecondStep opens the browser session of a completed
// second step and goes on with the authorization.
func (s *server) completeSecondStep(w http.ResponseWriter, r *http.Request, ar oauth2.AuthorizeRequest, p oauth2.PendingSignIn, u permiso.User, recoveryCode string) (*permiso.BrowserSession, error) {
	cookie, b, err := s.auth.CompleteSignIn(r.Context(), p, u, recoveryCode, meta(r))
	if errors.Is(err, oauth2.ErrPendingSignInGone) {
		s.setCookie(w, r, pendingCookie, "", -1)
		s.signInPage(w, r, ar, http.StatusBadRequest, "Your sign-in has expired. Sign in again.", "")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.setCookie(w, r, pendingCookie, "", -1)
	s.setCookie(w, r, sessionCookie, cookie, 0)
	return &b, nil
}

// handleSecondFactor is POST /oauth2/mfa: the code page's forms, a code
// of the authenticator app (code) or a recovery code (recovery_code).
func (s *server) handleSecondFactor() http.Handler {
	return s.authorizePage(true, func(w http.ResponseWriter, r *http.Request, in pageIn, ar oauth2.AuthorizeRequest) error {
		p, u, ok, err := s.pending(w, r, ar, false)
		if !ok {
			return err
		}
		again := func(status int, msg string) error {
			s.codePage(w, r, ar, status, msg)
			return nil
		}
		code, recoveryCode := in.form.Get("code"), in.form.Get("recovery_code")
		right, err := s.auth.CheckSignInCode(r.Context(), u, code, recoveryCode)
		if err == nil && !right {
			err = permiso.Errorf(permiso.EINVALIDCODE, "invalid code")
		}
		if err != nil {
			return s.secondStepFailed(w, r, ar, p, err, again)
		}
		// A recovery code, when given, is what CheckSignInCode checked (it
		// takes precedence over a TOTP code); it is spent only after the
		// pending sign-in is (CompleteSignIn).
		b, err := s.completeSecondStep(w, r, ar, p, u, recoveryCode)
		if b == nil {
			return err
		}
		return s.authorizeStep(w, r, ar, b, u, true, false)
	})
}

// handleEnrollment is POST /oauth2/mfa/enroll: the enrollment page's
// code, which confirms the factor (identity.Service.ConfirmTOTP); the
// recovery codes are then shown once, and the authorization goes on from
// their page.
func (s *server) handleEnrollment() http.Handler {
	return s.authorizePage(true, func(w http.ResponseWriter, r *http.Request, in pageIn, ar oauth2.AuthorizeRequest) error {
		p, u, ok, err := s.pending(w, r, ar, true)
		if !ok {
			return err
		}
		actor := s.pageActor(r, u)
		codes, err := s.ident.ConfirmTOTP(r.Context(), actor, u.ID, in.form.Get("code"))
		if err != nil {
			again := func(status int, msg string) error {
				enr, err := s.ident.PendingTOTP(r.Context(), actor, u.ID)
				if err != nil {
					return err
				}
				return s.enrollPage(w, r, ar, status, msg, enr)
			}
			return s.secondStepFailed(w, r, ar, p, err, again)
		}
		b, err := s.completeSecondStep(w, r, ar, p, u, "")
		if b == nil {
			return err
		}
		q := url.Values{}
		for k, v := range ar.Params {
			q[k] = v
		}
		s.renderPage(w, r, http.StatusOK, "recovery", origin(ar.RedirectURI), pageData{
			Title: "Save your recovery codes", Action: s.apiPrefix() + pathAuthorize + "?" + q.Encode(),
			ClientName: ar.Client.Name, Codes: codes,
		})
		return nil
	})
}

package oauth2

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/mfa"
)

// The second step of a browser sign-in (docs/oidc.md, "Second factor";
// docs/mfa.md): after a right password, a user with a confirmed factor
// answers it, and a user who must use one (MFA_REQUIRED_ROLES, or an
// authorization request asking for ACRMFA) enrolls one, before a browser
// session opens. Until then the browser holds only a pending sign-in: a
// value sealed by the MFA box (AES-GCM under MFA_ENCRYPTION_KEY, so every
// instance opens it and no browser can forge or read it), bound to the
// browser and the authorization request, living PendingSignInLifetime,
// spent once (OnceStore) and dead once the password changes, the user's
// tokens are revoked or the account is locked.

// PendingSignInLifetime is how long a pending sign-in may wait for its
// second step.
const PendingSignInLifetime = 5 * time.Minute

// Authentication context class references (OpenID Connect Core 1.0 §2,
// acr; §3.1.2.1, acr_values) of permiso's sign-ins.
const (
	// ACRPassword: a password alone.
	ACRPassword = "urn:permiso:acr:pwd"
	// ACRMFA: a password and a second factor (amr pwd and otp).
	ACRMFA = "urn:permiso:acr:mfa"
)

// ACRValuesSupported are the acr values of the discovery document.
var ACRValuesSupported = []string{ACRMFA, ACRPassword}

// ACR is the acr of a sign-in with authentication methods amr.
func ACR(amr []string) string {
	if slices.Contains(amr, AuthMethodOTP) {
		return ACRMFA
	}
	return ACRPassword
}

// pendingAAD is the additional data under which pending sign-ins are
// sealed: a sealed factor secret cannot pass for one.
var pendingAAD = []byte("permiso pending sign-in v1")

// PendingSignIn is a sign-in waiting for its second step.
type PendingSignIn struct {
	// ID is spent in the OnceStore when the step succeeds.
	ID     string    `json:"id"`
	UserID uuid.UUID `json:"uid"`
	// AuthTime is when the password was checked.
	AuthTime time.Time `json:"at"`
	Expires  time.Time `json:"exp"`
	// Password is a digest of the password hash the sign-in checked: a
	// password change kills the pending sign-in.
	Password string `json:"pw"`
	// Binding ties it to the browser and the authorization request
	// (computed by the pages from the browser's CSRF token).
	Binding string `json:"bind"`
	// Enroll: the user has no factor and enrolls one.
	Enroll bool `json:"enroll,omitempty"`
	// Replaces is the browser session signed in with a password alone that
	// the completed sign-in replaces (a step-up); uuid.Nil otherwise.
	Replaces uuid.UUID `json:"replaces,omitzero"`
}

// SecondStepRequired is SignIn's answer after a right password when the
// user must answer or enroll a second factor first: no browser session was
// opened. The pages then call BeginSecondStep.
type SecondStepRequired struct {
	User     permiso.User
	AuthTime time.Time
	Enroll   bool
}

func (e *SecondStepRequired) Error() string { return "oauth2: a second factor is required" }

// ErrPendingSignInGone: the pending sign-in is unknown, expired, spent,
// for another browser or request, or its user changed; sign in again.
var ErrPendingSignInGone = permiso.Errorf(permiso.ENOTFOUND, "The sign-in has expired; sign in again")

// StepUp returns the second step a browser session signed in with a
// password alone must pass for a request asking for ACRMFA
// (NextStep answered StepSecondFactor).
func (s *Service) StepUp(ctx context.Context, b permiso.BrowserSession, u permiso.User) (*SecondStepRequired, error) {
	st, err := s.SecondFactor(ctx, u)
	if err != nil {
		return nil, s.oauthError(ctx, err, metaFrom(ctx))
	}
	return &SecondStepRequired{User: u, AuthTime: b.AuthTime, Enroll: !st.Enrolled}, nil
}

func passwordDigest(u permiso.User) string { return permiso.HashToken(u.PasswordHash) }

// BeginSecondStep seals a pending sign-in for st, bound to binding;
// replaces is the password-only browser session a step-up replaces
// (uuid.Nil after a sign-in). The answer is the cookie value.
func (s *Service) BeginSecondStep(st *SecondStepRequired, binding string, replaces uuid.UUID) (string, error) {
	if s.deps.MFA.Box == nil {
		return "", ErrTemporarilyUnavailable.WithDescription("Multi-factor authentication is not configured on this server")
	}
	p := PendingSignIn{ID: permiso.NewOpaqueToken(), UserID: st.User.ID, AuthTime: st.AuthTime,
		Expires: s.now().Add(PendingSignInLifetime), Password: passwordDigest(st.User), Binding: binding,
		Enroll: st.Enroll, Replaces: replaces}
	raw, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	return s.deps.MFA.Box.Seal(raw, pendingAAD)
}

// PendingSignIn opens a pending sign-in's cookie value and returns it with
// its user, when it is bound to binding, unexpired, unspent, and the user
// is active with the same password and no revocation since the password
// was checked; ErrPendingSignInGone otherwise.
func (s *Service) PendingSignIn(ctx context.Context, cookie, binding string) (PendingSignIn, permiso.User, error) {
	var p PendingSignIn
	if s.deps.MFA.Box == nil || cookie == "" || len(cookie) > 4096 {
		return p, permiso.User{}, ErrPendingSignInGone
	}
	raw, err := s.deps.MFA.Box.Open(cookie, pendingAAD)
	if err != nil || json.Unmarshal(raw, &p) != nil {
		return PendingSignIn{}, permiso.User{}, ErrPendingSignInGone
	}
	if subtle.ConstantTimeCompare([]byte(p.Binding), []byte(binding)) != 1 || !s.now().Before(p.Expires) {
		return PendingSignIn{}, permiso.User{}, ErrPendingSignInGone
	}
	u, err := s.deps.Users.GetUser(permiso.WithFreshRead(ctx), p.UserID)
	switch {
	case errors.Is(err, permiso.ErrNotFound):
		return PendingSignIn{}, permiso.User{}, ErrPendingSignInGone
	case err != nil:
		return PendingSignIn{}, permiso.User{}, err
	case !u.IsActive || passwordDigest(u) != p.Password ||
		u.TokensRevokedBefore != nil && p.AuthTime.Before(*u.TokensRevokedBefore):
		return PendingSignIn{}, permiso.User{}, ErrPendingSignInGone
	}
	return p, u, nil
}

// CheckSignInCode checks a code of the second step: a TOTP code (otp) of
// the user's confirmed factor or one of their recovery codes (unused; it
// is spent by CompleteSignIn), as
// the mfa grant checks them (factorCheck: a TOTP code's time step is
// claimed in the OnceStore, so it is accepted once across instances),
// under the login lockout (CheckSecondFactor: a wrong code is a failed
// attempt; while locked no code is checked, ELOCKED). It reports whether
// the code was right.
func (s *Service) CheckSignInCode(ctx context.Context, u permiso.User, otp, recoveryCode string) (bool, error) {
	d := s.deps.MFA
	if d.Store == nil || d.Box == nil || d.Once == nil {
		return false, permiso.Errorf(permiso.EUNAVAILABLE, "Multi-factor authentication is not configured on this server")
	}
	if len(otp) > 64 || len(recoveryCode) > 64 {
		otp, recoveryCode = "", ""
	}
	f, err := d.Store.GetMFAFactor(ctx, u.ID, string(mfa.KindTOTP))
	switch {
	case errors.Is(err, permiso.ErrNotFound) || err == nil && !f.Confirmed():
		// Removed since the password: no code is right.
		return s.CheckSecondFactor(ctx, u, func() (bool, error) { return false, nil })
	case err != nil:
		return false, err
	case otp == "" && recoveryCode == "":
		return s.CheckSecondFactor(ctx, u, func() (bool, error) { return false, nil })
	}
	return s.CheckSecondFactor(ctx, u, s.factorCheck(ctx, u, f, otp, recoveryCode))
}

// KillPendingSignIn spends p without signing in (the account was locked
// during its second step).
func (s *Service) KillPendingSignIn(ctx context.Context, p PendingSignIn) {
	if s.deps.MFA.Once != nil {
		if _, err := s.deps.MFA.Once.Claim(ctx, "signin:"+p.ID, PendingSignInLifetime); err != nil {
			s.log.WarnContext(ctx, "pending sign-in not spent", "error", err.Error())
		}
	}
}

// CompleteSignIn ends p's second step: p is spent (once; a second use is
// ErrPendingSignInGone), then the recovery code that CheckSignInCode
// accepted, if one was given (a code another request spent meanwhile is
// ErrPendingSignInGone too: the sign-in starts again), a browser session
// opens with amr pwd and otp, and a step-up's password-only session ends.
// It returns the session cookie.
func (s *Service) CompleteSignIn(ctx context.Context, p PendingSignIn, u permiso.User, recoveryCode string, meta RequestMeta) (string, permiso.BrowserSession, error) {
	if s.deps.MFA.Once == nil {
		return "", permiso.BrowserSession{}, ErrTemporarilyUnavailable
	}
	first, err := s.deps.MFA.Once.Claim(ctx, "signin:"+p.ID, PendingSignInLifetime)
	if err != nil {
		return "", permiso.BrowserSession{}, s.oauthError(ctx, err, meta)
	}
	if !first {
		return "", permiso.BrowserSession{}, ErrPendingSignInGone
	}
	if err := s.spendRecoveryCode(ctx, u, recoveryCode); errors.Is(err, errBadMFACode) {
		return "", permiso.BrowserSession{}, ErrPendingSignInGone
	} else if err != nil {
		return "", permiso.BrowserSession{}, s.oauthError(ctx, err, meta)
	}
	amr := []string{AuthMethodPassword, AuthMethodOTP}
	cookie, b, err := s.openBrowserSession(ctx, u, p.AuthTime, amr, meta)
	if err != nil {
		return "", permiso.BrowserSession{}, s.oauthError(ctx, err, meta)
	}
	if p.Replaces != uuid.Nil {
		if err := s.endSession(ctx, p.Replaces, "step_up", s.now()); err != nil {
			s.log.WarnContext(ctx, "password-only browser session not ended after a step-up", "error", err.Error())
		}
	}
	s.auditUser(ctx, meta, u, ActionLoginSuccess, "success", map[string]any{"session_id": b.ID.String(),
		"method": "browser", "amr": amr})
	return cookie, b, nil
}

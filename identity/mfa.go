package identity

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/mfa"
)

// Multi-factor enrollment (docs/mfa.md). A user enrolls TOTP in two steps
// (BeginTOTP, ConfirmTOTP), may replace their recovery codes and remove
// the factor; an administrator may reset a user's factors. Every change is
// audited with no secret, code or recovery code in its details, and mailed
// to the user when a mailer is configured.

// Audit actions of multi-factor enrollment (docs/security-model.md, "Audit").
const (
	ActionMFAEnroll        = "mfa.totp_enroll"
	ActionMFAConfirm       = "mfa.totp_confirm"
	ActionMFARecoveryCodes = "mfa.recovery_codes"
	ActionMFADisable       = "mfa.totp_disable"
	ActionMFAReset         = "mfa.reset"
)

// reasonMFAReset is the session-revocation reason of an administrator's
// reset.
const reasonMFAReset = "mfa_reset"

// maxCode bounds a presented one-time password or recovery code.
const maxCode = 64

// MFADeps are the parts multi-factor enrollment works with.
type MFADeps struct {
	// Store keeps factors and recovery codes.
	Store permiso.MFAStore
	// Box seals factor secrets (MFA_ENCRYPTION_KEY); nil refuses
	// enrollment with EUNAVAILABLE.
	Box *mfa.Box
	// Once remembers the one-time passwords already accepted, shared by
	// every instance when it is Redis; nil refuses codes (fail closed).
	Once permiso.OnceStore
	// Issuer names the service in authenticator apps (APP_NAME).
	Issuer string
}

var (
	errMFANotConfigured = permiso.Errorf(permiso.EUNAVAILABLE, "Multi-factor authentication is not configured on this server")
	errInvalidCode      = permiso.Errorf(permiso.EINVALIDCODE, "The code is invalid, expired or already used")
	errTOTPConfirmed    = permiso.Errorf(permiso.ECONFLICT, "An authenticator app is already enrolled; remove it first")
	errNoPending        = permiso.Errorf(permiso.ENOTFOUND, "No authenticator enrollment is pending; start one first")
	errNoTOTP           = permiso.Errorf(permiso.ENOTFOUND, "No authenticator app is enrolled")
)

// MFAStatus is what GET /users/me/mfa shows.
type MFAStatus struct {
	TOTPEnabled       bool
	TOTPConfirmedAt   *time.Time
	RecoveryCodesLeft int
	// Required: the user's roles require a second factor
	// (MFA_REQUIRED_ROLES, permiso.MFARequiredBy): sign-in asks a user
	// without one to enroll first (docs/mfa.md).
	Required bool
}

// TOTPEnrollment is a pending enrollment: the secret as authenticator apps
// take it (base32) and the otpauth URI a QR code carries. It is shown once
// and never logged.
type TOTPEnrollment struct {
	Secret string
	URI    string
}

// MFAStatus returns the user's second-factor state.
func (s *Service) MFAStatus(ctx context.Context, actor Actor, id uuid.UUID) (MFAStatus, error) {
	if !actor.Is(id) {
		return MFAStatus{}, errForbidden
	}
	u, err := s.getUser(ctx, id)
	if err != nil {
		return MFAStatus{}, err
	}
	st := MFAStatus{Required: permiso.MFARequiredBy(u, s.cfg.MFARequiredRoles)}
	if s.deps.MFA.Store == nil {
		return st, nil
	}
	f, err := s.deps.MFA.Store.GetMFAFactor(ctx, id, string(mfa.KindTOTP))
	switch {
	case err == nil && f.Confirmed():
		st.TOTPEnabled, st.TOTPConfirmedAt = true, f.ConfirmedAt
	case err != nil && !errors.Is(err, permiso.ErrNotFound):
		return MFAStatus{}, err
	}
	if st.TOTPEnabled {
		if st.RecoveryCodesLeft, err = s.deps.MFA.Store.CountRecoveryCodes(ctx, id); err != nil {
			return MFAStatus{}, err
		}
	}
	return st, nil
}

// BeginTOTP starts (or restarts) the user's TOTP enrollment: a fresh
// secret, sealed and stored as pending. ECONFLICT while a confirmed TOTP
// factor exists.
func (s *Service) BeginTOTP(ctx context.Context, actor Actor, id uuid.UUID) (TOTPEnrollment, error) {
	out, err := s.beginTOTP(ctx, actor, id)
	s.audited(ctx, actor, ActionMFAEnroll, userTarget(id), err, nil)
	return out, err
}

func (s *Service) beginTOTP(ctx context.Context, actor Actor, id uuid.UUID) (TOTPEnrollment, error) {
	u, err := s.mfaUser(ctx, actor, id)
	if err != nil {
		return TOTPEnrollment{}, err
	}
	secret, err := mfa.NewTOTPSecret()
	if err != nil {
		return TOTPEnrollment{}, err
	}
	sealed, err := s.deps.MFA.Box.Seal(secret, mfa.AAD(id.String(), mfa.KindTOTP))
	if err != nil {
		return TOTPEnrollment{}, err
	}
	_, err = s.deps.MFA.Store.PutPendingMFAFactor(ctx, permiso.MFAFactor{UserID: id, Kind: string(mfa.KindTOTP), Secret: sealed, CreatedAt: s.now()})
	if errors.Is(err, permiso.ErrConflict) {
		return TOTPEnrollment{}, errTOTPConfirmed
	}
	if err != nil {
		return TOTPEnrollment{}, notFound(err, errUserNotFound)
	}
	return s.enrollment(u, secret), nil
}

// PendingTOTP returns the user's pending enrollment again (its secret
// opened from the store), for a page that shows it once more after a
// wrong code. errNoPending when none is pending.
func (s *Service) PendingTOTP(ctx context.Context, actor Actor, id uuid.UUID) (TOTPEnrollment, error) {
	u, err := s.mfaUser(ctx, actor, id)
	if err != nil {
		return TOTPEnrollment{}, err
	}
	f, err := s.deps.MFA.Store.GetMFAFactor(ctx, id, string(mfa.KindTOTP))
	switch {
	case errors.Is(err, permiso.ErrNotFound) || err == nil && f.Confirmed():
		return TOTPEnrollment{}, errNoPending
	case err != nil:
		return TOTPEnrollment{}, err
	}
	secret, err := s.deps.MFA.Box.Open(f.Secret, mfa.AAD(id.String(), mfa.KindTOTP))
	if err != nil {
		return TOTPEnrollment{}, permiso.Wrap(permiso.EINTERNAL, "MFA secret unreadable", err)
	}
	return s.enrollment(u, secret), nil
}

func (s *Service) enrollment(u permiso.User, secret []byte) TOTPEnrollment {
	issuer := s.deps.MFA.Issuer
	if issuer == "" {
		issuer = "permiso"
	}
	return TOTPEnrollment{Secret: mfa.EncodeSecret(secret), URI: mfa.OTPAuthURI(issuer, u.Username, secret)}
}

// ConfirmTOTP completes the pending enrollment with a code from the app
// and returns the user's first recovery codes (shown once; only their
// hashes are stored). A wrong code is EINVALIDCODE and a failed attempt of
// the login lockout.
func (s *Service) ConfirmTOTP(ctx context.Context, actor Actor, id uuid.UUID, code string) ([]string, error) {
	codes, err := s.confirmTOTP(withRequest(ctx, actor), actor, id, code)
	s.mfaChanged(ctx, actor, ActionMFAConfirm, id, err, nil, "An authenticator app was added to your account")
	return codes, err
}

func (s *Service) confirmTOTP(ctx context.Context, actor Actor, id uuid.UUID, code string) ([]string, error) {
	if !actor.Is(id) {
		return nil, errForbidden
	}
	if err := s.mfaConfigured(); err != nil {
		return nil, err
	}
	if err := requireCode(code); err != nil {
		return nil, err
	}
	u, err := s.getUser(ctx, id)
	if err != nil {
		return nil, err
	}
	f, err := s.deps.MFA.Store.GetMFAFactor(ctx, id, string(mfa.KindTOTP))
	if errors.Is(err, permiso.ErrNotFound) {
		return nil, errNoPending
	}
	if err != nil {
		return nil, err
	}
	if f.Confirmed() {
		return nil, errTOTPConfirmed
	}
	codes, hashes, err := s.recoveryCodesAfter(ctx, u, f, code, id)
	if err != nil {
		return nil, err
	}
	if _, err := s.deps.MFA.Store.ConfirmMFAFactor(ctx, id, string(mfa.KindTOTP), s.now(), hashes); err != nil {
		if errors.Is(err, permiso.ErrConflict) {
			return nil, errTOTPConfirmed
		}
		return nil, notFound(err, errNoPending)
	}
	return codes, nil
}

// RegenerateRecoveryCodes replaces the user's recovery codes after a
// current one-time password; the old codes stop working.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, actor Actor, id uuid.UUID, code string) ([]string, error) {
	codes, err := s.regenerateRecoveryCodes(withRequest(ctx, actor), actor, id, code)
	s.mfaChanged(ctx, actor, ActionMFARecoveryCodes, id, err, nil, "New recovery codes were generated for your account; the old ones no longer work")
	return codes, err
}

func (s *Service) regenerateRecoveryCodes(ctx context.Context, actor Actor, id uuid.UUID, code string) ([]string, error) {
	u, f, err := s.confirmedTOTP(ctx, actor, id, code)
	if err != nil {
		return nil, err
	}
	codes, hashes, err := s.recoveryCodesAfter(ctx, u, f, code, id)
	if err != nil {
		return nil, err
	}
	return codes, s.deps.MFA.Store.ReplaceRecoveryCodes(ctx, id, hashes, s.now())
}

// DisableTOTP removes the user's TOTP factor (and, with it, the recovery
// codes) after the current password and a one-time password or an unused
// recovery code. A wrong password is 400 as for a password change; a
// wrong code EINVALIDCODE; both count toward the lockout.
func (s *Service) DisableTOTP(ctx context.Context, actor Actor, id uuid.UUID, password, code string) error {
	err := s.disableTOTP(withRequest(ctx, actor), actor, id, password, code)
	s.mfaChanged(ctx, actor, ActionMFADisable, id, err, nil, "The authenticator app was removed from your account")
	return err
}

func (s *Service) disableTOTP(ctx context.Context, actor Actor, id uuid.UUID, password, code string) error {
	if password == "" {
		return permiso.Invalid("Validation error", permiso.FieldError{Field: "password", Message: "Field required"})
	}
	u, f, err := s.confirmedTOTP(ctx, actor, id, code)
	if err != nil {
		return err
	}
	if err := s.checkCurrent(ctx, u, password); err != nil {
		return err
	}
	if h := mfa.HashRecoveryCode(id.String(), code); h != "" {
		if err := s.useRecoveryCode(ctx, u, h); err != nil {
			return err
		}
	} else if err := s.checkTOTP(ctx, u, f, code); err != nil {
		return err
	}
	return notFound(s.deps.MFA.Store.DeleteMFAFactor(ctx, id, string(mfa.KindTOTP)), errNoTOTP)
}

// ResetMFA removes every second factor and recovery code of a user (an
// administrator's reset, for a user who lost their device) and ends the
// user's sessions. The delegation rule must let the administrator act on
// the user.
func (s *Service) ResetMFA(ctx context.Context, actor Actor, id uuid.UUID) error {
	n, err := s.resetMFA(withRequest(ctx, actor), actor, id)
	s.mfaChanged(ctx, actor, ActionMFAReset, id, err, map[string]any{"factors": n}, "An administrator removed the second factors of your account")
	return err
}

func (s *Service) resetMFA(ctx context.Context, actor Actor, id uuid.UUID) (int, error) {
	if !actor.Admin {
		return 0, errForbidden
	}
	if s.deps.MFA.Store == nil {
		return 0, errMFANotConfigured
	}
	u, err := s.getUser(ctx, id)
	if err != nil {
		return 0, err
	}
	if _, err := s.delegation(ctx, actor, u); err != nil {
		return 0, err
	}
	n, err := s.deps.MFA.Store.DeleteUserMFA(ctx, id)
	if err != nil {
		return 0, err
	}
	if _, err := s.deps.Sessions.RevokeAllForUser(ctx, id, reasonMFAReset); err != nil {
		return n, err
	}
	return n, nil
}

// confirmedTOTP checks the caller and the presented code's shape and
// returns the user and their confirmed TOTP factor.
func (s *Service) confirmedTOTP(ctx context.Context, actor Actor, id uuid.UUID, code string) (permiso.User, permiso.MFAFactor, error) {
	if !actor.Is(id) {
		return permiso.User{}, permiso.MFAFactor{}, errForbidden
	}
	if err := s.mfaConfigured(); err != nil {
		return permiso.User{}, permiso.MFAFactor{}, err
	}
	if err := requireCode(code); err != nil {
		return permiso.User{}, permiso.MFAFactor{}, err
	}
	u, err := s.getUser(ctx, id)
	if err != nil {
		return permiso.User{}, permiso.MFAFactor{}, err
	}
	f, err := s.deps.MFA.Store.GetMFAFactor(ctx, id, string(mfa.KindTOTP))
	if errors.Is(err, permiso.ErrNotFound) || (err == nil && !f.Confirmed()) {
		return permiso.User{}, permiso.MFAFactor{}, errNoTOTP
	}
	return u, f, err
}

// checkTOTP verifies code against the factor under the login lockout and
// claims its time step in the shared once-store: a code is accepted at
// most once per user, on any instance. A replayed code is a failure like
// a wrong one.
func (s *Service) checkTOTP(ctx context.Context, u permiso.User, f permiso.MFAFactor, code string) error {
	if s.deps.MFA.Once == nil {
		return errMFANotConfigured
	}
	check := func() (bool, error) {
		return s.deps.MFA.Box.Verify(ctx, s.deps.MFA.Once, mfa.TOTP{}, u.ID.String(), mfa.Kind(f.Kind), f.Secret, code, s.now())
	}
	ok, err := s.verifyFactor(ctx, u, check)
	if errors.Is(err, mfa.ErrSealed) {
		return permiso.Wrap(permiso.EINTERNAL, "MFA secret unreadable", err)
	}
	if err != nil {
		return err
	}
	if !ok {
		return errInvalidCode
	}
	return nil
}

// useRecoveryCode spends one of the user's recovery codes under the login
// lockout.
func (s *Service) useRecoveryCode(ctx context.Context, u permiso.User, hash string) error {
	ok, err := s.verifyFactor(ctx, u, func() (bool, error) {
		err := s.deps.MFA.Store.UseRecoveryCode(ctx, u.ID, hash, s.now())
		if errors.Is(err, permiso.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return err
	}
	if !ok {
		return errInvalidCode
	}
	return nil
}

// verifyFactor runs check through the lockout when there is one.
func (s *Service) verifyFactor(ctx context.Context, u permiso.User, check func() (bool, error)) (bool, error) {
	if s.deps.Lockout != nil {
		return s.deps.Lockout.CheckSecondFactor(ctx, u, check)
	}
	return check()
}

// mfaUser returns the user id whose factors the actor changes: the
// caller, on a server with multi-factor authentication configured.
func (s *Service) mfaUser(ctx context.Context, actor Actor, id uuid.UUID) (permiso.User, error) {
	if !actor.Is(id) {
		return permiso.User{}, errForbidden
	}
	if err := s.mfaConfigured(); err != nil {
		return permiso.User{}, err
	}
	return s.getUser(ctx, id)
}

func (s *Service) mfaConfigured() error {
	if s.deps.MFA.Store == nil || s.deps.MFA.Box == nil {
		return errMFANotConfigured
	}
	return nil
}

// requireCode checks that a code was given and is not absurdly long.
func requireCode(code string) error {
	if code == "" {
		return permiso.Invalid("Validation error", permiso.FieldError{Field: "code", Message: "Field required"})
	}
	if len(code) > maxCode {
		return errInvalidCode
	}
	return nil
}

// recoveryCodesAfter checks code, a current one-time password of u's TOTP
// factor f, and returns a fresh set of recovery codes of the user id with
// their hashes (confirming the factor, replacing the codes).
func (s *Service) recoveryCodesAfter(ctx context.Context, u permiso.User, f permiso.MFAFactor, code string, id uuid.UUID) (codes, hashes []string, err error) {
	if err := s.checkTOTP(ctx, u, f, code); err != nil {
		return nil, nil, err
	}
	return newRecoveryCodes(id)
}

// newRecoveryCodes returns a fresh set and its hashes.
func newRecoveryCodes(id uuid.UUID) (codes, hashes []string, err error) {
	codes, err = mfa.NewRecoveryCodes(mfa.RecoveryCodeCount)
	if err != nil {
		return nil, nil, err
	}
	hashes = make([]string, len(codes))
	for i, c := range codes {
		hashes[i] = mfa.HashRecoveryCode(id.String(), c)
	}
	return codes, hashes, nil
}

// mfaChanged audits the outcome of a change of the second factors of
// the user id and, when it succeeded, mails the user about it.
func (s *Service) mfaChanged(ctx context.Context, actor Actor, action string, id uuid.UUID, err error, details map[string]any, mail string) {
	s.audited(ctx, actor, action, userTarget(id), err, details)
	if err == nil {
		s.mfaMail(ctx, id, mail)
	}
}

// mfaMail tells the user about a change of their second factors, in the
// background (the change is made either way). It names no secret or code.
func (s *Service) mfaMail(ctx context.Context, id uuid.UUID, what string) {
	if s.deps.Mailer == nil {
		return
	}
	s.background(ctx, "mfa notice", func(ctx context.Context) error {
		u, err := s.getUser(ctx, id)
		if err != nil {
			return err
		}
		app := s.cfg.AppName
		if app == "" {
			app = "permiso"
		}
		return s.mail(ctx, u.Email, app+": sign-in security changed",
			what+".\n\nIf this was not you, contact your administrator at once.\n")
	})
}

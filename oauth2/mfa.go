package oauth2

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/mfa"
)

// Second factors at sign-in (docs/mfa.md).

// MFADeps are the parts the second step of a sign-in works with: the same
// store, secret box and used-once codes as enrollment (identity.MFADeps),
// so that a code accepted by one is refused by the other, on every
// instance sharing the OnceStore.
type MFADeps struct {
	// Store keeps factors and recovery codes; nil asks no second factor.
	Store permiso.MFAStore
	// Box opens factor secrets (MFA_ENCRYPTION_KEY); nil refuses codes
	// (EUNAVAILABLE).
	Box *mfa.Box
	// Once remembers the one-time passwords already accepted; nil refuses
	// codes (fail closed).
	Once permiso.OnceStore
	// Tokens keeps the mfa_tokens of pending second steps; nil leaves the
	// second step out (the mfa grant is then unsupported).
	Tokens permiso.MFATokenStore
}

// SecondFactorState is what sign-in must ask of a user: Required when the
// user holds a role of MFA_REQUIRED_ROLES, Enrolled when the user has a
// confirmed factor. A user with Enrolled is asked for a code; a user with
// Required but not Enrolled must enroll first.
type SecondFactorState struct {
	Required bool
	Enrolled bool
}

// SecondFactor returns the user's SecondFactorState. Roles are read from
// u as given: a role change takes effect at the next sign-in.
func (s *Service) SecondFactor(ctx context.Context, u permiso.User) (SecondFactorState, error) {
	st := SecondFactorState{Required: permiso.MFARequiredBy(u, s.cfg.MFARequiredRoles)}
	if s.deps.MFA.Store == nil {
		return st, nil
	}
	f, err := s.deps.MFA.Store.GetMFAFactor(ctx, u.ID, string(mfa.KindTOTP))
	switch {
	case err == nil:
		st.Enrolled = f.Confirmed()
	case !errors.Is(err, permiso.ErrNotFound):
		return SecondFactorState{}, err
	}
	return st, nil
}

// Audit actions of the second step of a sign-in (docs/mfa.md, "Sign-in").
// Their details never hold a code, a recovery code or an mfa_token.
const (
	// ActionMFARequired: a right password of a user who must give a
	// second factor; an mfa_token was issued (details: enroll).
	ActionMFARequired = "login.mfa_required"
	// ActionMFASuccess: a second factor was accepted by the mfa grant
	// (details: method "otp" or "recovery_code").
	ActionMFASuccess = "login.mfa_success"
	// ActionMFAFailure: the mfa grant refused a code or an mfa_token
	// (details: reason).
	ActionMFAFailure = "login.mfa_failure"
)

var (
	// errBadMFAToken is the one answer to an mfa_token that is unknown,
	// expired, used, bound to another client, or ended by a password
	// change, a revoke-all, a lockout or a removed factor.
	errBadMFAToken = ErrInvalidGrant.WithDescription("MFA token is invalid, expired or already used")
	// errBadMFACode answers a wrong, replayed or spent code: the token is
	// not spent, so the user may retry within the lockout's limits.
	errBadMFACode = ErrInvalidGrant.WithDescription("The code is invalid, expired or already used")
)

// dropMFATokens ends the user's pending second steps (a lockout). Best
// effort: a failure is logged (the lock itself still refuses every code
// until it ends).
func (s *Service) dropMFATokens(ctx context.Context, userID uuid.UUID) {
	if s.deps.MFA.Tokens == nil {
		return
	}
	if _, err := s.deps.MFA.Tokens.DeleteUserMFATokens(ctx, userID); err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "ending the mfa tokens of a locked user failed",
			slog.String("user_id", userID.String()), slog.String("error", err.Error()))
	}
}

// secondStep answers a right password of a user who must give a second
// factor: no token, no session, no LastLogin yet, but an mfa_token (256
// random bits, only its hash stored) bound to the user and the client,
// holding the scopes just decided, living permiso.MFATokenLifetime.
func (s *Service) secondStep(ctx context.Context, g *grant, meta RequestMeta) error {
	if s.deps.MFA.Tokens == nil {
		return ErrTemporarilyUnavailable.WithDescription("Multi-factor authentication is not configured on this server")
	}
	now := s.now()
	enroll := !g.secondFactor.Enrolled
	t := permiso.MFAToken{
		UserID: g.user.ID, Enroll: enroll, Scopes: g.grantedList,
		AuthTime: g.authTime, CreatedAt: now, ExpiresAt: now.Add(permiso.MFATokenLifetime),
	}
	if g.client != nil {
		t.ClientID = &g.client.ID
	}
	token := permiso.NewOpaqueToken()
	t.TokenHash = permiso.HashToken(token)
	if err := s.deps.MFA.Tokens.CreateMFAToken(ctx, t); err != nil {
		return err
	}
	details := map[string]any{"enroll": enroll}
	if g.client != nil {
		details["client_id"] = g.client.ClientID
	}
	s.auditUser(ctx, meta, *g.user, ActionMFARequired, "success", details)
	if enroll {
		return ErrMFAEnrollmentRequired.WithMFAToken(token)
	}
	return ErrMFARequired.WithMFAToken(token)
}

// mfaGrant is the second step of a password-grant sign-in (GrantMFA,
// docs/mfa.md): the mfa_token must be live, unused, the same client's
// (the password grant's client authentication rules apply unchanged), and
// its user active, with no password change or revoke-all since the
// password was checked, and a confirmed factor. The code is checked under
// the login lockout (a wrong one is a failed attempt and does not spend
// the token); then the token is spent with one conditional update (of
// concurrent exchanges exactly one wins) and the login is issued with amr
// ["pwd","otp"].
func (s *Service) mfaGrant(ctx context.Context, req TokenRequest, client *permiso.ServiceClient, meta RequestMeta) (*grant, error) {
	if s.deps.MFA.Tokens == nil || s.deps.MFA.Store == nil {
		return nil, ErrUnsupportedGrantType.WithDescription("Unsupported grant type")
	}
	now := s.now()
	hash := permiso.HashToken(req.MFAToken)
	t, up, err := s.liveMFAToken(ctx, hash, now)
	if err == nil && !sameClient(t, client) {
		err = errBadMFAToken
	}
	if err != nil {
		if errors.Is(err, errBadMFAToken) {
			s.auditMFAFailure(ctx, meta, client, up, "invalid_mfa_token")
		}
		return nil, err
	}
	u := *up
	f, err := s.deps.MFA.Store.GetMFAFactor(ctx, u.ID, string(mfa.KindTOTP))
	switch {
	case errors.Is(err, permiso.ErrNotFound) || err == nil && !f.Confirmed():
		// Removed or reset since, or not enrolled yet (an enrollment
		// token is exchanged after the enrollment).
		s.auditMFAFailure(ctx, meta, client, &u, "no_factor")
		return nil, errBadMFAToken
	case err != nil:
		return nil, err
	}
	method := "otp"
	if req.RecoveryCode != "" {
		method = "recovery_code"
	}
	ok, err := s.attemptUnderLockout(ctx, u, nil, s.factorCheck(ctx, u, f, req.OTP, req.RecoveryCode))
	if err != nil {
		return nil, err
	}
	if !ok {
		s.auditMFAFailure(ctx, meta, client, &u, "invalid_"+method)
		return nil, errBadMFACode
	}
	if err := s.deps.MFA.Tokens.UseMFAToken(ctx, hash, now); err != nil {
		if errors.Is(err, permiso.ErrConflict) || errors.Is(err, permiso.ErrNotFound) {
			s.auditMFAFailure(ctx, meta, client, &u, "mfa_token_spent")
			return nil, errBadMFAToken
		}
		return nil, err
	}
	if err := s.spendRecoveryCode(ctx, u, req.RecoveryCode); err != nil {
		if errors.Is(err, errBadMFACode) {
			s.auditMFAFailure(ctx, meta, client, &u, "recovery_code_spent")
		}
		return nil, err
	}
	s.auditUser(ctx, meta, u, ActionMFASuccess, "success", map[string]any{"method": method})
	available := validScopes(u.ScopeNames())
	if client != nil && len(client.ScopeNames()) > 0 {
		available = intersect(available, client.ScopeNames())
	}
	return &grant{kind: GrantMFA, user: &u, client: client, available: intersect(t.Scopes, available),
		authTime: now, amr: []string{AuthMethodPassword, AuthMethodOTP}}, nil
}

// sameClient reports whether client is the one the token was issued
// through (none for none), and has not revoked its tokens since.
func sameClient(t permiso.MFAToken, client *permiso.ServiceClient) bool {
	switch {
	case (t.ClientID == nil) != (client == nil):
		return false
	case client == nil:
		return true
	}
	return *t.ClientID == client.ID && !client.IssuedTokenDead(t.CreatedAt)
}

// liveMFAToken returns the unspent, unexpired token with this hash and
// its user, or errBadMFAToken (with the user when it is known, for the
// audit).
func (s *Service) liveMFAToken(ctx context.Context, hash string, now time.Time) (permiso.MFAToken, *permiso.User, error) {
	t, err := s.deps.MFA.Tokens.GetMFAToken(ctx, hash)
	switch {
	case errors.Is(err, permiso.ErrNotFound):
		return permiso.MFAToken{}, nil, errBadMFAToken
	case err != nil:
		return permiso.MFAToken{}, nil, err
	case t.UsedAt != nil || !now.Before(t.ExpiresAt):
		return permiso.MFAToken{}, nil, errBadMFAToken
	}
	u, err := s.deps.Users.GetUser(permiso.WithFreshRead(ctx), t.UserID)
	switch {
	case errors.Is(err, permiso.ErrNotFound):
		return permiso.MFAToken{}, nil, errBadMFAToken
	case err != nil:
		return permiso.MFAToken{}, nil, err
	case !u.IsActive || u.PasswordChangedAt.After(t.AuthTime) ||
		u.TokensRevokedBefore != nil && u.TokensRevokedBefore.After(t.AuthTime):
		// Disabled, or the password changed or every token was revoked
		// since the password was checked.
		return permiso.MFAToken{}, &u, errBadMFAToken
	}
	return t, &u, nil
}

// factorCheck returns the check of a presented code against the user's
// confirmed factor f, for the lockout to run: a TOTP code (RFC 6238) whose
// time step is claimed in the shared OnceStore (a code is accepted once,
// on any instance), or a recovery code that is unused. A recovery code is
// not spent by the check: the caller spends it with spendRecoveryCode
// once it has won its single-use step (the mfa_token, the pending
// sign-in), so that requests racing for one step do not burn the losers'
// codes. A store that cannot answer refuses the code (fail closed).
func (s *Service) factorCheck(ctx context.Context, u permiso.User, f permiso.MFAFactor, otp, recoveryCode string) func() (bool, error) {
	if recoveryCode != "" {
		return func() (bool, error) {
			h := mfa.HashRecoveryCode(u.ID.String(), recoveryCode)
			if h == "" {
				return false, nil
			}
			return s.deps.MFA.Store.RecoveryCodeUsable(ctx, u.ID, h)
		}
	}
	return func() (bool, error) {
		if s.deps.MFA.Box == nil || s.deps.MFA.Once == nil {
			return false, permiso.Errorf(permiso.EUNAVAILABLE, "Multi-factor authentication is not configured on this server")
		}
		ok, err := s.deps.MFA.Box.Verify(ctx, s.deps.MFA.Once, mfa.TOTP{}, u.ID.String(), mfa.Kind(f.Kind), f.Secret, otp, s.now())
		if errors.Is(err, mfa.ErrSealed) {
			return false, permiso.Wrap(permiso.EINTERNAL, "MFA secret unreadable", err)
		}
		return ok, err
	}
}

// spendRecoveryCode spends a recovery code that factorCheck found unused,
// after the caller won its single-use step: one conditional update, so of
// concurrent uses of one code by different steps one succeeds and the
// others are refused (errBadMFACode). No code (a TOTP sign-in) is nothing
// to spend.
func (s *Service) spendRecoveryCode(ctx context.Context, u permiso.User, recoveryCode string) error {
	if recoveryCode == "" {
		return nil
	}
	err := s.deps.MFA.Store.UseRecoveryCode(ctx, u.ID, mfa.HashRecoveryCode(u.ID.String(), recoveryCode), s.now())
	if errors.Is(err, permiso.ErrNotFound) {
		return errBadMFACode
	}
	return err
}

// auditMFAFailure records a refused mfa grant; u is nil when the token
// named no user.
func (s *Service) auditMFAFailure(ctx context.Context, meta RequestMeta, client *permiso.ServiceClient, u *permiso.User, reason string) {
	details := map[string]any{"reason": reason}
	if client != nil {
		details["client_id"] = client.ClientID
	}
	if u != nil {
		s.auditUser(ctx, meta, *u, ActionMFAFailure, "failure", details)
		return
	}
	s.audit(ctx, meta, permiso.AuditEvent{ActorType: "anonymous", Action: ActionMFAFailure, Result: "failure", Details: details})
}

// errBadEnrollmentBearer answers a bearer on an enrollment route that is
// neither an access token nor a live mfa_token of
// mfa_enrollment_required.
var errBadEnrollmentBearer = permiso.Errorf(permiso.EINVALIDTOKEN, "Invalid token")

// AuthenticateMFAEnrollment authenticates the mfa_token of an
// mfa_enrollment_required answer presented as a bearer token on one of
// the enrollment routes (GET /users/me/mfa, POST /users/me/mfa/totp, POST
// /users/me/mfa/totp/confirm; docs/mfa.md, "Enrollment at sign-in"): the
// token must be live (unspent, unexpired, its user active with no
// password change or revoke-all since) and issued for an enrollment. It
// is not spent: the mfa grant spends it. The principal is the user, with
// MFAEnrollment set and no claims (no scope, never an administrator). The
// request's limit checks are sent first, as Authenticate sends them.
func (s *Service) AuthenticateMFAEnrollment(ctx context.Context, bearer string, limits *permiso.Limits) (Principal, error) {
	if err := s.checkBatch(ctx, limits, nil); err != nil {
		return Principal{}, err
	}
	if s.deps.MFA.Tokens == nil || bearer == "" || len(bearer) > MaxTokenLength {
		return Principal{}, errBadEnrollmentBearer
	}
	t, u, err := s.liveMFAToken(ctx, permiso.HashToken(bearer), s.now())
	switch {
	case errors.Is(err, errBadMFAToken):
		return Principal{}, errBadEnrollmentBearer
	case err != nil:
		return Principal{}, err
	case !t.Enroll:
		return Principal{}, errBadEnrollmentBearer
	}
	return Principal{User: u, Token: bearer, MFAEnrollment: true}, nil
}

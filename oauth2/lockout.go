package oauth2

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/permiso/permiso"
)

// lockoutKey is the key a login attempt is counted under
// (docs/abuse-resistance.md: per normalized username, whether or not the
// user exists): the account's username when the login names an account
// (by username or by email, so the two share one count), else the
// normalized login as typed. The lockout adapters put it under their own
// key prefix.
func lockoutKey(login string, u permiso.User, found bool) string {
	if found {
		return permiso.NormalizeUsername(u.Username)
	}
	return permiso.NormalizeUsername(login)
}

// attempt is one login attempt under the lockout: its key and what Begin
// answered. The zero attempt (no lockout) makes every step a no-op.
type attempt struct {
	key string
	permiso.LockoutAttempt
}

// beginAttempt asks the lockout for a place before any password is
// checked (see verifyPassword). It refuses, without checking a password:
//   - a locked key with ErrAccountLocked and locked_until (423), audited
//     as a login.failure with reason account_locked;
//   - a key whose confirmed failures plus attempts in flight reached
//     MAX_LOGIN_ATTEMPTS with ErrTooManyAttempts (429, Retry-After),
//     audited as login.too_many_attempts: nothing was wrong, nothing is
//     locked, and nothing is counted.
//
// Lockout errors (Redis down) are returned as they are: the login fails
// closed with 503. An admitted attempt must end with failedAttempt,
// succeededAttempt or abandonedAttempt.
func (s *Service) beginAttempt(ctx context.Context, key, login string, u permiso.User, found bool, meta RequestMeta) (attempt, error) {
	if s.deps.Lockout == nil {
		return attempt{}, nil
	}
	a, err := s.deps.Lockout.Begin(ctx, key)
	if err != nil {
		return attempt{}, err
	}
	if a.Admitted() {
		return attempt{key: key, LockoutAttempt: a}, nil
	}
	target := login
	if found {
		target = u.ID.String()
	}
	st := a.State
	if st.Locked {
		s.audit(ctx, meta, permiso.AuditEvent{ActorType: "anonymous", Action: ActionLoginFailure, Result: "failure",
			TargetType: ptr("user"), TargetID: ptr(target),
			Details: map[string]any{"reason": "account_locked", "locked_until": st.LockedUntil.UTC().Format(time.RFC3339)}})
		return attempt{}, ErrAccountLocked.WithLockedUntil(st.LockedUntil)
	}
	s.audit(ctx, meta, permiso.AuditEvent{ActorType: "anonymous", Action: ActionLoginTooManyAttempts, Result: "failure",
		TargetType: ptr("user"), TargetID: ptr(target),
		Details: map[string]any{"failures": st.Failures, "in_flight": st.Pending}})
	return attempt{}, ErrTooManyAttempts
}

// failedAttempt ends an attempt whose password was wrong (or whose user
// does not exist): its place becomes a counted failure (Lockout.Fail).
// If that failure locked the key, the lock is recorded: a login.locked
// audit event (from which the lockout metric is derived), a warning in
// the log, and for an existing user the mirror in users.locked_until and
// failed_login_attempts (best effort, for the admin API; the shared
// counter is the authority). It returns the answer for the attempt:
// errBadCredentials, or the lockout's error when the failure could not
// be counted (fail closed: a guess that is not counted is not answered).
// The failure, the lock's mirror and the end of the mfa_tokens are
// written even when the request has ended meanwhile (compensating): a
// guess whose check completed is counted whether or not its client waited
// for the answer.
func (s *Service) failedAttempt(ctx context.Context, a attempt, login string, u permiso.User, found bool, meta RequestMeta) error {
	if s.deps.Lockout == nil {
		return errBadCredentials
	}
	cctx, cancel := compensating(ctx)
	defer cancel()
	st, err := s.deps.Lockout.Fail(cctx, a.key, a.ID)
	if err != nil {
		return err
	}
	if !st.JustLocked {
		return errBadCredentials
	}
	until := st.LockedUntil.UTC()
	e := permiso.AuditEvent{ActorType: "anonymous", Action: ActionLoginLocked, Result: "failure",
		TargetType: ptr("user"), TargetID: ptr(login),
		Details: map[string]any{"locked_until": until.Format(time.RFC3339), "failures": st.Failures}}
	if found {
		e.TargetID = ptr(u.ID.String())
		e.Details["username"] = u.Username
	}
	s.audit(ctx, meta, e)
	s.log.LogAttrs(ctx, slog.LevelWarn, "login locked after repeated failures",
		slog.String("request_id", meta.RequestID), slog.String("login", login),
		slog.Int("failures", st.Failures), slog.Time("locked_until", until))
	if !found {
		return errBadCredentials
	}
	if _, err := s.deps.Users.UpdateUser(cctx, u.ID, func(x *permiso.User) error {
		x.FailedLoginAttempts = st.Failures
		x.LockedUntil = &until
		return nil
	}); err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "recording the lock on the user failed",
			slog.String("user_id", u.ID.String()), slog.String("error", err.Error()))
	}
	// A lock ends the user's pending second steps: an mfa_token issued
	// before it does not work after it (docs/mfa.md, "Sign-in").
	s.dropMFATokens(cctx, u.ID)
	return errBadCredentials
}

// abandonedAttempt gives back the place of an attempt that was turned
// away before its password was checked (the hasher was saturated, the
// request ended: EUNAVAILABLE): being told to retry must not cost a user
// attempts on their own account (Lockout.Undo). It is compensating work:
// it runs to its end, within compensationTimeout, even when the client
// went away. Best effort: a failure (Redis down) is logged, and the place
// then expires by itself (permiso.LockoutAttemptTTL).
func (s *Service) abandonedAttempt(ctx context.Context, a attempt) {
	if s.deps.Lockout == nil {
		return
	}
	cctx, cancel := compensating(ctx)
	defer cancel()
	if err := s.deps.Lockout.Undo(cctx, a.key, a.ID); err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "giving back the place of an unchecked login attempt failed",
			slog.String("error", err.Error()))
	}
}

// succeededAttempt ends an attempt whose password was right: the count is
// reset (a successful login resets it, docs/abuse-resistance.md). A
// failure to reset fails the login closed: no token is issued, and the
// place expires by itself.
func (s *Service) succeededAttempt(ctx context.Context, a attempt) error {
	if s.deps.Lockout == nil {
		return nil
	}
	cctx, cancel := compensating(ctx)
	defer cancel()
	return s.deps.Lockout.Succeed(cctx, a.key, a.ID)
}

// Unlock lifts the lock and clears the failure count of a username (admin
// unlock and password reset, docs/api.md), and clears the users table's
// mirror of it when such a user exists. username may also be the user's
// email. It writes a login.unlock audit event with the metadata of ctx
// (permiso.ContextWithRequestMeta).
func (s *Service) Unlock(ctx context.Context, username string) error {
	u, err := s.deps.Users.GetUserByLogin(ctx, username)
	found := err == nil
	if err != nil && !errors.Is(err, permiso.ErrNotFound) {
		return err
	}
	key := lockoutKey(username, u, found)
	if s.deps.Lockout != nil {
		if err := s.deps.Lockout.Reset(ctx, key); err != nil {
			return err
		}
	}
	e := permiso.AuditEvent{ActorType: "system", Action: ActionLoginUnlock, Result: "success",
		TargetType: ptr("user"), TargetID: ptr(key)}
	if found {
		e.TargetID = ptr(u.ID.String())
		if u.LockedUntil != nil || u.FailedLoginAttempts != 0 {
			if _, err := s.deps.Users.UpdateUser(ctx, u.ID, func(x *permiso.User) error {
				x.FailedLoginAttempts, x.LockedUntil = 0, nil
				return nil
			}); err != nil {
				return err
			}
		}
	}
	s.audit(ctx, RequestMeta{}, e)
	return nil
}

// CheckCurrentPassword verifies the current password a signed-in user
// gives to change it (PUT /users/{id}/password), under the login lockout
// exactly like a login (docs/abuse-resistance.md): a stolen access token
// must not become an unlimited password oracle. While the account is
// locked no password is checked and the answer is an ELOCKED error naming
// locked_until; while as many checks for it are in flight as the lockout
// admits, the answer is ETOOMANYATTEMPTS (retry in a moment; nothing is
// counted); a wrong password is a failed attempt (and may lock the
// account, with the same audit event and metric as a login); a right one
// resets the count, except for a user with a second factor (enrolled or
// required), whose count a right password leaves as it is, as at login
// (docs/mfa.md): else whoever holds the password could guess codes
// without end, a right password between wrong codes. Lockout failures
// (Redis down) are returned: the change fails closed. Metadata for audit
// events comes from ctx (permiso.ContextWithRequestMeta).
func (s *Service) CheckCurrentPassword(ctx context.Context, u permiso.User, password string) (bool, error) {
	keep := func() (bool, error) {
		sf, err := s.SecondFactor(ctx, u)
		return sf.Enrolled || sf.Required, err
	}
	return s.checkUnderLockout(ctx, u, "password checks", keep, func() (bool, error) {
		ok, _, err := s.deps.Hasher.Verify(ctx, password, u.PasswordHash)
		return ok, err
	})
}

// CheckSecondFactor runs check, a verification of a second factor
// (docs/mfa.md), under the login lockout exactly as CheckCurrentPassword
// runs a password check: refused while the account is locked (ELOCKED) or
// while as many checks are in flight as it admits (ETOOMANYATTEMPTS); a
// false answer is a failed attempt that may lock the account, a true one
// resets the count.
func (s *Service) CheckSecondFactor(ctx context.Context, u permiso.User, check func() (bool, error)) (bool, error) {
	return s.checkUnderLockout(ctx, u, "sign-in checks", nil, check)
}

// checkUnderLockout is the lockout's attempt around one check of a
// credential of u; what names the checks in the locked message. A
// refusal of the lockout is a permiso ELOCKED or ETOOMANYATTEMPTS error.
// keep, when not nil, is asked after a right answer whether the count
// stays as it is (the attempt's place is given back) instead of being
// reset.
func (s *Service) checkUnderLockout(ctx context.Context, u permiso.User, what string, keep, check func() (bool, error)) (bool, error) {
	ok, err := s.attemptUnderLockout(ctx, u, keep, check)
	if e, isOAuth := errors.AsType[*Error](err); isOAuth {
		switch {
		case e.LockedUntil != nil:
			return false, permiso.Errorf(permiso.ELOCKED, "Account is locked until %s after repeated failed %s",
				e.LockedUntil.UTC().Format(time.RFC3339), what)
		case e.Code == ErrTooManyAttempts.Code:
			return false, permiso.Errorf(permiso.ETOOMANYATTEMPTS, "%s", ErrTooManyAttempts.Description)
		}
	}
	return ok, err
}

// attemptUnderLockout is checkUnderLockout answering the lockout's
// refusals as the token endpoint does: account_locked (423, with
// locked_until) or too_many_attempts (429).
func (s *Service) attemptUnderLockout(ctx context.Context, u permiso.User, keep, check func() (bool, error)) (bool, error) {
	meta := metaFrom(ctx)
	key := lockoutKey(u.Username, u, true)
	a, err := s.beginAttempt(ctx, key, u.Username, u, true, meta)
	if err != nil {
		return false, err
	}
	ok, err := check()
	if err != nil {
		if permiso.ErrorCode(err) == permiso.EUNAVAILABLE {
			s.abandonedAttempt(ctx, a)
			return false, err
		}
		// An unreadable stored hash: the check was spent and counts.
		if ferr := s.failedAttempt(ctx, a, u.Username, u, true, meta); !errors.Is(ferr, errBadCredentials) {
			return false, ferr
		}
		return false, err
	}
	if !ok {
		if err := s.failedAttempt(ctx, a, u.Username, u, true, meta); !errors.Is(err, errBadCredentials) {
			return false, err
		}
		return false, nil
	}
	if keep != nil {
		kept, err := keep()
		if err != nil || kept {
			s.abandonedAttempt(ctx, a)
			return err == nil, err
		}
	}
	return true, s.succeededAttempt(ctx, a)
}

// LockoutStatus reports the shared lockout state of a username (or of the
// user an email belongs to), for the admin API. Without a lockout it is
// the zero state.
func (s *Service) LockoutStatus(ctx context.Context, username string) (permiso.LockoutState, error) {
	if s.deps.Lockout == nil {
		return permiso.LockoutState{}, nil
	}
	u, err := s.deps.Users.GetUserByLogin(ctx, username)
	found := err == nil
	if err != nil && !errors.Is(err, permiso.ErrNotFound) {
		return permiso.LockoutState{}, err
	}
	return s.deps.Lockout.Check(ctx, lockoutKey(username, u, found))
}

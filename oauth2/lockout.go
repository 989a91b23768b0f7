package oauth2

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/permiso/permiso"
)

// lockoutKey is the key a login attempt is counted under (SPEC §6: per
// normalized username, whether or not the user exists): the account's
// username when the login names an account (by username or by email, so
// the two share one count), else the normalized login as typed. The
// lockout adapters put it under their own key prefix.
func lockoutKey(login string, u permiso.User, found bool) string {
	if found {
		return permiso.NormalizeUsername(u.Username)
	}
	return permiso.NormalizeUsername(login)
}

// beginAttempt counts a login attempt as a failure before the password is
// checked (see verifyPassword). It returns ErrAccountLocked, with
// locked_until, when the key is already locked: that attempt was not
// counted, and no password may be checked. Lockout errors (Redis down)
// are returned as they are: the login fails closed with 503.
func (s *Service) beginAttempt(ctx context.Context, key, login string, u permiso.User, found bool, meta RequestMeta) (permiso.LockoutState, error) {
	if s.deps.Lockout == nil {
		return permiso.LockoutState{}, nil
	}
	st, err := s.deps.Lockout.Fail(ctx, key)
	if err != nil {
		return permiso.LockoutState{}, err
	}
	if st.Locked && !st.JustLocked {
		e := permiso.AuditEvent{ActorType: "anonymous", Action: ActionLoginFailure, Result: "failure",
			TargetType: ptr("user"), TargetID: ptr(login),
			Details: map[string]any{"reason": "account_locked", "locked_until": st.LockedUntil.UTC().Format(time.RFC3339)}}
		if found {
			e.TargetID = ptr(u.ID.String())
		}
		s.audit(ctx, meta, e)
		return st, ErrAccountLocked.WithLockedUntil(st.LockedUntil)
	}
	return st, nil
}

// failedAttempt completes an attempt whose password was wrong (or whose
// user does not exist). The failure was counted by beginAttempt; if that
// count locked the key, the lock is recorded: a login.locked audit event
// (from which the lockout metric is derived), a warning in the log, and
// for an existing user the mirror in users.locked_until and
// failed_login_attempts (best effort, for the admin API; the shared
// counter is the authority).
func (s *Service) failedAttempt(ctx context.Context, st permiso.LockoutState, login string, u permiso.User, found bool, meta RequestMeta) {
	if !st.JustLocked {
		return
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
		return
	}
	if _, err := s.deps.Users.UpdateUser(ctx, u.ID, func(x *permiso.User) error {
		x.FailedLoginAttempts = st.Failures
		x.LockedUntil = &until
		return nil
	}); err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "recording the lock on the user failed",
			slog.String("user_id", u.ID.String()), slog.String("error", err.Error()))
	}
}

// abandonedAttempt takes back the count of an attempt that was turned
// away before its password was checked (the hasher was saturated, the
// request ended: EUNAVAILABLE): being told to retry must not lock a user
// out of their own account (Lockout.Undo). Best effort: a failure is
// logged, and the attempt then stays counted.
func (s *Service) abandonedAttempt(ctx context.Context, key string, st permiso.LockoutState) {
	if s.deps.Lockout == nil {
		return
	}
	if err := s.deps.Lockout.Undo(context.WithoutCancel(ctx), key, st); err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "taking back an unchecked login attempt failed",
			slog.String("error", err.Error()))
	}
}

// succeededAttempt resets the count after a correct password (SPEC §6: "a
// successful login resets the count"). A failure to reset fails the login
// closed: the attempt stays counted, and no token is issued.
func (s *Service) succeededAttempt(ctx context.Context, key string) error {
	if s.deps.Lockout == nil {
		return nil
	}
	return s.deps.Lockout.Reset(ctx, key)
}

// Unlock lifts the lock and clears the failure count of a username (admin
// unlock and password reset, SPEC §5.2), and clears the users table's
// mirror of it when such a user exists. username may also be the user's
// email. It writes a login.unlock audit event with the metadata of ctx
// (ContextWithMeta).
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
// gives to change it (PUT /users/{id}/password), counted by the login
// lockout exactly like a login (SPEC §6): a stolen access token must not
// become an unlimited password oracle. While the account is locked no
// password is checked and the answer is an ELOCKED error naming
// locked_until; a wrong password is a failed attempt (and may lock the
// account, with the same audit event and metric as a login); a right one
// resets the count. Lockout failures (Redis down) are returned: the
// change fails closed. Metadata for audit events comes from ctx
// (ContextWithMeta).
func (s *Service) CheckCurrentPassword(ctx context.Context, u permiso.User, password string) (bool, error) {
	meta := metaFrom(ctx)
	key := lockoutKey(u.Username, u, true)
	st, err := s.beginAttempt(ctx, key, u.Username, u, true, meta)
	if err != nil {
		if e, ok := errors.AsType[*Error](err); ok && e.LockedUntil != nil {
			return false, permiso.Errorf(permiso.ELOCKED, "Account is locked until %s after repeated failed password checks",
				e.LockedUntil.UTC().Format(time.RFC3339))
		}
		return false, err
	}
	ok, _, err := s.deps.Hasher.Verify(ctx, password, u.PasswordHash)
	if err != nil {
		if permiso.ErrorCode(err) == permiso.EUNAVAILABLE {
			s.abandonedAttempt(ctx, key, st)
		}
		return false, err
	}
	if !ok {
		s.failedAttempt(ctx, st, u.Username, u, true, meta)
		return false, nil
	}
	return true, s.succeededAttempt(ctx, key)
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

package oauth2

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/permiso/permiso"
)

// ChangeExpiredPassword lets a user whose password expired (the password
// grant answers password_expired) set a new one with the current one
// (POST /auth/change-password). It works the same for a password that has
// not expired: knowing it gives the same power through a login.
//
// The credentials are checked exactly like the password grant's: an
// unknown user costs a dummy verification and gets the same invalid_grant
// "Invalid username or password" as a wrong password; a disabled account is
// account_disabled, and only after a correct password. Then:
//   - the new password must satisfy Config.PasswordPolicy: otherwise a
//     permiso EINVALID error (422) with one detail per broken rule, on the
//     field "new_password";
//   - it must not match the current password nor the last
//     Config.PreventReuseCount entries of the password history (EINVALID);
//   - it is hashed and stored (the old hash goes into the history, which
//     keeps PreventReuseCount entries), and every session and token of the
//     user is revoked (RevokeAllForUser).
//
// Errors are *Error (invalid_request, invalid_grant, account_disabled),
// *permiso.Error (EINVALID, EUNAVAILABLE) or internal errors; AsError maps
// any of them to an OAuth error.
func (s *Service) ChangeExpiredPassword(ctx context.Context, username, current, newPassword string, meta RequestMeta) error {
	return s.changePassword(ctx, username, current, newPassword, meta, false)
}

// ErrPasswordNotExpired answers the hosted password page
// (ChangePasswordIfExpired) for a password that has not expired; it is
// said only after a correct password.
var ErrPasswordNotExpired = &Error{Code: "invalid_request", Status: http.StatusBadRequest,
	Description: "The password has not expired"}

// ChangePasswordIfExpired is ChangeExpiredPassword for the hosted password
// page of the browser flow (docs/oidc.md), which is for expired passwords
// only: after a correct current password that has not expired
// (Config.PasswordMaxAge), it answers ErrPasswordNotExpired and changes
// nothing. A user changes a password that has not expired through the
// account API.
func (s *Service) ChangePasswordIfExpired(ctx context.Context, username, current, newPassword string, meta RequestMeta) error {
	return s.changePassword(ctx, username, current, newPassword, meta, true)
}

func (s *Service) changePassword(ctx context.Context, username, current, newPassword string, meta RequestMeta, onlyExpired bool) error {
	switch {
	case username == "":
		return missing("username")
	case current == "":
		return missing("current_password")
	case newPassword == "":
		return missing("new_password")
	case len(username) > MaxUsernameLength:
		return tooLong("username")
	case len(current) > MaxPasswordLength:
		return tooLong("current_password")
	case len(newPassword) > MaxPasswordLength:
		return tooLong("new_password")
	}
	u, _, _, err := s.verifyPassword(ctx, username, current, meta)
	if err != nil {
		return err
	}
	if onlyExpired && !(s.cfg.PasswordMaxAge > 0 && u.PasswordChangedAt.Add(s.cfg.PasswordMaxAge).Before(s.now())) {
		return ErrPasswordNotExpired
	}
	if errs := s.cfg.PasswordPolicy.Check(newPassword, u.Username); len(errs) > 0 {
		for i := range errs {
			errs[i].Field = "new_password"
		}
		return permiso.Invalid("The new password does not meet the password policy", errs...)
	}
	reused, err := s.reusesPassword(ctx, u, newPassword)
	if err != nil {
		return err
	}
	if reused {
		msg := "Password must differ from the current password"
		if n := s.cfg.PreventReuseCount; n > 0 {
			msg = fmt.Sprintf("Password must differ from the current password and the last %d passwords", n)
		}
		return permiso.Invalid("The new password was used before", permiso.FieldError{Field: "new_password", Message: msg})
	}
	hash, err := s.deps.Hasher.Hash(ctx, newPassword)
	if err != nil {
		return err
	}
	// Compare-and-swap on the hash just verified: a concurrent change wins,
	// and this request, whose old password is no longer current, gets the
	// same invalid_grant as a wrong password.
	if err := s.deps.Users.ChangePasswordIfCurrent(ctx, u.ID, u.PasswordHash, hash, s.now(), s.cfg.PreventReuseCount); err != nil {
		if errors.Is(err, permiso.ErrConflict) {
			s.auditUser(ctx, meta, u, ActionPasswordChange, "failure", map[string]any{"reason": "concurrent_change"})
			return errBadCredentials
		}
		return err
	}
	if metaFrom(ctx) == (RequestMeta{}) {
		ctx = permiso.ContextWithRequestMeta(ctx, meta)
	}
	n, err := s.RevokeAllForUser(ctx, u.ID, "password_change")
	if err != nil {
		return err
	}
	s.auditUser(ctx, meta, u, ActionPasswordChange, "success", map[string]any{"reason": "expired_password", "sessions_terminated": n})
	return nil
}

// reusesPassword reports whether password matches the user's current hash
// or one of the last PreventReuseCount history entries.
func (s *Service) reusesPassword(ctx context.Context, u permiso.User, password string) (bool, error) {
	hashes := []string{u.PasswordHash}
	if n := s.cfg.PreventReuseCount; n > 0 {
		hist, err := s.deps.Users.PasswordHistory(ctx, u.ID, n)
		if err != nil {
			return false, err
		}
		for _, h := range hist {
			hashes = append(hashes, h.PasswordHash)
		}
	}
	for _, h := range hashes {
		ok, _, err := s.deps.Hasher.Verify(ctx, password, h)
		if err != nil {
			if permiso.ErrorCode(err) == permiso.EUNAVAILABLE {
				return false, err
			}
			// A malformed old hash cannot match anything.
			s.log.LogAttrs(ctx, slog.LevelWarn, "unreadable password history entry", slog.String("user_id", u.ID.String()), slog.String("error", err.Error()))
			continue
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

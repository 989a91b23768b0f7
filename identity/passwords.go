package identity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// Audit-worthy reasons passed to Sessions.
const (
	reasonPasswordChange = "password_change"
	reasonPasswordReset  = "password_reset"
)

var (
	errWrongCurrent     = permiso.Errorf(permiso.EBADREQUEST, "Current password is incorrect")
	errBadResetToken    = permiso.Errorf(permiso.EBADACTIONTOKEN, "Invalid or expired reset token")
	errBadVerifyToken   = permiso.Errorf(permiso.EBADACTIONTOKEN, "Invalid or expired verification token")
	msgPasswordReused   = "Password was used recently; choose one that is not among the last %d"
	msgPasswordSameAsIs = "New password must differ from the current password"
)

// ChangePassword sets a user's password (PUT /users/me/password,
// PUT /users/{id}/password).
//
//   - The user themselves must give the current password (400 when wrong);
//     their other sessions end, the session keepSession (the one the
//     request came from) stays. With keepSession uuid.Nil every session
//     ends.
//   - An administrator setting another user's password gives none; every
//     session of that user ends and their lockout is cleared. The
//     delegation rule must let the administrator act on the user
//     (Delegation.MayManageUser): otherwise a holder of admin:users could
//     take over a superuser's account.
//
// The new password must satisfy the policy (with the username) and differ
// from the current one and the last PreventReuseCount ones; every broken
// rule is reported (422, field new_password). The outcome is audited
// (password.change, by_admin when the actor is not the user).
func (s *Service) ChangePassword(ctx context.Context, actor Actor, id uuid.UUID, current, newPassword string, keepSession uuid.UUID) error {
	err := s.changePassword(withRequest(ctx, actor), actor, id, current, newPassword, keepSession)
	s.audited(ctx, actor, ActionPasswordChange, userTarget(id), err, map[string]any{"by_admin": !actor.Is(id)})
	return err
}

func (s *Service) changePassword(ctx context.Context, actor Actor, id uuid.UUID, current, newPassword string, keepSession uuid.UUID) error {
	self := actor.Is(id)
	if !self && !actor.Admin {
		return errForbidden
	}
	var p problems
	if self && current == "" {
		p.add("current_password", "Field required")
	}
	if newPassword == "" {
		p.add("new_password", "Field required")
	}
	if err := p.err(); err != nil {
		return err
	}
	u, err := s.getUser(ctx, id)
	if err != nil {
		return err
	}
	if !self {
		if _, err := s.delegation(ctx, actor, u); err != nil {
			return err
		}
	}
	if err := s.checkNewPassword(u, newPassword); err != nil {
		return err
	}
	if self {
		if err := s.checkCurrent(ctx, u, current); err != nil {
			return err
		}
	}
	if err := s.setPassword(ctx, u, newPassword); err != nil {
		return err
	}
	if self && keepSession != uuid.Nil {
		_, err = s.deps.Sessions.RevokeOtherSessions(ctx, id, keepSession, reasonPasswordChange)
		return err
	}
	if _, err := s.deps.Sessions.RevokeAllForUser(ctx, id, reasonPasswordChange); err != nil {
		return err
	}
	if !self {
		return s.clearLockout(ctx, u)
	}
	return nil
}

// checkCurrent verifies u's current password: through the login lockout
// when there is one (a wrong current password is a failed login attempt),
// else directly. A password longer than maxCurrentPassword, or a wrong
// one, is errWrongCurrent.
func (s *Service) checkCurrent(ctx context.Context, u permiso.User, password string) error {
	if len(password) > maxCurrentPassword {
		return errWrongCurrent
	}
	var ok bool
	var err error
	if s.deps.Lockout != nil {
		ok, err = s.deps.Lockout.CheckCurrentPassword(ctx, u, password)
	} else {
		ok, _, err = s.deps.Hasher.Verify(ctx, password, u.PasswordHash)
	}
	if err != nil {
		return err
	}
	if !ok {
		return errWrongCurrent
	}
	return nil
}

// checkNewPassword applies the policy to a new password of u.
func (s *Service) checkNewPassword(u permiso.User, password string) error {
	errs := s.cfg.Policy.Check(password, u.Username)
	for i := range errs {
		errs[i].Field = "new_password"
	}
	return problems(errs).err()
}

// setPassword refuses a reuse of the current or a recent password, then
// stores the new hash (the old one goes into the history, which keeps
// PreventReuseCount entries) with PasswordChangedAt = now.
func (s *Service) setPassword(ctx context.Context, u permiso.User, password string) error {
	if err := s.checkReuse(ctx, u, password); err != nil {
		return err
	}
	hash, err := s.deps.Hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	err = s.deps.Store.ChangePassword(ctx, u.ID, hash, s.now().UTC(), s.cfg.PreventReuseCount)
	return notFound(err, errUserNotFound)
}

func (s *Service) checkReuse(ctx context.Context, u permiso.User, password string) error {
	same, err := s.matches(ctx, u, password, u.PasswordHash)
	if err != nil {
		return err
	}
	if same {
		return permiso.Invalid("Request validation failed", permiso.FieldError{Field: "new_password", Message: msgPasswordSameAsIs})
	}
	if s.cfg.PreventReuseCount == 0 {
		return nil
	}
	hist, err := s.deps.Store.PasswordHistory(ctx, u.ID, s.cfg.PreventReuseCount)
	if err != nil {
		return err
	}
	for _, h := range hist {
		used, err := s.matches(ctx, u, password, h.PasswordHash)
		if err != nil {
			return err
		}
		if used {
			return permiso.Invalid("Request validation failed",
				permiso.FieldError{Field: "new_password", Message: fmt.Sprintf(msgPasswordReused, s.cfg.PreventReuseCount)})
		}
	}
	return nil
}

func (s *Service) matches(ctx context.Context, u permiso.User, password, hash string) (bool, error) {
	ok, _, err := s.deps.Hasher.Verify(ctx, password, hash)
	if err != nil {
		if permiso.ErrorCode(err) == permiso.EUNAVAILABLE {
			return false, err
		}
		// A malformed old hash matches nothing.
		s.log.LogAttrs(ctx, slog.LevelWarn, "unreadable password hash", slog.String("user_id", u.ID.String()), slog.String("error", err.Error()))
		return false, nil
	}
	return ok, nil
}

// ---------------------------------------------------------------------------
// Mailed single-use tokens.
//
// A token is "<secret>.<binding>": secret is 256 random bits (43
// characters of base64url), binding a short digest of the account state
// the token is about (the password-change time for a reset, the email for
// a verification). Only SHA-256 of the whole token is stored. A token
// whose binding no longer matches the account (the password was changed
// since, or the email) is refused, so a change makes every earlier mail
// worthless.

func binding(purpose, state string) string {
	sum := sha256.Sum256([]byte(purpose + "\x00" + state))
	return hex.EncodeToString(sum[:8])
}

func resetState(u permiso.User) string {
	return u.ID.String() + "\x00" + strconv.FormatInt(u.PasswordChangedAt.UnixMicro(), 10)
}

func verifyState(u permiso.User) string { return u.ID.String() + "\x00" + u.Email }

// splitToken returns the binding part of a well-formed token.
func splitToken(token string) (bind string, ok bool) {
	secret, bind, found := strings.Cut(token, ".")
	if !found || len(secret) != 43 || len(bind) != 16 {
		return "", false
	}
	return bind, true
}

// errMailLimit: the account had its share of mails of this kind.
var errMailLimit = errors.New("mail limit reached for this account; nothing sent")

// issue creates and stores a token for u, within the mail limit.
func (s *Service) issue(ctx context.Context, u permiso.User, purpose, state string) (string, error) {
	if s.deps.Limiter != nil {
		res, err := s.deps.Limiter.Allow(ctx, "mail:"+purpose+":"+u.ID.String(), s.cfg.MailLimit)
		if err != nil {
			return "", err
		}
		if !res.Allowed {
			return "", errMailLimit
		}
	}
	token := permiso.NewOpaqueToken() + "." + binding(purpose, state)
	lifetime := s.cfg.ResetTokenLifetime
	if purpose == permiso.PurposeEmailVerification {
		lifetime = s.cfg.VerificationTokenLifetime
	}
	now := s.now().UTC()
	_, err := s.deps.Store.CreateActionToken(ctx, permiso.ActionToken{
		UserID: u.ID, Purpose: purpose, TokenHash: permiso.HashToken(token),
		CreatedAt: now, ExpiresAt: now.Add(lifetime),
	})
	return token, err
}

// RequestPasswordReset starts a reset for the account with this email
// (POST /users/password-reset/request). Only the email's syntax is checked
// here (422); finding the account, creating the token and mailing it run
// in the background, so the answer and its timing are the same whether or
// not the address belongs to an active account. An accepted request is
// audited (password.reset_request, naming nobody).
func (s *Service) RequestPasswordReset(ctx context.Context, req permiso.RequestMeta, email string) error {
	return s.mailRequest(ctx, req, email, ActionPasswordResetRequest, "password_reset_mail",
		func(u permiso.User) bool { return u.IsActive }, s.resetMail)
}

func (s *Service) resetMail(ctx context.Context, u permiso.User) error {
	return s.tokenMail(ctx, u, permiso.PurposePasswordReset, resetState(u), "reset your password", func(token string) string {
		return fmt.Sprintf(
			"Hello %s,\n\nsomeone (hopefully you) asked to reset the password of your %s account.\n"+
				"To choose a new password, open this link within %s:\n\n%s/reset-password?token=%s\n\n"+
				"or send this token to the password reset confirmation endpoint:\n\n%s\n\n"+
				"If you did not ask for this, ignore this mail: your password stays as it is.\n",
			u.Username, s.cfg.AppName, duration(s.cfg.ResetTokenLifetime), s.cfg.LinkBaseURL, token, token)
	})
}

// tokenMail issues a token of purpose bound to state and mails it to u,
// the subject after the application's name and the text written around
// the token.
func (s *Service) tokenMail(ctx context.Context, u permiso.User, purpose, state, subject string, text func(token string) string) error {
	token, err := s.issue(ctx, u, purpose, state)
	if err != nil {
		return err
	}
	return s.mail(ctx, u.Email, s.cfg.AppName+": "+subject, text(token))
}

// mailRequest is a public request for a mail about the account with this
// email: only the email's syntax is checked (422) and the accepted
// request audited (action, naming nobody); finding the account and, when
// wanted says so, send run in the background (job), so the answer and its
// timing are the same whatever the address.
func (s *Service) mailRequest(ctx context.Context, req permiso.RequestMeta, email, action, job string, wanted func(permiso.User) bool, send func(context.Context, permiso.User) error) error {
	var p problems
	email = p.email("email", email)
	if err := p.err(); err != nil {
		return err
	}
	s.record(ctx, anonymous(req), action, "success", target{}, nil)
	s.background(ctx, job, func(ctx context.Context) error {
		u, err := s.deps.Store.GetUserByEmail(ctx, email)
		if errors.Is(err, permiso.ErrNotFound) || err == nil && !wanted(u) {
			return nil
		}
		if err != nil {
			return err
		}
		return send(ctx, u)
	})
	return nil
}

// ConfirmPasswordReset sets a new password with a mailed reset token
// (POST /users/password-reset/confirm). A bad, used, expired or outdated
// token is 400 invalid_token; a new password that breaks the policy or was
// used recently is 422, and the token stays usable. On success the token
// is spent, every session of the user ends, and the lockout is cleared.
// The outcome is audited (password.reset, about the account when the
// token named one).
func (s *Service) ConfirmPasswordReset(ctx context.Context, req permiso.RequestMeta, token, newPassword string) (permiso.User, error) {
	u, err := s.confirmPasswordReset(permiso.ContextWithRequestMeta(ctx, req), token, newPassword)
	s.auditConfirm(ctx, req, ActionPasswordReset, u, err)
	return u, err
}

// auditConfirm records the confirmation of a mailed token: about the
// account on success, about no account in particular otherwise.
func (s *Service) auditConfirm(ctx context.Context, req permiso.RequestMeta, action string, u permiso.User, err error) {
	s.audited(ctx, anonymous(req), action, createdTarget("user", u.ID, err), err, nil)
}

func (s *Service) confirmPasswordReset(ctx context.Context, token, newPassword string) (permiso.User, error) {
	var p problems
	if token == "" {
		p.add("token", "Field required")
	}
	if newPassword == "" {
		p.add("new_password", "Field required")
	}
	if err := p.err(); err != nil {
		return permiso.User{}, err
	}
	u, err := s.tokenUser(ctx, token, permiso.PurposePasswordReset, s.deps.Store.GetActionToken, resetState, errBadResetToken)
	if err != nil {
		return permiso.User{}, err
	}
	if err := s.checkNewPassword(u, newPassword); err != nil {
		return permiso.User{}, err
	}
	if err := s.checkReuse(ctx, u, newPassword); err != nil {
		return permiso.User{}, err
	}
	// Spend the token; of concurrent confirmations only one gets here.
	if _, err := s.deps.Store.ConsumeActionToken(ctx, permiso.PurposePasswordReset, permiso.HashToken(token), s.now()); err != nil {
		return permiso.User{}, notFound(err, errBadResetToken)
	}
	newHash, err := s.deps.Hasher.Hash(ctx, newPassword)
	if err != nil {
		return permiso.User{}, err
	}
	if err := s.deps.Store.ChangePassword(ctx, u.ID, newHash, s.now().UTC(), s.cfg.PreventReuseCount); err != nil {
		return permiso.User{}, notFound(err, errBadResetToken)
	}
	if _, err := s.deps.Sessions.RevokeAllForUser(ctx, u.ID, reasonPasswordReset); err != nil {
		return permiso.User{}, err
	}
	if err := s.clearLockout(ctx, u); err != nil {
		return permiso.User{}, err
	}
	return u, nil
}

// RequestEmailVerification mails a new verification link to the account
// with this email, if it is active and not yet verified
// (POST /users/email-verification/request). As with a reset request, only
// the syntax is checked in the request, the rest runs in the background.
// An accepted request is audited (email.verify_request, naming nobody).
func (s *Service) RequestEmailVerification(ctx context.Context, req permiso.RequestMeta, email string) error {
	return s.mailRequest(ctx, req, email, ActionEmailVerifyRequest, "email_verification_mail",
		func(u permiso.User) bool { return u.IsActive && !u.IsVerified }, s.verificationMail)
}

// sendVerification mails a verification link to u in the background.
func (s *Service) sendVerification(ctx context.Context, u permiso.User) {
	s.background(ctx, "email_verification_mail", func(ctx context.Context) error {
		return s.verificationMail(ctx, u)
	})
}

func (s *Service) verificationMail(ctx context.Context, u permiso.User) error {
	return s.tokenMail(ctx, u, permiso.PurposeEmailVerification, verifyState(u), "verify your email address", func(token string) string {
		return fmt.Sprintf(
			"Hello %s,\n\nplease confirm that %s is your email address by opening this link within %s:\n\n"+
				"%s/verify-email?token=%s\n\nor by sending this token to the email verification confirmation endpoint:\n\n%s\n\n"+
				"If you did not create a %s account, ignore this mail.\n",
			u.Username, u.Email, duration(s.cfg.VerificationTokenLifetime), s.cfg.LinkBaseURL, token, token, s.cfg.AppName)
	})
}

// ConfirmEmailVerification marks the account verified with a mailed token
// (POST /users/email-verification/confirm). The token is spent; one that
// is bad, used, expired, or was sent to an address the account no longer
// has, is 400 invalid_token. The outcome is audited (email.verify).
func (s *Service) ConfirmEmailVerification(ctx context.Context, req permiso.RequestMeta, token string) (permiso.User, error) {
	u, err := s.confirmEmailVerification(ctx, token)
	s.auditConfirm(ctx, req, ActionEmailVerify, u, err)
	return u, err
}

func (s *Service) confirmEmailVerification(ctx context.Context, token string) (permiso.User, error) {
	if token == "" {
		return permiso.User{}, permiso.Invalid("Request validation failed", permiso.FieldError{Field: "token", Message: "Field required"})
	}
	u, err := s.tokenUser(ctx, token, permiso.PurposeEmailVerification, s.deps.Store.ConsumeActionToken, verifyState, errBadVerifyToken)
	if err != nil {
		return permiso.User{}, err
	}
	now := s.now().UTC()
	u, err = s.deps.Store.UpdateUser(ctx, u.ID, func(x *permiso.User) error {
		if x.Email != u.Email {
			return errBadVerifyToken
		}
		x.IsVerified = true
		x.UpdatedAt = now
		return nil
	})
	return u, notFound(err, errBadVerifyToken)
}

// tokenUser returns the active user that the mailed token of purpose
// names: find looks the token up (or spends it), and the token's binding
// must still match state of the user. Anything else (a malformed,
// unknown, spent or expired token, a vanished or disabled user, a changed
// state) is bad.
func (s *Service) tokenUser(ctx context.Context, token, purpose string,
	find func(ctx context.Context, purpose, hash string, now time.Time) (permiso.ActionToken, error),
	state func(permiso.User) string, bad error) (permiso.User, error) {
	bind, ok := splitToken(token)
	if !ok {
		return permiso.User{}, bad
	}
	t, err := find(ctx, purpose, permiso.HashToken(token), s.now())
	if err != nil {
		return permiso.User{}, notFound(err, bad)
	}
	u, err := s.deps.Store.GetUser(ctx, t.UserID)
	if err != nil {
		return permiso.User{}, notFound(err, bad)
	}
	if !u.IsActive || !permiso.EqualHash(bind, binding(purpose, state(u))) {
		return permiso.User{}, bad
	}
	return u, nil
}

func (s *Service) mail(ctx context.Context, to, subject, text string) error {
	if s.deps.Mailer == nil {
		return nil
	}
	return s.deps.Mailer.Send(ctx, permiso.MailMessage{To: to, Subject: subject, Text: text})
}

// duration writes a token lifetime for people: "1 hour", "48 hours".
func duration(d interface{ Hours() float64 }) string {
	h := d.Hours()
	switch {
	case h == 1:
		return "1 hour"
	case h == float64(int(h)) && h > 1:
		return strconv.Itoa(int(h)) + " hours"
	}
	return fmt.Sprintf("%.0f minutes", h*60)
}

package identity_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/testwire"
)

// TestChangeOwnPassword: current password required, policy and history
// enforced with every broken rule listed, the other sessions end and the
// current one stays.
func TestChangeOwnPassword(t *testing.T) {
	e := newEnv(t)
	u := e.register("quinn", "quinn@example.com", goodPassword)
	self := identity.Actor{UserID: u.ID}
	here := e.mustLogin("quinn", goodPassword)
	there := e.mustLogin("quinn", goodPassword)
	keep := uuid.MustParse(here.SessionID)

	err := e.svc.ChangePassword(e.ctx, self, u.ID, "", "", keep)
	if f := fields(err); len(f["current_password"]) == 0 || len(f["new_password"]) == 0 {
		t.Fatalf("missing fields: %v", err)
	}
	err = e.svc.ChangePassword(e.ctx, self, u.ID, "Wrong-password-1", otherPassword, keep)
	if pe := wantCode(t, err, permiso.EBADREQUEST, "wrong current"); pe.Message != "Current password is incorrect" {
		t.Errorf("message %q", pe.Message)
	}
	err = e.svc.ChangePassword(e.ctx, self, u.ID, goodPassword, "weak", keep)
	wantCode(t, err, permiso.EINVALID, "weak")
	if msgs := fields(err)["new_password"]; len(msgs) != 4 {
		t.Errorf("problems %v, want length, upper case, digit, special", msgs)
	}
	err = e.svc.ChangePassword(e.ctx, self, u.ID, goodPassword, "Quinn-is-9-strong", keep)
	if msgs := fields(err)["new_password"]; len(msgs) != 1 || !strings.Contains(msgs[0], "username") {
		t.Errorf("password with the username: %v", err)
	}
	err = e.svc.ChangePassword(e.ctx, self, u.ID, goodPassword, goodPassword, keep)
	wantCode(t, err, permiso.EINVALID, "same as current")

	if err := e.svc.ChangePassword(e.ctx, self, u.ID, goodPassword, otherPassword, keep); err != nil {
		t.Fatal(err)
	}
	if !e.alive(here.AccessToken) {
		t.Error("the session the change was made from was ended")
	}
	if e.alive(there.AccessToken) || e.refresh(there.RefreshToken) == nil {
		t.Error("another session survived the password change")
	}
	if _, err := e.login("quinn", goodPassword); err == nil {
		t.Error("old password still logs in")
	}
	e.mustLogin("quinn", otherPassword)

	// History: the last 3 passwords may not come back.
	if err := e.svc.ChangePassword(e.ctx, self, u.ID, otherPassword, thirdPassword, keep); err != nil {
		t.Fatal(err)
	}
	for _, old := range []string{goodPassword, otherPassword} {
		err = e.svc.ChangePassword(e.ctx, self, u.ID, thirdPassword, old, keep)
		if msgs := fields(err)["new_password"]; len(msgs) != 1 || !strings.Contains(msgs[0], "last 3") {
			t.Errorf("reuse of an old password: %v", err)
		}
	}
	// Another user cannot; an admin can, without the current password,
	// and every session of the user ends.
	other := e.register("rae", "rae@example.com", goodPassword)
	err = e.svc.ChangePassword(e.ctx, identity.Actor{UserID: other.ID}, u.ID, thirdPassword, "Brand-New-4-secret", uuid.Nil)
	wantCode(t, err, permiso.EFORBIDDEN, "change another user's password")
	if err := e.svc.ChangePassword(e.ctx, e.admin, u.ID, "", "Brand-New-4-secret", uuid.Nil); err != nil {
		t.Fatal(err)
	}
	if e.alive(here.AccessToken) {
		t.Error("a session survived an administrator's password change")
	}
}

// TestPasswordReset: the whole flow through real mail: the request
// answers the same for unknown addresses and sends nothing; a policy
// failure leaves the token usable; success spends the token, ends every
// session and lifts the lockout; the token works once, for one hour, and
// not after another password change.
func TestPasswordReset(t *testing.T) {
	e := newEnv(t)
	u := e.register("sam", "sam@example.com", goodPassword)
	e.mailTo(u.Email)
	tr := e.mustLogin("sam", goodPassword)
	for range 3 {
		_, _ = e.login("sam", "Wrong-password-1!")
	}
	if _, err := e.login("sam", goodPassword); err == nil {
		t.Fatal("not locked")
	}

	for _, email := range []string{"nobody@example.com", "SAM@example.com"} {
		if err := e.svc.RequestPasswordReset(e.ctx, testRequest, email); err != nil {
			t.Fatalf("request for %s: %v", email, err)
		}
	}
	wantCode(t, e.svc.RequestPasswordReset(e.ctx, testRequest, "not an email"), permiso.EINVALID, "malformed email")
	m := e.mailTo(u.Email)
	if !strings.Contains(m.Header("Subject"), "reset your password") || !m.TLS {
		t.Errorf("mail subject %q TLS %v", m.Header("Subject"), m.TLS)
	}
	tok := e.tokenIn(m, "reset-password")
	e.svc.Wait()
	e.smtp.None(t, 100*time.Millisecond) // nothing for the unknown address

	_, err := e.svc.ConfirmPasswordReset(e.ctx, testRequest, tok, "weak")
	wantCode(t, err, permiso.EINVALID, "weak")
	_, err = e.svc.ConfirmPasswordReset(e.ctx, testRequest, tok, goodPassword)
	wantCode(t, err, permiso.EINVALID, "current password")
	_, err = e.svc.ConfirmPasswordReset(e.ctx, testRequest, "garbage", otherPassword)
	if pe := wantCode(t, err, permiso.EBADACTIONTOKEN, "garbage"); pe.Message != "Invalid or expired reset token" {
		t.Errorf("message %q", pe.Message)
	}
	if _, err := e.svc.ConfirmPasswordReset(e.ctx, testRequest, tok, otherPassword); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	if e.alive(tr.AccessToken) || e.refresh(tr.RefreshToken) == nil {
		t.Error("a session survived the reset")
	}
	e.mustLogin("sam", otherPassword) // the lock is gone
	_, err = e.svc.ConfirmPasswordReset(e.ctx, testRequest, tok, thirdPassword)
	wantCode(t, err, permiso.EBADACTIONTOKEN, "token used twice")

	// A token dies with a later password change, and after one hour.
	if err := e.svc.RequestPasswordReset(e.ctx, testRequest, u.Email); err != nil {
		t.Fatal(err)
	}
	stale := e.tokenIn(e.mailTo(u.Email), "reset-password")
	if err := e.svc.RequestPasswordReset(e.ctx, testRequest, u.Email); err != nil {
		t.Fatal(err)
	}
	late := e.tokenIn(e.mailTo(u.Email), "reset-password")
	e.clock.Advance(time.Second)
	if err := e.svc.ChangePassword(e.ctx, identity.Actor{UserID: u.ID}, u.ID, otherPassword, thirdPassword, uuid.Nil); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.ConfirmPasswordReset(e.ctx, testRequest, stale, "Fourth-Strong-3-words")
	wantCode(t, err, permiso.EBADACTIONTOKEN, "token older than the last password change")
	if err := e.svc.RequestPasswordReset(e.ctx, testRequest, u.Email); err != nil {
		t.Fatal(err)
	}
	fresh := e.tokenIn(e.mailTo(u.Email), "reset-password")
	e.clock.Advance(time.Hour)
	_, err = e.svc.ConfirmPasswordReset(e.ctx, testRequest, fresh, "Fourth-Strong-3-words")
	wantCode(t, err, permiso.EBADACTIONTOKEN, "expired token")
	_, err = e.svc.ConfirmPasswordReset(e.ctx, testRequest, late, "Fourth-Strong-3-words")
	wantCode(t, err, permiso.EBADACTIONTOKEN, "late token")

	// A disabled account gets no mail.
	if _, err := e.svc.UpdateUser(e.ctx, e.admin, u.ID, identity.UserUpdate{IsActive: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.RequestPasswordReset(e.ctx, testRequest, u.Email); err != nil {
		t.Fatal(err)
	}
	e.svc.Wait()
	e.smtp.None(t, 100*time.Millisecond)
}

// TestConcurrentReset: of concurrent confirmations with one token,
// exactly one succeeds.
func TestConcurrentReset(t *testing.T) {
	e := newEnv(t)
	u := e.register("tia", "tia@example.com", goodPassword)
	e.mailTo(u.Email)
	if err := e.svc.RequestPasswordReset(e.ctx, testRequest, u.Email); err != nil {
		t.Fatal(err)
	}
	tok := e.tokenIn(e.mailTo(u.Email), "reset-password")
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := e.svc.ConfirmPasswordReset(e.ctx, testRequest, tok, "Concurrent-Pass-"+string(rune('a'+i))+"1")
			errs <- err
		}()
	}
	ok := 0
	for range n {
		err := <-errs
		switch permiso.ErrorCode(err) {
		case "":
			ok++
		case permiso.EBADACTIONTOKEN:
		default:
			t.Errorf("unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d confirmations succeeded, want 1", ok)
	}
}

// TestExpiredPassword: PASSWORD_MAX_AGE_DAYS: after the maximum age the
// login answers password_expired; POST /auth/change-password (the OAuth
// core) sets a new one under the same policy and history, and the login
// works again.
func TestExpiredPassword(t *testing.T) {
	e := newEnv(t)
	e.register("uma", "uma@example.com", goodPassword)
	e.clock.Advance(91 * 24 * time.Hour)
	_, err := e.login("uma", goodPassword)
	if err == nil || !strings.Contains(err.Error(), "password_expired") {
		t.Fatalf("login after 91 days: %v, want password_expired", err)
	}
	if err := e.auth.ChangeExpiredPassword(e.ctx, "uma", goodPassword, "P030710p$e4o", oauthMeta); err == nil {
		t.Error("a weak new password was accepted")
	}
	if err := e.auth.ChangeExpiredPassword(e.ctx, "uma", goodPassword, goodPassword, oauthMeta); err == nil {
		t.Error("the expired password was accepted as the new one")
	}
	if err := e.auth.ChangeExpiredPassword(e.ctx, "uma", goodPassword, otherPassword, oauthMeta); err != nil {
		t.Fatal(err)
	}
	e.mustLogin("uma", otherPassword)
}

// TestMailLimit: one account gets at most MailLimit mails of a kind; the
// request keeps answering the same.
func TestMailLimit(t *testing.T) {
	e := newEnv(t)
	e.svc = identity.New(identity.Config{Policy: policy, LinkBaseURL: "https://auth.example.com", MailLimit: permiso.Limit{Count: 2, Period: time.Hour}},
		identity.Deps{Store: e.db, Hasher: testwire.Hasher(), Sessions: e.auth,
			Mailer: e.mailer, Limiter: inprocess.NewLimiter(), Now: e.clock.Now})
	u := e.register("wes", "wes@example.com", goodPassword)
	e.mailTo(u.Email) // verification
	for range 4 {
		if err := e.svc.RequestPasswordReset(e.ctx, testRequest, u.Email); err != nil {
			t.Fatal(err)
		}
	}
	e.mailTo(u.Email)
	e.mailTo(u.Email)
	e.svc.Wait()
	e.smtp.None(t, 200*time.Millisecond)
}

// TestWrongCurrentPasswordLocks: a wrong current password in a password
// change is a failed login attempt (docs/abuse-resistance.md, "Lockout"), so a stolen access token is
// no unlimited password oracle: after MAX_LOGIN_ATTEMPTS (3 here) wrong
// ones the account is locked for logins and for changes alike, the right
// password included, until an admin unlocks it.
func TestWrongCurrentPasswordLocks(t *testing.T) {
	e := newEnv(t)
	u := e.register("rowan", "rowan@example.com", goodPassword)
	self := identity.Actor{UserID: u.ID}
	for i := range 3 {
		err := e.svc.ChangePassword(e.ctx, self, u.ID, fmt.Sprintf("Wrong-password-%d", i), otherPassword, uuid.Nil)
		wantCode(t, err, permiso.EBADREQUEST, "wrong current")
	}
	err := e.svc.ChangePassword(e.ctx, self, u.ID, goodPassword, otherPassword, uuid.Nil)
	if pe := wantCode(t, err, permiso.ELOCKED, "locked"); !strings.Contains(pe.Message, "locked until") {
		t.Errorf("message %q", pe.Message)
	}
	if _, err := e.login("rowan", goodPassword); err == nil || !strings.Contains(err.Error(), "account_locked") {
		t.Errorf("login while locked: %v, want account_locked", err)
	}
	if _, err := e.svc.Unlock(e.ctx, e.admin, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ChangePassword(e.ctx, self, u.ID, goodPassword, otherPassword, uuid.Nil); err != nil {
		t.Fatalf("change after unlock: %v", err)
	}
	e.mustLogin("rowan", otherPassword)
}

package oauth2_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/oauth2"
)

func TestChangeExpiredPassword(t *testing.T) {
	e := newEnv(t)
	u := e.createUser("olga", goodPassword, permiso.RoleUser)
	before := e.login("olga", goodPassword, "")
	e.updateUser(u.ID, func(x *permiso.User) {
		x.PasswordChangedAt = e.clock.Now().Add(-100 * 24 * time.Hour)
	})
	_, err := e.token(formLogin("olga", goodPassword), "")
	wantOAuth(t, err, "password_expired", 403)

	change := func(user, cur, next string) error {
		return e.svc.ChangeExpiredPassword(e.ctx, user, cur, next, testMeta)
	}
	// Credentials are checked like a login: the same invalid_grant.
	unknown := change("nobody", goodPassword, "Another-Good-Pass-1")
	wrong := change("olga", "wrong-password", "Another-Good-Pass-1")
	wantOAuth(t, unknown, "invalid_grant", 400)
	if !reflect.DeepEqual(unknown, wrong) {
		t.Errorf("unknown user %v and wrong password %v differ", unknown, wrong)
	}
	wantOAuth(t, change("", goodPassword, "x"), "invalid_request", 400)

	// Policy: one detail per broken rule, on new_password.
	err = change("olga", goodPassword, "short")
	var pe *permiso.Error
	if !errors.As(err, &pe) || pe.Code != permiso.EINVALID || len(pe.Details) < 3 {
		t.Fatalf("policy violation: %v", err)
	}
	for _, d := range pe.Details {
		if d.Field != "new_password" {
			t.Errorf("detail field %q", d.Field)
		}
	}
	// The current password cannot be reused.
	if err := change("olga", goodPassword, goodPassword); permiso.ErrorCode(err) != permiso.EINVALID {
		t.Fatalf("reuse of the current password: %v", err)
	}

	// Success: new password works, old one does not, old sessions end.
	if err := change("olga", goodPassword, "Second-Good-Pass-2"); err != nil {
		t.Fatal(err)
	}
	e.wantInvalidToken(before.AccessToken, "token from before the password change")
	e.wantRefreshRefused(before.RefreshToken)
	_, err = e.token(formLogin("olga", goodPassword), "")
	wantOAuth(t, err, "invalid_grant", 400)
	e.clock.Advance(time.Second)
	e.login("olga", "Second-Good-Pass-2", "")
	if len(e.audit.find(oauth2.ActionPasswordChange)) != 1 {
		t.Error("no password.change audit event")
	}

	// History: with PreventReuseCount 3, the last passwords are refused.
	if err := change("olga", "Second-Good-Pass-2", "Third-Good-Pass-3"); err != nil {
		t.Fatal(err)
	}
	for _, old := range []string{goodPassword, "Second-Good-Pass-2", "Third-Good-Pass-3"} {
		err := change("olga", "Third-Good-Pass-3", old)
		if !errors.As(err, &pe) || pe.Code != permiso.EINVALID || pe.Details[0].Field != "new_password" {
			t.Errorf("reuse of %q: %v", old, err)
		}
	}
	if err := change("olga", "Third-Good-Pass-3", "Fourth-Good-Pass-4"); err != nil {
		t.Fatal(err)
	}

	// A disabled account: account_disabled, only with the right password.
	setActive(t, e, u.ID, false)
	wantOAuth(t, change("olga", "Fourth-Good-Pass-4", "Fifth-Good-Pass-5"), "account_disabled", 403)
	wantOAuth(t, change("olga", "wrong-password", "Fifth-Good-Pass-5"), "invalid_grant", 400)
}

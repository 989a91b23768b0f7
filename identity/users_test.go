package identity_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
)

func TestRegister(t *testing.T) {
	e := newEnv(t)
	u := e.register("  Alice_1 ", "Alice@Example.COM", goodPassword)
	if u.Username != "alice_1" || u.Email != "alice@example.com" {
		t.Errorf("stored %q %q, want lower case", u.Username, u.Email)
	}
	if !u.IsActive || u.IsVerified || u.IsSuperuser || !slices.Equal(u.RoleNames(), []string{"user"}) {
		t.Errorf("new user active %v verified %v superuser %v roles %v, want active, unverified, role user", u.IsActive, u.IsVerified, u.IsSuperuser, u.RoleNames())
	}
	// Privileged fields of the body are ignored by registration.
	v, err := e.svc.Register(e.ctx, testRequest, identity.NewUser{Username: "bob", Email: "bob@example.com", Password: goodPassword,
		IsSuperuser: ptr(true), IsVerified: ptr(true), RoleIDs: []string{e.roles["admin"].ID.String()}})
	if err != nil {
		t.Fatal(err)
	}
	if v.IsSuperuser || v.IsVerified || !slices.Equal(v.RoleNames(), []string{"user"}) {
		t.Errorf("registration honoured privileged fields: %+v roles %v", v, v.RoleNames())
	}
	// Both get a verification mail.
	for range 2 {
		m := e.smtp.Wait(t, 10*time.Second)
		if !strings.Contains(m.Header("Subject"), "verify your email") {
			t.Errorf("subject %q", m.Header("Subject"))
		}
	}

	// Taken, case-insensitively.
	_, err = e.svc.Register(e.ctx, testRequest, identity.NewUser{Username: "ALICE_1", Email: "new@example.com", Password: goodPassword})
	if pe := wantCode(t, err, permiso.EEXISTS, "taken username"); pe.Message != "Username already exists" {
		t.Errorf("message %q", pe.Message)
	}
	_, err = e.svc.Register(e.ctx, testRequest, identity.NewUser{Username: "alice2", Email: "ALICE@example.com", Password: goodPassword})
	if pe := wantCode(t, err, permiso.EEXISTS, "taken email"); pe.Message != "Email already exists" {
		t.Errorf("message %q", pe.Message)
	}
}

// TestRegisterValidation: every broken rule at once, nothing written.
func TestRegisterValidation(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("x", 101)
	_, err := e.svc.Register(e.ctx, testRequest, identity.NewUser{Username: "a!", Email: "not-an-email", Password: "short", FirstName: &long,
		Bio: ptr(strings.Repeat("b", 1001))})
	wantCode(t, err, permiso.EINVALID, "invalid registration")
	f := fields(err)
	for _, k := range []string{"username", "email", "password", "first_name", "bio"} {
		if len(f[k]) == 0 {
			t.Errorf("no problem reported for %s: %v", k, f)
		}
	}
	if n := len(f["password"]); n < 4 {
		t.Errorf("password problems %v, want length, upper, digit and special at least", f["password"])
	}
	for _, tc := range []struct{ name, username, email, password, field, want string }{
		{"username too short", "ab", "ab@example.com", goodPassword, "username", "3 to 50"},
		{"username too long", strings.Repeat("a", 51), "l@example.com", goodPassword, "username", "3 to 50"},
		{"username characters", "al ice", "s@example.com", goodPassword, "username", "only letters"},
		{"email without domain dot", "carol", "carol@localhost", goodPassword, "email", "valid"},
		{"email with display name", "carol", "Carol <carol@example.com>", goodPassword, "email", "valid"},
		{"common password", "carol", "carol@example.com", "P030710p$e4o", "password", ""},
		{"password contains username", "carol", "carol@example.com", "Carol-Strong-9-pass", "password", "username"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Register(e.ctx, testRequest, identity.NewUser{Username: tc.username, Email: tc.email, Password: tc.password})
			wantCode(t, err, permiso.EINVALID, tc.name)
			msgs := fields(err)[tc.field]
			if len(msgs) == 0 || !strings.Contains(strings.Join(msgs, "|"), tc.want) {
				t.Errorf("%s problems %v, want one containing %q", tc.field, msgs, tc.want)
			}
		})
	}
	_, total, _ := e.db.ListUsers(e.ctx, permiso.UserFilter{})
	if total != 1 { // root only
		t.Errorf("%d users after failed registrations, want 1", total)
	}
}

// TestCommonPasswordRefused: a password from the list is refused even
// when it satisfies every other rule (it is long and mixed here).
func TestCommonPasswordRefused(t *testing.T) {
	e := newEnv(t)
	p := policy
	p.RequireSpecial, p.MinLength = false, 8
	if errs := p.Check("Qwertyuiop12", ""); len(errs) != 1 || errs[0].Message != "Password is too common" {
		t.Fatalf("Check(Qwertyuiop12) = %v", errs)
	}
	_, err := e.svc.Register(e.ctx, testRequest, identity.NewUser{Username: "dan", Email: "dan@example.com", Password: "P030710p$e4o"})
	wantCode(t, err, permiso.EINVALID, "common")
}

// TestNoSelfEscalation: a user who is not acting as an administrator can
// change only profile fields of their own record; any administrative
// field is refused with 403 and nothing at all changes.
func TestNoSelfEscalation(t *testing.T) {
	e := newEnv(t)
	u := e.register("eve", "eve@example.com", goodPassword)
	self := identity.Actor{UserID: u.ID}
	adminRole := []string{e.roles["admin"].ID.String()}
	for _, in := range []identity.UserUpdate{
		{RoleIDs: &adminRole},
		{RoleIDs: &[]string{}},
		{IsSuperuser: ptr(true)},
		{IsSuperuser: ptr(false)},
		{IsActive: ptr(true)},
		{IsVerified: ptr(true)},
		{FirstName: ptr("Eve"), IsVerified: ptr(true)},
	} {
		_, err := e.svc.UpdateUser(e.ctx, self, u.ID, in)
		wantCode(t, err, permiso.EFORBIDDEN, "self-escalation "+strings.Join(in.Privileged(), ","))
	}
	got := e.get(u.ID)
	if got.IsSuperuser || got.IsVerified || !got.IsActive || got.FirstName != nil || !slices.Equal(got.RoleNames(), []string{"user"}) {
		t.Fatalf("user changed by refused updates: %+v roles %v", got, got.RoleNames())
	}
	// Nor another user's record, even profile fields.
	other := e.register("mallory", "mallory@example.com", goodPassword)
	_, err := e.svc.UpdateUser(e.ctx, self, other.ID, identity.UserUpdate{FirstName: ptr("x")})
	wantCode(t, err, permiso.EFORBIDDEN, "update of another user")
	_, err = e.svc.SetRoles(e.ctx, self, u.ID, adminRole)
	wantCode(t, err, permiso.EFORBIDDEN, "SetRoles by a non-admin")
	_, err = e.svc.CreateUser(e.ctx, self, identity.NewUser{Username: "sock", Email: "sock@example.com", Password: goodPassword})
	wantCode(t, err, permiso.EFORBIDDEN, "CreateUser by a non-admin")

	// Profile fields work.
	got, err = e.svc.UpdateUser(e.ctx, self, u.ID, identity.UserUpdate{FirstName: ptr("Eve"), LastName: ptr("Adams"), Bio: ptr("")})
	if err != nil {
		t.Fatal(err)
	}
	if got.FullName() != "Eve Adams" {
		t.Errorf("full name %q", got.FullName())
	}
}

func TestEmailChange(t *testing.T) {
	e := newEnv(t)
	u := e.register("fay", "fay@example.com", goodPassword)
	first := e.tokenIn(e.mailTo("fay@example.com"), "verify-email")
	self := identity.Actor{UserID: u.ID}
	e.register("gus", "gus@example.com", goodPassword)
	e.mailTo("gus@example.com")
	_, err := e.svc.UpdateUser(e.ctx, self, u.ID, identity.UserUpdate{Email: ptr("GUS@example.com")})
	wantCode(t, err, permiso.EEXISTS, "taken email")
	_, err = e.svc.UpdateUser(e.ctx, self, u.ID, identity.UserUpdate{Email: ptr("nope")})
	wantCode(t, err, permiso.EINVALID, "bad email")

	got, err := e.svc.UpdateUser(e.ctx, self, u.ID, identity.UserUpdate{Email: ptr("Fay.New@Example.com")})
	if err != nil {
		t.Fatal(err)
	}
	if got.Email != "fay.new@example.com" || got.IsVerified {
		t.Errorf("email %q verified %v", got.Email, got.IsVerified)
	}
	second := e.tokenIn(e.mailTo("fay.new@example.com"), "verify-email")
	// The link sent to the old address no longer verifies anything.
	_, err = e.svc.ConfirmEmailVerification(e.ctx, testRequest, first)
	wantCode(t, err, permiso.EBADACTIONTOKEN, "verification token of the old address")
	if _, err := e.svc.ConfirmEmailVerification(e.ctx, testRequest, second); err != nil {
		t.Fatal(err)
	}
	if !e.get(u.ID).IsVerified {
		t.Error("not verified")
	}
	_, err = e.svc.ConfirmEmailVerification(e.ctx, testRequest, second)
	wantCode(t, err, permiso.EBADACTIONTOKEN, "verification token used twice")
	// An administrator may change the email and keep it verified.
	got, err = e.svc.UpdateUser(e.ctx, e.admin, u.ID, identity.UserUpdate{Email: ptr("fay3@example.com"), IsVerified: ptr(true)})
	if err != nil || !got.IsVerified {
		t.Fatalf("admin email change: %v verified %v", err, got.IsVerified)
	}
	e.smtp.None(t, 100*time.Millisecond)
}

func TestVerificationTokens(t *testing.T) {
	e := newEnv(t)
	u := e.register("hal", "hal@example.com", goodPassword)
	tok := e.tokenIn(e.mailTo(u.Email), "verify-email")
	for _, bad := range []string{"garbage", tok + "x", strings.Replace(tok, tok[:1], "~", 1), tok[:44] + "0000000000000000"} {
		_, err := e.svc.ConfirmEmailVerification(e.ctx, testRequest, bad)
		if pe := wantCode(t, err, permiso.EBADACTIONTOKEN, "bad token"); pe.Message != "Invalid or expired verification token" {
			t.Errorf("message %q", pe.Message)
		}
	}
	_, err := e.svc.ConfirmEmailVerification(e.ctx, testRequest, "")
	wantCode(t, err, permiso.EINVALID, "empty token")

	// A fresh request mails a new link; unknown, verified or malformed
	// addresses get the same answer and no mail.
	if err := e.svc.RequestEmailVerification(e.ctx, testRequest, "HAL@example.com"); err != nil {
		t.Fatal(err)
	}
	tok2 := e.tokenIn(e.mailTo(u.Email), "verify-email")
	if tok2 == tok {
		t.Fatal("same token twice")
	}
	if err := e.svc.RequestEmailVerification(e.ctx, testRequest, "nobody@example.com"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.svc.RequestEmailVerification(e.ctx, testRequest, "bad address"), permiso.EINVALID, "malformed email")
	// Expired after 48 hours.
	e.clock.Advance(48 * time.Hour)
	_, err = e.svc.ConfirmEmailVerification(e.ctx, testRequest, tok2)
	wantCode(t, err, permiso.EBADACTIONTOKEN, "expired")
	e.clock.Advance(-48 * time.Hour)
	if _, err := e.svc.ConfirmEmailVerification(e.ctx, testRequest, tok); err != nil {
		t.Fatalf("first token: %v", err)
	}
	if err := e.svc.RequestEmailVerification(e.ctx, testRequest, u.Email); err != nil {
		t.Fatal(err)
	}
	e.svc.Wait()
	e.smtp.None(t, 100*time.Millisecond)
}

func TestAdminCreate(t *testing.T) {
	e := newEnv(t)
	// Everything is checked before anything is written.
	_, err := e.svc.CreateUser(e.ctx, e.admin, identity.NewUser{Username: "ivy", Email: "ivy@example.com", Password: goodPassword,
		RoleIDs: []string{"not-a-uuid", e.roles["admin"].ID.String()}})
	if f := fields(err); len(f["role_ids[0]"]) == 0 {
		t.Fatalf("malformed role id: %v (%v)", err, f)
	}
	unknown := uuid.New()
	_, err = e.svc.CreateUser(e.ctx, e.admin, identity.NewUser{Username: "ivy", Email: "ivy@example.com", Password: goodPassword,
		RoleIDs: []string{unknown.String()}})
	if pe := wantCode(t, err, permiso.EBADREQUEST, "unknown role"); !strings.Contains(pe.Message, unknown.String()) {
		t.Errorf("message %q does not name the unknown id", pe.Message)
	}
	if _, err := e.db.GetUserByUsername(e.ctx, "ivy"); err == nil {
		t.Fatal("user created despite an unknown role id")
	}
	// A superuser needs a superuser.
	_, err = e.svc.CreateUser(e.ctx, identity.Actor{UserID: uuid.New(), Admin: true}, identity.NewUser{Username: "ivy", Email: "ivy@example.com", Password: goodPassword, IsSuperuser: ptr(true)})
	wantCode(t, err, permiso.EFORBIDDEN, "superuser by a non-superuser admin")

	u, err := e.svc.CreateUser(e.ctx, e.admin, identity.NewUser{Username: "Ivy", Email: "ivy@example.com", Password: goodPassword,
		IsVerified: ptr(true), RoleIDs: []string{e.roles["admin"].ID.String(), e.roles["user"].ID.String(), e.roles["admin"].ID.String()}})
	if err != nil {
		t.Fatal(err)
	}
	if u.Username != "ivy" || !u.IsVerified || !slices.Equal(u.RoleNames(), []string{"admin", "user"}) {
		t.Errorf("created %q verified %v roles %v", u.Username, u.IsVerified, u.RoleNames())
	}
	// No role_ids: role user. An empty list: no role.
	d, err := e.svc.CreateUser(e.ctx, e.admin, identity.NewUser{Username: "jay", Email: "jay@example.com", Password: goodPassword})
	if err != nil || !slices.Equal(d.RoleNames(), []string{"user"}) {
		t.Errorf("default roles %v (%v)", d.RoleNames(), err)
	}
	n, err := e.svc.CreateUser(e.ctx, e.admin, identity.NewUser{Username: "kim", Email: "kim@example.com", Password: goodPassword, RoleIDs: []string{}})
	if err != nil || len(n.RoleNames()) != 0 {
		t.Errorf("explicit empty roles %v (%v)", n.RoleNames(), err)
	}
	// Mails go out in the background: their order is not fixed.
	var got []string
	for range 2 {
		got = append(got, e.smtp.Wait(t, 10*time.Second).To...)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"jay@example.com", "kim@example.com"}) {
		t.Errorf("verification mails went to %v, want jay and kim", got)
	}
}

func TestAdminUpdateAndDisable(t *testing.T) {
	e := newEnv(t)
	u := e.register("lee", "lee@example.com", goodPassword)
	tr := e.mustLogin("lee", goodPassword)
	// Not admin-only: an admin who is not a superuser cannot grant it.
	plainAdmin := identity.Actor{UserID: uuid.New(), Admin: true}
	_, err := e.svc.UpdateUser(e.ctx, plainAdmin, u.ID, identity.UserUpdate{IsSuperuser: ptr(true)})
	wantCode(t, err, permiso.EFORBIDDEN, "grant superuser")
	// ...but may send the current value back unchanged.
	if _, err := e.svc.UpdateUser(e.ctx, plainAdmin, u.ID, identity.UserUpdate{IsSuperuser: ptr(false), FirstName: ptr("Lee")}); err != nil {
		t.Fatal(err)
	}
	bad := []string{uuid.NewString()}
	_, err = e.svc.UpdateUser(e.ctx, e.admin, u.ID, identity.UserUpdate{RoleIDs: &bad, LastName: ptr("X")})
	wantCode(t, err, permiso.EBADREQUEST, "unknown role")
	if e.get(u.ID).LastName != nil {
		t.Error("fields written despite an unknown role id")
	}
	roles := []string{e.roles["service"].ID.String()}
	got, err := e.svc.UpdateUser(e.ctx, e.admin, u.ID, identity.UserUpdate{RoleIDs: &roles, IsVerified: ptr(true)})
	if err != nil || !slices.Equal(got.RoleNames(), []string{"service"}) || !got.IsVerified {
		t.Fatalf("admin update: %v roles %v", err, got.RoleNames())
	}
	if !e.alive(tr.AccessToken) {
		t.Fatal("token dead before disabling")
	}
	got, err = e.svc.UpdateUser(e.ctx, e.admin, u.ID, identity.UserUpdate{IsActive: ptr(false)})
	if err != nil || got.IsActive {
		t.Fatalf("disable: %v", err)
	}
	if e.alive(tr.AccessToken) || e.refresh(tr.RefreshToken) == nil {
		t.Error("tokens of a disabled user still work")
	}
	// An administrator cannot disable or delete themselves.
	_, err = e.svc.UpdateUser(e.ctx, e.admin, e.admin.UserID, identity.UserUpdate{IsActive: ptr(false)})
	wantCode(t, err, permiso.EFORBIDDEN, "self-disable")
	_, err = e.svc.DeleteUser(e.ctx, e.admin, e.admin.UserID)
	wantCode(t, err, permiso.EFORBIDDEN, "admin self-delete")
	_, err = e.svc.UpdateUser(e.ctx, e.admin, uuid.New(), identity.UserUpdate{FirstName: ptr("x")})
	wantCode(t, err, permiso.ENOTFOUND, "unknown user")
}

func TestDelete(t *testing.T) {
	e := newEnv(t)
	u := e.register("max", "max@example.com", goodPassword)
	v := e.register("ned", "ned@example.com", goodPassword)
	tr := e.mustLogin("max", goodPassword)
	_, err := e.svc.DeleteUser(e.ctx, identity.Actor{UserID: v.ID}, u.ID)
	wantCode(t, err, permiso.EFORBIDDEN, "delete another user")
	if _, err := e.svc.DeleteUser(e.ctx, identity.Actor{UserID: u.ID}, u.ID); err != nil {
		t.Fatalf("self-delete: %v", err)
	}
	if e.alive(tr.AccessToken) {
		t.Error("token of a deleted user works")
	}
	_, err = e.svc.DeleteUser(e.ctx, e.admin, u.ID)
	wantCode(t, err, permiso.ENOTFOUND, "delete twice")
	if _, err := e.svc.DeleteUser(e.ctx, e.admin, v.ID); err != nil {
		t.Fatal(err)
	}
}

func TestSetRoles(t *testing.T) {
	e := newEnv(t)
	u := e.register("ozz", "oz@example.com", goodPassword)
	_, err := e.svc.SetRoles(e.ctx, e.admin, u.ID, nil)
	wantCode(t, err, permiso.EINVALID, "missing role_ids")
	_, err = e.svc.SetRoles(e.ctx, e.admin, u.ID, []string{"x"})
	wantCode(t, err, permiso.EINVALID, "malformed")
	_, err = e.svc.SetRoles(e.ctx, e.admin, u.ID, []string{uuid.NewString()})
	wantCode(t, err, permiso.EBADREQUEST, "unknown")
	_, err = e.svc.SetRoles(e.ctx, e.admin, uuid.New(), []string{})
	wantCode(t, err, permiso.ENOTFOUND, "unknown user")
	got, err := e.svc.SetRoles(e.ctx, e.admin, u.ID, []string{e.roles["admin"].ID.String()})
	if err != nil || !slices.Equal(got.RoleNames(), []string{"admin"}) {
		t.Fatalf("SetRoles: %v %v", err, got.RoleNames())
	}
}

// TestUnlock: an admin unlock lifts a lock at once.
func TestUnlock(t *testing.T) {
	e := newEnv(t)
	u := e.register("pia", "pia@example.com", goodPassword)
	for range 3 {
		_, _ = e.login("pia", "wrong-password")
	}
	if _, err := e.login("pia", goodPassword); err == nil {
		t.Fatal("not locked after 3 failures")
	}
	if got := e.get(u.ID); got.LockedUntil == nil {
		t.Error("lock not mirrored on the user")
	}
	if _, err := e.svc.Unlock(e.ctx, e.admin, u.ID); err != nil {
		t.Fatal(err)
	}
	e.mustLogin("pia", goodPassword)
	if got := e.get(u.ID); got.LockedUntil != nil || got.FailedLoginAttempts != 0 {
		t.Errorf("mirror after unlock: %v %d", got.LockedUntil, got.FailedLoginAttempts)
	}
	_, err := e.svc.Unlock(e.ctx, e.admin, uuid.New())
	wantCode(t, err, permiso.ENOTFOUND, "unlock unknown")
}

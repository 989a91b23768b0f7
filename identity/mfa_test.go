package identity_test

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base32"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/internal/testwire"
	"github.com/permiso/permiso/mfa"
	"github.com/permiso/permiso/redis"
)

// totpCode is the code an authenticator app shows for secret at the
// env's current time.
func (e *env) totpCode(secret string) string {
	e.t.Helper()
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		e.t.Fatal(err)
	}
	return mfa.HOTP(sha1.New, raw, uint64(e.clock.Now().Unix()/30), 6)
}

// enrollTOTP registers a user and enrolls an authenticator app; it
// returns the actor, the secret and the recovery codes.
func (e *env) enrollTOTP(name string) (identity.Actor, permiso.User, string, []string) {
	e.t.Helper()
	u := e.register(name, name+"@example.com", goodPassword)
	e.mailTo(u.Email)
	self := identity.Actor{UserID: u.ID, Request: testRequest}
	en, err := e.svc.BeginTOTP(e.ctx, self, u.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	codes, err := e.svc.ConfirmTOTP(e.ctx, self, u.ID, e.totpCode(en.Secret))
	if err != nil {
		e.t.Fatal(err)
	}
	e.mailTo(u.Email)
	return self, u, en.Secret, codes
}

// TestMFAEnrollmentLifecycle: enroll, confirm (a wrong code refused),
// status, a replayed code refused, new recovery codes replace the old,
// removal with the password and a recovery code; audited without any
// secret or code, and mailed.
func TestMFAEnrollmentLifecycle(t *testing.T) {
	e := newEnv(t)
	u := e.register("ada", "ada@example.com", goodPassword)
	e.mailTo(u.Email)
	self := identity.Actor{UserID: u.ID, Request: testRequest}

	st, err := e.svc.MFAStatus(e.ctx, self, u.ID)
	if err != nil || st.TOTPEnabled || st.RecoveryCodesLeft != 0 {
		t.Fatalf("status before: %+v, %v", st, err)
	}
	_, err = e.svc.ConfirmTOTP(e.ctx, self, u.ID, "123456")
	wantCode(t, err, permiso.ENOTFOUND, "confirm without an enrollment")

	first, err := e.svc.BeginTOTP(e.ctx, self, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	en, err := e.svc.BeginTOTP(e.ctx, self, u.ID)
	if err != nil || en.Secret == first.Secret {
		t.Fatalf("second BeginTOTP: %v (same secret: %v)", err, en.Secret == first.Secret)
	}
	if !strings.HasPrefix(en.URI, "otpauth://totp/permiso:ada?") || !strings.Contains(en.URI, "secret="+en.Secret) {
		t.Errorf("URI %s", en.URI)
	}
	_, err = e.svc.ConfirmTOTP(e.ctx, self, u.ID, e.totpCode(first.Secret))
	wantCode(t, err, permiso.EINVALIDCODE, "code of the replaced enrollment")
	code := e.totpCode(en.Secret)
	codes, err := e.svc.ConfirmTOTP(e.ctx, self, u.ID, code)
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != mfa.RecoveryCodeCount {
		t.Fatalf("%d recovery codes", len(codes))
	}
	if m := e.mailTo(u.Email); !strings.Contains(m.Body(), "authenticator app was added") || strings.Contains(m.Body(), code) {
		t.Errorf("enrollment mail: %q", m.Body())
	}
	_, err = e.svc.BeginTOTP(e.ctx, self, u.ID)
	wantCode(t, err, permiso.ECONFLICT, "BeginTOTP while confirmed")

	st, err = e.svc.MFAStatus(e.ctx, self, u.ID)
	if err != nil || !st.TOTPEnabled || st.TOTPConfirmedAt == nil || st.RecoveryCodesLeft != 10 {
		t.Fatalf("status after: %+v, %v", st, err)
	}

	_, err = e.svc.RegenerateRecoveryCodes(e.ctx, self, u.ID, code)
	wantCode(t, err, permiso.EINVALIDCODE, "the confirmation's code replayed")
	e.clock.Advance(30 * time.Second)
	next := e.totpCode(en.Secret)
	fresh, err := e.svc.RegenerateRecoveryCodes(e.ctx, self, u.ID, next)
	if err != nil {
		t.Fatal(err)
	}
	e.mailTo(u.Email)

	err = e.svc.DisableTOTP(e.ctx, self, u.ID, goodPassword, codes[0])
	wantCode(t, err, permiso.EINVALIDCODE, "recovery code of the replaced set")
	err = e.svc.DisableTOTP(e.ctx, self, u.ID, otherPassword, fresh[0])
	wantCode(t, err, permiso.EBADREQUEST, "wrong password")
	if err := e.svc.DisableTOTP(e.ctx, self, u.ID, goodPassword, strings.ToUpper(fresh[0])); err != nil {
		t.Fatal(err)
	}
	e.mailTo(u.Email)
	st, _ = e.svc.MFAStatus(e.ctx, self, u.ID)
	if st.TOTPEnabled || st.RecoveryCodesLeft != 0 {
		t.Fatalf("status after removal: %+v", st)
	}

	for _, a := range []string{identity.ActionMFAEnroll, identity.ActionMFAConfirm, identity.ActionMFARecoveryCodes, identity.ActionMFADisable} {
		evs, _, err := e.db.ListAuditEvents(e.ctx, permiso.AuditFilter{Action: a})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			b, _ := json.Marshal(ev)
			for _, secret := range append([]string{en.Secret, first.Secret, code, next}, append(codes, fresh...)...) {
				if strings.Contains(string(b), secret) {
					t.Errorf("%s event carries a secret or code: %s", a, b)
				}
			}
		}
	}
	e.auditEvents(identity.ActionMFAConfirm, "success", 1)
	e.auditEvents(identity.ActionMFAConfirm, "failure", 2)
}

// TestMFAStatusRequiredByRole: GET /users/me/mfa's required is true
// exactly when the user holds a role of MFA_REQUIRED_ROLES, enrolled or
// not.
func TestMFAStatusRequiredByRole(t *testing.T) {
	for _, tt := range []struct {
		roles []string
		want  bool
	}{
		{nil, false},
		{[]string{"admin"}, false},
		{[]string{"admin", "user"}, true},
	} {
		e := newEnv(t, func(c *identity.Config) { c.MFARequiredRoles = tt.roles })
		u := e.register("ada", "ada@example.com", goodPassword) // role "user"
		self := identity.Actor{UserID: u.ID, Request: testRequest}
		st, err := e.svc.MFAStatus(e.ctx, self, u.ID)
		if err != nil || st.Required != tt.want || st.TOTPEnabled {
			t.Errorf("MFA_REQUIRED_ROLES=%v: status %+v, %v; want required %v", tt.roles, st, err, tt.want)
		}
	}
}

// TestMFAWrongCodesLockOut: wrong codes are failed attempts of the login
// lockout (3 here): the account locks and even a right code is refused.
func TestMFAWrongCodesLockOut(t *testing.T) {
	e := newEnv(t)
	self, u, secret, _ := e.enrollTOTP("bob")
	e.clock.Advance(30 * time.Second)
	for i := range 3 {
		_, err := e.svc.RegenerateRecoveryCodes(e.ctx, self, u.ID, "000000")
		if i < 2 || permiso.ErrorCode(err) != permiso.ELOCKED {
			wantCode(t, err, permiso.EINVALIDCODE, "wrong code")
		}
	}
	_, err := e.svc.RegenerateRecoveryCodes(e.ctx, self, u.ID, e.totpCode(secret))
	wantCode(t, err, permiso.ELOCKED, "right code while locked")
	if _, err := e.login("bob", goodPassword); err == nil {
		t.Error("password login succeeded while locked by wrong codes")
	}
}

// TestMFAAdminReset: an administrator removes a user's factors and ends
// their sessions; the user themselves and a plain user may not.
func TestMFAAdminReset(t *testing.T) {
	e := newEnv(t)
	self, u, secret, codes := e.enrollTOTP("cyrus")
	tr := e.mustLoginMFA("cyrus", goodPassword, secret)
	wantCode(t, e.svc.ResetMFA(e.ctx, self, u.ID), permiso.EFORBIDDEN, "reset by the user")
	if err := e.svc.ResetMFA(e.ctx, e.admin, u.ID); err != nil {
		t.Fatal(err)
	}
	e.mailTo(u.Email)
	if e.alive(tr.AccessToken) {
		t.Error("session survived the reset")
	}
	st, _ := e.svc.MFAStatus(e.ctx, self, u.ID)
	if st.TOTPEnabled {
		t.Error("factor survived the reset")
	}
	if _, err := e.svc.BeginTOTP(e.ctx, self, u.ID); err != nil {
		t.Errorf("re-enrollment after reset: %v", err)
	}
	_ = codes
	ev := e.auditEvents(identity.ActionMFAReset, "success", 1)[0]
	checkRequest(t, ev, "user", e.admin.UserID.String())
}

// TestMFACodeReplayOnSecondInstance: two identity services over one
// database, each with its own Redis connection (two `permiso serve`
// processes): a code accepted by one is refused by the other.
func TestMFACodeReplayOnSecondInstance(t *testing.T) {
	redisURL := os.Getenv("PERMISO_TEST_REDIS_URL")
	if redisURL == "" {
		if os.Getenv("PERMISO_TEST_REQUIRE_REDIS_SERVER") != "" {
			t.Fatal("PERMISO_TEST_REDIS_URL is not set")
		}
		t.Skip("PERMISO_TEST_REDIS_URL is not set")
	}
	e := newEnv(t)
	prefix := "permiso-test-mfa:" + rand.Text()[:12] + ":"
	instance := func() *identity.Service {
		c, err := redis.Open(redisURL, redis.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		svc := identity.New(identity.Config{Policy: policy, AppName: "permiso"}, identity.Deps{Store: e.db,
			Hasher: testwire.Hasher(), Sessions: e.auth, Lockout: e.auth, Now: e.clock.Now,
			MFA: identity.MFADeps{Store: e.db, Box: testwire.Box(t, 0x42), Once: redis.NewOnce(c, prefix), Issuer: "permiso"}})
		t.Cleanup(svc.Close)
		return svc
	}
	a, b := instance(), instance()
	u := e.register("dora", "dora@example.com", goodPassword)
	self := identity.Actor{UserID: u.ID, Request: testRequest}
	en, err := a.BeginTOTP(e.ctx, self, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	code := e.totpCode(en.Secret)
	if _, err := a.ConfirmTOTP(e.ctx, self, u.ID, code); err != nil {
		t.Fatal(err)
	}
	_, err = b.RegenerateRecoveryCodes(e.ctx, self, u.ID, code)
	wantCode(t, err, permiso.EINVALIDCODE, "the code replayed on the second instance")
	e.clock.Advance(30 * time.Second)
	if _, err := b.RegenerateRecoveryCodes(e.ctx, self, u.ID, e.totpCode(en.Secret)); err != nil {
		t.Fatalf("the next step's code on the second instance: %v", err)
	}
}

// TestMFADisableWrongCodesLockOut: docs/mfa.md, "Every check of a code runs
// as an attempt of the login lockout ... a wrong code is a failed attempt,
// enough of them lock the account", and the right password "does not reset
// the lockout's count (else the password alone would clear the failures of
// wrong codes, and whoever holds it could guess codes without end)". So
// DELETE /users/me/mfa/totp with the right password and wrong codes must
// lock the account like wrong codes anywhere else (3 attempts here).
func TestMFADisableWrongCodesLockOut(t *testing.T) {
	e := newEnv(t)
	self, u, secret, _ := e.enrollTOTP("dora")
	e.clock.Advance(30 * time.Second)
	locked := false
	for i := range 6 {
		err := e.svc.DisableTOTP(e.ctx, self, u.ID, goodPassword, "000000")
		if permiso.ErrorCode(err) == permiso.ELOCKED {
			locked = true
			t.Logf("locked after %d wrong codes", i)
			break
		}
		wantCode(t, err, permiso.EINVALIDCODE, "wrong code")
	}
	if !locked {
		t.Error("6 wrong codes at DisableTOTP (with the right password) never locked the account")
	}
	err := e.svc.DisableTOTP(e.ctx, self, u.ID, goodPassword, e.totpCode(secret))
	wantCode(t, err, permiso.ELOCKED, "right code after wrong ones")
}

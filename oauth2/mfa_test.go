package oauth2_test

import (
	"bytes"
	"crypto/sha1"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/testwire"
	"github.com/permiso/permiso/mfa"
	"github.com/permiso/permiso/oauth2"
)

// The second step of a password-grant sign-in (docs/mfa.md, "Sign-in").

const mfaMaxAttempts = 3

// mfaEnv is env with second factors wired: the store's factors and
// mfa_tokens, a box, an in-process OnceStore and lockout on the test
// clock (three failures lock for a minute).
type mfaEnv struct {
	*env
	box *mfa.Box
}

func newMFAEnv(t *testing.T, db permiso.Store, requiredRoles ...string) *mfaEnv {
	t.Helper()
	box := testwire.Box(t, 0x24)
	e := newEnvOn(t, db, func(cfg *oauth2.Config, deps *oauth2.Deps) {
		cfg.MFARequiredRoles = requiredRoles
		deps.Lockout = inprocess.NewLockout(mfaMaxAttempts, time.Minute, inprocess.WithNow(deps.Now))
		deps.MFA = oauth2.MFADeps{Store: db, Tokens: db, Box: box, Once: inprocess.NewOnce(inprocess.WithNow(deps.Now))}
	})
	return &mfaEnv{env: e, box: box}
}

// enroll gives u a confirmed TOTP factor and returns its secret and
// recovery codes.
func (e *mfaEnv) enroll(u permiso.User) ([]byte, []string) {
	e.t.Helper()
	secret, err := mfa.NewTOTPSecret()
	if err != nil {
		e.t.Fatal(err)
	}
	sealed, err := e.box.Seal(secret, mfa.AAD(u.ID.String(), mfa.KindTOTP))
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.db.PutPendingMFAFactor(e.ctx, permiso.MFAFactor{UserID: u.ID, Kind: string(mfa.KindTOTP), Secret: sealed, CreatedAt: e.clock.Now()}); err != nil {
		e.t.Fatal(err)
	}
	codes, err := mfa.NewRecoveryCodes(mfa.RecoveryCodeCount)
	if err != nil {
		e.t.Fatal(err)
	}
	hashes := make([]string, len(codes))
	for i, c := range codes {
		hashes[i] = mfa.HashRecoveryCode(u.ID.String(), c)
	}
	if _, err := e.db.ConfirmMFAFactor(e.ctx, u.ID, string(mfa.KindTOTP), e.clock.Now(), hashes); err != nil {
		e.t.Fatal(err)
	}
	return secret, codes
}

// otp is the code an authenticator app shows for secret now, stepped
// forward by step periods.
func (e *mfaEnv) otp(secret []byte, step int) string {
	return mfa.HOTP(sha1.New, secret, uint64(e.clock.Now().Unix()/30+int64(step)), 6)
}

// mfaToken runs a password grant that must answer code (mfa_required or
// mfa_enrollment_required) and returns its mfa_token.
func (e *mfaEnv) mfaToken(username, code, authorization string, extra ...string) string {
	e.t.Helper()
	f := formLogin(username, goodPassword)
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	_, err := e.token(f, authorization)
	oe := wantOAuth(e.t, err, code, 403)
	if oe == nil || len(oe.MFAToken) < 43 {
		e.t.Fatalf("no mfa_token of 256 bits in %+v", oe)
	}
	return oe.MFAToken
}

func mfaForm(token, param, code string) url.Values {
	return url.Values{"grant_type": {oauth2.GrantMFA}, "mfa_token": {token}, param: {code}}
}

// aliceMidSignIn: alice, with a factor, has given her password; it
// returns her secret, recovery codes and mfa_token.
func aliceMidSignIn(t *testing.T, db permiso.Store) (*mfaEnv, permiso.User, []byte, []string, string) {
	t.Helper()
	e := newMFAEnv(t, db)
	u := e.createUser("alice", goodPassword, permiso.RoleUser)
	secret, codes := e.enroll(u)
	return e, u, secret, codes, e.mfaToken("alice", "mfa_required", "")
}

// TestMFAPasswordGrant: a user with a confirmed factor gets 403
// mfa_required and an mfa_token instead of tokens; the mfa grant
// exchanges it with an otp or a recovery code for tokens with amr
// ["pwd","otp"] that a refresh keeps. A wrong code does not spend the
// token; a spent token, a replayed otp, a used recovery code are refused.
func TestMFAPasswordGrant(t *testing.T) {
	backends(t, func(t *testing.T, db permiso.Store) {
		e := newMFAEnv(t, db)
		u := e.createUser("alice", goodPassword, permiso.RoleUser)
		e.createUser("bob", goodPassword, permiso.RoleUser)
		secret, codes := e.enroll(u)

		// A wrong password looks the same for a user with a factor and
		// one without: no enumeration of who has one.
		_, errA := e.token(formLogin("alice", "Wrong-Horse-9-battery"), "")
		_, errB := e.token(formLogin("bob", "Wrong-Horse-9-battery"), "")
		a, b := wantOAuth(t, errA, "invalid_grant", 400), wantOAuth(t, errB, "invalid_grant", 400)
		if *a != *b || a.MFAToken != "" {
			t.Errorf("wrong password: %+v vs %+v", a, b)
		}
		if bob := e.login("bob", goodPassword, ""); !slices.Equal(e.mustAuthenticate(bob.AccessToken).Claims.AMR, []string{"pwd"}) {
			t.Error("bob's amr is not [pwd]")
		}

		// The right password: no tokens, no session, no LastLogin.
		tok := e.mfaToken("alice", "mfa_required", "")
		if sessions, _ := e.db.ListSessions(e.ctx, u.ID, false, e.clock.Now()); len(sessions) != 0 {
			t.Errorf("sessions after mfa_required: %d", len(sessions))
		}
		if cur, _ := e.db.GetUser(e.ctx, u.ID); cur.LastLogin != nil {
			t.Error("LastLogin set before the second factor")
		}

		// A wrong code is a failed attempt but does not spend the token.
		_, err := e.token(mfaForm(tok, "otp", e.otp(secret, 5)), "")
		wantOAuth(t, err, "invalid_grant", 400)
		code := e.otp(secret, 0)
		resp := e.mustToken(mfaForm(tok, "otp", code), "")
		if resp.RefreshToken == "" || resp.SessionID == "" || resp.Scope != "read:profile write:profile" {
			t.Fatalf("mfa grant response %+v", resp)
		}
		p := e.mustAuthenticate(resp.AccessToken)
		if !slices.Equal(p.Claims.AMR, []string{"pwd", "otp"}) || p.User.ID != u.ID {
			t.Errorf("amr %v, user %v", p.Claims.AMR, p.User.ID)
		}
		if cur, _ := e.db.GetUser(e.ctx, u.ID); cur.LastLogin == nil {
			t.Error("LastLogin not set after the second factor")
		}
		e.clock.Advance(time.Minute)
		refreshed, err := e.refresh(resp.RefreshToken, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if got := e.mustAuthenticate(refreshed.AccessToken).Claims.AMR; !slices.Equal(got, []string{"pwd", "otp"}) {
			t.Errorf("refreshed amr %v, want [pwd otp]", got)
		}

		// Spent: the token works once.
		_, err = e.token(mfaForm(tok, "otp", e.otp(secret, 0)), "")
		wantOAuth(t, err, "invalid_grant", 400)

		// A code is accepted once: replayed within its window with a new
		// token, it is refused.
		e.clock.Advance(time.Second)
		tok2 := e.mfaToken("alice", "mfa_required", "")
		_, err = e.token(mfaForm(tok2, "otp", code), "")
		wantOAuth(t, err, "invalid_grant", 400)

		// A recovery code, in any letter case and spacing, once.
		rc := strings.ToUpper(strings.ReplaceAll(codes[0], "-", " "))
		resp = e.mustToken(mfaForm(tok2, "recovery_code", rc), "")
		if got := e.mustAuthenticate(resp.AccessToken).Claims.AMR; !slices.Equal(got, []string{"pwd", "otp"}) {
			t.Errorf("recovery-code amr %v", got)
		}
		tok3 := e.mfaToken("alice", "mfa_required", "")
		_, err = e.token(mfaForm(tok3, "recovery_code", codes[0]), "")
		wantOAuth(t, err, "invalid_grant", 400)
		if n, _ := e.db.CountRecoveryCodes(e.ctx, u.ID); n != len(codes)-1 {
			t.Errorf("recovery codes left %d", n)
		}

		// Expiry: five minutes.
		e.clock.Advance(permiso.MFATokenLifetime)
		_, err = e.token(mfaForm(tok3, "recovery_code", codes[1]), "")
		wantOAuth(t, err, "invalid_grant", 400)

		// The audit says what happened, never a code or a token.
		if len(e.audit.find(oauth2.ActionMFARequired)) != 3 || len(e.audit.find(oauth2.ActionMFASuccess)) != 2 ||
			len(e.audit.find(oauth2.ActionMFAFailure)) < 4 {
			t.Errorf("audit: %d required, %d success, %d failure", len(e.audit.find(oauth2.ActionMFARequired)),
				len(e.audit.find(oauth2.ActionMFASuccess)), len(e.audit.find(oauth2.ActionMFAFailure)))
		}
		e.noSecretsInAudit(append([]string{tok, tok2, tok3, code, string(secret), mfa.EncodeSecret(secret)}, codes...)...)
	})
}

// noSecretsInAudit fails when an audit event holds one of the values.
func (e *mfaEnv) noSecretsInAudit(values ...string) {
	e.t.Helper()
	e.audit.mu.Lock()
	defer e.audit.mu.Unlock()
	raw, err := json.Marshal(e.audit.events)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, v := range values {
		if v != "" && bytes.Contains(raw, []byte(v)) {
			e.t.Errorf("the audit log holds a secret value")
		}
	}
}

// TestMFATokenBinding: the mfa_token is the password grant's client's:
// another client, or none, gets invalid_grant; the client authentication
// rules of the password grant apply (a wrong secret is invalid_client). A
// password change or a revoke-all after the password was checked, a
// disabled user and a removed factor end it.
func TestMFATokenBinding(t *testing.T) {
	backends(t, func(t *testing.T, db permiso.Store) {
		e := newMFAEnv(t, db)
		u := e.createUser("alice", goodPassword, permiso.RoleUser)
		secret, codes := e.enroll(u)
		_, s1 := e.createClient("app1", nil)
		_, s2 := e.createClient("app2", nil)

		tok := e.mfaToken("alice", "mfa_required", basic("app1", s1))
		_, err := e.token(mfaForm(tok, "otp", e.otp(secret, 0)), basic("app2", s2))
		wantOAuth(t, err, "invalid_grant", 400)
		_, err = e.token(mfaForm(tok, "recovery_code", codes[0]), "")
		wantOAuth(t, err, "invalid_grant", 400)
		_, err = e.token(mfaForm(tok, "recovery_code", codes[0]), basic("app1", "wrong-secret"))
		wantOAuth(t, err, "invalid_client", 401)
		resp := e.mustToken(mfaForm(tok, "recovery_code", codes[0]), basic("app1", s1))
		if c := e.mustAuthenticate(resp.AccessToken).Claims; c.ClientID != "app1" {
			t.Errorf("client_id %q", c.ClientID)
		}
		// A first-party token is not a client's.
		first := e.mfaToken("alice", "mfa_required", "")
		_, err = e.token(mfaForm(first, "recovery_code", codes[1]), basic("app1", s1))
		wantOAuth(t, err, "invalid_grant", 400)

		for _, tt := range []struct {
			name   string
			change func(*permiso.User)
		}{
			{"password change", func(x *permiso.User) { x.PasswordChangedAt = e.clock.Now() }},
			{"revoke-all", func(x *permiso.User) { now := e.clock.Now(); x.TokensRevokedBefore = &now }},
			{"disabled", func(x *permiso.User) { x.IsActive = false }},
		} {
			tok := e.mfaToken("alice", "mfa_required", "")
			e.clock.Advance(time.Second)
			e.updateUser(u.ID, func(x *permiso.User) { tt.change(x) })
			_, err := e.token(mfaForm(tok, "recovery_code", codes[2]), "")
			wantOAuth(t, err, "invalid_grant", 400)
			e.updateUser(u.ID, func(x *permiso.User) { x.IsActive = true })
			e.clock.Advance(time.Second)
		}
		if n, _ := e.db.CountRecoveryCodes(e.ctx, u.ID); n != len(codes)-1 {
			t.Errorf("a refused token spent a recovery code: %d left", n)
		}

		// A factor removed (an administrator's reset) ends the pending
		// token; the next sign-in needs none.
		tok = e.mfaToken("alice", "mfa_required", "")
		if _, err := e.db.DeleteUserMFA(e.ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		_, err = e.token(mfaForm(tok, "recovery_code", codes[3]), "")
		wantOAuth(t, err, "invalid_grant", 400)
		if resp := e.login("alice", goodPassword, ""); !slices.Equal(e.mustAuthenticate(resp.AccessToken).Claims.AMR, []string{"pwd"}) {
			t.Error("sign-in after the reset does not carry amr [pwd]")
		}
	})
}

// TestMFAWrongCodesLockOut: wrong codes are failed attempts of the login
// lockout; the third locks the account (423 account_locked for the
// password), and ends every mfa_token issued before it: one does not work
// during the lock nor after it ends. A right password does not reset the
// count of wrong codes.
func TestMFAWrongCodesLockOut(t *testing.T) {
	backends(t, func(t *testing.T, db permiso.Store) {
		e, _, secret, _, tok := aliceMidSignIn(t, db)
		for range mfaMaxAttempts - 1 {
			_, err := e.token(mfaForm(tok, "otp", "000000"), "")
			wantOAuth(t, err, "invalid_grant", 400)
			// Another right password does not clear the failures.
			e.mfaToken("alice", "mfa_required", "")
		}
		_, err := e.token(mfaForm(tok, "otp", "000001"), "")
		wantOAuth(t, err, "invalid_grant", 400)
		// The lock ended the token at once; the password is refused
		// with the lock.
		_, err = e.token(mfaForm(tok, "otp", e.otp(secret, 0)), "")
		wantOAuth(t, err, "invalid_grant", 400)
		_, err = e.token(formLogin("alice", goodPassword), "")
		if oe := wantOAuth(t, err, "account_locked", 423); oe != nil && oe.LockedUntil == nil {
			t.Error("no locked_until")
		}
		e.clock.Advance(time.Minute + time.Second)
		_, err = e.token(mfaForm(tok, "otp", e.otp(secret, 0)), "")
		wantOAuth(t, err, "invalid_grant", 400)
		// A fresh sign-in works, and resets the count.
		fresh := e.mfaToken("alice", "mfa_required", "")
		e.mustToken(mfaForm(fresh, "otp", e.otp(secret, 0)), "")
	})
}

// TestMFAConcurrentExchange: of concurrent exchanges of one mfa_token,
// each with a valid recovery code of its own, exactly one gets tokens.
func TestMFAConcurrentExchange(t *testing.T) {
	backends(t, func(t *testing.T, db permiso.Store) {
		e, u, _, codes, tok := aliceMidSignIn(t, db)
		const n = 5
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = e.token(mfaForm(tok, "recovery_code", codes[i]), "")
			}()
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			if err == nil {
				wins++
				continue
			}
			// A loser may also be turned away by the lockout's bound on
			// checks in flight; never does it get tokens.
			if oe := oauth2.AsError(err); oe.Code != "invalid_grant" && oe.Code != "too_many_attempts" {
				t.Errorf("loser: %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d exchanges succeeded, want exactly 1: %v", wins, errs)
		}
		sessions, _ := e.db.ListSessions(e.ctx, u.ID, true, e.clock.Now())
		if len(sessions) != 1 {
			t.Errorf("%d sessions, want 1", len(sessions))
		}
		// Only the winner's recovery code is spent: a refused exchange is
		// not a use (docs/mfa.md, "Sign-in").
		for i, err := range errs {
			usable, uerr := e.db.RecoveryCodeUsable(e.ctx, u.ID, mfa.HashRecoveryCode(u.ID.String(), codes[i]))
			if uerr != nil || usable != (err != nil) {
				t.Errorf("code %d (exchange error %v): usable %v, %v", i, err, usable, uerr)
			}
		}
		left, _ := e.db.CountRecoveryCodes(e.ctx, u.ID)
		if left != len(codes)-1 {
			t.Errorf("%d recovery codes left, want %d", left, len(codes)-1)
		}
	})
}

// TestMFARequiredByRole: a holder of a role of MFA_REQUIRED_ROLES without
// a factor gets 403 mfa_enrollment_required; its mfa_token is exchanged
// only after an enrollment. A user outside those roles signs in as before.
func TestMFARequiredByRole(t *testing.T) {
	backends(t, func(t *testing.T, db permiso.Store) {
		e := newMFAEnv(t, db, permiso.RoleAdmin)
		adm := e.createUser("root", goodPassword, permiso.RoleUser, permiso.RoleAdmin)
		e.createUser("alice", goodPassword, permiso.RoleUser)
		e.login("alice", goodPassword, "")
		if st, err := e.svc.SecondFactor(e.ctx, adm); err != nil || !st.Required || st.Enrolled {
			t.Fatalf("SecondFactor = %+v, %v", st, err)
		}
		tok := e.mfaToken("root", "mfa_enrollment_required", "")
		_, err := e.token(mfaForm(tok, "otp", "123456"), "")
		wantOAuth(t, err, "invalid_grant", 400)
		secret, _ := e.enroll(adm)
		resp := e.mustToken(mfaForm(tok, "otp", e.otp(secret, 0)), "")
		if got := e.mustAuthenticate(resp.AccessToken).Claims.AMR; !slices.Equal(got, []string{"pwd", "otp"}) {
			t.Errorf("amr %v", got)
		}
		stored, err := e.db.GetMFAToken(e.ctx, permiso.HashToken(tok))
		if err != nil || !stored.Enroll || stored.UserID != adm.ID {
			t.Errorf("stored token %+v, %v", stored, err)
		}
		// Now enrolled: the next sign-in asks for a code.
		e.clock.Advance(time.Minute)
		e.mfaToken("root", "mfa_required", "")
	})
}

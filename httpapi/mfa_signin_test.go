package httpapi

import (
	"crypto/sha1"
	"encoding/base32"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/mfa"
	"github.com/permiso/permiso/oauth2"
)

// mfaRequiredRole is the MFA_REQUIRED_ROLES of the identity test
// environment (newIDEnv); no role has it until a test creates it.
const mfaRequiredRole = "mfa-required"

// totpAt is the code of a base32 secret step periods from now.
func totpAt(t *testing.T, secret string, step int64) string {
	t.Helper()
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return mfa.HOTP(sha1.New, raw, uint64(time.Now().Unix()/30+step), 6)
}

// postToken sends a form to the token endpoint.
func (e *idEnv) postToken(form url.Values) (*httptest.ResponseRecorder, map[string]any) {
	e.t.Helper()
	w := serve(e.h, formRequest("/api/v1/auth/token", form))
	body := map[string]any{}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		e.t.Fatalf("token endpoint answered %d %q", w.Code, w.Body)
	}
	return w, body
}

// TestMFAEnrollmentAtSignIn: a holder of a role of MFA_REQUIRED_ROLES
// without a factor gets 403 mfa_enrollment_required from the password
// grant; its mfa_token is a bearer on the three enrollment routes and on
// no other route; after the enrollment, the mfa grant exchanges it with a
// fresh code (the confirmation's code is spent: one OnceStore) for tokens
// with amr ["pwd","otp"]; spent, it is a bearer nowhere.
func TestMFAEnrollmentAtSignIn(t *testing.T) {
	const me = "/api/v1/users/me/mfa"
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		r, err := e.db.CreateRole(e.ctx, permiso.Role{Name: mfaRequiredRole}, nil)
		if err != nil {
			t.Fatal(err)
		}
		e.rolesMu.Lock()
		e.roles[r.Name] = r
		e.rolesMu.Unlock()
		u := e.user("enr", false, "user", mfaRequiredRole)
		plain := e.user("plain", false, "user")
		e.login(plain.Username, idPassword, "") // outside the roles: as before

		w, body := e.postToken(url.Values{"grant_type": {"password"}, "username": {u.Username}, "password": {idPassword}})
		tok, _ := body["mfa_token"].(string)
		if w.Code != 403 || body["error"] != "mfa_enrollment_required" || len(tok) < 43 || w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("password grant: %d %v", w.Code, body)
		}

		// No other route takes the mfa_token as a bearer.
		guarded := 0
		for _, rt := range e.srv.routes {
			if rt.Access.public || rt.Access.mfaEnrollment {
				continue
			}
			guarded++
			method, path, _ := strings.Cut(rt.Pattern, " ")
			path = strings.NewReplacer("{user_id}", u.ID.String(), "{role_id}", r.ID.String(),
				"{client_id}", u.ID.String(), "{scope_id}", u.ID.String(), "{session_id}", u.ID.String(),
				"{id}", u.ID.String(), "{kid}", "k1", "{name}", "x").Replace(path)
			w := e.do(method, "", path, tok, nil)
			if w.Code != http.StatusUnauthorized {
				t.Errorf("%s with the mfa_token: %d %s", rt.Pattern, w.Code, w.Body)
			}
		}
		if guarded < 20 {
			t.Fatalf("only %d guarded routes tried", guarded)
		}

		st := e.expect(e.do("GET", me, me, tok, nil), 200, "status with the mfa_token")
		if st["required"] != true || st["totp"].(map[string]any)["enabled"] != false {
			t.Fatalf("status: %v", st)
		}
		en := e.expect(e.do("POST", me+"/totp", me+"/totp", tok, nil), 201, "enroll with the mfa_token")
		secret := en["secret"].(string)
		code := totpAt(t, secret, 0)
		e.expect(e.do("POST", me+"/totp/confirm", me+"/totp/confirm", tok, map[string]any{"code": code}), 200, "confirm")

		// The confirmation's code is spent for sign-in too.
		mfaGrant := url.Values{"grant_type": {oauth2.GrantMFA}, "mfa_token": {tok}, "otp": {code}}
		if w, body := e.postToken(mfaGrant); w.Code != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("replayed confirmation code: %d %v", w.Code, body)
		}
		// The next step's code is accepted (one step of drift).
		mfaGrant.Set("otp", totpAt(t, secret, 1))
		w, body = e.postToken(mfaGrant)
		if w.Code != 200 || body["refresh_token"] == nil {
			t.Fatalf("mfa grant: %d %v", w.Code, body)
		}
		p, err := e.auth.Authenticate(e.ctx, body["access_token"].(string), nil)
		if err != nil || !slices.Equal(p.Claims.AMR, []string{"pwd", "otp"}) {
			t.Fatalf("access token: %v, amr %v", err, p.Claims.AMR)
		}
		// Spent: a bearer nowhere, exchanged never again.
		if w := e.do("GET", me, me, tok, nil); w.Code != http.StatusUnauthorized {
			t.Errorf("spent mfa_token as bearer: %d", w.Code)
		}
		e.auditEvent(oauth2.ActionMFARequired, u.ID.String(), "success")
		e.auditEvent(oauth2.ActionMFASuccess, u.ID.String(), "success")
	})
}

// TestMFAGrantCountsAsLogin: the mfa grant counts under the per-address
// limit of the password grant (RATE_LIMIT_LOGIN, docs/mfa.md), not under
// the refresh or service-token limits.
func TestMFAGrantCountsAsLogin(t *testing.T) {
	if got := grantLimit(oauth2.GrantMFA); got != grantLimit(oauth2.GrantPassword) || got != limitLogin {
		t.Fatalf("grantLimit(mfa) = %v, want the password grant's %v", got, limitLogin)
	}
}

package httpapi

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testjwt"
	"github.com/permiso/permiso/internal/testwire"
	"github.com/permiso/permiso/mfa"
	"github.com/permiso/permiso/oauth2"
	"github.com/permiso/permiso/redis"
)

// The second step of the hosted sign-in (docs/oidc.md, "Second factor"),
// on SQLite with in-process shared state and on PostgreSQL with Redis
// (the once-store and the lockout shared by instances).

const (
	mfaPagesPassword = "Correct-Horse-9-battery"
	mfaLockAfter     = 3
)

type mfaPagesEnv struct {
	t     *testing.T
	db    permiso.Store
	auth  *oauth2.Service
	ident *identity.Service
	base  string
	hash  string
	roles map[string]permiso.Role
}

// mfaBrowser is one browser: its own cookie jar.
type mfaBrowser struct {
	e      *mfaPagesEnv
	client *http.Client
}

type mfaBackend struct {
	name  string
	store func(t *testing.T) permiso.Store
	redis bool
}

func mfaBackends() []mfaBackend {
	bs := []mfaBackend{{name: "sqlite", store: func(t *testing.T) permiso.Store { return testdb.SQLite(t) }}}
	if testdb.HasPostgres() && testdb.HasRedis() {
		bs = append(bs, mfaBackend{name: "postgres+redis", redis: true,
			store: func(t *testing.T) permiso.Store { return testdb.Postgres(t, "httpapi") }})
	}
	return bs
}

func newMFAPagesEnv(t *testing.T, b mfaBackend) *mfaPagesEnv {
	t.Helper()
	ctx := t.Context()
	db := b.store(t)
	var once permiso.OnceStore = inprocess.NewOnce()
	var lockout permiso.Lockout = inprocess.NewLockout(mfaLockAfter, 30*time.Minute)
	if b.redis {
		rc, err := redis.Open(testdb.RedisURL(t), redis.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rc.Close() }) // after the keys are deleted
		prefix := redisTestPrefix(t, rc, "mfapages")
		once = redis.NewOnce(rc, prefix)
		lockout = redis.NewLockout(rc, prefix, mfaLockAfter, 30*time.Minute)
	}
	w := newWired(t, wiring{db: db, once: once, mfaSignIn: true,
		auth:     oauth2.Config{OIDCIssuer: testIssuer, PasswordPolicy: idPolicy, MFARequiredRoles: []string{mfaRequiredRole}},
		authDeps: oauth2.Deps{Lockout: lockout},
		ident:    identity.Config{Policy: idPolicy},
	})
	srv := httptest.NewTLSServer(w.h)
	t.Cleanup(srv.Close)
	e := &mfaPagesEnv{t: t, db: db, auth: w.auth, ident: w.ident, base: srv.URL, roles: map[string]permiso.Role{}}
	pagesClient(t, db, "rp", true)
	hash := testwire.Hash(t, w.hasher, mfaPagesPassword)
	e.hash = hash
	r, err := db.CreateRole(ctx, permiso.Role{Name: mfaRequiredRole}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.roles[mfaRequiredRole] = r
	return e
}

func (e *mfaPagesEnv) user(name string, roles ...string) permiso.User {
	e.t.Helper()
	var rs []permiso.Role
	for _, r := range roles {
		rs = append(rs, e.roles[r])
	}
	return activeUser(e.t, e.db, name, e.hash, false, rs...)
}

// enroll gives u a confirmed TOTP factor through the identity service and
// returns its secret and recovery codes. The code of the previous step
// confirms it, so that the current and the next step stay unused.
func (e *mfaPagesEnv) enroll(u permiso.User) (string, []string) {
	e.t.Helper()
	actor := identity.Actor{UserID: u.ID}
	enr, err := e.ident.BeginTOTP(e.t.Context(), actor, u.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	codes, err := e.ident.ConfirmTOTP(e.t.Context(), actor, u.ID, totpAt(e.t, enr.Secret, -1))
	if err != nil {
		e.t.Fatal(err)
	}
	return enr.Secret, codes
}

// onMFABackends runs f in a parallel subtest on each backend.
func onMFABackends(t *testing.T, f func(t *testing.T, e *mfaPagesEnv)) {
	for _, be := range mfaBackends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			f(t, newMFAPagesEnv(t, be))
		})
	}
}

// atCodePage makes an enrolled user and a browser that signed in with the
// password, at the code page.
func (e *mfaPagesEnv) atCodePage(name string) (permiso.User, string, []string, *mfaBrowser, pageAnswer) {
	e.t.Helper()
	u := e.user(name)
	secret, codes := e.enroll(u)
	b := e.browser()
	page := b.signIn(name, mfaPagesPassword, mfaAuthorizeQuery())
	if page.status != http.StatusOK || !strings.Contains(page.body, codePageMark) {
		e.t.Fatalf("after the password: %d, want the code page\n%.800s", page.status, page.body)
	}
	return u, secret, codes, b, page
}

func (e *mfaPagesEnv) browser() *mfaBrowser {
	jar, _ := cookiejar.New(nil)
	return &mfaBrowser{e: e, client: &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *mfaBrowser) do(method, path string, form url.Values) pageAnswer {
	b.e.t.Helper()
	p := &pagesEnv{t: b.e.t, client: b.client, base: b.e.base}
	return p.do(method, path, form)
}

// cookie returns the browser's cookie of this name ("" when none).
func (b *mfaBrowser) cookie(name string) string {
	u, _ := url.Parse(b.e.base)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == hostPrefix+name {
			return c.Value
		}
	}
	return ""
}

// setCookie puts a cookie back into the browser (a replay).
func (b *mfaBrowser) setCookie(name, value string) {
	u, _ := url.Parse(b.e.base)
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: hostPrefix + name, Value: value, Path: "/", Secure: true}})
}

func mfaAuthorizeQuery(extra ...string) url.Values {
	q := url.Values{"client_id": {"rp"}, "redirect_uri": {pagesRedirect}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"s1"}, "nonce": {"n1"}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return q
}

// signIn opens the authorization request and posts the password.
func (b *mfaBrowser) signIn(username, password string, q url.Values) pageAnswer {
	b.e.t.Helper()
	page := b.do(http.MethodGet, "/api/v1/oauth2/authorize?"+q.Encode(), nil)
	if page.status != http.StatusOK || !strings.Contains(page.body, `name="password"`) {
		b.e.t.Fatalf("authorize: %d\n%.600s", page.status, page.body)
	}
	form := page.hidden()
	form.Set("username", username)
	form.Set("password", password)
	return b.do(http.MethodPost, "/api/v1/oauth2/authorize", form)
}

const (
	codePageMark   = `autocomplete="one-time-code"`
	enrollPageMark = `id="totp-secret"`
	signInPageMark = `name="password"`
)

// codeForm is the code page's form with a code (field code or
// recovery_code).
func codeForm(page pageAnswer, field, code string) url.Values {
	f := page.hidden()
	// Both forms of the page carry the same hidden fields.
	for k, v := range f {
		f[k] = v[:1]
	}
	f.Set(field, code)
	return f
}

// redirected returns the code of a redirect to the client.
func redirected(t *testing.T, a pageAnswer, what string) string {
	t.Helper()
	loc, _ := url.Parse(a.header.Get("Location"))
	if a.status != http.StatusSeeOther || loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("%s: %d to %q, want the code\n%.800s", what, a.status, a.header.Get("Location"), a.body)
	}
	return loc.Query().Get("code")
}

// exchange redeems a code and returns the ID token's and the access
// token's claims.
func (e *mfaPagesEnv) exchange(code string) (idClaims, accessClaims map[string]any) {
	e.t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {pagesRedirect},
		"client_id": {"rp"}, "client_secret": {"rp-secret"}}
	b := e.browser()
	a := b.do(http.MethodPost, "/api/v1/auth/token", form)
	var tr struct {
		AccessToken string `json:"access_token"`
		IDToken     string `json:"id_token"`
	}
	if a.status != http.StatusOK || json.Unmarshal([]byte(a.body), &tr) != nil {
		e.t.Fatalf("code exchange: %d %s", a.status, a.body)
	}
	return jwtPayload(e.t, tr.IDToken), jwtPayload(e.t, tr.AccessToken)
}

func jwtPayload(t *testing.T, tok string) map[string]any {
	t.Helper()
	var m map[string]any
	testjwt.Decode(t, tok, testjwt.Payload, &m)
	return m
}

func amrOf(claims map[string]any) []string {
	var out []string
	if list, ok := claims["amr"].([]any); ok {
		for _, v := range list {
			out = append(out, fmt.Sprint(v))
		}
	}
	return out
}

func wantAMR(t *testing.T, what string, claims map[string]any, amr []string, acr string) {
	t.Helper()
	if got := amrOf(claims); !slices.Equal(got, amr) {
		t.Errorf("%s: amr %v, want %v", what, got, amr)
	}
	if acr != "" && claims["acr"] != acr {
		t.Errorf("%s: acr %v, want %s", what, claims["acr"], acr)
	}
}

func hasSessionCookie(a pageAnswer) bool {
	for _, c := range a.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, hostPrefix+sessionCookie+"=") && !strings.Contains(c, "Max-Age=0") {
			return true
		}
	}
	return false
}

var pendingCookieRE = regexp.MustCompile(`^__Host-permiso_mfa=[^;]+;.*Max-Age=300;.*HttpOnly; Secure; SameSite=Lax`)

// TestHostedSecondFactorCodePage: after a right password, a user with a
// confirmed factor gets the code page and no session (another GET of
// /authorize asks for the password again); the pending sign-in is bound to
// the browser's CSRF token and to the request; a wrong code is refused
// with one message; the right code signs in with amr pwd+otp (ID and
// access token, acr urn:permiso:acr:mfa); the spent pending sign-in and the
// used code cannot be replayed, in this browser or another.
func TestHostedSecondFactorCodePage(t *testing.T) {
	onMFABackends(t, func(t *testing.T, e *mfaPagesEnv) {
		_, secret, _, b, page := e.atCodePage("ada")
		if page.status != http.StatusOK || !strings.Contains(page.body, codePageMark) || !strings.Contains(page.body, `name="recovery_code"`) {
			t.Fatalf("after the password: %d, want the code page\n%.800s", page.status, page.body)
		}
		if hasSessionCookie(page) {
			t.Fatal("a session cookie before the second step")
		}
		var pending string
		for _, c := range page.header.Values("Set-Cookie") {
			if strings.HasPrefix(c, hostPrefix+pendingCookie+"=") {
				pending = c
			}
		}
		if !pendingCookieRE.MatchString(pending) {
			t.Errorf("pending cookie %q", pending)
		}
		// Not a session: /authorize asks for the password again.
		if again := b.do(http.MethodGet, "/api/v1/oauth2/authorize?"+mfaAuthorizeQuery().Encode(), nil); again.status != http.StatusOK ||
			!strings.Contains(again.body, signInPageMark) || again.header.Get("Location") != "" {
			t.Fatalf("authorize during the second step: %d %q, want the sign-in page", again.status, again.header.Get("Location"))
		}

		// CSRF: the form without its token, or with another.
		noCSRF := codeForm(page, "code", totpAt(t, secret, 0))
		noCSRF.Del(csrfField)
		if a := b.do(http.MethodPost, "/api/v1/oauth2/mfa", noCSRF); a.status != http.StatusForbidden {
			t.Errorf("without the CSRF token: %d, want 403", a.status)
		}
		// Bound to the request: another state is another request.
		other := codeForm(page, "code", totpAt(t, secret, 0))
		other.Set("state", "s2")
		if a := b.do(http.MethodPost, "/api/v1/oauth2/mfa", other); a.status != http.StatusBadRequest || !strings.Contains(a.body, signInPageMark) {
			t.Errorf("for another request: %d, want the sign-in page\n%.400s", a.status, a.body)
		}
		// The pending cookie was cleared: sign in again.
		page = b.signIn("ada", mfaPagesPassword, mfaAuthorizeQuery())
		// Bound to the browser: another browser with the cookie and the
		// form, but its own CSRF token, is refused.
		thief := e.browser()
		thief.do(http.MethodGet, "/api/v1/oauth2/authorize?"+mfaAuthorizeQuery().Encode(), nil)
		thief.setCookie(pendingCookie, b.cookie(pendingCookie))
		stolen := codeForm(page, "code", totpAt(t, secret, 0))
		stolen.Set(csrfField, thief.cookie(csrfCookie))
		if a := thief.do(http.MethodPost, "/api/v1/oauth2/mfa", stolen); a.status != http.StatusBadRequest || hasSessionCookie(a) {
			t.Errorf("the pending cookie in another browser: %d, want the sign-in page", a.status)
		}

		wrong := "000000"
		if wrong == totpAt(t, secret, 0) || wrong == totpAt(t, secret, 1) || wrong == totpAt(t, secret, -1) {
			wrong = "999999"
		}
		bad := b.do(http.MethodPost, "/api/v1/oauth2/mfa", codeForm(page, "code", wrong))
		if bad.status != http.StatusUnauthorized || !strings.Contains(bad.body, "That code is not valid") || !strings.Contains(bad.body, codePageMark) ||
			strings.Contains(bad.body, wrong) {
			t.Fatalf("a wrong code: %d\n%.600s", bad.status, bad.body)
		}
		held := b.cookie(pendingCookie)
		good := codeForm(bad, "code", totpAt(t, secret, 0))
		done := b.do(http.MethodPost, "/api/v1/oauth2/mfa", good)
		code := redirected(t, done, "the right code")
		if !hasSessionCookie(done) || b.cookie(pendingCookie) != "" {
			t.Errorf("after the second step: session cookie %v, pending cookie %q", hasSessionCookie(done), b.cookie(pendingCookie))
		}
		idc, atc := e.exchange(code)
		wantAMR(t, "ID token", idc, []string{"pwd", "otp"}, oauth2.ACRMFA)
		wantAMR(t, "access token", atc, []string{"pwd", "otp"}, "")

		// The session now serves /authorize without a page.
		redirected(t, b.do(http.MethodGet, "/api/v1/oauth2/authorize?"+mfaAuthorizeQuery().Encode(), nil), "signed in")

		// Replays: the spent pending sign-in with a fresh code, and the
		// used code in a new pending sign-in of another browser.
		b2 := e.browser()
		b2.do(http.MethodGet, "/api/v1/oauth2/authorize?"+mfaAuthorizeQuery().Encode(), nil)
		b.setCookie(pendingCookie, held)
		if a := b.do(http.MethodPost, "/api/v1/oauth2/mfa", codeForm(bad, "code", totpAt(t, secret, 1))); a.status != http.StatusBadRequest || hasSessionCookie(a) {
			t.Errorf("the spent pending sign-in again: %d, want the sign-in page", a.status)
		}
		page2 := b2.signIn("ada", mfaPagesPassword, mfaAuthorizeQuery())
		if a := b2.do(http.MethodPost, "/api/v1/oauth2/mfa", codeForm(page2, "code", totpAt(t, secret, 0))); a.status != http.StatusUnauthorized || hasSessionCookie(a) {
			t.Errorf("the used code again: %d, want 401", a.status)
		}
	})
}

// TestHostedSecondFactorRecoveryCode: a recovery code signs in once
// (amr pwd+otp); the same code a second time is a wrong code.
func TestHostedSecondFactorRecoveryCode(t *testing.T) {
	onMFABackends(t, func(t *testing.T, e *mfaPagesEnv) {
		u, _, codes, b, page := e.atCodePage("bea")
		done := b.do(http.MethodPost, "/api/v1/oauth2/mfa", codeForm(page, "recovery_code", strings.ToUpper(codes[3])))
		idc, _ := e.exchange(redirected(t, done, "a recovery code"))
		wantAMR(t, "ID token", idc, []string{"pwd", "otp"}, oauth2.ACRMFA)
		if n, err := e.db.CountRecoveryCodes(t.Context(), u.ID); err != nil || n != mfa.RecoveryCodeCount-1 {
			t.Errorf("recovery codes left %d (%v)", n, err)
		}
		b2 := e.browser()
		page = b2.signIn("bea", mfaPagesPassword, mfaAuthorizeQuery())
		if a := b2.do(http.MethodPost, "/api/v1/oauth2/mfa", codeForm(page, "recovery_code", codes[3])); a.status != http.StatusUnauthorized || hasSessionCookie(a) {
			t.Errorf("a spent recovery code: %d, want 401", a.status)
		}
	})
}

// TestHostedSecondFactorLockout: wrong codes are failed attempts of the
// login lockout: they lock the account, the pending sign-in dies with it
// (the right code is then refused), and the password no longer signs in.
// A password change kills a pending sign-in too.
func TestHostedSecondFactorLockout(t *testing.T) {
	onMFABackends(t, func(t *testing.T, e *mfaPagesEnv) {
		_, secret, _, b, page := e.atCodePage("cyd")
		valid := map[string]bool{totpAt(t, secret, -1): true, totpAt(t, secret, 0): true, totpAt(t, secret, 1): true}
		var last pageAnswer
		n := 0
		for c := 100000; n < mfaLockAfter; c++ {
			wrong := fmt.Sprintf("%06d", c)
			if valid[wrong] {
				continue
			}
			n++
			last = b.do(http.MethodPost, "/api/v1/oauth2/mfa", codeForm(page, "code", wrong))
		}
		if last.status != http.StatusUnauthorized {
			t.Fatalf("the wrong code that locks: %d", last.status)
		}
		held := b.cookie(pendingCookie)
		locked := b.do(http.MethodPost, "/api/v1/oauth2/mfa", codeForm(page, "code", totpAt(t, secret, 0)))
		if locked.status != http.StatusLocked || !strings.Contains(locked.body, "Too many failed sign-ins") ||
			!strings.Contains(locked.body, signInPageMark) || hasSessionCookie(locked) {
			t.Fatalf("the right code while locked: %d\n%.600s", locked.status, locked.body)
		}
		// The pending sign-in died with the lockout: once unlocked, the
		// right code still does not sign in.
		if err := e.auth.Unlock(t.Context(), "cyd"); err != nil {
			t.Fatal(err)
		}
		b.setCookie(pendingCookie, held)
		if a := b.do(http.MethodPost, "/api/v1/oauth2/mfa", codeForm(page, "code", totpAt(t, secret, 1))); a.status != http.StatusBadRequest || hasSessionCookie(a) {
			t.Fatalf("the pending sign-in after the lockout: %d, want the sign-in page", a.status)
		}
		for i := 0; i < mfaLockAfter; i++ {
			e.browser().signIn("cyd", "Wrong-Horse-9-battery", mfaAuthorizeQuery())
		}
		if a := e.browser().signIn("cyd", mfaPagesPassword, mfaAuthorizeQuery()); a.status != http.StatusLocked || strings.Contains(a.body, codePageMark) {
			t.Errorf("the password while locked: %d, want 423 without the code page", a.status)
		}

		// A password change between the steps.
		v := e.user("dee")
		vs, _ := e.enroll(v)
		b = e.browser()
		page = b.signIn("dee", mfaPagesPassword, mfaAuthorizeQuery())
		if err := e.db.ChangePassword(t.Context(), v.ID, e.hash+"x", time.Now().UTC(), 0); err != nil {
			t.Fatal(err)
		}
		if a := b.do(http.MethodPost, "/api/v1/oauth2/mfa", codeForm(page, "code", totpAt(t, vs, 0))); a.status != http.StatusBadRequest || hasSessionCookie(a) {
			t.Errorf("after a password change: %d, want the sign-in page", a.status)
		}
	})
}

// TestHostedSecondFactorNoEnumeration: before the password is verified
// nothing differs between a user with a factor and one without: the same
// sign-in page, the same answer to a wrong password.
func TestHostedSecondFactorNoEnumeration(t *testing.T) {
	e := newMFAPagesEnv(t, mfaBackends()[0])
	e.enroll(e.user("eve"))
	e.user("fay")
	norm := func(a pageAnswer, name string) string {
		return regexp.MustCompile(`value="[A-Za-z0-9_-]{43}"`).ReplaceAllString(strings.ReplaceAll(a.body, name, "NAME"), "")
	}
	var bodies []string
	var statuses []int
	for _, name := range []string{"eve", "fay"} {
		a := e.browser().signIn(name, "Wrong-Horse-9-battery", mfaAuthorizeQuery())
		bodies = append(bodies, norm(a, name))
		statuses = append(statuses, a.status)
	}
	if statuses[0] != statuses[1] || statuses[0] != http.StatusUnauthorized || bodies[0] != bodies[1] {
		t.Errorf("a wrong password: %v, the pages differ: %v", statuses, bodies[0] != bodies[1])
	}
}

// TestHostedSecondFactorStepUp: acr_values=urn:permiso:acr:mfa forces the
// second step on a session signed in with a password alone (the code
// page, then amr pwd+otp and acr urn:permiso:acr:mfa); with prompt=none it
// is login_required; a user without a factor is led through enrollment.
// Without acr_values the password session gives amr pwd.
func TestHostedSecondFactorStepUp(t *testing.T) {
	onMFABackends(t, func(t *testing.T, e *mfaPagesEnv) {
		u := e.user("gus")
		b := e.browser()
		idc, atc := e.exchange(redirected(t, b.signIn("gus", mfaPagesPassword, mfaAuthorizeQuery()), "password only"))
		wantAMR(t, "password ID token", idc, []string{"pwd"}, oauth2.ACRPassword)
		wantAMR(t, "password access token", atc, []string{"pwd"}, "")

		// No factor yet: acr_values leads to enrollment.
		mfaQ := mfaAuthorizeQuery("acr_values", oauth2.ACRMFA+" urn:example:other")
		enrollPage := b.do(http.MethodGet, "/api/v1/oauth2/authorize?"+mfaQ.Encode(), nil)
		if enrollPage.status != http.StatusOK || !strings.Contains(enrollPage.body, enrollPageMark) {
			t.Fatalf("step-up without a factor: %d, want the enrollment page\n%.600s", enrollPage.status, enrollPage.body)
		}
		none := mfaAuthorizeQuery("acr_values", oauth2.ACRMFA, "prompt", "none")
		if a := b.do(http.MethodGet, "/api/v1/oauth2/authorize?"+none.Encode(), nil); a.status != http.StatusSeeOther ||
			!strings.Contains(a.header.Get("Location"), "error=login_required") {
			t.Errorf("step-up with prompt=none: %d %q", a.status, a.header.Get("Location"))
		}

		// With a factor: the code page.
		secret, _ := e.enroll(u)
		page := b.do(http.MethodGet, "/api/v1/oauth2/authorize?"+mfaQ.Encode(), nil)
		if page.status != http.StatusOK || !strings.Contains(page.body, codePageMark) {
			t.Fatalf("step-up: %d, want the code page\n%.600s", page.status, page.body)
		}
		done := b.do(http.MethodPost, "/api/v1/oauth2/mfa", codeForm(page, "code", totpAt(t, secret, 0)))
		idc, atc = e.exchange(redirected(t, done, "step-up"))
		wantAMR(t, "step-up ID token", idc, []string{"pwd", "otp"}, oauth2.ACRMFA)
		wantAMR(t, "step-up access token", atc, []string{"pwd", "otp"}, "")
		// The stepped-up session satisfies the next request at once.
		redirected(t, b.do(http.MethodGet, "/api/v1/oauth2/authorize?"+mfaQ.Encode(), nil), "after the step-up")

		var md map[string]any
		a := b.do(http.MethodGet, "/.well-known/openid-configuration", nil)
		if json.Unmarshal([]byte(a.body), &md) != nil || fmt.Sprint(md["acr_values_supported"]) != "["+oauth2.ACRMFA+" "+oauth2.ACRPassword+"]" {
			t.Errorf("discovery acr_values_supported: %v", md["acr_values_supported"])
		}
	})
}

var secretRE = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)
var recoveryRE = regexp.MustCompile(`<li><code>([0-9a-z-]{19})</code></li>`)
var continueRE = regexp.MustCompile(`id="continue" href="([^"]+)"`)

// TestHostedRequiredRoleEnrollment: a user of MFA_REQUIRED_ROLES without
// a factor is led after the password through enrollment (QR code and
// secret; a wrong code shows the same secret again), then sees the 10
// recovery codes once (no-store), then continues to the client with amr
// pwd+otp. The factor is confirmed: the next sign-in asks for a code.
func TestHostedRequiredRoleEnrollment(t *testing.T) {
	onMFABackends(t, func(t *testing.T, e *mfaPagesEnv) {
		e.user("hal", mfaRequiredRole)
		b := e.browser()
		page := b.signIn("hal", mfaPagesPassword, mfaAuthorizeQuery())
		m := secretRE.FindStringSubmatch(page.body)
		if page.status != http.StatusOK || m == nil || !strings.Contains(page.body, "<svg") || hasSessionCookie(page) {
			t.Fatalf("after the password: %d, want the enrollment page without a session\n%.800s", page.status, page.body)
		}
		if a := b.do(http.MethodGet, "/api/v1/oauth2/authorize?"+mfaAuthorizeQuery().Encode(), nil); !strings.Contains(a.body, signInPageMark) {
			t.Fatalf("authorize during enrollment: %d, want the sign-in page", a.status)
		}
		page = b.signIn("hal", mfaPagesPassword, mfaAuthorizeQuery())
		secret := secretRE.FindStringSubmatch(page.body)[1]
		form := page.hidden()
		form.Set("code", "000000")
		if totpAt(t, secret, 0) == "000000" {
			form.Set("code", "999999")
		}
		bad := b.do(http.MethodPost, "/api/v1/oauth2/mfa/enroll", form)
		if bad.status != http.StatusUnauthorized || !strings.Contains(bad.body, "That code is not valid") || !strings.Contains(bad.body, secret) {
			t.Fatalf("a wrong code: %d, want the same enrollment page\n%.600s", bad.status, bad.body)
		}
		// The code page's route refuses an enrollment.
		if a := b.do(http.MethodPost, "/api/v1/oauth2/mfa", codeForm(bad, "code", totpAt(t, secret, 0))); a.status != http.StatusBadRequest {
			t.Errorf("the code route during enrollment: %d", a.status)
		}
		page = b.signIn("hal", mfaPagesPassword, mfaAuthorizeQuery())
		secret = secretRE.FindStringSubmatch(page.body)[1]
		form = page.hidden()
		form.Set("code", totpAt(t, secret, 0))
		codes := b.do(http.MethodPost, "/api/v1/oauth2/mfa/enroll", form)
		got := recoveryRE.FindAllStringSubmatch(codes.body, -1)
		if codes.status != http.StatusOK || len(got) != mfa.RecoveryCodeCount || codes.header.Get("Cache-Control") != "no-store" || !hasSessionCookie(codes) {
			t.Fatalf("after the confirmation: %d, %d codes, Cache-Control %q\n%.800s", codes.status, len(got), codes.header.Get("Cache-Control"), codes.body)
		}
		cont := continueRE.FindStringSubmatch(codes.body)
		if cont == nil {
			t.Fatal("no continue link")
		}
		target, _ := url.Parse(strings.ReplaceAll(cont[1], "&amp;", "&"))
		idc, atc := e.exchange(redirected(t, b.do(http.MethodGet, target.RequestURI(), nil), "continue"))
		wantAMR(t, "ID token", idc, []string{"pwd", "otp"}, oauth2.ACRMFA)
		wantAMR(t, "access token", atc, []string{"pwd", "otp"}, "")

		// The next sign-in asks for the code, and a recovery code works.
		b2 := e.browser()
		next := b2.signIn("hal", mfaPagesPassword, mfaAuthorizeQuery())
		if !strings.Contains(next.body, codePageMark) {
			t.Fatalf("the next sign-in: %d, want the code page", next.status)
		}
		redirected(t, b2.do(http.MethodPost, "/api/v1/oauth2/mfa", codeForm(next, "recovery_code", got[0][1])), "a shown recovery code")
	})
}

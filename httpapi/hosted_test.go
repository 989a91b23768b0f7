package httpapi

import (
	"crypto/tls"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testwire"
	"github.com/permiso/permiso/oauth2"
	"github.com/permiso/permiso/sqlite"
)

// pagesEnv is a server of the hosted pages (docs/oidc.md) with a password
// policy and expiry, behind TLS so that the cookies are __Host- prefixed.
type pagesEnv struct {
	t      *testing.T
	db     *sqlite.DB
	srv    *httptest.Server
	client *http.Client
	base   string
}

const (
	pagesRedirect = "https://rp.example.com/callback"
	pagesPassword = "Correct-Horse-9-battery"
)

func newPagesEnv(t *testing.T) *pagesEnv {
	t.Helper()
	db := testdb.SQLite(t)
	w := newWired(t, wiring{db: db, noIdentity: true,
		auth: oauth2.Config{OIDCIssuer: testIssuer, PasswordMaxAge: 24 * time.Hour,
			PasswordPolicy: permiso.PasswordPolicy{MinLength: 12, MaxLength: 128, RequireUppercase: true, RequireLowercase: true,
				RequireDigits: true, RequireSpecial: true}, PreventReuseCount: 3},
		authDeps: oauth2.Deps{Lockout: inprocess.NewLockout(5, time.Minute)},
	})
	srv := httptest.NewTLSServer(w.h)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	e := &pagesEnv{t: t, db: db, srv: srv, client: client, base: srv.URL}

	pagesClient(t, db, "rp", true)
	// A password that expired a week ago.
	e.user("erin", time.Now().UTC().Add(-8*24*time.Hour))
	return e
}

// pagesClient registers the confidential client id (secret id-secret,
// name "Client id") of the hosted-page tests, for the authorization code
// flow to pagesRedirect; a trusted one is not asked for consent.
func pagesClient(t *testing.T, db permiso.ClientStore, id string, trusted bool) {
	t.Helper()
	now := time.Now().UTC()
	if _, err := db.CreateServiceClient(t.Context(), permiso.ServiceClient{ClientID: id, SecretHash: permiso.HashToken(id + "-secret"),
		Name: "Client " + id, ClientType: "confidential", IsActive: true, IsTrusted: trusted, RateLimitPerMinute: 600, RateLimitPerHour: 10000,
		RedirectURIs: []string{pagesRedirect}, GrantTypes: []string{permiso.GrantTypeAuthorizationCode},
		CreatedAt: now, UpdatedAt: now}, nil); err != nil {
		t.Fatal(err)
	}
}

// user creates the active user name (name@example.com) with the password
// pagesPassword, changed at changed.
func (e *pagesEnv) user(name string, changed time.Time) permiso.User {
	e.t.Helper()
	hash := testwire.Hash(e.t, testwire.Hasher(), pagesPassword)
	now := time.Now().UTC()
	u, err := e.db.CreateUser(e.t.Context(), permiso.User{Username: name, Email: name + "@example.com", PasswordHash: hash,
		IsActive: true, PasswordChangedAt: changed, CreatedAt: now, UpdatedAt: now}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// signIn opens the sign-in page of an authorization request of client
// (state s1, an S256 code challenge).
func (e *pagesEnv) signIn(client string) pageAnswer {
	e.t.Helper()
	q := url.Values{"client_id": {client}, "redirect_uri": {pagesRedirect}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"s1"}, "code_challenge": {permiso.S256Challenge(strings.Repeat("v", 43))},
		"code_challenge_method": {"S256"}}
	return e.do(http.MethodGet, "/api/v1/oauth2/authorize?"+q.Encode(), nil)
}

// wrongPassword posts form, whose password is wrong, to path: the answer
// is 401 and does not tell whether the password has expired, which only
// the holder of the password may learn: its body lacks leak.
func (e *pagesEnv) wrongPassword(path string, form url.Values, leak string) {
	e.t.Helper()
	if a := e.do(http.MethodPost, path, form); a.status != http.StatusUnauthorized || strings.Contains(a.body, leak) {
		e.t.Errorf("a wrong password at %s: %d, want 401 without %q\n%.600s", path, a.status, leak, a.body)
	}
}

type pageAnswer struct {
	status int
	header http.Header
	body   string
}

func (e *pagesEnv) do(method, path string, form url.Values) pageAnswer {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, e.base+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return pageAnswer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

var pageHiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)

func (a pageAnswer) hidden() url.Values {
	v := url.Values{}
	for _, m := range pageHiddenRE.FindAllStringSubmatch(a.body, -1) {
		v.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return v
}

// TestHostedPagesExpiredPassword: a sign-in with an expired password (and
// only with the right one) leads to the password page; the two new
// passwords must agree and satisfy the policy; then the user is signed in
// and the client gets its code. Every page carries the hosted pages'
// headers, and over https the cookies are __Host- prefixed and Secure.
func TestHostedPagesExpiredPassword(t *testing.T) {
	e := newPagesEnv(t)
	signIn := e.signIn("rp")
	if signIn.status != http.StatusOK || !strings.Contains(signIn.body, `<label for="password">Password</label>`) {
		t.Fatalf("authorize: %d\n%.800s", signIn.status, signIn.body)
	}
	for _, h := range []string{"frame-ancestors 'none'", "default-src 'none'", "form-action 'self' https://rp.example.com"} {
		if !strings.Contains(signIn.header.Get("Content-Security-Policy"), h) {
			t.Errorf("Content-Security-Policy %q lacks %q", signIn.header.Get("Content-Security-Policy"), h)
		}
	}
	if signIn.header.Get("Cache-Control") != "no-store" || !strings.Contains(signIn.body, "<title>Sign in · permiso Authentication API</title>") {
		t.Errorf("Cache-Control %q; title from APP_NAME missing", signIn.header.Get("Cache-Control"))
	}
	csrf := signIn.header.Values("Set-Cookie")
	if len(csrf) != 1 || !strings.HasPrefix(csrf[0], "__Host-permiso_csrf=") || !strings.Contains(csrf[0], "Secure") ||
		!strings.Contains(csrf[0], "HttpOnly") || !strings.Contains(csrf[0], "SameSite=Lax") || strings.Contains(csrf[0], "Domain=") {
		t.Errorf("CSRF cookie %q", csrf)
	}

	form := signIn.hidden()
	form.Set("username", "erin")
	form.Set("password", "Wrong-Horse-9-battery")
	e.wrongPassword("/api/v1/oauth2/authorize", form, "expired")
	form.Set("password", pagesPassword)
	pw := e.do(http.MethodPost, "/api/v1/oauth2/authorize", form)
	if pw.status != http.StatusForbidden || !strings.Contains(pw.body, `<label for="new_password">New password</label>`) {
		t.Fatalf("an expired password: %d, want the password page\n%.800s", pw.status, pw.body)
	}

	change := pw.hidden()
	change.Set("username", "erin")
	change.Set("current_password", pagesPassword)
	change.Set("new_password", "An0ther-Str0ng-Passw0rd!")
	change.Set("confirm_password", "An0ther-Str0ng-Passw0rd?")
	if a := e.do(http.MethodPost, "/api/v1/oauth2/password", change); a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, "same new password twice") {
		t.Errorf("different new passwords: %d\n%.600s", a.status, a.body)
	}
	change.Set("new_password", "weak")
	change.Set("confirm_password", "weak")
	if a := e.do(http.MethodPost, "/api/v1/oauth2/password", change); a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, `id="form-problems"`) {
		t.Errorf("a weak password: %d, want the policy's problems\n%.600s", a.status, a.body)
	}
	missing := url.Values{}
	for k, v := range change {
		if k != csrfField {
			missing[k] = v
		}
	}
	if a := e.do(http.MethodPost, "/api/v1/oauth2/password", missing); a.status != http.StatusForbidden {
		t.Errorf("without the CSRF token: %d, want 403", a.status)
	}
	change.Set("new_password", "An0ther-Str0ng-Passw0rd!")
	change.Set("confirm_password", "An0ther-Str0ng-Passw0rd!")
	done := e.do(http.MethodPost, "/api/v1/oauth2/password", change)
	loc, _ := url.Parse(done.header.Get("Location"))
	if done.status != http.StatusSeeOther || loc == nil || loc.Query().Get("code") == "" || loc.Query().Get("state") != "s1" {
		t.Fatalf("after the change: %d to %q, want the code\n%.600s", done.status, done.header.Get("Location"), done.body)
	}
	var session string
	for _, c := range done.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "__Host-permiso_session=") {
			session = c
		}
	}
	if session == "" || !strings.Contains(session, "Secure") || !strings.Contains(session, "HttpOnly") || !strings.Contains(session, "Path=/") {
		t.Errorf("session cookie %q", session)
	}
}

// TestConsentFormIsBoundAndSpent: the consent form carries the
// authorization request bound to the browser's CSRF token and session:
// another client, more scopes or a dropped code_challenge are refused
// (403, never a redirect), and an accepted form cannot be sent again
// (docs/oidc.md, "Security").
func TestConsentFormIsBoundAndSpent(t *testing.T) {
	e := newPagesEnv(t)
	pagesClient(t, e.db, "untrusted", false)
	pagesClient(t, e.db, "other", false)
	e.user("frank", time.Now().UTC())
	signIn := e.signIn("untrusted")
	form := signIn.hidden()
	form.Set("username", "frank")
	form.Set("password", pagesPassword)
	consent := e.do(http.MethodPost, "/api/v1/oauth2/authorize", form)
	if consent.status != http.StatusOK || !strings.Contains(consent.body, "Client untrusted") {
		t.Fatalf("consent page: %d\n%.800s", consent.status, consent.body)
	}
	genuine := consent.hidden()
	genuine.Set("decision", "allow")
	if genuine.Get(consentBindingField) == "" {
		t.Fatal("the consent form has no binding")
	}
	for name, alter := range map[string]func(url.Values){
		"another client":    func(v url.Values) { v.Set("client_id", "other") },
		"more scopes":       func(v url.Values) { v.Set("scope", "openid email") },
		"no code_challenge": func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") },
		"no binding":        func(v url.Values) { v.Del(consentBindingField) },
		"another state":     func(v url.Values) { v.Set("state", "s2") },
		"a binding twice":   func(v url.Values) { v.Add(consentBindingField, v.Get(consentBindingField)) },
	} {
		altered := url.Values{}
		for k, v := range genuine {
			altered[k] = append([]string(nil), v...)
		}
		alter(altered)
		if a := e.do(http.MethodPost, "/api/v1/oauth2/consent", altered); a.status != http.StatusForbidden || a.header.Get("Location") != "" {
			t.Errorf("%s: %d to %q, want 403 and no redirect", name, a.status, a.header.Get("Location"))
		}
	}
	done := e.do(http.MethodPost, "/api/v1/oauth2/consent", genuine)
	loc, _ := url.Parse(done.header.Get("Location"))
	if done.status != http.StatusSeeOther || loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("the genuine form: %d to %q\n%.600s", done.status, done.header.Get("Location"), done.body)
	}
	if a := e.do(http.MethodPost, "/api/v1/oauth2/consent", genuine); a.status != http.StatusForbidden || a.header.Get("Location") != "" {
		t.Errorf("the form sent again: %d to %q, want 403", a.status, a.header.Get("Location"))
	}
}

// TestHostedPasswordPageOnlyForExpired: the expired-password page changes
// only an expired password; for one that has not expired it answers, after
// the correct password only, with the sign-in page and changes nothing
// (docs/oidc.md, "The flow"). And a query string that cannot be parsed
// whole gets the error page on the hosted pages, not the API's JSON.
func TestHostedPasswordPageOnlyForExpired(t *testing.T) {
	e := newPagesEnv(t)
	ctx := t.Context()
	now := time.Now().UTC()
	gina := e.user("gina", now)
	signIn := e.signIn("rp")
	change := signIn.hidden()
	change.Set("username", "gina")
	change.Set("current_password", "Wrong-Horse-9-battery")
	change.Set("new_password", "An0ther-Str0ng-Passw0rd!")
	change.Set("confirm_password", "An0ther-Str0ng-Passw0rd!")
	e.wrongPassword("/api/v1/oauth2/password", change, "not expired")
	change.Set("current_password", pagesPassword)
	a := e.do(http.MethodPost, "/api/v1/oauth2/password", change)
	if a.status != http.StatusBadRequest || !strings.Contains(a.body, "has not expired") || a.header.Get("Location") != "" {
		t.Errorf("a password that has not expired: %d\n%.600s", a.status, a.body)
	}
	u, err := e.db.GetUserByUsername(ctx, "gina")
	if err != nil || u.PasswordHash != gina.PasswordHash {
		t.Errorf("the password changed: %v", err)
	}

	bad := e.do(http.MethodGet, "/api/v1/oauth2/authorize?x=1;y=2", nil)
	if bad.status != http.StatusBadRequest || !strings.HasPrefix(bad.header.Get("Content-Type"), "text/html") {
		t.Errorf("an unparsable query: %d %q, want the error page", bad.status, bad.header.Get("Content-Type"))
	}
}

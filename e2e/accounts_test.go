package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/permiso/permiso/internal/smtptest"
)

// Accounts end to end: registration, verification by the mailed
// link, password change and reset with policy and history, sessions dead
// afterwards. The server sends real mail, over SMTP with STARTTLS and
// AUTH, to an SMTP server this test runs; the server process trusts the
// test's self-signed certificate through SSL_CERT_FILE.

// mailbox is the SMTP server the server under test mails to
// (internal/smtptest), requiring STARTTLS and AUTH before mail.
type mailbox struct {
	*smtptest.Server
	certFile   string
	user, pass string
}

func startMailbox(t *testing.T) *mailbox {
	t.Helper()
	mb := &mailbox{user: "permiso-mailer", pass: randomHex(t, 8)}
	mb.Server = smtptest.Start(t, smtptest.Options{StartTLS: true, Username: mb.user, Password: mb.pass})
	mb.certFile = filepath.Join(t.TempDir(), "mailbox-ca.pem")
	if err := os.WriteFile(mb.certFile, mb.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return mb
}

// env are the server's SMTP settings for this mailbox.
func (mb *mailbox) env() map[string]string {
	return map[string]string{
		"SMTP_HOST": mb.Host, "SMTP_PORT": strconv.Itoa(mb.Port), "SMTP_USERNAME": mb.user, "SMTP_PASSWORD": mb.pass,
		"SMTP_FROM": "permiso <no-reply@example.com>", "SMTP_STARTTLS": "true", "SSL_CERT_FILE": mb.certFile,
	}
}

var linkToken = regexp.MustCompile(`https://auth\.e2e\.example/(reset-password|verify-email)\?token=([A-Za-z0-9_.-]+)`)

// token waits for the next mail, checks it went to addr over TLS with
// AUTH, and returns the token of its link to path.
func (mb *mailbox) token(t *testing.T, addr, path string) string {
	t.Helper()
	m := mb.Wait(t, 20*time.Second)
	if len(m.To) != 1 || m.To[0] != addr || !m.TLS || m.Auth != mb.user {
		t.Fatalf("mail to %v (TLS %v, AUTH %q), want %s over TLS with AUTH", m.To, m.TLS, m.Auth, addr)
	}
	body := m.Body()
	match := linkToken.FindStringSubmatch(body)
	if match == nil || match[1] != path {
		t.Fatalf("mail %q has no %s link: %q", m.Header("Subject"), path, body)
	}
	return match[2]
}

// noMail checks that nothing arrives within d.
func (mb *mailbox) noMail(t *testing.T, d time.Duration) {
	t.Helper()
	mb.None(t, d)
}

// call sends a JSON request.
func (s *Server) call(t *testing.T, method, path string, body any, bearer string) *Response {
	t.Helper()
	rq := request{method: method, path: path, bearer: bearer}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rq.body, rq.contentType = bytes.NewReader(b), "application/json"
	}
	return s.do(t, rq)
}

func expect(t *testing.T, r *Response, status int) map[string]any {
	t.Helper()
	mustStatus(t, r, status)
	if len(r.Body) == 0 {
		return nil
	}
	return r.JSON(t)
}

// mustStatus stops the test unless r has the status.
func mustStatus(t *testing.T, r *Response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: want %d", r, status)
	}
}

// details returns the messages of a 422 validation_error.
func details(t *testing.T, m map[string]any) []string {
	t.Helper()
	if m["error"] != "validation_error" {
		t.Fatalf("%v: want validation_error", m)
	}
	var out []string
	for _, d := range m["details"].([]any) {
		out = append(out, d.(map[string]any)["message"].(string))
	}
	return out
}

// TestAccountLifecycle: register, verify by the mailed link token, log in,
// change the password (policy and history enforced, other sessions end),
// reset it by mail (every session ends), on each backend.
func TestAccountLifecycle(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		mb := startMailbox(t)
		env := mb.env()
		env["PUBLIC_URL"] = "https://auth.e2e.example"
		env["PASSWORD_PREVENT_REUSE_COUNT"] = "3"
		s, _ := adminServer(t, b, env)
		const (
			users = apiPrefix + "/users"
			first = "Explorer-Maps-42!"
			user  = "dora"
			email = "dora@example.com"
		)
		admin := s.login(t, adminUser, strongPassword, "").AccessToken

		// Register: normalized, role user, unverified; a verification
		// mail is sent.
		m := expect(t, s.call(t, "POST", pathRegister, map[string]any{"username": "Dora", "email": "Dora@Example.com", "password": first}, ""), 201)
		if m["username"] != user || m["email"] != email || m["is_verified"] != false || len(m["roles"].([]any)) != 1 {
			t.Fatalf("registered %v", m)
		}
		uid := m["id"].(string)
		expect(t, s.call(t, "POST", pathRegister, map[string]any{"username": "DORA", "email": "other@example.com", "password": first}, ""), 409)
		verify := mb.token(t, email, "verify-email")

		// Log in (verification is not required for that), verify.
		a := s.login(t, user, first, "")
		if me := expect(t, s.get(t, users+"/me", a.AccessToken), 200); me["is_verified"] != false || me["id"] != uid {
			t.Fatalf("me %v", me)
		}
		expect(t, s.call(t, "POST", users+"/email-verification/confirm", map[string]any{"token": verify}, ""), 200)
		if me := expect(t, s.get(t, users+"/me", a.AccessToken), 200); me["is_verified"] != true {
			t.Fatalf("not verified: %v", me)
		}
		if m := expect(t, s.call(t, "POST", users+"/email-verification/confirm", map[string]any{"token": verify}, ""), 400); m["error"] != "invalid_token" {
			t.Errorf("verification token used twice: %v", m)
		}
		listed := expect(t, s.get(t, users+"?search=dora&is_verified=true", admin), 200)
		if num(t, listed["total"], "total") != 1 {
			t.Errorf("admin list: %v", listed)
		}

		// Change the password from session a; session b ends.
		b2 := s.login(t, email, first, "")
		mp := users + "/me/password"
		msgs := details(t, expect(t, s.call(t, "PUT", mp, map[string]any{"current_password": first, "new_password": "dora"}, a.AccessToken), 422))
		if len(msgs) < 5 { // length, upper case, digit, special, username
			t.Errorf("policy problems %v, want every broken rule", msgs)
		}
		msgs = details(t, expect(t, s.call(t, "PUT", mp, map[string]any{"current_password": first, "new_password": "P030710p$e4o"}, a.AccessToken), 422))
		if len(msgs) != 1 || !strings.Contains(msgs[0], "common") {
			t.Errorf("common password: %v", msgs)
		}
		expect(t, s.call(t, "PUT", mp, map[string]any{"current_password": "Wrong-Pass-1!", "new_password": "Second-Pass-43!"}, a.AccessToken), 400)
		const second = "Second-Pass-43!"
		expect(t, s.call(t, "PUT", mp, map[string]any{"current_password": first, "new_password": second}, a.AccessToken), 200)
		expect(t, s.get(t, users+"/me", a.AccessToken), 200)
		assertInvalidToken(t, s.get(t, users+"/me", b2.AccessToken))
		assertOAuthError(t, s.refresh(t, b2.RefreshToken, ""), 400, "invalid_grant")
		assertOAuthError(t, s.tryLogin(t, user, first, ""), 400, "invalid_grant")
		// History: the previous password may not come back.
		msgs = details(t, expect(t, s.call(t, "PUT", mp, map[string]any{"current_password": second, "new_password": first}, a.AccessToken), 422))
		if len(msgs) != 1 || !strings.Contains(msgs[0], "last 3") {
			t.Errorf("reuse: %v", msgs)
		}

		// Reset by mail: the same answer for an unknown address (and no
		// mail), every session ends, the token works once.
		c := s.login(t, user, second, "")
		unknown := withoutRequestID(t, s.call(t, "POST", users+"/password-reset/request", map[string]any{"email": "nobody@example.com"}, ""))
		known := withoutRequestID(t, s.call(t, "POST", users+"/password-reset/request", map[string]any{"email": "DORA@example.com"}, ""))
		if !mapsEqualJSON(unknown, known) {
			t.Errorf("reset request answers differ: %v vs %v", unknown, known)
		}
		reset := mb.token(t, email, "reset-password")
		rc := users + "/password-reset/confirm"
		details(t, expect(t, s.call(t, "POST", rc, map[string]any{"token": reset, "new_password": first}, ""), 422))
		details(t, expect(t, s.call(t, "POST", rc, map[string]any{"token": reset, "new_password": "short"}, ""), 422))
		const third = "Third-Pass-44!ok"
		expect(t, s.call(t, "POST", rc, map[string]any{"token": reset, "new_password": third}, ""), 200)
		for _, tok := range []tokenResponse{a, c} {
			assertInvalidToken(t, s.get(t, users+"/me", tok.AccessToken))
			assertOAuthError(t, s.refresh(t, tok.RefreshToken, ""), 400, "invalid_grant")
		}
		if m := expect(t, s.call(t, "POST", rc, map[string]any{"token": reset, "new_password": "Fourth-Pass-45!ok"}, ""), 400); m["error"] != "invalid_token" {
			t.Errorf("reset token used twice: %v", m)
		}
		assertOAuthError(t, s.tryLogin(t, user, second, ""), 400, "invalid_grant")
		d := s.login(t, user, third, "")
		if me := expect(t, s.get(t, users+"/me", d.AccessToken), 200); me["id"] != uid {
			t.Errorf("me after reset: %v", me)
		}
		mb.noMail(t, 300*time.Millisecond) // nothing was sent for nobody@example.com
	})
}

// TestUsersAccessE2E: the permission model seen from outside: a plain user
// cannot reach the admin routes nor raise their own privileges; the admin
// can; a refresh token is no bearer token.
func TestUsersAccessE2E(t *testing.T) {
	t.Parallel()
	s, adminID := adminServer(t, sqliteOnly(t), nil)
	users := apiPrefix + "/users"
	admin := s.login(t, adminUser, strongPassword, "").AccessToken
	uid := s.register(t, "erin", "erin@example.com", strongPassword)
	u := s.login(t, "erin", strongPassword, "")
	var adminRole string
	for _, r := range expect(t, s.get(t, apiPrefix+"/roles", admin), 200)["roles"].([]any) {
		if r.(map[string]any)["name"] == "admin" {
			adminRole = r.(map[string]any)["id"].(string)
		}
	}
	for _, path := range []string{users + "/" + uid, users + "/me"} {
		for _, body := range []map[string]any{{"role_ids": []string{adminRole}}, {"is_superuser": true}, {"is_verified": true}, {"is_active": true}} {
			expect(t, s.call(t, "PUT", path, body, u.AccessToken), 403)
		}
	}
	expect(t, s.get(t, users, u.AccessToken), 403)
	expect(t, s.get(t, users+"/"+adminID, u.AccessToken), 403)
	expect(t, s.call(t, "DELETE", users+"/"+adminID, nil, u.AccessToken), 403)
	assertInvalidToken(t, s.get(t, users+"/me", u.RefreshToken))
	if again := s.login(t, "erin", strongPassword, ""); again.Scope != "read:profile write:profile" {
		t.Errorf("scope after the attempts: %q", again.Scope)
	}
	// The administrator can, but not delete themselves.
	expect(t, s.call(t, "PUT", users+"/"+uid+"/roles", map[string]any{"role_ids": []string{adminRole}}, admin), 200)
	expect(t, s.get(t, users, u.AccessToken), 200) // role admin now: current holdings count
	expect(t, s.call(t, "DELETE", users+"/"+strings.ToUpper(adminID), nil, admin), 403)
	expect(t, s.call(t, "DELETE", users+"/"+uid, nil, admin), 204)
	assertInvalidToken(t, s.get(t, users+"/me", u.AccessToken))
}

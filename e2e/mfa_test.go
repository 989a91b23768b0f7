package e2e

import (
	"bytes"
	"crypto/sha1"
	"encoding/base32"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/permiso/permiso/mfa"
)

// Sign-in with a second factor through the binary (docs/mfa.md, "Sign-in"
// and "Enrollment at sign-in").

const grantMFA = "urn:permiso:params:oauth:grant-type:mfa"

// authenticator is a user's authenticator app: it shows the codes of
// its secret, never the code of a time step it has shown already (a
// server accepts a step once).
type authenticator struct {
	secret []byte
	used   map[int64]bool
	shown  []string
}

func newAuthenticator(t *testing.T, base32Secret string) *authenticator {
	t.Helper()
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(base32Secret)
	if err != nil {
		t.Fatalf("secret %q is not base32: %v", base32Secret, err)
	}
	return &authenticator{secret: raw, used: map[int64]bool{}}
}

// code returns the code of a time step the server accepts now (one step
// of drift either way, RFC 6238 §5.2) that was not shown before.
func (a *authenticator) code(t *testing.T) string {
	t.Helper()
	now := time.Now().Unix() / 30
	for _, step := range []int64{now, now + 1, now - 1} {
		if !a.used[step] {
			a.used[step] = true
			c := mfa.HOTP(sha1.New, a.secret, uint64(step), 6)
			a.shown = append(a.shown, c)
			return c
		}
	}
	t.Fatal("every acceptable time step was used already")
	return ""
}

// wrong returns a code that is none of the acceptable ones now.
func (a *authenticator) wrong() string {
	now := time.Now().Unix() / 30
	for i := 0; ; i++ {
		c := strconv.Itoa(100000 + i*7919%900000)
		if c != mfa.HOTP(sha1.New, a.secret, uint64(now), 6) && c != mfa.HOTP(sha1.New, a.secret, uint64(now+1), 6) &&
			c != mfa.HOTP(sha1.New, a.secret, uint64(now-1), 6) {
			return c
		}
	}
}

// mfaRun keeps what a run must never leak (secrets, codes, tokens) and
// every error body it got.
type mfaRun struct {
	secrets     []string
	errorBodies [][]byte
}

func (m *mfaRun) keep(values ...string) { m.secrets = append(m.secrets, values...) }

// seen records r's body when r is an error, except the 403 that hands out
// an mfa_token (its one purpose).
func (m *mfaRun) seen(r *Response) *Response {
	if r.Status >= 400 && !bytes.Contains(r.Body, []byte(`"mfa_token"`)) {
		m.errorBodies = append(m.errorBodies, r.Body)
	}
	return r
}

// mfaToken runs a password grant that must answer 403 code with an
// mfa_token.
func (m *mfaRun) mfaToken(t *testing.T, s *Server, username, code string) string {
	t.Helper()
	r := s.tryLogin(t, username, strongPassword, "")
	body := assertOAuthError(t, r, http.StatusForbidden, code)
	tok, _ := body["mfa_token"].(string)
	if len(tok) < 43 {
		t.Fatalf("%s: no mfa_token of 256 bits", r)
	}
	m.keep(tok)
	return tok
}

func (m *mfaRun) exchange(t *testing.T, s *Server, tok, param, code string) *Response {
	t.Helper()
	return m.seen(s.postForm(t, pathToken, url.Values{"grant_type": {grantMFA}, "mfa_token": {tok}, param: {code}}, nil))
}

// enroll enrolls an authenticator app with bearer (an access token, or an
// enrollment mfa_token) and returns it and the recovery codes.
func (m *mfaRun) enroll(t *testing.T, s *Server, bearer string) (*authenticator, []string) {
	t.Helper()
	en := expect(t, m.seen(s.postJSON(t, apiPrefix+"/users/me/mfa/totp", nil, bearer)), http.StatusCreated)
	secret, _ := en["secret"].(string)
	app := newAuthenticator(t, secret)
	m.keep(secret, string(app.secret))
	conf := expect(t, m.seen(s.postJSON(t, apiPrefix+"/users/me/mfa/totp/confirm", map[string]any{"code": app.code(t)}, bearer)), http.StatusOK)
	var codes []string
	for _, c := range conf["recovery_codes"].([]any) {
		codes = append(codes, c.(string))
	}
	m.keep(codes...)
	return app, codes
}

func amrOf(t *testing.T, access string) []string {
	t.Helper()
	_, claims := decodeJWT(t, access)
	return strs(t, claims["amr"], "amr")
}

// TestMFASignIn drives sign-in with a second factor through the binary on
// each backend: MFA_REQUIRED_ROLES makes the administrator enroll at
// sign-in with the mfa_token as bearer; a user enrolls, the password grant
// answers mfa_required, the mfa grant takes an otp and a recovery code
// (once each) and issues tokens with amr ["pwd","otp"] that a refresh
// keeps; on PostgreSQL + Redis an otp replayed on a second instance is
// refused; wrong codes lock the account; an administrator's reset lets
// the user sign in with the password alone. Then the server's log, the
// audit log and every error body are searched for the secrets, codes,
// recovery codes and mfa_tokens of the run: none may appear.
func TestMFASignIn(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			env := b.env(t, map[string]string{"MFA_REQUIRED_ROLES": "admin", "MAX_LOGIN_ATTEMPTS": "3", "LOG_LEVEL": "DEBUG"})
			s := startServer(t, env)
			requireRoute(t, s, http.MethodGet, apiPrefix+"/users/me/mfa")
			run := &mfaRun{}
			s.createAdmin(t, adminUser, adminEmail, strongPassword)

			// The administrator must enroll at sign-in.
			enrollTok := run.mfaToken(t, s, adminUser, "mfa_enrollment_required")
			st := expect(t, run.seen(s.get(t, apiPrefix+"/users/me/mfa", enrollTok)), http.StatusOK)
			if st["required"] != true {
				t.Fatalf("status with the mfa_token: %v", st)
			}
			expect(t, run.seen(s.get(t, apiPrefix+"/users?per_page=1", enrollTok)), http.StatusUnauthorized)
			adminApp, _ := run.enroll(t, s, enrollTok)
			r := run.exchange(t, s, enrollTok, "otp", adminApp.shown[0]) // spent by the confirmation
			assertOAuthError(t, r, http.StatusBadRequest, "invalid_grant")
			admin := mustTokens(t, run.exchange(t, s, enrollTok, "otp", adminApp.code(t)), true)
			run.keep(admin.AccessToken, admin.RefreshToken)
			if amr := amrOf(t, admin.AccessToken); !slices.Equal(amr, []string{"pwd", "otp"}) {
				t.Errorf("administrator amr %v", amr)
			}

			// A user enrolls with an access token (amr ["pwd"]).
			aliceID := s.register(t, "alice", "alice@example.com", strongPassword)
			first := s.login(t, "alice", strongPassword, "")
			if amr := amrOf(t, first.AccessToken); !slices.Equal(amr, []string{"pwd"}) {
				t.Errorf("password-only amr %v", amr)
			}
			app, codes := run.enroll(t, s, first.AccessToken)

			// mfa_required; a wrong code does not spend the token.
			tok := run.mfaToken(t, s, "alice", "mfa_required")
			assertOAuthError(t, run.exchange(t, s, tok, "otp", app.wrong()), http.StatusBadRequest, "invalid_grant")
			otp := app.code(t)
			tr := mustTokens(t, run.exchange(t, s, tok, "otp", otp), true)
			if amr := amrOf(t, tr.AccessToken); !slices.Equal(amr, []string{"pwd", "otp"}) {
				t.Errorf("mfa grant amr %v", amr)
			}
			refreshed := mustTokens(t, s.refresh(t, tr.RefreshToken, ""), true)
			if amr := amrOf(t, refreshed.AccessToken); !slices.Equal(amr, []string{"pwd", "otp"}) {
				t.Errorf("refreshed amr %v", amr)
			}
			assertOAuthError(t, run.exchange(t, s, tok, "otp", app.code(t)), http.StatusBadRequest, "invalid_grant") // spent

			// The otp just used, replayed: on a second instance sharing
			// PostgreSQL and Redis when there is one.
			other := s
			if b.name == "postgres+redis" {
				other = startServer(t, s.Env)
			}
			tok2 := run.mfaToken(t, other, "alice", "mfa_required")
			assertOAuthError(t, run.exchange(t, other, tok2, "otp", otp), http.StatusBadRequest, "invalid_grant")
			// A recovery code works once, on either instance.
			mustTokens(t, run.exchange(t, other, tok2, "recovery_code", codes[0]), true)
			tok3 := run.mfaToken(t, s, "alice", "mfa_required")
			assertOAuthError(t, run.exchange(t, s, tok3, "recovery_code", codes[0]), http.StatusBadRequest, "invalid_grant")

			// Wrong codes lock the account: the third failure (the one
			// above counted too) locks it; the password then gets 423.
			for range 2 {
				assertOAuthError(t, run.exchange(t, s, tok3, "otp", app.wrong()), http.StatusBadRequest, "invalid_grant")
			}
			assertOAuthError(t, run.seen(s.tryLogin(t, "alice", strongPassword, "")), http.StatusLocked, "account_locked")
			assertOAuthError(t, run.exchange(t, s, tok3, "recovery_code", codes[1]), http.StatusBadRequest, "invalid_grant")

			// The administrator unlocks and resets the factor: the
			// password alone signs in again.
			expect(t, run.seen(s.postJSON(t, apiPrefix+"/users/"+aliceID+"/unlock", nil, admin.AccessToken)), http.StatusOK)
			expect(t, run.seen(s.do(t, request{method: http.MethodDelete, path: apiPrefix + "/users/" + aliceID + "/mfa", bearer: admin.AccessToken})), http.StatusNoContent)
			if amr := amrOf(t, s.login(t, "alice", strongPassword, "").AccessToken); !slices.Equal(amr, []string{"pwd"}) {
				t.Errorf("amr after the reset %v", amr)
			}

			// Nothing secret in the log, the audit log or an error body.
			audit := waitAudit(t, s, admin.AccessToken, "mfa.reset")
			logs := s.stderr.String()
			if other != s {
				logs += other.stderr.String()
			}
			for _, v := range run.secrets {
				if v == "" {
					continue
				}
				if strings.Contains(logs, v) {
					t.Errorf("the server log holds a secret value of the run (%d characters)", len(v))
				}
				if bytes.Contains(audit, []byte(v)) {
					t.Errorf("the audit log holds a secret value of the run (%d characters)", len(v))
				}
				for _, body := range run.errorBodies {
					if bytes.Contains(body, []byte(v)) {
						t.Errorf("an error body holds a secret value of the run: %s", body)
					}
				}
			}
			for _, c := range append(append([]string{}, app.shown...), adminApp.shown...) {
				if strings.Contains(logs, `"`+c+`"`) || bytes.Contains(audit, []byte(`"`+c+`"`)) {
					t.Errorf("a code of the run appears in the log or the audit log")
				}
			}
			if !bytes.Contains(audit, []byte("login.mfa_required")) || !bytes.Contains(audit, []byte("login.mfa_success")) ||
				!bytes.Contains(audit, []byte("login.mfa_failure")) {
				t.Errorf("the audit log lacks the mfa sign-in events")
			}
		})
	}
}

// waitAudit waits until the audit log (admin audit API, written in the
// background) holds an event of action, then returns every page of it.
func waitAudit(t *testing.T, s *Server, admin, action string) []byte {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := expect(t, s.get(t, pathAdmin+"/audit/activity?per_page=1&action="+action, admin), http.StatusOK)
		if num(t, r["total"], "total") > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s audit event within 30 s", action)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var all []byte
	for page := 1; ; page++ {
		r := s.get(t, pathAdmin+"/audit/activity?per_page=100&page="+strconv.Itoa(page), admin)
		if r.Status != http.StatusOK {
			t.Fatalf("%s: want 200", r)
		}
		all = append(all, r.Body...)
		m := r.JSON(t)
		if items, _ := m["activities"].([]any); len(items) < 100 {
			return all
		}
	}
}

package httpapi

import (
	"strings"
	"testing"
	"time"
)

// totpNow is the code an authenticator app shows now for a base32 secret.
func totpNow(t *testing.T, secret string) string {
	t.Helper()
	return totpAt(t, secret, 0)
}

// TestMFAEnrollmentRoutes drives the enrollment API over HTTP on each
// backend, every request and answer validated against the OpenAPI
// document: status, enroll (SVG QR code, no-store), a wrong code (400
// invalid_code, echoing nothing), confirm (10 recovery codes), the
// confirmed code replayed (refused), 409 on a second enrollment, removal
// with a recovery code, and an administrator's reset that ends the user's
// sessions.
func TestMFAEnrollmentRoutes(t *testing.T) {
	const me = "/api/v1/users/me/mfa"
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		u := e.user("mfa", false, "user")
		tok := e.login(u.Username, idPassword, "").AccessToken

		st := e.expect(e.do("GET", me, me, tok, nil), 200, "status before")
		if st["totp"].(map[string]any)["enabled"] != false || st["recovery_codes_left"] != float64(0) {
			t.Fatalf("status before: %v", st)
		}
		w := e.do("POST", me+"/totp", me+"/totp", tok, nil)
		en := e.expect(w, 201, "enroll")
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("enrollment Cache-Control %q", w.Header().Get("Cache-Control"))
		}
		secret := en["secret"].(string)
		if !strings.HasPrefix(en["qr_svg"].(string), "<svg") || !strings.Contains(en["otpauth_uri"].(string), "secret="+secret) {
			t.Fatalf("enrollment: %v", en)
		}
		code := totpNow(t, secret)
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		w = e.do("POST", me+"/totp/confirm", me+"/totp/confirm", tok, map[string]any{"code": wrong})
		if body := e.expect(w, 400, "wrong code"); body["error"] != "invalid_code" || strings.Contains(w.Body.String(), wrong) {
			t.Fatalf("wrong code: %s", w.Body)
		}
		codes := e.expect(e.do("POST", me+"/totp/confirm", me+"/totp/confirm", tok, map[string]any{"code": code}), 200, "confirm")["recovery_codes"].([]any)
		if len(codes) != 10 {
			t.Fatalf("%d recovery codes", len(codes))
		}
		e.expect(e.do("POST", me+"/recovery-codes", me+"/recovery-codes", tok, map[string]any{"code": code}), 400, "replayed code")
		e.expect(e.do("POST", me+"/totp", me+"/totp", tok, nil), 409, "second enrollment")
		st = e.expect(e.do("GET", me, me, tok, nil), 200, "status after")
		if st["totp"].(map[string]any)["enabled"] != true || st["recovery_codes_left"] != float64(10) {
			t.Fatalf("status after: %v", st)
		}
		e.expect(e.do("DELETE", me+"/totp", me+"/totp", tok, map[string]any{"password": idPassword, "code": codes[0]}), 204, "remove")
		e.auditEvent("mfa.totp_disable", u.ID.String(), "success")

		// Enroll again (a code of this step was spent already: the
		// confirmation is made in the store), then an administrator
		// resets it.
		e.expect(e.do("POST", me+"/totp", me+"/totp", tok, nil), 201, "enroll again")
		if _, err := e.db.ConfirmMFAFactor(e.ctx, u.ID, "totp", time.Now(), nil); err != nil {
			t.Fatal(err)
		}
		admin := e.user("root", true)
		atok := e.login(admin.Username, idPassword, "").AccessToken
		route := "/api/v1/users/{user_id}/mfa"
		e.expect(e.do("DELETE", route, "/api/v1/users/"+u.ID.String()+"/mfa", tok, nil), 403, "reset by the user")
		e.expect(e.do("DELETE", route, "/api/v1/users/"+u.ID.String()+"/mfa", atok, nil), 204, "reset")
		e.expect(e.do("GET", me, me, tok, nil), 401, "the user's session after the reset")
		ev := e.auditEvent("mfa.reset", u.ID.String(), "success")
		if ev.Details["factors"] != float64(1) && ev.Details["factors"] != 1 {
			t.Errorf("reset details %v", ev.Details)
		}
	})
}

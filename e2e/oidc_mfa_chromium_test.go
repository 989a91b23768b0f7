package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/permiso/permiso/mfa"
)

// TestOIDCSecondFactorInChromium: headless Chromium signs in through the
// hosted pages of the built binary with a password and then (docs/oidc.md,
// "Second factor"): a TOTP code of an enrolled user; a recovery code of
// the same user; and, for a user of MFA_REQUIRED_ROLES without a factor,
// the enrollment page (QR code and key), the recovery codes page and the
// continue link. Each time the relying party verifies an ID token with amr
// pwd and otp and acr urn:permiso:acr:mfa. With PERMISO_SCREENSHOTS=1 it
// writes the code, enrollment and recovery codes pages to docs/images/.
// It runs on SQLite and on PostgreSQL + Redis, one after the other (one
// Chromium at a time).
func TestOIDCSecondFactorInChromium(t *testing.T) {
	t.Parallel()
	chromium := requireChromium(t)
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) { secondFactorInChromium(t, b, chromium) })
	}
}

func secondFactorInChromium(t *testing.T, b backend, chromium string) {
	s, _ := adminServer(t, b, map[string]string{"APP_NAME": "Example Corp Sign-in", "MFA_REQUIRED_ROLES": "mfa-staff"}, post(apiPrefix+"/oauth2/mfa"))
	admin := s.login(t, adminUser, strongPassword, "").AccessToken

	// mia enrolls an authenticator app through the API; ned holds a role
	// of MFA_REQUIRED_ROLES and has no factor.
	s.register(t, "mia", "mia@example.com", strongPassword)
	mia := s.login(t, "mia", strongPassword, "").AccessToken
	enr := expect(t, s.call(t, http.MethodPost, apiPrefix+"/users/me/mfa/totp", nil, mia), http.StatusCreated)
	app := newAuthenticator(t, enr["secret"].(string))
	confirmed := expect(t, s.call(t, http.MethodPost, apiPrefix+"/users/me/mfa/totp/confirm",
		map[string]any{"code": app.code(t)}, mia), http.StatusOK)
	recovery := confirmed["recovery_codes"].([]any)[0].(string)
	nedID := s.register(t, "ned", "ned@example.com", strongPassword)
	role := expect(t, s.call(t, http.MethodPost, apiPrefix+"/roles", map[string]any{"name": "mfa-staff", "description": "Staff who must use MFA"}, admin), http.StatusCreated)
	expect(t, s.call(t, http.MethodPut, apiPrefix+"/users/"+nedID+"/roles", map[string]any{"role_ids": []string{role["id"].(string)}}, admin), http.StatusOK)

	rp := startRelyingParty(t)
	rp.register(t, s, admin, "rp-mfa", true, "email")
	bctx, stop := startChromium(t.Context(), chromium, 900, 900)
	defer stop()
	if _, err := chromedp.Call(bctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	tctx, cancelTimeout := context.WithTimeout(bctx, 120*time.Second)
	defer cancelTimeout()
	shot := screenshots(t, tctx)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			body, _ := chromedp.Run(tctx, chromedp.Text(chromedp.CSS("body")))
			t.Fatalf("%s: %v (page: %q)", what, err, body)
		}
	}
	// signIn starts a flow at the relying party in a browser without
	// cookies and enters the password; the page after it must show want.
	signIn := func(username, want string) {
		t.Helper()
		_, err := chromedp.Call(tctx, network.ClearBrowserCookies, cdp.Empty{})
		must("clear cookies", err)
		must("sign in "+username, chromedp.Do(tctx,
			chromedp.Navigate(rp.srv.URL+"/login"),
			chromedp.WaitVisible(chromedp.CSS("#username")),
			chromedp.SendKeys(chromedp.CSS("#username"), username),
			chromedp.SendKeys(chromedp.CSS("#password"), strongPassword+"\r"),
			chromedp.WaitVisible(chromedp.CSS(want)),
		))
	}
	// landed checks the relying party's page: a verified ID token of email
	// with amr pwd otp and the multi-factor acr.
	landed := func(what, email string) {
		t.Helper()
		must(what, chromedp.Do(tctx, chromedp.WaitVisible(chromedp.CSS(`#hello, #error`))))
		body, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS("body")))
		must(what, err)
		if !strings.Contains(body, "Hello "+email) || !strings.Contains(body, "pwd otp") || !strings.Contains(body, "urn:permiso:acr:mfa") {
			t.Fatalf("%s: relying party page %q, want %s with amr pwd otp and acr urn:permiso:acr:mfa", what, body, email)
		}
	}

	// 1. Password, then the app's code.
	signIn("mia", "#code")
	shot("oidc-mfa-code.png")
	must("enter the code", chromedp.Do(tctx, chromedp.SendKeys(chromedp.CSS("#code"), app.code(t)+"\r")))
	landed("TOTP code", "mia@example.com")

	// 2. Password, then a recovery code (behind "Use a recovery code").
	signIn("mia", "#code")
	must("enter a recovery code", chromedp.Do(tctx,
		chromedp.Click(chromedp.CSS("details.recovery summary")),
		chromedp.WaitVisible(chromedp.CSS("#recovery_code")),
		chromedp.SendKeys(chromedp.CSS("#recovery_code"), recovery+"\r"),
	))
	landed("recovery code", "mia@example.com")

	// 3. A required role without a factor: enrollment, recovery codes,
	// continue.
	signIn("ned", "#totp-secret")
	shot("oidc-mfa-enroll.png")
	key, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS("#totp-secret")))
	must("read the key", err)
	svg, err := chromedp.Run(tctx, chromedp.Evaluate[int](`document.querySelectorAll('figure.qr svg path').length`))
	must("QR code", err)
	if svg != 1 {
		t.Errorf("the enrollment page has %d QR paths, want 1", svg)
	}
	must("confirm the app", chromedp.Do(tctx,
		chromedp.SendKeys(chromedp.CSS("#code"), newAuthenticator(t, strings.TrimSpace(key)).code(t)+"\r"),
		chromedp.WaitVisible(chromedp.CSS("#recovery-codes")),
	))
	shot("oidc-mfa-recovery-codes.png")
	n, err := chromedp.Run(tctx, chromedp.Evaluate[int](`document.querySelectorAll('#recovery-codes li').length`))
	must("recovery codes", err)
	if n != mfa.RecoveryCodeCount {
		t.Errorf("%d recovery codes shown, want %d", n, mfa.RecoveryCodeCount)
	}
	must("continue", chromedp.Do(tctx, chromedp.Click(chromedp.CSS("#continue"))))
	landed("enrollment", "ned@example.com")
}

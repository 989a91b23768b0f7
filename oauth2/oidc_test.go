package oauth2_test

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testjwt"
	"github.com/permiso/permiso/jwt"
	"github.com/permiso/permiso/oauth2"
	"github.com/permiso/permiso/sqlite"
)

const (
	oidcIssuer  = "https://auth.example.com"
	rpRedirect  = "https://rp.example.com/callback"
	rfcVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk" // RFC 7636 Appendix B
)

// newOIDCEnv is newEnv with the browser flow wired: the store's codes and
// browser sessions, and an ES256 ID-token signer on the test clock.
func newOIDCEnv(t *testing.T) *env {
	t.Helper()
	return newEnv(t, func(cfg *oauth2.Config, deps *oauth2.Deps) {
		cfg.OIDCIssuer = oidcIssuer
		db := deps.Users.(*sqlite.DB)
		deps.OIDC = db
		s, err := jwt.New(t.Context(), jwt.Options{Algorithm: jwt.ES256, Issuer: oidcIssuer, Keys: db,
			MaxTokenLifetime: time.Hour, Now: deps.Now})
		if err != nil {
			t.Fatal(err)
		}
		deps.IDTokens = s
	})
}

// rpClient registers a client of the authorization code flow.
func (e *env) rpClient(clientID string, public bool) (permiso.ServiceClient, string) {
	return e.createClient(clientID, func(c *permiso.ServiceClient) {
		c.RedirectURIs = []string{rpRedirect}
		c.GrantTypes = []string{permiso.GrantTypeAuthorizationCode}
		c.IsTrusted = true
		if public {
			c.ClientType, c.TokenEndpointAuthMethod = "public", permiso.AuthMethodNone
		}
	})
}

func authorizeQuery(clientID string, extra ...string) url.Values {
	q := url.Values{"client_id": {clientID}, "redirect_uri": {rpRedirect}, "response_type": {"code"},
		"scope": {"openid profile email"}, "state": {"xyz"}, "nonce": {"n-0S6"},
		"code_challenge": {permiso.S256Challenge(rfcVerifier)}, "code_challenge_method": {"S256"}}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			q.Del(extra[i])
		} else {
			q.Set(extra[i], extra[i+1])
		}
	}
	return q
}

// TestParseAuthorizeRequest: until client_id and redirect_uri are valid,
// errors are for the error page (never a redirect); after that they go
// back to the client with state and iss (RFC 6749 §4.1.2.1, RFC 9207).
func TestParseAuthorizeRequest(t *testing.T) {
	e := newOIDCEnv(t)
	e.rpClient("rp", false)
	e.rpClient("spa", true)
	e.createClient("svc", nil) // client credentials only
	e.createClient("off", func(c *permiso.ServiceClient) {
		c.RedirectURIs, c.GrantTypes, c.IsActive = []string{rpRedirect}, []string{permiso.GrantTypeAuthorizationCode}, false
	})
	cases := []struct {
		name     string
		q        url.Values
		redirect bool   // the error goes back to the client
		code     string // "" = valid
	}{
		{"valid", authorizeQuery("rp"), false, ""},
		{"valid without PKCE (confidential)", authorizeQuery("rp", "code_challenge", "", "code_challenge_method", ""), false, ""},
		{"missing client_id", authorizeQuery(""), false, "invalid_request"},
		{"unknown client", authorizeQuery("nobody"), false, "invalid_request"},
		{"client_id not valid UTF-8", authorizeQuery("\xff"), false, "invalid_request"},
		{"client without the grant", authorizeQuery("svc"), false, "invalid_request"},
		{"inactive client", authorizeQuery("off"), false, "invalid_request"},
		{"missing redirect_uri", authorizeQuery("rp", "redirect_uri", ""), false, "invalid_request"},
		{"unregistered redirect_uri", authorizeQuery("rp", "redirect_uri", "https://evil.example.com/cb"), false, "invalid_request"},
		{"redirect_uri with a trailing slash", authorizeQuery("rp", "redirect_uri", rpRedirect+"/"), false, "invalid_request"},
		{"redirect_uri with a query", authorizeQuery("rp", "redirect_uri", rpRedirect+"?a=1"), false, "invalid_request"},
		{"repeated redirect_uri", func() url.Values {
			q := authorizeQuery("rp")
			q.Add("redirect_uri", rpRedirect)
			return q
		}(), false, "invalid_request"},
		{"missing response_type", authorizeQuery("rp", "response_type", ""), true, "invalid_request"},
		{"implicit flow", authorizeQuery("rp", "response_type", "token"), true, "unsupported_response_type"},
		{"hybrid flow", authorizeQuery("rp", "response_type", "code id_token"), true, "unsupported_response_type"},
		{"repeated state", func() url.Values {
			q := authorizeQuery("rp")
			q.Add("state", "other")
			return q
		}(), true, "invalid_request"},
		{"request object", authorizeQuery("rp", "request", "eyJ..."), true, "request_not_supported"},
		{"request_uri", authorizeQuery("rp", "request_uri", "https://rp/req"), true, "request_uri_not_supported"},
		{"fragment response mode", authorizeQuery("rp", "response_mode", "fragment"), true, "invalid_request"},
		{"invalid scope", authorizeQuery("rp", "scope", "openid \"x\""), true, "invalid_scope"},
		{"plain PKCE", authorizeQuery("rp", "code_challenge_method", "plain"), true, "invalid_request"},
		{"PKCE without a method (plain)", authorizeQuery("rp", "code_challenge_method", ""), true, "invalid_request"},
		{"PKCE method without a challenge", authorizeQuery("rp", "code_challenge", ""), true, "invalid_request"},
		{"malformed challenge", authorizeQuery("rp", "code_challenge", "short"), true, "invalid_request"},
		{"public client without PKCE", authorizeQuery("spa", "code_challenge", "", "code_challenge_method", ""), true, "invalid_request"},
		{"prompt none with login", authorizeQuery("rp", "prompt", "none login"), true, "invalid_request"},
		{"unknown prompt", authorizeQuery("rp", "prompt", "create"), true, "invalid_request"},
		{"negative max_age", authorizeQuery("rp", "max_age", "-1"), true, "invalid_request"},
		{"max_age not a number", authorizeQuery("rp", "max_age", "soon"), true, "invalid_request"},
		{"state too long", authorizeQuery("rp", "state", strings.Repeat("s", oauth2.MaxStateLength+1)), true, "invalid_request"},
		{"nonce with a NUL", authorizeQuery("rp", "nonce", "a\x00b"), true, "invalid_request"},
		{"acr_values with a NUL", authorizeQuery("rp", "acr_values", "urn:permiso:acr:mfa\x00"), true, "invalid_request"},
		{"acr_values too long", authorizeQuery("rp", "acr_values", strings.Repeat("a", oauth2.MaxStateLength+1)), true, "invalid_request"},
		{"unknown acr_values", authorizeQuery("rp", "acr_values", "urn:example:gold"), false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := e.svc.ParseAuthorizeRequest(e.ctx, tc.q)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("err = %v, want none", err)
				}
				if r.Client.ClientID != tc.q.Get("client_id") || r.RedirectURI != rpRedirect {
					t.Errorf("request %+v", r)
				}
				return
			}
			var ae *oauth2.AuthorizeError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want an AuthorizeError %s", err, tc.code)
			}
			if ae.Err.Code != tc.code || ae.Redirect != tc.redirect {
				t.Fatalf("error %s (redirect %v), want %s (redirect %v)", ae.Err.Code, ae.Redirect, tc.code, tc.redirect)
			}
			if !tc.redirect {
				if ae.RedirectURL != "" {
					t.Errorf("an error before redirect_uri was validated names a redirect: %q", ae.RedirectURL)
				}
				return
			}
			u, err := url.Parse(ae.RedirectURL)
			if err != nil || !strings.HasPrefix(ae.RedirectURL, rpRedirect+"?") {
				t.Fatalf("redirect %q", ae.RedirectURL)
			}
			q := u.Query()
			if q.Get("error") != tc.code || q.Get("iss") != oidcIssuer {
				t.Errorf("redirect query %v, want error %s and iss %s", q, tc.code, oidcIssuer)
			}
			if want := tc.q.Get("state"); len(want) <= oauth2.MaxStateLength && len(tc.q["state"]) == 1 && q.Get("state") != want {
				t.Errorf("state %q, want %q", q.Get("state"), want)
			}
		})
	}
}

// signedIn signs the user in on the hosted page and returns the browser
// session.
func (e *env) signedIn(username, password string) (permiso.BrowserSession, permiso.User) {
	e.t.Helper()
	_, b, u, err := e.svc.SignIn(e.ctx, username, password, testMeta, nil)
	if err != nil {
		e.t.Fatalf("SignIn: %v", err)
	}
	return b, u
}

// issue runs an authorization for client and returns the code.
func (e *env) issue(clientID string, b permiso.BrowserSession, u permiso.User, extra ...string) string {
	e.t.Helper()
	r, err := e.svc.ParseAuthorizeRequest(e.ctx, authorizeQuery(clientID, extra...))
	if err != nil {
		e.t.Fatalf("ParseAuthorizeRequest: %v", err)
	}
	target, err := e.svc.IssueCode(e.ctx, r, b, u, testMeta)
	if err != nil {
		e.t.Fatalf("IssueCode: %v", err)
	}
	loc, _ := url.Parse(target)
	if loc.Query().Get("iss") != oidcIssuer || loc.Query().Get("state") != "xyz" {
		e.t.Errorf("code redirect %q lacks iss or state", target)
	}
	return loc.Query().Get("code")
}

func exchange(code, verifier string, extra ...string) url.Values {
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpRedirect}}
	if verifier != "" {
		f.Set("code_verifier", verifier)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return f
}

// TestAuthorizationCodeGrant: the code is single use, lives 60 s, and is
// bound to its client, its redirect URI and its PKCE challenge; a second
// presentation revokes what the first issued (RFC 6749 §4.1.2, §4.1.3,
// RFC 7636 §4.6).
func TestAuthorizationCodeGrant(t *testing.T) {
	e := newOIDCEnv(t)
	_, secret := e.rpClient("rp", false)
	_, other := e.rpClient("rp2", false)
	e.rpClient("spa", true)
	e.createUser("alice", goodPassword, permiso.RoleUser)
	b, u := e.signedIn("alice", goodPassword)
	auth := basic("rp", secret)

	t.Run("success", func(t *testing.T) {
		code := e.issue("rp", b, u)
		resp := e.mustToken(exchange(code, rfcVerifier), auth)
		if resp.IDToken == "" || resp.AccessToken == "" {
			t.Fatalf("response %+v", resp)
		}
		p := e.mustAuthenticate(resp.AccessToken)
		claims, err := e.svc.UserInfo(p)
		if err != nil || claims["sub"] != u.ID.String() || claims["email"] != "alice@example.com" {
			t.Errorf("UserInfo = %v, %v", claims, err)
		}
	})
	t.Run("amr comes from the stored code", func(t *testing.T) {
		// A password sign-in: ["pwd"] in the code, the access token, the
		// ID token and the session the exchange opens.
		if !slices.Equal(b.AMR, []string{"pwd"}) {
			t.Errorf("browser session amr = %v, want [pwd]", b.AMR)
		}
		code := e.issue("rp", b, u)
		stored, err := e.db.GetAuthCode(e.ctx, permiso.HashToken(code))
		if err != nil || !slices.Equal(stored.AMR, []string{"pwd"}) {
			t.Fatalf("stored code amr = %v, %v", stored.AMR, err)
		}
		resp := e.mustToken(exchange(code, rfcVerifier), auth)
		if got := e.mustAuthenticate(resp.AccessToken).Claims.AMR; !slices.Equal(got, []string{"pwd"}) {
			t.Errorf("access token amr = %v", got)
		}
		// A browser session raised by a second factor: its methods, in
		// order, reach both tokens of the exchange and its session.
		b2 := b
		b2.AMR = []string{"pwd", "otp"}
		code = e.issue("rp", b2, u)
		resp = e.mustToken(exchange(code, rfcVerifier), auth)
		p := e.mustAuthenticate(resp.AccessToken)
		if !slices.Equal(p.Claims.AMR, []string{"pwd", "otp"}) {
			t.Errorf("access token amr = %v, want [pwd otp]", p.Claims.AMR)
		}
		if got := idTokenAMR(t, resp.IDToken); !slices.Equal(got, []string{"pwd", "otp"}) {
			t.Errorf("ID token amr = %v, want [pwd otp]", got)
		}
		sid, _ := uuid.Parse(p.Claims.SessionID)
		sess, err := e.db.GetSession(e.ctx, sid)
		if err != nil || !slices.Equal(sess.AMR, []string{"pwd", "otp"}) {
			t.Errorf("session amr = %v, %v", sess.AMR, err)
		}
	})
	t.Run("client_secret_post", func(t *testing.T) {
		code := e.issue("rp", b, u)
		if resp := e.mustToken(exchange(code, rfcVerifier, "client_id", "rp", "client_secret", secret), ""); resp.IDToken == "" {
			t.Error("no ID token")
		}
	})
	t.Run("code reuse revokes what the code issued", func(t *testing.T) {
		code := e.issue("rp", b, u, "scope", "openid offline_access")
		first := e.mustToken(exchange(code, rfcVerifier), auth)
		if first.RefreshToken == "" {
			t.Fatal("no refresh token with offline_access")
		}
		_, err := e.token(exchange(code, rfcVerifier), auth)
		wantOAuth(t, err, "invalid_grant", 400)
		e.wantInvalidToken(first.AccessToken, "access token of a reused code")
		_, err = e.refresh(first.RefreshToken, "", auth)
		wantOAuth(t, err, "invalid_grant", 400)
		if len(e.audit.find(oauth2.ActionCodeReuse)) == 0 {
			t.Error("no token.code_reuse audit event")
		}
	})
	t.Run("missing verifier", func(t *testing.T) {
		code := e.issue("rp", b, u)
		_, err := e.token(exchange(code, ""), auth)
		wantOAuth(t, err, "invalid_grant", 400)
		// The failed attempt did not spend the code.
		e.mustToken(exchange(code, rfcVerifier), auth)
	})
	t.Run("wrong verifier", func(t *testing.T) {
		code := e.issue("rp", b, u)
		_, err := e.token(exchange(code, strings.Repeat("a", 43)), auth)
		wantOAuth(t, err, "invalid_grant", 400)
	})
	t.Run("verifier without a challenge (PKCE downgrade)", func(t *testing.T) {
		code := e.issue("rp", b, u, "code_challenge", "", "code_challenge_method", "")
		_, err := e.token(exchange(code, rfcVerifier), auth)
		wantOAuth(t, err, "invalid_grant", 400)
	})
	t.Run("wrong client", func(t *testing.T) {
		code := e.issue("rp", b, u)
		_, err := e.token(exchange(code, rfcVerifier), basic("rp2", other))
		wantOAuth(t, err, "invalid_grant", 400)
	})
	t.Run("wrong secret", func(t *testing.T) {
		code := e.issue("rp", b, u)
		_, err := e.token(exchange(code, rfcVerifier), basic("rp", "wrong"))
		wantOAuth(t, err, "invalid_client", 401)
	})
	t.Run("other redirect_uri", func(t *testing.T) {
		code := e.issue("rp", b, u)
		_, err := e.token(exchange(code, rfcVerifier, "redirect_uri", "https://rp.example.com/other"), auth)
		wantOAuth(t, err, "invalid_grant", 400)
	})
	t.Run("expired code", func(t *testing.T) {
		code := e.issue("rp", b, u)
		e.clock.Advance(permiso.AuthCodeLifetime)
		_, err := e.token(exchange(code, rfcVerifier), auth)
		wantOAuth(t, err, "invalid_grant", 400)
	})
	t.Run("unknown code", func(t *testing.T) {
		_, err := e.token(exchange("no-such-code", rfcVerifier), auth)
		wantOAuth(t, err, "invalid_grant", 400)
	})
	t.Run("public client: client_id alone and PKCE", func(t *testing.T) {
		code := e.issue("spa", b, u)
		resp := e.mustToken(exchange(code, rfcVerifier, "client_id", "spa"), "")
		if resp.IDToken == "" {
			t.Error("no ID token")
		}
		code = e.issue("spa", b, u, "scope", "openid offline_access")
		resp = e.mustToken(exchange(code, rfcVerifier, "client_id", "spa"), "")
		// The public client refreshes with its client_id alone (RFC 6749 §6);
		// another client cannot.
		_, err := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {resp.RefreshToken}, "client_id": {"rp"}}, "")
		wantOAuth(t, err, "invalid_client", 401)
		if _, err := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {resp.RefreshToken}, "client_id": {"spa"}}, ""); err != nil {
			t.Errorf("public client refresh: %v", err)
		}
		code = e.issue("spa", b, u)
		_, err = e.token(exchange(code, "", "client_id", "spa"), "")
		wantOAuth(t, err, "invalid_grant", 400)
	})
	t.Run("confidential client without its secret", func(t *testing.T) {
		code := e.issue("rp", b, u)
		_, err := e.token(exchange(code, rfcVerifier, "client_id", "rp"), "")
		wantOAuth(t, err, "invalid_client", 401)
	})
	t.Run("no client at all", func(t *testing.T) {
		code := e.issue("rp", b, u)
		_, err := e.token(exchange(code, rfcVerifier), "")
		wantOAuth(t, err, "invalid_client", 401)
	})
	t.Run("a sign-out ends the codes of the session", func(t *testing.T) {
		b2, u2 := e.signedIn("alice", goodPassword)
		code := e.issue("rp", b2, u2)
		if err := e.svc.EndBrowserSession(e.ctx, b2, testMeta); err != nil {
			t.Fatal(err)
		}
		_, err := e.token(exchange(code, rfcVerifier), auth)
		wantOAuth(t, err, "invalid_grant", 400)
	})
}

// TestSignIn: the hosted sign-in takes the password grant's path: the same
// answer for an unknown user and a wrong password, the lockout, a new
// browser session each time (no fixation), and revoke-all ends it.
func TestSignIn(t *testing.T) {
	e := newOIDCEnv(t)
	e.createUser("bob", goodPassword, permiso.RoleUser)
	_, _, _, errUnknown := e.svc.SignIn(e.ctx, "nobody", goodPassword, testMeta, nil)
	_, _, _, errWrong := e.svc.SignIn(e.ctx, "bob", "Wrong-password-1!", testMeta, nil)
	a, b := oauth2.AsError(errUnknown), oauth2.AsError(errWrong)
	if a == nil || b == nil || a.Code != "invalid_grant" || a.Code != b.Code || a.Description != b.Description || a.Status != b.Status {
		t.Fatalf("unknown user %v, wrong password %v: want the same invalid_grant", errUnknown, errWrong)
	}
	cookie1, s1, _, err := e.svc.SignIn(e.ctx, "BOB@example.com", goodPassword, testMeta, nil)
	if err != nil {
		t.Fatalf("sign-in by email: %v", err)
	}
	cookie2, s2, _, err := e.svc.SignIn(e.ctx, "bob", goodPassword, testMeta, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie1 == cookie2 || s1.ID == s2.ID {
		t.Error("a second sign-in reused the browser session")
	}
	if _, _, err := e.svc.BrowserSession(e.ctx, cookie1); err != nil {
		t.Errorf("BrowserSession: %v", err)
	}
	if _, err := e.svc.RevokeAllForUser(e.ctx, s1.UserID, "test"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.BrowserSession(e.ctx, cookie2); !errors.Is(err, permiso.ErrNotFound) {
		t.Errorf("BrowserSession after revoke-all: %v, want ErrNotFound", err)
	}
	if len(e.audit.find(oauth2.ActionLoginSuccess)) < 2 || len(e.audit.find(oauth2.ActionLoginFailure)) < 2 {
		t.Error("sign-ins were not audited as logins")
	}
}

// TestNextStep: sign-in, consent or code, by session, prompt, max_age and
// trust (OpenID Connect Core 1.0 §3.1.2.3).
func TestNextStep(t *testing.T) {
	e := newOIDCEnv(t)
	e.rpClient("rp", false)
	e.createClient("untrusted", func(c *permiso.ServiceClient) {
		c.RedirectURIs, c.GrantTypes = []string{rpRedirect}, []string{permiso.GrantTypeAuthorizationCode}
	})
	e.createUser("carol", goodPassword, permiso.RoleUser)
	b, _ := e.signedIn("carol", goodPassword)
	req := func(client string, extra ...string) oauth2.AuthorizeRequest {
		r, err := e.svc.ParseAuthorizeRequest(e.ctx, authorizeQuery(client, extra...))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	e.clock.Advance(2 * time.Minute)
	mfaSession := b
	mfaSession.AMR = []string{oauth2.AuthMethodPassword, oauth2.AuthMethodOTP}
	cases := []struct {
		name             string
		r                oauth2.AuthorizeRequest
		session          *permiso.BrowserSession
		fresh, consented bool
		step             oauth2.AuthorizeStep
		err              string
	}{
		{"no session", req("rp"), nil, false, false, oauth2.StepSignIn, ""},
		{"no session, prompt=none", req("rp", "prompt", "none"), nil, false, false, oauth2.StepSignIn, "login_required"},
		{"session, trusted client", req("rp"), &b, false, false, oauth2.StepIssue, ""},
		{"session, prompt=none", req("rp", "prompt", "none"), &b, false, false, oauth2.StepIssue, ""},
		{"prompt=login", req("rp", "prompt", "login"), &b, false, false, oauth2.StepSignIn, ""},
		{"prompt=login after a fresh sign-in", req("rp", "prompt", "login"), &b, true, false, oauth2.StepIssue, ""},
		{"max_age exceeded", req("rp", "max_age", "60"), &b, false, false, oauth2.StepSignIn, ""},
		{"max_age exceeded, prompt=none", req("rp", "max_age", "60", "prompt", "none"), &b, false, false, oauth2.StepSignIn, "login_required"},
		{"max_age kept", req("rp", "max_age", "600"), &b, false, false, oauth2.StepIssue, ""},
		{"untrusted client", req("untrusted"), &b, false, false, oauth2.StepConsent, ""},
		{"untrusted client, prompt=none", req("untrusted", "prompt", "none"), &b, false, false, oauth2.StepConsent, "consent_required"},
		{"untrusted client, consented", req("untrusted"), &b, false, true, oauth2.StepIssue, ""},
		{"prompt=consent", req("rp", "prompt", "consent"), &b, false, false, oauth2.StepConsent, ""},
		{"acr_values mfa, password session", req("rp", "acr_values", oauth2.ACRMFA), &b, false, false, oauth2.StepSecondFactor, ""},
		{"acr_values mfa, prompt=none", req("rp", "acr_values", oauth2.ACRMFA, "prompt", "none"), &b, false, false, oauth2.StepSecondFactor, "login_required"},
		{"acr_values mfa, second-factor session", req("rp", "acr_values", "urn:example:x "+oauth2.ACRMFA), &mfaSession, false, false, oauth2.StepIssue, ""},
		{"acr_values pwd only", req("rp", "acr_values", oauth2.ACRPassword), &b, false, false, oauth2.StepIssue, ""},
		{"acr_values mfa, no session", req("rp", "acr_values", oauth2.ACRMFA), nil, false, false, oauth2.StepSignIn, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			step, err := e.svc.NextStep(tc.r, tc.session, tc.fresh, tc.consented)
			if step != tc.step {
				t.Errorf("step %v, want %v", step, tc.step)
			}
			if tc.err == "" {
				if err != nil {
					t.Errorf("err = %v", err)
				}
				return
			}
			var ae *oauth2.AuthorizeError
			if !errors.As(err, &ae) || ae.Err.Code != tc.err || !ae.Redirect {
				t.Errorf("err = %v, want a redirected %s", err, tc.err)
			}
		})
	}
}

// TestGrantedScopes: OpenID scopes on request; permiso scopes only when
// both the user and the client hold them (docs/oidc.md, "Scopes"): a
// client that holds nothing collects nothing of its users' scopes.
func TestGrantedScopes(t *testing.T) {
	e := newOIDCEnv(t)
	e.rpClient("rp", false)
	e.createClient("rp-scoped", func(c *permiso.ServiceClient) {
		c.RedirectURIs = []string{rpRedirect}
		c.GrantTypes = []string{permiso.GrantTypeAuthorizationCode}
	}, "read:profile")
	u := e.createUser("dave", goodPassword, permiso.RoleUser)
	u, _ = e.db.GetUser(e.ctx, u.ID)
	admin := e.createUser("erin", goodPassword, permiso.RoleAdmin)
	admin, _ = e.db.GetUser(e.ctx, admin.ID)
	for _, tc := range []struct {
		client string
		user   permiso.User
		want   string
	}{
		{"rp", u, "email openid"},
		{"rp", admin, "email openid"},
		{"rp-scoped", u, "email openid read:profile"},
		{"rp-scoped", admin, "email openid read:profile"},
	} {
		r, err := e.svc.ParseAuthorizeRequest(e.ctx, authorizeQuery(tc.client, "scope", "openid email read:profile admin:users admin:system unknown"))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(oauth2.GrantedScopes(r, tc.user), " "); got != tc.want {
			t.Errorf("%s for %s: granted %q, want %q", tc.client, tc.user.Username, got, tc.want)
		}
	}
}

// TestCodeFlowBoundedByClientScopes: a browser client collects from the
// users who sign in through it only the scopes it holds itself (its
// scope_ids), at the exchange and at every refresh, so that the
// delegation rule on a client's scopes bounds its browser flow too; and
// an admin:* scope is granted only after the user's consent, even to a
// trusted client (docs/oidc.md, "Scopes" and "Consent").
func TestCodeFlowBoundedByClientScopes(t *testing.T) {
	e := newOIDCEnv(t)
	_, evilSecret := e.rpClient("evil", false)
	scoped, scopedSecret := e.createClient("scoped", func(c *permiso.ServiceClient) {
		c.RedirectURIs = []string{rpRedirect}
		c.GrantTypes = []string{permiso.GrantTypeAuthorizationCode, oauth2.GrantRefreshToken}
		c.IsTrusted = true
	}, "admin:users", "read:profile")
	e.createUser("root", goodPassword, permiso.RoleAdmin)
	b, u := e.signedIn("root", goodPassword)
	const asked = "openid offline_access admin:users admin:system read:profile"

	// A client holding nothing: the OpenID Connect scopes only.
	code := e.issue("evil", b, u, "scope", asked)
	resp := e.mustToken(exchange(code, rfcVerifier), basic("evil", evilSecret))
	if resp.Scope != "offline_access openid" {
		t.Errorf("a client holding nothing got %q", resp.Scope)
	}
	if p := e.mustAuthenticate(resp.AccessToken); slices.Contains(p.Claims.Scopes, "admin:users") {
		t.Errorf("access token scopes %v", p.Claims.Scopes)
	}

	// A trusted client holding admin:users: the consent page, and
	// consent_required with prompt=none.
	r, err := e.svc.ParseAuthorizeRequest(e.ctx, authorizeQuery("scoped", "scope", asked, "prompt", "none"))
	if err != nil {
		t.Fatal(err)
	}
	step, err := e.svc.NextStep(r, &b, false, false)
	var ae *oauth2.AuthorizeError
	if step != oauth2.StepConsent || !errors.As(err, &ae) || ae.Err.Code != "consent_required" {
		t.Errorf("prompt=none for admin:users from a trusted client: %v, %v", step, err)
	}
	r, _ = e.svc.ParseAuthorizeRequest(e.ctx, authorizeQuery("scoped", "scope", "openid read:profile"))
	if step, err := e.svc.NextStep(r, &b, false, false); step != oauth2.StepIssue || err != nil {
		t.Errorf("a trusted client without admin scopes: %v, %v", step, err)
	}

	// After consent: the scopes both hold.
	code = e.issue("scoped", b, u, "scope", asked)
	resp = e.mustToken(exchange(code, rfcVerifier), basic("scoped", scopedSecret))
	if resp.Scope != "admin:users offline_access openid read:profile" {
		t.Errorf("scoped client got %q", resp.Scope)
	}
	// The client loses admin:users: the next refresh drops it.
	if _, err := e.db.UpdateServiceClientWithScopes(e.ctx, scoped.ID, func(*permiso.ServiceClient) error { return nil },
		[]uuid.UUID{e.scopes["read:profile"].ID}); err != nil {
		t.Fatal(err)
	}
	ref, err := e.refresh(resp.RefreshToken, "", basic("scoped", scopedSecret))
	if err != nil {
		t.Fatal(err)
	}
	if ref.Scope != "offline_access openid read:profile" {
		t.Errorf("after the client lost admin:users, the refresh gave %q", ref.Scope)
	}
}

// TestUnfaithfulStateIsErrorPage: a state that is not valid UTF-8 or
// holds a NUL, a carriage return or another control character than tab
// and line feed could not come back byte for byte (the client's state
// check would fail), so the request ends on the error page, never at the
// client (docs/oidc.md, "The flow").
func TestUnfaithfulStateIsErrorPage(t *testing.T) {
	e := newOIDCEnv(t)
	e.rpClient("rp", false)
	for _, state := range []string{"a\x00b", "\xff\xfe", "ok\xc3", "a\r\nb", "a\rb", "a\x01b", "a\u0085b"} {
		_, err := e.svc.ParseAuthorizeRequest(e.ctx, authorizeQuery("rp", "state", state))
		var ae *oauth2.AuthorizeError
		if !errors.As(err, &ae) || ae.Redirect || ae.Err.Code != "invalid_request" {
			t.Errorf("state %q: %v, want the error page", state, err)
		}
	}
	if _, err := e.svc.ParseAuthorizeRequest(e.ctx, authorizeQuery("rp", "state", "é ü\t\n<>&\"'")); err != nil {
		t.Errorf("a UTF-8 state: %v", err)
	}
}

// idTokenAMR returns the amr claim of an ID token's payload (its signature
// is the signer's tests' concern).
func idTokenAMR(t *testing.T, idToken string) []string {
	t.Helper()
	var c struct {
		AMR []string `json:"amr"`
	}
	testjwt.Decode(t, idToken, testjwt.Payload, &c)
	return c.AMR
}

package e2e

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	adminUser  = "admin"
	adminEmail = "admin@example.com"
)

// adminServer starts a server on b with extra variables, skips unless the
// token endpoint and the routes exist, and creates the administrator admin
// through the CLI. It returns the server and the administrator's id.
func adminServer(t *testing.T, b backend, extra map[string]string, routes ...route) (*Server, string) {
	t.Helper()
	s := startServer(t, b.env(t, extra))
	for _, r := range append([]route{post(pathToken)}, routes...) {
		requireRoute(t, s, r.method, r.path)
	}
	return s, s.createAdmin(t, adminUser, adminEmail, strongPassword)
}

// eachAdminServer runs test, in parallel, on an adminServer of every
// backend (eachBackend) started with extra and the routes.
func eachAdminServer(t *testing.T, extra map[string]string, routes []route, test func(t *testing.T, s *Server, adminID string)) {
	t.Helper()
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		s, adminID := adminServer(t, b, extra, routes...)
		test(t, s, adminID)
	})
}

// route is a method and a path the server must serve.
type route struct{ method, path string }

func get(path string) route  { return route{http.MethodGet, path} }
func post(path string) route { return route{http.MethodPost, path} }

// TestPasswordGrant: a successful password grant (RFC 6749 4.3) and the
// RFC 9068 access token it returns (docs/oauth.md).
func TestPasswordGrant(t *testing.T) {
	eachAdminServer(t, map[string]string{"ACCESS_TOKEN_EXPIRE_MINUTES": "7"}, nil, func(t *testing.T, s *Server, adminID string) {

		before := time.Now()
		r := s.tryLogin(t, adminUser, strongPassword, "")
		tok := mustTokens(t, r, true)
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: Content-Type %q", r, ct)
		}
		if tok.ExpiresIn != 7*60 {
			t.Errorf("expires_in %d, want 420 (ACCESS_TOKEN_EXPIRE_MINUTES=7)", tok.ExpiresIn)
		}
		granted := strings.Split(tok.Scope, " ")
		if !slices.IsSorted(granted) || len(slices.Compact(slices.Clone(granted))) != len(granted) {
			t.Errorf("scope %q is not sorted and de-duplicated", tok.Scope)
		}
		for _, sc := range seededScopes {
			if !slices.Contains(granted, sc) {
				t.Errorf("scope %q lacks %s: with no scope requested the admin gets all its scopes", tok.Scope, sc)
			}
		}
		// Opaque refresh tokens of at least 256 bits (docs/oauth.md).
		if strings.Count(tok.RefreshToken, ".") == 2 || len(tok.RefreshToken) < 43 {
			t.Errorf("refresh_token %q: want an opaque string of at least 256 bits", tok.RefreshToken)
		}
		if tok.SessionID == nil || !uuidRE.MatchString(*tok.SessionID) {
			t.Fatalf("%s: session_id is not a UUID", r)
		}

		header, claims := decodeJWT(t, tok.AccessToken)
		if header["typ"] != "at+jwt" || header["alg"] != "HS256" {
			t.Errorf("JWT header %v: want typ at+jwt, alg HS256", header)
		}
		if kid, _ := header["kid"].(string); kid == "" {
			t.Errorf("JWT header %v: no kid", header)
		}
		wantClaims := map[string]any{
			"iss": "permiso-auth", "sub": adminID, "type": "access", "sid": *tok.SessionID,
			"scope": tok.Scope, "username": adminUser, "email": adminEmail, "is_superuser": true,
		}
		for k, v := range wantClaims {
			if claims[k] != v {
				t.Errorf("claim %s = %v, want %v", k, claims[k], v)
			}
		}
		if aud := claims["aud"]; aud != "permiso-auth" && !(isArray(aud) && slices.Contains(strs(t, aud, "aud"), "permiso-auth")) {
			t.Errorf("claim aud = %v, want permiso-auth (the default audience is JWT_ISSUER)", aud)
		}
		if got := strs(t, claims["scopes"], "scopes"); !slices.Equal(got, granted) {
			t.Errorf("claim scopes %v, want %v", got, granted)
		}
		if !slices.Contains(strs(t, claims["roles"], "roles"), "admin") {
			t.Errorf("claim roles %v lacks admin", claims["roles"])
		}
		iat, exp, nbf := num(t, claims["iat"], "iat"), num(t, claims["exp"], "exp"), num(t, claims["nbf"], "nbf")
		if exp-iat != 420 || nbf > iat {
			t.Errorf("iat %d, nbf %d, exp %d: want exp = iat + 420 and nbf <= iat", iat, nbf, exp)
		}
		if d := time.Unix(iat, 0).Sub(before); d < -time.Minute || d > time.Minute {
			t.Errorf("iat %d is %v away from now", iat, d)
		}
		if jti, _ := claims["jti"].(string); jti == "" {
			t.Errorf("no jti claim")
		}

		// grant_type may be left out (the original assumed password);
		// usernames are looked up case-insensitively; the scope
		// comes back sorted whatever the request's order.
		r = s.postForm(t, pathToken, url.Values{
			"username": {"ADMIN"}, "password": {strongPassword}, "scope": {"write:profile read:profile"},
		}, nil)
		tok2 := mustTokens(t, r, true)
		if tok2.Scope != "read:profile write:profile" {
			t.Errorf("scope %q, want \"read:profile write:profile\"", tok2.Scope)
		}
		if tok2.SessionID == nil || *tok2.SessionID == *tok.SessionID {
			t.Errorf("second login: session_id %v, want a new session", tok2.SessionID)
		}
		_, claims2 := decodeJWT(t, tok2.AccessToken)
		if claims2["jti"] == claims["jti"] || claims2["sub"] != adminID {
			t.Errorf("second login: jti %v (first %v), sub %v", claims2["jti"], claims["jti"], claims2["sub"])
		}
	})
}

func isArray(v any) bool { _, ok := v.([]any); return ok }

// TestLoginFailures: a wrong password and an unknown user get the same
// answer (no enumeration), and that answer is RFC 6749's invalid_grant.
func TestLoginFailures(t *testing.T) {
	t.Parallel()
	s, _ := adminServer(t, sqliteOnly(t), nil)
	wrong := s.tryLogin(t, adminUser, strongPassword+"x", "")
	unknown := s.tryLogin(t, "nobody-here", strongPassword+"x", "")
	assertOAuthError(t, wrong, http.StatusBadRequest, "invalid_grant")
	assertOAuthError(t, unknown, http.StatusBadRequest, "invalid_grant")
	w, u := withoutRequestID(t, wrong), withoutRequestID(t, unknown)
	if !mapsEqualJSON(w, u) {
		t.Errorf("wrong password and unknown user differ:\n%s\n%s", wrong.Body, unknown.Body)
	}
	for _, h := range []string{"WWW-Authenticate", "Retry-After"} {
		if wrong.Header.Get(h) != unknown.Header.Get(h) {
			t.Errorf("%s differs: %q vs %q", h, wrong.Header.Get(h), unknown.Header.Get(h))
		}
	}
	// The email is no key to a different answer either.
	byEmail := s.tryLogin(t, adminEmail, strongPassword+"x", "")
	assertOAuthError(t, byEmail, http.StatusBadRequest, "invalid_grant")
}

// TestTokenRequestValidation: malformed token requests get the RFC 6749
// 5.2 error the RFC names, before any credential counts.
func TestTokenRequestValidation(t *testing.T) {
	t.Parallel()
	s, _ := adminServer(t, sqliteOnly(t), nil)
	login := func(extra url.Values) url.Values {
		v := url.Values{"grant_type": {"password"}, "username": {adminUser}, "password": {strongPassword}}
		for k, vs := range extra {
			v[k] = vs
		}
		return v
	}
	client := &[2]string{"e2e-no-such-client", "not-the-secret"}

	cases := []struct {
		name   string
		do     func() *Response
		status int
		code   string
	}{
		{"duplicate username", func() *Response {
			return s.postForm(t, pathToken, login(url.Values{"username": {adminUser, adminUser}}), nil)
		}, 400, "invalid_request"},
		{"duplicate grant_type", func() *Response {
			return s.postForm(t, pathToken, login(url.Values{"grant_type": {"password", "password"}}), nil)
		}, 400, "invalid_request"},
		{"missing password", func() *Response {
			return s.postForm(t, pathToken, url.Values{"grant_type": {"password"}, "username": {adminUser}}, nil)
		}, 400, "invalid_request"},
		{"authorization_code without redirect_uri", func() *Response {
			return s.postForm(t, pathToken, url.Values{"grant_type": {"authorization_code"}, "code": {"abc"}}, nil)
		}, 400, "invalid_request"},
		{"unsupported grant device_code", func() *Response {
			return s.postForm(t, pathToken, login(url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}}), nil)
		}, 400, "unsupported_grant_type"},
		{"scope with a double quote", func() *Response {
			return s.postForm(t, pathToken, login(url.Values{"scope": {`read:profile "x"`}}), nil)
		}, 400, "invalid_scope"},
		{"scope with a backslash", func() *Response {
			return s.postForm(t, pathToken, login(url.Values{"scope": {`read:profile a\b`}}), nil)
		}, 400, "invalid_scope"},
		{"Basic and form client credentials", func() *Response {
			return s.postForm(t, pathToken, login(url.Values{"client_id": {client[0]}, "client_secret": {client[1]}}), client)
		}, 400, "invalid_request"},
		{"JSON body", func() *Response {
			return s.postJSON(t, pathToken, map[string]string{"grant_type": "password", "username": adminUser, "password": strongPassword}, "")
		}, 400, "invalid_request"},
		{"unknown client via form", func() *Response {
			return s.postForm(t, pathToken, login(url.Values{"client_id": {client[0]}, "client_secret": {client[1]}}), nil)
		}, 401, "invalid_client"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assertOAuthError(t, c.do(), c.status, c.code)
		})
	}

	t.Run("unknown client via Basic", func(t *testing.T) {
		r := s.postForm(t, pathToken, login(nil), client)
		assertOAuthError(t, r, http.StatusUnauthorized, "invalid_client")
		if h := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Basic") {
			t.Errorf("%s: WWW-Authenticate %q, want Basic (RFC 6749 5.2)", r, h)
		}
	})
	t.Run("GET", func(t *testing.T) {
		if r := s.get(t, pathToken, ""); r.Status != http.StatusMethodNotAllowed {
			t.Errorf("%s: want 405", r)
		}
	})
	// None of the above was a failed login: the password still works.
	s.login(t, adminUser, strongPassword, "")
}

// TestLockout: MAX_LOGIN_ATTEMPTS failures lock a username, known or not;
// while locked even the right password gets 423 account_locked.
func TestLockout(t *testing.T) {
	eachAdminServer(t, map[string]string{"MAX_LOGIN_ATTEMPTS": "3", "LOCKOUT_DURATION_MINUTES": "30"}, nil, func(t *testing.T, s *Server, _ string) {
		var locked [2]*Response
		for i, user := range []string{adminUser, "ghost-user"} {
			for i := 1; i <= 3; i++ {
				r := s.tryLogin(t, user, "Wrong-Passw0rd!", "")
				if i == 3 && r.Status == http.StatusLocked {
					continue // the failure that locks may already say so
				}
				assertOAuthError(t, r, http.StatusBadRequest, "invalid_grant")
			}
			pw := strongPassword // the right password for admin
			r := s.tryLogin(t, user, pw, "")
			m := assertOAuthError(t, r, http.StatusLocked, "account_locked")
			until, err := time.Parse(time.RFC3339, strOf(m["locked_until"]))
			if err != nil {
				t.Errorf("%s: locked_until is not RFC 3339: %v", r, err)
			} else if d := time.Until(until); d < 25*time.Minute || d > 31*time.Minute {
				t.Errorf("%s: locked_until is %v from now, want about 30 minutes", r, d.Round(time.Second))
			}
			locked[i] = r
		}
		// No enumeration: a locked unknown user looks like a locked user.
		if a, g := keysOf(withoutRequestID(t, locked[0])), keysOf(withoutRequestID(t, locked[1])); !slices.Equal(a, g) {
			t.Errorf("locked admin has fields %v, locked unknown user %v", a, g)
		}
	})
}

// TestLoginRateLimit: RATE_LIMIT_LOGIN per client IP, 429 with Retry-After.
func TestLoginRateLimit(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		s := startServer(t, b.env(t, map[string]string{"RATE_LIMIT_LOGIN": "3/minute"}))
		requireRoute(t, s, http.MethodPost, pathToken) // the probe may count as one attempt
		var limited *Response
		for i := 1; i <= 4 && limited == nil; i++ {
			r := s.tryLogin(t, "ghost-"+strconv.Itoa(i), "Wrong-Passw0rd!", "")
			switch {
			case r.Status == http.StatusTooManyRequests && i >= 3:
				limited = r
			case r.Status == http.StatusBadRequest:
			default:
				t.Fatalf("attempt %d: %s: want 400 invalid_grant, or 429 after 3 attempts", i, r)
			}
		}
		if limited == nil {
			t.Fatalf("no 429 after 4 logins with RATE_LIMIT_LOGIN=3/minute")
		}
		assertOAuthError(t, limited, http.StatusTooManyRequests, "rate_limit_exceeded")
		if ra, err := strconv.Atoi(limited.Header.Get("Retry-After")); err != nil || ra <= 0 || ra > 61 {
			t.Errorf("%s: Retry-After %q, want 1..61 seconds (a minute and one slot)", limited, limited.Header.Get("Retry-After"))
		}
		// Still limited, whatever the credentials.
		assertOAuthError(t, s.tryLogin(t, "ghost-5", "Wrong-Passw0rd!", ""), http.StatusTooManyRequests, "rate_limit_exceeded")
	})
}

// TestRefreshRotation: refresh tokens rotate; reusing a rotated one (no
// grace) revokes the whole family and the session's access tokens.
func TestRefreshRotation(t *testing.T) {
	eachAdminServer(t, map[string]string{"REFRESH_TOKEN_REUSE_GRACE_SECONDS": "0"}, []route{post(pathIntro)}, func(t *testing.T, s *Server, _ string) {

		t1 := s.login(t, adminUser, strongPassword, "")
		t2 := mustTokens(t, s.refresh(t, t1.RefreshToken, ""), true)
		if t2.RefreshToken == t1.RefreshToken || t2.AccessToken == t1.AccessToken {
			t.Fatalf("refresh did not rotate the tokens")
		}
		if t2.Scope != t1.Scope {
			t.Errorf("refresh changed the scope from %q to %q", t1.Scope, t2.Scope)
		}
		_, c1 := decodeJWT(t, t1.AccessToken)
		_, c2 := decodeJWT(t, t2.AccessToken)
		if c2["sid"] != c1["sid"] || c2["sub"] != c1["sub"] {
			t.Errorf("refreshed token: sid %v sub %v, want the login's %v %v", c2["sid"], c2["sub"], c1["sid"], c1["sub"])
		}
		s.assertBearerAccepted(t, t2.AccessToken)

		// Reuse of the rotated token: refused, and the family dies.
		assertOAuthError(t, s.refresh(t, t1.RefreshToken, ""), http.StatusBadRequest, "invalid_grant")
		assertOAuthError(t, s.refresh(t, t2.RefreshToken, ""), http.StatusBadRequest, "invalid_grant")
		s.assertBearerRejected(t, t2.AccessToken)
		s.assertBearerRejected(t, t1.AccessToken)

		// Another session is unaffected and sees the dead tokens as inactive.
		t3 := s.login(t, adminUser, strongPassword, "")
		assertInactive(t, s.introspect(t, t3.AccessToken, t2.AccessToken))
		assertInactive(t, s.introspect(t, t3.AccessToken, t2.RefreshToken))
		mustTokens(t, s.refresh(t, t3.RefreshToken, ""), true)
	})
}

// TestRefreshGrace: within REFRESH_TOKEN_REUSE_GRACE_SECONDS a retried
// refresh gets a fresh, working pair instead of revoking the family.
func TestRefreshGrace(t *testing.T) {
	eachAdminServer(t, map[string]string{"REFRESH_TOKEN_REUSE_GRACE_SECONDS": "30"}, []route{post(pathIntro)}, func(t *testing.T, s *Server, _ string) {

		t1 := s.login(t, adminUser, strongPassword, "")
		t2 := mustTokens(t, s.refresh(t, t1.RefreshToken, ""), true)
		t3 := mustTokens(t, s.refresh(t, t1.RefreshToken, ""), true) // the client's retry
		if t3.AccessToken == t2.AccessToken || t3.RefreshToken == t2.RefreshToken || t3.RefreshToken == t1.RefreshToken {
			t.Errorf("the retry within the grace window did not get a fresh pair")
		}
		s.assertBearerAccepted(t, t3.AccessToken)
		t4 := mustTokens(t, s.refresh(t, t3.RefreshToken, ""), true)
		s.assertBearerAccepted(t, t4.AccessToken)
	})
}

// TestRefreshGraceAfterReplacementUsed: a rotated token replayed within
// the grace window after its replacement was used is reuse, not a retry
// (docs/security-model.md, "Refresh token reuse"): the family and the
// session die, the newest token included. It used to get a fresh pair,
// leaving two live branches.
func TestRefreshGraceAfterReplacementUsed(t *testing.T) {
	eachAdminServer(t, map[string]string{"REFRESH_TOKEN_REUSE_GRACE_SECONDS": "30"}, []route{post(pathIntro)}, func(t *testing.T, s *Server, _ string) {

		t0 := s.login(t, adminUser, strongPassword, "")
		t1 := mustTokens(t, s.refresh(t, t0.RefreshToken, ""), true)
		t2 := mustTokens(t, s.refresh(t, t1.RefreshToken, ""), true)
		assertOAuthError(t, s.refresh(t, t0.RefreshToken, ""), http.StatusBadRequest, "invalid_grant")
		assertOAuthError(t, s.refresh(t, t2.RefreshToken, ""), http.StatusBadRequest, "invalid_grant")
		s.assertBearerRejected(t, t2.AccessToken)
	})
}

// TestRefreshEndpoint: POST /auth/refresh takes JSON (as the original) and
// forms.
func TestRefreshEndpoint(t *testing.T) {
	t.Parallel()
	s, _ := adminServer(t, sqliteOnly(t), nil)
	requireRoute(t, s, http.MethodPost, pathRefresh)

	t1 := s.login(t, adminUser, strongPassword, "")
	t2 := mustTokens(t, s.postJSON(t, pathRefresh, map[string]string{"refresh_token": t1.RefreshToken}, ""), true)
	t3 := mustTokens(t, s.postForm(t, pathRefresh, url.Values{"refresh_token": {t2.RefreshToken}}, nil), true)
	if t3.RefreshToken == t2.RefreshToken || t2.RefreshToken == t1.RefreshToken {
		t.Errorf("/auth/refresh did not rotate the refresh token")
	}
	assertOAuthError(t, s.postJSON(t, pathRefresh, map[string]string{}, ""), http.StatusBadRequest, "invalid_request")
	assertOAuthError(t, s.postJSON(t, pathRefresh, map[string]string{"refresh_token": "not-a-refresh-token"}, ""), http.StatusBadRequest, "invalid_grant")
	// An access token is no refresh token.
	assertOAuthError(t, s.postJSON(t, pathRefresh, map[string]string{"refresh_token": t3.AccessToken}, ""), http.StatusBadRequest, "invalid_grant")
	assertOAuthError(t, s.refresh(t, t3.AccessToken, ""), http.StatusBadRequest, "invalid_grant")
	// The failures above did not hurt the live refresh token.
	mustTokens(t, s.refresh(t, t3.RefreshToken, ""), true)
}

// TestRefreshScope: a refresh may narrow but never widen the granted scope
// (RFC 6749 6).
func TestRefreshScope(t *testing.T) {
	t.Parallel()
	s, _ := adminServer(t, sqliteOnly(t), map[string]string{"REFRESH_TOKEN_REUSE_GRACE_SECONDS": "0"})

	t1 := s.login(t, adminUser, strongPassword, "read:profile")
	if t1.Scope != "read:profile" {
		t.Fatalf("login with scope=read:profile granted %q", t1.Scope)
	}
	_, c1 := decodeJWT(t, t1.AccessToken)
	if got := strs(t, c1["scopes"], "scopes"); !slices.Equal(got, []string{"read:profile"}) || c1["scope"] != "read:profile" {
		t.Errorf("claims scope %v scopes %v, want read:profile", c1["scope"], got)
	}
	// The admin holds admin:users, but this login was not granted it.
	assertOAuthError(t, s.refresh(t, t1.RefreshToken, "admin:users"), http.StatusBadRequest, "invalid_scope")
	assertOAuthError(t, s.refresh(t, t1.RefreshToken, "read:profile write:profile"), http.StatusBadRequest, "invalid_scope")

	// A refused refresh must not consume the token (no grace here).
	r := s.refresh(t, t1.RefreshToken, "")
	if r.Status != http.StatusOK {
		t.Fatalf("%s: after refused refreshes (invalid_scope) the refresh token no longer works", r)
	}
	t2 := mustTokens(t, r, true)
	if t2.Scope != "read:profile" {
		t.Errorf("refresh without scope granted %q, want read:profile", t2.Scope)
	}
	_, c2 := decodeJWT(t, t2.AccessToken)
	if c2["scope"] != "read:profile" {
		t.Errorf("refreshed token scope claim %v, want read:profile", c2["scope"])
	}
	t3 := mustTokens(t, s.refresh(t, t2.RefreshToken, "read:profile"), true)
	if t3.Scope != "read:profile" {
		t.Errorf("refresh with scope=read:profile granted %q", t3.Scope)
	}
}

// TestRefreshTokenIsNotABearer: a refresh token never authenticates a
// request (docs/security-model.md, "Callers and token kinds").
func TestRefreshTokenIsNotABearer(t *testing.T) {
	t.Parallel()
	s, _ := adminServer(t, sqliteOnly(t), nil)
	requireRoute(t, s, http.MethodPost, pathIntro)
	requireRoute(t, s, http.MethodPost, pathLogout)

	tok := s.login(t, adminUser, strongPassword, "")
	assertInvalidToken(t, s.introspect(t, tok.RefreshToken, tok.AccessToken))
	assertInvalidToken(t, s.postJSON(t, pathLogout, nil, tok.RefreshToken))
	// Still logged in: the refused logout did nothing.
	s.assertBearerAccepted(t, tok.AccessToken)
	mustTokens(t, s.refresh(t, tok.RefreshToken, ""), true)
}

// TestIntrospection: RFC 7662 for access and refresh tokens; revoked,
// logged-out, forged and garbage tokens are exactly {"active":false}.
func TestIntrospection(t *testing.T) {
	eachAdminServer(t, nil, []route{post(pathIntro), post(pathRevoke), post(pathLogout)}, func(t *testing.T, s *Server, adminID string) {

		caller := s.login(t, adminUser, strongPassword, "") // admin:tokens
		_, claims := decodeJWT(t, caller.AccessToken)
		for name, r := range map[string]*Response{
			"form": s.introspect(t, caller.AccessToken, caller.AccessToken),
			"json": s.postJSON(t, pathIntro, map[string]string{"token": caller.AccessToken}, caller.AccessToken),
		} {
			m := assertActive(t, r)
			assertNoStore(t, r)
			if m["sub"] != adminID || m["scope"] != caller.Scope {
				t.Errorf("%s: %s: want sub %s and scope %q", name, r, adminID, caller.Scope)
			}
			if num(t, m["exp"], "exp") != num(t, claims["exp"], "claims exp") {
				t.Errorf("%s: %s: exp differs from the token's %v", name, r, claims["exp"])
			}
			if tt := m["token_type"]; tt != "access_token" && tt != "Bearer" {
				t.Errorf("%s: %s: token_type %v, want access_token or Bearer", name, r, tt)
			}
			if u, ok := m["username"]; ok && u != adminUser {
				t.Errorf("%s: %s: username %v", name, r, u)
			}
		}

		// The refresh token, with and without a (wrong) hint.
		for _, hint := range []string{"", "access_token", "refresh_token"} {
			form := url.Values{"token": {caller.RefreshToken}}
			if hint != "" {
				form.Set("token_type_hint", hint)
			}
			r := s.postFormBearer(t, pathIntro, form, caller.AccessToken)
			m := assertActive(t, r)
			if m["token_type"] != "refresh_token" || m["sub"] != adminID {
				t.Errorf("hint %q: %s: want token_type refresh_token, sub %s", hint, r, adminID)
			}
		}

		// Expired: the server's own secret and kid, exp an hour ago. The
		// same re-signing with fresh times is active, so the answer below
		// is about expiry, not about the re-signing.
		secret := []byte(s.Env["JWT_SECRET_KEY"])
		fresh := resignHS256(t, caller.AccessToken, secret, func(map[string]any) {})
		assertActive(t, s.introspect(t, caller.AccessToken, fresh))
		expired := resignHS256(t, caller.AccessToken, secret, func(c map[string]any) {
			past := time.Now().Add(-2 * time.Hour).Unix()
			c["iat"], c["nbf"], c["exp"] = past, past, past+3600
			c["jti"] = randomHex(t, 16)
		})
		assertInactive(t, s.introspect(t, caller.AccessToken, expired))
		assertInvalidToken(t, s.get(t, "/api/v1/users/me", expired))

		// Garbage and forgeries.
		for name, tok := range map[string]string{
			"garbage":   "garbage",
			"jwt-ish":   "a.b.c",
			"random":    randomHex(t, 32),
			"forged":    forgeHS256(t, caller.AccessToken, []byte(randomHex(t, 32))),
			"tampered":  tamperClaims(t, caller.AccessToken, "sub", "00000000-0000-0000-0000-000000000000"),
			"alg none":  algNone(t, caller.AccessToken),
			"truncated": caller.AccessToken[:len(caller.AccessToken)-4],
		} {
			t.Run(name, func(t *testing.T) {
				assertInactive(t, s.introspect(t, caller.AccessToken, tok))
			})
		}

		// A revoked access token.
		v := s.login(t, adminUser, strongPassword, "")
		if r := s.postFormBearer(t, pathRevoke, url.Values{"token": {v.AccessToken}}, v.AccessToken); r.Status != http.StatusOK {
			t.Fatalf("%s: want 200", r)
		}
		assertInactive(t, s.introspect(t, caller.AccessToken, v.AccessToken))

		// A logged-out session's tokens.
		w := s.login(t, adminUser, strongPassword, "")
		assertActive(t, s.introspect(t, caller.AccessToken, w.RefreshToken))
		if r := s.postJSON(t, pathLogout, nil, w.AccessToken); r.Status != http.StatusOK {
			t.Fatalf("%s: want 200", r)
		}
		assertInactive(t, s.introspect(t, caller.AccessToken, w.RefreshToken))
		assertInactive(t, s.introspect(t, caller.AccessToken, w.AccessToken))

		// Introspection needs an authenticated caller.
		r := s.postForm(t, pathIntro, url.Values{"token": {caller.AccessToken}}, nil)
		if r.Status != http.StatusUnauthorized {
			t.Errorf("%s: unauthenticated introspection, want 401", r)
		}
	})
}

// TestRevocation: RFC 7009. Unknown tokens are fine; a revoked access token
// dies at once; revoking a refresh token kills its session's access tokens.
func TestRevocation(t *testing.T) {
	eachAdminServer(t, nil, []route{post(pathRevoke), post(pathIntro)}, func(t *testing.T, s *Server, _ string) {

		caller := s.login(t, adminUser, strongPassword, "")
		r := s.postFormBearer(t, pathRevoke, url.Values{"token": {"no-such-token"}}, caller.AccessToken)
		if r.Status != http.StatusOK {
			t.Errorf("%s: unknown token, want 200 (RFC 7009 2.2)", r)
		}
		assertNoStore(t, r)

		// An access token, by its owner, with a wrong hint.
		v := s.login(t, adminUser, strongPassword, "")
		r = s.postFormBearer(t, pathRevoke, url.Values{"token": {v.AccessToken}, "token_type_hint": {"refresh_token"}}, v.AccessToken)
		mustStatus(t, r, http.StatusOK)
		s.assertBearerRejected(t, v.AccessToken)

		// A refresh token (JSON body): its family and the session's
		// access tokens die.
		w := s.login(t, adminUser, strongPassword, "")
		r = s.postJSON(t, pathRevoke, map[string]string{"token": w.RefreshToken, "token_type_hint": "refresh_token"}, w.AccessToken)
		mustStatus(t, r, http.StatusOK)
		s.assertSessionEnded(t, w)

		// Revocation needs an authenticated caller; this one did nothing.
		r = s.postForm(t, pathRevoke, url.Values{"token": {caller.AccessToken}}, nil)
		if r.Status != http.StatusUnauthorized {
			t.Errorf("%s: unauthenticated revocation, want 401", r)
		}
		s.assertBearerAccepted(t, caller.AccessToken)

		if prefix := redisKeyPrefix(s.Env); prefix != "" {
			if n := countRedisKeys(t, prefix); n == 0 {
				t.Errorf("no Redis key under %s* after revocations: CACHE_*_PREFIX not honoured?", prefix)
			}
		}
	})
}

// TestLogout: POST /auth/logout ends the current session at once; {"all":
// true} ends every session of the user.
func TestLogout(t *testing.T) {
	eachAdminServer(t, nil, []route{post(pathLogout), post(pathIntro)}, func(t *testing.T, s *Server, _ string) {

		first := s.login(t, adminUser, strongPassword, "")
		second := s.login(t, adminUser, strongPassword, "")
		r := s.postJSON(t, pathLogout, nil, first.AccessToken)
		mustStatus(t, r, http.StatusOK)
		m := r.JSON(t)
		if msg, _ := m["message"].(string); msg == "" || num(t, m["sessions_terminated"], "sessions_terminated") != 1 {
			t.Errorf("%s: want {message, sessions_terminated: 1}", r)
		}
		s.assertSessionEnded(t, first)
		s.assertBearerAccepted(t, second.AccessToken)

		third := s.login(t, adminUser, strongPassword, "")
		r = s.postJSON(t, pathLogout, map[string]bool{"all": true}, second.AccessToken)
		mustStatus(t, r, http.StatusOK)
		if n := num(t, r.JSON(t)["sessions_terminated"], "sessions_terminated"); n != 2 {
			t.Errorf("%s: sessions_terminated %d, want 2", r, n)
		}
		for _, tok := range []tokenResponse{second, third} {
			s.assertSessionEnded(t, tok)
		}
	})
}

// TestBearerAuthErrors: RFC 6750 §3 challenges and the management envelope (docs/api.md).
func TestBearerAuthErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t, sqliteOnly(t).env(t, nil))
	requireRoute(t, s, http.MethodPost, pathLogout)

	r := s.do(t, request{method: http.MethodPost, path: pathLogout})
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("%s: no token, want 401", r)
	}
	h := r.Header.Get("WWW-Authenticate")
	if !strings.HasPrefix(h, "Bearer") {
		t.Errorf("%s: WWW-Authenticate %q, want Bearer", r, h)
	}
	if strings.Contains(h, "error=") {
		t.Errorf("%s: WWW-Authenticate %q: no error code when the request had no credentials (RFC 6750 3.1)", r, h)
	}
	m := r.JSON(t)
	if m["error"] != "not_authenticated" || strOf(m["error_description"]) == "" || m["request_id"] != r.Header.Get("X-Request-Id") {
		t.Errorf("%s: want {error: not_authenticated, error_description, request_id = X-Request-Id}", r)
	}

	r = s.do(t, request{method: http.MethodPost, path: pathLogout, header: map[string]string{"Authorization": "Basic YTpi"}})
	if r.Status != http.StatusUnauthorized || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("%s: Basic credentials on a bearer route, want 401 with WWW-Authenticate: Bearer", r)
	}

	for name, tok := range map[string]string{
		"garbage": "garbage",
		"foreign": signHS256(t, []byte(randomHex(t, 32)), map[string]any{
			"iss": "permiso-auth", "aud": "permiso-auth", "sub": "00000000-0000-0000-0000-000000000001",
			"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(), "jti": randomHex(t, 8), "type": "access",
		}),
		// The server's own key, but the wrong audience and issuer.
		"wrong issuer": signHS256(t, []byte(s.Env["JWT_SECRET_KEY"]), map[string]any{
			"iss": "someone-else", "aud": "someone-else", "sub": "00000000-0000-0000-0000-000000000001",
			"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(), "jti": randomHex(t, 8), "type": "access",
		}),
	} {
		t.Run(name, func(t *testing.T) {
			r := s.postJSON(t, pathLogout, nil, tok)
			assertInvalidToken(t, r)
			if m := r.JSON(t); m["request_id"] != r.Header.Get("X-Request-Id") || strOf(m["error_description"]) == "" {
				t.Errorf("%s: want error_description and request_id", r)
			}
		})
	}
}

// TestPlainUser: a registered user gets role user's scopes, may introspect
// their own token but learns nothing about others', and cannot revoke them.
func TestPlainUser(t *testing.T) {
	t.Parallel()
	s, _ := adminServer(t, sqliteOnly(t), nil)
	requireRoute(t, s, http.MethodPost, pathRegister)
	requireRoute(t, s, http.MethodPost, pathIntro)
	requireRoute(t, s, http.MethodPost, pathRevoke)

	admin := s.login(t, adminUser, strongPassword, "")
	uid := s.register(t, "alice", "alice@example.com", strongPassword)
	u := s.login(t, "alice", strongPassword, "")
	if u.Scope != "read:profile write:profile" {
		t.Errorf("a new user was granted %q, want role user's \"read:profile write:profile\"", u.Scope)
	}
	_, claims := decodeJWT(t, u.AccessToken)
	if claims["sub"] != uid || !slices.Equal(strs(t, claims["roles"], "roles"), []string{"user"}) {
		t.Errorf("claims sub %v roles %v, want %s [user]", claims["sub"], claims["roles"], uid)
	}
	s.assertBearerAccepted(t, u.AccessToken)

	r := s.introspect(t, u.AccessToken, admin.AccessToken)
	if r.Status != http.StatusForbidden {
		assertInactive(t, r) // a foreign token: nothing is disclosed
	}
	r = s.postFormBearer(t, pathRevoke, url.Values{"token": {admin.AccessToken}}, u.AccessToken)
	if r.Status >= 500 {
		t.Errorf("%s: a user revoking someone else's token", r)
	}
	s.assertBearerAccepted(t, admin.AccessToken)
}

// TestClientCredentials: the client_credentials grant (RFC 6749 4.4) at
// /auth/token and /auth/service-token, client authentication, and tokens
// bound to a client.
func TestClientCredentials(t *testing.T) {
	eachAdminServer(t, nil, []route{post(pathClients), get(pathScopes), post(pathService), post(pathIntro), post(pathRevoke)}, func(t *testing.T, s *Server, adminID string) {

		admin := s.login(t, adminUser, strongPassword, "")
		id, secret := s.createClient(t, admin.AccessToken, "e2e-billing", 600, "read:profile", "admin:tokens")
		basic := &[2]string{id, secret}
		cc := url.Values{"grant_type": {"client_credentials"}}

		r := s.postForm(t, pathToken, url.Values{"grant_type": {"client_credentials"}, "scope": {"read:profile"}}, basic)
		tok := mustTokens(t, r, false)
		if tok.ExpiresIn != 600 || tok.Scope != "read:profile" || tok.RefreshToken != "" || (tok.SessionID != nil && *tok.SessionID != "") {
			t.Errorf("%s: want expires_in 600 (the client's lifetime), scope read:profile, no refresh_token, no session_id", r)
		}
		header, claims := decodeJWT(t, tok.AccessToken)
		if header["typ"] != "at+jwt" || claims["sub"] != id || claims["client_id"] != id || claims["type"] != "service" || claims["sid"] != nil {
			t.Errorf("service token header %v claims %v: want typ at+jwt, sub = client_id = %s, type service, no sid", header, claims, id)
		}

		// No scope requested: every scope of the client, sorted.
		all := mustTokens(t, s.postForm(t, pathToken, url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}, nil), false)
		if all.Scope != "admin:tokens read:profile" {
			t.Errorf("scope %q, want \"admin:tokens read:profile\"", all.Scope)
		}
		svc := mustTokens(t, s.postForm(t, pathService, url.Values{"client_id": {id}, "client_secret": {secret}, "scope": {"admin:tokens"}}, nil), false)
		if svc.Scope != "admin:tokens" {
			t.Errorf("/auth/service-token scope %q, want admin:tokens", svc.Scope)
		}
		assertOAuthError(t, s.postForm(t, pathToken, url.Values{"grant_type": {"client_credentials"}, "scope": {"admin:users"}}, basic),
			http.StatusBadRequest, "invalid_scope")

		// Client authentication failures look alike.
		wrong := s.postForm(t, pathToken, cc, &[2]string{id, secret + "x"})
		unknown := s.postForm(t, pathToken, cc, &[2]string{"e2e-no-such-client", secret})
		for _, r := range []*Response{wrong, unknown} {
			assertOAuthError(t, r, http.StatusUnauthorized, "invalid_client")
			if h := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Basic") {
				t.Errorf("%s: WWW-Authenticate %q, want Basic", r, h)
			}
		}
		if !mapsEqualJSON(withoutRequestID(t, wrong), withoutRequestID(t, unknown)) {
			t.Errorf("wrong secret and unknown client differ:\n%s\n%s", wrong.Body, unknown.Body)
		}
		assertOAuthError(t, s.postForm(t, pathToken, cc, nil), http.StatusUnauthorized, "invalid_client")
		assertOAuthError(t, s.postForm(t, pathService, url.Values{"client_id": {id}, "client_secret": {"nope"}}, nil), http.StatusUnauthorized, "invalid_client")

		// An authenticated client may introspect; the admin sees the
		// service token.
		m := assertActive(t, s.postForm(t, pathIntro, url.Values{"token": {admin.AccessToken}}, basic))
		if m["sub"] != adminID {
			t.Errorf("client introspection: sub %v, want %s", m["sub"], adminID)
		}
		m = assertActive(t, s.introspect(t, admin.AccessToken, tok.AccessToken))
		if m["sub"] != id || m["client_id"] != id {
			t.Errorf("service token introspection %v: want sub and client_id %s", m, id)
		}
		// A service token is not a user's bearer token.
		if r := s.postJSON(t, pathLogout, nil, tok.AccessToken); r.Status != http.StatusUnauthorized && r.Status != http.StatusForbidden {
			t.Errorf("%s: logout with a service token, want 401 or 403", r)
		}
		// The owning client revokes its token.
		if r := s.postForm(t, pathRevoke, url.Values{"token": {tok.AccessToken}}, basic); r.Status != http.StatusOK {
			t.Errorf("%s: want 200", r)
		}
		assertInactive(t, s.introspect(t, admin.AccessToken, tok.AccessToken))

		// A password grant through the client binds the refresh token
		// to it: only that client may refresh it.
		bound := mustTokens(t, s.postForm(t, pathToken, url.Values{"grant_type": {"password"}, "username": {adminUser}, "password": {strongPassword}}, basic), true)
		if _, c := decodeJWT(t, bound.AccessToken); c["client_id"] != id {
			t.Errorf("password grant through client %s: client_id claim %v", id, c["client_id"])
		}
		r = s.refresh(t, bound.RefreshToken, "")
		if r.Status == http.StatusOK {
			t.Errorf("%s: a client's refresh token was refreshed without the client", r)
		} else if e := r.JSON(t)["error"]; e != "invalid_grant" && e != "invalid_client" {
			t.Errorf("%s: want invalid_grant or invalid_client", r)
		}
		mustTokens(t, s.postForm(t, pathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {bound.RefreshToken}}, basic), true)
	})
}

// ---------------------------------------------------------------------------

func strOf(v any) string { s, _ := v.(string); return s }

func keysOf(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

// mapsEqualJSON compares two decoded JSON objects.
func mapsEqualJSON(a, b map[string]any) bool {
	ja, jb := mustMarshal(a), mustMarshal(b)
	return ja == jb
}

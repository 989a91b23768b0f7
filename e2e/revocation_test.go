package e2e

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Revocation after client and global events through the real binary
// (docs/security-model.md, "Sessions and tokens after account events").

// loginVia sends a password grant authenticated as a service client.
func (s *Server) loginVia(t *testing.T, basic *[2]string, username, password string) tokenResponse {
	t.Helper()
	return mustTokens(t, s.postForm(t, pathToken, url.Values{"grant_type": {"password"},
		"username": {username}, "password": {password}}, basic), true)
}

// refreshVia sends the refresh_token grant authenticated as a service
// client.
func (s *Server) refreshVia(t *testing.T, basic *[2]string, refreshToken string) *Response {
	t.Helper()
	return s.postForm(t, pathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}, basic)
}

// TestClientDisableReenableE2E: disabling a service client through the
// API (PUT /service-clients/{client_id} "is_active": false) revokes its
// service token, a user's access token obtained through it and that user's
// refresh token; enabling it again revives none of them, and tokens issued
// after the re-enable work.
func TestClientDisableReenableE2E(t *testing.T) {
	eachAdminServer(t, nil, nil, func(t *testing.T, s *Server, _ string) {
		admin := s.login(t, adminUser, strongPassword, "").AccessToken
		id, secret := s.createClient(t, admin, "e2e-revive", 900, "read:profile")
		basic := &[2]string{id, secret}
		cc := url.Values{"grant_type": {"client_credentials"}}

		service := mustTokens(t, s.postForm(t, pathToken, cc, basic), false).AccessToken
		user := s.loginVia(t, basic, adminUser, strongPassword)
		s.assertBearerAccepted(t, service)
		s.assertBearerAccepted(t, user.AccessToken)

		path := pathClients + "/" + id
		expect(t, s.call(t, http.MethodPut, path, map[string]any{"is_active": false}, admin), http.StatusOK)
		s.assertBearerRejected(t, service)
		s.assertBearerRejected(t, user.AccessToken)
		expect(t, s.call(t, http.MethodPut, path, map[string]any{"is_active": true}, admin), http.StatusOK)

		// Nothing issued before the disable comes back.
		s.assertBearerRejected(t, service)
		s.assertBearerRejected(t, user.AccessToken)
		assertOAuthError(t, s.refreshVia(t, basic, user.RefreshToken), http.StatusBadRequest, "invalid_grant")
		assertInactive(t, s.introspect(t, admin, user.RefreshToken))

		// What is issued now works.
		service2 := mustTokens(t, s.postForm(t, pathToken, cc, basic), false).AccessToken
		user2 := s.loginVia(t, basic, adminUser, strongPassword)
		s.assertBearerAccepted(t, service2)
		s.assertBearerAccepted(t, user2.AccessToken)
		refreshed := mustTokens(t, s.refreshVia(t, basic, user2.RefreshToken), true)
		s.assertBearerAccepted(t, refreshed.AccessToken)
	})
}

// cutoffRE reads the global cut-off from the output of `permiso sessions
// revoke-all`.
var cutoffRE = regexp.MustCompile(`every access token issued before (\S+) is refused, service tokens included`)

// TestSessionsRevokeAllCoversServiceTokensE2E: `permiso sessions
// revoke-all` (no --user) run against a live server refuses every token
// issued before it, service clients' tokens included, also one issued
// earlier in the cut-off's own second; tokens issued after it work. On
// SQLite without Redis the server sees the command's writes through the
// database, so its cache is turned off (CACHE_LOCAL_TTL=0; with the
// default a running server sees them within CACHE_LOCAL_TTL); with
// PostgreSQL and Redis the server sees the global cut-off in Redis at once.
func TestSessionsRevokeAllCoversServiceTokensE2E(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		var extra map[string]string
		if b.name == "sqlite" {
			extra = map[string]string{"CACHE_LOCAL_TTL": "0"}
		}
		s, _ := adminServer(t, b, extra)
		admin := s.login(t, adminUser, strongPassword, "")
		id, secret := s.createClient(t, admin.AccessToken, "e2e-global", 900, "read:profile")
		basic := &[2]string{id, secret}
		cc := url.Values{"grant_type": {"client_credentials"}}
		serviceToken := func() string { return mustTokens(t, s.postForm(t, pathToken, cc, basic), false).AccessToken }
		service := serviceToken()
		viaClient := s.loginVia(t, basic, adminUser, strongPassword)

		// A service token issued just before the command, at the start
		// of a second, so that the command's cut-off most likely falls
		// in the same second (which the one-second rule of iat let
		// through). The token must be refused wherever the cut-off
		// falls; when the command was too slow to land in that second,
		// it is tried again.
		var sameSecond, out string
		var cutoff time.Time
		for attempt := 1; ; attempt++ {
			now := time.Now()
			time.Sleep(now.Truncate(time.Second).Add(time.Second + 10*time.Millisecond).Sub(now))
			sameSecond = serviceToken()
			r := s.cli(t, "", "sessions", "revoke-all")
			if r.Code != 0 {
				t.Fatalf("permiso sessions revoke-all: exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
			}
			out = r.Stdout
			m := cutoffRE.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("permiso sessions revoke-all printed no cut-off: %q", out)
			}
			var err error
			if cutoff, err = time.Parse(time.RFC3339Nano, m[1]); err != nil {
				t.Fatalf("cut-off %q: %v", m[1], err)
			}
			_, claims := decodeJWT(t, sameSecond)
			iat := num(t, claims["iat"], "iat")
			if iat == cutoff.Unix() {
				break
			}
			if attempt == 3 {
				t.Logf("the cut-off %v never fell in the second of the token issued just before it (iat %d); the same-second case is covered by oauth2.TestRevokeAllCoversServiceTokens", cutoff, iat)
				break
			}
		}
		if !strings.Contains(out, "the tokens of 1 service client(s)") {
			t.Errorf("revoke-all output does not count the service clients: %q", out)
		}

		for name, tok := range map[string]string{
			"service token":                    service,
			"service token of the same second": sameSecond,
			"administrator's token":            admin.AccessToken,
			"user token through the client":    viaClient.AccessToken,
		} {
			t.Run(name, func(t *testing.T) { s.assertBearerRejected(t, tok) })
		}
		assertOAuthError(t, s.refresh(t, admin.RefreshToken, ""), http.StatusBadRequest, "invalid_grant")
		assertOAuthError(t, s.refreshVia(t, basic, viaClient.RefreshToken), http.StatusBadRequest, "invalid_grant")

		// Issued after the cut-off: accepted.
		s.assertBearerAccepted(t, serviceToken())
		again := s.login(t, adminUser, strongPassword, "")
		s.assertBearerAccepted(t, again.AccessToken)
		s.assertBearerAccepted(t, mustTokens(t, s.refresh(t, again.RefreshToken, ""), true).AccessToken)
	})
}

package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// TestAuditSurvivesNonUTF8UserAgent runs the attack on the audit log
// against the real binary: anonymous client_credentials requests whose
// User-Agent is the byte 0xff, and six wrong passwords with that header
// that lock an account, sent while an administrator logs in. On
// PostgreSQL such a value used to make the whole batch fail, so every
// event of that flush was lost. After a SIGTERM (which flushes) and a
// restart, every one of these events is in the audit log, the hostile ones
// with the user agent U+FFFD, on SQLite and on PostgreSQL alike.
func TestAuditSurvivesNonUTF8UserAgent(t *testing.T) {
	eachAdminServer(t, map[string]string{"RATE_LIMIT_LOGIN": "", "RATE_LIMIT_REGISTER": "", "RATE_LIMIT_SERVICE_TOKEN": ""}, []route{get(pathAdmin + "/audit/activity")}, func(t *testing.T, s *Server, _ string) {
		s.register(t, "victim", "victim@example.com", strongPassword)

		const hostile, logins = 10, 4
		var wg sync.WaitGroup
		for i := range hostile {
			wg.Go(func() {
				form := url.Values{"grant_type": {"client_credentials"}, "client_id": {fmt.Sprintf("x%d", i)}, "client_secret": {"y"}}
				r := s.do(t, request{method: http.MethodPost, path: pathToken, body: strings.NewReader(form.Encode()),
					contentType: "application/x-www-form-urlencoded", header: map[string]string{"User-Agent": "\xff"}})
				if r.Status != http.StatusUnauthorized {
					t.Errorf("%s: want 401", r)
				}
			})
		}
		// Password checks one after the other (the server bounds
		// concurrent hashing and would answer 503), interleaved with
		// the administrator's logins, while the client requests run.
		wg.Go(func() {
			for i := range 6 {
				form := url.Values{"grant_type": {"password"}, "username": {"victim"}, "password": {"Wrong-Passw0rd!"}}
				r := s.do(t, request{method: http.MethodPost, path: pathToken, body: strings.NewReader(form.Encode()),
					contentType: "application/x-www-form-urlencoded", header: map[string]string{"User-Agent": "\xff"}})
				if want := map[bool]int{true: http.StatusBadRequest, false: http.StatusLocked}[i < 5]; r.Status != want {
					t.Errorf("wrong password %d: %s, want %d", i+1, r, want)
				}
				if i < logins {
					s.login(t, adminUser, strongPassword, "")
				}
			}
		})
		wg.Wait()
		s.stop(t) // SIGTERM: the audit log is flushed; exit status 0 is checked

		s2 := startServer(t, s.Env)
		admin := s2.login(t, adminUser, strongPassword, "").AccessToken
		activity := func(action string) (total int64, userAgents map[string]int) {
			t.Helper()
			r := expect(t, s2.get(t, pathAdmin+"/audit/activity?per_page=100&action="+action, admin), http.StatusOK)
			userAgents = map[string]int{}
			items, _ := r["activities"].([]any)
			for _, it := range items {
				ua, _ := it.(map[string]any)["user_agent"].(string)
				userAgents[ua]++
			}
			return num(t, r["total"], "total"), userAgents
		}
		if n, uas := activity("client.auth_failure"); n != hostile || uas["\uFFFD"] != hostile {
			t.Errorf("client.auth_failure: %d events, user agents %v; want %d, each U+FFFD", n, uas, hostile)
		}
		if n, uas := activity("login.failure"); n != 6 || uas["\uFFFD"] != 6 {
			t.Errorf("login.failure: %d events, user agents %v; want 6 (5 wrong passwords, 1 while locked), each U+FFFD", n, uas)
		}
		if n, uas := activity("login.locked"); n != 1 || uas["\uFFFD"] != 1 {
			t.Errorf("login.locked: %d events, user agents %v; want 1 with U+FFFD", n, uas)
		}
		// The administrator's logins of the first run (the login just
		// made on the second server may not be flushed yet).
		if n, _ := activity("login.success"); n < logins {
			t.Errorf("login.success: %d events, want at least %d", n, logins)
		}
	})
}

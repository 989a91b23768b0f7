package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/permiso/permiso"
)

// Requests that probe the edges of the users and sessions API: each must
// be refused or recorded as docs/security-model.md says, never taken for
// something else.

// TestSessionsBlankUserIDIsInvalid: a ?user_id= made of blanks is not a
// UUID (422 naming user_id), never "absent", which would make an
// administrator's request act on their own sessions.
func TestSessionsBlankUserIDIsInvalid(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		_, _, tok := e.delegatedUser("sessions-admin", "admin:sessions")
		for _, blank := range []string{"%20", "%09", "%0A", "%C2%85", "%C2%A0", "%E3%80%80"} {
			for _, method := range []string{"GET", "DELETE"} {
				w := e.do(method, "/api/v1/sessions", "/api/v1/sessions?user_id="+blank, tok, nil)
				m := errorOf(t, w, http.StatusUnprocessableEntity, "validation_error", method+" user_id="+blank)
				if d, _ := m["details"].([]any); len(d) != 1 || d[0].(map[string]any)["field"] != "user_id" {
					t.Errorf("%s user_id=%s: details %v, want user_id", method, blank, m["details"])
				}
			}
		}
		// The caller's own session survived every DELETE above.
		e.expect(e.do("GET", "/api/v1/users/me", "/api/v1/users/me", tok, nil), http.StatusOK, "own token after the refused deletes")
	})
}

// TestUpdateMeRefusesCredentialFieldsInAnyCase: username, password and
// password_hash are refused (422) however their keys are spelled, as
// encoding/json would match them without regard to case.
func TestUpdateMeRefusesCredentialFieldsInAnyCase(t *testing.T) {
	for _, b := range idBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newIDEnv(t, b).hostile()
			u := e.user("casey", false, permiso.RoleUser)
			tok := e.login(u.Username, idPassword, "").AccessToken
			for _, key := range []string{"password", "PASSWORD", "Password", "Username", "USERNAME", "Password_Hash", "PASSWORD_HASH"} {
				w := e.do("PUT", "/api/v1/users/me", "/api/v1/users/me", tok, map[string]any{key: "Xx-1234567890-aA"})
				errorOf(t, w, http.StatusUnprocessableEntity, "validation_error", "PUT /users/me with "+key)
			}
			e.login(u.Username, idPassword, "") // the password is unchanged
		})
	}
}

// TestRefusedRegistrationIsAudited: a registration refused for a taken
// username or an invalid field leaves a user.register failure event, so
// probing for accounts through registration leaves a trace.
func TestRefusedRegistrationIsAudited(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		u := e.user("taken", false, permiso.RoleUser)
		w := e.do("POST", "/api/v1/users/register", "/api/v1/users/register", "",
			map[string]any{"username": u.Username, "email": "other-" + u.Email, "password": "Zebra-Quartz-9177!"})
		errorOf(t, w, http.StatusConflict, "conflict", "register a taken username")
		ev := e.auditEvent("user.register", "", "failure")
		if ev.Details["username"] != u.Username || ev.Details["error"] != "already_exists" {
			t.Errorf("user.register failure details %v", ev.Details)
		}
	})
}

// TestRefusedCreationsAreAudited: a service client or a scope whose
// creation fails validation is audited as a failure, the scope under the
// name that was sent.
func TestRefusedCreationsAreAudited(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		tok := e.adminToken()
		w := e.do("POST", "/api/v1/service-clients", "/api/v1/service-clients", tok,
			map[string]any{"name": "Probe", "access_token_lifetime": 1})
		errorOf(t, w, http.StatusUnprocessableEntity, "validation_error", "client with a lifetime of 1 s")
		if ev := e.auditEvent("client.create", "", "failure"); ev.Details["name"] != "Probe" {
			t.Errorf("client.create failure details %v", ev.Details)
		}
		w = e.do("POST", "/api/v1/roles/scopes", "/api/v1/roles/scopes", tok,
			map[string]any{"name": "read:reports", "description": strings.Repeat("x", 600)})
		if w.Code < 400 || w.Code >= 500 {
			t.Fatalf("scope with a 600-byte description: %d %s", w.Code, w.Body)
		}
		if ev := e.auditEvent("scope.create", "", "failure"); ev.Details["name"] != "read:reports" {
			t.Errorf("scope.create failure details %v, want the name sent", ev.Details)
		}
	})
}

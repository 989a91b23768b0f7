package httpapi

import (
	"net/http"
	"testing"

	"github.com/google/uuid"
)

// TestUnknownIDsNotFoundMessages: the routes that read a user, role or
// scope straight from the store answer an unknown id with the store's own
// message (storetest pins it on every backend), which the HTTP layer
// passes on unchanged.
func TestUnknownIDsNotFoundMessages(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		admin := e.adminToken()
		unknown := uuid.NewString()
		for _, c := range []struct {
			method, route, path string
			body                any
			want                string
		}{
			{"GET", rolesPath + "/{role_id}", rolesPath + "/" + unknown, nil, "Role not found"},
			{"GET", rolesPath + "/scopes/{scope_id}", rolesPath + "/scopes/" + unknown, nil, "Scope not found"},
			{"GET", rolesPath + "/permissions/user/{user_id}", rolesPath + "/permissions/user/" + unknown, nil, "User not found"},
			{"POST", rolesPath + "/permissions/check", rolesPath + "/permissions/check",
				map[string]any{"user_id": unknown, "resource": "profile", "action": "read"}, "User not found"},
		} {
			m := errorOf(t, e.do(c.method, c.route, c.path, admin, c.body), http.StatusNotFound, "not_found", c.method+" "+c.path)
			if m["error_description"] != c.want {
				t.Errorf("%s %s: error_description %q, want %q", c.method, c.route, m["error_description"], c.want)
			}
		}
	})
}

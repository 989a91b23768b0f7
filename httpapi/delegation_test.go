package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// The regression tests below each replay one privilege escalation of a
// delegated administrator (a caller holding some admin:* scopes, but
// neither superuser status nor role admin) and check that it is refused
// with 403 forbidden, changes nothing and is audited as a failure
// (docs/security-model.md, "Delegated administrators").

// delegatedUser creates a user whose only role holds exactly scopes, and
// logs them in.
func (e *idEnv) delegatedUser(prefix string, scopes ...string) (permiso.User, permiso.Role, string) {
	e.t.Helper()
	role := e.role(prefix+"-role-", scopes...)
	u := e.user(prefix, false, role.Name)
	return u, role, e.login(u.Username, idPassword, "").AccessToken
}

// serviceToken runs the client credentials grant for a client.
func (e *idEnv) serviceToken(clientID, secret string) *httptest.ResponseRecorder {
	e.t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/api/v1/auth/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(clientID, secret)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// refusedAsDelegation checks a 403 forbidden and the failure audit event
// of action about targetID with reason "delegation".
func (e *idEnv) refusedAsDelegation(w *httptest.ResponseRecorder, action, targetID, what string) {
	e.t.Helper()
	if m := e.expect(w, http.StatusForbidden, what); m["error"] != "forbidden" {
		e.t.Errorf("%s: error %v, want forbidden", what, m["error"])
	}
	ev := e.auditEvent(action, targetID, "failure")
	if ev.Details["reason"] != "delegation" {
		e.t.Errorf("%s: audit details %v, want reason delegation", what, ev.Details)
	}
}

// roleScopesRefused sends scope_ids for the role (what names it) with tok
// through both routes that set them, PUT /roles/{role_id}/scopes and PUT
// /roles/{role_id}, checks that each is refused as a delegation, and
// returns the role as stored afterwards.
func (e *idEnv) roleScopesRefused(tok string, roleID uuid.UUID, ids []string, what string) permiso.Role {
	e.t.Helper()
	rp := rolesPath + "/" + roleID.String()
	e.refusedAsDelegation(e.do("PUT", rolesPath+"/{role_id}/{sub}", rp+"/scopes", tok,
		map[string]any{"scope_ids": ids}), "role.scopes", roleID.String(), "PUT "+what+"'s scopes")
	e.refusedAsDelegation(e.do("PUT", rolesPath+"/{role_id}", rp, tok,
		map[string]any{"scope_ids": ids}), "role.update", roleID.String(), "PUT "+what+" with scope_ids")
	got, err := e.db.GetRole(e.ctx, roleID)
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

// TestUsersAdminCannotTakeOverSuperuser: a holder of admin:users alone
// cannot set a superuser's password without the current one (and then log
// in as them), nor change the superuser's email (then reset the password
// by mail).
func TestUsersAdminCannotTakeOverSuperuser(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		root := e.user("root", true, "admin")
		_, _, tok := e.delegatedUser("helpdesk", "admin:users")
		p := usersPath + "/" + root.ID.String()

		const stolen = "Stolen-Pass-42!x"
		e.refusedAsDelegation(e.do("PUT", usersPath+"/{user_id}/password", p+"/password", tok,
			map[string]any{"new_password": stolen}), "password.change", root.ID.String(), "set the superuser's password")
		if w := e.tryLogin(root.Username, stolen, ""); w.Code == http.StatusOK {
			t.Fatal("logged in as the superuser with the password the admin:users holder set")
		}
		e.login(root.Username, idPassword, "")

		e.refusedAsDelegation(e.do("PUT", usersPath+"/{user_id}", p, tok,
			map[string]any{"email": "attacker@example.com"}), "user.update", root.ID.String(), "change the superuser's email")
		got, err := e.db.GetUser(e.ctx, root.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Email != root.Email || got.PasswordHash != root.PasswordHash || !got.IsActive {
			t.Errorf("refused requests changed the superuser: email %s", got.Email)
		}
	})
}

// TestUsersAdminCannotGrantItselfRoleAdmin: a holder of admin:users alone
// cannot give itself role admin, through either route that sets roles.
func TestUsersAdminCannotGrantItselfRoleAdmin(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		me, role, tok := e.delegatedUser("helpdesk", "admin:users")
		p := usersPath + "/" + me.ID.String()
		admin := e.roles["admin"].ID.String()

		e.refusedAsDelegation(e.do("PUT", usersPath+"/{user_id}/roles", p+"/roles", tok,
			map[string]any{"role_ids": []string{role.ID.String(), admin}}), "user.roles", me.ID.String(), "PUT own roles with admin")
		e.refusedAsDelegation(e.do("PUT", usersPath+"/{user_id}", p, tok,
			map[string]any{"role_ids": []string{role.ID.String(), admin}}), "user.update", me.ID.String(), "PUT own record with role admin")
		got, err := e.db.GetUser(e.ctx, me.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.RoleNames(), []string{role.Name}) {
			t.Errorf("roles now %v", got.RoleNames())
		}
		// Still no administrator.
		e.expect(e.do("GET", "/api/v1/admin/logs/errors", "/api/v1/admin/logs/errors", tok, nil), http.StatusForbidden, "admin:logs route")
	})
}

// TestUsersAdminCannotWidenOwnRole: a holder of admin:users alone cannot
// add admin:system or admin:logs to the role it holds.
func TestUsersAdminCannotWidenOwnRole(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		_, role, tok := e.delegatedUser("helpdesk", "admin:users")
		ids := idStrings(e.scopeIDs("admin:users", "admin:system", "admin:logs"))
		got := e.roleScopesRefused(tok, role.ID, ids, "own role")
		if len(got.Scopes) != 1 || got.Scopes[0].Name != "admin:users" {
			t.Errorf("role scopes now %v", got.Scopes)
		}
		e.expect(e.do("GET", "/api/v1/admin/logs/errors", "/api/v1/admin/logs/errors", tok, nil), http.StatusForbidden, "admin:logs route")
		e.expect(e.do("GET", "/api/v1/admin/system/health", "/api/v1/admin/system/health", tok, nil), http.StatusForbidden, "admin:system route")
	})
}

// TestClientsAdminCannotMintAdminClient: a holder of admin:clients alone
// cannot create a service client carrying every admin:* scope (whose
// token would then open every administrative route).
func TestClientsAdminCannotMintAdminClient(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		for _, caller := range []string{"user", "service client"} {
			tok := e.clientToken("admin:clients")
			if caller == "user" {
				_, _, tok = e.delegatedUser("integrator", "admin:clients")
			}
			var admin []string
			for _, n := range permiso.DefaultScopes {
				if strings.HasPrefix(n, "admin:") {
					admin = append(admin, n)
				}
			}
			ids := idStrings(e.scopeIDs(admin...))
			clientID := e.name("skeleton-key-")
			w := e.do("POST", "/api/v1/service-clients", "/api/v1/service-clients", tok,
				map[string]any{"name": "Skeleton key", "client_id": clientID, "scope_ids": ids})
			if w.Code == http.StatusCreated {
				// Show what the escalation gives before failing.
				var created struct {
					Secret string `json:"client_secret"`
				}
				_ = json.Unmarshal(w.Body.Bytes(), &created)
				tw := e.serviceToken(clientID, created.Secret)
				var tr struct {
					AccessToken string `json:"access_token"`
				}
				_ = json.Unmarshal(tw.Body.Bytes(), &tr)
				reached := e.do("GET", "", "/api/v1/admin/logs/errors", tr.AccessToken, nil).Code
				t.Fatalf("as %s: created a client with every admin:* scope; its token reads /admin/logs/errors: %d", caller, reached)
			}
			e.refusedAsDelegation(w, "client.create", clientID, "create a client with every admin:* scope as "+caller)
			if _, err := e.db.GetServiceClientByClientID(e.ctx, clientID); err == nil {
				t.Errorf("as %s: the refused client exists", caller)
			}
			if w := e.serviceToken(clientID, "anything"); w.Code == http.StatusOK {
				t.Errorf("as %s: a token for the refused client", caller)
			}
		}
	})
}

// TestUsersAdminCannotWidenRoleUser: a holder of admin:users alone cannot
// add a scope to the built-in role user, which every registration gets
// and whose scopes every caller counts as held: admin:users added there
// would reach the public and every other delegated administrator.
func TestUsersAdminCannotWidenRoleUser(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		_, _, tok := e.delegatedUser("helpdesk", "admin:users")
		userRole, err := e.db.GetRoleByName(e.ctx, permiso.RoleUser)
		if err != nil {
			t.Fatal(err)
		}
		ids := []string{}
		for _, sc := range userRole.Scopes {
			ids = append(ids, sc.ID.String())
		}
		adminUsers, err := e.db.GetScopeByName(e.ctx, "admin:users")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, adminUsers.ID.String())
		got := e.roleScopesRefused(tok, userRole.ID, ids, "role user")
		if len(got.Scopes) != len(userRole.Scopes) {
			t.Errorf("role user's scopes now %v", got.Scopes)
		}
	})
}

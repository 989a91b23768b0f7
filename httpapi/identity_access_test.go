package httpapi

import (
	"slices"
	"strings"
	"testing"

	"github.com/permiso/permiso"
)

// The callers of the route × caller table (docs/security-model.md).
const (
	cAnon     = "anonymous"
	cUser     = "user"       // the user the route's {user_id} names
	cOther    = "other user" // another plain user
	cAdmin    = "admin"      // role admin
	cScoped   = "admin:users holder"
	cClient   = "service client"             // scopes read:profile
	cCAdmin   = "service client admin:users" // scopes admin:users
	cDisabled = "disabled user"
	cRefresh  = "refresh token as bearer"
)

var idCallers = []string{cAnon, cUser, cOther, cAdmin, cScoped, cClient, cCAdmin, cDisabled, cRefresh}

// cell is the fixture of one request: fresh objects, so that no cell
// depends on what another one did.
type cell struct {
	target     permiso.User // the route's {user_id}; it is cUser
	targetPass string
	role       permiso.Role // a fresh role (no users)
	scope      permiso.Scope
	unique     string
}

type idRoute struct {
	method, route string // route: the registered pattern below /api/v1
	path          func(c cell) string
	body          func(c cell) any
	// want: the status of every caller.
	want map[string]int
}

// Status sets for the access rules.
func userRoute(ok int) map[string]int {
	return map[string]int{cAnon: 401, cUser: ok, cOther: ok, cAdmin: ok, cScoped: ok, cClient: 403, cCAdmin: 403, cDisabled: 401, cRefresh: 401}
}

func adminRoute(ok int) map[string]int {
	return map[string]int{cAnon: 401, cUser: 403, cOther: 403, cAdmin: ok, cScoped: ok, cClient: 403, cCAdmin: ok, cDisabled: 401, cRefresh: 401}
}

func selfOrAdminRoute(self, ok int) map[string]int {
	return map[string]int{cAnon: 401, cUser: self, cOther: 403, cAdmin: ok, cScoped: ok, cClient: 403, cCAdmin: ok, cDisabled: 401, cRefresh: 401}
}

// beyondDelegation is an admin route whose fixture (c.scope, a scope no
// caller but an administrator holds) is out of reach of the delegated
// holders of admin:users: the delegation rule refuses them with 403
// (TestDelegationMatrix covers the rule itself).
func beyondDelegation(ok int) map[string]int {
	m := adminRoute(ok)
	m[cScoped], m[cCAdmin] = 403, 403
	return m
}

func permsRoute(ok int) map[string]int {
	return map[string]int{cAnon: 401, cUser: 403, cOther: 403, cAdmin: ok, cScoped: 403, cClient: 403, cCAdmin: 403, cDisabled: 401, cRefresh: 401}
}

func publicRoute(status int) map[string]int {
	m := map[string]int{}
	for _, c := range idCallers {
		m[c] = status
	}
	return m
}

func fixed(p string) func(cell) string { return func(cell) string { return p } }

func idRoutes() []idRoute {
	api := "/api/v1"
	uid := func(suffix string) func(c cell) string {
		return func(c cell) string { return api + "/users/" + c.target.ID.String() + suffix }
	}
	return []idRoute{
		{method: "POST", route: "/users/register", path: fixed(api + "/users/register"),
			body: func(c cell) any {
				return map[string]any{"username": c.unique, "email": c.unique + "@example.com", "password": idPassword}
			}, want: publicRoute(201)},
		{method: "POST", route: "/users/password-reset/request", path: fixed(api + "/users/password-reset/request"),
			body: func(c cell) any { return map[string]any{"email": c.target.Email} }, want: publicRoute(200)},
		{method: "POST", route: "/users/password-reset/confirm", path: fixed(api + "/users/password-reset/confirm"),
			body: func(c cell) any { return map[string]any{"token": "bogus", "new_password": idPassword + "x"} }, want: publicRoute(400)},
		{method: "POST", route: "/users/email-verification/request", path: fixed(api + "/users/email-verification/request"),
			body: func(c cell) any { return map[string]any{"email": c.target.Email} }, want: publicRoute(200)},
		{method: "POST", route: "/users/email-verification/confirm", path: fixed(api + "/users/email-verification/confirm"),
			body: func(c cell) any { return map[string]any{"token": "bogus"} }, want: publicRoute(400)},
		{method: "GET", route: "/users/me", path: fixed(api + "/users/me"), want: userRoute(200)},
		{method: "GET", route: "/users/profile", path: fixed(api + "/users/profile"), want: userRoute(200)},
		{method: "PUT", route: "/users/me", path: fixed(api + "/users/me"),
			body: func(c cell) any { return map[string]any{"first_name": "Changed"} }, want: userRoute(200)},
		{method: "PUT", route: "/users/me/password", path: fixed(api + "/users/me/password"),
			body: func(c cell) any {
				return map[string]any{"current_password": idPassword, "new_password": "New-Pass-" + c.unique + "-9x!"}
			}, want: userRoute(200)},
		{method: "GET", route: "/users/me/mfa", path: fixed(api + "/users/me/mfa"), want: userRoute(200)},
		{method: "POST", route: "/users/me/mfa/totp", path: fixed(api + "/users/me/mfa/totp"), want: userRoute(201)},
		{method: "POST", route: "/users/me/mfa/totp/confirm", path: fixed(api + "/users/me/mfa/totp/confirm"),
			body: func(cell) any { return map[string]any{"code": ""} }, want: userRoute(422)},
		{method: "POST", route: "/users/me/mfa/recovery-codes", path: fixed(api + "/users/me/mfa/recovery-codes"),
			body: func(cell) any { return map[string]any{"code": ""} }, want: userRoute(422)},
		{method: "DELETE", route: "/users/me/mfa/totp", path: fixed(api + "/users/me/mfa/totp"),
			body: func(cell) any { return map[string]any{"password": "", "code": ""} }, want: userRoute(422)},
		{method: "GET", route: "/users", path: fixed(api + "/users?per_page=5"), want: adminRoute(200)},
		{method: "POST", route: "/users", path: fixed(api + "/users"),
			body: func(c cell) any {
				return map[string]any{"username": c.unique, "email": c.unique + "@example.com", "password": idPassword}
			}, want: adminRoute(201)},
		{method: "GET", route: "/users/stats/overview", path: fixed(api + "/users/stats/overview"), want: adminRoute(200)},
		{method: "GET", route: "/users/{user_id}", path: uid(""), want: selfOrAdminRoute(200, 200)},
		{method: "PUT", route: "/users/{user_id}", path: uid(""),
			body: func(c cell) any { return map[string]any{"display_name": "Display " + c.unique} }, want: selfOrAdminRoute(200, 200)},
		{method: "DELETE", route: "/users/{user_id}", path: uid(""), want: selfOrAdminRoute(204, 204)},
		{method: "PUT", route: "/users/{user_id}/password", path: uid("/password"),
			body: func(c cell) any {
				return map[string]any{"current_password": c.targetPass, "new_password": "Other-Pass-" + c.unique + "-7y!"}
			}, want: selfOrAdminRoute(200, 200)},
		{method: "PUT", route: "/users/{user_id}/roles", path: uid("/roles"),
			body: func(c cell) any { return map[string]any{"role_ids": []string{c.role.ID.String()}} }, want: adminRoute(200)},
		{method: "POST", route: "/users/{user_id}/unlock", path: uid("/unlock"), want: adminRoute(200)},
		{method: "DELETE", route: "/users/{user_id}/mfa", path: uid("/mfa"), want: adminRoute(204)},

		{method: "GET", route: "/roles", path: fixed(api + "/roles"), want: adminRoute(200)},
		{method: "POST", route: "/roles", path: fixed(api + "/roles"),
			body: func(c cell) any { return map[string]any{"name": c.unique, "scope_ids": []string{c.scope.ID.String()}} }, want: beyondDelegation(201)},
		{method: "GET", route: "/roles/stats", path: fixed(api + "/roles/stats"), want: adminRoute(200)},
		{method: "GET", route: "/roles/defaults", path: fixed(api + "/roles/defaults"), want: adminRoute(200)},
		{method: "GET", route: "/roles/{role_id}", path: func(c cell) string { return api + "/roles/" + c.role.ID.String() }, want: adminRoute(200)},
		{method: "PUT", route: "/roles/{role_id}", path: func(c cell) string { return api + "/roles/" + c.role.ID.String() },
			body: func(c cell) any { return map[string]any{"description": "changed"} }, want: adminRoute(200)},
		{method: "DELETE", route: "/roles/{role_id}", path: func(c cell) string { return api + "/roles/" + c.role.ID.String() }, want: adminRoute(204)},
		{method: "PUT", route: "/roles/{role_id}/{sub}", path: func(c cell) string { return api + "/roles/" + c.role.ID.String() + "/scopes" },
			body: func(c cell) any { return map[string]any{"scope_ids": []string{c.scope.ID.String()}} }, want: beyondDelegation(200)},
		{method: "GET", route: "/roles/scopes", path: fixed(api + "/roles/scopes?per_page=100"), want: adminRoute(200)},
		{method: "POST", route: "/roles/scopes", path: fixed(api + "/roles/scopes"),
			body: func(c cell) any { return map[string]any{"name": "read:" + c.unique} }, want: adminRoute(201)},
		{method: "GET", route: "/roles/scopes/{scope_id}", path: func(c cell) string { return api + "/roles/scopes/" + c.scope.ID.String() }, want: adminRoute(200)},
		{method: "PUT", route: "/roles/scopes/{scope_id}", path: func(c cell) string { return api + "/roles/scopes/" + c.scope.ID.String() },
			body: func(c cell) any { return map[string]any{"description": "changed"} }, want: beyondDelegation(200)},
		{method: "DELETE", route: "/roles/scopes/{scope_id}", path: func(c cell) string { return api + "/roles/scopes/" + c.scope.ID.String() }, want: beyondDelegation(204)},
		{method: "POST", route: "/roles/permissions/check", path: fixed(api + "/roles/permissions/check"),
			body: func(c cell) any {
				return map[string]any{"user_id": c.target.ID.String(), "resource": "profile", "action": "read"}
			}, want: permsRoute(200)},
		{method: "POST", route: "/roles/permissions/check-bulk", path: fixed(api + "/roles/permissions/check-bulk"),
			body: func(c cell) any {
				return map[string]any{"user_id": c.target.ID.String(), "permissions": []any{map[string]any{"resource": "profile", "action": "read"}}}
			}, want: permsRoute(200)},
		{method: "GET", route: "/roles/permissions/user/{user_id}", path: func(c cell) string { return api + "/roles/permissions/user/" + c.target.ID.String() }, want: permsRoute(200)},
	}
}

// TestAccessTable: every users, roles and scopes route × every kind of
// caller gives the status the permission model says (docs/security-model.md),
// on each backend.
func TestAccessTable(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		routes := idRoutes()
		// Every route of users, roles and scopes is in the table.
		for _, ri := range e.srv.routes {
			method, path, _ := strings.Cut(ri.Pattern, " ")
			if !strings.HasPrefix(path, "/api/v1/users") && !strings.HasPrefix(path, "/api/v1/roles") {
				continue
			}
			if !slices.ContainsFunc(routes, func(r idRoute) bool { return r.method == method && "/api/v1"+r.route == path }) {
				t.Errorf("route %s is not in the access table", ri.Pattern)
			}
		}

		// Callers that are not the route's target are shared.
		other := e.user("bob", false, "user")
		admin := e.user("root", false, "admin")
		scopedRole := e.role("user-manager-", "admin:users")
		scoped := e.user("manager", false, scopedRole.Name)
		disabled := e.user("carol", false, "user")
		tokens := map[string]string{
			cOther:  e.login(other.Username, idPassword, "").AccessToken,
			cAdmin:  e.login(admin.Username, idPassword, "").AccessToken,
			cScoped: e.login(scoped.Username, idPassword, "").AccessToken,
			cClient: e.clientToken("read:profile"),
			cCAdmin: e.clientToken("admin:users"),
		}
		tokens[cDisabled] = e.login(disabled.Username, idPassword, "").AccessToken
		if _, err := e.db.UpdateUser(e.ctx, disabled.ID, func(u *permiso.User) error { u.IsActive = false; return nil }); err != nil {
			t.Fatal(err)
		}

		for _, rt := range routes {
			for _, caller := range idCallers {
				wantStatus, ok := rt.want[caller]
				if !ok {
					t.Fatalf("%s %s: no expectation for %s", rt.method, rt.route, caller)
				}
				// A fresh target user (the cUser caller), role and scope.
				target := e.user("alice", false, "user")
				c := cell{target: target, targetPass: idPassword, unique: e.name("new-")}
				if strings.Contains(rt.route, "roles") {
					c.role = e.role("role-")
					sc, err := e.db.CreateScope(e.ctx, permiso.Scope{Name: "read:" + e.name("res")})
					if err != nil {
						t.Fatal(err)
					}
					c.scope = sc
				}
				bearer := tokens[caller]
				switch caller {
				case cUser, cRefresh:
					tr := e.login(target.Username, idPassword, "")
					bearer = tr.AccessToken
					if caller == cRefresh {
						bearer = tr.RefreshToken
					}
				case cAnon:
					bearer = ""
				}
				var body any
				if rt.body != nil {
					body = rt.body(c)
				}
				w := e.do(rt.method, "/api/v1"+rt.route, rt.path(c), bearer, body)
				if w.Code != wantStatus {
					t.Errorf("%s %s as %s: status %d, want %d: %s", rt.method, rt.route, caller, w.Code, wantStatus, w.Body)
					continue
				}
				switch w.Code {
				case 401:
					if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
						t.Errorf("%s %s as %s: 401 without a Bearer challenge", rt.method, rt.route, caller)
					}
				case 403:
					m := want(t, w, 403, rt.route)
					if m["error"] != "forbidden" && m["error"] != "insufficient_scope" {
						t.Errorf("%s %s as %s: 403 error %v", rt.method, rt.route, caller, m["error"])
					}
				}
			}
		}
	})
}

package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

const (
	usersPath = "/api/v1/users"
	rolesPath = "/api/v1/roles"
)

// TestNoSelfEscalation: no request lets a user raise their own
// privileges: PUT /users/{own id} and PUT /users/me with role_ids,
// is_superuser, is_active or is_verified are refused with 403 and change
// nothing, whatever else the body holds; and a new login still gets only
// role user's scopes.
func TestNoSelfEscalation(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		u := e.user("eve", false, "user")
		if _, err := e.db.UpdateUser(e.ctx, u.ID, func(x *permiso.User) error { x.IsVerified = false; return nil }); err != nil {
			t.Fatal(err)
		}
		tok := e.login(u.Username, idPassword, "").AccessToken
		adminRole := e.roles["admin"].ID.String()
		bodies := []map[string]any{
			{"role_ids": []string{adminRole}},
			{"role_ids": []string{adminRole}, "first_name": "Eve"},
			{"role_ids": []string{}},
			{"is_superuser": true},
			{"is_superuser": false},
			{"is_active": true},
			{"is_active": false},
			{"is_verified": true},
			{"is_verified": true, "email": "eve.new@example.com"},
		}
		for _, path := range []string{usersPath + "/" + u.ID.String(), usersPath + "/" + strings.ToUpper(u.ID.String()), usersPath + "/me"} {
			route := usersPath + "/{user_id}"
			if strings.HasSuffix(path, "/me") {
				route = usersPath + "/me"
			}
			for _, body := range bodies {
				w := e.do("PUT", route, path, tok, body)
				m := e.expect(w, http.StatusForbidden, fmt.Sprintf("PUT %s %v", path, body))
				if m["error"] != "forbidden" {
					t.Errorf("PUT %s %v: error %v", path, body, m["error"])
				}
			}
		}
		// Nor through the admin-only routes.
		e.expect(e.do("PUT", usersPath+"/{user_id}/roles", usersPath+"/"+u.ID.String()+"/roles", tok,
			map[string]any{"role_ids": []string{adminRole}}), 403, "PUT own roles")
		e.expect(e.do("POST", usersPath, usersPath, tok, map[string]any{"username": "eve2", "email": "eve2@example.com",
			"password": idPassword, "is_superuser": true, "role_ids": []string{adminRole}}), 403, "POST /users")
		e.expect(e.do("PUT", rolesPath+"/{role_id}/{sub}", rolesPath+"/"+e.roles["user"].ID.String()+"/scopes", tok,
			map[string]any{"scope_ids": []string{}}), 403, "change role user's scopes")

		got, err := e.db.GetUser(e.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.IsSuperuser || got.IsVerified || !got.IsActive || got.FirstName != nil || got.Email != u.Email ||
			!slices.Equal(got.RoleNames(), []string{"user"}) {
			t.Fatalf("refused requests changed the user: %+v roles %v", got, got.RoleNames())
		}
		if tr := e.login(u.Username, idPassword, ""); tr.Scope != "read:profile write:profile" {
			t.Errorf("a new login got %q", tr.Scope)
		}
		// Profile fields alone are fine, on both paths.
		m := e.expect(e.do("PUT", usersPath+"/me", usersPath+"/me", tok, map[string]any{"first_name": "Eve", "last_name": "Adams"}), 200, "profile")
		if m["full_name"] != "Eve Adams" || m["is_superuser"] != false {
			t.Errorf("profile update: %v", m)
		}
		e.expect(e.do("PUT", usersPath+"/{user_id}", usersPath+"/"+u.ID.String(), tok, map[string]any{"bio": "hi"}), 200, "own profile")
		// username and password are never changed this way.
		w := e.do("PUT", usersPath+"/me", usersPath+"/me", tok, map[string]any{"username": "root", "password": "x"})
		if m := e.expect(w, 422, "username"); len(m["details"].([]any)) != 2 {
			t.Errorf("details %v", m["details"])
		}
	})
}

// TestTokenScopesMeetCurrentRoles: a scope counts when the token was
// granted it AND the user's current roles hold it.
func TestTokenScopesMeetCurrentRoles(t *testing.T) {
	e := newIDEnv(t, idBackends(t)[0])
	mgr := e.role("user-manager-", "admin:users", "read:profile")
	u := e.user("manny", false, mgr.Name)
	narrow := e.login(u.Username, idPassword, "read:profile").AccessToken
	full := e.login(u.Username, idPassword, "").AccessToken
	e.expect(e.do("GET", usersPath, usersPath, narrow, nil), 403, "token without admin:users")
	e.expect(e.do("GET", usersPath, usersPath, full, nil), 200, "token with admin:users")
	// Managing permissions needs its own scope.
	e.expect(e.do("GET", rolesPath+"/permissions/user/{user_id}", rolesPath+"/permissions/user/"+u.ID.String(), full, nil), 403, "no admin:permissions")
	// The role loses the scope: the same token stops working at once.
	sc, _ := e.db.GetScopeByName(e.ctx, "read:profile")
	if err := e.db.SetRoleScopes(e.ctx, mgr.ID, []uuid.UUID{sc.ID}); err != nil {
		t.Fatal(err)
	}
	e.expect(e.do("GET", usersPath, usersPath, full, nil), 403, "scope taken from the role")
	// An administrator by role or superuser is one whatever the token's
	// scopes (the one definition of docs/security-model.md, on the current record).
	adm := e.user("boss", false, "admin")
	e.expect(e.do("GET", usersPath, usersPath, e.login(adm.Username, idPassword, "read:profile").AccessToken, nil), 200, "role admin, narrow token")
	su := e.user("super", true)
	e.expect(e.do("GET", usersPath, usersPath, e.login(su.Username, idPassword, "").AccessToken, nil), 200, "superuser without roles")
}

func TestRegistrationAndAccountFlows(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		reg := usersPath + "/register"
		w := e.do("POST", reg, reg, "", map[string]any{"username": "Alice_1", "email": "Alice@Example.COM", "password": idPassword,
			"first_name": "Alice", "is_superuser": true, "role_ids": []string{e.roles["admin"].ID.String()}})
		m := e.expect(w, 201, "register")
		if m["username"] != "alice_1" || m["email"] != "alice@example.com" || m["is_superuser"] != false || m["is_verified"] != false ||
			m["full_name"] != "alice_1" || m["first_name"] != "Alice" || m["last_login"] != nil || m["bio"] != nil {
			t.Errorf("registered %v", m)
		}
		if roles := m["roles"].([]any); len(roles) != 1 || roles[0].(map[string]any)["name"] != "user" {
			t.Errorf("roles %v", m["roles"])
		}
		id := m["id"].(string)
		e.expect(e.do("POST", reg, reg, "", map[string]any{"username": "ALICE_1", "email": "x@example.com", "password": idPassword}), 409, "taken")
		w = e.do("POST", reg, reg, "", map[string]any{"username": "a", "email": "nope", "password": "short"})
		det := e.expect(w, 422, "invalid")["details"].([]any)
		fields := map[string]int{}
		for _, d := range det {
			fields[d.(map[string]any)["field"].(string)]++
		}
		if fields["username"] != 1 || fields["email"] != 1 || fields["password"] < 4 {
			t.Errorf("details %v", det)
		}

		// Verify by the mailed token.
		tok := e.mailToken("alice@example.com", "verify-email")
		vc := usersPath + "/email-verification/confirm"
		e.expect(e.do("POST", vc, vc, "", map[string]any{"token": tok}), 200, "verify")
		if m := e.expect(e.do("POST", vc, vc, "", map[string]any{"token": tok}), 400, "verify twice"); m["error"] != "invalid_token" {
			t.Errorf("reused token: %v", m)
		}

		// Change the password: current required; the policy lists every
		// broken rule; other sessions end, this one stays.
		here := e.login("alice_1", idPassword, "")
		there := e.login("alice@example.com", idPassword, "")
		mp := usersPath + "/me/password"
		e.expect(e.do("PUT", mp, mp, here.AccessToken, map[string]any{"current_password": "wrong", "new_password": "Brand-New-Pass-42!"}), 400, "wrong current")
		m = e.expect(e.do("PUT", mp, mp, here.AccessToken, map[string]any{"current_password": idPassword, "new_password": "alice_1"}), 422, "weak")
		if n := len(m["details"].([]any)); n != 3 {
			t.Errorf("policy details %v, want length, upper case, username", m["details"])
		}
		e.expect(e.do("PUT", mp, mp, here.AccessToken, map[string]any{"current_password": idPassword, "new_password": "Brand-New-Pass-42!"}), 200, "change")
		e.expect(e.do("GET", usersPath+"/me", usersPath+"/me", here.AccessToken, nil), 200, "current session")
		e.expect(e.do("GET", usersPath+"/me", usersPath+"/me", there.AccessToken, nil), 401, "other session")
		e.expect(e.do("PUT", mp, mp, here.AccessToken, map[string]any{"current_password": "Brand-New-Pass-42!", "new_password": idPassword}), 422, "history")

		// Reset by mail: every session ends.
		rr := usersPath + "/password-reset/request"
		for _, email := range []string{"nobody@example.com", "ALICE@example.com"} {
			if m := e.expect(e.do("POST", rr, rr, "", map[string]any{"email": email}), 200, "reset request"); m["message"] != msgResetRequested {
				t.Errorf("reset request: %v", m)
			}
		}
		rt := e.mailToken("alice@example.com", "reset-password")
		rc := usersPath + "/password-reset/confirm"
		e.expect(e.do("POST", rc, rc, "", map[string]any{"token": rt, "new_password": "Brand-New-Pass-42!"}), 422, "reset to the current password")
		e.expect(e.do("POST", rc, rc, "", map[string]any{"token": rt, "new_password": "Reset-Pass-77#ok"}), 200, "reset")
		e.expect(e.do("GET", usersPath+"/me", usersPath+"/me", here.AccessToken, nil), 401, "session after reset")
		e.expect(e.do("POST", rc, rc, "", map[string]any{"token": rt, "new_password": "Reset-Pass-88#ok"}), 400, "reset token twice")
		if w := e.tryLogin("alice_1", "Brand-New-Pass-42!", ""); w.Code != 400 {
			t.Errorf("old password after reset: %d", w.Code)
		}
		e.login("alice_1", "Reset-Pass-77#ok", "")
		e.auditEvent("password.reset", id, "success")
		e.auditEvent("password.change", id, "success")
		e.auditEvent("email.verify", id, "success")
	})
}

// TestAdminUserManagement: create (validate first, 400 on unknown role
// ids, nothing written), update, disable (tokens die), roles, unlock,
// delete (not oneself), every mutation audited.
func TestAdminUserManagement(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		admin := e.user("root", true, "admin")
		at := e.login(admin.Username, idPassword, "").AccessToken

		body := map[string]any{"username": "ivy", "email": "ivy@example.com", "password": idPassword, "role_ids": []string{"not-a-uuid"}}
		m := e.expect(e.do("POST", usersPath, usersPath, at, body), 422, "malformed role id")
		if d := m["details"].([]any); len(d) != 1 || d[0].(map[string]any)["field"] != "role_ids[0]" {
			t.Errorf("details %v", d)
		}
		body["role_ids"] = []string{uuid.NewString()}
		if m := e.expect(e.do("POST", usersPath, usersPath, at, body), 400, "unknown role id"); m["error"] != "bad_request" {
			t.Errorf("%v", m)
		}
		if _, err := e.db.GetUserByUsername(e.ctx, "ivy"); err == nil {
			t.Fatal("user written despite an unknown role id")
		}
		body["role_ids"] = []string{e.roles["service"].ID.String()}
		body["is_verified"] = true
		m = e.expect(e.do("POST", usersPath, usersPath, at, body), 201, "create")
		ivy := uuid.MustParse(m["id"].(string))
		if m["is_verified"] != true || m["roles"].([]any)[0].(map[string]any)["name"] != "service" {
			t.Errorf("created %v", m)
		}
		e.auditEvent("user.create", ivy.String(), "success")

		p := usersPath + "/" + ivy.String()
		tr := e.login("ivy", idPassword, "")
		e.expect(e.do("PUT", usersPath+"/{user_id}", p, at, map[string]any{"is_active": false, "first_name": "Ivy"}), 200, "disable")
		e.expect(e.do("GET", usersPath+"/me", usersPath+"/me", tr.AccessToken, nil), 401, "token of a disabled user")
		if w := e.tryLogin("ivy", idPassword, ""); w.Code != 403 {
			t.Errorf("login of a disabled user: %d %s", w.Code, w.Body)
		}
		e.expect(e.do("PUT", usersPath+"/{user_id}", p, at, map[string]any{"is_active": true}), 200, "enable")
		e.auditEvent("user.update", ivy.String(), "success")
		e.expect(e.do("PUT", usersPath+"/{user_id}/roles", p+"/roles", at, map[string]any{"role_ids": []string{e.roles["user"].ID.String()}}), 200, "roles")
		e.auditEvent("user.roles", ivy.String(), "success")

		// Lockout and unlock.
		for range 3 {
			e.tryLogin("ivy", "Wrong-password-1!", "")
		}
		if w := e.tryLogin("ivy", idPassword, ""); w.Code != 423 {
			t.Fatalf("not locked: %d %s", w.Code, w.Body)
		}
		e.expect(e.do("GET", usersPath+"/stats/overview", usersPath+"/stats/overview", at, nil), 200, "stats")
		e.expect(e.do("POST", usersPath+"/{user_id}/unlock", p+"/unlock", at, nil), 200, "unlock")
		e.login("ivy", idPassword, "")
		e.auditEvent("user.unlock", ivy.String(), "success")

		// An admin sets another user's password without the current one.
		e.expect(e.do("PUT", usersPath+"/{user_id}/password", p+"/password", at, map[string]any{"new_password": "Admin-Set-Pass-1!"}), 200, "admin password")
		e.login("ivy", "Admin-Set-Pass-1!", "")

		// Delete: never oneself as an admin (also with an upper-case id).
		self := usersPath + "/" + strings.ToUpper(admin.ID.String())
		if m := e.expect(e.do("DELETE", usersPath+"/{user_id}", self, at, nil), 403, "admin self-delete"); m["error_description"] != "Cannot delete your own account" {
			t.Errorf("%v", m)
		}
		e.expect(e.do("DELETE", usersPath+"/{user_id}", p, at, nil), 204, "delete")
		e.expect(e.do("GET", usersPath+"/{user_id}", p, at, nil), 404, "deleted")
		e.expect(e.do("GET", usersPath+"/{user_id}", usersPath+"/not-a-uuid", at, nil), 404, "malformed id")
		e.auditEvent("user.delete", ivy.String(), "success")
		e.auditEvent("user.delete", admin.ID.String(), "failure")
	})
}

// TestAdminCreateUserRoleIDs: in the body of POST /users, role_ids absent
// means role user and an empty list no role at all (the OpenAPI
// document's UserCreate).
func TestAdminCreateUserRoleIDs(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		admin := e.user("root", true, "admin")
		at := e.login(admin.Username, idPassword, "").AccessToken
		for _, tc := range []struct {
			name string
			set  bool
			want []string
		}{
			{"absent", false, []string{"user"}},
			{"empty", true, nil},
		} {
			username := e.name("roleids")
			body := map[string]any{"username": username, "email": username + "@example.com", "password": idPassword}
			if tc.set {
				body["role_ids"] = []string{}
			}
			m := e.expect(e.do("POST", usersPath, usersPath, at, body), 201, "create, role_ids "+tc.name)
			u, err := e.db.GetUser(e.ctx, uuid.MustParse(m["id"].(string)))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(u.RoleNames(), tc.want) {
				t.Errorf("role_ids %s: roles %v, want %v", tc.name, u.RoleNames(), tc.want)
			}
		}
	})
}

// TestUserListPaging: stable order (created_at, id), filters, page and
// per_page validated.
func TestUserListPaging(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		admin := e.user("root", true)
		at := e.login(admin.Username, idPassword, "").AccessToken
		var made []string
		for range 7 {
			made = append(made, e.user("member", false, "user").Username)
		}
		var seen []string
		for page := 1; page <= 3; page++ {
			m := e.expect(e.do("GET", usersPath, fmt.Sprintf("%s?per_page=3&page=%d", usersPath, page), at, nil), 200, "page")
			if jnum(t, m["total"], "total") != 8 || jnum(t, m["pages"], "pages") != 3 || jnum(t, m["page"], "page") != page || jnum(t, m["per_page"], "per_page") != 3 {
				t.Errorf("envelope %v", m)
			}
			for _, u := range m["users"].([]any) {
				seen = append(seen, u.(map[string]any)["username"].(string))
			}
		}
		if want := append([]string{admin.Username}, made...); !slices.Equal(seen, want) {
			t.Errorf("pages gave %v, want %v (created_at, id)", seen, want)
		}
		m := e.expect(e.do("GET", usersPath, usersPath+"?page=9", at, nil), 200, "past the end")
		if len(m["users"].([]any)) != 0 || jnum(t, m["pages"], "pages") != 1 {
			t.Errorf("past the end: %v", m)
		}
		m = e.expect(e.do("GET", usersPath, usersPath+"?role_id="+e.roles["user"].ID.String()+"&search=MEMBER&is_active=yes&is_verified=1", at, nil), 200, "filters")
		if jnum(t, m["total"], "total") != 7 {
			t.Errorf("filtered total %v", m["total"])
		}
		m = e.expect(e.do("GET", usersPath, usersPath+"?page=0&per_page=101&is_active=maybe&role_id=x&search="+strings.Repeat("s", 101), at, nil), 422, "bad query")
		fields := map[string]bool{}
		for _, d := range m["details"].([]any) {
			fields[d.(map[string]any)["field"].(string)] = true
		}
		for _, f := range []string{"page", "per_page", "is_active", "role_id", "search"} {
			if !fields[f] {
				t.Errorf("no detail for %s: %v", f, m["details"])
			}
		}
		for _, q := range []string{"per_page=0", "per_page=abc", "page=-1"} {
			e.expect(e.do("GET", usersPath, usersPath+"?"+q, at, nil), 422, q)
			e.expect(e.do("GET", rolesPath, rolesPath+"?"+q, at, nil), 422, "roles "+q)
			e.expect(e.do("GET", rolesPath+"/scopes", rolesPath+"/scopes?"+q, at, nil), 422, "scopes "+q)
		}
	})
}

// TestRolesAndScopes: CRUD, action and resource in responses, 409 in
// use, 400 unknown ids, static routes not shadowed, permission checks
// whose reason matches the decision, every mutation audited.
func TestRolesAndScopes(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		at := e.login(e.user("root", false, "admin").Username, idPassword, "").AccessToken
		sp := rolesPath + "/scopes"
		e.expect(e.do("POST", sp, sp, at, map[string]any{"name": "Read Trades"}), 422, "bad scope name")
		e.expect(e.do("POST", sp, sp, at, map[string]any{"name": "read:trades", "action": "write"}), 422, "name and action disagree")
		sc := e.expect(e.do("POST", sp, sp, at, map[string]any{"action": "read", "resource": "trades", "description": "Read trades"}), 201, "create scope")
		if sc["name"] != "read:trades" || sc["action"] != "read" || sc["resource"] != "trades" || jnum(t, sc["role_count"], "role_count") != 0 {
			t.Errorf("scope %v", sc)
		}
		e.expect(e.do("POST", sp, sp, at, map[string]any{"name": "read:trades"}), 409, "duplicate scope")
		scID := sc["id"].(string)
		e.auditEvent("scope.create", scID, "success")

		e.expect(e.do("POST", rolesPath, rolesPath, at, map[string]any{"name": "trader", "scope_ids": []string{uuid.NewString()}}), 400, "unknown scope id")
		r := e.expect(e.do("POST", rolesPath, rolesPath, at, map[string]any{"name": "trader", "description": "Trades", "scope_ids": []string{scID}}), 201, "create role")
		rid := r["id"].(string)
		if s := r["scopes"].([]any); len(s) != 1 || s[0].(map[string]any)["action"] != "read" || s[0].(map[string]any)["resource"] != "trades" {
			t.Errorf("role scopes %v", r["scopes"])
		}
		e.expect(e.do("POST", rolesPath, rolesPath, at, map[string]any{"name": "trader"}), 409, "duplicate role")
		e.auditEvent("role.create", rid, "success")

		// Static routes are not taken for ids.
		for _, p := range []string{rolesPath + "/stats", rolesPath + "/defaults", usersPath + "/stats/overview"} {
			e.expect(e.do("GET", p, p, at, nil), 200, p)
		}
		st := e.expect(e.do("GET", rolesPath+"/stats", rolesPath+"/stats", at, nil), 200, "stats")
		if jnum(t, st["total_roles"], "total_roles") != 4 {
			t.Errorf("stats %v", st)
		}

		trader := e.user("tom", false, "user")
		e.expect(e.do("PUT", usersPath+"/{user_id}/roles", usersPath+"/"+trader.ID.String()+"/roles", at,
			map[string]any{"role_ids": []string{rid, e.roles["user"].ID.String()}}), 200, "give role")
		if m := e.expect(e.do("DELETE", rolesPath+"/{role_id}", rolesPath+"/"+rid, at, nil), 409, "role in use"); m["error"] != "conflict" {
			t.Errorf("%v", m)
		}
		e.expect(e.do("DELETE", sp+"/{scope_id}", sp+"/"+scID, at, nil), 409, "scope in use")
		e.expect(e.do("DELETE", rolesPath+"/{role_id}", rolesPath+"/"+e.roles["admin"].ID.String(), at, nil), 409, "built-in role")
		g := e.expect(e.do("GET", rolesPath+"/{role_id}", rolesPath+"/"+rid, at, nil), 200, "get role")
		if jnum(t, g["user_count"], "user_count") != 1 {
			t.Errorf("user_count %v", g["user_count"])
		}
		m := e.expect(e.do("GET", rolesPath, rolesPath+"?scope_id="+scID, at, nil), 200, "roles by scope")
		if jnum(t, m["total"], "total") != 1 {
			t.Errorf("roles by scope %v", m)
		}
		m = e.expect(e.do("GET", sp, sp+"?resource=trades", at, nil), 200, "scopes by resource")
		if jnum(t, m["total"], "total") != 1 {
			t.Errorf("scopes by resource %v", m)
		}

		// Permission checks.
		chk := rolesPath + "/permissions/check"
		d := e.expect(e.do("POST", chk, chk, at, map[string]any{"user_id": trader.ID.String(), "resource": "trades", "action": "read"}), 200, "check")
		if d["allowed"] != true || d["reason"] != "Granted by scopes: read:trades" {
			t.Errorf("check %v", d)
		}
		d = e.expect(e.do("POST", chk, chk, at, map[string]any{"user_id": trader.ID.String(), "resource": "trades", "action": "write"}), 200, "check")
		if d["allowed"] != false || d["reason"] != "No matching permissions found" || len(d["matching_scopes"].([]any)) != 0 {
			t.Errorf("check %v", d)
		}
		e.expect(e.do("POST", chk, chk, at, map[string]any{"user_id": uuid.NewString(), "resource": "trades", "action": "read"}), 404, "unknown user")
		e.expect(e.do("POST", chk, chk, at, map[string]any{"user_id": "x", "resource": "", "action": "a b"}), 422, "bad check")
		bulk := rolesPath + "/permissions/check-bulk"
		m = e.expect(e.do("POST", bulk, bulk, at, map[string]any{"user_id": trader.ID.String(),
			"permissions": []any{map[string]any{"resource": "trades", "action": "read"}, map[string]any{"resource": "roles", "action": "write"}}}), 200, "bulk")
		res := m["results"].([]any)
		if len(res) != 2 || res[0].(map[string]any)["allowed"] != true || res[1].(map[string]any)["allowed"] != false {
			t.Errorf("bulk %v", m)
		}
		up := rolesPath + "/permissions/user/{user_id}"
		m = e.expect(e.do("GET", up, rolesPath+"/permissions/user/"+trader.ID.String(), at, nil), 200, "user permissions")
		if len(m["resources"].([]any)) != 2 { // profile, trades
			t.Errorf("user permissions %v", m)
		}

		// Replace scopes, rename, free and delete.
		e.expect(e.do("PUT", rolesPath+"/{role_id}/{sub}", rolesPath+"/"+rid+"/scopes", at, map[string]any{"scope_ids": []string{}}), 200, "role scopes")
		e.auditEvent("role.scopes", rid, "success")
		e.expect(e.do("PUT", rolesPath+"/{role_id}/{sub}", rolesPath+"/"+rid+"/other", at, map[string]any{"scope_ids": []string{}}), 404, "other sub")
		e.expect(e.do("PUT", rolesPath+"/{role_id}", rolesPath+"/"+rid, at, map[string]any{"name": "traders"}), 200, "rename role")
		e.auditEvent("role.update", rid, "success")
		sc = e.expect(e.do("PUT", sp+"/{scope_id}", sp+"/"+scID, at, map[string]any{"action": "write"}), 200, "rename scope")
		if sc["name"] != "write:trades" {
			t.Errorf("renamed scope %v", sc)
		}
		e.auditEvent("scope.update", scID, "success")
		e.expect(e.do("DELETE", sp+"/{scope_id}", sp+"/"+scID, at, nil), 204, "delete scope")
		e.auditEvent("scope.delete", scID, "success")
		e.expect(e.do("PUT", usersPath+"/{user_id}/roles", usersPath+"/"+trader.ID.String()+"/roles", at, map[string]any{"role_ids": []string{}}), 200, "free role")
		e.expect(e.do("DELETE", rolesPath+"/{role_id}", rolesPath+"/"+rid, at, nil), 204, "delete role")
		e.auditEvent("role.delete", rid, "success")
		e.expect(e.do("GET", rolesPath+"/{role_id}", rolesPath+"/"+rid, at, nil), 404, "deleted role")
		e.expect(e.do("GET", sp+"/{scope_id}", sp+"/nope", at, nil), 404, "malformed scope id")
	})
}

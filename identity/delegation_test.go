package identity_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
)

func scopes(names ...string) []permiso.Scope {
	out := make([]permiso.Scope, 0, len(names))
	for _, n := range names {
		out = append(out, permiso.Scope{ID: uuid.New(), Name: n})
	}
	return out
}

func roleOf(name string, scopeNames ...string) permiso.Role {
	return permiso.Role{ID: uuid.New(), Name: name, Scopes: scopes(scopeNames...)}
}

// TestDelegationRule: the delegation rule of docs/security-model.md on
// values: who may act on which user, give which role or scope, change
// which role, scope or client.
func TestDelegationRule(t *testing.T) {
	baseline := []string{"read:profile", "write:profile"}
	delegated := identity.NewDelegation(identity.Actor{Admin: true, Scopes: []string{"admin:users"}}, baseline)
	roleAdmin := identity.NewDelegation(identity.Actor{Admin: true, RoleAdmin: true}, nil)
	super := identity.NewDelegation(identity.Actor{Admin: true, Superuser: true}, nil)
	callers := map[string]identity.Delegation{"delegated admin:users": delegated, "role admin": roleAdmin, "superuser": super}

	userRole := roleOf(permiso.RoleUser, baseline...)
	adminRole := roleOf(permiso.RoleAdmin, permiso.DefaultScopes...)
	users := map[string]permiso.User{
		"plain":      {Roles: []permiso.Role{userRole}},
		"peer":       {Roles: []permiso.Role{userRole, roleOf("helpdesk", "admin:users")}},
		"stronger":   {Roles: []permiso.Role{roleOf("ops", "admin:users", "admin:system")}},
		"role admin": {Roles: []permiso.Role{adminRole}},
		"superuser":  {IsSuperuser: true},
	}
	// mayManage[target] lists the callers that may act on it.
	mayManage := map[string][]string{
		"plain":      {"delegated admin:users", "role admin", "superuser"},
		"peer":       {"delegated admin:users", "role admin", "superuser"},
		"stronger":   {"role admin", "superuser"},
		"role admin": {"role admin", "superuser"},
		"superuser":  {"superuser"},
	}
	for cname, d := range callers {
		for uname, u := range users {
			err := d.MayManageUser(u)
			if want := slices.Contains(mayManage[uname], cname); (err == nil) != want {
				t.Errorf("%s acting on %s: %v, want allowed=%v", cname, uname, err, want)
			}
			if err != nil && (!errors.Is(err, identity.ErrDelegation) || permiso.ErrorCode(err) != permiso.EFORBIDDEN) {
				t.Errorf("%s acting on %s: %v is not a 403 of the delegation rule", cname, uname, err)
			}
		}
	}

	// Roles: given, taken away and changed only when every scope is held;
	// role admin never by a delegated administrator.
	held, lacked := roleOf("held", "admin:users", "read:profile"), roleOf("lacked", "admin:logs")
	// The built-in roles (user, admin, service) are changed by full
	// administrators only: role user's scopes reach every registration.
	for _, c := range []struct {
		role         permiso.Role
		allow, alter bool
	}{{userRole, true, false}, {held, true, true}, {roleOf("empty"), true, true}, {lacked, false, false},
		{adminRole, false, false}, {roleOf(permiso.RoleService), true, false}} {
		for what, err := range map[string]error{
			"grant":       delegated.MayGrantRole(c.role),
			"change":      delegated.MayChangeRole(c.role),
			"set roles":   delegated.MaySetRoles(nil, []permiso.Role{c.role}),
			"take away":   delegated.MaySetRoles([]permiso.Role{userRole, c.role}, []permiso.Role{userRole}),
			"full grant":  roleAdmin.MayGrantRole(c.role),
			"full change": roleAdmin.MayChangeRole(c.role),
		} {
			allow := c.allow || what == "full grant" || what == "full change"
			if what == "change" {
				allow = c.alter
			}
			if (err == nil) != allow {
				t.Errorf("%s role %s: %v, want allowed=%v", what, c.role.Name, err, allow)
			}
		}
	}
	// Roles kept are not looked at.
	if err := delegated.MaySetRoles([]permiso.Role{lacked, userRole}, []permiso.Role{lacked, userRole, held}); err != nil {
		t.Errorf("keeping a role the caller could not give: %v", err)
	}

	// Scopes and clients.
	if err := delegated.MayGrantScopes(scopes("admin:users", "write:profile")); err != nil {
		t.Errorf("granting held scopes: %v", err)
	}
	if err := delegated.MayGrantScopes(scopes("admin:users", "admin:system")); err == nil {
		t.Error("granted admin:system")
	}
	if err := delegated.MayManageScope(permiso.Scope{Name: "read:reports"}); err == nil {
		t.Error("changed a scope it does not hold")
	}
	if err := delegated.MayManageScope(permiso.Scope{Name: "admin:users"}); err != nil {
		t.Errorf("changing a held scope: %v", err)
	}
	if err := delegated.MayManageClient(permiso.ServiceClient{Scopes: scopes("admin:users")}); err != nil {
		t.Errorf("managing a client it covers: %v", err)
	}
	if err := delegated.MayManageClient(permiso.ServiceClient{Scopes: scopes("admin:users", "admin:tokens")}); err == nil {
		t.Error("managed a client holding admin:tokens")
	}
	for name, d := range callers {
		if err := d.MaySetSuperuser(); (err == nil) != (name == "superuser") {
			t.Errorf("%s setting is_superuser: %v", name, err)
		}
		if err := d.MayGrantScopes(scopes(permiso.DefaultScopes...)); (err == nil) != (name != "delegated admin:users") {
			t.Errorf("%s granting every scope: %v", name, err)
		}
	}
	// The zero value holds nothing.
	var zero identity.Delegation
	if zero.Full() || zero.Holds("read:profile") || zero.MayManageUser(users["plain"]) == nil {
		t.Error("the zero Delegation holds something")
	}
}

// TestDelegatedAdministrator: the identity service applies the rule to an
// actor holding admin:users only (read from the store: role user's scopes
// count as held), on a real store; every refusal changes nothing.
func TestDelegatedAdministrator(t *testing.T) {
	e := newEnv(t)
	helpdesk, err := e.db.CreateRole(e.ctx, permiso.Role{Name: "helpdesk"}, []uuid.UUID{e.scope("admin:users").ID})
	if err != nil {
		t.Fatal(err)
	}
	me := e.register("manny", "manny@example.com", goodPassword)
	if err := e.db.SetUserRoles(e.ctx, me.ID, []uuid.UUID{helpdesk.ID}); err != nil {
		t.Fatal(err)
	}
	actor := identity.Actor{UserID: me.ID, Admin: true, Scopes: []string{"admin:users"}}
	plain := e.register("pat", "pat@example.com", goodPassword)
	root := e.get(e.admin.UserID) // a superuser
	boss := e.register("boss", "boss@example.com", goodPassword)
	if err := e.db.SetUserRoles(e.ctx, boss.ID, []uuid.UUID{e.roles["admin"].ID}); err != nil {
		t.Fatal(err)
	}
	refused := func(err error, what string) {
		t.Helper()
		if !errors.Is(err, identity.ErrDelegation) || permiso.ErrorCode(err) != permiso.EFORBIDDEN {
			t.Errorf("%s: %v, want a 403 of the delegation rule", what, err)
		}
	}
	for _, target := range []permiso.User{root, e.get(boss.ID)} {
		before := e.get(target.ID)
		refused(e.svc.ChangePassword(e.ctx, actor, target.ID, "", "Stolen-Pass-42!x", uuid.Nil), "set the password of "+target.Username)
		_, err := e.svc.UpdateUser(e.ctx, actor, target.ID, identity.UserUpdate{Email: ptr("mine@example.com")})
		refused(err, "change the email of "+target.Username)
		_, err = e.svc.DeleteUser(e.ctx, actor, target.ID)
		refused(err, "delete "+target.Username)
		_, err = e.svc.Unlock(e.ctx, actor, target.ID)
		refused(err, "unlock "+target.Username)
		_, err = e.svc.SetRoles(e.ctx, actor, target.ID, []string{e.roles["user"].ID.String()})
		refused(err, "set the roles of "+target.Username)
		if after := e.get(target.ID); after.PasswordHash != before.PasswordHash || after.Email != before.Email ||
			!slices.Equal(after.RoleNames(), before.RoleNames()) {
			t.Errorf("refusals changed %s", target.Username)
		}
	}
	_, err = e.svc.SetRoles(e.ctx, actor, me.ID, []string{helpdesk.ID.String(), e.roles["admin"].ID.String()})
	refused(err, "give itself role admin")
	_, err = e.svc.SetRoleScopes(e.ctx, actor, helpdesk.ID, []string{e.scope("admin:users").ID.String(), e.scope("admin:system").ID.String()})
	refused(err, "add admin:system to its role")
	_, err = e.svc.CreateUser(e.ctx, actor, identity.NewUser{Username: "sam", Email: "sam@example.com", Password: goodPassword, IsSuperuser: ptr(true)})
	refused(err, "create a superuser")
	_, err = e.svc.UpdateScope(e.ctx, actor, e.scope("admin:logs").ID, identity.ScopeInput{Description: ptr("mine")})
	refused(err, "describe admin:logs")
	if got := e.get(me.ID); !slices.Equal(got.RoleNames(), []string{"helpdesk"}) {
		t.Errorf("own roles now %v", got.RoleNames())
	}

	// A plain user (role user's scopes count as held) is within reach.
	if err := e.svc.ChangePassword(e.ctx, actor, plain.ID, "", "Helpdesk-Set-4!x", uuid.Nil); err != nil {
		t.Fatalf("set a plain user's password: %v", err)
	}
	if _, err := e.svc.SetRoles(e.ctx, actor, plain.ID, []string{e.roles["user"].ID.String(), helpdesk.ID.String()}); err != nil {
		t.Fatalf("give a plain user the caller's role: %v", err)
	}
	if _, err := e.svc.CreateUser(e.ctx, actor, identity.NewUser{Username: "sam", Email: "sam@example.com", Password: goodPassword}); err != nil {
		t.Fatalf("create a plain user: %v", err)
	}
}

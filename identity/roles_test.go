package identity_test

import (
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
)

func TestScopes(t *testing.T) {
	e := newEnv(t)
	for _, in := range []identity.ScopeInput{
		{},
		{Name: ptr("noaction")},
		{Name: ptr("Read:Trades")},
		{Name: ptr("read:trades"), Action: ptr("write")},
		{Name: ptr("read:trades"), Resource: ptr("orders")},
		{Action: ptr("read")},
		{Name: ptr("read:a b")},
	} {
		_, err := e.svc.CreateScope(e.ctx, e.admin, in)
		wantCode(t, err, permiso.EINVALID, "bad scope")
	}
	sc, err := e.svc.CreateScope(e.ctx, e.admin, identity.ScopeInput{Action: ptr("read"), Resource: ptr("trades"), Description: ptr("Read trades")})
	if err != nil {
		t.Fatal(err)
	}
	if sc.Name != "read:trades" || sc.Action() != "read" || sc.ResourceName() != "trades" {
		t.Errorf("scope %q action %q resource %q", sc.Name, sc.Action(), sc.ResourceName())
	}
	_, err = e.svc.CreateScope(e.ctx, e.admin, identity.ScopeInput{Name: ptr("read:trades")})
	wantCode(t, err, permiso.EEXISTS, "duplicate")
	up, err := e.svc.UpdateScope(e.ctx, e.admin, sc.ID, identity.ScopeInput{Action: ptr("write")})
	if err != nil || up.Name != "write:trades" || up.ResourceName() != "trades" {
		t.Fatalf("rename by action: %v %q", err, up.Name)
	}
	// Built-in scopes keep their names and cannot be deleted.
	admUsers, err := e.db.GetScopeByName(e.ctx, "admin:users")
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.UpdateScope(e.ctx, e.admin, admUsers.ID, identity.ScopeInput{Name: ptr("admin:people")})
	wantCode(t, err, permiso.ECONFLICT, "rename built-in scope")
	if _, err := e.svc.UpdateScope(e.ctx, e.admin, admUsers.ID, identity.ScopeInput{Description: ptr("Manage users")}); err != nil {
		t.Errorf("describe built-in scope: %v", err)
	}
	_, err = e.svc.DeleteScope(e.ctx, e.admin, admUsers.ID)
	wantConflict(t, err, "delete built-in scope", `Scope "admin:users" is built in and cannot be deleted`)

	// In use by a role: 409 until the role lets go.
	r, err := e.svc.CreateRole(e.ctx, e.admin, identity.RoleInput{Name: ptr("trader"), ScopeIDs: &[]string{sc.ID.String()}})
	if err != nil {
		t.Fatal(err)
	}
	deleteScope := func() error {
		_, err := e.svc.DeleteScope(e.ctx, e.admin, sc.ID)
		return err
	}
	wantHeldThenDeleted(t, "delete scope in use", "Cannot delete scope that is assigned to roles", deleteScope, func() error {
		_, err := e.svc.SetRoleScopes(e.ctx, e.admin, r.ID, []string{})
		return err
	})
	wantCode(t, deleteScope(), permiso.ENOTFOUND, "delete twice")
}

func TestRoles(t *testing.T) {
	e := newEnv(t)
	sc, err := e.svc.CreateScope(e.ctx, e.admin, identity.ScopeInput{Name: ptr("read:reports")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.CreateRole(e.ctx, e.admin, identity.RoleInput{Name: ptr("x")})
	wantCode(t, err, permiso.EINVALID, "short name")
	_, err = e.svc.CreateRole(e.ctx, e.admin, identity.RoleInput{Name: ptr("ok-name"), ScopeIDs: &[]string{"nope"}})
	wantCode(t, err, permiso.EINVALID, "malformed scope id")
	_, err = e.svc.CreateRole(e.ctx, e.admin, identity.RoleInput{Name: ptr("ok-name"), ScopeIDs: &[]string{uuid.NewString()}})
	wantCode(t, err, permiso.EBADREQUEST, "unknown scope id")
	_, err = e.svc.CreateRole(e.ctx, e.admin, identity.RoleInput{Name: ptr("admin")})
	wantCode(t, err, permiso.EEXISTS, "duplicate name")

	r, err := e.svc.CreateRole(e.ctx, e.admin, identity.RoleInput{Name: ptr("reporter"), Description: ptr("Reads reports"), ScopeIDs: &[]string{sc.ID.String()}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Scopes) != 1 || r.Scopes[0].Name != "read:reports" {
		t.Errorf("scopes %v", r.Scopes)
	}
	r, err = e.svc.UpdateRole(e.ctx, e.admin, r.ID, identity.RoleInput{Name: ptr("reporters"), ScopeIDs: &[]string{}})
	if err != nil || r.Name != "reporters" || len(r.Scopes) != 0 || r.Description == nil || *r.Description != "Reads reports" {
		t.Fatalf("update: %v %+v", err, r)
	}
	_, err = e.svc.UpdateRole(e.ctx, e.admin, e.roles["admin"].ID, identity.RoleInput{Name: ptr("boss")})
	wantCode(t, err, permiso.ECONFLICT, "rename built-in role")
	_, err = e.svc.DeleteRole(e.ctx, e.admin, e.roles["user"].ID)
	wantConflict(t, err, "delete built-in role", `Role "user" is built in and cannot be deleted`)

	u := e.register("vic", "vic@example.com", goodPassword)
	if _, err := e.svc.SetRoles(e.ctx, e.admin, u.ID, []string{r.ID.String()}); err != nil {
		t.Fatal(err)
	}
	wantHeldThenDeleted(t, "delete role in use", "Cannot delete role that is assigned to users", func() error {
		_, err := e.svc.DeleteRole(e.ctx, e.admin, r.ID)
		return err
	}, func() error {
		_, err := e.svc.SetRoles(e.ctx, e.admin, u.ID, []string{})
		return err
	})
	_, err = e.svc.SetRoleScopes(e.ctx, e.admin, r.ID, []string{})
	wantCode(t, err, permiso.ENOTFOUND, "deleted role")
}

// TestDecide: the reason always matches the decision.
func TestDecide(t *testing.T) {
	scopes := func(names ...string) []permiso.Scope {
		var out []permiso.Scope
		for _, n := range names {
			out = append(out, permiso.Scope{Name: n})
		}
		return out
	}
	user := func(super bool, role string, names ...string) permiso.User {
		return permiso.User{IsSuperuser: super, Roles: []permiso.Role{{Name: role, Scopes: scopes(names...)}}}
	}
	for _, tc := range []struct {
		name             string
		u                permiso.User
		resource, action string
		allowed          bool
		reason           string
		matching         []string
	}{
		{"superuser", user(true, "user"), "anything", "delete", true, "Superuser access", nil},
		{"role admin", user(false, "admin"), "trades", "write", true, "Administrator access (role admin)", nil},
		{"exact scope", user(false, "user", "read:profile"), "profile", "read", true, "Granted by scopes: read:profile", []string{"read:profile"}},
		{"admin:resource", user(false, "ops", "admin:trades"), "trades", "delete", true, "Granted by scopes: admin:trades", []string{"admin:trades"}},
		{"admin:system for non-admin action", user(false, "ops", "admin:system"), "trades", "read", true, "Granted by scopes: admin:system", []string{"admin:system"}},
		{"admin:system not for admin action", user(false, "ops", "admin:system"), "trades", "admin", false, "No matching permissions found", nil},
		{"managed resource needs admin:users", user(false, "ops", "write:roles"), "roles", "write", false, "Managing roles requires the admin:users or admin:system scope", nil},
		{"managed with admin:users", user(false, "ops", "write:roles", "admin:users"), "roles", "write", true, "Granted by scopes: write:roles", []string{"write:roles"}},
		{"nothing", user(false, "user", "read:profile"), "profile", "write", false, "No matching permissions found", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := identity.Decide(tc.u, tc.resource, tc.action)
			if d.Allowed != tc.allowed || d.Reason != tc.reason || !slices.Equal(d.MatchingScopes, append([]string{}, tc.matching...)) {
				t.Errorf("Decide = %+v, want allowed %v reason %q matching %v", d, tc.allowed, tc.reason, tc.matching)
			}
		})
	}
	p := identity.Permissions(user(false, "user", "read:profile", "write:profile", "global"))
	if len(p.Resources) != 1 || p.Resources[0].Resource != "profile" || !slices.Equal(p.Resources[0].Actions, []string{"read", "write"}) || !slices.Equal(p.GlobalPermissions, []string{"global"}) {
		t.Errorf("Permissions = %+v", p)
	}
}

func userWith(scopes ...string) permiso.User {
	var sc []permiso.Scope
	for _, n := range scopes {
		sc = append(sc, permiso.Scope{Name: n})
	}
	return permiso.User{Roles: []permiso.Role{{Name: "custom", Scopes: sc}}}
}

package storetest

import (
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

var roleTests = []test{
	{"Roles/CRUD", testRoleCRUD},
	{"Roles/NotFound", testRoleNotFound},
	{"Roles/UnknownScopeWritesNothing", testRoleUnknownScope},
	{"Roles/UpdateRoleWithScopes", testUpdateRoleWithScopes},
	{"Roles/DeleteInUseConflicts", testRoleDeleteInUse},
	{"Roles/ListFilters", testRoleList},
	{"Scopes/CRUD", testScopeCRUD},
	{"Scopes/NotFound", testScopeNotFound},
	{"Scopes/DeleteHeldByRoleConflicts", testScopeDeleteHeld},
	{"Scopes/DeleteRemovesClientLinks", testScopeDeleteClientLink},
	{"Scopes/ListFilters", testScopeList},
}

func testRoleCRUD(h *harness) {
	sa := h.scope("reports:read")
	sb := h.scope("billing:read")
	created, err := h.s.CreateRole(h.ctx, permiso.Role{
		ID: uuid.New(), Name: "auditor", Description: ptr("Reads reports"),
		CreatedAt: h.at(-time.Hour), UpdatedAt: h.at(-time.Minute),
	}, []uuid.UUID{sa.ID, sb.ID})
	h.must(err, "CreateRole")
	eq(h, "created role name", created.Name, "auditor")
	eqStrings(h, "created role scopes", scopeNames(created.Scopes), []string{"billing:read", "reports:read"})

	got := h.getRole(created.ID, "GetRole")
	eq(h, "role name", got.Name, "auditor")
	eqPtr(h, "role description", got.Description, ptr("Reads reports"))
	eqTime(h, "role created_at", got.CreatedAt, h.at(-time.Hour))
	eqTime(h, "role updated_at", got.UpdatedAt, h.at(-time.Minute))
	eqStrings(h, "role scopes (by name)", scopeNames(got.Scopes), []string{"billing:read", "reports:read"})
	eq(h, "role user count", got.UserCount, 0)
	byName, err := h.s.GetRoleByName(h.ctx, "auditor")
	h.must(err, "GetRoleByName")
	eq(h, "GetRoleByName id", byName.ID, created.ID)

	_, err = h.s.CreateRole(h.ctx, permiso.Role{Name: "auditor"}, nil)
	h.wantErr(err, permiso.ErrAlreadyExists, "CreateRole with a taken name")
	_, err = h.s.CreateRole(h.ctx, permiso.Role{Name: "admin"}, nil)
	h.wantErr(err, permiso.ErrAlreadyExists, "CreateRole(admin)")

	h.user("kim", created.ID)
	updated, err := h.s.UpdateRole(h.ctx, created.ID, func(r *permiso.Role) error {
		r.Name = "auditors"
		r.Description = nil
		r.UpdatedAt = h.now
		return nil
	})
	h.must(err, "UpdateRole")
	eq(h, "updated role name", updated.Name, "auditors")
	eqPtr(h, "updated role description", updated.Description, nil)
	eqTime(h, "updated role updated_at", updated.UpdatedAt, h.now)
	eqStrings(h, "scopes kept by UpdateRole", scopeNames(updated.Scopes), []string{"billing:read", "reports:read"})
	_, err = h.s.UpdateRole(h.ctx, created.ID, func(r *permiso.Role) error { r.Name = "user"; return nil })
	h.wantErr(err, permiso.ErrAlreadyExists, "UpdateRole onto a taken name")
	_, err = h.s.UpdateRole(h.ctx, created.ID, func(r *permiso.Role) error { r.Name = "x"; return errCallback })
	h.wantErr(err, errCallback, "UpdateRole with a failing callback")

	h.must(h.s.SetRoleScopes(h.ctx, created.ID, []uuid.UUID{sa.ID, scopeReadProfileID}), "SetRoleScopes")
	got = h.getRole(created.ID, "GetRole")
	eq(h, "role name after failed updates", got.Name, "auditors")
	eqStrings(h, "role scopes after SetRoleScopes", scopeNames(got.Scopes), []string{"read:profile", "reports:read"})
	eq(h, "role user count", got.UserCount, 1)
	// The role's scopes reach its users.
	u, err := h.s.GetUserByUsername(h.ctx, "kim")
	h.must(err, "GetUserByUsername(kim)")
	eqStrings(h, "user scopes via role", u.ScopeNames(), []string{"read:profile", "reports:read"})

	h.must(h.s.SetUserRoles(h.ctx, u.ID, nil), "SetUserRoles(nil)")
	h.must(h.s.DeleteRole(h.ctx, created.ID), "DeleteRole")
	_, err = h.s.GetRole(h.ctx, created.ID)
	h.wantErr(err, permiso.ErrNotFound, "GetRole after delete")
	// Deleting the role removed its scope links, not the scopes.
	s, err := h.s.GetScope(h.ctx, sa.ID)
	h.must(err, "GetScope after role delete")
	eq(h, "scope role count after role delete", s.RoleCount, 0)
}

func testRoleNotFound(h *harness) {
	id := uuid.New()
	h.wantNotFound(map[string]error{
		"GetRole":       errOf(h.s.GetRole(h.ctx, id)),
		"GetRoleByName": errOf(h.s.GetRoleByName(h.ctx, "ghost")),
		"UpdateRole":    errOf(h.s.UpdateRole(h.ctx, id, func(*permiso.Role) error { return nil })),
		"DeleteRole":    h.s.DeleteRole(h.ctx, id),
		"SetRoleScopes": h.s.SetRoleScopes(h.ctx, id, []uuid.UUID{scopeReadProfileID}),
	})
}

func testRoleUnknownScope(h *harness) {
	_, err := h.s.CreateRole(h.ctx, permiso.Role{Name: "broken"}, []uuid.UUID{scopeReadProfileID, uuid.New()})
	h.wantErr(err, permiso.ErrNotFound, "CreateRole with an unknown scope")
	_, err = h.s.GetRoleByName(h.ctx, "broken")
	h.wantErr(err, permiso.ErrNotFound, "GetRoleByName after failed CreateRole (must be transactional)")
	rp, err := h.s.GetScope(h.ctx, scopeReadProfileID)
	h.must(err, "GetScope")
	eq(h, "read:profile role count after failed CreateRole", rp.RoleCount, 2)

	err = h.s.SetRoleScopes(h.ctx, roleUserID, []uuid.UUID{scopeAdminUsersID, uuid.New()})
	h.wantErr(err, permiso.ErrNotFound, "SetRoleScopes with an unknown scope")
	r := h.getRole(roleUserID, "GetRole(user)")
	eqStrings(h, "role user scopes after failed SetRoleScopes", scopeNames(r.Scopes), []string{"read:profile", "write:profile"})
}

func testRoleDeleteInUse(h *harness) {
	r := h.role("editor", scopeReadProfileID)
	u := h.user("lena", r.ID)
	h.wantErr(h.s.DeleteRole(h.ctx, r.ID), permiso.ErrConflict, "DeleteRole while a user holds it")
	got := h.getRole(r.ID, "GetRole after refused delete")
	eq(h, "user count after refused delete", got.UserCount, 1)
	eqStrings(h, "scopes after refused delete", scopeNames(got.Scopes), []string{"read:profile"})
	gu, err := h.s.GetUser(h.ctx, u.ID)
	h.must(err, "GetUser")
	eqStrings(h, "user roles after refused delete", roleNames(gu.Roles), []string{"editor"})

	h.must(h.s.SetUserRoles(h.ctx, u.ID, nil), "SetUserRoles(nil)")
	h.must(h.s.DeleteRole(h.ctx, r.ID), "DeleteRole once unused")
	rp, err := h.s.GetScope(h.ctx, scopeReadProfileID)
	h.must(err, "GetScope(read:profile)")
	eq(h, "read:profile role count after role delete", rp.RoleCount, 2)
}

func testRoleList(h *harness) {
	h.role("zeta-role")
	roles, total, err := h.s.ListRoles(h.ctx, permiso.RoleFilter{Search: "ADM"})
	h.must(err, "ListRoles(search ADM)")
	eq(h, "total of search ADM", total, 1)
	eqStrings(h, "ListRoles(search ADM)", roleNames(roles), []string{"admin"})

	roles, total, err = h.s.ListRoles(h.ctx, permiso.RoleFilter{ScopeID: ptr(scopeReadProfileID)})
	h.must(err, "ListRoles(scope read:profile)")
	eq(h, "total of roles with read:profile", total, 2)
	eqStrings(h, "roles with read:profile", roleNames(roles), []string{"admin", "user"})

	roles, total, err = h.s.ListRoles(h.ctx, permiso.RoleFilter{Offset: 1, Limit: 2})
	h.must(err, "ListRoles(page)")
	eq(h, "total of all roles", total, 4)
	eqStrings(h, "roles page 2 (ordered by name)", roleNames(roles), []string{"service", "user"})
	for _, r := range roles {
		if r.Name == "user" {
			eqStrings(h, "listed role user scopes", scopeNames(r.Scopes), []string{"read:profile", "write:profile"})
		}
	}

	h.user("max", roleUserID)
	roles, _, err = h.s.ListRoles(h.ctx, permiso.RoleFilter{Search: "user"})
	h.must(err, "ListRoles(search user)")
	for _, r := range roles {
		if r.Name == "user" {
			eq(h, "listed user count of role user", r.UserCount, 1)
		}
	}
}

func testScopeCRUD(h *harness) {
	created, err := h.s.CreateScope(h.ctx, permiso.Scope{
		ID: uuid.New(), Name: "reports:export", Description: ptr("Export reports"),
		Resource: ptr("reports"), CreatedAt: h.at(-time.Hour), UpdatedAt: h.at(-time.Hour),
	})
	h.must(err, "CreateScope")
	got, err := h.s.GetScope(h.ctx, created.ID)
	h.must(err, "GetScope")
	eq(h, "scope name", got.Name, "reports:export")
	eqPtr(h, "scope description", got.Description, ptr("Export reports"))
	eqPtr(h, "scope resource", got.Resource, ptr("reports"))
	eqTime(h, "scope created_at", got.CreatedAt, h.at(-time.Hour))
	eq(h, "scope role count", got.RoleCount, 0)
	byName, err := h.s.GetScopeByName(h.ctx, "reports:export")
	h.must(err, "GetScopeByName")
	eq(h, "GetScopeByName id", byName.ID, created.ID)

	_, err = h.s.CreateScope(h.ctx, permiso.Scope{Name: "reports:export"})
	h.wantErr(err, permiso.ErrAlreadyExists, "CreateScope with a taken name")

	gen, err := h.s.CreateScope(h.ctx, permiso.Scope{Name: "plain"})
	h.must(err, "CreateScope with zero id and no resource")
	if gen.ID == uuid.Nil {
		h.Error("CreateScope returned a zero id")
	}
	eqPtr(h, "resource of a scope without one", gen.Resource, nil)

	updated, err := h.s.UpdateScope(h.ctx, created.ID, func(s *permiso.Scope) error {
		s.Name, s.Description, s.Resource, s.UpdatedAt = "reports:download", nil, ptr("downloads"), h.now
		return nil
	})
	h.must(err, "UpdateScope")
	eq(h, "updated scope name", updated.Name, "reports:download")
	eqPtr(h, "updated scope description", updated.Description, nil)
	eqPtr(h, "updated scope resource", updated.Resource, ptr("downloads"))
	eqTime(h, "updated scope updated_at", updated.UpdatedAt, h.now)
	_, err = h.s.UpdateScope(h.ctx, created.ID, func(s *permiso.Scope) error { s.Name = "plain"; return nil })
	h.wantErr(err, permiso.ErrAlreadyExists, "UpdateScope onto a taken name")

	h.must(h.s.DeleteScope(h.ctx, created.ID), "DeleteScope")
	_, err = h.s.GetScope(h.ctx, created.ID)
	h.wantErr(err, permiso.ErrNotFound, "GetScope after delete")
}

func testScopeNotFound(h *harness) {
	id := uuid.New()
	h.wantNotFound(map[string]error{
		"GetScope":       errOf(h.s.GetScope(h.ctx, id)),
		"GetScopeByName": errOf(h.s.GetScopeByName(h.ctx, "ghost:scope")),
		"UpdateScope":    errOf(h.s.UpdateScope(h.ctx, id, func(*permiso.Scope) error { return nil })),
		"DeleteScope":    h.s.DeleteScope(h.ctx, id),
	})
}

func testScopeDeleteHeld(h *harness) {
	h.wantErr(h.s.DeleteScope(h.ctx, scopeReadProfileID), permiso.ErrConflict, "DeleteScope(read:profile) held by roles")
	s := h.scope("tmp:held")
	r := h.role("holder", s.ID)
	h.wantErr(h.s.DeleteScope(h.ctx, s.ID), permiso.ErrConflict, "DeleteScope held by a role")
	_, err := h.s.GetScope(h.ctx, s.ID)
	h.must(err, "GetScope after refused delete")
	h.must(h.s.SetRoleScopes(h.ctx, r.ID, nil), "SetRoleScopes(nil)")
	h.must(h.s.DeleteScope(h.ctx, s.ID), "DeleteScope once no role holds it")
}

func testScopeDeleteClientLink(h *harness) {
	s := h.scope("tmp:client")
	c := h.client("scoped", s.ID, scopeReadProfileID)
	eqStrings(h, "client scopes", scopeNames(c.Scopes), []string{"read:profile", "tmp:client"})
	h.must(h.s.DeleteScope(h.ctx, s.ID), "DeleteScope held only by a client")
	got, err := h.s.GetServiceClient(h.ctx, c.ID)
	h.must(err, "GetServiceClient")
	eqStrings(h, "client scopes after scope delete", scopeNames(got.Scopes), []string{"read:profile"})
}

func testScopeList(h *harness) {
	h.scope("quarterly:read")
	for _, tc := range []struct {
		name string
		f    permiso.ScopeFilter
		want int
	}{
		{"all", permiso.ScopeFilter{}, len(seedScopes) + 1},
		{"resource profile", permiso.ScopeFilter{Resource: "profile"}, 2},
		{"action admin", permiso.ScopeFilter{Action: "admin"}, 9},
		{"action read", permiso.ScopeFilter{Action: "read"}, 1},
		{"action quarterly", permiso.ScopeFilter{Action: "quarterly"}, 1},
		{"action adm (no prefix match)", permiso.ScopeFilter{Action: "adm"}, 0},
		{"search QUARTERLY", permiso.ScopeFilter{Search: "QUARTERLY"}, 1},
		{"search and resource", permiso.ScopeFilter{Search: "quarter", Resource: "read"}, 1},
		{"search and other resource", permiso.ScopeFilter{Search: "quarter", Resource: "profile"}, 0},
	} {
		scopes, total, err := h.s.ListScopes(h.ctx, tc.f)
		h.must(err, "ListScopes(%s)", tc.name)
		eq(h, "total of ListScopes("+tc.name+")", total, tc.want)
		eq(h, "len of ListScopes("+tc.name+")", len(scopes), tc.want)
	}
	scopes, total, err := h.s.ListScopes(h.ctx, permiso.ScopeFilter{Action: "admin", Offset: 2, Limit: 3})
	h.must(err, "ListScopes(admin page)")
	eq(h, "total of admin page", total, 9)
	eqStrings(h, "admin scopes page (by name)", scopeNames(scopes), []string{"admin:logs", "admin:permissions", "admin:security"})
	for _, s := range scopes {
		eq(h, "listed role count of "+s.Name, s.RoleCount, 1)
	}
}

func testUpdateRoleWithScopes(h *harness) {
	r, err := h.s.CreateRole(h.ctx, permiso.Role{Name: "auditor"}, nil)
	h.must(err, "CreateRole")
	desc := "reads the audit log"
	got, err := h.s.UpdateRoleWithScopes(h.ctx, r.ID, func(x *permiso.Role) error {
		x.Description = &desc
		return nil
	}, []uuid.UUID{scopeID(h, "admin:audit")})
	h.must(err, "UpdateRoleWithScopes")
	eqStrings(h, "scopes after UpdateRoleWithScopes", scopeNames(got.Scopes), []string{"admin:audit"})

	// An unknown scope id writes nothing: neither the name nor the scopes.
	_, err = h.s.UpdateRoleWithScopes(h.ctx, r.ID, func(x *permiso.Role) error {
		x.Name = "renamed"
		return nil
	}, []uuid.UUID{uuid.New()})
	h.wantErr(err, permiso.ErrNotFound, "UpdateRoleWithScopes with an unknown scope")
	got = h.getRole(r.ID, "GetRole")
	eq(h, "name after failed UpdateRoleWithScopes (must be transactional)", got.Name, "auditor")
	eqStrings(h, "scopes after failed UpdateRoleWithScopes", scopeNames(got.Scopes), []string{"admin:audit"})
	if got.Description == nil || *got.Description != desc {
		h.Errorf("description after failed update = %v, want %q", got.Description, desc)
	}
}

// scopeID returns the id of a seeded scope.
func scopeID(h *harness, name string) uuid.UUID {
	s, err := h.s.GetScopeByName(h.ctx, name)
	h.must(err, "GetScopeByName %s", name)
	return s.ID
}

package sqlstore

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// Roles describes the roles table.
var Roles = NewTable("roles", "r", Fields[permiso.Role]([]string{"id", "created_at"},
	"id", "name", "description", "created_at", "updated_at")...)

// roleSelect selects Roles.List() and the number of users holding the role.
var roleSelect = "SELECT " + Roles.List() + ", (SELECT count(*) FROM user_roles AS ur WHERE ur.role_id = r.id) FROM " + Roles.From()

// scopeSelect selects Scopes.List() and the number of roles holding the scope.
var scopeSelect = "SELECT " + Scopes.List() + ", (SELECT count(*) FROM role_scopes AS rs WHERE rs.scope_id = s.id) FROM " + Scopes.From()

func (s *Store) roleErr(op string, err error) error {
	return s.errOf(err, op, RoleMessages, false, ScopeMessages.NotFound)
}

func (s *Store) scopeErr(op string, err error) error {
	return s.errOf(err, op, ScopeMessages, false, "")
}

// selectRoles runs a query of roleSelect and fills each role's scopes.
func (s *Store) selectRoles(ctx context.Context, q Querier, query string, args ...any) ([]permiso.Role, error) {
	roles, err := scanAll(ctx, s, q, func(r Row) (permiso.Role, error) {
		var n int
		role, err := Roles.Scan(s.d, r, &n)
		role.UserCount = n
		return role, err
	}, query, args...)
	if err != nil {
		return nil, s.roleErr("list roles", err)
	}
	err = linkScopes(ctx, s, q, s.qs.roleScopes, roles, func(r *permiso.Role) (uuid.UUID, *[]permiso.Scope) { return r.ID, &r.Scopes })
	if err != nil {
		return nil, err
	}
	return roles, nil
}

func (s *Store) getRole(ctx context.Context, q Querier, cond string, args ...any) (permiso.Role, error) {
	roles, err := s.selectRoles(ctx, q, roleSelect+" WHERE "+cond, args...)
	return first(roles, err, RoleMessages.NotFound)
}

// CreateRole inserts r and links scopeIDs in one transaction.
func (s *Store) CreateRole(ctx context.Context, r permiso.Role, scopeIDs []uuid.UUID) (permiso.Role, error) {
	if r.ID == uuid.Nil {
		r.ID = newID()
	}
	createdTimes(&r.CreatedAt, &r.UpdatedAt)
	return createLinked(ctx, s, Roles, &r, roleScopes, r.ID, scopeIDs,
		func(err error) error { return s.roleErr("create role", err) },
		func(q Querier) (permiso.Role, error) { return s.getRole(ctx, q, "r.id = ?", r.ID) })
}

// GetRole returns the role with its scopes and user count.
func (s *Store) GetRole(ctx context.Context, id uuid.UUID) (permiso.Role, error) {
	return readOne(ctx, s, (*Store).getRole, "r.id = ?", id)
}

// GetRoleByName returns the role with this exact name.
func (s *Store) GetRoleByName(ctx context.Context, name string) (permiso.Role, error) {
	return readOne(ctx, s, (*Store).getRole, "r.name = ?", name)
}

// UpdateRole applies fn to the role and writes its name and description in
// one transaction (its scopes stay).
func (s *Store) UpdateRole(ctx context.Context, id uuid.UUID, fn func(*permiso.Role) error) (permiso.Role, error) {
	return s.updateRole(ctx, id, fn, nil)
}

// UpdateRoleWithScopes updates the role and replaces its scopes in one
// transaction.
func (s *Store) UpdateRoleWithScopes(ctx context.Context, id uuid.UUID, fn func(*permiso.Role) error, scopeIDs []uuid.UUID) (permiso.Role, error) {
	return s.updateRole(ctx, id, fn, linkIDs(scopeIDs))
}

// linkIDs is ids as the links an update replaces: nil (none) is an empty
// list, since a nil list tells the update to leave the links as they are.
func linkIDs(ids []uuid.UUID) []uuid.UUID {
	if ids == nil {
		return []uuid.UUID{}
	}
	return ids
}

func (s *Store) updateRole(ctx context.Context, id uuid.UUID, fn func(*permiso.Role) error, scopeIDs []uuid.UUID) (permiso.Role, error) {
	get := func(q Querier) (permiso.Role, error) { return s.getRole(ctx, q, "r.id = ?", id) }
	return writeRead(ctx, s, func(q Querier) error {
		if err := s.lockRow(ctx, q, "roles", id, RoleMessages.NotFound); err != nil {
			return err
		}
		if scopeIDs != nil {
			if err := s.replaceLinks(ctx, q, roleScopes, id, scopeIDs, false); err != nil {
				return err
			}
		}
		return updateRow(ctx, s, q, Roles, id, get, fn, "update role", s.roleErr)
	}, get)
}

// DeleteRole removes the role and its scope links; it returns ErrConflict
// while any user holds the role.
func (s *Store) DeleteRole(ctx context.Context, id uuid.UUID) error {
	return s.deleteByID(ctx, "roles", "delete role", RoleMessages, id)
}

// ListRoles returns one page of the roles matching f, ordered by name, id,
// and the number of all matching roles.
func (s *Store) ListRoles(ctx context.Context, f permiso.RoleFilter) ([]permiso.Role, int, error) {
	var w where
	w.search(strings.TrimSpace(f.Search), "r.name", "coalesce(r.description, '')")
	addSet(&w, "EXISTS (SELECT 1 FROM role_scopes AS x WHERE x.role_id = r.id AND x.scope_id = ?)", f.ScopeID)
	return listPage(ctx, s, Roles.From(), roleSelect, w, "r.name, r.id", f.Offset, f.Limit,
		func(err error) error { return s.roleErr("count roles", err) }, s.selectRoles)
}

// SetRoleScopes replaces the role's scopes in one transaction; an unknown
// role or scope id yields ErrNotFound and nothing changes.
func (s *Store) SetRoleScopes(ctx context.Context, roleID uuid.UUID, scopeIDs []uuid.UUID) error {
	return s.c.Write(ctx, func(q Querier) error { return s.replaceLinks(ctx, q, roleScopes, roleID, scopeIDs, true) })
}

// selectScopes runs a query of scopeSelect.
func (s *Store) selectScopes(ctx context.Context, q Querier, query string, args ...any) ([]permiso.Scope, error) {
	out, err := scanAll(ctx, s, q, func(r Row) (permiso.Scope, error) {
		var n int
		sc, err := Scopes.Scan(s.d, r, &n)
		sc.RoleCount = n
		return sc, err
	}, query, args...)
	return out, s.scopeErr("list scopes", err)
}

func (s *Store) getScope(ctx context.Context, q Querier, cond, lock string, arg any) (permiso.Scope, error) {
	ss, err := s.selectScopes(ctx, q, scopeSelect+" WHERE "+cond+lock, arg)
	return first(ss, err, ScopeMessages.NotFound)
}

// CreateScope inserts sc (ID generated when zero).
func (s *Store) CreateScope(ctx context.Context, sc permiso.Scope) (permiso.Scope, error) {
	if sc.ID == uuid.Nil {
		sc.ID = newID()
	}
	createdTimes(&sc.CreatedAt, &sc.UpdatedAt)
	return writeRead(ctx, s, func(q Querier) error {
		_, err := s.exec(ctx, q, Scopes.Insert(), Scopes.Args(s.d, &sc)...)
		return s.scopeErr("create scope", err)
	}, func(q Querier) (permiso.Scope, error) { return s.getScope(ctx, q, "s.id = ?", "", sc.ID) })
}

// GetScope returns the scope with its role count.
func (s *Store) GetScope(ctx context.Context, id uuid.UUID) (permiso.Scope, error) {
	return s.getScope(ctx, s.c.Reader(), "s.id = ?", "", id)
}

// GetScopeByName returns the scope with this exact name.
func (s *Store) GetScopeByName(ctx context.Context, name string) (permiso.Scope, error) {
	return s.getScope(ctx, s.c.Reader(), "s.name = ?", "", name)
}

// UpdateScope applies fn to the scope and writes it in one transaction.
func (s *Store) UpdateScope(ctx context.Context, id uuid.UUID, fn func(*permiso.Scope) error) (permiso.Scope, error) {
	get := func(q Querier) (permiso.Scope, error) { return s.getScope(ctx, q, "s.id = ?", "", id) }
	return writeRead(ctx, s, func(q Querier) error {
		if err := s.lockRow(ctx, q, "scopes", id, ScopeMessages.NotFound); err != nil {
			return err
		}
		return updateRow(ctx, s, q, Scopes, id, get, fn, "update scope", s.scopeErr)
	}, get)
}

// DeleteScope removes the scope (and its links to service clients); it
// returns ErrConflict while any role holds the scope.
func (s *Store) DeleteScope(ctx context.Context, id uuid.UUID) error {
	return s.deleteByID(ctx, "scopes", "delete scope", ScopeMessages, id)
}

// ListScopes returns one page of the scopes matching f, ordered by name,
// id, and the number of all matching scopes. Action matches the part of the
// name before the first ':'.
func (s *Store) ListScopes(ctx context.Context, f permiso.ScopeFilter) ([]permiso.Scope, int, error) {
	var w where
	w.search(strings.TrimSpace(f.Search), "s.name", "coalesce(s.description, '')")
	if f.Resource != "" {
		w.add("s.resource = ?", f.Resource)
	}
	if f.Action != "" {
		prefix := f.Action + ":"
		w.add("(s.name = ? OR substr(s.name, 1, ?) = ?)", f.Action, utf8.RuneCountInString(prefix), prefix)
	}
	return listPage(ctx, s, Scopes.From(), scopeSelect, w, "s.name, s.id", f.Offset, f.Limit,
		func(err error) error { return s.scopeErr("count scopes", err) }, s.selectScopes)
}

package sqlite

import (
	"context"
	"strings"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

const (
	roleColsR  = "r.id, r.name, r.description, r.created_at, r.updated_at"
	scopeColsS = "s.id, s.name, s.description, s.resource, s.created_at, s.updated_at"
)

func roleDest(r *permiso.Role) []any {
	return []any{&r.ID, &r.Name, &r.Description, timeCol{&r.CreatedAt}, timeCol{&r.UpdatedAt}}
}

func scopeDest(s *permiso.Scope) []any {
	return []any{&s.ID, &s.Name, &s.Description, &s.Resource, timeCol{&s.CreatedAt}, timeCol{&s.UpdatedAt}}
}

func roleErr(op string, err error) error {
	return errMap{op: op, notFound: "Role not found", exists: "Role name already exists",
		fk: "Scope not found", fkCode: permiso.ENOTFOUND}.wrap(err)
}

func scopeErr(op string, err error) error {
	return errMap{op: op, notFound: "Scope not found", exists: "Scope name already exists"}.wrap(err)
}

// loadRoleScopes returns the scopes of each role in ids, ordered by name.
func loadRoleScopes(ctx context.Context, c conn, ids []uuid.UUID) (map[uuid.UUID][]permiso.Scope, error) {
	out := make(map[uuid.UUID][]permiso.Scope, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := c.query(ctx, `SELECT rs.role_id, `+scopeColsS+`
		FROM role_scopes AS rs JOIN scopes AS s ON s.id = rs.scope_id
		WHERE rs.role_id IN (SELECT value FROM json_each(?))
		ORDER BY s.name, s.id`, idsJSON(ids))
	if err != nil {
		return nil, errMap{op: "load role scopes"}.wrap(err)
	}
	defer rows.Close()
	for rows.Next() {
		var rid uuid.UUID
		var s permiso.Scope
		if err := rows.Scan(append([]any{&rid}, scopeDest(&s)...)...); err != nil {
			return nil, errMap{op: "load role scopes"}.wrap(err)
		}
		out[rid] = append(out[rid], s)
	}
	if err := rows.Err(); err != nil {
		return nil, errMap{op: "load role scopes"}.wrap(err)
	}
	return out, nil
}

// selectRoles runs a roles query (selecting roleColsR and the user count)
// and fills each role's scopes.
func selectRoles(ctx context.Context, c conn, query string, args ...any) ([]permiso.Role, error) {
	rows, err := c.query(ctx, query, args...)
	if err != nil {
		return nil, roleErr("list roles", err)
	}
	var roles []permiso.Role
	var ids []uuid.UUID
	for rows.Next() {
		var r permiso.Role
		if err := rows.Scan(append(roleDest(&r), &r.UserCount)...); err != nil {
			rows.Close()
			return nil, roleErr("list roles", err)
		}
		roles = append(roles, r)
		ids = append(ids, r.ID)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, roleErr("list roles", err)
	}
	scopes, err := loadRoleScopes(ctx, c, ids)
	if err != nil {
		return nil, err
	}
	for i := range roles {
		roles[i].Scopes = scopes[roles[i].ID]
	}
	return roles, nil
}

const roleSelect = `SELECT ` + roleColsR + `,
	(SELECT count(*) FROM user_roles AS ur WHERE ur.role_id = r.id)
	FROM roles AS r`

func getRole(ctx context.Context, c conn, where string, args ...any) (permiso.Role, error) {
	roles, err := selectRoles(ctx, c, roleSelect+" WHERE "+where, args...)
	if err != nil {
		return permiso.Role{}, err
	}
	if len(roles) == 0 {
		return permiso.Role{}, notFound("Role not found")
	}
	return roles[0], nil
}

// CreateRole inserts r and links scopeIDs in one transaction.
func (db *DB) CreateRole(ctx context.Context, r permiso.Role, scopeIDs []uuid.UUID) (permiso.Role, error) {
	if r.ID == uuid.Nil {
		r.ID = newID()
	}
	r.CreatedAt = orNow(r.CreatedAt)
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = r.CreatedAt
	}
	scopeIDs = uniqueIDs(scopeIDs)
	var out permiso.Role
	err := db.inTx(ctx, func(c conn) error {
		if err := checkAllExist(ctx, c, "scopes", scopeIDs, "Scope not found"); err != nil {
			return err
		}
		if _, err := c.exec(ctx,
			"INSERT INTO roles (id, name, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
			r.ID, r.Name, r.Description, ts(r.CreatedAt), ts(r.UpdatedAt)); err != nil {
			return roleErr("create role", err)
		}
		if err := insertRoleScopes(ctx, c, r.ID, scopeIDs); err != nil {
			return err
		}
		var err error
		out, err = getRole(ctx, c, "r.id = ?", r.ID)
		return err
	})
	return out, err
}

func insertRoleScopes(ctx context.Context, c conn, roleID uuid.UUID, scopeIDs []uuid.UUID) error {
	for _, sid := range scopeIDs {
		if _, err := c.exec(ctx, "INSERT INTO role_scopes (role_id, scope_id) VALUES (?, ?)", roleID, sid); err != nil {
			return roleErr("link role scope", err)
		}
	}
	return nil
}

// GetRole returns the role with its scopes and user count.
func (db *DB) GetRole(ctx context.Context, id uuid.UUID) (permiso.Role, error) {
	var r permiso.Role
	err := db.readTx(ctx, func(c conn) (err error) {
		r, err = getRole(ctx, c, "r.id = ?", id)
		return err
	})
	return r, err
}

// GetRoleByName returns the role with this exact name.
func (db *DB) GetRoleByName(ctx context.Context, name string) (permiso.Role, error) {
	var r permiso.Role
	err := db.readTx(ctx, func(c conn) (err error) {
		r, err = getRole(ctx, c, "r.name = ?", name)
		return err
	})
	return r, err
}

// UpdateRole applies fn to the role and writes its name and description in
// one transaction (use SetRoleScopes for its scopes).
func (db *DB) UpdateRole(ctx context.Context, id uuid.UUID, fn func(*permiso.Role) error) (permiso.Role, error) {
	return db.updateRole(ctx, id, fn, nil)
}

// UpdateRoleWithScopes updates the role and replaces its scopes in one
// transaction.
func (db *DB) UpdateRoleWithScopes(ctx context.Context, id uuid.UUID, fn func(*permiso.Role) error, scopeIDs []uuid.UUID) (permiso.Role, error) {
	if scopeIDs == nil {
		scopeIDs = []uuid.UUID{}
	}
	return db.updateRole(ctx, id, fn, scopeIDs)
}

func (db *DB) updateRole(ctx context.Context, id uuid.UUID, fn func(*permiso.Role) error, scopeIDs []uuid.UUID) (permiso.Role, error) {
	var out permiso.Role
	err := db.inTx(ctx, func(c conn) error {
		if scopeIDs != nil {
			if err := replaceRoleScopes(ctx, c, id, scopeIDs); err != nil {
				return err
			}
		}
		r, err := getRole(ctx, c, "r.id = ?", id)
		if err != nil {
			return err
		}
		if err := fn(&r); err != nil {
			return err
		}
		if _, err := c.exec(ctx, "UPDATE roles SET name = ?, description = ?, updated_at = ? WHERE id = ?",
			r.Name, r.Description, ts(orNow(r.UpdatedAt)), id); err != nil {
			return roleErr("update role", err)
		}
		out, err = getRole(ctx, c, "r.id = ?", id)
		return err
	})
	return out, err
}

// DeleteRole removes the role and its scope links; it returns ErrConflict
// while any user holds the role.
func (db *DB) DeleteRole(ctx context.Context, id uuid.UUID) error {
	n, err := db.w().execN(ctx, "DELETE FROM roles WHERE id = ?", id)
	if err != nil {
		return errMap{op: "delete role", fk: "Role is assigned to users", fkCode: permiso.ECONFLICT}.wrap(err)
	}
	if n == 0 {
		return notFound("Role not found")
	}
	return nil
}

// ListRoles returns one page of the roles matching f, ordered by name, id,
// and the number of all matching roles.
func (db *DB) ListRoles(ctx context.Context, f permiso.RoleFilter) ([]permiso.Role, int, error) {
	var where []string
	var args []any
	if f.Search != "" {
		where = append(where, `(lower(r.name) LIKE ?1 ESCAPE '\' OR lower(coalesce(r.description, '')) LIKE ?1 ESCAPE '\')`)
		args = append(args, likePattern(f.Search))
	}
	if f.ScopeID != nil {
		where = append(where, "r.id IN (SELECT role_id FROM role_scopes WHERE scope_id = ?)")
		args = append(args, *f.ScopeID)
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	var roles []permiso.Role
	var total int
	err := db.readTx(ctx, func(c conn) error {
		if err := c.queryRow(ctx, "SELECT count(*) FROM roles AS r"+cond, args...).Scan(&total); err != nil {
			return roleErr("count roles", err)
		}
		q, qargs := page(roleSelect+cond+" ORDER BY r.name, r.id", args, f.Offset, f.Limit)
		var err error
		roles, err = selectRoles(ctx, c, q, qargs...)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return roles, total, nil
}

// SetRoleScopes replaces the role's scopes in one transaction.
func (db *DB) SetRoleScopes(ctx context.Context, roleID uuid.UUID, scopeIDs []uuid.UUID) error {
	return db.inTx(ctx, func(c conn) error { return replaceRoleScopes(ctx, c, roleID, scopeIDs) })
}

// replaceRoleScopes replaces the role's scopes inside a transaction.
func replaceRoleScopes(ctx context.Context, c conn, roleID uuid.UUID, scopeIDs []uuid.UUID) error {
	scopeIDs = uniqueIDs(scopeIDs)
	if err := checkExists(ctx, c, "roles", roleID, "Role not found"); err != nil {
		return err
	}
	if err := checkAllExist(ctx, c, "scopes", scopeIDs, "Scope not found"); err != nil {
		return err
	}
	if _, err := c.exec(ctx, "DELETE FROM role_scopes WHERE role_id = ?", roleID); err != nil {
		return roleErr("set role scopes", err)
	}
	return insertRoleScopes(ctx, c, roleID, scopeIDs)
}

const scopeSelect = `SELECT ` + scopeColsS + `,
	(SELECT count(*) FROM role_scopes AS rs WHERE rs.scope_id = s.id)
	FROM scopes AS s`

func selectScopes(ctx context.Context, c conn, query string, args ...any) ([]permiso.Scope, error) {
	rows, err := c.query(ctx, query, args...)
	if err != nil {
		return nil, scopeErr("list scopes", err)
	}
	defer rows.Close()
	var out []permiso.Scope
	for rows.Next() {
		var s permiso.Scope
		if err := rows.Scan(append(scopeDest(&s), &s.RoleCount)...); err != nil {
			return nil, scopeErr("list scopes", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, scopeErr("list scopes", err)
	}
	return out, nil
}

func getScope(ctx context.Context, c conn, where string, args ...any) (permiso.Scope, error) {
	ss, err := selectScopes(ctx, c, scopeSelect+" WHERE "+where, args...)
	if err != nil {
		return permiso.Scope{}, err
	}
	if len(ss) == 0 {
		return permiso.Scope{}, notFound("Scope not found")
	}
	return ss[0], nil
}

// CreateScope inserts s (ID generated when zero).
func (db *DB) CreateScope(ctx context.Context, s permiso.Scope) (permiso.Scope, error) {
	if s.ID == uuid.Nil {
		s.ID = newID()
	}
	s.CreatedAt = orNow(s.CreatedAt)
	if s.UpdatedAt.IsZero() {
		s.UpdatedAt = s.CreatedAt
	}
	var out permiso.Scope
	err := db.inTx(ctx, func(c conn) error {
		if _, err := c.exec(ctx,
			"INSERT INTO scopes (id, name, description, resource, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
			s.ID, s.Name, s.Description, s.Resource, ts(s.CreatedAt), ts(s.UpdatedAt)); err != nil {
			return scopeErr("create scope", err)
		}
		var err error
		out, err = getScope(ctx, c, "s.id = ?", s.ID)
		return err
	})
	return out, err
}

// GetScope returns the scope with its role count.
func (db *DB) GetScope(ctx context.Context, id uuid.UUID) (permiso.Scope, error) {
	return getScope(ctx, db.r(), "s.id = ?", id)
}

// GetScopeByName returns the scope with this exact name.
func (db *DB) GetScopeByName(ctx context.Context, name string) (permiso.Scope, error) {
	return getScope(ctx, db.r(), "s.name = ?", name)
}

// UpdateScope applies fn to the scope and writes it in one transaction.
func (db *DB) UpdateScope(ctx context.Context, id uuid.UUID, fn func(*permiso.Scope) error) (permiso.Scope, error) {
	var out permiso.Scope
	err := db.inTx(ctx, func(c conn) error {
		s, err := getScope(ctx, c, "s.id = ?", id)
		if err != nil {
			return err
		}
		if err := fn(&s); err != nil {
			return err
		}
		if _, err := c.exec(ctx, "UPDATE scopes SET name = ?, description = ?, resource = ?, updated_at = ? WHERE id = ?",
			s.Name, s.Description, s.Resource, ts(orNow(s.UpdatedAt)), id); err != nil {
			return scopeErr("update scope", err)
		}
		out, err = getScope(ctx, c, "s.id = ?", id)
		return err
	})
	return out, err
}

// DeleteScope removes the scope (and its links to service clients); it
// returns ErrConflict while any role holds the scope.
func (db *DB) DeleteScope(ctx context.Context, id uuid.UUID) error {
	n, err := db.w().execN(ctx, "DELETE FROM scopes WHERE id = ?", id)
	if err != nil {
		return errMap{op: "delete scope", fk: "Scope is assigned to roles", fkCode: permiso.ECONFLICT}.wrap(err)
	}
	if n == 0 {
		return notFound("Scope not found")
	}
	return nil
}

// ListScopes returns one page of the scopes matching f, ordered by name,
// id, and the number of all matching scopes. Action matches the part of the
// name before the first ':'.
func (db *DB) ListScopes(ctx context.Context, f permiso.ScopeFilter) ([]permiso.Scope, int, error) {
	var where []string
	var args []any
	if f.Search != "" {
		where = append(where, `(lower(s.name) LIKE ?1 ESCAPE '\' OR lower(coalesce(s.description, '')) LIKE ?1 ESCAPE '\')`)
		args = append(args, likePattern(f.Search))
	}
	if f.Resource != "" {
		where = append(where, "s.resource = ?")
		args = append(args, f.Resource)
	}
	if f.Action != "" {
		where = append(where, "(s.name = ? OR substr(s.name, 1, length(?) + 1) = ? || ':')")
		args = append(args, f.Action, f.Action, f.Action)
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	var scopes []permiso.Scope
	var total int
	err := db.readTx(ctx, func(c conn) error {
		if err := c.queryRow(ctx, "SELECT count(*) FROM scopes AS s"+cond, args...).Scan(&total); err != nil {
			return scopeErr("count scopes", err)
		}
		q, qargs := page(scopeSelect+cond+" ORDER BY s.name, s.id", args, f.Offset, f.Limit)
		var err error
		scopes, err = selectScopes(ctx, c, q, qargs...)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return scopes, total, nil
}

package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/sqlstore"
)

const roleColumns = `r.id, r.name, r.description, r.created_at, r.updated_at`

const roleUserCount = `(SELECT count(*) FROM user_roles x WHERE x.role_id = r.id)`

func roleDest(r *permiso.Role) []any {
	return []any{&r.ID, &r.Name, &r.Description, &r.CreatedAt, &r.UpdatedAt}
}

func fixRole(r *permiso.Role) {
	r.CreatedAt = utc(r.CreatedAt)
	r.UpdatedAt = utc(r.UpdatedAt)
}

const scopeColumns = `s.id, s.name, s.description, s.resource, s.created_at, s.updated_at`

const scopeRoleCount = `(SELECT count(*) FROM role_scopes x WHERE x.scope_id = s.id)`

func scopeDest(s *permiso.Scope) []any {
	return []any{&s.ID, &s.Name, &s.Description, &s.Resource, &s.CreatedAt, &s.UpdatedAt}
}

func fixScope(s *permiso.Scope) {
	s.CreatedAt = utc(s.CreatedAt)
	s.UpdatedAt = utc(s.UpdatedAt)
}

// createdTimes fills zero creation/update times with the current time and
// normalizes both for storage.
func createdTimes(created, updated *time.Time) {
	if created.IsZero() {
		*created = time.Now()
	}
	*created = ts(*created)
	if updated.IsZero() {
		*updated = *created
	}
	*updated = ts(*updated)
}

// loadRoleScopes fills Scopes (ordered by name) of every role in roles.
func loadRoleScopes(ctx context.Context, q querier, roles []permiso.Role) error {
	if len(roles) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(roles))
	for i := range roles {
		ids[i] = roles[i].ID
		roles[i].Scopes = []permiso.Scope{}
	}
	rows, err := q.Query(ctx, `SELECT rs.role_id, `+scopeColumns+`
		FROM role_scopes rs JOIN scopes s ON s.id = rs.scope_id
		WHERE rs.role_id = ANY($1) ORDER BY s.name, s.id`, uniqueIDs(ids))
	if err != nil {
		return mapErr(err, "role scopes", opRead)
	}
	byRole := map[uuid.UUID][]permiso.Scope{}
	var roleID uuid.UUID
	var s permiso.Scope
	dest := append([]any{&roleID}, scopeDest(&s)...)
	_, err = pgx.ForEachRow(rows, dest, func() error {
		fixScope(&s)
		byRole[roleID] = append(byRole[roleID], s)
		return nil
	})
	if err != nil {
		return mapErr(err, "role scopes", opRead)
	}
	for i := range roles {
		if ss := byRole[roles[i].ID]; ss != nil {
			roles[i].Scopes = append([]permiso.Scope{}, ss...)
		}
	}
	return nil
}

// linkRoleScopes links the (de-duplicated) scopeIDs to the role after
// checking that every one exists.
func linkRoleScopes(ctx context.Context, tx pgx.Tx, roleID uuid.UUID, scopeIDs []uuid.UUID) error {
	ids := uniqueIDs(scopeIDs)
	if len(ids) == 0 {
		return nil
	}
	if err := checkIDs(ctx, tx, "scopes", "scope", ids); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO role_scopes (role_id, scope_id)
		SELECT $1, s FROM unnest($2::uuid[]) AS s`, roleID, ids)
	return mapErr(err, "role scope", opWrite)
}

// CreateRole inserts r and links scopeIDs in one transaction; unknown scope
// ids yield ErrNotFound, a taken name ErrAlreadyExists.
func (db *DB) CreateRole(ctx context.Context, r permiso.Role, scopeIDs []uuid.UUID) (permiso.Role, error) {
	if r.ID == uuid.Nil {
		r.ID = uuid.New()
	}
	createdTimes(&r.CreatedAt, &r.UpdatedAt)
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO roles (id, name, description, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5)`, r.ID, r.Name, r.Description, r.CreatedAt, r.UpdatedAt)
		if err != nil {
			return mapErr(err, "role", opWrite)
		}
		return linkRoleScopes(ctx, tx, r.ID, scopeIDs)
	})
	if err != nil {
		return permiso.Role{}, err
	}
	return db.getRole(ctx, db.q, `r.id = $1`, r.ID)
}

func (db *DB) getRole(ctx context.Context, q querier, cond string, arg any) (permiso.Role, error) {
	var r permiso.Role
	dest := append(roleDest(&r), &r.UserCount)
	err := q.QueryRow(ctx, `SELECT `+roleColumns+`, `+roleUserCount+` FROM roles r WHERE `+cond, arg).Scan(dest...)
	if err != nil {
		return permiso.Role{}, mapErr(err, "role", opRead)
	}
	fixRole(&r)
	roles := []permiso.Role{r}
	if err := loadRoleScopes(ctx, q, roles); err != nil {
		return permiso.Role{}, err
	}
	return roles[0], nil
}

// GetRole returns the role with its scopes and user count.
func (db *DB) GetRole(ctx context.Context, id uuid.UUID) (permiso.Role, error) {
	return db.getRole(ctx, db.q, `r.id = $1`, id)
}

// GetRoleByName returns the role with the given name.
func (db *DB) GetRoleByName(ctx context.Context, name string) (permiso.Role, error) {
	return db.getRole(ctx, db.q, `r.name = $1`, name)
}

// UpdateRole reads the role FOR UPDATE, applies fn and writes name and
// description in one transaction (scopes change through SetRoleScopes).
// UpdatedAt is written as fn leaves it (callers set it; a zero value
// becomes the current time).
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
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockRow(ctx, tx, "roles", "role", id); err != nil {
			return err
		}
		if scopeIDs != nil {
			if _, err := tx.Exec(ctx, `DELETE FROM role_scopes WHERE role_id = $1`, id); err != nil {
				return mapErr(err, "role scopes", opWrite)
			}
			if err := linkRoleScopes(ctx, tx, id, scopeIDs); err != nil {
				return err
			}
		}
		r, err := db.getRole(ctx, tx, `r.id = $1`, id)
		if err != nil {
			return err
		}
		if err := fn(&r); err != nil {
			return err
		}
		if r.UpdatedAt.IsZero() {
			r.UpdatedAt = time.Now()
		}
		_, err = tx.Exec(ctx, `UPDATE roles SET name = $2, description = $3, updated_at = $4 WHERE id = $1`,
			id, r.Name, r.Description, ts(r.UpdatedAt))
		return mapErr(err, "role", opWrite)
	})
	if err != nil {
		return permiso.Role{}, err
	}
	return db.GetRole(ctx, id)
}

// DeleteRole deletes the role; it returns ErrConflict while any user holds
// it (user_roles.role_id is ON DELETE RESTRICT).
func (db *DB) DeleteRole(ctx context.Context, id uuid.UUID) error {
	tag, err := db.q.Exec(ctx, `DELETE FROM roles WHERE id = $1`, id)
	if err != nil {
		return mapErr(err, "role", opDelete)
	}
	if tag.RowsAffected() == 0 {
		return permiso.Errorf(permiso.ENOTFOUND, "%s", sqlstore.RoleMessages.NotFound)
	}
	return nil
}

// ListRoles returns one page of the roles matching f, ordered by name, id,
// and the total number of matches.
func (db *DB) ListRoles(ctx context.Context, f permiso.RoleFilter) ([]permiso.Role, int, error) {
	var w where
	if s := strings.TrimSpace(f.Search); s != "" {
		w.add(`(strpos(lower(r.name), lower(?1)) > 0 OR strpos(lower(coalesce(r.description, '')), lower(?1)) > 0)`, s)
	}
	if f.ScopeID != nil {
		w.add(`EXISTS (SELECT 1 FROM role_scopes rs WHERE rs.role_id = r.id AND rs.scope_id = ?)`, *f.ScopeID)
	}
	var total int
	if err := db.q.QueryRow(ctx, `SELECT count(*) FROM roles r`+w.sql(), w.args...).Scan(&total); err != nil {
		return nil, 0, mapErr(err, "roles", opRead)
	}
	lim, args := page(f.Offset, f.Limit, w.args)
	rows, err := db.q.Query(ctx, `SELECT `+roleColumns+`, `+roleUserCount+` FROM roles r`+w.sql()+
		` ORDER BY r.name, r.id`+lim, args...)
	if err != nil {
		return nil, 0, mapErr(err, "roles", opRead)
	}
	roles, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (permiso.Role, error) {
		var r permiso.Role
		err := row.Scan(append(roleDest(&r), &r.UserCount)...)
		fixRole(&r)
		return r, err
	})
	if err != nil {
		return nil, 0, mapErr(err, "roles", opRead)
	}
	if err := loadRoleScopes(ctx, db.q, roles); err != nil {
		return nil, 0, err
	}
	return roles, total, nil
}

// SetRoleScopes replaces the role's scopes in one transaction; an unknown
// role or scope id yields ErrNotFound and nothing changes.
func (db *DB) SetRoleScopes(ctx context.Context, roleID uuid.UUID, scopeIDs []uuid.UUID) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockRow(ctx, tx, "roles", "role", roleID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM role_scopes WHERE role_id = $1`, roleID); err != nil {
			return mapErr(err, "role scopes", opWrite)
		}
		return linkRoleScopes(ctx, tx, roleID, scopeIDs)
	})
}

// CreateScope inserts s; a taken name yields ErrAlreadyExists.
func (db *DB) CreateScope(ctx context.Context, s permiso.Scope) (permiso.Scope, error) {
	if s.ID == uuid.Nil {
		s.ID = uuid.New()
	}
	createdTimes(&s.CreatedAt, &s.UpdatedAt)
	_, err := db.q.Exec(ctx, `INSERT INTO scopes (id, name, description, resource, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, s.ID, s.Name, s.Description, s.Resource, s.CreatedAt, s.UpdatedAt)
	if err != nil {
		return permiso.Scope{}, mapErr(err, "scope", opWrite)
	}
	return db.GetScope(ctx, s.ID)
}

func (db *DB) getScope(ctx context.Context, q querier, cond string, arg any) (permiso.Scope, error) {
	var s permiso.Scope
	err := q.QueryRow(ctx, `SELECT `+scopeColumns+`, `+scopeRoleCount+` FROM scopes s WHERE `+cond, arg).
		Scan(append(scopeDest(&s), &s.RoleCount)...)
	if err != nil {
		return permiso.Scope{}, mapErr(err, "scope", opRead)
	}
	fixScope(&s)
	return s, nil
}

// GetScope returns the scope with its role count.
func (db *DB) GetScope(ctx context.Context, id uuid.UUID) (permiso.Scope, error) {
	return db.getScope(ctx, db.q, `s.id = $1`, id)
}

// GetScopeByName returns the scope with the given name.
func (db *DB) GetScopeByName(ctx context.Context, name string) (permiso.Scope, error) {
	return db.getScope(ctx, db.q, `s.name = $1`, name)
}

// UpdateScope reads the scope FOR UPDATE, applies fn and writes the result
// in one transaction. UpdatedAt is written as fn leaves it (callers set
// it; a zero value becomes the current time).
func (db *DB) UpdateScope(ctx context.Context, id uuid.UUID, fn func(*permiso.Scope) error) (permiso.Scope, error) {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		s, err := db.getScope(ctx, tx, `s.id = $1 FOR UPDATE OF s`, id)
		if err != nil {
			return err
		}
		if err := fn(&s); err != nil {
			return err
		}
		if s.UpdatedAt.IsZero() {
			s.UpdatedAt = time.Now()
		}
		_, err = tx.Exec(ctx, `UPDATE scopes SET name = $2, description = $3, resource = $4, updated_at = $5
			WHERE id = $1`, id, s.Name, s.Description, s.Resource, ts(s.UpdatedAt))
		return mapErr(err, "scope", opWrite)
	})
	if err != nil {
		return permiso.Scope{}, err
	}
	return db.GetScope(ctx, id)
}

// DeleteScope deletes the scope; it returns ErrConflict while any role
// holds it (role_scopes.scope_id is ON DELETE RESTRICT). Links to service
// clients are removed.
func (db *DB) DeleteScope(ctx context.Context, id uuid.UUID) error {
	tag, err := db.q.Exec(ctx, `DELETE FROM scopes WHERE id = $1`, id)
	if err != nil {
		return mapErr(err, "scope", opDelete)
	}
	if tag.RowsAffected() == 0 {
		return permiso.Errorf(permiso.ENOTFOUND, "%s", sqlstore.ScopeMessages.NotFound)
	}
	return nil
}

// ListScopes returns one page of the scopes matching f, ordered by name,
// id, and the total number of matches. Action matches the part of the name
// before the first ':'; Resource matches the resource column.
func (db *DB) ListScopes(ctx context.Context, f permiso.ScopeFilter) ([]permiso.Scope, int, error) {
	var w where
	if s := strings.TrimSpace(f.Search); s != "" {
		w.add(`(strpos(lower(s.name), lower(?1)) > 0 OR strpos(lower(coalesce(s.description, '')), lower(?1)) > 0)`, s)
	}
	if f.Action != "" {
		w.add(`split_part(s.name, ':', 1) = ?`, f.Action)
	}
	if f.Resource != "" {
		w.add(`s.resource = ?`, f.Resource)
	}
	var total int
	if err := db.q.QueryRow(ctx, `SELECT count(*) FROM scopes s`+w.sql(), w.args...).Scan(&total); err != nil {
		return nil, 0, mapErr(err, "scopes", opRead)
	}
	lim, args := page(f.Offset, f.Limit, w.args)
	rows, err := db.q.Query(ctx, `SELECT `+scopeColumns+`, `+scopeRoleCount+` FROM scopes s`+w.sql()+
		` ORDER BY s.name, s.id`+lim, args...)
	if err != nil {
		return nil, 0, mapErr(err, "scopes", opRead)
	}
	scopes, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (permiso.Scope, error) {
		var s permiso.Scope
		err := row.Scan(append(scopeDest(&s), &s.RoleCount)...)
		fixScope(&s)
		return s, err
	})
	if err != nil {
		return nil, 0, mapErr(err, "scopes", opRead)
	}
	return scopes, total, nil
}

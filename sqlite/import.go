package sqlite

import (
	"context"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/sqlstore"
)

// Import writes b in one write transaction. Rows are inserted with ON
// CONFLICT (id) DO NOTHING, so a row whose id is stored is left alone while
// a collision on another unique index (username, email, names, client_id)
// still fails; links with ON CONFLICT DO NOTHING (their primary key). A
// link to a missing row fails its foreign key.
func (db *DB) Import(ctx context.Context, b permiso.ImportBatch) (permiso.ImportCounts, error) {
	var n permiso.ImportCounts
	if b.Empty() {
		return n, nil
	}
	if err := b.CheckIDs(); err != nil {
		return n, err
	}
	err := db.inTx(ctx, func(c conn) error {
		add := func(count *int, m errMap, query string, args ...any) error {
			k, err := c.execN(ctx, query, args...)
			if err != nil {
				return m.wrap(err)
			}
			*count += k
			return nil
		}
		for _, s := range b.Scopes {
			s.CreatedAt = orNow(s.CreatedAt)
			if s.UpdatedAt.IsZero() {
				s.UpdatedAt = s.CreatedAt
			}
			if err := add(&n.Scopes, errMap{op: "import scope", exists: "Scope " + s.ID.String() + ": name already exists"},
				`INSERT INTO scopes (id, name, description, resource, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
				s.ID, s.Name, s.Description, s.Resource, ts(s.CreatedAt), ts(s.UpdatedAt)); err != nil {
				return err
			}
		}
		for _, r := range b.Roles {
			r.CreatedAt = orNow(r.CreatedAt)
			if r.UpdatedAt.IsZero() {
				r.UpdatedAt = r.CreatedAt
			}
			if err := add(&n.Roles, errMap{op: "import role", exists: "Role " + r.ID.String() + ": name already exists"},
				`INSERT INTO roles (id, name, description, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
				r.ID, r.Name, r.Description, ts(r.CreatedAt), ts(r.UpdatedAt)); err != nil {
				return err
			}
		}
		for _, u := range b.Users {
			u.CreatedAt = orNow(u.CreatedAt)
			if u.UpdatedAt.IsZero() {
				u.UpdatedAt = u.CreatedAt
			}
			if u.PasswordChangedAt.IsZero() {
				u.PasswordChangedAt = u.CreatedAt
			}
			if err := add(&n.Users, errMap{op: "import user", exists: "User " + u.ID.String() + ": username or email already exists"},
				`INSERT INTO users (`+userCols+`)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
				u.ID, u.Username, u.Email, u.PasswordHash, u.FirstName, u.LastName,
				u.DisplayName, u.Bio, u.IsActive, u.IsVerified, u.IsSuperuser,
				tsPtr(u.LastLogin), u.FailedLoginAttempts, tsPtr(u.LockedUntil),
				ts(u.PasswordChangedAt), tsPtr(u.TokensRevokedBefore),
				ts(u.CreatedAt), ts(u.UpdatedAt)); err != nil {
				return err
			}
		}
		for _, sc := range b.Clients {
			if sc.ClientType == "" {
				sc.ClientType = "confidential"
			}
			sc.CreatedAt = orNow(sc.CreatedAt)
			if sc.UpdatedAt.IsZero() {
				sc.UpdatedAt = sc.CreatedAt
			}
			if err := add(&n.Clients, errMap{op: "import service client", exists: "Service client " + sc.ID.String() + ": client_id already exists"},
				sqlstore.Clients.Insert()+" ON CONFLICT (id) DO NOTHING",
				sqlstore.Clients.Args(dialect{}, &sc)...); err != nil {
				return err
			}
		}
		links := []struct {
			count *int
			what  string
			query string
			links []permiso.ImportLink
		}{
			{&n.RoleScopes, "role scope", `INSERT INTO role_scopes (role_id, scope_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, b.RoleScopes},
			{&n.UserRoles, "user role", `INSERT INTO user_roles (user_id, role_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, b.UserRoles},
			{&n.ClientScopes, "service client scope", `INSERT INTO service_client_scopes (service_client_id, scope_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, b.ClientScopes},
		}
		for _, l := range links {
			for _, k := range l.links {
				m := errMap{op: "import " + l.what, fk: "a referenced resource does not exist", fkCode: permiso.ENOTFOUND}
				if err := add(l.count, m, l.query, k.From, k.To); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return permiso.ImportCounts{}, err
	}
	return n, nil
}

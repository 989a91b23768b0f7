package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/sqlstore"
)

// importStep is one queued statement of an import batch: how to count its
// outcome and what to call the row in an error.
type importStep struct {
	count *int
	what  string
}

// Import writes b in one transaction, every statement sent in one pgx batch
// (one round trip). Rows are inserted with ON CONFLICT (id) DO NOTHING, so
// a row whose id is stored is left alone while a collision on another
// unique index (username, email, names, client_id) still fails; links with
// ON CONFLICT DO NOTHING.
func (db *DB) Import(ctx context.Context, b permiso.ImportBatch) (permiso.ImportCounts, error) {
	var n permiso.ImportCounts
	if b.Empty() {
		return n, nil
	}
	if err := b.CheckIDs(); err != nil {
		return n, err
	}
	var batch pgx.Batch
	var steps []importStep
	queue := func(count *int, what, sql string, args ...any) {
		batch.Queue(sql, args...)
		steps = append(steps, importStep{count: count, what: what})
	}
	for _, s := range b.Scopes {
		createdTimes(&s.CreatedAt, &s.UpdatedAt)
		queue(&n.Scopes, "scope "+s.ID.String(), `INSERT INTO scopes (id, name, description, resource, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
			s.ID, s.Name, s.Description, s.Resource, s.CreatedAt, s.UpdatedAt)
	}
	for _, r := range b.Roles {
		createdTimes(&r.CreatedAt, &r.UpdatedAt)
		queue(&n.Roles, "role "+r.ID.String(), `INSERT INTO roles (id, name, description, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`,
			r.ID, r.Name, r.Description, r.CreatedAt, r.UpdatedAt)
	}
	for _, u := range b.Users {
		normalizeUser(&u)
		queue(&n.Users, "user "+u.ID.String(), `INSERT INTO users (id, username, email, password_hash, first_name,
			last_name, display_name, bio, is_active, is_verified, is_superuser, last_login,
			failed_login_attempts, locked_until, password_changed_at, tokens_revoked_before,
			created_at, updated_at)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18)
			ON CONFLICT (id) DO NOTHING`,
			u.ID, u.Username, u.Email, u.PasswordHash, u.FirstName, u.LastName, u.DisplayName,
			u.Bio, u.IsActive, u.IsVerified, u.IsSuperuser, u.LastLogin, u.FailedLoginAttempts,
			u.LockedUntil, u.PasswordChangedAt, u.TokensRevokedBefore, u.CreatedAt, u.UpdatedAt)
	}
	for _, c := range b.Clients {
		if c.ClientType == "" {
			c.ClientType = "confidential"
		}
		createdTimes(&c.CreatedAt, &c.UpdatedAt)
		queue(&n.Clients, "service client "+c.ID.String(), db.d.Bind(sqlstore.Clients.Insert()+" ON CONFLICT (id) DO NOTHING"),
			sqlstore.Clients.Args(db.d, &c)...)
	}
	links := []struct {
		count *int
		what  string
		sql   string
		links []permiso.ImportLink
	}{
		{&n.RoleScopes, "role scope", `INSERT INTO role_scopes (role_id, scope_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, b.RoleScopes},
		{&n.UserRoles, "user role", `INSERT INTO user_roles (user_id, role_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, b.UserRoles},
		{&n.ClientScopes, "service client scope", `INSERT INTO service_client_scopes (service_client_id, scope_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, b.ClientScopes},
	}
	for _, l := range links {
		for _, k := range l.links {
			queue(l.count, l.what+" "+k.From.String()+" "+k.To.String(), l.sql, k.From, k.To)
		}
	}

	err := db.inTx(ctx, func(tx pgx.Tx) error {
		res := tx.SendBatch(ctx, &batch)
		for _, st := range steps {
			tag, err := res.Exec()
			if err != nil {
				res.Close()
				return mapErr(err, st.what, opWrite)
			}
			*st.count += int(tag.RowsAffected())
		}
		return mapErr(res.Close(), "import", opWrite)
	})
	if err != nil {
		return permiso.ImportCounts{}, err
	}
	return n, nil
}

package sqlstore

import (
	"context"

	"github.com/permiso/permiso"
)

// Stmt is one statement of a batch: bound SQL and its arguments.
type Stmt struct {
	SQL  string
	Args []any
}

// Batcher is a Querier that can send several statements in one round
// trip (PostgreSQL's pipeline). It returns the rows each affected, or the
// index of the statement that failed with its error.
type Batcher interface {
	ExecBatch(ctx context.Context, stmts []Stmt) (affected []int64, failed int, err error)
}

// importStep is one statement of an import, with the count its outcome
// adds to and its messages.
type importStep struct {
	Stmt
	count *int
	m     Messages
}

// Import writes b in one transaction, sent as one batch where the backend
// has them. Rows are inserted with ON CONFLICT (id) DO NOTHING, so a row
// whose id is stored is left alone while a collision on another unique
// index (username, email, names, client_id) still fails; links with ON
// CONFLICT DO NOTHING (their primary key). A link to a missing row fails
// its foreign key.
func (s *Store) Import(ctx context.Context, b permiso.ImportBatch) (permiso.ImportCounts, error) {
	var n permiso.ImportCounts
	if b.Empty() {
		return n, nil
	}
	if err := b.CheckIDs(); err != nil {
		return n, err
	}
	var steps []importStep
	add := func(count *int, m Messages, query string, args []any) {
		steps = append(steps, importStep{Stmt: Stmt{SQL: s.q(query), Args: args}, count: count, m: m})
	}
	const skip = " ON CONFLICT (id) DO NOTHING"
	for _, sc := range b.Scopes {
		createdTimes(&sc.CreatedAt, &sc.UpdatedAt)
		add(&n.Scopes, Messages{Exists: "Scope " + sc.ID.String() + ": name already exists"}, Scopes.Insert()+skip, Scopes.Args(s.d, &sc))
	}
	for _, r := range b.Roles {
		createdTimes(&r.CreatedAt, &r.UpdatedAt)
		add(&n.Roles, Messages{Exists: "Role " + r.ID.String() + ": name already exists"}, Roles.Insert()+skip, Roles.Args(s.d, &r))
	}
	for _, u := range b.Users {
		userDefaults(&u)
		add(&n.Users, Messages{Exists: "User " + u.ID.String() + ": username or email already exists"}, Users.Insert()+skip, Users.Args(s.d, &u))
	}
	for _, c := range b.Clients {
		if c.ClientType == "" {
			c.ClientType = "confidential"
		}
		createdTimes(&c.CreatedAt, &c.UpdatedAt)
		add(&n.Clients, Messages{Exists: "Service client " + c.ID.String() + ": client_id already exists"}, Clients.Insert()+skip, Clients.Args(s.d, &c))
	}
	links := []struct {
		count *int
		query string
		links []permiso.ImportLink
	}{
		{&n.RoleScopes, "INSERT INTO role_scopes (role_id, scope_id) VALUES (?, ?) ON CONFLICT DO NOTHING", b.RoleScopes},
		{&n.UserRoles, "INSERT INTO user_roles (user_id, role_id) VALUES (?, ?) ON CONFLICT DO NOTHING", b.UserRoles},
		{&n.ClientScopes, "INSERT INTO service_client_scopes (service_client_id, scope_id) VALUES (?, ?) ON CONFLICT DO NOTHING", b.ClientScopes},
	}
	for _, l := range links {
		for _, k := range l.links {
			add(l.count, Messages{}, l.query, []any{k.From, k.To})
		}
	}
	stmts := make([]Stmt, len(steps))
	for i := range steps {
		stmts[i] = steps[i].Stmt
	}
	err := s.c.Write(ctx, func(q Querier) error {
		affected, failed, err := s.execAll(ctx, q, stmts)
		if err != nil {
			m := Messages{}
			if failed >= 0 && failed < len(steps) {
				m = steps[failed].m
			}
			return s.errOf(err, "import", m, false, "")
		}
		for i, k := range affected {
			*steps[i].count += int(k)
		}
		return nil
	})
	if err != nil {
		return permiso.ImportCounts{}, err
	}
	return n, nil
}

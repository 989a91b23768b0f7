package sqlstore

import (
	"context"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// Scopes describes the scopes table.
var Scopes = NewTable("scopes", "s", Fields[permiso.Scope]([]string{"id", "created_at"},
	"id", "name", "description", "resource", "created_at", "updated_at")...)

// linkedScopesSQL selects Scopes.List() and the owner id of the scopes
// linked to a list of owners through a link table (owner column ownerCol,
// scope column scope_id), ordered by name; its one argument is
// Dialect.IDs of the owners.
func linkedScopesSQL(d Dialect, table, ownerCol string) string {
	return "SELECT " + Scopes.List() + ", l." + ownerCol + " FROM " + table +
		" AS l JOIN scopes AS s ON s.id = l.scope_id WHERE " + d.InIDs("l."+ownerCol) + " ORDER BY s.name, s.id"
}

// linkScopes sets the scopes of each of rows (row gives its id and where
// its scopes go; nil when it has none) from query, a linkedScopesSQL, in
// one query; without rows it reads nothing.
func linkScopes[T any](ctx context.Context, s *Store, q Querier, query string, rows []T, row func(*T) (uuid.UUID, *[]permiso.Scope)) error {
	if len(rows) == 0 {
		return nil
	}
	ids := idsOf(rows, func(r *T) uuid.UUID { id, _ := row(r); return id })
	rs, err := s.query(ctx, q, query, s.d.IDs(uniqueIDs(ids)))
	if err != nil {
		return s.errOf(err, "load linked scopes", Messages{}, false, "")
	}
	defer rs.Close()
	byOwner := map[uuid.UUID][]permiso.Scope{}
	for rs.Next() {
		var owner uuid.UUID
		sc, err := Scopes.Scan(s.d, rs, &owner)
		if err != nil {
			return s.errOf(err, "load linked scopes", Messages{}, false, "")
		}
		byOwner[owner] = append(byOwner[owner], sc)
	}
	if err := rs.Err(); err != nil {
		return s.errOf(err, "load linked scopes", Messages{}, false, "")
	}
	for i := range rows {
		id, scopes := row(&rows[i])
		*scopes = byOwner[id]
	}
	return nil
}

// links describes a link table: a row of table links the row of owner
// named by ownerCol to the row of target named by col. A missing owner or
// target is refused with its message; name names the link in the
// operations errors carry ("link <name>", "set <name>s"), and err is the
// owner's error mapping.
type links struct {
	table, ownerCol, col        string
	owner, target               string
	ownerMissing, targetMissing string
	name                        string
	err                         func(s *Store, op string, err error) error
}

// The link tables.
var (
	userRoles = links{table: "user_roles", ownerCol: "user_id", col: "role_id", owner: "users", target: "roles",
		ownerMissing: UserMessages.NotFound, targetMissing: RoleMessages.NotFound, name: "user role", err: (*Store).userErr}
	roleScopes = links{table: "role_scopes", ownerCol: "role_id", col: "scope_id", owner: "roles", target: "scopes",
		ownerMissing: RoleMessages.NotFound, targetMissing: ScopeMessages.NotFound, name: "role scope", err: (*Store).roleErr}
	clientScopes = links{table: "service_client_scopes", ownerCol: "service_client_id", col: "scope_id", owner: "service_clients",
		target: "scopes", ownerMissing: ClientMessages.NotFound, targetMissing: ScopeMessages.NotFound, name: "client scope", err: (*Store).clientErr}
)

// link inserts one row (owner, id) of l per id of ids, which are rows of
// l's target (checked by the caller).
func (s *Store) link(ctx context.Context, q Querier, l links, owner uuid.UUID, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.exec(ctx, q, "INSERT INTO "+l.table+" ("+l.ownerCol+", "+l.col+") SELECT ?, id FROM "+l.target+
		" WHERE "+s.d.InIDs("id"), owner, s.d.IDs(ids))
	return l.err(s, "link "+l.name, err)
}

// replaceLinks replaces the links of owner in l with ids inside a write
// transaction: it locks the owner's row first when lock is set (else the
// caller holds it), refuses ids that are not rows of l's target
// (ErrNotFound, nothing changed), then deletes the owner's links and
// inserts the new ones.
func (s *Store) replaceLinks(ctx context.Context, q Querier, l links, owner uuid.UUID, ids []uuid.UUID, lock bool) error {
	ids = uniqueIDs(ids)
	if lock {
		if err := s.lockRow(ctx, q, l.owner, owner, l.ownerMissing); err != nil {
			return err
		}
	}
	if err := s.checkAllExist(ctx, q, l.target, ids, l.targetMissing); err != nil {
		return err
	}
	if _, err := s.exec(ctx, q, "DELETE FROM "+l.table+" WHERE "+l.ownerCol+" = ?", owner); err != nil {
		return l.err(s, "set "+l.name+"s", err)
	}
	return s.link(ctx, q, l, owner, ids)
}

// lockRow locks the row of table with id for the rest of the write
// transaction, or returns ErrNotFound (msg).
func (s *Store) lockRow(ctx context.Context, q Querier, table string, id uuid.UUID, msg string) error {
	var one int
	err := s.queryRow(ctx, q, "SELECT 1 FROM "+table+" WHERE id = ?"+s.d.ForUpdate(), id).Scan(&one)
	if k, _ := s.d.Classify(err); k == ErrNoRows {
		return notFound(msg)
	}
	return s.errOf(err, "lock "+table, Messages{}, false, "")
}

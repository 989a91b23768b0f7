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

// linkedScopes runs a query of linkedScopesSQL and returns the scopes of
// each owner in ids.
func (s *Store) linkedScopes(ctx context.Context, q Querier, query string, ids []uuid.UUID) (map[uuid.UUID][]permiso.Scope, error) {
	rows, err := s.query(ctx, q, query, s.d.IDs(uniqueIDs(ids)))
	if err != nil {
		return nil, s.errOf(err, "load linked scopes", Messages{}, false, "")
	}
	defer rows.Close()
	out := map[uuid.UUID][]permiso.Scope{}
	for rows.Next() {
		var owner uuid.UUID
		sc, err := Scopes.Scan(s.d, rows, &owner)
		if err != nil {
			return nil, s.errOf(err, "load linked scopes", Messages{}, false, "")
		}
		out[owner] = append(out[owner], sc)
	}
	return out, s.errOf(rows.Err(), "load linked scopes", Messages{}, false, "")
}

// link inserts one row (owner, id) of a link table per id of ids, which
// are rows of the table named by parent (checked by the caller).
func (s *Store) link(ctx context.Context, q Querier, table, ownerCol, col, parent string, owner uuid.UUID, ids []uuid.UUID, wrap func(error) error) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.exec(ctx, q, "INSERT INTO "+table+" ("+ownerCol+", "+col+") SELECT ?, id FROM "+parent+
		" WHERE "+s.d.InIDs("id"), owner, s.d.IDs(ids))
	return wrap(err)
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

package permiso

import (
	"context"

	"github.com/google/uuid"
)

// ImportLink is one row of a link table: From is the user (user_roles),
// role (role_scopes) or service client row (service_client_scopes), To the
// role or scope it is linked to.
type ImportLink struct{ From, To uuid.UUID }

// ImportBatch is a batch of rows carried over from an installation of the
// original service by `permiso import` (docs/migrating.md). Rows keep their
// ids, hashes, flags and times as given; the Roles of users, the Scopes of
// roles and clients are ignored (the links say them).
type ImportBatch struct {
	Scopes       []Scope
	Roles        []Role
	Users        []User
	Clients      []ServiceClient
	RoleScopes   []ImportLink
	UserRoles    []ImportLink
	ClientScopes []ImportLink
}

// Empty reports whether the batch holds nothing.
func (b ImportBatch) Empty() bool {
	return len(b.Scopes)+len(b.Roles)+len(b.Users)+len(b.Clients)+
		len(b.RoleScopes)+len(b.UserRoles)+len(b.ClientScopes) == 0
}

// ImportCounts counts rows and links, per table.
type ImportCounts struct {
	Scopes, Roles, Users, Clients       int
	RoleScopes, UserRoles, ClientScopes int
}

// Total is the sum of the counts.
func (c ImportCounts) Total() int {
	return c.Scopes + c.Roles + c.Users + c.Clients + c.RoleScopes + c.UserRoles + c.ClientScopes
}

// Add returns the sum of c and d, table by table.
func (c ImportCounts) Add(d ImportCounts) ImportCounts {
	return ImportCounts{
		Scopes: c.Scopes + d.Scopes, Roles: c.Roles + d.Roles, Users: c.Users + d.Users,
		Clients: c.Clients + d.Clients, RoleScopes: c.RoleScopes + d.RoleScopes,
		UserRoles: c.UserRoles + d.UserRoles, ClientScopes: c.ClientScopes + d.ClientScopes,
	}
}

// ImportStore writes imported rows.
type ImportStore interface {
	// Import writes b in one transaction and counts what it inserted. It
	// only adds: a row whose id is already stored is left exactly as it
	// is (not counted), and so is a link that already exists. A row that
	// collides with another stored row on a unique value (username or
	// email, case-insensitively; role or scope name; client_id) yields
	// ErrAlreadyExists, a link to an id that is not stored yields
	// ErrNotFound, a row without an id EINVALID; in every such case
	// nothing of b is written. Scopes are written first, then roles,
	// users and clients, then the links, so a batch may link the rows it
	// inserts.
	Import(ctx context.Context, b ImportBatch) (ImportCounts, error)
}

// CheckIDs returns an EINVALID error when a row or link of b has no id:
// an import keeps the ids of the rows it carries. Stores call it before
// writing anything.
func (b ImportBatch) CheckIDs() error {
	missing := func(what string) error {
		return Errorf(EINVALID, "an imported %s needs its id", what)
	}
	switch {
	case !allIDs(b.Scopes, func(s Scope) uuid.UUID { return s.ID }):
		return missing("scope")
	case !allIDs(b.Roles, func(r Role) uuid.UUID { return r.ID }):
		return missing("role")
	case !allIDs(b.Users, func(u User) uuid.UUID { return u.ID }):
		return missing("user")
	case !allIDs(b.Clients, func(c ServiceClient) uuid.UUID { return c.ID }):
		return missing("service client")
	}
	for _, l := range [][]ImportLink{b.RoleScopes, b.UserRoles, b.ClientScopes} {
		for _, k := range l {
			if k.From == uuid.Nil || k.To == uuid.Nil {
				return missing("link")
			}
		}
	}
	return nil
}

// allIDs reports whether every row of rows has an id.
func allIDs[T any](rows []T, id func(T) uuid.UUID) bool {
	for _, r := range rows {
		if id(r) == uuid.Nil {
			return false
		}
	}
	return true
}

package cache

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// The writes below pass through to the wrapped store, then invalidate
// (locally and on the bus) whatever they may have changed, whatever they
// returned. Writes not listed here change nothing this package caches.

// Users.

// CreateUser creates the user and invalidates its id.
func (s *Store) CreateUser(ctx context.Context, u permiso.User, roleIDs []uuid.UUID) (permiso.User, error) {
	out, err := s.Store.CreateUser(ctx, u, roleIDs)
	switch {
	case err == nil:
		s.changed(ctx, userChange(out.ID))
	case u.ID != uuid.Nil:
		s.changed(ctx, userChange(u.ID))
	}
	// A failed create with a generated id left nothing that a reader
	// could have cached: misses are not cached.
	return out, err
}

// UpdateUser updates the user and invalidates it.
func (s *Store) UpdateUser(ctx context.Context, id uuid.UUID, fn func(*permiso.User) error) (permiso.User, error) {
	defer s.changed(ctx, userChange(id))
	return s.Store.UpdateUser(ctx, id, fn)
}

// UpdateUserWithRoles updates the user and its roles and invalidates it.
func (s *Store) UpdateUserWithRoles(ctx context.Context, id uuid.UUID, fn func(*permiso.User) error, roleIDs []uuid.UUID) (permiso.User, error) {
	defer s.changed(ctx, userChange(id))
	return s.Store.UpdateUserWithRoles(ctx, id, fn, roleIDs)
}

// DeleteUser deletes the user and invalidates it.
func (s *Store) DeleteUser(ctx context.Context, id uuid.UUID) error {
	defer s.changed(ctx, userChange(id))
	return s.Store.DeleteUser(ctx, id)
}

// SetUserRoles replaces the user's roles and invalidates it.
func (s *Store) SetUserRoles(ctx context.Context, userID uuid.UUID, roleIDs []uuid.UUID) error {
	defer s.changed(ctx, userChange(userID))
	return s.Store.SetUserRoles(ctx, userID, roleIDs)
}

// ChangePassword changes the password and invalidates the user.
func (s *Store) ChangePassword(ctx context.Context, userID uuid.UUID, newHash string, now time.Time, keep int) error {
	defer s.changed(ctx, userChange(userID))
	return s.Store.ChangePassword(ctx, userID, newHash, now, keep)
}

// ChangePasswordIfCurrent changes the password if it is still
// expectedOldHash and invalidates the user.
func (s *Store) ChangePasswordIfCurrent(ctx context.Context, userID uuid.UUID, expectedOldHash, newHash string, now time.Time, keep int) error {
	defer s.changed(ctx, userChange(userID))
	return s.Store.ChangePasswordIfCurrent(ctx, userID, expectedOldHash, newHash, now, keep)
}

// ClearExpiredLocks resets the lockout mirror of users (a bulk update) and
// invalidates every user when any changed.
func (s *Store) ClearExpiredLocks(ctx context.Context, now time.Time) (int, error) {
	n, err := s.Store.ClearExpiredLocks(ctx, now)
	if n > 0 || err != nil {
		s.changed(ctx, allUsers)
	}
	return n, err
}

// Roles and scopes: users hold scopes through their roles, clients hold
// scopes directly, and both carry the names and descriptions: any write
// invalidates everything.

// CreateRole creates the role and invalidates everything.
func (s *Store) CreateRole(ctx context.Context, r permiso.Role, scopeIDs []uuid.UUID) (permiso.Role, error) {
	defer s.changed(ctx, everything)
	return s.Store.CreateRole(ctx, r, scopeIDs)
}

// UpdateRole updates the role and invalidates everything.
func (s *Store) UpdateRole(ctx context.Context, id uuid.UUID, fn func(*permiso.Role) error) (permiso.Role, error) {
	defer s.changed(ctx, everything)
	return s.Store.UpdateRole(ctx, id, fn)
}

// UpdateRoleWithScopes updates the role and its scopes and invalidates
// everything.
func (s *Store) UpdateRoleWithScopes(ctx context.Context, id uuid.UUID, fn func(*permiso.Role) error, scopeIDs []uuid.UUID) (permiso.Role, error) {
	defer s.changed(ctx, everything)
	return s.Store.UpdateRoleWithScopes(ctx, id, fn, scopeIDs)
}

// DeleteRole deletes the role and invalidates everything.
func (s *Store) DeleteRole(ctx context.Context, id uuid.UUID) error {
	defer s.changed(ctx, everything)
	return s.Store.DeleteRole(ctx, id)
}

// SetRoleScopes replaces the role's scopes and invalidates everything.
func (s *Store) SetRoleScopes(ctx context.Context, roleID uuid.UUID, scopeIDs []uuid.UUID) error {
	defer s.changed(ctx, everything)
	return s.Store.SetRoleScopes(ctx, roleID, scopeIDs)
}

// CreateScope creates the scope and invalidates everything.
func (s *Store) CreateScope(ctx context.Context, sc permiso.Scope) (permiso.Scope, error) {
	defer s.changed(ctx, everything)
	return s.Store.CreateScope(ctx, sc)
}

// UpdateScope updates the scope (a rename changes the scope sets of users
// and clients) and invalidates everything.
func (s *Store) UpdateScope(ctx context.Context, id uuid.UUID, fn func(*permiso.Scope) error) (permiso.Scope, error) {
	defer s.changed(ctx, everything)
	return s.Store.UpdateScope(ctx, id, fn)
}

// DeleteScope deletes the scope and invalidates everything.
func (s *Store) DeleteScope(ctx context.Context, id uuid.UUID) error {
	defer s.changed(ctx, everything)
	return s.Store.DeleteScope(ctx, id)
}

// Service clients.

// CreateServiceClient creates the client and invalidates every client.
func (s *Store) CreateServiceClient(ctx context.Context, c permiso.ServiceClient, scopeIDs []uuid.UUID) (permiso.ServiceClient, error) {
	defer s.changed(ctx, allClients)
	return s.Store.CreateServiceClient(ctx, c, scopeIDs)
}

// UpdateServiceClient updates the client (secret rotation, disabling, a
// new client_id) and invalidates every client.
func (s *Store) UpdateServiceClient(ctx context.Context, id uuid.UUID, fn func(*permiso.ServiceClient) error) (permiso.ServiceClient, error) {
	defer s.changed(ctx, allClients)
	return s.Store.UpdateServiceClient(ctx, id, fn)
}

// UpdateServiceClientWithScopes updates the client and its scopes and
// invalidates every client.
func (s *Store) UpdateServiceClientWithScopes(ctx context.Context, id uuid.UUID, fn func(*permiso.ServiceClient) error, scopeIDs []uuid.UUID) (permiso.ServiceClient, error) {
	defer s.changed(ctx, allClients)
	return s.Store.UpdateServiceClientWithScopes(ctx, id, fn, scopeIDs)
}

// DeleteServiceClient deletes the client and invalidates every client.
func (s *Store) DeleteServiceClient(ctx context.Context, id uuid.UUID) error {
	defer s.changed(ctx, allClients)
	return s.Store.DeleteServiceClient(ctx, id)
}

// SetServiceClientScopes replaces the client's scopes and invalidates every
// client.
func (s *Store) SetServiceClientScopes(ctx context.Context, id uuid.UUID, scopeIDs []uuid.UUID) error {
	defer s.changed(ctx, allClients)
	return s.Store.SetServiceClientScopes(ctx, id, scopeIDs)
}

// AddClientUsage is not overridden: it only moves LastUsed and
// TotalRequests, which cached clients may show late (package comment).

// Migrations may change anything.

// MigrateUp applies pending migrations and invalidates everything.
func (s *Store) MigrateUp(ctx context.Context) ([]permiso.MigrationStatus, error) {
	applied, err := s.Store.MigrateUp(ctx)
	if len(applied) > 0 || err != nil {
		s.changed(ctx, everything)
	}
	return applied, err
}

// MigrateDown reverts migrations and invalidates everything.
func (s *Store) MigrateDown(ctx context.Context, n int) ([]permiso.MigrationStatus, error) {
	reverted, err := s.Store.MigrateDown(ctx, n)
	if len(reverted) > 0 || err != nil {
		s.changed(ctx, everything)
	}
	return reverted, err
}

// Import.

// Import writes rows carried over from the original service and
// invalidates everything: it may link scopes to existing roles and roles
// to existing users.
func (s *Store) Import(ctx context.Context, b permiso.ImportBatch) (permiso.ImportCounts, error) {
	defer s.changed(ctx, everything)
	return s.Store.Import(ctx, b)
}

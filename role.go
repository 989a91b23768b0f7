package permiso

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Role groups scopes; users hold roles.
type Role struct {
	ID          uuid.UUID
	Name        string
	Description *string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// Scopes is filled by the stores, ordered by name.
	Scopes []Scope
	// UserCount is filled by GetRole and ListRoles.
	UserCount int
}

// Scope is a named permission, conventionally "action:resource".
type Scope struct {
	ID          uuid.UUID
	Name        string
	Description *string
	Resource    *string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// RoleCount is filled by GetScope and ListScopes.
	RoleCount int
}

// Action returns the part of the scope name before the first ':' (or the
// whole name).
func (s Scope) Action() string {
	a, _, _ := strings.Cut(s.Name, ":")
	return a
}

// ResourceName returns the part of the name after the first ':', or the
// Resource column when the name has no ':'.
func (s Scope) ResourceName() string {
	if _, r, ok := strings.Cut(s.Name, ":"); ok {
		return r
	}
	if s.Resource != nil {
		return *s.Resource
	}
	return ""
}

// Names of the roles seeded by the migrations (docs/data-model.md).
const (
	RoleUser    = "user"
	RoleAdmin   = "admin"
	RoleService = "service"
)

// DefaultScopes are the scopes seeded by the migrations (docs/data-model.md).
var DefaultScopes = []string{
	"read:profile", "write:profile",
	"admin:users", "admin:clients", "admin:system", "admin:sessions",
	"admin:permissions", "admin:security", "admin:audit", "admin:logs",
	"admin:tokens",
}

// RoleFilter selects and pages roles, ordered by name, id.
type RoleFilter struct {
	Search  string
	ScopeID *uuid.UUID
	Offset  int
	Limit   int
}

// ScopeFilter selects and pages scopes, ordered by name, id.
type ScopeFilter struct {
	Search   string
	Resource string
	Action   string
	Offset   int
	Limit    int
}

// RoleStore persists roles, scopes and their links.
type RoleStore interface {
	// CreateRole inserts r and links scopeIDs in one transaction; unknown
	// scope ids yield ErrNotFound, a taken name ErrAlreadyExists.
	CreateRole(ctx context.Context, r Role, scopeIDs []uuid.UUID) (Role, error)
	GetRole(ctx context.Context, id uuid.UUID) (Role, error)
	GetRoleByName(ctx context.Context, name string) (Role, error)
	UpdateRole(ctx context.Context, id uuid.UUID, fn func(*Role) error) (Role, error)
	// UpdateRoleWithScopes is UpdateRole that also replaces the role's
	// scopes with scopeIDs in the same transaction: an unknown scope id
	// yields ErrNotFound and nothing at all is written.
	UpdateRoleWithScopes(ctx context.Context, id uuid.UUID, fn func(*Role) error, scopeIDs []uuid.UUID) (Role, error)
	// DeleteRole returns ErrConflict while any user holds the role.
	DeleteRole(ctx context.Context, id uuid.UUID) error
	ListRoles(ctx context.Context, f RoleFilter) ([]Role, int, error)
	SetRoleScopes(ctx context.Context, roleID uuid.UUID, scopeIDs []uuid.UUID) error

	CreateScope(ctx context.Context, s Scope) (Scope, error)
	GetScope(ctx context.Context, id uuid.UUID) (Scope, error)
	GetScopeByName(ctx context.Context, name string) (Scope, error)
	UpdateScope(ctx context.Context, id uuid.UUID, fn func(*Scope) error) (Scope, error)
	// DeleteScope returns ErrConflict while any role holds the scope.
	DeleteScope(ctx context.Context, id uuid.UUID) error
	ListScopes(ctx context.Context, f ScopeFilter) ([]Scope, int, error)
}

// SortedUnique returns the sorted set of non-empty strings in ss.
func SortedUnique(ss []string) []string {
	out := make([]string, 0, len(ss))
	seen := make(map[string]struct{}, len(ss))
	for _, s := range ss {
		if s == "" {
			continue
		}
		if _, ok := seen[s]; ok {
			continue
		}
		seen[s] = struct{}{}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

package httpapi

import (
	"context"
	"net/http"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/reports"
)

// Roles and scopes; every route requires admin:users (or is_superuser, or
// role admin), and what a delegated administrator may change is decided by
// package identity (the delegation rule of docs/security-model.md). Ids
// are UUIDs; a malformed id in a path is a 404.

// roleScopeInfo is a scope inside a RoleResponse; action and resource are the
// two parts of the name "action:resource".
type roleScopeInfo struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Description *string `json:"description"`
	Resource    string  `json:"resource"`
	Action      string  `json:"action"`
}

func roleScopeView(s permiso.Scope) roleScopeInfo {
	return roleScopeInfo{ID: s.ID.String(), Name: s.Name, Description: s.Description, Resource: s.ResourceName(), Action: s.Action()}
}

// roleResponse is the original's RoleResponse, with user_count computed.
type roleResponse struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Description *string         `json:"description"`
	CreatedAt   string          `json:"created_at"`
	UpdatedAt   string          `json:"updated_at"`
	Scopes      []roleScopeInfo `json:"scopes"`
	UserCount   int             `json:"user_count"`
}

func roleView(r permiso.Role) roleResponse {
	out := roleResponse{ID: r.ID.String(), Name: r.Name, Description: r.Description,
		CreatedAt: timestamp(r.CreatedAt), UpdatedAt: timestamp(r.UpdatedAt),
		Scopes: make([]roleScopeInfo, 0, len(r.Scopes)), UserCount: r.UserCount}
	for _, s := range r.Scopes {
		out.Scopes = append(out.Scopes, roleScopeView(s))
	}
	return out
}

// scopeResponse is the original's ScopeResponse, with role_count computed.
type scopeResponse struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Description *string `json:"description"`
	Resource    string  `json:"resource"`
	Action      string  `json:"action"`
	CreatedAt   string  `json:"created_at"`
	UpdatedAt   string  `json:"updated_at"`
	RoleCount   int     `json:"role_count"`
}

func scopeView(s permiso.Scope) scopeResponse {
	return scopeResponse{ID: s.ID.String(), Name: s.Name, Description: s.Description, Resource: s.ResourceName(),
		Action: s.Action(), CreatedAt: timestamp(s.CreatedAt), UpdatedAt: timestamp(s.UpdatedAt), RoleCount: s.RoleCount}
}

// handleRoleList: GET /roles: search (name, description), scope_id,
// page, per_page; ordered by name, id.
func (s *server) handleRoleList() http.Handler {
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		var errs queryErrs
		f := permiso.RoleFilter{Search: readString(q, "search", maxSearchLength, &errs), ScopeID: readUUID(q, "scope_id", &errs)}
		return listPage(w, r, q, &errs, "roles", &f.Offset, &f.Limit,
			func(ctx context.Context) ([]permiso.Role, int, error) { return s.store.ListRoles(ctx, f) }, roleView)
	})
}

type roleBody struct {
	Name        *string   `json:"name"`
	Description *string   `json:"description"`
	ScopeIDs    *[]string `json:"scope_ids"`
}

func (b roleBody) input() identity.RoleInput {
	return identity.RoleInput{Name: b.Name, Description: b.Description, ScopeIDs: b.ScopeIDs}
}

// handleRoleCreate: POST /roles.
func (s *server) handleRoleCreate() http.Handler {
	return create[roleBody](s, s.ident.CreateRole, roleView)
}

// handleRoleGet: GET /roles/{role_id}.
func (s *server) handleRoleGet() http.Handler {
	return getByID(s, "role_id", "Role", s.store.GetRole, roleView)
}

// handleRoleUpdate: PUT /roles/{role_id}.
func (s *server) handleRoleUpdate() http.Handler {
	return update[roleBody](s, "role_id", "Role", s.ident.UpdateRole, roleView)
}

// handleRoleDelete: DELETE /roles/{role_id}; 409 while users hold it.
func (s *server) handleRoleDelete() http.Handler {
	return deleteByID(s, "role_id", "Role", s.ident.DeleteRole)
}

// handleRoleSub serves PUT /roles/{role_id}/scopes, registered as
// PUT /roles/{role_id}/{sub}: net/http's ServeMux refuses
// PUT /roles/{role_id}/scopes next to PUT /roles/scopes/{scope_id} (both
// match /roles/scopes/scopes and neither is more specific), while the
// {sub} form is strictly more general than the scope route, which
// therefore wins for /roles/scopes/x. Any {sub} but "scopes" is a 404.
func (s *server) handleRoleSub() http.Handler {
	type body struct {
		ScopeIDs []string `json:"scope_ids"`
	}
	scopes := putByID("role_id", "Role", func(ctx context.Context, a identity.Actor, id uuid.UUID, b body) (permiso.Role, error) {
		return s.ident.SetRoleScopes(ctx, a, id, b.ScopeIDs)
	}, roleView)
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) error {
		if r.PathValue("sub") != "scopes" {
			return errRouteNotFound
		}
		return scopes(w, r)
	})
}

// handleScopeUpdate: PUT /roles/scopes/{scope_id}.
func (s *server) handleScopeUpdate() http.Handler {
	return update[scopeBody](s, "scope_id", "Scope", s.ident.UpdateScope, scopeView)
}

// handleRoleStats: GET /roles/stats (reports.Service.RoleStats).
func (s *server) handleRoleStats() http.Handler {
	return report(s, (*reports.Service).RoleStats)
}

// handleRoleDefaults: GET /roles/defaults: the built-in roles and the
// seeded scopes.
func (s *server) handleRoleDefaults() http.Handler {
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) error {
		return answer(w, http.StatusOK, map[string]any{
			"roles":       identity.BuiltinRoles,
			"scopes":      permiso.DefaultScopes,
			"description": "Default roles and scopes, seeded by the migrations; built-in roles and scopes cannot be renamed or deleted",
		})
	})
}

// handleScopeList: GET /roles/scopes: search (name, description),
// resource, action, page, per_page; ordered by name, id.
func (s *server) handleScopeList() http.Handler {
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		var errs queryErrs
		f := permiso.ScopeFilter{Search: readString(q, "search", maxSearchLength, &errs),
			Resource: readString(q, "resource", identity.MaxScopeResource, &errs),
			Action:   readString(q, "action", identity.MaxScopeAction, &errs)}
		return listPage(w, r, q, &errs, "scopes", &f.Offset, &f.Limit,
			func(ctx context.Context) ([]permiso.Scope, int, error) { return s.store.ListScopes(ctx, f) }, scopeView)
	})
}

type scopeBody struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
	Resource    *string `json:"resource"`
	Action      *string `json:"action"`
}

func (b scopeBody) input() identity.ScopeInput {
	return identity.ScopeInput{Name: b.Name, Description: b.Description, Resource: b.Resource, Action: b.Action}
}

// handleScopeCreate: POST /roles/scopes.
func (s *server) handleScopeCreate() http.Handler {
	return create[scopeBody](s, s.ident.CreateScope, scopeView)
}

// handleScopeGet: GET /roles/scopes/{scope_id}.
func (s *server) handleScopeGet() http.Handler {
	return getByID(s, "scope_id", "Scope", s.store.GetScope, scopeView)
}

// handleScopeDelete: DELETE /roles/scopes/{scope_id}; 409 while roles
// hold it.
func (s *server) handleScopeDelete() http.Handler {
	return deleteByID(s, "scope_id", "Scope", s.ident.DeleteScope)
}

package httpapi

import (
	"net/http"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
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

func roleTarget(id uuid.UUID) auditTarget  { return auditTarget{Type: "role", ID: id.String()} }
func scopeTarget(id uuid.UUID) auditTarget { return auditTarget{Type: "scope", ID: id.String()} }

// handleRoleList: GET /roles: search (name, description), scope_id,
// page, per_page; ordered by name, id.
func (s *server) handleRoleList() http.Handler {
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var errs queryErrs
		f := permiso.RoleFilter{Search: readString(q, "search", maxSearchLength, &errs), ScopeID: readUUID(q, "scope_id", &errs)}
		pg := readPaging(q, defaultPerPage, maxPerPage, &errs)
		if err := errs.err(); err != nil {
			writeError(w, r, err)
			return
		}
		f.Offset, f.Limit = pg.offset(), pg.PerPage
		roles, total, err := s.store.ListRoles(r.Context(), f)
		if err != nil {
			writeError(w, r, err)
			return
		}
		out := make([]roleResponse, 0, len(roles))
		for _, x := range roles {
			out = append(out, roleView(x))
		}
		writeJSON(w, http.StatusOK, map[string]any{"roles": out, "total": total, "page": pg.Page,
			"per_page": pg.PerPage, "pages": pg.pages(total)})
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
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) {
		var b roleBody
		if _, err := decodeObject(r, &b); err != nil {
			writeError(w, r, err)
			return
		}
		role, err := s.ident.CreateRole(r.Context(), actor(r), b.input())
		target := auditTarget{Type: "role"}
		if err == nil {
			target = roleTarget(role.ID)
		}
		s.audited(r, "role.create", target, err, map[string]any{"name": deref(b.Name)})
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, roleView(role))
	})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// handleRoleGet: GET /roles/{role_id}.
func (s *server) handleRoleGet() http.Handler {
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathUUID(r, "role_id", "Role")
		if err != nil {
			writeError(w, r, err)
			return
		}
		role, err := s.store.GetRole(r.Context(), id)
		if err != nil {
			writeError(w, r, notFoundAs(err, "Role not found"))
			return
		}
		writeJSON(w, http.StatusOK, roleView(role))
	})
}

// handleRoleUpdate: PUT /roles/{role_id}.
func (s *server) handleRoleUpdate() http.Handler {
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) {
		s.roleUpdate(w, r, r.PathValue("role_id"))
	})
}

func (s *server) roleUpdate(w http.ResponseWriter, r *http.Request, rawID string) {
	id, err := uuid.Parse(rawID)
	if err != nil {
		writeError(w, r, permiso.Errorf(permiso.ENOTFOUND, "Role not found"))
		return
	}
	var b roleBody
	if _, err := decodeObject(r, &b); err != nil {
		writeError(w, r, err)
		return
	}
	role, err := s.ident.UpdateRole(r.Context(), actor(r), id, b.input())
	s.audited(r, "role.update", roleTarget(id), err, nil)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, roleView(role))
}

// handleRoleDelete: DELETE /roles/{role_id}; 409 while users hold it.
func (s *server) handleRoleDelete() http.Handler {
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathUUID(r, "role_id", "Role")
		if err != nil {
			writeError(w, r, err)
			return
		}
		role, err := s.ident.DeleteRole(r.Context(), actor(r), id)
		s.audited(r, "role.delete", roleTarget(id), err, map[string]any{"name": role.Name})
		if err != nil {
			writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleRoleSub serves PUT /roles/{role_id}/scopes, registered as
// PUT /roles/{role_id}/{sub}: net/http's ServeMux refuses
// PUT /roles/{role_id}/scopes next to PUT /roles/scopes/{scope_id} (both
// match /roles/scopes/scopes and neither is more specific), while the
// {sub} form is strictly more general than the scope route, which
// therefore wins for /roles/scopes/x. Any {sub} but "scopes" is a 404.
func (s *server) handleRoleSub() http.Handler {
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("sub") != "scopes" {
			writeError(w, r, errRouteNotFound)
			return
		}
		s.roleScopes(w, r, r.PathValue("role_id"))
	})
}

// handleScopeUpdate: PUT /roles/scopes/{scope_id}.
func (s *server) handleScopeUpdate() http.Handler {
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) {
		s.scopeUpdate(w, r, r.PathValue("scope_id"))
	})
}

func (s *server) roleScopes(w http.ResponseWriter, r *http.Request, rawID string) {
	id, err := uuid.Parse(rawID)
	if err != nil {
		writeError(w, r, permiso.Errorf(permiso.ENOTFOUND, "Role not found"))
		return
	}
	var b struct {
		ScopeIDs []string `json:"scope_ids"`
	}
	if _, err := decodeObject(r, &b); err != nil {
		writeError(w, r, err)
		return
	}
	role, err := s.ident.SetRoleScopes(r.Context(), actor(r), id, b.ScopeIDs)
	s.audited(r, "role.scopes", roleTarget(id), err, map[string]any{"scope_ids": b.ScopeIDs})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, roleView(role))
}

// handleRoleStats: GET /roles/stats.
func (s *server) handleRoleStats() http.Handler {
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) {
		st, err := s.ident.RoleStats(r.Context())
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
}

// handleRoleDefaults: GET /roles/defaults: the built-in roles and the
// seeded scopes.
func (s *server) handleRoleDefaults() http.Handler {
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"roles":       identity.BuiltinRoles,
			"scopes":      permiso.DefaultScopes,
			"description": "Default roles and scopes, seeded by the migrations; built-in roles and scopes cannot be renamed or deleted",
		})
	})
}

// handleScopeList: GET /roles/scopes: search (name, description),
// resource, action, page, per_page; ordered by name, id.
func (s *server) handleScopeList() http.Handler {
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var errs queryErrs
		f := permiso.ScopeFilter{Search: readString(q, "search", maxSearchLength, &errs),
			Resource: readString(q, "resource", identity.MaxScopeResource, &errs),
			Action:   readString(q, "action", identity.MaxScopeAction, &errs)}
		pg := readPaging(q, defaultPerPage, maxPerPage, &errs)
		if err := errs.err(); err != nil {
			writeError(w, r, err)
			return
		}
		f.Offset, f.Limit = pg.offset(), pg.PerPage
		scopes, total, err := s.store.ListScopes(r.Context(), f)
		if err != nil {
			writeError(w, r, err)
			return
		}
		out := make([]scopeResponse, 0, len(scopes))
		for _, x := range scopes {
			out = append(out, scopeView(x))
		}
		writeJSON(w, http.StatusOK, map[string]any{"scopes": out, "total": total, "page": pg.Page,
			"per_page": pg.PerPage, "pages": pg.pages(total)})
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
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) {
		var b scopeBody
		if _, err := decodeObject(r, &b); err != nil {
			writeError(w, r, err)
			return
		}
		sc, err := s.ident.CreateScope(r.Context(), actor(r), b.input())
		target := auditTarget{Type: "scope"}
		if err == nil {
			target = scopeTarget(sc.ID)
		}
		s.audited(r, "scope.create", target, err, map[string]any{"name": sc.Name})
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, scopeView(sc))
	})
}

// handleScopeGet: GET /roles/scopes/{scope_id}.
func (s *server) handleScopeGet() http.Handler {
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathUUID(r, "scope_id", "Scope")
		if err != nil {
			writeError(w, r, err)
			return
		}
		sc, err := s.store.GetScope(r.Context(), id)
		if err != nil {
			writeError(w, r, notFoundAs(err, "Scope not found"))
			return
		}
		writeJSON(w, http.StatusOK, scopeView(sc))
	})
}

func (s *server) scopeUpdate(w http.ResponseWriter, r *http.Request, rawID string) {
	id, err := uuid.Parse(rawID)
	if err != nil {
		writeError(w, r, permiso.Errorf(permiso.ENOTFOUND, "Scope not found"))
		return
	}
	var b scopeBody
	if _, err := decodeObject(r, &b); err != nil {
		writeError(w, r, err)
		return
	}
	sc, err := s.ident.UpdateScope(r.Context(), actor(r), id, b.input())
	s.audited(r, "scope.update", scopeTarget(id), err, nil)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, scopeView(sc))
}

// handleScopeDelete: DELETE /roles/scopes/{scope_id}; 409 while roles
// hold it.
func (s *server) handleScopeDelete() http.Handler {
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathUUID(r, "scope_id", "Scope")
		if err != nil {
			writeError(w, r, err)
			return
		}
		sc, err := s.ident.DeleteScope(r.Context(), actor(r), id)
		s.audited(r, "scope.delete", scopeTarget(id), err, map[string]any{"name": sc.Name})
		if err != nil {
			writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

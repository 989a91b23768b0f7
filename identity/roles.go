package identity

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// BuiltinRoles are the seeded roles the server refers to by name (the
// administrator definition, the role of new registrations, the service
// role): they cannot be renamed or deleted.
var BuiltinRoles = []string{permiso.RoleUser, permiso.RoleAdmin, permiso.RoleService}

func builtinRole(name string) bool  { return slices.Contains(BuiltinRoles, name) }
func builtinScope(name string) bool { return slices.Contains(permiso.DefaultScopes, name) }

// RoleInput creates or changes a role; nil fields are left unchanged (or
// empty on create).
type RoleInput struct {
	Name        *string
	Description *string
	// ScopeIDs, when not nil, replaces the role's scopes.
	ScopeIDs *[]string
}

// CreateRole creates a role with its scopes in one transaction. A taken
// name is 409, unknown scope ids 400; a delegated administrator gives it
// only scopes it holds (Delegation.MayGrantScopes, 403). The outcome is
// audited (role.create, with the name as sent).
func (s *Service) CreateRole(ctx context.Context, actor Actor, in RoleInput) (permiso.Role, error) {
	r, err := s.createRole(ctx, actor, in)
	s.audited(ctx, actor, ActionRoleCreate, createdTarget("role", r.ID, err), err, map[string]any{"name": deref2(in.Name)})
	return r, err
}

func (s *Service) createRole(ctx context.Context, actor Actor, in RoleInput) (permiso.Role, error) {
	if !actor.Admin {
		return permiso.Role{}, errForbidden
	}
	var p problems
	name := p.roleName("name", deref2(in.Name))
	p.text("description", in.Description, MaxDescription)
	scopeIDs := p.optIDs("scope_ids", in.ScopeIDs)
	if err := p.err(); err != nil {
		return permiso.Role{}, err
	}
	scopes, err := s.scopes(ctx, scopeIDs)
	if err != nil {
		return permiso.Role{}, err
	}
	d, err := s.Delegation(ctx, actor)
	if err != nil {
		return permiso.Role{}, err
	}
	if err := d.MayGrantScopes(scopes); err != nil {
		return permiso.Role{}, err
	}
	now := s.now().UTC()
	r, err := s.deps.Store.CreateRole(ctx, permiso.Role{Name: name, Description: in.Description, CreatedAt: now, UpdatedAt: now}, scopeIDs)
	switch {
	case errors.Is(err, permiso.ErrAlreadyExists):
		return permiso.Role{}, permiso.Errorf(permiso.EEXISTS, "Role name already exists")
	case errors.Is(err, permiso.ErrNotFound):
		return permiso.Role{}, permiso.Errorf(permiso.EBADREQUEST, "Unknown scope ids")
	}
	return r, err
}

// UpdateRole changes a role's name, description and (when given) scopes.
// Built-in roles keep their names. A delegated administrator changes only
// a role whose scopes it all holds, never role admin
// (Delegation.MayChangeRole), and gives it only scopes it holds. The
// outcome is audited (role.update).
func (s *Service) UpdateRole(ctx context.Context, actor Actor, id uuid.UUID, in RoleInput) (permiso.Role, error) {
	r, err := s.updateRole(ctx, actor, id, in)
	s.audited(ctx, actor, ActionRoleUpdate, roleTarget(id), err, nil)
	return r, err
}

func (s *Service) updateRole(ctx context.Context, actor Actor, id uuid.UUID, in RoleInput) (permiso.Role, error) {
	if !actor.Admin {
		return permiso.Role{}, errForbidden
	}
	var p problems
	var name string
	if in.Name != nil {
		name = p.roleName("name", *in.Name)
	}
	p.text("description", in.Description, MaxDescription)
	scopeIDs := p.optIDs("scope_ids", in.ScopeIDs)
	if err := p.err(); err != nil {
		return permiso.Role{}, err
	}
	before, err := s.getRole(ctx, id)
	if err != nil {
		return permiso.Role{}, err
	}
	d, err := s.delegated(ctx, actor, func(d Delegation) error { return d.MayChangeRole(before) })
	if err != nil {
		return permiso.Role{}, err
	}
	if in.Name != nil && name != before.Name && builtinRole(before.Name) {
		return permiso.Role{}, permiso.Errorf(permiso.ECONFLICT, "Role %q is built in and cannot be renamed", before.Name)
	}
	scopes, err := s.scopes(ctx, scopeIDs)
	if err != nil {
		return permiso.Role{}, err
	}
	if err := d.MayGrantScopes(scopes); err != nil {
		return permiso.Role{}, err
	}
	now := s.now().UTC()
	apply := func(r *permiso.Role) error {
		if in.Name != nil {
			r.Name = name
		}
		setIf(&r.Description, in.Description)
		r.UpdatedAt = now
		return nil
	}
	// The fields and the scopes change in one transaction: a scope deleted
	// since the check above fails the whole update, never half of it.
	r, err := updateLinked(ctx, id, apply, in.ScopeIDs != nil, scopeIDs, "scope",
		s.deps.Store.UpdateRole, s.deps.Store.UpdateRoleWithScopes, s.deps.Store.GetRole)
	if err != nil {
		return permiso.Role{}, updateErr(err, "Role name already exists", errRoleNotFound)
	}
	return r, nil
}

// SetRoleScopes replaces the role's scopes (PUT /roles/{id}/scopes),
// within the delegation rule as UpdateRole. The outcome is audited
// (role.scopes, with the scope ids as sent).
func (s *Service) SetRoleScopes(ctx context.Context, actor Actor, id uuid.UUID, raw []string) (permiso.Role, error) {
	r, err := setLinks(ctx, actor, id, raw, "scope", s.getRole,
		func(r permiso.Role) (func([]permiso.Scope) error, error) {
			d, err := s.delegated(ctx, actor, func(d Delegation) error { return d.MayChangeRole(r) })
			return d.MayGrantScopes, err
		}, s.scopes, s.deps.Store.SetRoleScopes)
	s.audited(ctx, actor, ActionRoleScopes, roleTarget(id), err, map[string]any{"scope_ids": raw})
	return r, err
}

// setLinks replaces the links of the row id (a user's roles, a role's
// scopes) with the what ids of raw (required, field what+"_ids"), for
// an administrator: get reads the row (its own 404), may applies the
// delegation rule to it and returns the rule's check of the rows linked,
// which lookup reads (a 400 naming unknown ids). An id deleted since it
// was checked fails set with ErrNotFound, a 400 "Unknown <what> ids". It
// returns the row as it is then.
func setLinks[T, L any](ctx context.Context, actor Actor, id uuid.UUID, raw []string, what string,
	get func(context.Context, uuid.UUID) (T, error),
	may func(T) (func([]L) error, error),
	lookup func(context.Context, []uuid.UUID) ([]L, error),
	set func(context.Context, uuid.UUID, []uuid.UUID) error) (T, error) {
	var zero T
	ids, invalid := requiredIDs(what+"_ids", raw)
	v, err := forAdmin(ctx, actor, invalid, id, get)
	if err != nil {
		return zero, err
	}
	check, err := may(v)
	if err != nil {
		return zero, err
	}
	linked, err := lookup(ctx, ids)
	if err != nil {
		return zero, err
	}
	if err := check(linked); err != nil {
		return zero, err
	}
	if err := set(ctx, id, ids); err != nil {
		if errors.Is(err, permiso.ErrNotFound) {
			return zero, permiso.Errorf(permiso.EBADREQUEST, "Unknown %s ids", what)
		}
		return zero, err
	}
	return get(ctx, id)
}

// updateLinked applies apply to the row id with update or, when linked,
// with updateWithLinks, which also replaces its links (to the what ids
// links) in the same transaction. A link deleted since it was checked
// fails the update as a whole: ErrNotFound while the row itself is still
// there (get) is a 400 "Unknown <what> ids".
func updateLinked[T any](ctx context.Context, id uuid.UUID, apply func(*T) error, linked bool, links []uuid.UUID, what string,
	update func(context.Context, uuid.UUID, func(*T) error) (T, error),
	updateWithLinks func(context.Context, uuid.UUID, func(*T) error, []uuid.UUID) (T, error),
	get func(context.Context, uuid.UUID) (T, error)) (T, error) {
	if !linked {
		return update(ctx, id, apply)
	}
	v, err := updateWithLinks(ctx, id, apply, links)
	if errors.Is(err, permiso.ErrNotFound) {
		if _, gerr := get(ctx, id); gerr == nil {
			var zero T
			return zero, permiso.Errorf(permiso.EBADREQUEST, "Unknown %s ids", what)
		}
	}
	return v, err
}

// DeleteRole deletes a role no user holds (409 otherwise, and for the
// built-in roles), within the delegation rule as UpdateRole. The outcome
// is audited (role.delete).
func (s *Service) DeleteRole(ctx context.Context, actor Actor, id uuid.UUID) (permiso.Role, error) {
	r, err := deleteNamed(ctx, actor, id, "Role", "users", errRoleNotFound, s.getRole, func(r permiso.Role) (string, error) {
		_, err := s.delegated(ctx, actor, func(d Delegation) error { return d.MayChangeRole(r) })
		return r.Name, err
	}, builtinRole, s.deps.Store.DeleteRole)
	s.audited(ctx, actor, ActionRoleDelete, roleTarget(id), err, map[string]any{"name": r.Name})
	return r, err
}

// deleteNamed deletes the row id of a kind (a role, a scope), for an
// administrator: get reads it (its own 404); may applies the delegation
// rule and returns its name; a built-in one is 409 "<Kind> "<name>" is
// built in and cannot be deleted", and one still held (del's ErrConflict)
// 409 "Cannot delete <kind> that is assigned to <holders>"; a row gone
// meanwhile is missing. It returns
// the row also when it was found but not deleted (for the audit event),
// except a built-in or held one.
func deleteNamed[T any](ctx context.Context, actor Actor, id uuid.UUID, kind, holders string, missing error,
	get func(context.Context, uuid.UUID) (T, error), may func(T) (string, error), builtin func(string) bool,
	del func(context.Context, uuid.UUID) error) (T, error) {
	var zero T
	v, err := forAdmin(ctx, actor, nil, id, get)
	if err != nil {
		return zero, err
	}
	name, err := may(v)
	if err != nil {
		return v, err
	}
	if builtin(name) {
		return zero, permiso.Errorf(permiso.ECONFLICT, "%s %q is built in and cannot be deleted", kind, name)
	}
	err = del(ctx, id)
	if errors.Is(err, permiso.ErrConflict) {
		return zero, permiso.Errorf(permiso.ECONFLICT, "Cannot delete %s that is assigned to %s", strings.ToLower(kind), holders)
	}
	return v, notFound(err, missing)
}

// forAdmin reads the row id with get for an administrator: 403 for
// anyone else, then invalid (the request's own refusal) when not nil.
func forAdmin[T any](ctx context.Context, actor Actor, invalid error, id uuid.UUID, get func(context.Context, uuid.UUID) (T, error)) (T, error) {
	var zero T
	switch {
	case !actor.Admin:
		return zero, errForbidden
	case invalid != nil:
		return zero, invalid
	}
	return get(ctx, id)
}

// delegated returns the delegation rule of actor after checking may with
// it.
func (s *Service) delegated(ctx context.Context, actor Actor, may func(Delegation) error) (Delegation, error) {
	d, err := s.Delegation(ctx, actor)
	if err != nil {
		return Delegation{}, err
	}
	return d, may(d)
}

// scopes returns the scopes of the ids, or a 400 naming every id that is
// not a scope.
func (s *Service) scopes(ctx context.Context, ids []uuid.UUID) ([]permiso.Scope, error) {
	return Scopes(ctx, s.deps.Store, ids)
}

// Scopes returns the scopes of the ids from the store, or a 400
// bad_request naming every id that is not a scope (the answer the roles
// and service-clients APIs give for unknown scope ids).
func Scopes(ctx context.Context, store permiso.RoleStore, ids []uuid.UUID) ([]permiso.Scope, error) {
	return byIDs(ctx, ids, store.GetScope, "scope")
}

// byIDs looks every id up with get and returns what it found, or a 400
// bad_request naming every id get does not know ("Unknown <what> ids:
// ..."); any other error of get is returned as it is.
func byIDs[T any](ctx context.Context, ids []uuid.UUID, get func(context.Context, uuid.UUID) (T, error), what string) ([]T, error) {
	var unknown []string
	out := make([]T, 0, len(ids))
	for _, id := range ids {
		v, err := get(ctx, id)
		if err != nil {
			if !errors.Is(err, permiso.ErrNotFound) {
				return nil, err
			}
			unknown = append(unknown, id.String())
			continue
		}
		out = append(out, v)
	}
	if len(unknown) > 0 {
		return nil, permiso.Errorf(permiso.EBADREQUEST, "Unknown %s ids: %s", what, strings.Join(unknown, ", "))
	}
	return out, nil
}

// ScopeInput creates or changes a scope. A scope is named
// "action:resource"; Action and Resource may be given instead of, or
// besides, the name, and must then agree with it.
type ScopeInput struct {
	Name        *string
	Description *string
	Resource    *string
	Action      *string
}

// CreateScope creates a scope (409 when the name is taken). Any
// administrator may: a new scope is held by no role, and the delegation
// rule decides who may give it to one. The outcome is audited
// (scope.create).
func (s *Service) CreateScope(ctx context.Context, actor Actor, in ScopeInput) (permiso.Scope, error) {
	sc, err := s.createScope(ctx, actor, in)
	name := sc.Name
	if err != nil {
		// The name as sent (the scope was not created).
		name = deref2(in.Name)
		if name == "" && (in.Action != nil || in.Resource != nil) {
			name = deref2(in.Action) + ":" + deref2(in.Resource)
		}
	}
	s.audited(ctx, actor, ActionScopeCreate, createdTarget("scope", sc.ID, err), err, map[string]any{"name": name})
	return sc, err
}

func (s *Service) createScope(ctx context.Context, actor Actor, in ScopeInput) (permiso.Scope, error) {
	if !actor.Admin {
		return permiso.Scope{}, errForbidden
	}
	var p problems
	name := p.scopeName(deref2(in.Name), deref2(in.Action), deref2(in.Resource))
	p.text("description", in.Description, MaxDescription)
	if err := p.err(); err != nil {
		return permiso.Scope{}, err
	}
	_, resource, _ := SplitScopeName(name)
	now := s.now().UTC()
	sc, err := s.deps.Store.CreateScope(ctx, permiso.Scope{Name: name, Description: in.Description, Resource: &resource, CreatedAt: now, UpdatedAt: now})
	if errors.Is(err, permiso.ErrAlreadyExists) {
		return permiso.Scope{}, permiso.Errorf(permiso.EEXISTS, "Scope name already exists")
	}
	return sc, err
}

// UpdateScope renames or re-describes a scope. Built-in scopes keep their
// names (routes require them by name). A delegated administrator changes
// only a scope it holds (Delegation.MayManageScope). The outcome is
// audited (scope.update).
func (s *Service) UpdateScope(ctx context.Context, actor Actor, id uuid.UUID, in ScopeInput) (permiso.Scope, error) {
	sc, err := s.updateScope(ctx, actor, id, in)
	s.audited(ctx, actor, ActionScopeUpdate, scopeTarget(id), err, nil)
	return sc, err
}

func (s *Service) updateScope(ctx context.Context, actor Actor, id uuid.UUID, in ScopeInput) (permiso.Scope, error) {
	if !actor.Admin {
		return permiso.Scope{}, errForbidden
	}
	before, err := s.getScope(ctx, id)
	if err != nil {
		return permiso.Scope{}, err
	}
	if err := s.mayManageScope(ctx, actor, before); err != nil {
		return permiso.Scope{}, err
	}
	var p problems
	name := before.Name
	if in.Name != nil || in.Action != nil || in.Resource != nil {
		// Missing parts default to the current ones.
		a, r, _ := strings.Cut(before.Name, ":")
		act, res := deref2(in.Action), deref2(in.Resource)
		if in.Name == nil {
			if act == "" {
				act = a
			}
			if res == "" {
				res = r
			}
		}
		name = p.scopeName(deref2(in.Name), act, res)
	}
	p.text("description", in.Description, MaxDescription)
	if err := p.err(); err != nil {
		return permiso.Scope{}, err
	}
	if name != before.Name && builtinScope(before.Name) {
		return permiso.Scope{}, permiso.Errorf(permiso.ECONFLICT, "Scope %q is built in and cannot be renamed", before.Name)
	}
	_, resource, _ := SplitScopeName(name)
	now := s.now().UTC()
	sc, err := s.deps.Store.UpdateScope(ctx, id, func(x *permiso.Scope) error {
		x.Name = name
		if resource != "" {
			x.Resource = &resource
		}
		setIf(&x.Description, in.Description)
		x.UpdatedAt = now
		return nil
	})
	if err != nil {
		return permiso.Scope{}, updateErr(err, "Scope name already exists", errScopeNotFound)
	}
	return sc, nil
}

// DeleteScope deletes a scope no role holds (409 otherwise, and for the
// built-in scopes). Links to service clients go with it. A delegated
// administrator deletes only a scope it holds. The outcome is audited
// (scope.delete).
func (s *Service) DeleteScope(ctx context.Context, actor Actor, id uuid.UUID) (permiso.Scope, error) {
	sc, err := deleteNamed(ctx, actor, id, "Scope", "roles", errScopeNotFound, s.getScope, func(sc permiso.Scope) (string, error) {
		return sc.Name, s.mayManageScope(ctx, actor, sc)
	}, builtinScope, s.deps.Store.DeleteScope)
	s.audited(ctx, actor, ActionScopeDelete, scopeTarget(id), err, map[string]any{"name": sc.Name})
	return sc, err
}

func (s *Service) mayManageScope(ctx context.Context, actor Actor, sc permiso.Scope) error {
	_, err := s.delegated(ctx, actor, func(d Delegation) error { return d.MayManageScope(sc) })
	return err
}

// getRole and getScope return the role or scope, 404 when unknown.
func (s *Service) getRole(ctx context.Context, id uuid.UUID) (permiso.Role, error) {
	r, err := s.deps.Store.GetRole(ctx, id)
	return r, notFound(err, errRoleNotFound)
}

func (s *Service) getScope(ctx context.Context, id uuid.UUID) (permiso.Scope, error) {
	sc, err := s.deps.Store.GetScope(ctx, id)
	return sc, notFound(err, errScopeNotFound)
}

// ---------------------------------------------------------------------------
// Permission checks (POST /roles/permissions/check and check-bulk,
// GET /roles/permissions/user/{id}).

// Decision is the answer to "may this user do action on resource?".
type Decision struct {
	Allowed bool `json:"allowed"`
	// Reason explains the decision itself (never a grant when denied).
	Reason string `json:"reason"`
	// MatchingScopes are the scopes that grant it; empty when denied.
	MatchingScopes []string `json:"matching_scopes"`
	UserRoles      []string `json:"user_roles"`
}

// managed are resources whose write/admin actions need admin:users or
// admin:system on top of any specific scope (the original's rule).
var managed = []string{"roles", "permissions", "scopes"}

// Decide applies the permission rules to the user's current roles (not to
// any token):
//
//  1. an administrator (superuser or role admin, the one definition of
//     docs/security-model.md) may do anything;
//  2. write or admin on roles, permissions or scopes needs admin:users or
//     admin:system, whatever else the user holds;
//  3. otherwise the user needs "action:resource", or "admin:resource", or
//     (for an action other than admin) admin:system.
func Decide(u permiso.User, resource, action string) Decision {
	d := Decision{MatchingScopes: []string{}, UserRoles: u.RoleNames()}
	switch {
	case u.IsSuperuser:
		d.Allowed, d.Reason = true, "Superuser access"
		return d
	case u.HasRole(permiso.RoleAdmin):
		d.Allowed, d.Reason = true, "Administrator access (role admin)"
		return d
	}
	held := u.ScopeNames()
	has := func(s string) bool { return slices.Contains(held, s) }
	if slices.Contains(managed, resource) && (action == "write" || action == "admin") && !has("admin:users") && !has("admin:system") {
		d.Reason = "Managing " + resource + " requires the admin:users or admin:system scope"
		return d
	}
	candidates := []string{action + ":" + resource, "admin:" + resource}
	if action != "admin" {
		candidates = append(candidates, "admin:system")
	}
	for _, c := range candidates {
		if has(c) && !slices.Contains(d.MatchingScopes, c) {
			d.MatchingScopes = append(d.MatchingScopes, c)
		}
	}
	if len(d.MatchingScopes) == 0 {
		d.Reason = "No matching permissions found"
		return d
	}
	d.Allowed, d.Reason = true, "Granted by scopes: "+strings.Join(d.MatchingScopes, ", ")
	return d
}

// ResourcePermissions groups a user's scopes by resource.
type ResourcePermissions struct {
	Resource string   `json:"resource"`
	Actions  []string `json:"actions"`
	Scopes   []string `json:"scopes"`
}

// UserPermissions is the answer of GET /roles/permissions/user/{id}.
type UserPermissions struct {
	UserID            string                `json:"user_id"`
	Username          string                `json:"username"`
	Resources         []ResourcePermissions `json:"resources"`
	GlobalPermissions []string              `json:"global_permissions"`
	IsSuperuser       bool                  `json:"is_superuser"`
	IsAdmin           bool                  `json:"is_admin"`
	Roles             []string              `json:"roles"`
	Scopes            []string              `json:"scopes"`
}

// Permissions lists what the user's current roles give them, by resource.
func Permissions(u permiso.User) UserPermissions {
	out := UserPermissions{UserID: u.ID.String(), Username: u.Username, Resources: []ResourcePermissions{},
		GlobalPermissions: []string{}, IsSuperuser: u.IsSuperuser,
		IsAdmin: u.IsSuperuser || u.HasRole(permiso.RoleAdmin), Roles: u.RoleNames(), Scopes: u.ScopeNames()}
	byRes := map[string]*ResourcePermissions{}
	var order []string
	for _, name := range out.Scopes {
		a, r, ok := strings.Cut(name, ":")
		if !ok {
			out.GlobalPermissions = append(out.GlobalPermissions, name)
			continue
		}
		rp := byRes[r]
		if rp == nil {
			rp = &ResourcePermissions{Resource: r, Actions: []string{}, Scopes: []string{}}
			byRes[r] = rp
			order = append(order, r)
		}
		rp.Actions = append(rp.Actions, a)
		rp.Scopes = append(rp.Scopes, name)
	}
	sort.Strings(order)
	for _, r := range order {
		out.Resources = append(out.Resources, *byRes[r])
	}
	return out
}

// GetUser returns a user, 404 when unknown.
func (s *Service) GetUser(ctx context.Context, id uuid.UUID) (permiso.User, error) {
	return s.getUser(ctx, id)
}

func deref2(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"unicode"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
)

// Permission checks (docs/api.md, "Permission checks"): may a user do
// an action on a resource, by the rules of identity.Decide applied to the
// user's current roles. They require admin:permissions (or is_superuser,
// or role admin).

const (
	scopeAdminPermissions = "admin:permissions"
	// maxBulkChecks bounds one check-bulk request.
	maxBulkChecks = 100
	maxPermPart   = 100
)

type permissionQuery struct {
	Resource string `json:"resource"`
	Action   string `json:"action"`
}

// validPart reports whether a resource or action is 1-100 printable
// characters without white space or ':'.
func validPart(s string) bool {
	if s == "" || len(s) > maxPermPart {
		return false
	}
	for _, r := range s {
		if r == ':' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func (q permissionQuery) check(prefix string, errs *queryErrs) {
	if !validPart(q.Resource) {
		errs.add(prefix+"resource", "required: 1-100 characters without white space or ':'")
	}
	if !validPart(q.Action) {
		errs.add(prefix+"action", "required: 1-100 characters without white space or ':'")
	}
}

// permissionUser parses a user id from a body and loads the user.
func (s *server) permissionUser(r *http.Request, raw string, errs *queryErrs) (permiso.User, error) {
	id, err := uuid.Parse(strings.TrimSpace(raw))
	if err != nil {
		errs.add("user_id", "required: a UUID")
	}
	if err := errs.err(); err != nil {
		return permiso.User{}, err
	}
	// The store's not-found says "User not found" (storetest pins it).
	return s.store.GetUser(r.Context(), id)
}

// handlePermissionCheck: POST /roles/permissions/check.
func (s *server) handlePermissionCheck() http.Handler {
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) error {
		var b struct {
			UserID string `json:"user_id"`
			permissionQuery
		}
		if _, err := decodeObject(r, &b); err != nil {
			return err
		}
		var errs queryErrs
		b.check("", &errs)
		u, err := s.permissionUser(r, b.UserID, &errs)
		if err != nil {
			return err
		}
		return answer(w, http.StatusOK, identity.Decide(u, b.Resource, b.Action))
	})
}

// handlePermissionCheckBulk: POST /roles/permissions/check-bulk. Every
// entry must name a resource and an action (422 otherwise, instead of the
// original's silent skipping, so results line up with the request).
func (s *server) handlePermissionCheckBulk() http.Handler {
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) error {
		var b struct {
			UserID      string            `json:"user_id"`
			Permissions []permissionQuery `json:"permissions"`
		}
		if _, err := decodeObject(r, &b); err != nil {
			return err
		}
		var errs queryErrs
		switch {
		case b.Permissions == nil:
			errs.add("permissions", "required: a list of {resource, action}")
		case len(b.Permissions) > maxBulkChecks:
			errs.add("permissions", "at most 100 entries")
		default:
			for i, q := range b.Permissions {
				q.check("permissions["+strconv.Itoa(i)+"].", &errs)
			}
		}
		u, err := s.permissionUser(r, b.UserID, &errs)
		if err != nil {
			return err
		}
		results := make([]identity.Decision, 0, len(b.Permissions))
		for _, q := range b.Permissions {
			results = append(results, identity.Decide(u, q.Resource, q.Action))
		}
		return answer(w, http.StatusOK, map[string]any{"results": results, "user_roles": u.RoleNames(), "user_scopes": u.ScopeNames()})
	})
}

// handleUserPermissions: GET /roles/permissions/user/{user_id}.
func (s *server) handleUserPermissions() http.Handler {
	return getByID(s, "user_id", "User", s.store.GetUser, identity.Permissions)
}

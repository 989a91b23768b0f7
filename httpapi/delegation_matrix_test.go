package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/oauth2"
)

// The delegation matrix (docs/security-model.md, "Delegated
// administrators"): every holder of one admin:* scope (a user whose only
// role holds exactly that scope, and a service client holding exactly
// it), a holder of role admin and a superuser × every mutating route ×
// every kind of target → the expected status. A refused request changes
// nothing (the target is read again), and a refusal by the delegation rule
// is a 403 forbidden audited as a failure with reason "delegation".

// dmTier is who may make a request: the weakest caller admitted.
type dmTier int

const (
	// tierDelegated: any holder of the route's admin:* scope.
	tierDelegated dmTier = iota
	// tierAdmin: a holder of role admin (or a superuser).
	tierAdmin
	// tierSuper: a superuser only.
	tierSuper
	// tierSelf: every user on their own account; service clients never.
	tierSelf
)

// dmCaller is one caller of the matrix.
type dmCaller struct {
	name string
	// scope is the one admin:* scope a delegated caller holds; "" for
	// role admin and superuser.
	scope string
	level dmTier // tierDelegated, tierAdmin (role admin) or tierSuper
	// user is nil for a service client.
	user     *permiso.User
	token    string
	password string
}

// dmCase is one route and kind of target.
type dmCase struct {
	route  string // the registered pattern, "METHOD /api/v1/..."
	target string // what the request is about, for messages
	scope  string // the route's admin:* scope; "" for tierSelf
	allow  dmTier
	ok     int // the status of an admitted request
	// same: an admitted request changes nothing observable (a 409).
	same bool
	// perCaller: the fixture depends on the caller (its own account), so
	// every request gets a fresh one.
	perCaller bool
	// shared: the target is a built-in role or scope that other cases use
	// too, so the case does not run at the same time as the others.
	shared bool
	// fixture makes fresh objects for the request and fills in x.
	fixture func(x *dmCell)
}

// dmCell is the request of one fixture.
type dmCell struct {
	e      *idEnv
	caller *dmCaller
	path   string
	body   any
	// form, when set, is sent form-encoded (token revocation).
	form url.Values
	// bearer replaces the caller's token when set.
	bearer string
	// newPassword is the caller's password once the request succeeds.
	newPassword string
	// state reads what the request may change; nil for routes that act on
	// no particular target.
	state func() string
	audit dmAudit
}

// dmAudit names the failure event a refusal by the delegation rule must
// leave: action about targetID, or (for a creation) with details[key] ==
// value.
type dmAudit struct {
	action, targetID, key, value string
}

func (a dmAudit) id() string {
	if a.targetID != "" {
		return a.action + " " + a.targetID
	}
	return a.action + " " + a.key + "=" + a.value
}

// outcome of a request for a caller.
type dmOutcome int

const (
	outDone      dmOutcome = iota // admitted: the status is the case's ok
	outRule                       // refused by the delegation rule: 403 forbidden, audited
	outAccess                     // refused by the access rule: 403, nothing to audit
	outIgnored                    // RFC 7009: a foreign token is left alone, 200
	outNoService                  // a service token on a route for users: 403
)

func (c dmCase) outcome(k *dmCaller) dmOutcome {
	if c.allow == tierSelf {
		if k.user == nil {
			return outNoService
		}
		return outDone
	}
	if k.level == tierDelegated && k.scope != c.scope {
		if strings.HasSuffix(c.route, pathRevoke) {
			return outIgnored
		}
		return outAccess
	}
	if k.level >= c.allow {
		return outDone
	}
	return outRule
}

const (
	scopeUsers   = "admin:users"
	scopeClients = "admin:clients"
	scopeTokens  = "admin:tokens"
)

// lackedBy is an admin:* scope that a holder of scope alone lacks.
func lackedBy(scope string) string {
	if scope == scopeAdminSystem {
		return scopeAdminLogs
	}
	return scopeAdminSystem
}

// The kinds of user a request may be about, and who may act on each.
var dmUserKinds = []struct {
	name  string
	allow dmTier
}{
	{"plain user", tierDelegated},
	{"user holding the route's scope", tierDelegated},
	{"user holding a scope the caller lacks", tierAdmin},
	{"role admin holder", tierAdmin},
	{"superuser", tierSuper},
}

// The kinds of service client a request may be about, or create, and who
// may act on each.
type dmClientKind struct {
	name   string
	allow  dmTier
	scopes []string
}

var dmClientKinds = []dmClientKind{
	{"client without scopes", tierDelegated, nil},
	{"client holding the caller's scope", tierDelegated, []string{scopeClients}},
	{"client holding a scope the caller lacks", tierAdmin, []string{scopeAdminSystem}},
}

// matrixRole returns a role holding exactly scopes, made once.
func (x *dmCell) matrixRole(scopes ...string) permiso.Role {
	key := "matrix[" + strings.Join(scopes, " ") + "]"
	if r, ok := x.e.roleNamed(key); ok {
		return r
	}
	r := x.e.role("matrix-", scopes...)
	x.e.rolesMu.Lock()
	x.e.roles[key] = r
	x.e.rolesMu.Unlock()
	return r
}

// builtin returns a built-in role.
func (x *dmCell) builtin(name string) permiso.Role {
	r, ok := x.e.roleNamed(name)
	if !ok {
		x.e.t.Fatalf("no role %s", name)
	}
	return r
}

// targetUser creates a user of the kind; scope is the route's scope.
func (x *dmCell) targetUser(kind, scope string) permiso.User {
	e := x.e
	switch kind {
	case "plain user":
		return e.user("target", false, "user")
	case "user holding the route's scope":
		return e.user("target", false, x.matrixRole(scope).Name)
	case "user holding a scope the caller lacks":
		return e.user("target", false, x.matrixRole(scope, lackedBy(scope)).Name)
	case "role admin holder":
		return e.user("target", false, "admin")
	case "superuser":
		return e.user("target", true, "user")
	}
	panic("unknown kind " + kind)
}

func (x *dmCell) scopeID(name string) string {
	sc, err := x.e.db.GetScopeByName(x.e.ctx, name)
	if err != nil {
		x.e.t.Fatal(err)
	}
	return sc.ID.String()
}

func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// stateOf is the state of a row as its read found it: "deleted" when the
// read answered ErrNotFound, else the JSON of view; any other error fails
// the test.
func (e *idEnv) stateOf(err error, view func() map[string]any) string {
	if errors.Is(err, permiso.ErrNotFound) {
		return "deleted"
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return js(view())
}

// userState reads what a request may change about a user.
func (e *idEnv) userState(id uuid.UUID) string {
	u, err := e.db.GetUser(permiso.WithFreshRead(e.ctx), id)
	return e.stateOf(err, func() map[string]any {
		return map[string]any{"email": u.Email, "display_name": u.DisplayName, "active": u.IsActive, "verified": u.IsVerified,
			"superuser": u.IsSuperuser, "hash": u.PasswordHash, "roles": u.RoleNames(), "failed": u.FailedLoginAttempts,
			"locked_until": u.LockedUntil, "tokens_revoked_before": u.TokensRevokedBefore, "password_changed_at": u.PasswordChangedAt}
	})
}

func (e *idEnv) roleState(id uuid.UUID) string {
	r, err := e.db.GetRole(e.ctx, id)
	return e.stateOf(err, func() map[string]any {
		var scopes []string
		for _, sc := range r.Scopes {
			scopes = append(scopes, sc.Name)
		}
		return map[string]any{"name": r.Name, "description": r.Description, "scopes": scopes}
	})
}

func (e *idEnv) scopeState(id uuid.UUID) string {
	sc, err := e.db.GetScope(e.ctx, id)
	return e.stateOf(err, func() map[string]any {
		return map[string]any{"name": sc.Name, "description": sc.Description}
	})
}

func (e *idEnv) clientState(clientID string) string {
	c, err := e.db.GetServiceClientByClientID(permiso.WithFreshRead(e.ctx), clientID)
	return e.stateOf(err, func() map[string]any {
		return map[string]any{"name": c.Name, "active": c.IsActive, "secret": c.SecretHash, "previous": c.PreviousSecretHash,
			"scopes": c.ScopeNames(), "updated_at": c.UpdatedAt, "trusted": c.IsTrusted, "redirect_uris": c.RedirectURIs,
			"post_logout_redirect_uris": c.PostLogoutRedirectURIs, "grant_types": c.GrantTypes}
	})
}

// browserClient creates a confidential client of the browser flow
// without scopes (redirect URI, authorization_code grant).
func (e *idEnv) browserClient() string {
	e.t.Helper()
	_, hash := permiso.NewClientSecret()
	id := e.name("browser-client-")
	if _, err := e.db.CreateServiceClient(e.ctx, permiso.ServiceClient{ClientID: id, SecretHash: hash, Name: id,
		ClientType: "confidential", IsActive: true, RedirectURIs: []string{"https://app.example/cb"},
		GrantTypes: []string{permiso.GrantTypeAuthorizationCode}}, nil); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// sessionState reads a session and whether an access token of it still
// authenticates.
func (e *idEnv) sessionState(sid, access string) string {
	id := uuid.MustParse(sid)
	x, err := e.db.GetSession(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	_, aerr := e.auth.Authenticate(e.ctx, access, nil)
	return js(map[string]any{"revoked_at": x.RevokedAt, "expires_at": x.ExpiresAt, "token_alive": aerr == nil})
}

func (e *idEnv) tokenState(token string) string {
	_, err := e.auth.Authenticate(e.ctx, token, nil)
	return js(map[string]any{"alive": err == nil})
}

// exists reads whether a user, role or client of that name exists.
func (e *idEnv) exists(kind, name string) string {
	var err error
	switch kind {
	case "user":
		_, err = e.db.GetUserByUsername(e.ctx, name)
	case "role":
		_, err = e.db.GetRoleByName(e.ctx, name)
	case "scope":
		_, err = e.db.GetScopeByName(e.ctx, name)
	case "client":
		_, err = e.db.GetServiceClientByClientID(permiso.WithFreshRead(e.ctx), name)
	}
	switch {
	case errors.Is(err, permiso.ErrNotFound):
		return "absent"
	case err != nil:
		e.t.Fatal(err)
	}
	return "present"
}

// serviceClient creates a confidential client holding the scopes.
func (e *idEnv) serviceClient(scopes ...string) (clientID, secret string) {
	e.t.Helper()
	return e.createClient("target-client-", scopes...)
}

func (e *idEnv) accessTokenID(token string) string {
	p, err := e.auth.Authenticate(e.ctx, token, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return p.Claims.ID
}

// dmCases are the rows of the matrix.
func dmCases() []dmCase {
	api := "/api/v1"
	var cs []dmCase
	add := func(c dmCase) {
		if c.ok == 0 {
			c.ok = http.StatusOK
		}
		cs = append(cs, c)
	}

	// Users: every change of a user, on every kind of user.
	for _, k := range dmUserKinds {
		kind := k.name
		userCase := func(method, suffix, what, action string, ok int, body func(x *dmCell, u permiso.User) any) {
			add(dmCase{route: method + " " + api + "/users/{user_id}" + suffix, target: kind + ": " + what, scope: scopeUsers,
				allow: k.allow, ok: ok, fixture: func(x *dmCell) {
					u := x.targetUser(kind, scopeUsers)
					x.path = usersPath + "/" + u.ID.String() + suffix
					if body != nil {
						x.body = body(x, u)
					}
					x.state = func() string { return x.e.userState(u.ID) }
					x.audit = dmAudit{action: action, targetID: u.ID.String()}
				}})
		}
		userCase("PUT", "", "display_name", "user.update", 200, func(x *dmCell, _ permiso.User) any {
			return map[string]any{"display_name": x.e.name("Changed ")}
		})
		userCase("PUT", "", "email", "user.update", 200, func(x *dmCell, _ permiso.User) any {
			return map[string]any{"email": x.e.name("taken-over-") + "@example.com"}
		})
		userCase("PUT", "", "is_active false", "user.update", 200, func(*dmCell, permiso.User) any {
			return map[string]any{"is_active": false}
		})
		userCase("DELETE", "", "delete", "user.delete", 204, nil)
		userCase("PUT", "/password", "set the password", "password.change", 200, func(x *dmCell, _ permiso.User) any {
			return map[string]any{"new_password": x.e.name("Reset-Pw-") + "-7y!"}
		})
		add(dmCase{route: "DELETE " + api + "/users/{user_id}/mfa", target: kind + ": reset second factors", scope: scopeUsers, allow: k.allow,
			ok: http.StatusNoContent, fixture: func(x *dmCell) {
				u := x.targetUser(kind, scopeUsers)
				if _, err := x.e.db.PutPendingMFAFactor(x.e.ctx, permiso.MFAFactor{UserID: u.ID, Kind: "totp", Secret: "sealed"}); err != nil {
					x.e.t.Fatal(err)
				}
				x.path = usersPath + "/" + u.ID.String() + "/mfa"
				x.state = func() string {
					fs, err := x.e.db.ListMFAFactors(x.e.ctx, u.ID)
					if err != nil {
						x.e.t.Fatal(err)
					}
					return fmt.Sprintf("%d factors", len(fs))
				}
				x.audit = dmAudit{action: "mfa.reset", targetID: u.ID.String()}
			}})
		userCase("PUT", "/roles", "add a role without scopes", "user.roles", 200, func(x *dmCell, u permiso.User) any {
			ids := []string{x.e.role("empty-").ID.String()}
			for _, r := range u.Roles {
				ids = append(ids, r.ID.String())
			}
			return map[string]any{"role_ids": ids}
		})
		add(dmCase{route: "POST " + api + "/users/{user_id}/unlock", target: kind + ": unlock", scope: scopeUsers, allow: k.allow,
			fixture: func(x *dmCell) {
				u := x.targetUser(kind, scopeUsers)
				until := time.Now().Add(time.Hour).UTC()
				if _, err := x.e.db.UpdateUser(x.e.ctx, u.ID, func(v *permiso.User) error {
					v.FailedLoginAttempts, v.LockedUntil = 3, &until
					return nil
				}); err != nil {
					x.e.t.Fatal(err)
				}
				x.path = usersPath + "/" + u.ID.String() + "/unlock"
				x.state = func() string { return x.e.userState(u.ID) }
				x.audit = dmAudit{action: "user.unlock", targetID: u.ID.String()}
			}})
	}

	// Giving roles: a role whose scopes the caller holds, one holding a
	// scope it lacks, and role admin, through the three routes that set
	// roles.
	roleKinds := []struct {
		name  string
		allow dmTier
		role  func(x *dmCell) permiso.Role
	}{
		{"role whose scopes the caller holds", tierDelegated, func(x *dmCell) permiso.Role { return x.e.role("held-", scopeUsers) }},
		{"role holding a scope the caller lacks", tierAdmin, func(x *dmCell) permiso.Role { return x.e.role("lacked-", scopeAdminSystem) }},
		{"role admin", tierAdmin, func(x *dmCell) permiso.Role { return x.builtin(permiso.RoleAdmin) }},
	}
	for _, rk := range roleKinds {
		add(dmCase{route: "PUT " + api + "/users/{user_id}/roles", target: "plain user: give " + rk.name, scope: scopeUsers, allow: rk.allow,
			fixture: func(x *dmCell) {
				u := x.targetUser("plain user", scopeUsers)
				x.path = usersPath + "/" + u.ID.String() + "/roles"
				x.body = map[string]any{"role_ids": []string{x.builtin(permiso.RoleUser).ID.String(), rk.role(x).ID.String()}}
				x.state = func() string { return x.e.userState(u.ID) }
				x.audit = dmAudit{action: "user.roles", targetID: u.ID.String()}
			}})
		add(dmCase{route: "PUT " + api + "/users/{user_id}", target: "plain user: role_ids with " + rk.name, scope: scopeUsers, allow: rk.allow,
			fixture: func(x *dmCell) {
				u := x.targetUser("plain user", scopeUsers)
				x.path = usersPath + "/" + u.ID.String()
				x.body = map[string]any{"role_ids": []string{x.builtin(permiso.RoleUser).ID.String(), rk.role(x).ID.String()}}
				x.state = func() string { return x.e.userState(u.ID) }
				x.audit = dmAudit{action: "user.update", targetID: u.ID.String()}
			}})
		add(dmCase{route: "POST " + api + "/users", target: "new user with " + rk.name, scope: scopeUsers, allow: rk.allow, ok: 201,
			fixture: func(x *dmCell) {
				name := x.e.name("created")
				x.path = usersPath
				x.body = map[string]any{"username": name, "email": name + "@example.com", "password": idPassword,
					"role_ids": []string{rk.role(x).ID.String()}}
				x.state = func() string { return x.e.exists("user", name) }
				x.audit = dmAudit{action: "user.create", key: "username", value: name}
			}})
	}
	newUser := func(what string, allow dmTier, extra map[string]any) {
		add(dmCase{route: "POST " + api + "/users", target: what, scope: scopeUsers, allow: allow, ok: 201,
			fixture: func(x *dmCell) {
				name := x.e.name("created")
				body := map[string]any{"username": name, "email": name + "@example.com", "password": idPassword}
				for k, v := range extra {
					body[k] = v
				}
				x.path, x.body = usersPath, body
				x.state = func() string { return x.e.exists("user", name) }
				x.audit = dmAudit{action: "user.create", key: "username", value: name}
			}})
	}
	newUser("new plain user (role user)", tierDelegated, nil)
	newUser("new superuser", tierSuper, map[string]any{"is_superuser": true})
	add(dmCase{route: "PUT " + api + "/users/{user_id}", target: "plain user: is_superuser true", scope: scopeUsers, allow: tierSuper,
		fixture: func(x *dmCell) {
			u := x.targetUser("plain user", scopeUsers)
			x.path = usersPath + "/" + u.ID.String()
			x.body = map[string]any{"is_superuser": true}
			x.state = func() string { return x.e.userState(u.ID) }
			x.audit = dmAudit{action: "user.update", targetID: u.ID.String()}
		}})

	// The caller's own account.
	add(dmCase{route: "PUT " + api + "/users/me", target: "own profile", allow: tierSelf, perCaller: true,
		fixture: func(x *dmCell) {
			x.path = usersPath + "/me"
			x.body = map[string]any{"display_name": x.e.name("Me ")}
			if x.caller.user != nil {
				x.state = func() string { return x.e.userState(x.caller.user.ID) }
			}
		}})
	add(dmCase{route: "PUT " + api + "/users/me/password", target: "own password", allow: tierSelf, perCaller: true,
		fixture: func(x *dmCell) {
			next := x.e.name("Own-Pw-") + "-9x!"
			x.path = usersPath + "/me/password"
			x.body = map[string]any{"current_password": x.caller.password, "new_password": next}
			x.newPassword = next
			if x.caller.user != nil {
				x.state = func() string { return x.e.userState(x.caller.user.ID) }
			}
		}})
	// The caller's own second factors (docs/mfa.md). Only the start of an
	// enrollment changes something here; the other routes are sent without
	// a code (422), so that no caller's lockout counter moves.
	add(dmCase{route: "POST " + api + "/users/me/mfa/totp", target: "own enrollment", allow: tierSelf, perCaller: true,
		ok: http.StatusCreated, fixture: func(x *dmCell) {
			x.path = usersPath + "/me/mfa/totp"
			if x.caller.user != nil {
				id := x.caller.user.ID
				x.state = func() string {
					f, err := x.e.db.GetMFAFactor(x.e.ctx, id, "totp")
					if err != nil {
						return "none"
					}
					return f.Secret
				}
			}
		}})
	for _, r := range []struct {
		method, suffix string
		body           map[string]any
	}{
		{"POST", "/totp/confirm", map[string]any{"code": ""}},
		{"POST", "/recovery-codes", map[string]any{"code": ""}},
		{"DELETE", "/totp", map[string]any{"password": "", "code": ""}},
	} {
		add(dmCase{route: r.method + " " + api + "/users/me/mfa" + r.suffix, target: "own second factor", allow: tierSelf, perCaller: true,
			ok: http.StatusUnprocessableEntity, same: true, fixture: func(x *dmCell) {
				x.path = usersPath + "/me/mfa" + r.suffix
				x.body = r.body
			}})
	}
	add(dmCase{route: "POST " + api + "/auth/logout", target: "own session", allow: tierSelf, perCaller: true,
		fixture: func(x *dmCell) {
			x.path = api + "/auth/logout"
			if x.caller.user == nil {
				return
			}
			tr := x.e.login(x.caller.user.Username, x.caller.password, "")
			x.bearer = tr.AccessToken
			x.state = func() string { return x.e.tokenState(tr.AccessToken) }
		}})

	// Roles.
	newRole := func(what string, allow dmTier, scopes ...string) {
		add(dmCase{route: "POST " + api + "/roles", target: what, scope: scopeUsers, allow: allow, ok: 201,
			fixture: func(x *dmCell) {
				name := x.e.name("new-role-")
				ids := []string{}
				for _, n := range scopes {
					ids = append(ids, x.scopeID(n))
				}
				x.path, x.body = rolesPath, map[string]any{"name": name, "scope_ids": ids}
				x.state = func() string { return x.e.exists("role", name) }
				x.audit = dmAudit{action: "role.create", key: "name", value: name}
			}})
	}
	newRole("new role without scopes", tierDelegated)
	newRole("new role with the caller's scope", tierDelegated, scopeUsers)
	newRole("new role with a scope the caller lacks", tierAdmin, scopeUsers, scopeAdminSystem)

	// Changing roles: the same three kinds as giving them.
	for _, tr := range roleKinds {
		updated, deleted := describeAndDelete(api+"/roles/{role_id}", rolesPath+"/", "role", tr.name, tr.allow, tr.name == "role admin",
			func(x *dmCell) (uuid.UUID, func() string) {
				r := tr.role(x)
				return r.ID, func() string { return x.e.roleState(r.ID) }
			})
		add(updated)
		if tr.name == "role admin" {
			deleted.ok, deleted.same = http.StatusConflict, true // built in
		}
		add(deleted)
	}
	// roleScopes: PUT /roles/{role_id}/scopes (registered as {sub}), or
	// PUT /roles/{role_id} with scope_ids when viaUpdate.
	roleScopes := func(viaUpdate bool, what string, allow dmTier, role func(x *dmCell) permiso.Role, scopes ...string) {
		route, suffix, action := "PUT "+api+"/roles/{role_id}/{sub}", "/scopes", "role.scopes"
		if viaUpdate {
			route, suffix, action = "PUT "+api+"/roles/{role_id}", "", "role.update"
		}
		add(dmCase{route: route, target: what, scope: scopeUsers, allow: allow,
			fixture: func(x *dmCell) {
				r := role(x)
				ids := []string{}
				for _, n := range scopes {
					ids = append(ids, x.scopeID(n))
				}
				x.path, x.body = rolesPath+"/"+r.ID.String()+suffix, map[string]any{"scope_ids": ids}
				x.state = func() string { return x.e.roleState(r.ID) }
				x.audit = dmAudit{action: action, targetID: r.ID.String()}
			}})
	}
	held := func(x *dmCell) permiso.Role { return x.e.role("held-", scopeUsers) }
	lacked := func(x *dmCell) permiso.Role { return x.e.role("lacked-", scopeAdminSystem) }
	roleScopes(false, "role whose scopes the caller holds: add a scope everyone holds", tierDelegated, held, scopeUsers, "read:profile")
	roleScopes(false, "role whose scopes the caller holds: add a scope the caller lacks", tierAdmin, held, scopeUsers, scopeAdminSystem)
	roleScopes(false, "role holding a scope the caller lacks: remove it", tierAdmin, lacked)
	roleScopes(true, "role whose scopes the caller holds: scope_ids with a scope everyone holds", tierDelegated, held, scopeUsers, "read:profile")
	roleScopes(true, "role whose scopes the caller holds: scope_ids with admin:logs", tierAdmin, held, scopeUsers, scopeAdminLogs)
	add(dmCase{route: "PUT " + api + "/roles/{role_id}/{sub}", target: "role admin: its own scopes again", scope: scopeUsers, allow: tierAdmin, same: true, shared: true,
		fixture: func(x *dmCell) {
			r := x.builtin(permiso.RoleAdmin)
			ids := []string{}
			for _, n := range permiso.DefaultScopes {
				ids = append(ids, x.scopeID(n))
			}
			x.path, x.body = rolesPath+"/"+r.ID.String()+"/scopes", map[string]any{"scope_ids": ids}
			x.state = func() string { return x.e.roleState(r.ID) }
			x.audit = dmAudit{action: "role.scopes", targetID: r.ID.String()}
		}})

	// Scopes.
	add(dmCase{route: "POST " + api + "/roles/scopes", target: "new scope", scope: scopeUsers, allow: tierDelegated, ok: 201,
		fixture: func(x *dmCell) {
			name := "read:" + x.e.name("matrix")
			x.path, x.body = rolesPath+"/scopes", map[string]any{"name": name}
			x.state = func() string { return x.e.exists("scope", name) }
		}})
	targetScopes := []struct {
		name  string
		allow dmTier
		scope func(x *dmCell) permiso.Scope
	}{
		{"the caller's scope", tierDelegated, func(x *dmCell) permiso.Scope { return x.mustScope(scopeUsers) }},
		{"a scope everyone holds", tierDelegated, func(x *dmCell) permiso.Scope { return x.mustScope("read:profile") }},
		{"a scope the caller lacks", tierAdmin, func(x *dmCell) permiso.Scope { return x.mustScope(scopeAdminSystem) }},
		{"a scope nobody holds", tierAdmin, func(x *dmCell) permiso.Scope {
			sc, err := x.e.db.CreateScope(x.e.ctx, permiso.Scope{Name: "read:" + x.e.name("unheld")})
			if err != nil {
				x.e.t.Fatal(err)
			}
			return sc
		}},
	}
	for _, ts := range targetScopes {
		updated, deleted := describeAndDelete(api+"/roles/scopes/{scope_id}", rolesPath+"/scopes/", "scope", ts.name, ts.allow,
			ts.name != "a scope nobody holds",
			func(x *dmCell) (uuid.UUID, func() string) {
				sc := ts.scope(x)
				return sc.ID, func() string { return x.e.scopeState(sc.ID) }
			})
		add(updated)
		if ts.name != "a scope nobody holds" {
			deleted.ok, deleted.same = http.StatusConflict, true // built in
		}
		add(deleted)
	}

	// Service clients.
	cp := api + "/service-clients"
	for _, ck := range dmClientKinds {
		clientCase := func(method, suffix, what, action string, ok int, body func(x *dmCell) any) {
			add(dmCase{route: method + " " + cp + "/{client_id}" + suffix, target: ck.name + ": " + what, scope: scopeClients, allow: ck.allow, ok: ok,
				fixture: func(x *dmCell) {
					id, _ := x.e.serviceClient(ck.scopes...)
					x.path = cp + "/" + id + suffix
					if body != nil {
						x.body = body(x)
					}
					x.state = func() string { return x.e.clientState(id) }
					x.audit = dmAudit{action: action, targetID: id}
				}})
		}
		clientCase("PUT", "", "rename", identity.ActionClientUpdate, 200, func(x *dmCell) any { return map[string]any{"name": x.e.name("Renamed ")} })
		clientCase("PUT", "", "disable", identity.ActionClientUpdate, 200, func(*dmCell) any { return map[string]any{"is_active": false} })
		clientCase("DELETE", "", "delete", identity.ActionClientDelete, 204, nil)
		clientCase("POST", "/rotate-secret", "rotate the secret", identity.ActionClientRotateSecret, 200, nil)
		clientCase("PUT", "/scopes", "set the caller's scope", identity.ActionClientScopes, 200, func(x *dmCell) any {
			return map[string]any{"scope_ids": []string{x.scopeID(scopeClients)}}
		})
	}
	for _, route := range []string{"PUT " + cp + "/{client_id}", "PUT " + cp + "/{client_id}/scopes"} {
		action := identity.ActionClientUpdate
		if strings.HasSuffix(route, "/scopes") {
			action = identity.ActionClientScopes
		}
		add(dmCase{route: route, target: "client without scopes: add a scope the caller lacks", scope: scopeClients, allow: tierAdmin,
			fixture: func(x *dmCell) {
				id, _ := x.e.serviceClient()
				_, pattern, _ := strings.Cut(route, " ")
				x.path = strings.Replace(pattern, "{client_id}", id, 1)
				x.body = map[string]any{"scope_ids": []string{x.scopeID(scopeAdminSystem)}}
				x.state = func() string { return x.e.clientState(id) }
				x.audit = dmAudit{action: action, targetID: id}
			}})
	}
	// The browser flow of a client: where codes go and whether consent is
	// asked are for a full administrator, even on a client holding
	// nothing (its codes carry the scopes of whoever signs in).
	for _, bc := range []struct {
		method, suffix, what, action string
		ok                           int
		browser                      bool
		body                         any
	}{
		{"PUT", "", "set is_trusted", identity.ActionClientUpdate, 200, false, map[string]any{"is_trusted": true}},
		{"PUT", "", "give it a redirect URI and the authorization_code grant", identity.ActionClientUpdate, 200, false,
			map[string]any{"redirect_uris": []string{"https://evil.example/cb"}, "grant_types": []string{permiso.GrantTypeAuthorizationCode}}},
		{"PUT", "", "browser client: add a redirect URI", identity.ActionClientUpdate, 200, true,
			map[string]any{"redirect_uris": []string{"https://app.example/cb", "https://evil.example/cb"}}},
		{"PUT", "", "browser client: set a post-logout redirect URI", identity.ActionClientUpdate, 200, true,
			map[string]any{"post_logout_redirect_uris": []string{"https://evil.example/out"}}},
		{"POST", "/rotate-secret", "browser client: rotate the secret", identity.ActionClientRotateSecret, 200, true, nil},
	} {
		add(dmCase{route: bc.method + " " + cp + "/{client_id}" + bc.suffix, target: "client without scopes: " + bc.what, scope: scopeClients, allow: tierAdmin, ok: bc.ok,
			fixture: func(x *dmCell) {
				var id string
				if bc.browser {
					id = x.e.browserClient()
				} else {
					id, _ = x.e.serviceClient()
				}
				x.path, x.body = cp+"/"+id+bc.suffix, bc.body
				x.state = func() string { return x.e.clientState(id) }
				x.audit = dmAudit{action: bc.action, targetID: id}
			}})
	}
	for _, nb := range []struct {
		what string
		body map[string]any
	}{
		{"new trusted client without scopes", map[string]any{"is_trusted": true}},
		{"new browser client without scopes", map[string]any{"redirect_uris": []string{"https://evil.example/cb"}, "grant_types": []string{permiso.GrantTypeAuthorizationCode}}},
	} {
		add(dmCase{route: "POST " + cp, target: nb.what, scope: scopeClients, allow: tierAdmin, ok: 201,
			fixture: func(x *dmCell) {
				id := x.e.name("new-client-")
				body := map[string]any{"name": "Matrix " + id, "client_id": id}
				for k, v := range nb.body {
					body[k] = v
				}
				x.path, x.body = cp, body
				x.state = func() string { return x.e.exists("client", id) }
				x.audit = dmAudit{action: identity.ActionClientCreate, targetID: id}
			}})
	}
	var every []string
	for _, n := range permiso.DefaultScopes {
		if strings.HasPrefix(n, "admin:") {
			every = append(every, n)
		}
	}
	for _, nc := range append(slices.Clip(dmClientKinds), dmClientKind{"client holding every admin:* scope", tierAdmin, every}) {
		add(dmCase{route: "POST " + cp, target: "new " + nc.name, scope: scopeClients, allow: nc.allow, ok: 201,
			fixture: func(x *dmCell) {
				id := x.e.name("new-client-")
				ids := []string{}
				for _, n := range nc.scopes {
					ids = append(ids, x.scopeID(n))
				}
				x.path, x.body = cp, map[string]any{"name": "Matrix " + id, "client_id": id, "scope_ids": ids}
				x.state = func() string { return x.e.exists("client", id) }
				x.audit = dmAudit{action: identity.ActionClientCreate, targetID: id}
			}})
	}

	// Sessions of other users.
	sp := api + "/sessions"
	for _, k := range dmUserKinds {
		kind := k.name
		sessionCase := func(method, suffix, what, action string, byUser bool) {
			add(dmCase{route: method + " " + sp + suffix, target: kind + ": " + what, scope: scopeAdminSessions, allow: k.allow,
				fixture: func(x *dmCell) {
					u := x.targetUser(kind, scopeAdminSessions)
					tr := x.e.login(u.Username, idPassword, "")
					x.path = sp + strings.Replace(suffix, "{session_id}", tr.SessionID, 1)
					x.audit = dmAudit{action: action, targetID: tr.SessionID}
					if byUser {
						x.path += "?user_id=" + u.ID.String()
						x.audit.targetID = u.ID.String()
					}
					x.state = func() string { return x.e.sessionState(tr.SessionID, tr.AccessToken) }
				}})
		}
		sessionCase("DELETE", "", "end every session", identity.ActionSessionRevokeAll, true)
		sessionCase("DELETE", "/{session_id}", "end a session", identity.ActionSessionRevoke, false)
		sessionCase("POST", "/{session_id}/renew", "renew a session", identity.ActionSessionRenew, false)
	}
	add(dmCase{route: "POST " + sp + "/cleanup", target: "expired sessions of everyone", scope: scopeAdminSessions, allow: tierDelegated,
		fixture: func(x *dmCell) { x.path = sp + "/cleanup" }})
	add(dmCase{route: "POST " + api + "/admin/maintenance/cleanup", target: "expired data of everyone", scope: scopeAdminSystem, allow: tierDelegated,
		fixture: func(x *dmCell) { x.path = api + "/admin/maintenance/cleanup" }})

	// An administrator revoking other users' and clients' tokens.
	for _, k := range dmUserKinds {
		kind := k.name
		for _, which := range []string{"access token", "refresh token"} {
			add(dmCase{route: "POST " + api + pathRevoke, target: kind + ": revoke an " + which, scope: scopeTokens, allow: k.allow,
				fixture: func(x *dmCell) {
					u := x.targetUser(kind, scopeTokens)
					tr := x.e.login(u.Username, idPassword, "")
					x.path = api + pathRevoke
					x.form = url.Values{"token": {tr.AccessToken}}
					x.audit = dmAudit{action: oauth2.ActionTokenRevoke, targetID: x.e.accessTokenID(tr.AccessToken)}
					if which == "refresh token" {
						x.form.Set("token", tr.RefreshToken)
						x.audit.targetID = tr.SessionID
					}
					x.state = func() string { return x.e.sessionState(tr.SessionID, tr.AccessToken) }
				}})
		}
	}
	for _, ck := range []struct {
		name   string
		allow  dmTier
		scopes []string
	}{
		{"client whose scopes the caller holds", tierDelegated, []string{scopeTokens}},
		{"client holding a scope the caller lacks", tierAdmin, []string{scopeTokens, scopeAdminSystem}},
	} {
		add(dmCase{route: "POST " + api + pathRevoke, target: ck.name + ": revoke its token", scope: scopeTokens, allow: ck.allow,
			fixture: func(x *dmCell) {
				id, secret := x.e.serviceClient(ck.scopes...)
				w := x.e.serviceToken(id, secret)
				var tr oauth2.TokenResponse
				if err := json.Unmarshal(w.Body.Bytes(), &tr); err != nil || tr.AccessToken == "" {
					x.e.t.Fatalf("token of %s: %d %s", id, w.Code, w.Body)
				}
				x.path, x.form = api+pathRevoke, url.Values{"token": {tr.AccessToken}}
				x.audit = dmAudit{action: oauth2.ActionTokenRevoke, targetID: x.e.accessTokenID(tr.AccessToken)}
				x.state = func() string { return x.e.tokenState(tr.AccessToken) }
			}})
	}
	return cs
}

func (x *dmCell) mustScope(name string) permiso.Scope {
	sc, err := x.e.db.GetScopeByName(x.e.ctx, name)
	if err != nil {
		x.e.t.Fatal(err)
	}
	return sc
}

// dmWorkers run the cases of one backend at once: most of the time of a
// request is spent waiting for the database.
const dmWorkers = 4

// dmReadOnly are the non-GET routes behind authentication that change
// nothing: they are not rows of the matrix.
var dmReadOnly = []string{
	"POST /api/v1/roles/permissions/check",
	"POST /api/v1/roles/permissions/check-bulk",
	"POST /api/v1/oauth2/userinfo",
}

// TestDelegationMatrix: the delegation rule holds on every mutating route,
// for every holder of an admin:* scope (user and service client), on each
// backend. It fails when a mutating route has no row.
func TestDelegationMatrix(t *testing.T) {
	eachIDBackend(t, func(t *testing.T, e *idEnv) {
		cases := dmCases()

		// Every mutating route behind authentication (and the token
		// revocation, which authenticates its callers itself) has rows.
		for _, ri := range e.srv.routes {
			method, _, _ := strings.Cut(ri.Pattern, " ")
			if method == "GET" || (ri.Access.public && !strings.HasSuffix(ri.Pattern, pathRevoke)) || slices.Contains(dmReadOnly, ri.Pattern) {
				continue
			}
			if !slices.ContainsFunc(cases, func(c dmCase) bool { return c.route == ri.Pattern }) {
				t.Errorf("mutating route %s has no row in the delegation matrix", ri.Pattern)
			}
		}
		for _, c := range cases {
			if !slices.ContainsFunc(e.srv.routes, func(ri routeInfo) bool { return ri.Pattern == c.route }) {
				t.Errorf("row %s (%s) names no route", c.route, c.target)
			}
		}

		// The callers.
		var callers []*dmCaller
		for _, sc := range permiso.DefaultScopes {
			if !strings.HasPrefix(sc, "admin:") {
				continue
			}
			u := e.user("holder", false, e.role("only-"+strings.TrimPrefix(sc, "admin:")+"-", sc).Name)
			callers = append(callers,
				&dmCaller{name: "user holding " + sc, scope: sc, level: tierDelegated, user: &u, password: idPassword},
				&dmCaller{name: "service client holding " + sc, scope: sc, level: tierDelegated, token: e.clientToken(sc)})
		}
		roleAdmin := e.user("roleadmin", false, "admin")
		super := e.user("super", true, "user")
		callers = append(callers,
			&dmCaller{name: "role admin holder", level: tierAdmin, user: &roleAdmin, password: idPassword},
			&dmCaller{name: "superuser", level: tierSuper, user: &super, password: idPassword})
		for _, k := range callers {
			if k.user != nil {
				k.token = e.login(k.user.Username, idPassword, "").AccessToken
			}
		}

		var mu sync.Mutex        // guards want and where
		want := map[string]int{} // delegation refusals per audit key
		where := map[string]string{}
		// runCase sends the request of c for every caller, reporting to
		// e.t. A fixture serves callers until a request is admitted and
		// changes it. orig is its state when it was made; pending are
		// the refused requests since that state was last compared
		// (once, before the fixture is used up or left).
		runCase := func(e *idEnv, c dmCase) {
			t := e.t
			var x *dmCell
			var orig string
			var pending []string
			fresh := func(k *dmCaller) {
				x = &dmCell{e: e, caller: k}
				c.fixture(x)
				if x.state != nil {
					orig = x.state()
				}
			}
			verify := func() {
				if x != nil && x.state != nil && len(pending) > 0 {
					if now := x.state(); now != orig {
						t.Errorf("%s (%s): refused requests of %s changed\n%s\ninto\n%s", c.route, c.target, strings.Join(pending, ", "), orig, now)
						x = nil
					}
				}
				pending = nil
			}
			for _, k := range callers {
				if x != nil && c.perCaller {
					verify()
					x = nil
				}
				if x == nil {
					fresh(k)
				}
				x.caller = k
				what := fmt.Sprintf("%s (%s) as %s", c.route, c.target, k.name)
				out := c.outcome(k)
				status := map[dmOutcome]int{outDone: c.ok, outRule: 403, outAccess: 403, outIgnored: 200, outNoService: 403}[out]
				changes := out == outDone && !c.same
				if changes {
					verify()
					if x == nil {
						fresh(k)
					}
				}
				w := e.matrixRequest(c, x)
				if w.Code != status {
					t.Errorf("%s: status %d, want %d: %s", what, w.Code, status, w.Body)
					x, pending = nil, nil // the fixture may have changed
					continue
				}
				if status == 403 {
					var m map[string]any
					_ = json.Unmarshal(w.Body.Bytes(), &m)
					switch {
					case out == outRule && m["error"] != "forbidden":
						t.Errorf("%s: error %v, want forbidden", what, m["error"])
					case m["error"] != "forbidden" && m["error"] != "insufficient_scope":
						t.Errorf("%s: error %v", what, m["error"])
					}
				}
				if out == outRule {
					mu.Lock()
					want[x.audit.id()]++
					where[x.audit.id()] = what
					mu.Unlock()
				}
				if out == outDone && x.newPassword != "" {
					k.password = x.newPassword
				}
				if !changes {
					pending = append(pending, k.name)
					continue
				}
				// An admitted request changes its target, which the
				// next caller then gets afresh.
				if x.state != nil {
					if after := x.state(); after == orig {
						t.Errorf("%s: answered %d but changed nothing: %s", what, w.Code, after)
					}
				}
				x = nil
			}
			verify()
		}

		// The caller's own account (which changes the callers'
		// passwords) and the built-in roles and scopes first, one case
		// at a time; then the others, which have targets of their
		// own, on a few workers (subtests running in their own
		// goroutines, so that a fixture can fail them).
		queue := make(chan dmCase, len(cases))
		for _, c := range cases {
			if c.perCaller || c.shared {
				runCase(e, c)
			} else {
				queue <- c
			}
		}
		close(queue)
		var wg sync.WaitGroup
		for i := range dmWorkers {
			wg.Go(func() {
				t.Run(fmt.Sprintf("worker %d", i), func(t *testing.T) {
					we := e.withT(t)
					for c := range queue {
						runCase(we, c)
					}
				})
			})
		}
		wg.Wait()

		// Every refusal of the delegation rule is audited as a failure
		// with reason "delegation".
		deadline := time.Now().Add(5 * time.Second)
		for {
			evs, _, err := e.db.ListAuditEvents(e.ctx, permiso.AuditFilter{Result: "failure"})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, ev := range evs {
				if ev.Details["reason"] != identity.ReasonDelegation {
					continue
				}
				if ev.TargetID != nil && *ev.TargetID != "" {
					got[dmAudit{action: ev.Action, targetID: *ev.TargetID}.id()]++
				}
				for _, key := range []string{"username", "name"} {
					if v, ok := ev.Details[key].(string); ok {
						got[dmAudit{action: ev.Action, key: key, value: v}.id()]++
					}
				}
			}
			var missing []string
			for id, n := range want {
				if got[id] < n {
					missing = append(missing, fmt.Sprintf("%s: %d of %d (%s)", id, got[id], n, where[id]))
				}
			}
			if len(missing) == 0 {
				break
			}
			if time.Now().After(deadline) {
				slices.Sort(missing)
				t.Fatalf("refusals without their failure audit event:\n%s", strings.Join(missing, "\n"))
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(want) == 0 {
			t.Fatal("no request was refused by the delegation rule")
		}
	})
}

// matrixRequest sends the request of x as its caller.
func (e *idEnv) matrixRequest(c dmCase, x *dmCell) *httptest.ResponseRecorder {
	e.t.Helper()
	method, route, _ := strings.Cut(c.route, " ")
	bearer := x.caller.token
	if x.bearer != "" {
		bearer = x.bearer
	}
	if x.form == nil {
		return e.do(method, route, x.path, bearer, x.body)
	}
	body := []byte(x.form.Encode())
	r := httptest.NewRequest(method, x.path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Authorization", "Bearer "+bearer)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	e.doc.exchange(e.t, route, r, body, w, e.hostileBytes)
	return w
}

// describeAndDelete are the cases of one target of an object route (a role
// or a scope, under the admin:users scope): PUT of a new description and
// DELETE (204 when admitted). object creates the object for a request and
// returns its id and its observable state; noun names its audit events
// (noun.update, noun.delete); shared marks a built-in target.
func describeAndDelete(route, pathPrefix, noun, target string, allow dmTier, shared bool,
	object func(x *dmCell) (uuid.UUID, func() string)) (updated, deleted dmCase) {
	fixture := func(action string, body bool) func(x *dmCell) {
		return func(x *dmCell) {
			id, state := object(x)
			x.path, x.state = pathPrefix+id.String(), state
			if body {
				x.body = map[string]any{"description": x.e.name("described ")}
			}
			x.audit = dmAudit{action: noun + "." + action, targetID: id.String()}
		}
	}
	updated = dmCase{route: "PUT " + route, target: target + ": description", scope: scopeUsers, allow: allow, shared: shared,
		fixture: fixture("update", true)}
	deleted = dmCase{route: "DELETE " + route, target: target + ": delete", scope: scopeUsers, allow: allow, ok: 204, shared: shared,
		fixture: fixture("delete", false)}
	return updated, deleted
}

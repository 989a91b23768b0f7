package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/oauth2"
)

// access is who may call a route: the one permission model of
// docs/security-model.md, applied by middleware at route registration,
// never by ad-hoc checks in handlers.
type access struct {
	// public routes run without authentication.
	public bool
	// users and clients say which bearer kinds are admitted: user access
	// tokens and service-client tokens. Refresh tokens are never bearer
	// tokens (they are opaque and fail the signature check).
	users, clients bool
	// scope, when set, is the admin:* scope the route requires. The caller
	// must be an administrator for it: a superuser, a holder of role
	// admin, or a principal holding the scope now (oauth2.Principal.Can).
	scope string
	// self names a path parameter holding a user id; that user is admitted
	// too (as themselves, not as an administrator).
	self string
	// selfQuery names a query parameter holding a user id: a user is
	// admitted as themselves when it is absent or names them; naming
	// anyone else needs an administrator for scope.
	selfQuery string
	// mfaEnrollment admits, besides a user's access token, the mfa_token
	// of an mfa_enrollment_required answer as the bearer (the enrollment
	// routes only; docs/mfa.md, "Enrollment at sign-in").
	mfaEnrollment bool

	// limit is the route's own per-IP limit (RATE_LIMIT_LOGIN,
	// _REGISTER, ...), counted in one batch with RATE_LIMIT_API and
	// settled before the route's handler runs (and before it reads the
	// body); it fails closed.
	limit limitKind
	// settlesLimits says that the route's handler is a settlingHandler
	// (registered with handleSettling): it passes the request's limit
	// batch to the service call that sends the request's first batch of
	// checks, and the route settles the batch after that call, before the
	// handler's reply is written (checks.go).
	settlesLimits bool
}

// The access rules routes are registered with.
var (
	// accessPublic: anyone, no token.
	accessPublic = access{public: true}
	// accessUser: any active user with an access token.
	accessUser = access{users: true}
	// accessEnroll: accessUser, or the mfa_token of an
	// mfa_enrollment_required answer (oauth2.AuthenticateMFAEnrollment).
	accessEnroll = access{users: true, mfaEnrollment: true}
)

// accessLimited admits anyone, without a token, under the per-IP limit
// of kind.
func accessLimited(kind limitKind) access { return access{public: true, limit: kind} }

// accessSettling admits anyone, without a token, to a route that settles
// its own limits (the token and introspection endpoints, which
// authenticate their callers themselves).
var accessSettling = access{public: true, settlesLimits: true}

// accessAdmin admits administrators for scope: superusers, role admin,
// and users or service clients holding scope.
func accessAdmin(scope string) access { return access{users: true, clients: true, scope: scope} }

// accessSelfOrAdmin admits the user named by the path parameter param, and
// administrators for scope.
func accessSelfOrAdmin(param, scope string) access {
	return access{users: true, clients: true, scope: scope, self: param}
}

// accessOwnOrAdmin admits any user acting on their own resources, and
// administrators for scope acting on anyone's (the user named by the query
// parameter param, e.g. ?user_id=).
func accessOwnOrAdmin(param, scope string) access {
	return access{users: true, clients: true, scope: scope, selfQuery: param}
}

// routeInfo records one registered route and its access rule, so tests can
// check every route against every kind of caller, and the OpenAPI document
// against the routes that exist.
type routeInfo struct {
	Pattern string // "METHOD /path"
	Access  access
}

// handle registers h for pattern behind the access rule a, and behind
// wholeQuery: a query string that cannot be parsed whole is refused first.
// The request's limit batch (checks.go) is settled before h runs: by the
// bearer check of a guarded route, or before h for a public one. The
// public routes under /auth/ are the OAuth endpoints, whose errors use
// the RFC 6749 envelope. A route that settles its own limits is
// registered with handleSettling.
func (s *server) handle(pattern string, a access, h http.Handler) {
	if a.settlesLimits {
		panic("httpapi: route " + pattern + " settles its own limits: register it with handleSettling")
	}
	s.register(pattern, a, func(w http.ResponseWriter, r *http.Request, limits *permiso.Limits, oauth bool) {
		if !a.public {
			s.guard(w, r, a, limits, h)
			return
		}
		if s.settleLimits(w, r, limits, oauth) {
			h.ServeHTTP(w, r)
		}
	})
}

// handleSettling registers h for pattern behind the access rule a, which
// must say that the route settles its own limits: h gets the request's
// limit batch, and its reply is written only once the batch is settled.
func (s *server) handleSettling(pattern string, a access, h settlingHandler) {
	if !a.settlesLimits || !a.public {
		panic("httpapi: route " + pattern + " is registered with handleSettling but its access entry is not accessSettling")
	}
	s.register(pattern, a, func(w http.ResponseWriter, r *http.Request, limits *permiso.Limits, oauth bool) {
		answer := h(r, limits)
		if s.settleLimits(w, r, limits, oauth) {
			answer(w)
		}
	})
}

// register records the route and mounts serve for it, with the request's
// limit batch built from a.
func (s *server) register(pattern string, a access, serve func(w http.ResponseWriter, r *http.Request, limits *permiso.Limits, oauth bool)) {
	s.routes = append(s.routes, routeInfo{Pattern: pattern, Access: a})
	_, path, _ := strings.Cut(pattern, " ")
	oauth := a.public && s.isOAuthPath(path)
	page := s.isPagePath(path)
	s.mux.Handle(pattern, s.wholeQuery(oauth, page, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, s.requestLimits(r, a), oauth)
	})))
}

// actingAsAdmin reports whether the caller was admitted as an
// administrator (rather than as the user the route is about). Handlers use
// it to decide which fields a caller may change (docs/security-model.md: a non-admin
// changes only profile fields).
func actingAsAdmin(ctx context.Context) bool {
	info := infoFrom(ctx)
	return info != nil && info.principal != nil && info.asAdmin
}

var (
	errServiceToken = permiso.Errorf(permiso.EFORBIDDEN, "Service tokens cannot be used for this route")
	errUserToken    = permiso.Errorf(permiso.EFORBIDDEN, "User tokens cannot be used for this route")
)

// guard authenticates the bearer token and applies a, then serves next.
// Failures: 401 for a missing or invalid token (RFC 6750 §3.1), 403
// forbidden for the wrong kind of token, 403 insufficient_scope when the
// caller is neither the route's self user nor an administrator for its
// scope, 503 when the revocation state cannot be read. The bearer's
// revocation lookups and the request's limits go in one batch
// (checks.go); a limit refusal answers first.
func (s *server) guard(w http.ResponseWriter, r *http.Request, a access, limits *permiso.Limits, next http.Handler) {
	p, err := s.authenticate(r, a, limits)
	if !s.settleLimits(w, r, limits, false) {
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	switch {
	case p.MFAEnrollment && !a.mfaEnrollment:
		// Defensive: authenticate admits an mfa_token only where a says.
		writeError(w, r, errNoToken)
		return
	case p.IsClient() && !a.clients:
		writeError(w, r, errServiceToken)
		return
	case p.IsUser() && !a.users:
		writeError(w, r, errUserToken)
		return
	}
	admin := !p.MFAEnrollment && (p.IsAdmin() || (a.scope != "" && p.Can(a.scope)))
	if a.scope != "" && !admin && !isSelf(r, a.self, p) && !isOwnQuery(r, a.selfQuery, p) {
		writeError(w, r, permiso.Errorf(permiso.EINSUFFICIENTSCOPE, "This action requires the %s scope", a.scope))
		return
	}
	// The caller goes in the request's reqInfo, which the request-id
	// middleware made for this request alone: no copy of the request and
	// no context values per guarded request.
	r, info := s.requestInfo(r)
	info.principal, info.asAdmin = &p, admin
	next.ServeHTTP(w, r)
}

// isSelf reports whether the path parameter param names the principal's
// own user id (compared as parsed UUIDs, never as strings).
func isSelf(r *http.Request, param string, p oauth2.Principal) bool {
	if param == "" || !p.IsUser() {
		return false
	}
	id, err := uuid.Parse(r.PathValue(param))
	return err == nil && id == p.User.ID
}

// isOwnQuery reports whether a user acts on their own resources under the
// query parameter param: it is absent or names the principal's user id
// (compared as parsed UUIDs).
func isOwnQuery(r *http.Request, param string, p oauth2.Principal) bool {
	if param == "" || !p.IsUser() {
		return false
	}
	v := r.URL.Query().Get(param)
	if v == "" {
		return true
	}
	id, err := uuid.Parse(v)
	return err == nil && id == p.User.ID
}

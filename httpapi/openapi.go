package httpapi

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"

	"github.com/permiso/permiso/identity"
)

// The OpenAPI 3.1 document of the whole HTTP API (SPEC §5.3), served at
// OPENAPI_URL. It is built from the catalogue below for the configured
// paths (API_V1_PREFIX, METRICS_PATH, OPENAPI_URL, DOCS_URL, REDOC_URL).
// TestOpenAPICoversRoutes fails when a registered route is missing here or
// a documented one is not registered, and the handler tests validate real
// responses against these schemas.

// schema is a JSON Schema (2020-12, the dialect of OpenAPI 3.1).
type schema = map[string]any

func ref(name string) schema { return schema{"$ref": "#/components/schemas/" + name} }
func str() schema            { return schema{"type": "string"} }
func strOrNull() schema      { return schema{"type": []string{"string", "null"}} }
func dateTime() schema       { return schema{"type": "string", "format": "date-time"} }
func dateTimeOrNull() schema {
	return schema{"type": []string{"string", "null"}, "format": "date-time"}
}
func uuidStr() schema   { return schema{"type": "string", "format": "uuid"} }
func integer() schema   { return schema{"type": "integer"} }
func intOrNull() schema { return schema{"type": []string{"integer", "null"}} }
func number() schema    { return schema{"type": "number"} }
func boolean() schema   { return schema{"type": "boolean"} }
func arrayOf(items schema) schema {
	return schema{"type": "array", "items": items}
}
func enum(values ...string) schema { return schema{"type": "string", "enum": values} }
func anyObject() schema            { return schema{"type": "object"} }
func mapOf(v schema) schema        { return schema{"type": "object", "additionalProperties": v} }

// object is a closed object: every property listed, all of them required
// (responses send every field, null when unset) unless optional names
// them.
func object(props schema, optional ...string) schema {
	var req []string
	for k := range props {
		opt := false
		for _, o := range optional {
			opt = opt || o == k
		}
		if !opt {
			req = append(req, k)
		}
	}
	sort.Strings(req)
	s := schema{"type": "object", "properties": props, "additionalProperties": false}
	if len(req) > 0 {
		s["required"] = req
	}
	return s
}

// input is an open request object: no field required unless listed.
func input(props schema, required ...string) schema {
	s := schema{"type": "object", "properties": props}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

func between(s schema, lo, hi int) schema {
	out := schema{}
	for k, v := range s {
		out[k] = v
	}
	switch s["type"] {
	case "string":
		out["minLength"], out["maxLength"] = lo, hi
	default:
		out["minimum"], out["maximum"] = lo, hi
	}
	return out
}

func describe(s schema, d string) schema {
	out := schema{"description": d}
	for k, v := range s {
		out[k] = v
	}
	return out
}

// param is a path or query parameter.
type param struct {
	name, in, desc string
	schema         schema
	required       bool
}

func pathParam(name, desc string) param { return param{name, "path", desc, str(), true} }
func query(name, desc string, s schema) param {
	return param{name: name, in: "query", desc: desc, schema: s}
}

var pagingParams = []param{
	query("page", "Page number, from 1.", between(integer(), 1, 1000000)),
	query("per_page", "Items per page.", between(integer(), 1, 100)),
}

// op is one documented operation.
type op struct {
	method, path string // path with "{api}" for API_V1_PREFIX
	// serves, when set, is the registered pattern's path that serves this
	// operation (one ServeMux pattern may serve several documented paths).
	serves       string
	tag, summary string
	desc         string
	// auth: "public", "bearer", "user", "admin:<scope>", "token" (optional
	// client Basic), "client-or-bearer".
	auth     string
	params   []param
	body     schema // JSON request body
	form     schema // form request body (OAuth endpoints)
	formJSON bool   // the form body may also be sent as JSON
	status   int    // success status
	response schema // success body; nil for no body
	html     bool   // success is an HTML page
	textOK   string // success content type for non-JSON bodies
	oauth    bool   // errors use the RFC 6749 envelope
	errors   []int  // extra documented error statuses
	// errorDesc, when set, describes a status instead of the generic
	// errorText (several errors share it).
	errorDesc map[int]string
}

// tooManyAttempts describes the 429 of the routes that check a password
// under the login lockout (docs/abuse-resistance.md).
var tooManyAttempts = map[int]string{429: "rate_limit_exceeded (a request rate limit), or too_many_attempts: as many password checks for this account are in flight as MAX_LOGIN_ATTEMPTS admits; nothing was checked or counted, retry after Retry-After seconds"}

// openAPIOps returns the catalogue for the server's options.
func (s *server) openAPIOps() []op {
	opts := s.opts
	ops := []op{
		{method: "GET", path: "/", tag: "operations", summary: "Service name, version and links", auth: "public",
			response: object(schema{"message": str(), "version": str(), "environment": str(), "docs": str(), "health": str()})},
		{method: "GET", path: "/health", tag: "operations", summary: "Health with database and Redis checks", auth: "public",
			response: ref("Health"), errors: []int{503}},
		{method: "GET", path: "/health/live", tag: "operations", summary: "Liveness (process only)", auth: "public",
			response: object(schema{"status": enum("alive")})},
		{method: "GET", path: "/health/ready", tag: "operations", summary: "Readiness (every dependency)", auth: "public",
			response: ref("Ready"), errors: []int{503}},
	}
	if s.metrics != nil && opts.MetricsPath != "" {
		ops = append(ops, op{method: "GET", path: opts.MetricsPath, tag: "operations", summary: "Prometheus metrics",
			desc: "Prometheus text exposition format. Restrict it at the proxy.", auth: "public", textOK: "text/plain"})
	}
	ops = append(ops, oauthOps()...)
	ops = append(ops, identityOps()...)
	ops = append(ops, clientOps()...)
	ops = append(ops, sessionOps()...)
	ops = append(ops, adminOps()...)
	if opts.OpenAPIURL != "" {
		ops = append(ops, op{method: "GET", path: opts.OpenAPIURL, tag: "documentation", summary: "This OpenAPI 3.1 document",
			auth: "public", response: anyObject()})
		for _, page := range []struct{ path, name string }{{opts.DocsURL, "Swagger UI"}, {opts.RedocURL, "ReDoc"}} {
			if page.path == "" {
				continue
			}
			ops = append(ops,
				op{method: "GET", path: page.path, tag: "documentation", summary: page.name + " page rendering this document",
					auth: "public", html: true},
				op{method: "GET", path: docsAssetPath(page.path), tag: "documentation", summary: "Static asset of the " + page.name + " page",
					auth: "public", params: []param{pathParam("file", "Asset file name.")}, textOK: "application/octet-stream", errors: []int{404}})
		}
	}
	return ops
}

func oauthOps() []op {
	tokenForm := input(schema{
		"grant_type":    enum("password", "refresh_token", "client_credentials"),
		"username":      str(),
		"password":      schema{"type": "string", "format": "password"},
		"refresh_token": str(),
		"scope":         describe(str(), "Space-separated scopes (RFC 6749 §3.3)."),
		"client_id":     str(),
		"client_secret": schema{"type": "string", "format": "password"},
	})
	return []op{
		{method: "POST", path: "{api}/auth/token", tag: "oauth", summary: "Token endpoint (RFC 6749 §3.2)",
			desc: "grant_type password (the default when absent), refresh_token or client_credentials. Client authentication by HTTP Basic or client_id/client_secret form fields; required for client_credentials.",
			auth: "token", form: tokenForm, response: ref("TokenResponse"), oauth: true, errors: []int{400, 401, 403, 423, 429, 503},
			errorDesc: tooManyAttempts},
		{method: "POST", path: "{api}/auth/refresh", tag: "oauth", summary: "Refresh grant (JSON or form)",
			auth: "token", form: input(schema{"refresh_token": str(), "scope": str()}, "refresh_token"), formJSON: true,
			response: ref("TokenResponse"), oauth: true, errors: []int{400, 401, 429, 503}},
		{method: "POST", path: "{api}/auth/service-token", tag: "oauth", summary: "Client credentials grant",
			auth: "token", form: input(schema{"client_id": str(), "client_secret": str(), "scope": str()}),
			response: ref("TokenResponse"), oauth: true, errors: []int{400, 401, 429, 503}},
		{method: "POST", path: "{api}/auth/introspect", tag: "oauth", summary: "Token introspection (RFC 7662)",
			desc: "Callers: an authenticated service client, a bearer with admin:tokens, or a user asking about their own token. Inactive tokens give exactly {\"active\": false}.",
			auth: "client-or-bearer", form: input(schema{"token": str(), "token_type_hint": enum("access_token", "refresh_token")}, "token"), formJSON: true,
			response: ref("Introspection"), oauth: true, errors: []int{400, 401, 503}},
		{method: "POST", path: "{api}/auth/revoke", tag: "oauth", summary: "Token revocation (RFC 7009)",
			desc: "Callers: the token's owner (its user, or the client it was issued to), or a bearer with admin:tokens. A foreign token is left alone with a 200. An administrator revoking a token of a user or client it may not act on (a superuser's, by anyone but a superuser; a more privileged user's or client's, by a delegated administrator) gets 403 forbidden and nothing is revoked (docs/security-model.md).",
			auth: "client-or-bearer", form: input(schema{"token": str(), "token_type_hint": enum("access_token", "refresh_token")}, "token"), formJSON: true,
			response: anyObject(), oauth: true, errors: []int{400, 401, 403, 503}},
		{method: "POST", path: "{api}/auth/logout", tag: "oauth", summary: "End the current session, or all with {\"all\": true}",
			auth: "user", body: input(schema{"all": boolean()}),
			response: object(schema{"message": str(), "sessions_terminated": integer()})},
		{method: "POST", path: "{api}/auth/change-password", tag: "oauth", summary: "Change an expired password",
			auth: "public", form: input(schema{"username": str(), "current_password": str(), "new_password": str()}, "username", "current_password", "new_password"), formJSON: true,
			response: anyObject(), oauth: true, errors: []int{400, 401, 423, 429, 503}, errorDesc: tooManyAttempts},
		{method: "GET", path: "/.well-known/oauth-authorization-server", tag: "discovery", summary: "Authorization server metadata (RFC 8414)",
			auth: "public", response: anyObject()},
		{method: "GET", path: "/.well-known/openid-configuration", tag: "discovery", summary: "The same metadata at the OpenID path",
			auth: "public", response: anyObject()},
		{method: "GET", path: "/.well-known/jwks.json", tag: "discovery", summary: "JSON Web Key Set (RFC 7517)",
			auth: "public", response: schema{"type": "object", "required": []string{"keys"}, "properties": schema{"keys": arrayOf(anyObject())}}},
	}
}

func clientOps() []op {
	admin := "admin:" + "clients"
	id := pathParam("client_id", "The client's public client_id (not the row id).")
	return []op{
		{method: "GET", path: "{api}/service-clients", tag: "service-clients", summary: "List service clients",
			desc: "Ordered by created_at, id.", auth: admin,
			params: append([]param{
				query("search", "Substring of name, client_id or description (case-insensitive).", str()),
				query("is_active", "Filter by status.", boolean()),
				query("is_trusted", "Filter by trust.", boolean()),
				query("client_type", "confidential or public.", enum("confidential", "public")),
				query("scope_id", "Only clients holding this scope.", uuidStr()),
			}, pagingParams...),
			response: object(schema{"clients": arrayOf(ref("ServiceClient")), "total": integer(), "page": integer(), "per_page": integer(), "pages": integer()})},
		{method: "POST", path: "{api}/service-clients", tag: "service-clients", summary: "Create a service client",
			desc: "The secret is generated by the server and returned once, in this response; only its hash is stored.",
			auth: admin, body: ref("ServiceClientCreate"), status: 201,
			response: object(schema{"client": ref("ServiceClient"), "client_secret": str()}), errors: []int{400, 409}},
		{method: "GET", path: "{api}/service-clients/stats/overview", tag: "service-clients", summary: "Client counts and today's token requests",
			auth: admin, response: object(schema{"total_clients": integer(), "active_clients": integer(), "trusted_clients": integer(),
				"total_requests_today": integer(),
				"most_active_clients":  arrayOf(object(schema{"client_id": str(), "requests": integer()}))})},
		{method: "GET", path: "{api}/service-clients/{client_id}", tag: "service-clients", summary: "Get a service client",
			auth: admin, params: []param{id}, response: ref("ServiceClient")},
		{method: "PUT", path: "{api}/service-clients/{client_id}", tag: "service-clients", summary: "Update a service client",
			desc: "Absent or null fields are unchanged; an empty string clears an optional text field; scope_ids replaces the scopes.",
			auth: admin, params: []param{id}, body: ref("ServiceClientUpdate"), response: ref("ServiceClient"), errors: []int{400}},
		{method: "DELETE", path: "{api}/service-clients/{client_id}", tag: "service-clients", summary: "Delete a service client",
			desc: "Its tokens stop working at once; its sessions and refresh tokens are deleted with it.",
			auth: admin, params: []param{id}, status: 204},
		{method: "POST", path: "{api}/service-clients/{client_id}/rotate-secret", tag: "service-clients", summary: "Rotate the client secret",
			desc: "Returns a new secret once. The old secret stops working at once, or after overlap_seconds. current_secret, when given, must match.",
			auth: admin, params: []param{id},
			body:     input(schema{"current_secret": str(), "overlap_seconds": between(integer(), 0, identity.MaxSecretOverlap)}),
			response: object(schema{"message": str(), "client_id": str(), "client_secret": str(), "previous_secret_expires_at": dateTimeOrNull()})},
		{method: "PUT", path: "{api}/service-clients/{client_id}/scopes", tag: "service-clients", summary: "Replace the client's scopes",
			auth: admin, params: []param{id}, body: input(schema{"scope_ids": arrayOf(uuidStr())}, "scope_ids"), response: ref("ServiceClient"), errors: []int{400}},
		{method: "GET", path: "{api}/service-clients/{client_id}/permissions", tag: "service-clients", summary: "The client's scopes by resource",
			auth: admin, params: []param{id},
			response: object(schema{"client_id": str(), "scopes": arrayOf(str()), "resources": mapOf(arrayOf(str())), "can_access_admin": boolean()})},
		{method: "GET", path: "{api}/service-clients/{client_id}/rate-limit", tag: "service-clients", summary: "Live per-client rate-limit counters",
			desc: "The counters the token endpoint enforces, read without counting a request.",
			auth: admin, params: []param{id}, response: ref("ClientRateLimit")},
	}
}

func sessionOps() []op {
	own, admin := "own:admin:sessions", "admin:sessions"
	userID := query("user_id", "Another user's id (requires admin:sessions); default: the caller.", uuidStr())
	sid := pathParam("session_id", "Session id.")
	return []op{
		{method: "GET", path: "{api}/sessions", tag: "sessions", summary: "List active sessions",
			auth: own, params: []param{userID},
			response: object(schema{"sessions": arrayOf(ref("Session")), "total": integer()})},
		{method: "DELETE", path: "{api}/sessions", tag: "sessions", summary: "End every active session",
			desc: "Revokes each session's refresh tokens and access tokens at once, the current session included.",
			auth: own, params: []param{userID},
			response: object(schema{"message": str(), "sessions_terminated": integer()})},
		{method: "DELETE", path: "{api}/sessions/{session_id}", tag: "sessions", summary: "End one session",
			desc: "Its refresh-token family and access tokens stop working at once, on every instance.",
			auth: own, params: []param{sid}, response: object(schema{"message": str(), "session_id": uuidStr()})},
		{method: "POST", path: "{api}/sessions/{session_id}/renew", tag: "sessions", summary: "Renew a session",
			desc: "expires_at = now + the refresh-token lifetime (never earlier than before); a revoked or expired session is a 422.",
			auth: own, params: []param{sid}, response: object(schema{"message": str(), "session_id": uuidStr(), "expires_at": dateTime()})},
		{method: "GET", path: "{api}/sessions/stats", tag: "sessions", summary: "Session counts",
			auth: admin, response: object(schema{"active_sessions": integer(), "sessions_created_today": integer(),
				"expired_sessions": integer(), "revoked_sessions": integer(), "total_sessions": integer()})},
		{method: "POST", path: "{api}/sessions/cleanup", tag: "sessions", summary: "Delete expired sessions",
			auth: admin, response: object(schema{"message": str(), "sessions_cleaned": integer()})},
	}
}

func adminOps() []op {
	window := []param{
		query("since", "Start of the window (RFC 3339, inclusive).", dateTime()),
		query("until", "End of the window (RFC 3339, exclusive).", dateTime()),
		query("hours", "The last N hours, when since is not given.", between(integer(), 1, 24*366)),
	}
	filters := append([]param{
		query("event_type", "Action, exact or a prefix ending in '.' (login.).", str()),
		query("action", "Same as event_type.", str()),
		query("user_id", "Events by or about this user (actor or target).", str()),
		query("actor_id", "Events by this actor.", str()),
		query("result", "success or failure.", enum("success", "failure")),
	}, window...)
	filters = append(filters, pagingParams...)
	page := func(key string) schema {
		return object(schema{key: arrayOf(ref("AuditEvent")), "total": integer(), "page": integer(), "per_page": integer(), "pages": integer()})
	}
	grants := object(schema{"password": integer(), "refresh_token": integer(), "client_credentials": integer(), "total": integer()})
	return []op{
		{method: "GET", path: "{api}/admin/dashboard/stats", tag: "admin", summary: "Dashboard figures", auth: "admin:users",
			response: ref("Dashboard")},
		{method: "GET", path: "{api}/admin/system/health", tag: "admin", summary: "Dependencies with latency, and the process",
			auth: "admin:system", response: ref("SystemHealth")},
		{method: "GET", path: "{api}/admin/security/events", tag: "admin", summary: "Security events from the audit log",
			desc: "Logins and failures, lockouts, client authentication failures, refresh-token reuse, revocations, ended sessions, password changes. Default window: 24 hours.",
			auth: "admin:security", params: filters, response: page("events")},
		{method: "GET", path: "{api}/admin/audit/activity", tag: "admin", summary: "Every audit event", auth: "admin:audit",
			params: filters, response: page("activities")},
		{method: "GET", path: "{api}/admin/reports/usage", tag: "admin", summary: "Usage report over the last N days",
			auth: "admin:users", params: []param{query("days", "Days, today included.", between(integer(), 1, 365))},
			response: object(schema{
				"report_period":  object(schema{"start_date": dateTime(), "end_date": dateTime(), "days": integer()}),
				"user_activity":  object(schema{"new_users": integer(), "active_users": integer()}),
				"authentication": object(schema{"logins": integer(), "failed_logins": integer()}),
				"tokens_issued":  grants,
				"daily": arrayOf(object(schema{"date": schema{"type": "string", "format": "date"}, "logins": integer(),
					"failed_logins": integer(), "tokens_issued": grants})),
			})},
		{method: "POST", path: "{api}/admin/maintenance/cleanup", tag: "admin", summary: "Delete expired data",
			desc: "Expired refresh tokens, sessions and action tokens; expired account locks; audit events older than AUDIT_RETENTION_DAYS.",
			auth: "admin:system", response: object(schema{"timestamp": dateTime(), "total_items": integer(),
				"operations": arrayOf(object(schema{"operation": str(), "items_removed": integer()}))})},
		{method: "GET", path: "{api}/admin/logs/errors", tag: "admin", summary: "Recent error log records of this instance",
			desc: "Kept in a bounded in-memory ring.", auth: "admin:logs",
			params: append([]param{
				query("level", "ERROR (default), CRITICAL or ALL.", str()),
				query("hours", "The last N hours.", between(integer(), 1, 168)),
			}, pagingParams...),
			response: object(schema{"logs": arrayOf(object(schema{"timestamp": dateTime(), "level": str(), "logger": str(),
				"message": str(), "details": mapOf(str())})),
				"total": integer(), "page": integer(), "per_page": integer(), "pages": integer(), "capacity": integer(),
				"available_levels": arrayOf(str())})},
	}
}

// openAPISchemas are the shared component schemas.
func openAPISchemas() schema {
	out := identitySchemas() // issue 4's objects (openapi_identity.go)
	for k, v := range ownSchemas() {
		out[k] = v
	}
	return out
}

// ownSchemas are the component schemas of the OAuth endpoints and of
// issue 5's objects.
func ownSchemas() schema {
	clientFields := func(create bool) schema {
		p := schema{
			"name":                   between(str(), identity.ClientNameMin, identity.ClientNameMax),
			"description":            describe(strOrNull(), "At most 1000 characters."),
			"is_active":              boolean(),
			"is_trusted":             boolean(),
			"contact_email":          describe(strOrNull(), "An email address."),
			"website_url":            describe(strOrNull(), "http(s) URL, at most 500 characters."),
			"webhook_url":            describe(strOrNull(), "http(s) URL, at most 500 characters."),
			"scope_ids":              arrayOf(uuidStr()),
			"access_token_lifetime":  describe(between(integer(), identity.ClientLifetimeMin, identity.ClientLifetimeMax), "Seconds; default SERVICE_TOKEN_EXPIRE_MINUTES."),
			"refresh_token_lifetime": describe(intOrNull(), "Seconds, 3600 to 31536000."),
			"rate_limit_per_minute":  between(integer(), identity.ClientPerMinuteMin, identity.ClientPerMinuteMax),
			"rate_limit_per_hour":    between(integer(), identity.ClientPerHourMin, identity.ClientPerHourMax),
			"allowed_ips":            describe(strOrNull(), "Comma-separated IPs and CIDRs; empty or * allows any address."),
		}
		if create {
			p["client_type"] = enum("confidential", "public")
			p["client_id"] = schema{"type": "string", "pattern": "^[a-zA-Z0-9_-]+$", "maxLength": identity.ClientIDMax}
		}
		return p
	}
	create := input(clientFields(true), "name")
	return schema{
		"Error": describe(schema{"type": "object", "required": []string{"error", "error_description", "request_id"},
			"additionalProperties": false,
			"properties": schema{
				"error":             str(),
				"error_description": str(),
				"request_id":        str(),
				"details":           arrayOf(object(schema{"field": str(), "message": str()})),
			}}, "Management API error envelope (SPEC §5.2); details only on 422."),
		"OAuthError": describe(schema{"type": "object", "required": []string{"error"},
			"properties": schema{"error": str(), "error_description": str(), "locked_until": dateTime()}},
			"RFC 6749 §5.2 error envelope of the OAuth endpoints."),
		"TokenResponse": schema{"type": "object", "required": []string{"access_token", "token_type", "expires_in"},
			"properties": schema{"access_token": str(), "token_type": enum("Bearer"), "expires_in": integer(),
				"scope": str(), "refresh_token": str(), "session_id": uuidStr()}},
		"Introspection": schema{"type": "object", "required": []string{"active"},
			"properties": schema{"active": boolean(), "scope": str(), "client_id": str(), "username": str(), "token_type": str(),
				"exp": integer(), "iat": integer(), "nbf": integer(), "sub": str(), "aud": arrayOf(str()), "iss": str(),
				"jti": str(), "sid": str()}},
		"Health": schema{"type": "object", "required": []string{"status", "checks"},
			"properties": schema{"status": enum("healthy", "unhealthy"), "service": str(), "version": str(),
				"environment": str(), "timestamp": dateTime(), "checks": mapOf(anyObject())}},
		"Ready": schema{"type": "object", "required": []string{"status", "checks"},
			"properties": schema{"status": enum("ready", "not_ready"), "timestamp": dateTime(), "checks": mapOf(anyObject())}},
		"ScopeInfo": object(schema{"id": uuidStr(), "name": str(), "description": strOrNull(), "resource": strOrNull()}),
		"ServiceClient": object(schema{
			"id": uuidStr(), "client_id": str(), "name": str(), "description": strOrNull(),
			"client_type": enum("confidential", "public"), "is_active": boolean(), "is_trusted": boolean(),
			"contact_email": strOrNull(), "website_url": strOrNull(), "access_token_lifetime": integer(),
			"refresh_token_lifetime": intOrNull(), "rate_limit_per_minute": integer(), "rate_limit_per_hour": integer(),
			"allowed_ips": strOrNull(), "webhook_url": strOrNull(), "last_used": dateTimeOrNull(),
			"total_requests": integer(), "created_at": dateTime(), "updated_at": dateTime(),
			"scopes": arrayOf(ref("ScopeInfo")), "can_authenticate": boolean(), "supports_refresh_tokens": boolean(),
			"previous_secret_expires_at": describe(dateTimeOrNull(), "While a rotated secret still works."),
		}),
		"ServiceClientCreate": create,
		"ServiceClientUpdate": input(clientFields(false)),
		"ClientRateLimit": object(schema{"client_id": str(), "per_minute_limit": integer(), "per_minute_remaining": integer(),
			"per_minute_reset": dateTime(), "per_hour_limit": integer(), "per_hour_remaining": integer(),
			"per_hour_reset": dateTime(), "is_rate_limited": boolean(), "retry_after_seconds": integer()}),
		"Session": object(schema{"session_id": uuidStr(), "user_id": uuidStr(), "username": str(), "ip_address": str(),
			"user_agent": strOrNull(), "created_at": dateTime(), "last_activity": dateTime(), "expires_at": dateTime(),
			"is_current": boolean()}),
		"AuditEvent": object(schema{"id": uuidStr(), "event_type": str(), "action": str(), "result": enum("success", "failure"),
			"severity": enum("low", "medium", "high", "critical"), "actor_type": str(), "actor_id": strOrNull(),
			"user_id": strOrNull(), "client_id": strOrNull(), "resource_type": strOrNull(), "resource_id": strOrNull(),
			"ip_address": strOrNull(), "user_agent": strOrNull(), "request_id": strOrNull(), "details": anyObject(),
			"timestamp": dateTime()}),
		"Dashboard": object(schema{
			"users": object(schema{"total": integer(), "active": integer(), "verified": integer(), "locked": integer(),
				"recent_registrations": integer()}),
			"roles_and_permissions": object(schema{"total_roles": integer(), "total_scopes": integer()}),
			"service_clients":       object(schema{"total": integer(), "active": integer()}),
			"authentication": object(schema{"total_logins_today": integer(), "failed_logins_today": integer(),
				"tokens_issued_today": integer(), "active_sessions": integer()}),
			"system": object(schema{"uptime_seconds": integer(), "uptime_hours": number(), "database": str(),
				"goroutines": integer(), "memory_alloc_mb": number()}),
			"generated_at": dateTime(),
		}),
		"SystemHealth": object(schema{
			"status": enum("healthy", "degraded"), "timestamp": dateTime(), "version": str(),
			"components": mapOf(schema{"type": "object", "required": []string{"status", "latency_ms"},
				"properties": schema{"status": enum("healthy", "unhealthy"), "latency_ms": number(), "response_time_ms": number(), "error": str()}}),
			"process": object(schema{"uptime_seconds": integer(), "started_at": dateTime(), "goroutines": integer(),
				"num_cpu": integer(), "go_version": str(),
				"memory": object(schema{"alloc_bytes": integer(), "heap_inuse_bytes": integer(), "sys_bytes": integer(), "num_gc": integer()})}),
		}),
	}
}

var errorText = map[int]string{
	400: "Bad request", 401: "Not authenticated, or the token is invalid", 403: "Forbidden or insufficient scope",
	404: "Not found", 409: "Conflict", 413: "Request body too large", 422: "Validation error (details names each field)",
	423: "Account locked", 429: "Rate limit exceeded (Retry-After)", 500: "Internal error", 503: "Unavailable (Retry-After)",
}

// openAPIDocument builds the document for the server's options.
func (s *server) openAPIDocument() schema {
	api := s.opts.APIV1Prefix
	if api == "/" {
		api = ""
	}
	paths := schema{}
	for _, o := range s.openAPIOps() {
		p := strings.ReplaceAll(o.path, "{api}", api)
		item, _ := paths[p].(schema)
		if item == nil {
			item = schema{}
			paths[p] = item
		}
		opObj := s.operation(o)
		if o.serves != "" {
			opObj["x-served-by"] = strings.ReplaceAll(o.serves, "{api}", api)
		}
		item[strings.ToLower(o.method)] = opObj
	}
	name := s.opts.AppName
	if name == "" {
		name = "permiso Authentication API"
	}
	version := s.opts.Version
	if version == "" {
		version = "dev"
	}
	return schema{
		"openapi":           "3.1.0",
		"jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
		"info": schema{"title": name, "version": version,
			"description": "permiso: OAuth 2.0 / JWT authentication and authorization server. Management API errors use the Error envelope; OAuth endpoints use the RFC 6749 OAuthError envelope."},
		"tags": []schema{
			{"name": "oauth", "description": "OAuth 2.0 endpoints (SPEC §5.1)"},
			{"name": "discovery", "description": "Metadata and keys"},
			{"name": "users", "description": "Users"},
			{"name": "roles", "description": "Roles, scopes and permission checks"},
			{"name": "service-clients", "description": "Service clients (admin:clients)"},
			{"name": "sessions", "description": "Sessions"},
			{"name": "admin", "description": "Administration"},
			{"name": "operations", "description": "Health and metrics"},
			{"name": "documentation", "description": "This document and its pages"},
		},
		"paths": paths,
		"components": schema{
			"schemas": openAPISchemas(),
			"securitySchemes": schema{
				"bearerAuth":  schema{"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "An access token (RFC 6750)."},
				"clientBasic": schema{"type": "http", "scheme": "basic", "description": "Service client credentials (RFC 6749 §2.3.1)."},
			},
		},
	}
}

func jsonContent(sc schema) schema { return schema{"application/json": schema{"schema": sc}} }

// operation renders one op as an OpenAPI Operation Object.
func (s *server) operation(o op) schema {
	out := schema{"summary": o.summary, "tags": []string{o.tag},
		"operationId": strings.ToLower(o.method) + strings.NewReplacer("{api}", "", "/", "_", "{", "", "}", "", "-", "_", ".", "_").Replace(o.path)}
	if o.desc != "" {
		out["description"] = o.desc
	}
	var params []schema
	for _, p := range o.params {
		ps := schema{"name": p.name, "in": p.in, "schema": p.schema, "required": p.required}
		if p.desc != "" {
			ps["description"] = p.desc
		}
		params = append(params, ps)
	}
	if params != nil {
		out["parameters"] = params
	}
	switch {
	case o.body != nil:
		out["requestBody"] = schema{"required": true, "content": jsonContent(o.body)}
	case o.form != nil:
		content := schema{"application/x-www-form-urlencoded": schema{"schema": o.form}}
		if o.formJSON {
			content["application/json"] = schema{"schema": o.form}
		}
		out["requestBody"] = schema{"required": true, "content": content}
	}
	// Every operation answers 400 to a query string that cannot be parsed
	// whole (query.go).
	errs := map[int]bool{http.StatusBadRequest: true}
	for _, c := range o.errors {
		errs[c] = true
	}
	scope := ""
	switch {
	case o.auth == "public":
		out["security"] = []schema{}
	case o.auth == "token":
		out["security"] = []schema{{}, {"clientBasic": []string{}}}
	case o.auth == "client-or-bearer":
		out["security"] = []schema{{"clientBasic": []string{}}, {"bearerAuth": []string{}}}
	case strings.HasPrefix(o.auth, "self:"):
		scope = strings.TrimPrefix(o.auth, "self:")
		out["security"] = []schema{{"bearerAuth": []string{}}}
		out["x-required-scope"] = scope
		out["description"] = strings.TrimSpace(o.desc + " The user named in the path, or an administrator with " + scope + ".")
		errs[401], errs[403], errs[503] = true, true, true
	case o.auth == "user" || o.auth == "bearer":
		out["security"] = []schema{{"bearerAuth": []string{}}}
		errs[401], errs[403], errs[503] = true, true, true
	default:
		scope = strings.TrimPrefix(o.auth, "own:")
		out["security"] = []schema{{"bearerAuth": []string{scope}}}
		out["x-required-scope"] = scope
		if strings.HasPrefix(o.auth, "own:") {
			out["description"] = strings.TrimSpace(o.desc + " Users act on their own sessions; acting on another user's needs " + scope + " (or is_superuser, or role admin).")
		} else {
			out["description"] = strings.TrimSpace(o.desc + " Requires " + scope + " (or is_superuser, or role admin).")
		}
		errs[401], errs[403], errs[503] = true, true, true
	}
	if o.body != nil {
		errs[413], errs[422], errs[500] = true, true, true
	}
	if o.auth != "public" && o.auth != "token" && o.auth != "client-or-bearer" {
		errs[500], errs[429] = true, true
		if len(o.params) > 0 || o.body != nil {
			errs[422] = true
		}
		for _, p := range o.params {
			if p.in == "path" {
				errs[404] = true
			}
		}
		if o.body != nil {
			errs[413] = true
		}
	}
	status := o.status
	if status == 0 {
		status = http.StatusOK
	}
	responses := schema{}
	ok := schema{"description": http.StatusText(status)}
	switch {
	case o.html:
		ok["content"] = schema{"text/html": schema{"schema": str()}}
	case o.textOK != "":
		ok["content"] = schema{o.textOK: schema{"schema": str()}}
	case o.response != nil:
		ok["content"] = jsonContent(o.response)
	}
	responses[itoa3(status)] = ok
	env := ref("Error")
	if o.oauth {
		env = ref("OAuthError")
	}
	for c := range errs {
		text := errorText[c]
		if t, ok := o.errorDesc[c]; ok {
			text = t
		}
		r := schema{"description": text, "content": jsonContent(env)}
		if c == 429 || c == 503 {
			r["headers"] = schema{"Retry-After": schema{"description": "Seconds to wait.", "schema": integer()}}
		}
		if c == 401 && !o.oauth {
			r["headers"] = schema{"WWW-Authenticate": schema{"description": "Bearer challenge (RFC 6750 §3).", "schema": str()}}
		}
		responses[itoa3(c)] = r
	}
	out["responses"] = responses
	return out
}

func itoa3(n int) string {
	return string([]byte{byte('0' + n/100), byte('0' + n/10%10), byte('0' + n%10)})
}

// handleOpenAPI serves the document. It depends only on the options, so
// it is built once, here.
func (s *server) handleOpenAPI() http.Handler {
	body, err := json.Marshal(s.openAPIDocument())
	return handlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if err != nil {
			return err
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=300")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
		return nil
	})
}

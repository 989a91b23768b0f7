package httpapi

// addRoutes registers every route of the server with its access rule
// (access.go). It is the one place that lists the HTTP API. Paths are
// matched after one trailing slash has been stripped, so each route is
// registered without it.
func (s *server) addRoutes(checks []HealthCheck) {
	opts := s.opts
	// Operational endpoints.
	s.handle("GET /{$}", accessPublic, handleRoot(opts))
	s.handle("GET /health", accessPublic, handleHealth(s.logger, opts, checks, s.now))
	s.handle("GET /health/live", accessPublic, handleLive())
	s.handle("GET /health/ready", accessPublic, handleReady(s.logger, opts, checks, s.now))
	if s.metrics != nil && opts.MetricsPath != "" {
		// Restricted at the proxy (deploy/nginx/nginx.conf).
		s.handle("GET "+opts.MetricsPath, accessPublic, s.metrics)
	}

	if s.auth == nil {
		return
	}
	api := opts.APIV1Prefix
	if api == "/" {
		api = ""
	}

	// OAuth 2.0 endpoints (docs/oauth.md). Introspection and revocation
	// authenticate their callers themselves (client credentials or bearer,
	// RFC 7662 §2.1, RFC 7009 §2.1). The token and introspection endpoints
	// settle their own limits (accessSettling, checks.go): the request's
	// limit batch rides in their service call's batch of checks.
	s.handleSettling("POST "+api+pathToken, accessSettling, s.handleToken(""))
	s.handleSettling("POST "+api+"/auth/refresh", accessSettling, s.handleToken("refresh_token"))
	s.handleSettling("POST "+api+"/auth/service-token", accessSettling, s.handleToken("client_credentials"))
	s.handleSettling("POST "+api+pathIntrospect, accessSettling, s.handleIntrospect())
	s.handle("POST "+api+pathRevoke, accessPublic, s.handleRevoke())
	s.handle("POST "+api+"/auth/logout", accessUser, s.handleLogout())
	s.handle("POST "+api+"/auth/change-password", accessLimited(limitLogin), s.handleChangePassword())

	// OpenID Connect provider (docs/oidc.md): the authorization endpoint
	// and its hosted pages (HTML, hosted.go), userinfo. The sign-in form
	// settles its own limits: its per-IP login limit rides in the
	// password check's batch, as the password grant's does.
	s.handle("GET "+api+pathAuthorize, accessPublic, s.handleAuthorize())
	s.handleSettling("POST "+api+pathAuthorize, accessSettling, s.handleSignIn())
	s.handle("POST "+api+pathConsent, accessPublic, s.handleConsent())
	s.handle("POST "+api+pathPassword, accessLimited(limitLogin), s.handlePasswordChange())
	s.handle("POST "+api+pathMFA, accessLimited(limitLogin), s.handleSecondFactor())
	s.handle("POST "+api+pathMFAEnroll, accessLimited(limitLogin), s.handleEnrollment())
	s.handle("GET "+api+pathEndSession, accessPublic, s.handleEndSession())
	s.handle("POST "+api+pathEndSession, accessPublic, s.handleSignOut())
	s.handle("GET "+api+pathHostedCSS, accessPublic, handleHostedCSS())
	s.handle("GET "+api+pathUserinfo, accessUser, s.handleUserinfo())
	s.handle("POST "+api+pathUserinfo, accessUser, s.handleUserinfo())

	// Discovery (RFC 8414) and keys (RFC 7517).
	s.handle("GET /.well-known/oauth-authorization-server", accessPublic, s.handleMetadata())
	s.handle("GET /.well-known/openid-configuration", accessPublic, s.handleMetadata())
	s.handle("GET "+pathJWKS, accessPublic, s.handleJWKS())

	// Users, roles and scopes (docs/api.md). Static paths
	// (/users/me, /users/stats/overview, /roles/stats, ...) are more
	// specific than the {id} patterns, so ServeMux never shadows them.
	users := accessAdmin(scopeAdminUsers)
	selfOrAdmin := accessSelfOrAdmin("user_id", scopeAdminUsers)
	s.handle("POST "+api+"/users/register", accessLimited(limitRegister), s.handleRegister())
	s.handle("POST "+api+"/users/password-reset/request", accessLimited(limitAccountMail), s.handleResetRequest())
	s.handle("POST "+api+"/users/password-reset/confirm", accessLimited(limitAccountToken), s.handleResetConfirm())
	s.handle("POST "+api+"/users/email-verification/request", accessLimited(limitAccountMail), s.handleVerifyRequest())
	s.handle("POST "+api+"/users/email-verification/confirm", accessLimited(limitAccountToken), s.handleVerifyConfirm())
	s.handle("GET "+api+"/users/me", accessUser, s.handleMe())
	s.handle("GET "+api+"/users/profile", accessUser, s.handleMe())
	s.handle("PUT "+api+"/users/me", accessUser, s.onMe(s.updateUser))
	s.handle("PUT "+api+"/users/me/password", accessUser, s.onMe(s.changePassword))
	// The enrollment routes also admit the mfa_token of an
	// mfa_enrollment_required answer (docs/mfa.md); no other route does.
	s.handle("GET "+api+"/users/me/mfa", accessEnroll, s.handleMyMFA())
	s.handle("POST "+api+"/users/me/mfa/totp", accessEnroll, s.handleBeginTOTP())
	s.handle("POST "+api+"/users/me/mfa/totp/confirm", accessEnroll, s.handleConfirmTOTP())
	s.handle("POST "+api+"/users/me/mfa/recovery-codes", accessUser, s.handleRecoveryCodes())
	s.handle("DELETE "+api+"/users/me/mfa/totp", accessUser, s.handleDisableTOTP())
	s.handle("GET "+api+"/users", users, s.handleUserList())
	s.handle("POST "+api+"/users", users, s.handleUserCreate())
	s.handle("GET "+api+"/users/stats/overview", users, s.handleUserStats())
	s.handle("GET "+api+"/users/{user_id}", selfOrAdmin, s.handleUserGet())
	s.handle("PUT "+api+"/users/{user_id}", selfOrAdmin, s.onUserID(s.updateUser))
	s.handle("DELETE "+api+"/users/{user_id}", selfOrAdmin, s.handleUserDelete())
	s.handle("PUT "+api+"/users/{user_id}/password", selfOrAdmin, s.onUserID(s.changePassword))
	s.handle("PUT "+api+"/users/{user_id}/roles", users, s.handleUserRoles())
	s.handle("POST "+api+"/users/{user_id}/unlock", users, s.handleUserUnlock())
	s.handle("DELETE "+api+"/users/{user_id}/mfa", users, s.handleResetMFA())

	s.handle("GET "+api+"/roles", users, s.handleRoleList())
	s.handle("POST "+api+"/roles", users, s.handleRoleCreate())
	s.handle("GET "+api+"/roles/stats", users, s.handleRoleStats())
	s.handle("GET "+api+"/roles/defaults", users, s.handleRoleDefaults())
	s.handle("GET "+api+"/roles/scopes", users, s.handleScopeList())
	s.handle("POST "+api+"/roles/scopes", users, s.handleScopeCreate())
	s.handle("GET "+api+"/roles/scopes/{scope_id}", users, s.handleScopeGet())
	s.handle("DELETE "+api+"/roles/scopes/{scope_id}", users, s.handleScopeDelete())
	s.handle("GET "+api+"/roles/{role_id}", users, s.handleRoleGet())
	s.handle("PUT "+api+"/roles/{role_id}", users, s.handleRoleUpdate())
	s.handle("DELETE "+api+"/roles/{role_id}", users, s.handleRoleDelete())
	s.handle("PUT "+api+"/roles/scopes/{scope_id}", users, s.handleScopeUpdate())
	// PUT /roles/{role_id}/scopes, registered with {sub} because ServeMux
	// refuses it next to PUT /roles/scopes/{scope_id} (roles.go).
	s.handle("PUT "+api+"/roles/{role_id}/{sub}", users, s.handleRoleSub())
	perms := accessAdmin(scopeAdminPermissions)
	s.handle("POST "+api+"/roles/permissions/check", perms, s.handlePermissionCheck())
	s.handle("POST "+api+"/roles/permissions/check-bulk", perms, s.handlePermissionCheckBulk())
	s.handle("GET "+api+"/roles/permissions/user/{user_id}", perms, s.handleUserPermissions())

	// Service clients, sessions, admin and audit (docs/api.md).
	clients := accessAdmin(scopeAdminClients)
	s.handle("GET "+api+"/service-clients", clients, s.handleClientList())
	s.handle("POST "+api+"/service-clients", clients, s.handleClientCreate())
	s.handle("GET "+api+"/service-clients/stats/overview", clients, s.handleClientStats())
	s.handle("GET "+api+"/service-clients/{client_id}", clients, s.handleClientGet())
	s.handle("PUT "+api+"/service-clients/{client_id}", clients, s.handleClientUpdate())
	s.handle("DELETE "+api+"/service-clients/{client_id}", clients, s.handleClientDelete())
	s.handle("POST "+api+"/service-clients/{client_id}/rotate-secret", clients, s.handleClientRotateSecret())
	s.handle("PUT "+api+"/service-clients/{client_id}/scopes", clients, s.handleClientScopes())
	s.handle("GET "+api+"/service-clients/{client_id}/permissions", clients, s.handleClientPermissions())
	s.handle("GET "+api+"/service-clients/{client_id}/rate-limit", clients, s.handleClientRateLimit())

	own := accessOwnOrAdmin("user_id", scopeAdminSessions)
	s.handle("GET "+api+"/sessions", own, s.handleSessionList())
	s.handle("DELETE "+api+"/sessions", own, s.handleSessionDeleteAll())
	s.handle("DELETE "+api+"/sessions/{session_id}", own, s.handleSessionDelete())
	s.handle("POST "+api+"/sessions/{session_id}/renew", own, s.handleSessionRenew())
	s.handle("GET "+api+"/sessions/stats", accessAdmin(scopeAdminSessions), s.handleSessionStats())
	s.handle("POST "+api+"/sessions/cleanup", accessAdmin(scopeAdminSessions), s.handleSessionCleanup())

	s.handle("GET "+api+"/admin/dashboard/stats", accessAdmin(scopeAdminUsers), s.handleDashboard())
	s.handle("GET "+api+"/admin/system/health", accessAdmin(scopeAdminSystem), s.handleSystemHealth())
	s.handle("GET "+api+"/admin/security/events", accessAdmin(scopeAdminSecurity), s.handleSecurityEvents())
	s.handle("GET "+api+"/admin/audit/activity", accessAdmin(scopeAdminAudit), s.handleAuditActivity())
	s.handle("GET "+api+"/admin/reports/usage", accessAdmin(scopeAdminUsers), s.handleUsageReport())
	s.handle("POST "+api+"/admin/maintenance/cleanup", accessAdmin(scopeAdminSystem), s.handleMaintenanceCleanup())
	s.handle("GET "+api+"/admin/logs/errors", accessAdmin(scopeAdminLogs), s.handleErrorLogs())

	// OpenAPI document and documentation pages (docs/api.md); each disabled
	// by an empty OPENAPI_URL, DOCS_URL or REDOC_URL.
	s.addDocsRoutes()
}

// Paths of the OAuth endpoints below the API prefix, for the discovery
// document.
const (
	pathToken      = "/auth/token"
	pathIntrospect = "/auth/introspect"
	pathRevoke     = "/auth/revoke"
	pathJWKS       = "/.well-known/jwks.json"
)

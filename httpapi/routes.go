package httpapi

// addRoutes registers every route of the server with its access rule
// (access.go). It is the one place that lists the HTTP API. Paths are
// matched after one trailing slash has been stripped, so each route is
// registered without it.
func (s *server) addRoutes(checks []HealthCheck) {
	opts := s.opts
	// Operational endpoints (SPEC §5.3).
	s.handle("GET /{$}", accessPublic, handleRoot(opts))
	s.handle("GET /health", accessPublic, handleHealth(s.logger, opts, checks, s.now))
	s.handle("GET /health/live", accessPublic, handleLive())
	s.handle("GET /health/ready", accessPublic, handleReady(s.logger, opts, checks, s.now))

	if s.auth == nil {
		return
	}
	api := opts.APIV1Prefix
	if api == "/" {
		api = ""
	}

	// OAuth 2.0 endpoints (SPEC §5.1). Introspection and revocation
	// authenticate their callers themselves (client credentials or bearer,
	// RFC 7662 §2.1, RFC 7009 §2.1).
	s.handle("POST "+api+pathToken, accessPublic, s.handleToken(""))
	s.handle("POST "+api+"/auth/refresh", accessPublic, s.handleToken("refresh_token"))
	s.handle("POST "+api+"/auth/service-token", accessPublic, s.handleToken("client_credentials"))
	s.handle("POST "+api+pathIntrospect, accessPublic, s.handleIntrospect())
	s.handle("POST "+api+pathRevoke, accessPublic, s.handleRevoke())
	s.handle("POST "+api+"/auth/logout", accessUser, s.handleLogout())
	s.handle("POST "+api+"/auth/change-password", accessPublic, s.handleChangePassword())

	// Discovery (RFC 8414) and keys (RFC 7517).
	s.handle("GET /.well-known/oauth-authorization-server", accessPublic, s.handleMetadata())
	s.handle("GET /.well-known/openid-configuration", accessPublic, s.handleMetadata())
	s.handle("GET "+pathJWKS, accessPublic, s.handleJWKS())

	// Users, roles and scopes (SPEC §5.2, issue 4).

	// Service clients, sessions, admin and audit (SPEC §5.2, issue 5).
}

// Paths of the OAuth endpoints below the API prefix, for the discovery
// document.
const (
	pathToken      = "/auth/token"
	pathIntrospect = "/auth/introspect"
	pathRevoke     = "/auth/revoke"
	pathJWKS       = "/.well-known/jwks.json"
)

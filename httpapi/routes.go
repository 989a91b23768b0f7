package httpapi

// addRoutes registers every route of the server. It is the one place that
// lists the HTTP API. Paths are matched after one trailing slash has been
// stripped, so each route is registered without it.
func (s *server) addRoutes(checks []HealthCheck) {
	mux, opts := s.mux, s.opts
	// Operational endpoints (SPEC §5.3).
	mux.Handle("GET /{$}", handleRoot(opts))
	mux.Handle("GET /health", handleHealth(s.logger, opts, checks, s.now))
	mux.Handle("GET /health/live", handleLive())
	mux.Handle("GET /health/ready", handleReady(s.logger, opts, checks, s.now))

	if s.auth == nil {
		return
	}
	api := opts.APIV1Prefix
	if api == "/" {
		api = ""
	}

	// OAuth 2.0 endpoints (SPEC §5.1).
	mux.Handle("POST "+api+pathToken, s.handleToken(""))
	mux.Handle("POST "+api+"/auth/refresh", s.handleToken("refresh_token"))
	mux.Handle("POST "+api+"/auth/service-token", s.handleToken("client_credentials"))
	mux.Handle("POST "+api+pathIntrospect, s.handleIntrospect())
	mux.Handle("POST "+api+pathRevoke, s.handleRevoke())
	mux.Handle("POST "+api+"/auth/logout", s.requireUser(s.handleLogout()))
	mux.Handle("POST "+api+"/auth/change-password", s.handleChangePassword())

	// Discovery (RFC 8414) and keys (RFC 7517).
	mux.Handle("GET /.well-known/oauth-authorization-server", s.handleMetadata())
	mux.Handle("GET /.well-known/openid-configuration", s.handleMetadata())
	mux.Handle("GET "+pathJWKS, s.handleJWKS())
}

// Paths of the OAuth endpoints below the API prefix, for the discovery
// document.
const (
	pathToken      = "/auth/token"
	pathIntrospect = "/auth/introspect"
	pathRevoke     = "/auth/revoke"
	pathJWKS       = "/.well-known/jwks.json"
)

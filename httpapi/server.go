package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/logring"
	"github.com/permiso/permiso/oauth2"
	"github.com/permiso/permiso/reports"
)

// DefaultMaxBodyBytes is the default request body limit (1 MiB, docs/api.md).
const DefaultMaxBodyBytes = 1 << 20

// DefaultHealthCheckTimeout bounds each health check by default.
const DefaultHealthCheckTimeout = 2 * time.Second

// Options is the part of the configuration that the HTTP layer needs.
// cmd/permiso fills it from config.Config.
type Options struct {
	// AppName is shown by GET / and /health (APP_NAME).
	AppName string
	// Version is the build version (VERSION).
	Version string
	// Environment is the deployment environment (ENVIRONMENT).
	Environment string
	// APIV1Prefix is the prefix of the versioned API (API_V1_PREFIX),
	// for example "/api/v1".
	APIV1Prefix string
	// DocsURL is the documentation page path (DOCS_URL); empty when the
	// documentation is disabled.
	DocsURL string
	// RedocURL is the ReDoc documentation page path (REDOC_URL) and
	// OpenAPIURL the path of the OpenAPI document (OPENAPI_URL); each is
	// disabled when empty. The pages need the document: with OpenAPIURL
	// empty neither page is served.
	RedocURL   string
	OpenAPIURL string
	// AuditRetention is AUDIT_RETENTION_DAYS: maintenance cleanup prunes
	// older audit events; zero keeps them.
	AuditRetention time.Duration
	// TrustedProxies are the networks whose X-Forwarded-For, X-Real-IP,
	// X-Forwarded-Proto and X-Request-Id headers are believed
	// (TRUSTED_PROXIES). Nil trusts no one; the configuration's default
	// (loopback) is applied by the caller.
	TrustedProxies []netip.Prefix
	// RateLimits are the per-client-IP limits (RATE_LIMIT_*), counted by
	// Deps.Limiter (limit.go).
	RateLimits RateLimits
	// CORS is the cross-origin policy (ALLOWED_ORIGINS, ...; cors.go).
	CORS CORS
	// AllowedHosts is the Host header allow-list (ALLOWED_HOSTS); empty
	// allows any host.
	AllowedHosts []string
	// MaxBodyBytes limits request bodies; zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// HealthCheckTimeout bounds each health check; zero means
	// DefaultHealthCheckTimeout.
	HealthCheckTimeout time.Duration
	// MetricsPath serves Deps.Metrics (METRICS_PATH), e.g. "/metrics".
	MetricsPath string
	// Issuer is the authorization server's issuer URL for discovery
	// metadata (RFC 8414 §2): JWT_ISSUER when it is a URL, else PUBLIC_URL.
	// Endpoint URLs in the metadata are built from it.
	Issuer string
	// Scopes are advertised as scopes_supported.
	Scopes []string
}

// HealthCheck is one dependency check reported by /health and
// /health/ready.
type HealthCheck struct {
	// Name is the key under "checks", for example "database" or "cache".
	Name string
	// Check returns nil when the dependency is usable. Details are shown
	// publicly in the health response (never put secrets in them); an
	// error is logged and shown only as a generic message. Check must
	// honour ctx, which carries the check timeout.
	Check func(ctx context.Context) (details map[string]any, err error)
}

// StaticCheck returns a HealthCheck that always passes with the given
// details, for dependencies that cannot fail, such as the in-process cache
// used when REDIS_URL is not set:
//
//	httpapi.StaticCheck("cache", map[string]any{"backend": "in-process"})
func StaticCheck(name string, details map[string]any) HealthCheck {
	return HealthCheck{Name: name, Check: func(context.Context) (map[string]any, error) {
		return details, nil
	}}
}

// Deps is everything NewServer needs.
type Deps struct {
	// Logger receives the access log and error records; nil discards them.
	Logger *slog.Logger
	// Options configure the HTTP layer.
	Options Options
	// Checks are run by /health and /health/ready.
	Checks []HealthCheck
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Auth is the OAuth 2.0 core: token endpoint, bearer checks,
	// introspection, revocation, logout. Nil leaves the OAuth routes out
	// (tests of the skeleton).
	Auth *oauth2.Service
	// Keys publishes the token signing keys (JWKS) and algorithms.
	Keys KeySet
	// Store is the database; handlers use the narrow part they need.
	Store permiso.Store
	// Audit records audit events off the request path.
	Audit permiso.Auditor
	// Identity applies the account rules behind the users, roles, scopes
	// and service-clients routes; nil answers them 503.
	Identity *identity.Service
	// Reports computes the figures of the dashboard, the usage report and
	// the client and session overviews; nil answers them 503.
	Reports *reports.Service
	// Metrics, when set, is served at Options.MetricsPath; Observe is told
	// the route pattern, method, status and duration of every request.
	Metrics http.Handler
	Observe func(route, method string, status int, d time.Duration)
	// Limiter counts requests for the RATE_LIMIT_* limits and the
	// per-client limits; nil disables rate limiting.
	Limiter permiso.RateLimiter
	// RateLimited, when set, is told the name of each per-IP limit that
	// refuses a request ("login", "api", ...), for metrics.
	RateLimited func(limit string)

	// ErrorLog holds the recent error-level log records shown by
	// GET /admin/logs/errors; nil shows none.
	ErrorLog *logring.Ring
	// Started is when the process started (uptime in the admin API);
	// zero means when NewServer was called.
	Started time.Time

	// testRoutes, when set, registers extra routes (tests only).
	testRoutes func(mux *http.ServeMux)
}

// KeySet publishes the public keys that verify access tokens.
type KeySet interface {
	// JWKS returns the JSON Web Key Set document (RFC 7517 §5).
	JWKS() []byte
	// Algorithms lists the JWS algorithms tokens are signed with.
	Algorithms() []string
}

// server holds what the middleware chain and the handlers need.
type server struct {
	logger  *slog.Logger
	opts    Options
	now     func() time.Time
	auth    *oauth2.Service
	keys    KeySet
	store   permiso.Store
	audit   permiso.Auditor
	limiter permiso.RateLimiter
	limited func(limit string)
	ident   *identity.Service // users, roles, scopes, service clients
	reports *reports.Service  // dashboard, usage and overview figures
	observe func(route, method string, status int, d time.Duration)
	metrics http.Handler
	mux     *http.ServeMux
	routes  []routeInfo
	handler http.Handler
	checks  []HealthCheck
	errlog  *logring.Ring
	started time.Time
}

// NewServer returns the permiso HTTP handler: every route of routes.go
// behind the middleware chain described in the package documentation.
func NewServer(deps Deps) http.Handler {
	s := &server{logger: deps.Logger, opts: deps.Options, now: deps.Now, auth: deps.Auth, keys: deps.Keys,
		store: deps.Store, audit: deps.Audit, limiter: deps.Limiter, limited: deps.RateLimited,
		observe: deps.Observe, metrics: deps.Metrics}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	permiso.SetDefault(&s.opts.MaxBodyBytes, DefaultMaxBodyBytes)
	permiso.SetDefault(&s.opts.HealthCheckTimeout, DefaultHealthCheckTimeout)
	s.checks, s.errlog, s.started = deps.Checks, deps.ErrorLog, deps.Started
	s.ident, s.reports = deps.Identity, deps.Reports
	if s.started.IsZero() {
		s.started = s.now()
	}
	s.mux = http.NewServeMux()
	s.addRoutes(deps.Checks)
	if deps.testRoutes != nil {
		deps.testRoutes(s.mux)
	}

	var h http.Handler = http.HandlerFunc(s.dispatch)
	h = s.cors(h)         // preflights answered before routing (cors.go)
	h = s.allowedHosts(h) // ALLOWED_HOSTS (cors.go)
	h = s.accessLog(h)
	h = s.limitBody(h)
	h = s.securityHeaders(h)
	h = s.clientIP(h)
	h = s.requestID(h)
	h = s.recoverPanics(h)
	s.handler = h
	return s
}

// ServeHTTP implements http.Handler.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// dispatch normalizes the path and hands the request to the ServeMux,
// answering unknown routes and wrong methods with JSON envelopes instead
// of the ServeMux's plain-text ones.
func (s *server) dispatch(w http.ResponseWriter, r *http.Request) {
	r = stripTrailingSlash(r)
	h, pattern := s.mux.Handler(r)
	if pattern == "" && !s.apiLimitUnrouted(w, r) {
		return
	}
	if pattern == "" {
		// No route: ask the ServeMux's own handler whether it is a 404 or
		// a 405, and with which Allow header, then answer in JSON.
		rec := &headerRecorder{header: make(http.Header)}
		h.ServeHTTP(rec, r)
		if rec.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", rec.header.Get("Allow"))
			writeError(w, r, errMethodNotAllowed)
			return
		}
		writeError(w, r, errRouteNotFound)
		return
	}
	if sw, ok := w.(*statusWriter); ok {
		sw.pattern = pattern
	}
	// RATE_LIMIT_API counts every routed API request, in the request's
	// one batch of checks, built by its route (checks.go).
	if strings.IndexByte(pattern, '{') >= 0 || r.RequestURI == "*" {
		// The ServeMux routes again to give the handler the path's
		// wildcards (Request.PathValue), which only its ServeHTTP sets.
		s.mux.ServeHTTP(w, r)
		return
	}
	// A pattern without wildcards needs nothing of a second routing but
	// the pattern, which the ServeMux would set in place as here (r is
	// the chain's own copy, made by requestID).
	r.Pattern = pattern
	h.ServeHTTP(w, r)
}

// stripTrailingSlash returns r with one trailing slash removed from its
// path (except for "/"), so that "/health/" is served as "/health". The
// request is copied, not modified.
func stripTrailingSlash(r *http.Request) *http.Request {
	p := r.URL.Path
	if len(p) <= 1 || !strings.HasSuffix(p, "/") {
		return r
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.Path = p[:len(p)-1]
	if u.RawPath != "" {
		u.RawPath = strings.TrimSuffix(u.RawPath, "/")
	}
	r2.URL = &u
	return r2
}

// headerRecorder captures the status and headers of the ServeMux's
// not-found and method-not-allowed handlers and discards their body.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header { return h.header }
func (h *headerRecorder) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}
func (h *headerRecorder) Write(b []byte) (int, error) {
	h.WriteHeader(http.StatusOK)
	return len(b), nil
}

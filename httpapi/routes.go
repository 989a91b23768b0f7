package httpapi

import (
	"log/slog"
	"net/http"
	"time"
)

// addRoutes registers every route of the server. It is the one place that
// lists the HTTP API. Paths are matched after one trailing slash has been
// stripped, so each route is registered without it.
func addRoutes(mux *http.ServeMux, logger *slog.Logger, opts Options, checks []HealthCheck, now func() time.Time) {
	// Operational endpoints (SPEC §5.3).
	mux.Handle("GET /{$}", handleRoot(opts))
	mux.Handle("GET /health", handleHealth(logger, opts, checks, now))
	mux.Handle("GET /health/live", handleLive())
	mux.Handle("GET /health/ready", handleReady(logger, opts, checks, now))
}

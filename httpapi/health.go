package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/permiso/permiso"
)

// handleRoot answers GET / with the service name, version and links, in
// the original service's shape.
func handleRoot(opts Options) http.Handler {
	docs := opts.DocsURL
	if docs == "" {
		docs = "Documentation disabled"
	}
	type response struct {
		Message     string `json:"message"`
		Version     string `json:"version"`
		Environment string `json:"environment"`
		Docs        string `json:"docs"`
		Health      string `json:"health"`
	}
	body := response{
		Message:     opts.AppName,
		Version:     opts.Version,
		Environment: opts.Environment,
		Docs:        docs,
		Health:      "/health",
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, body)
	})
}

// handleHealth answers GET /health: 200 "healthy" when every check
// passes, otherwise 503 "unhealthy", with each check's status and latency.
func handleHealth(logger *slog.Logger, opts Options, checks []HealthCheck, now func() time.Time) http.Handler {
	type response struct {
		Status      string                    `json:"status"`
		Service     string                    `json:"service"`
		Version     string                    `json:"version"`
		Environment string                    `json:"environment"`
		Timestamp   string                    `json:"timestamp"`
		Checks      map[string]map[string]any `json:"checks"`
	}
	return checksHandler(logger, opts, checks, "healthy", "unhealthy", func(status string, results map[string]map[string]any) any {
		return response{
			Status:      status,
			Service:     opts.AppName,
			Version:     opts.Version,
			Environment: opts.Environment,
			Timestamp:   timestamp(now()),
			Checks:      results,
		}
	})
}

// handleLive answers GET /health/live: the process is up. It checks no
// dependency, so an orchestrator does not restart a healthy process
// because its database is down.
func handleLive() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
}

// handleReady answers GET /health/ready: 200 "ready" when every
// dependency check passes, otherwise 503 "not_ready", so a load balancer
// stops sending traffic.
func handleReady(logger *slog.Logger, opts Options, checks []HealthCheck, now func() time.Time) http.Handler {
	type response struct {
		Status    string                    `json:"status"`
		Timestamp string                    `json:"timestamp"`
		Checks    map[string]map[string]any `json:"checks"`
	}
	return checksHandler(logger, opts, checks, "ready", "not_ready", func(status string, results map[string]map[string]any) any {
		return response{Status: status, Timestamp: timestamp(now()), Checks: results}
	})
}

// checksHandler runs the checks on every request and answers, uncached,
// body(status, results): status up and 200 when every check passed, down
// and 503 otherwise.
func checksHandler(logger *slog.Logger, opts Options, checks []HealthCheck, up, down string, body func(status string, results map[string]map[string]any) any) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		results, healthy, gone := runChecks(r.Context(), logger, checks, opts.HealthCheckTimeout)
		if !healthy && clientClosed(w, r, gone) {
			return
		}
		status, code := up, http.StatusOK
		if !healthy {
			status, code = down, http.StatusServiceUnavailable
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, code, body(status, results))
	})
}

// runChecks runs every check concurrently, each bounded by timeout, and
// returns one result object per check and whether all passed. A failing
// check's error is logged with the request id and replaced by a generic
// message: health endpoints are public and must not leak internals. When
// every failed check failed only because the request's client went away
// (permiso.ClientGone), gone is one of their errors, for clientClosed: a
// prober that gave up is not an unhealthy dependency.
func runChecks(ctx context.Context, logger *slog.Logger, checks []HealthCheck, timeout time.Duration) (results map[string]map[string]any, healthy bool, gone error) {
	results = make(map[string]map[string]any, len(checks))
	healthy = true
	allGone := true
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := runCheck(ctx, logger, c, timeout)
			mu.Lock()
			results[c.Name] = res
			if err != nil {
				healthy = false
				if permiso.ClientGone(ctx, err) {
					gone = err
				} else {
					allGone = false
				}
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if !allGone {
		gone = nil
	}
	return results, healthy, gone
}

// runCheck runs c and returns its result object, and its error when it
// failed.
func runCheck(ctx context.Context, logger *slog.Logger, c HealthCheck, timeout time.Duration) (res map[string]any, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()

	type outcome struct {
		details map[string]any
		err     error
	}
	done := make(chan outcome, 1)
	// The check runs in its own goroutine so that a check ignoring its
	// context cannot hold the response beyond the timeout.
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- outcome{err: fmt.Errorf("health check panicked: %v", v)}
			}
		}()
		d, err := c.Check(ctx)
		done <- outcome{d, err}
	}()
	var out outcome
	select {
	case out = <-done:
	case <-ctx.Done():
		out = outcome{err: ctx.Err()}
	}
	latency := float64(time.Since(start).Microseconds()) / 1000

	res = make(map[string]any, len(out.details)+3)
	for k, v := range out.details {
		res[k] = v
	}
	res["latency_ms"] = latency
	if out.err == nil {
		res["status"] = "healthy"
		return res, nil
	}
	res["status"] = "unhealthy"
	if errors.Is(out.err, context.DeadlineExceeded) {
		res["error"] = "check timed out"
	} else {
		res["error"] = "check failed"
	}
	level := slog.LevelWarn
	if permiso.ClientGone(ctx, out.err) {
		level = slog.LevelDebug // the prober gave up, nothing failed
	}
	logger.LogAttrs(ctx, level, "health check failed",
		slog.String("check", c.Name),
		slog.String("request_id", RequestID(ctx)),
		slog.String("error", errString(out.err)),
		slog.Float64("latency_ms", latency),
	)
	return res, out.err
}

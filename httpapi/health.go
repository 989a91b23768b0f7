package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
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
		results, healthy := runChecks(r.Context(), logger, checks, opts.HealthCheckTimeout)
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
// message: health endpoints are public and must not leak internals.
//
// The checks run without the request's cancellation: a prober that gives
// up (one whose own timeout is shorter than the check's) does not decide
// the outcome, the check does. A dependency that answers within timeout is
// healthy, one that hangs past it is a 503 with a warning, whether or not
// the prober is still there (docs/deployment.md, "Monitoring"); a hung
// database must not look like impatient probers.
func runChecks(ctx context.Context, logger *slog.Logger, checks []HealthCheck, timeout time.Duration) (map[string]map[string]any, bool) {
	ctx = context.WithoutCancel(ctx)
	results := make(map[string]map[string]any, len(checks))
	healthy := true
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, ok := runCheck(ctx, logger, c, timeout)
			mu.Lock()
			results[c.Name] = res
			healthy = healthy && ok
			mu.Unlock()
		}()
	}
	wg.Wait()
	return results, healthy
}

func runCheck(ctx context.Context, logger *slog.Logger, c HealthCheck, timeout time.Duration) (res map[string]any, ok bool) {
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
		return res, true
	}
	res["status"] = "unhealthy"
	if errors.Is(out.err, context.DeadlineExceeded) {
		res["error"] = "check timed out"
	} else {
		res["error"] = "check failed"
	}
	logger.LogAttrs(ctx, slog.LevelWarn, "health check failed",
		slog.String("check", c.Name),
		slog.String("request_id", RequestID(ctx)),
		slog.String("error", errString(out.err)),
		slog.Float64("latency_ms", latency),
	)
	return res, false
}

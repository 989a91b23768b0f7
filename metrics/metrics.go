// Package metrics exposes permiso's Prometheus metrics (SPEC §5.3): HTTP
// requests by route pattern and status, tokens issued by grant, login
// results, lockouts, rate-limit rejections, refresh-token reuse detections,
// database and Redis pool statistics, and the Go runtime. It owns its
// registry (no global promauto); cmd/permiso wires it.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/permiso/permiso"
)

const namespace = "permiso"

// Metrics holds the collectors and their registry.
type Metrics struct {
	registry      *prometheus.Registry
	httpRequests  *prometheus.CounterVec
	httpDuration  *prometheus.HistogramVec
	tokensIssued  *prometheus.CounterVec
	logins        *prometheus.CounterVec
	lockouts      prometheus.Counter
	rateLimited   *prometheus.CounterVec
	reuseDetected prometheus.Counter
	auditEvents   *prometheus.CounterVec
}

// New returns metrics registered on a fresh registry, with the Go runtime
// and process collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		registry: r,
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
		tokensIssued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "tokens_issued_total",
			Help: "Access tokens issued, by grant type.",
		}, []string{"grant"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "logins_total",
			Help: "Password logins by result (success, failure).",
		}, []string{"result"}),
		lockouts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "lockouts_total",
			Help: "Accounts (usernames) locked after too many failed logins.",
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "rate_limited_total",
			Help: "Requests rejected by a rate limit, by limit.",
		}, []string{"limit"}),
		reuseDetected: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "refresh_token_reuse_detected_total",
			Help: "Refresh tokens presented again after rotation (the family was revoked).",
		}),
		auditEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "audit_events_total",
			Help: "Audit events recorded, by action and result.",
		}, []string{"action", "result"}),
	}
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.httpRequests, m.httpDuration, m.tokensIssued, m.logins, m.lockouts,
		m.rateLimited, m.reuseDetected, m.auditEvents,
	)
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Registry returns the registry, for extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// ObserveHTTP records one request. route is the matched pattern (never the
// raw path, which would explode the label set); unmatched requests use
// "unmatched".
func (m *Metrics) ObserveHTTP(route, method string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(route, method).Observe(d.Seconds())
}

// RateLimited counts a rejection by the named limit.
func (m *Metrics) RateLimited(limit string) { m.rateLimited.WithLabelValues(limit).Inc() }

// Auditor wraps next so that the security events it records are counted
// too: one source of truth for the audit log and the metrics.
func (m *Metrics) Auditor(next permiso.Auditor) permiso.Auditor {
	return auditor{m: m, next: next}
}

type auditor struct {
	m    *Metrics
	next permiso.Auditor
}

func (a auditor) Record(ctx context.Context, e permiso.AuditEvent) {
	a.m.count(e)
	if a.next != nil {
		a.next.Record(ctx, e)
	}
}

// Audit actions that feed the metrics (written by oauth2).
const (
	actionLoginSuccess  = "login.success"
	actionLoginFailure  = "login.failure"
	actionLoginLocked   = "login.locked"
	actionTokenIssue    = "token.issue"
	actionTokenRefresh  = "token.refresh"
	actionReuseDetected = "token.reuse_detected"
)

func (m *Metrics) count(e permiso.AuditEvent) {
	m.auditEvents.WithLabelValues(e.Action, e.Result).Inc()
	switch e.Action {
	case actionLoginSuccess:
		m.logins.WithLabelValues("success").Inc()
		m.tokensIssued.WithLabelValues("password").Inc()
	case actionLoginFailure:
		m.logins.WithLabelValues("failure").Inc()
	case actionLoginLocked:
		m.lockouts.Inc()
	case actionTokenRefresh:
		if e.Result == "success" {
			m.tokensIssued.WithLabelValues("refresh_token").Inc()
		}
	case actionTokenIssue:
		grant, _ := e.Details["grant_type"].(string)
		if grant == "" {
			grant = "unknown"
		}
		m.tokensIssued.WithLabelValues(grant).Inc()
	case actionReuseDetected:
		m.reuseDetected.Inc()
	}
}

// PoolStats is a snapshot of a connection pool.
type PoolStats struct {
	Open, InUse, Idle, Max int
}

// RegisterPool exports a connection pool's statistics (the database or
// Redis) as gauges named permiso_<name>_pool_connections{state}.
func (m *Metrics) RegisterPool(name string, stats func() PoolStats) {
	desc := prometheus.NewDesc(namespace+"_"+name+"_pool_connections",
		"Connections of the "+name+" pool by state (open, in_use, idle, max).", []string{"state"}, nil)
	m.registry.MustRegister(poolCollector{desc: desc, stats: stats})
}

type poolCollector struct {
	desc  *prometheus.Desc
	stats func() PoolStats
}

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	for state, v := range map[string]int{"open": s.Open, "in_use": s.InUse, "idle": s.Idle, "max": s.Max} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(v), state)
	}
}

// CacheStats is a snapshot of the in-process cache of users and service
// clients (cache.Store.Stats; counters since start, entries now).
type CacheStats struct {
	Hits, Misses, DroppedFills, Invalidations, Resyncs, Evictions, PublishErrors uint64
	Users, Clients                                                               int
}

// RegisterCache exports the in-process cache's statistics:
// permiso_cache_lookups_total{result="hit"|"miss"},
// permiso_cache_events_total{event=...} (dropped_fill, invalidation,
// resync, eviction, publish_error) and permiso_cache_entries{kind}.
func (m *Metrics) RegisterCache(stats func() CacheStats) {
	m.registry.MustRegister(cacheCollector{
		lookups: prometheus.NewDesc(namespace+"_cache_lookups_total",
			"Reads of users and service clients answered from the in-process cache (hit) or the database (miss).", []string{"result"}, nil),
		events: prometheus.NewDesc(namespace+"_cache_events_total",
			"In-process cache events: fills dropped by a concurrent invalidation, invalidations applied, bus resyncs, evictions, failed publishes.", []string{"event"}, nil),
		entries: prometheus.NewDesc(namespace+"_cache_entries",
			"Entries held by the in-process cache.", []string{"kind"}, nil),
		stats: stats,
	})
}

type cacheCollector struct {
	lookups, events, entries *prometheus.Desc
	stats                    func() CacheStats
}

func (c cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lookups
	ch <- c.events
	ch <- c.entries
}

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	counter := func(d *prometheus.Desc, v uint64, label string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), label)
	}
	counter(c.lookups, s.Hits, "hit")
	counter(c.lookups, s.Misses, "miss")
	counter(c.events, s.DroppedFills, "dropped_fill")
	counter(c.events, s.Invalidations, "invalidation")
	counter(c.events, s.Resyncs, "resync")
	counter(c.events, s.Evictions, "eviction")
	counter(c.events, s.PublishErrors, "publish_error")
	ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(s.Users), "users")
	ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(s.Clients), "clients")
}

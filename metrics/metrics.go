// Package metrics exposes permiso's Prometheus metrics (docs/deployment.md,
// "Monitoring"): HTTP requests by route pattern and status, tokens issued
// by grant, login results, lockouts, rate-limit rejections, refresh-token
// reuse detections, the audit writer (events written, failed, dropped,
// waits for room in its queue), database and Redis pool statistics, and
// the Go runtime. It owns its
// registry (no global promauto); cmd/permiso wires it.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
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
	auditWritten  prometheus.Counter
	auditFailed   prometheus.Counter
	auditDropped  prometheus.Counter
	auditWait     *prometheus.HistogramVec

	// httpChildren caches, per routed (route, method, status), the two
	// children of httpRequests and httpDuration that ObserveHTTP updates
	// (httpKey → *httpChildren): WithLabelValues hashes the label values
	// and takes a lock on every call, and formats the status. Routed
	// requests only, so the cache is bounded by the routes (an unmatched
	// request's method is whatever the client sent). Children are never
	// deleted from the two vectors, so a cached one stays theirs.
	httpChildren sync.Map

	// auditChildren and grantChildren cache, by the raw label values,
	// the children of auditEvents (auditKey) and tokensIssued (the grant)
	// that count records: a token request counts two events' worth of
	// labels, each cleaned, hashed and looked up under a lock otherwise.
	// Actions, results and grants are the code's constants; the caches
	// stop growing at maxCachedChildren all the same.
	auditChildren childCache[auditKey]
	grantChildren childCache[string]
}

type auditKey struct{ action, result string }

// maxCachedChildren bounds each childCache.
const maxCachedChildren = 256

// childCache maps raw label values to the counter child made from them.
type childCache[K comparable] struct {
	m sync.Map // K → prometheus.Counter
	n atomic.Int32
}

// get returns k's counter, made by child the first time (and every time
// once the cache is full).
func (c *childCache[K]) get(k K, child func() prometheus.Counter) prometheus.Counter {
	if v, ok := c.m.Load(k); ok {
		return v.(prometheus.Counter)
	}
	ctr := child()
	if c.n.Load() < maxCachedChildren {
		if _, loaded := c.m.LoadOrStore(k, ctr); !loaded {
			c.n.Add(1)
		}
	}
	return ctr
}

type httpKey struct {
	route, method string
	status        int
}

type httpChildren struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// New returns metrics registered on a fresh registry, with the Go runtime
// and process collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		registry: r,
		httpRequests: counterVec("http_requests_total",
			"HTTP requests by route pattern, method and status code.", "route", "method", "status"),
		httpDuration: histogramVec("http_request_duration_seconds",
			"HTTP request latency by route pattern and method.",
			[]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}, "route", "method"),
		tokensIssued: counterVec("tokens_issued_total", "Access tokens issued, by grant type.", "grant"),
		logins:       counterVec("logins_total", "Password logins by result (success, failure).", "result"),
		lockouts:     counter("lockouts_total", "Accounts (usernames) locked after too many failed logins."),
		rateLimited:  counterVec("rate_limited_total", "Requests rejected by a rate limit, by limit.", "limit"),
		reuseDetected: counter("refresh_token_reuse_detected_total",
			"Refresh tokens presented again after rotation (the family was revoked)."),
		auditEvents:  counterVec("audit_events_total", "Audit events recorded, by action and result.", "action", "result"),
		auditWritten: counter("audit_events_written_total", "Audit events stored by the audit writer."),
		auditFailed: counter("audit_events_failed_total",
			"Audit events the store refused (or could not be reached for until the close deadline); each was logged whole at error level."),
		auditDropped: counter("audit_events_dropped_total",
			"Audit events never queued: the queue stayed full for the whole bounded wait, or the writer was closed; each was logged whole at error level."),
		auditWait: histogramVec("audit_record_wait_seconds",
			"Time a request waited for room in the full audit queue, by outcome (queued, dropped).",
			[]float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2, 2.5, 5}, "outcome"),
	}
	// Present from the start (0), so that an alert on them needs no
	// absent() clause.
	m.auditWait.WithLabelValues(waitQueued)
	m.auditWait.WithLabelValues(waitDropped)
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.httpRequests, m.httpDuration, m.tokensIssued, m.logins, m.lockouts,
		m.rateLimited, m.reuseDetected, m.auditEvents,
		m.auditWritten, m.auditFailed, m.auditDropped, m.auditWait,
	)
	return m
}

// counter, counterVec and histogramVec make New's collectors, named in
// the permiso namespace.
func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
}

func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
}

func histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets}, labels)
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
		m.httpRequests.WithLabelValues("unmatched", method, strconv.Itoa(status)).Inc()
		m.httpDuration.WithLabelValues("unmatched", method).Observe(d.Seconds())
		return
	}
	k := httpKey{route: route, method: method, status: status}
	c, ok := m.httpChildren.Load(k)
	if !ok {
		c, _ = m.httpChildren.LoadOrStore(k, &httpChildren{
			requests: m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)),
			duration: m.httpDuration.WithLabelValues(route, method),
		})
	}
	ch := c.(*httpChildren)
	ch.requests.Inc()
	ch.duration.Observe(d.Seconds())
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

// Outcomes of a wait for room in the audit queue.
const (
	waitQueued  = "queued"
	waitDropped = "dropped"
)

// AuditWriter is what the audit writer reports to (audit.Options.Observer):
// permiso_audit_events_written_total, _failed_total and _dropped_total,
// and permiso_audit_record_wait_seconds{outcome}.
type AuditWriter struct{ m *Metrics }

// AuditWriter returns the audit writer's observer.
func (m *Metrics) AuditWriter() AuditWriter { return AuditWriter{m: m} }

// Waited observes one wait for room in the full queue.
func (a AuditWriter) Waited(d time.Duration, queued bool) {
	outcome := waitDropped
	if queued {
		outcome = waitQueued
	}
	a.m.auditWait.WithLabelValues(outcome).Observe(d.Seconds())
}

// Written counts stored events.
func (a AuditWriter) Written(n int) { a.m.auditWritten.Add(float64(n)) }

// Failed counts events the store did not take (logged whole).
func (a AuditWriter) Failed(n int) { a.m.auditFailed.Add(float64(n)) }

// Dropped counts events never queued (logged whole).
func (a AuditWriter) Dropped(n int) { a.m.auditDropped.Add(float64(n)) }

// AuditQueueStats is a snapshot of the audit writer's queue.
type AuditQueueStats struct {
	Queued, Capacity, Waiting int
}

// RegisterAuditQueue exports the audit queue as
// permiso_audit_queue_events{state="queued"|"capacity"} and
// permiso_audit_record_waiting (requests now waiting for room).
func (m *Metrics) RegisterAuditQueue(stats func() AuditQueueStats) {
	m.registry.MustRegister(auditQueueCollector{
		queue: prometheus.NewDesc(namespace+"_audit_queue_events",
			"Audit events in the writer's queue (queued) and its size (capacity).", []string{"state"}, nil),
		waiting: prometheus.NewDesc(namespace+"_audit_record_waiting",
			"Requests now waiting for room in the full audit queue.", nil, nil),
		stats: stats,
	})
}

type auditQueueCollector struct {
	queue, waiting *prometheus.Desc
	stats          func() AuditQueueStats
}

func (c auditQueueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.queue
	ch <- c.waiting
}

func (c auditQueueCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, float64(s.Queued), "queued")
	ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, float64(s.Capacity), "capacity")
	ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(s.Waiting))
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
	// Label values must be valid UTF-8 (WithLabelValues panics otherwise);
	// actions and results are the code's constants, cleaned all the same.
	m.auditChildren.get(auditKey{e.Action, e.Result}, func() prometheus.Counter {
		return m.auditEvents.WithLabelValues(permiso.CleanText(e.Action, 128), permiso.CleanText(e.Result, 32))
	}).Inc()
	switch e.Action {
	case actionLoginSuccess:
		m.logins.WithLabelValues("success").Inc()
		// A sign-in on the hosted pages (docs/oidc.md) issues no token;
		// its code exchange is counted as token.issue.
		if method, _ := e.Details["method"].(string); method != "browser" {
			m.tokensIssued.WithLabelValues("password").Inc()
		}
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
		m.grantChildren.get(grant, func() prometheus.Counter {
			label := permiso.CleanText(grant, 64)
			if label == "" {
				label = "unknown"
			}
			return m.tokensIssued.WithLabelValues(label)
		}).Inc()
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

// Package redis holds permiso's adapters over Redis (go-redis v9): the
// connection itself and its health probe, and the state shared by every
// instance: access-token revocations (Revocations), rate limits (Limiter)
// and login lockout counters (Lockout). Every key starts with one of the
// configured CACHE_*_PREFIX values.
//
// One server, Redis Cluster and Sentinel are supported through go-redis's
// UniversalClient (see Open for the URL forms). Every write is one Lua
// script over one key, or over keys that share a hash slot through a
// {hash tag}; reads that span slots are pipelines, which go-redis splits
// per node on a cluster.
package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Options configure Open.
type Options struct {
	// Password, when not empty, overrides the password in the URL
	// (REDIS_PASSWORD).
	Password string
	// PoolSize is the maximum number of connections (0 = go-redis default).
	PoolSize int
	// DialTimeout bounds connecting to the server (0 = 2 s).
	DialTimeout time.Duration
	// Timeout bounds each socket read and write (0 = 2 s).
	Timeout time.Duration
	// MaxRetries is how many times a failed command is retried (0 = the
	// go-redis default, 3; -1 = never).
	MaxRetries int
	// DialAttempts is how many times a new connection is dialled before the
	// command that needed it fails (0 = the go-redis default, 5).
	DialAttempts int
	// Logger receives one warning per ErrorLogInterval while commands
	// fail (with the number of failures since the last one) and one
	// notice when Redis answers again; nil logs nothing. Failures are
	// counted either way (Client.Errors).
	Logger *slog.Logger
	// ErrorLogInterval is the shortest time between two failure warnings
	// (0 = 30 s).
	ErrorLogInterval time.Duration
}

// Modes of a Client, as reported by Client.Mode and the health details.
const (
	ModeSingle   = "single"
	ModeCluster  = "cluster"
	ModeSentinel = "sentinel"
)

// Client is a connected Redis client: one server, a Redis Cluster or a
// Sentinel-managed master.
type Client struct {
	rdb      goredis.UniversalClient
	mode     string
	failures *failureReporter
}

// Open parses REDIS_URL and returns a client. It does not dial; call Ping
// to check the server. The URL forms (the password may come from
// Options.Password instead):
//
//	redis://[user:pass@]host:6379[/db]        one server (rediss:// for TLS)
//	unix:///run/redis.sock[?db=0]              one server over a Unix socket
//	redis://host1:7000,host2:7001[,...]        Redis Cluster (seed nodes)
//	redis+cluster://host1:7000[,host2:7001]    Redis Cluster, even with one seed
//	redis+sentinel://[:pass@]s1:26379[,s2:26379]/mymaster[/db]
//	                                           the master "mymaster" through
//	                                           Sentinel (pass: the master's)
//
// rediss+cluster:// and rediss+sentinel:// use TLS. More seed addresses may
// also be given as ?addr=host:port parameters; other go-redis options as
// query parameters (?dial_timeout=3s). A cluster ignores any /db path.
func Open(rawURL string, opts Options) (*Client, error) {
	// The URL may hold a password: never echo it.
	bad := errors.New("REDIS_URL is not a valid redis://, rediss://, unix://, redis+cluster:// or redis+sentinel:// URL")
	mode, canonical, err := canonicalURL(rawURL)
	if err != nil {
		return nil, bad
	}
	dial := cmp.Or(opts.DialTimeout, 2*time.Second)
	timeout := cmp.Or(opts.Timeout, 2*time.Second)
	c := &Client{mode: mode}
	switch mode {
	case ModeCluster:
		o, err := goredis.ParseClusterURL(canonical)
		if err != nil {
			return nil, bad
		}
		common{&o.Password, &o.PoolSize, &o.MaxRetries, &o.DialerRetries, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout}.set(opts, dial, timeout)
		c.rdb = goredis.NewClusterClient(o)
	case ModeSentinel:
		o, err := goredis.ParseFailoverURL(canonical)
		if err != nil || o.MasterName == "" {
			return nil, bad
		}
		// The URL's user info is the master's password (as for one
		// server); ParseFailoverURL reads it as the sentinels'.
		o.Password = cmp.Or(o.SentinelPassword, o.Password)
		o.SentinelUsername, o.SentinelPassword = "", ""
		common{&o.Password, &o.PoolSize, &o.MaxRetries, &o.DialerRetries, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout}.set(opts, dial, timeout)
		c.rdb = goredis.NewFailoverClient(o)
	default:
		o, err := goredis.ParseURL(canonical)
		if err != nil {
			return nil, bad
		}
		common{&o.Password, &o.PoolSize, &o.MaxRetries, &o.DialerRetries, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout}.set(opts, dial, timeout)
		c.rdb = goredis.NewClient(o)
	}
	c.failures = &failureReporter{log: opts.Logger, interval: cmp.Or(opts.ErrorLogInterval, 30*time.Second), mode: mode}
	c.rdb.AddHook(c.failures)
	return c, nil
}

// common points at the fields that go-redis's three options types
// (Options, ClusterOptions, FailoverOptions) share and Open sets alike.
type common struct {
	password                               *string
	poolSize, maxRetries, dialerRetries    *int
	dialTimeout, readTimeout, writeTimeout *time.Duration
}

// set applies opts over what the URL set: its password, pool size, retries
// and dial attempts when given, and the timeouts dial and timeout.
func (c common) set(opts Options, dial, timeout time.Duration) {
	*c.password = cmp.Or(opts.Password, *c.password)
	*c.poolSize = cmp.Or(opts.PoolSize, *c.poolSize)
	*c.maxRetries = cmp.Or(opts.MaxRetries, *c.maxRetries)
	*c.dialerRetries = cmp.Or(max(opts.DialAttempts, 0), *c.dialerRetries)
	*c.dialTimeout, *c.readTimeout, *c.writeTimeout = dial, timeout, timeout
}

// canonicalURL maps a REDIS_URL onto the mode it names and the URL form
// go-redis parses for that mode: the first host in the authority, the
// others as addr= parameters, the base scheme, and for Sentinel the master
// name as master_name= and the database as the path.
func canonicalURL(raw string) (mode, canonical string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", err
	}
	scheme, suffix, _ := strings.Cut(u.Scheme, "+")
	switch scheme {
	case "redis", "rediss":
	case "unix":
		if suffix != "" {
			return "", "", errors.New("unsupported scheme")
		}
		return ModeSingle, raw, nil
	default:
		return "", "", errors.New("unsupported scheme")
	}
	hosts := strings.Split(u.Host, ",")
	for _, h := range hosts {
		if strings.TrimSpace(h) == "" {
			return "", "", errors.New("empty host")
		}
	}
	q := u.Query()
	switch suffix {
	case "":
		mode = ModeSingle
		if len(hosts) > 1 || len(q["addr"]) > 0 {
			mode = ModeCluster
		}
	case "cluster":
		mode = ModeCluster
	case "sentinel":
		mode = ModeSentinel
	default:
		return "", "", errors.New("unsupported scheme")
	}
	if mode == ModeSingle {
		u.Scheme = scheme
		return mode, u.String(), nil
	}
	for _, h := range hosts[1:] {
		q.Add("addr", strings.TrimSpace(h))
	}
	u.Scheme, u.Host = scheme, strings.TrimSpace(hosts[0])
	switch mode {
	case ModeCluster:
		u.Path, u.RawPath = "", ""
	case ModeSentinel:
		parts := strings.FieldsFunc(u.Path, func(r rune) bool { return r == '/' })
		if len(parts) > 0 {
			if _, err := strconv.Atoi(parts[0]); err != nil {
				q.Set("master_name", parts[0])
				parts = parts[1:]
			}
		}
		if len(parts) > 1 {
			return "", "", errors.New("bad path")
		}
		u.Path, u.RawPath = "/"+strings.Join(parts, ""), ""
		if u.Path == "/" {
			u.Path = ""
		}
	}
	u.RawQuery = q.Encode()
	return mode, u.String(), nil
}

// LogFailures sends the failure reports (see Options.Logger) to l from now
// on; nil silences them. Failures are counted either way.
//
// go-redis's own diagnostics ("failed to dial", one line per attempt while
// Redis is down) go to l at debug level instead of unstructured lines on
// stderr: the reports above already tell the outage, once per interval.
// go-redis keeps one such logger per process.
func (c *Client) LogFailures(l *slog.Logger) {
	c.failures.mu.Lock()
	defer c.failures.mu.Unlock()
	c.failures.log = l
	if l != nil {
		goredis.SetLogger(internalLogger{l})
	}
}

// internalLogger receives go-redis's internal log lines.
type internalLogger struct{ l *slog.Logger }

func (g internalLogger) Printf(ctx context.Context, format string, v ...any) {
	if g.l.Enabled(ctx, slog.LevelDebug) {
		g.l.LogAttrs(ctx, slog.LevelDebug, "go-redis", slog.String("detail", fmt.Sprintf(format, v...)))
	}
}

// Mode reports the kind of deployment the client talks to: ModeSingle,
// ModeCluster or ModeSentinel.
func (c *Client) Mode() string { return c.mode }

// Errors returns how many commands and pipelines have failed since Open
// for a reason other than a missing key (connection refused, timeout,
// CLUSTERDOWN, ...), for metrics.
func (c *Client) Errors() uint64 { return c.failures.total.Load() }

// failureReporter is a go-redis hook that counts failed commands and logs
// them at most once per interval, then once more when Redis answers
// again, so an outage is visible without flooding the log (one warning per
// interval, whatever the request rate). Recovery needs no action: go-redis
// dials new connections on demand.
type failureReporter struct {
	log      *slog.Logger
	interval time.Duration
	mode     string

	total      atomic.Uint64
	down       atomic.Bool
	mu         sync.Mutex
	lastLog    time.Time
	suppressed uint64
}

// unavailablePrefixes are the server replies that mean Redis cannot serve
// now (as opposed to errors in a command, which are bugs, and which the
// caller reports).
var unavailablePrefixes = []string{"CLUSTERDOWN", "LOADING", "MASTERDOWN", "READONLY", "TRYAGAIN",
	"OOM", "NOREPLICAS", "BUSY", "NOAUTH", "WRONGPASS"}

// isFailure reports whether err means Redis is unavailable: a network
// error or timeout, or one of unavailablePrefixes. A missing key, a script
// cache miss (go-redis resends the script), an unknown handshake command
// of an older server and the caller's own cancellation are not.
func isFailure(err error) bool {
	switch {
	case err == nil, errors.Is(err, goredis.Nil), errors.Is(err, context.Canceled):
		return false
	}
	var re goredis.Error
	if !errors.As(err, &re) {
		return true
	}
	for _, p := range unavailablePrefixes {
		if goredis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}

func (f *failureReporter) observe(ctx context.Context, err error) {
	if !isFailure(err) {
		if f.down.Load() && (err == nil || errors.Is(err, goredis.Nil)) {
			f.recovered(ctx)
		}
		return
	}
	f.total.Add(1)
	f.down.Store(true)
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if !f.lastLog.IsZero() && now.Sub(f.lastLog) < f.interval {
		f.suppressed++
		return
	}
	n := f.suppressed + 1
	f.lastLog, f.suppressed = now, 0
	if f.log != nil {
		f.log.LogAttrs(ctx, slog.LevelError, "Redis unavailable: rate limits, lockout and revocation checks fail closed",
			slog.String("mode", f.mode), slog.String("error", err.Error()),
			slog.Uint64("failures_since_last_report", n), slog.Uint64("failures_total", f.total.Load()))
	}
}

func (f *failureReporter) recovered(ctx context.Context) {
	if !f.down.CompareAndSwap(true, false) {
		return
	}
	f.mu.Lock()
	n, log := f.suppressed, f.log
	f.lastLog, f.suppressed = time.Time{}, 0
	f.mu.Unlock()
	if log != nil {
		log.LogAttrs(ctx, slog.LevelWarn, "Redis is answering again",
			slog.String("mode", f.mode), slog.Uint64("unreported_failures", n),
			slog.Uint64("failures_total", f.total.Load()))
	}
}

// DialHook implements goredis.Hook.
func (f *failureReporter) DialHook(next goredis.DialHook) goredis.DialHook { return next }

// ProcessHook implements goredis.Hook.
func (f *failureReporter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		f.observe(ctx, err)
		return err
	}
}

// ProcessPipelineHook implements goredis.Hook.
func (f *failureReporter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		f.observe(ctx, err)
		return err
	}
}

// Universal returns the underlying go-redis client for the adapters built on
// this connection.
func (c *Client) Universal() goredis.UniversalClient { return c.rdb }

// Ping checks that the server answers.
func (c *Client) Ping(ctx context.Context) error {
	return c.rdb.Ping(ctx).Err()
}

// Close closes the connection pool.
func (c *Client) Close() error { return c.rdb.Close() }

// MaxMemoryPolicy returns the server's maxmemory-policy. Servers that forbid
// CONFIG (managed Redis, ACLs) yield an error; callers report it as unknown.
func (c *Client) MaxMemoryPolicy(ctx context.Context) (string, error) {
	res, err := c.rdb.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil {
		return "", err
	}
	p, ok := res["maxmemory-policy"]
	if !ok {
		return "", errors.New("maxmemory-policy not reported")
	}
	return p, nil
}

// EvictionWarning returns a warning when the policy lets Redis evict keys:
// an evicted revocation would bring a revoked token back to life (docs/deployment.md, "Redis must not evict").
// It returns "" for noeviction.
func EvictionWarning(policy string) string {
	switch strings.ToLower(policy) {
	case "noeviction":
		return ""
	case "":
		return "could not read Redis maxmemory-policy; make sure it is noeviction so revocations and lockouts are never evicted"
	default:
		return fmt.Sprintf("Redis maxmemory-policy is %q: Redis may evict revocations and lockout counters; set maxmemory-policy noeviction", policy)
	}
}

// Health pings Redis and reports the eviction policy, for /health and
// `permiso check`.
func (c *Client) Health(ctx context.Context) (map[string]any, error) {
	if err := c.Ping(ctx); err != nil {
		return nil, err
	}
	details := map[string]any{"backend": "redis", "mode": c.mode}
	policy, err := c.MaxMemoryPolicy(ctx)
	if err == nil {
		details["maxmemory_policy"] = policy
	}
	if w := EvictionWarning(policy); w != "" {
		details["warning"] = w
	}
	return details, nil
}

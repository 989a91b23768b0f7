// Package redis holds permiso's adapters over Redis (go-redis v9): the
// connection itself and its health probe, and the state shared by every
// instance: access-token revocations (Revocations) today, rate limits and
// lockout counters later. Every key starts with one of the configured
// CACHE_*_PREFIX values.
package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
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
}

// Client is a connected Redis client.
type Client struct {
	rdb goredis.UniversalClient
}

// Open parses a redis:// or rediss:// URL and returns a client. It does not
// dial; call Ping to check the server.
func Open(url string, opts Options) (*Client, error) {
	o, err := goredis.ParseURL(url)
	if err != nil {
		// The URL may hold a password: never echo it.
		return nil, errors.New("REDIS_URL is not a valid redis:// or rediss:// URL")
	}
	if opts.Password != "" {
		o.Password = opts.Password
	}
	if opts.PoolSize > 0 {
		o.PoolSize = opts.PoolSize
	}
	if opts.MaxRetries != 0 {
		o.MaxRetries = opts.MaxRetries
	}
	if opts.DialAttempts > 0 {
		o.DialerRetries = opts.DialAttempts
	}
	o.DialTimeout = cmp.Or(opts.DialTimeout, 2*time.Second)
	o.ReadTimeout = cmp.Or(opts.Timeout, 2*time.Second)
	o.WriteTimeout = cmp.Or(opts.Timeout, 2*time.Second)
	return &Client{rdb: goredis.NewClient(o)}, nil
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
// an evicted revocation would bring a revoked token back to life (SPEC §4).
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
	details := map[string]any{"backend": "redis"}
	policy, err := c.MaxMemoryPolicy(ctx)
	if err == nil {
		details["maxmemory_policy"] = policy
	}
	if w := EvictionWarning(policy); w != "" {
		details["warning"] = w
	}
	return details, nil
}

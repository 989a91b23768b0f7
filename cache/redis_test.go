package cache_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/cache"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/redis"
)

// instance is one permiso instance of the two-instance tests: its own
// database handle, Redis connection and cache.
type instance struct {
	cs   *cache.Store
	name string // the Redis client name of its connections
}

// redisInstance starts an instance on the database file path whose
// invalidations travel on the Redis channel prefix+"changes", and waits
// until its subscription is live.
func redisInstance(t *testing.T, redisURL, path, prefix string) *instance {
	t.Helper()
	name := "permiso-cache-test-" + strings.ToLower(rand.Text()[:10])
	rc, err := redis.Open(testdb.WithQuery(t, redisURL, "client_name", name), redis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	cs := wrap(t, testdb.SQLiteAt(t, path), cache.Options{TTL: time.Hour, Bus: redis.NewChangeBus(rc, prefix)})
	eventually(t, "the first subscription", func() bool { return cs.Stats().Resyncs >= 1 })
	return &instance{cs: cs, name: name}
}

// TestTwoInstancesOverRedis: two caches over one database, each with its
// own Redis connection, as two `permiso serve` processes. A write through
// A reaches B's cache promptly (the TTL is an hour, so only the
// invalidation can explain it), and a dropped subscription flushes B.
func TestTwoInstancesOverRedis(t *testing.T) {
	redisURL := testdb.RedisURL(t)
	f := newFixture(t)
	prefix := "permiso-test-cache:" + rand.Text()[:12] + ":user:"
	a := redisInstance(t, redisURL, f.path, prefix)
	b := redisInstance(t, redisURL, f.path, prefix)
	ctx := t.Context()

	for _, i := range []*instance{a, b} {
		f.load(t, ctx, i.cs)
	}

	t.Run("DisableUser", func(t *testing.T) {
		if _, err := a.cs.UpdateUser(ctx, f.user.ID, func(u *permiso.User) error { u.IsActive = false; return nil }); err != nil {
			t.Fatal(err)
		}
		if f.userIn(t, ctx, a.cs).IsActive {
			t.Fatal("the writer still serves the old user")
		}
		eventually(t, "B to see the disabled user", func() bool { return !f.userIn(t, ctx, b.cs).IsActive })
	})

	t.Run("RotateClientSecret", func(t *testing.T) {
		f.clientIn(t, ctx, b.cs)
		newHash := permiso.HashToken("rotated")
		if _, err := a.cs.UpdateServiceClient(ctx, f.client.ID, func(c *permiso.ServiceClient) error {
			c.SecretHash = newHash
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "B to see the new secret", func() bool { return f.clientIn(t, ctx, b.cs).SecretHash == newHash })
	})

	t.Run("RoleScopes", func(t *testing.T) {
		f.userIn(t, ctx, b.cs)
		role, err := a.cs.GetRoleByName(ctx, permiso.RoleUser)
		if err != nil {
			t.Fatal(err)
		}
		extra, err := a.cs.GetScopeByName(ctx, "admin:users")
		if err != nil {
			t.Fatal(err)
		}
		ids := []uuid.UUID{extra.ID}
		for _, s := range role.Scopes {
			ids = append(ids, s.ID)
		}
		if err := a.cs.SetRoleScopes(ctx, role.ID, ids); err != nil {
			t.Fatal(err)
		}
		eventually(t, "B to see the role's new scope", func() bool {
			for _, s := range f.userIn(t, ctx, b.cs).ScopeNames() {
				if s == "admin:users" {
					return true
				}
			}
			return false
		})
	})

	t.Run("ResyncFlushes", func(t *testing.T) {
		// A write no bus hears of (another process without Redis).
		f.userIn(t, ctx, b.cs)
		if _, err := f.other.UpdateUser(ctx, f.user.ID, func(u *permiso.User) error { u.Bio = ptr("unannounced"); return nil }); err != nil {
			t.Fatal(err)
		}
		if bio(f.userIn(t, ctx, b.cs)) != "" {
			t.Fatal("B was not caching the user")
		}
		before := b.cs.Stats().Resyncs
		killPubSub(t, redisURL, b.name)
		eventually(t, "B to resubscribe", func() bool { return b.cs.Stats().Resyncs > before })
		if got := bio(f.userIn(t, ctx, b.cs)); got != "unannounced" {
			t.Fatalf("after the resync B still serves bio %q", got)
		}
		// And the new subscription delivers.
		if _, err := a.cs.UpdateUser(ctx, f.user.ID, func(u *permiso.User) error { u.Bio = ptr("after"); return nil }); err != nil {
			t.Fatal(err)
		}
		eventually(t, "B to hear A after the resync", func() bool { return bio(f.userIn(t, ctx, b.cs)) == "after" })
	})
}

// killPubSub kills the pub/sub connection of the client named name
// (CLIENT KILL ID), as a network failure would.
func killPubSub(t *testing.T, redisURL, name string) {
	t.Helper()
	opts, err := goredis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opts)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := rdb.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	sc := bufio.NewScanner(strings.NewReader(list))
	for sc.Scan() {
		fields := map[string]string{}
		for _, kv := range strings.Fields(sc.Text()) {
			k, v, _ := strings.Cut(kv, "=")
			fields[k] = v
		}
		if fields["name"] != name || fields["sub"] == "0" || fields["sub"] == "" {
			continue
		}
		if err := rdb.Do(ctx, "CLIENT", "KILL", "ID", fields["id"]).Err(); err != nil {
			t.Fatal(err)
		}
		killed++
	}
	if killed != 1 {
		t.Fatalf("killed %d pub/sub connections named %s, want 1:\n%s", killed, name, list)
	}
}

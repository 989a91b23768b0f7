package redis

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testredis"
)

// startSentinel starts a Redis Sentinel (redis-server --sentinel) that
// monitors the master at masterAddr under the name "mymaster" with a
// quorum of 1, and returns its address. It is killed when t ends.
func startSentinel(t testing.TB, masterPort int) string {
	t.Helper()
	port := testredis.FreePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	cfg := "port " + strconv.Itoa(port) + "\nbind 127.0.0.1\nprotected-mode no\ndir " + dir + "\n" +
		"sentinel monitor mymaster 127.0.0.1 " + strconv.Itoa(masterPort) + " 1\n" +
		"sentinel down-after-milliseconds mymaster 1000\n" +
		"sentinel failover-timeout mymaster 5000\n"
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return testredis.StartArgs(t, port, dir, conf, "--sentinel", "--loglevel", "warning").Addr
}

// TestSentinel runs the shared-state suites through a REDIS_URL naming a
// Sentinel setup (docs/abuse-resistance.md, "Redis deployments": redis+sentinel://), then has the sentinel fail
// the master over to its replica and shows that the same client, without
// a restart, counts on the new master.
func TestSentinel(t *testing.T) {
	t.Parallel()
	master := testredis.Start(t, 0)
	replica := testredis.Start(t, 0, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port))
	sentinel := startSentinel(t, master.Port)

	c := openLive(t, "redis+sentinel://"+sentinel+"/mymaster", ModeSentinel)
	t.Run("Suites", func(t *testing.T) { runAbuseSuites(t, c) })

	t.Run("Failover", func(t *testing.T) {
		ctx := t.Context()
		// The replica must have caught up before the sentinel will promote
		// it.
		rc := goredis.NewClient(&goredis.Options{Addr: replica.Addr})
		defer rc.Close()
		waitFor(t, "replica in sync", func() bool {
			info, err := rc.Info(ctx, "replication").Result()
			return err == nil && strings.Contains(info, "master_link_status:up")
		})
		prefix := testPrefix(t, c)
		l := NewLimiter(c, prefix)
		lim := permiso.Limit{Count: 100, Period: time.Minute}
		if _, err := l.Allow(ctx, "before", lim); err != nil {
			t.Fatal(err)
		}
		sc := goredis.NewSentinelClient(&goredis.Options{Addr: sentinel})
		defer sc.Close()
		// The sentinel needs to have discovered the replica first.
		waitFor(t, "sentinel sees the replica", func() bool {
			reps, err := sc.Replicas(ctx, "mymaster").Result()
			return err == nil && len(reps) > 0
		})
		if err := sc.Failover(ctx, "mymaster").Err(); err != nil {
			t.Fatalf("SENTINEL FAILOVER: %v", err)
		}
		waitFor(t, "the replica promoted", func() bool {
			addr, err := sc.GetMasterAddrByName(ctx, "mymaster").Result()
			return err == nil && len(addr) == 2 && addr[1] == strconv.Itoa(replica.Port)
		})
		// Sentinel reconfigures the old master as a replica after it
		// announces the new one; until then a write may still reach the old
		// master and be lost (the failover window every Redis client has).
		mc := goredis.NewClient(&goredis.Options{Addr: master.Addr})
		defer mc.Close()
		waitFor(t, "the old master demoted", func() bool {
			info, err := mc.Info(ctx, "replication").Result()
			return err == nil && strings.Contains(info, "role:slave")
		})
		// The same client follows the switch: a limit check succeeds and
		// lands on the new master.
		waitFor(t, "a limit check on the new master", func() bool {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			res, err := l.Allow(cctx, "after", lim)
			return err == nil && res.Allowed
		})
		n, err := rc.Exists(ctx, prefix+"after").Result()
		if err != nil || n != 1 {
			t.Errorf("the check after the failover is not on the promoted replica: %d, %v", n, err)
		}
	})
}

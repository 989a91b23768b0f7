package redis

import (
	"context"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/permiso/permiso/internal/testredis"
	"github.com/permiso/permiso/internal/testtool"
)

// startCluster starts a Redis Cluster of three masters (no replicas) and
// returns its seed addresses once every node reports cluster_state:ok.
func startCluster(t testing.TB) []string {
	t.Helper()
	testredis.RequireBinary(t)
	cli := testtool.Require(t, "redis-cli", "apt-get install redis-tools", "PERMISO_TEST_REQUIRE_REDIS_SERVER")
	var nodes []*testredis.Server
	var addrs []string
	for range 3 {
		n := testredis.Start(t, 0, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "3000")
		nodes = append(nodes, n)
		addrs = append(addrs, n.Addr)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range nodes {
		rdb := goredis.NewClient(&goredis.Options{Addr: n.Addr})
		for {
			info, err := rdb.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				rdb.Close()
				t.Fatalf("cluster node %s not ok: %v %s", n.Addr, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		rdb.Close()
	}
	return addrs
}

// mastersHolding returns how many masters of the cluster behind c hold a
// key starting with prefix.
func mastersHolding(t testing.TB, c *Client, prefix string) int {
	t.Helper()
	var mu sync.Mutex
	n := 0
	err := c.rdb.(*goredis.ClusterClient).ForEachMaster(t.Context(), func(ctx context.Context, node *goredis.Client) error {
		keys, err := node.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			mu.Lock()
			n++
			mu.Unlock()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// clusterURL is the REDIS_URL of a cluster with these seeds.
func clusterURL(addrs []string) string {
	return "redis://" + strings.Join(addrs, ",")
}

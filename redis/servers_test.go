package redis

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// This file starts private redis-server processes for the tests that need
// a server of their own (a cluster, or one to kill), from the Debian
// redis-server package (.ci/run installs it). Each lives in a temporary
// directory, listens on 127.0.0.1 only, and is killed when its test ends.

// requireRedisServer returns the path of redis-server, skipping the test
// when it is not installed.
func requireRedisServer(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("PERMISO_TEST_REQUIRE_REDIS_SERVER") != "" {
			t.Fatal("redis-server is not on PATH and PERMISO_TEST_REQUIRE_REDIS_SERVER is set")
		}
		t.Skip("redis-server is not on PATH (apt-get install redis-server)")
	}
	return path
}

// freeRedisPort returns a free 127.0.0.1 port p whose cluster bus port
// p+10000 is free too.
func freeRedisPort(t testing.TB) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if p+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		if err != nil {
			continue
		}
		bus.Close()
		return p
	}
	t.Fatal("no free port pair for redis-server")
	return 0
}

// redisServer is one private redis-server process.
type redisServer struct {
	Port int
	Addr string
	dir  string
	args []string
	bin  string

	mu  sync.Mutex
	cmd *exec.Cmd
	out *bytes.Buffer
}

// startRedisServer starts redis-server on a free port (or port, when not
// 0) with persistence off, plus extra arguments, and waits until it
// answers PING. It is killed when t ends.
func startRedisServer(t testing.TB, port int, extra ...string) *redisServer {
	t.Helper()
	bin := requireRedisServer(t)
	if port == 0 {
		port = freeRedisPort(t)
	}
	dir := t.TempDir()
	s := &redisServer{Port: port, Addr: "127.0.0.1:" + strconv.Itoa(port), dir: dir, bin: bin}
	s.args = append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no",
		"--maxmemory-policy", "noeviction", "--loglevel", "warning",
	}, extra...)
	s.start(t)
	t.Cleanup(s.Kill)
	return s
}

func (s *redisServer) start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	s.out = &bytes.Buffer{}
	s.cmd = exec.Command(s.bin, s.args...)
	s.cmd.Dir = s.dir
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		s.mu.Unlock()
		t.Fatalf("start redis-server: %v", err)
	}
	s.mu.Unlock()
	rdb := goredis.NewClient(&goredis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.Kill()
			t.Fatalf("redis-server on %s did not answer: %v\n%s", s.Addr, err, s.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server at once (SIGKILL) and waits for it. It is
// idempotent.
func (s *redisServer) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the server again on the same port and directory.
func (s *redisServer) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	s.start(t)
}

// startCluster starts a Redis Cluster of three masters (no replicas) and
// returns its seed addresses once every node reports cluster_state:ok.
func startCluster(t testing.TB) []string {
	t.Helper()
	requireRedisServer(t)
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		if os.Getenv("PERMISO_TEST_REQUIRE_REDIS_SERVER") != "" {
			t.Fatal("redis-cli is not on PATH and PERMISO_TEST_REQUIRE_REDIS_SERVER is set")
		}
		t.Skip("redis-cli is not on PATH")
	}
	var nodes []*redisServer
	var addrs []string
	for range 3 {
		n := startRedisServer(t, 0, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
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

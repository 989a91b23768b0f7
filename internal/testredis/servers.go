package testredis

// This file starts private redis-server processes for the tests that need
// a server of their own (a cluster, a Sentinel, or one to kill and
// restart), from the Debian redis-server package (.ci/run installs it).
// Each lives in a temporary directory, listens on 127.0.0.1 only, and is
// killed when its test ends.

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/permiso/permiso/internal/testtool"
)

// RequireBinary returns the path of redis-server, skipping the test when
// it is not installed (failing it under PERMISO_TEST_REQUIRE_REDIS_SERVER).
func RequireBinary(t testing.TB) string {
	t.Helper()
	return testtool.Require(t, "redis-server", "apt-get install redis-server", "PERMISO_TEST_REQUIRE_REDIS_SERVER")
}

// FreePort returns a free 127.0.0.1 port p whose cluster bus port p+10000
// is free too.
func FreePort(t testing.TB) int {
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

// Server is one private redis-server process.
type Server struct {
	Port int
	Addr string
	dir  string
	args []string
	bin  string

	mu  sync.Mutex
	cmd *exec.Cmd
	out *bytes.Buffer
}

// Start starts redis-server on a free port (or port, when not 0) with
// persistence off, plus extra arguments, and waits until it answers PING.
// It is killed when t ends.
func Start(t testing.TB, port int, extra ...string) *Server {
	t.Helper()
	RequireBinary(t)
	if port == 0 {
		port = FreePort(t)
	}
	dir := t.TempDir()
	return StartArgs(t, port, dir, append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no",
		"--maxmemory-policy", "noeviction", "--loglevel", "warning",
	}, extra...)...)
}

// StartArgs starts redis-server with exactly args in dir, for a server
// listening on port (a Sentinel, say), and waits until it answers PING.
// It is killed when t ends.
func StartArgs(t testing.TB, port int, dir string, args ...string) *Server {
	t.Helper()
	s := &Server{Port: port, Addr: "127.0.0.1:" + strconv.Itoa(port), dir: dir, args: args, bin: RequireBinary(t)}
	s.start(t)
	t.Cleanup(s.Kill)
	return s
}

func (s *Server) start(t testing.TB) {
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
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the server again on the same port and directory (after
// Kill, or killing it first).
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	s.start(t)
}

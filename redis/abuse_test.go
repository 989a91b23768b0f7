package redis

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testclock"
	"github.com/permiso/permiso/internal/testlog"
	"github.com/permiso/permiso/internal/testredis"
	"github.com/permiso/permiso/sharedstatetest"
)

// runAbuseSuites runs the rate-limiter, lockout, revocation, checker and
// once suites against c. Redis expires keys in real time, so the suites
// get a real clock.
func runAbuseSuites(t *testing.T, c *Client) {
	t.Run("Limiter", func(t *testing.T) {
		t.Parallel()
		sharedstatetest.RunRateLimiter(t, func(t *testing.T) (permiso.RateLimiter, *testclock.Clock) {
			return NewLimiter(c, testPrefix(t, c)), testclock.Real()
		})
	})
	t.Run("Lockout", func(t *testing.T) {
		t.Parallel()
		sharedstatetest.RunLockout(t, func(t *testing.T, max int, d time.Duration) (permiso.Lockout, *testclock.Clock) {
			return NewLockout(c, testPrefix(t, c), max, d), testclock.Real()
		})
	})
	t.Run("Revocations", func(t *testing.T) {
		t.Parallel()
		sharedstatetest.RunRevocation(t, func(t *testing.T) (permiso.RevocationStore, *testclock.Clock) {
			return NewRevocations(c, testPrefix(t, c)), testclock.Real()
		})
	})
	t.Run("Checker", func(t *testing.T) {
		t.Parallel()
		sharedstatetest.RunChecker(t, newTestChecker(c))
	})
	t.Run("Once", func(t *testing.T) {
		t.Parallel()
		sharedstatetest.RunOnce(t, func(t *testing.T) (permiso.OnceStore, *testclock.Clock) {
			return NewOnce(c, testPrefix(t, c)), testclock.Real()
		})
	})
}

// TestSuites runs every shared-state suite against the standalone test
// server.
func TestSuites(t *testing.T) {
	t.Parallel()
	runAbuseSuites(t, openTestClient(t))
}

// TestCluster starts a three-master Redis Cluster from the redis-server
// binary and runs every shared-state suite against it (docs/abuse-resistance.md, "Redis deployments": Redis
// Cluster is a supported REDIS_URL).
func TestCluster(t *testing.T) {
	t.Parallel()
	addrs := startCluster(t)
	c := openLive(t, clusterURL(addrs), ModeCluster)
	// The keys of the suites land on all three masters, so the scripts
	// and pipelines really cross nodes.
	t.Run("Suites", func(t *testing.T) { runAbuseSuites(t, c) })

	t.Run("KeysSpreadOverMasters", func(t *testing.T) {
		prefix := testPrefix(t, c)
		l := NewLimiter(c, prefix)
		for i := range 64 {
			if _, err := l.Allow(t.Context(), "ip:"+strings.Repeat("x", i), permiso.Limit{Count: 5, Period: time.Minute}); err != nil {
				t.Fatal(err)
			}
		}
		if nonEmpty := mastersHolding(t, c, prefix); nonEmpty != 3 {
			t.Errorf("keys on %d masters, want 3", nonEmpty)
		}
	})

	t.Run("CrossSlotAllowAllRefused", func(t *testing.T) {
		// Keys without a common hash tag cannot go into one script: the
		// cluster says CROSSSLOT, which is a bug of the caller, not data.
		l := NewLimiter(c, testPrefix(t, c))
		lim := permiso.Limit{Count: 1, Period: time.Minute}
		_, err := l.AllowAll(t.Context(), []string{"a-no-tag", "b-no-tag-either"}, []permiso.Limit{lim, lim})
		if err == nil {
			t.Fatal("AllowAll across slots succeeded; expected CROSSSLOT")
		}
	})
}

// TestServerKilled kills a private redis-server under a limiter, a lockout
// and a revocation store: every call fails promptly with EUNAVAILABLE (the
// callers fail closed), the outage is logged once per interval and
// counted, and everything works again, on the same client, once the server
// is back.
func TestServerKilled(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t, 0)
	var logs testlog.Buffer
	c, err := Open("redis://"+srv.Addr, Options{
		DialTimeout: 200 * time.Millisecond, Timeout: 200 * time.Millisecond,
		MaxRetries: -1, DialAttempts: 1,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), ErrorLogInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := t.Context()
	lim := permiso.Limit{Count: 100, Period: time.Minute}
	l := NewLimiter(c, "permiso-test:kill:")
	lo := NewLockout(c, "permiso-test:kill:", 5, time.Minute)
	rev := NewRevocations(c, "permiso-test:kill:token:")
	if _, err := l.Allow(ctx, "ip", lim); err != nil {
		t.Fatal(err)
	}

	srv.Kill()
	start := time.Now()
	for range 5 {
		_, err := l.Allow(ctx, "ip", lim)
		if permiso.ErrorCode(err) != permiso.EUNAVAILABLE {
			t.Fatalf("Allow with Redis down: err = %v, want EUNAVAILABLE", err)
		}
	}
	if _, err := lo.Begin(ctx, "user"); permiso.ErrorCode(err) != permiso.EUNAVAILABLE {
		t.Fatalf("Begin with Redis down: err = %v", err)
	}
	if _, err := lo.Fail(ctx, "user", "a"); permiso.ErrorCode(err) != permiso.EUNAVAILABLE {
		t.Fatalf("Fail with Redis down: err = %v", err)
	}
	if err := lo.Succeed(ctx, "user", "a"); permiso.ErrorCode(err) != permiso.EUNAVAILABLE {
		t.Fatalf("Succeed with Redis down: err = %v", err)
	}
	if err := lo.Undo(ctx, "user", "a"); permiso.ErrorCode(err) != permiso.EUNAVAILABLE {
		t.Fatalf("Undo with Redis down: err = %v", err)
	}
	if _, err := lo.Check(ctx, "user"); permiso.ErrorCode(err) != permiso.EUNAVAILABLE {
		t.Fatalf("Check with Redis down: err = %v", err)
	}
	if err := lo.Reset(ctx, "user"); permiso.ErrorCode(err) != permiso.EUNAVAILABLE {
		t.Fatalf("Reset with Redis down: err = %v", err)
	}
	if _, err := rev.IsRevoked(ctx, "j", "s", "u", time.Now()); permiso.ErrorCode(err) != permiso.EUNAVAILABLE {
		t.Fatalf("IsRevoked with Redis down: err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("failing took %v; want it prompt", d)
	}
	if n := c.Errors(); n < 9 {
		t.Errorf("Errors() = %d, want every failure counted", n)
	}
	if got := strings.Count(logs.String(), "Redis unavailable"); got != 1 {
		t.Errorf("logged the outage %d times within one interval, want once:\n%s", got, logs.String())
	}

	srv.Restart(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := l.Allow(ctx, "ip", lim)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s, err := lo.Fail(ctx, "user", ""); err != nil || s.Failures != 1 {
		t.Fatalf("Fail after recovery = %+v, %v", s, err)
	}
	if !strings.Contains(logs.String(), "Redis is answering again") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
}

// TestLimiterKeys pins the key layout documented on Limiter and Lockout.
func TestLimiterKeys(t *testing.T) {
	t.Parallel()
	c := openTestClient(t)
	prefix := testPrefix(t, c)
	ctx := t.Context()
	if _, err := NewLimiter(c, prefix).Allow(ctx, "ip:login:192.0.2.1", permiso.Limit{Count: 3, Period: time.Minute}); err != nil {
		t.Fatal(err)
	}
	key := prefix + "ip:login:192.0.2.1"
	if h, err := c.rdb.HGetAll(ctx, key).Result(); err != nil || len(h) != 2 {
		t.Errorf("HGETALL %s = %v, %v; want one slot and the summary", key, h, err)
	} else {
		for end, n := range h {
			if end == "0" {
				continue
			}
			if e, err := strconv.ParseInt(end, 10, 64); err != nil || e%time.Second.Microseconds() != 0 || n != "1" {
				t.Errorf("slot %s = %s, want the end of a one-second slot (µs) holding 1", end, n)
			}
			// The summary: total, oldest and newest slot, period (µs).
			if want := fmt.Sprintf("1 %s %s %d", end, end, time.Minute.Microseconds()); h["0"] != want {
				t.Errorf("summary field 0 = %q, want %q", h["0"], want)
			}
		}
	}
	if d, err := c.rdb.PTTL(ctx, key).Result(); err != nil || d <= 55*time.Second || d > time.Minute+time.Second {
		t.Errorf("PTTL %s = %v, %v; want about a minute", key, d, err)
	}
	lo := NewLockout(c, prefix, 5, 30*time.Minute)
	if _, err := lo.Fail(ctx, "alice", ""); err != nil {
		t.Fatal(err)
	}
	key = LockoutKey(prefix, "alice")
	// The key names a hash of the username, never the username.
	if keys, err := c.rdb.Keys(ctx, prefix+"*alice*").Result(); err != nil || len(keys) != 0 {
		t.Errorf("KEYS %s*alice* = %v, %v; want none", prefix, keys, err)
	}
	if want := prefix + "lockout:2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90"; key != want {
		t.Errorf("lockout key %s, want %s (SHA-256 of alice)", key, want)
	}
	if v, err := c.rdb.HGet(ctx, key, "n").Result(); err != nil || v != "1" {
		t.Errorf("HGET %s n = %q, %v; want 1", key, v, err)
	}
	if d, err := c.rdb.PTTL(ctx, key).Result(); err != nil || d <= 29*time.Minute || d > 30*time.Minute {
		t.Errorf("PTTL %s = %v, %v; want about 30 minutes", key, d, err)
	}
	// An attempt in flight is one field p:<id> on the same key; a key
	// holding nothing else expires with it (a dead instance's place does
	// not outlive permiso.LockoutAttemptTTL).
	a, err := lo.Begin(ctx, "bob")
	if err != nil || !a.Admitted() {
		t.Fatalf("Begin: %+v, %v", a, err)
	}
	key = LockoutKey(prefix, "bob")
	if v, err := c.rdb.HGet(ctx, key, "p:"+a.ID).Result(); err != nil || v == "" {
		t.Errorf("HGET %s p:%s = %q, %v; want the place's expiry", key, a.ID, v, err)
	}
	if d, err := c.rdb.PTTL(ctx, key).Result(); err != nil || d <= 0 || d > permiso.LockoutAttemptTTL {
		t.Errorf("PTTL %s = %v, %v; want at most %v", key, d, err, permiso.LockoutAttemptTTL)
	}
	if err := lo.Undo(ctx, "bob", a.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := c.rdb.Exists(ctx, key).Result(); err != nil || n != 0 {
		t.Errorf("EXISTS %s after the only attempt was undone = %d, %v; want the key gone", key, n, err)
	}
}

func TestCanonicalURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, mode, out string
	}{
		{"redis://localhost:6379/0", ModeSingle, "redis://localhost:6379/0"},
		{"rediss://:pw@cache:6380/2", ModeSingle, "rediss://:pw@cache:6380/2"},
		{"unix:///run/redis.sock?db=1", ModeSingle, "unix:///run/redis.sock?db=1"},
		{"redis://h1:7000,h2:7001,h3:7002", ModeCluster, "redis://h1:7000?addr=h2%3A7001&addr=h3%3A7002"},
		{"redis+cluster://h1:7000", ModeCluster, "redis://h1:7000"},
		{"rediss+cluster://:pw@h1:7000,h2:7001/0", ModeCluster, "rediss://:pw@h1:7000?addr=h2%3A7001"},
		{"redis://h1:7000?addr=h2:7001", ModeCluster, "redis://h1:7000?addr=h2%3A7001"},
		{"redis+sentinel://s1:26379,s2:26379/mymaster", ModeSentinel, "redis://s1:26379?addr=s2%3A26379&master_name=mymaster"},
		{"redis+sentinel://:pw@s1:26379/mymaster/3", ModeSentinel, "redis://:pw@s1:26379/3?master_name=mymaster"},
		{"redis+sentinel://s1:26379/2?master_name=m", ModeSentinel, "redis://s1:26379/2?master_name=m"},
	} {
		mode, out, err := canonicalURL(tc.in)
		if err != nil || mode != tc.mode || out != tc.out {
			t.Errorf("canonicalURL(%q) = %q, %q, %v; want %q, %q", tc.in, mode, out, err, tc.mode, tc.out)
		}
	}
	for _, bad := range []string{"http://h:1", "redis+foo://h:1", "unix+cluster:///x", "redis://h1:7000,,h2:7001", "redis+sentinel://s:1/m/0/1"} {
		if mode, _, err := canonicalURL(bad); err == nil {
			t.Errorf("canonicalURL(%q) = %q, want an error", bad, mode)
		}
	}
	// Open builds the client of each mode without dialling; a sentinel URL
	// needs a master name.
	for in, mode := range map[string]string{
		"redis://127.0.0.1:1/0":                     ModeSingle,
		"redis://127.0.0.1:1,127.0.0.1:2":           ModeCluster,
		"redis+sentinel://127.0.0.1:1/mymaster":     ModeSentinel,
		"redis+sentinel://:s3cret@127.0.0.1:1/m/1":  ModeSentinel,
		"rediss+cluster://127.0.0.1:1,127.0.0.1:2/": ModeCluster,
	} {
		c, err := Open(in, Options{})
		if err != nil {
			t.Errorf("Open(%q): %v", in, err)
			continue
		}
		if c.Mode() != mode {
			t.Errorf("Open(%q).Mode() = %q, want %q", in, c.Mode(), mode)
		}
		c.Close()
	}
	if _, err := Open("redis+sentinel://:s3cr3t@127.0.0.1:1", Options{}); err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("sentinel URL without a master: err = %v", err)
	}
}

// TestLockoutKeyWithoutWindow: a key written before the failure window
// had its own field (n and u only, the count's window being the key's
// TTL) keeps its count until the key expires, and goes on counting.
func TestLockoutKeyWithoutWindow(t *testing.T) {
	t.Parallel()
	c := openTestClient(t)
	prefix := testPrefix(t, c)
	ctx := t.Context()
	key := LockoutKey(prefix, "carol")
	if err := c.rdb.HSet(ctx, key, "n", 2, "u", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.rdb.PExpire(ctx, key, 20*time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	lo := NewLockout(c, prefix, 3, 30*time.Minute)
	if s, err := lo.Check(ctx, "carol"); err != nil || s.Failures != 2 || s.Locked {
		t.Fatalf("Check = %+v, %v; want the 2 failures kept", s, err)
	}
	if a, err := lo.Begin(ctx, "carol"); err != nil || !a.Admitted() || a.State.Failures != 2 {
		t.Fatalf("Begin = %+v, %v; want admitted with 2 failures", a, err)
	} else if s, err := lo.Fail(ctx, "carol", a.ID); err != nil || !s.JustLocked || s.Failures != 3 {
		t.Fatalf("Fail = %+v, %v; want the third failure to lock", s, err)
	}
}

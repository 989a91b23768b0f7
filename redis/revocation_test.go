package redis

import (
	"context"
	"crypto/rand"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testredis"
	"github.com/permiso/permiso/sharedstatetest"
)

// openTestClient connects to PERMISO_TEST_REDIS_URL (skipping without it)
// and closes the client when t ends.
func openTestClient(t testing.TB) *Client {
	t.Helper()
	c := openClient(t, testdb.RedisURL(t), Options{})
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("PERMISO_TEST_REDIS_URL does not answer: %v", err)
	}
	return c
}

// openClient opens url with opts and closes the client when the test
// ends.
func openClient(t testing.TB, url string, opts Options) *Client {
	t.Helper()
	c, err := Open(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// openLive opens url with the default options, checks that the client
// runs in mode and that the server answers a ping.
func openLive(t testing.TB, url, mode string) *Client {
	t.Helper()
	c := openClient(t, url, Options{})
	if c.Mode() != mode {
		t.Fatalf("Mode = %q, want %s", c.Mode(), mode)
	}
	if err := c.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	return c
}

// testPrefix returns a key prefix unique to this test and deletes every key
// under it, on every master of a cluster, when the test ends, so tests run
// in parallel and leave nothing behind.
func testPrefix(t testing.TB, c *Client) string {
	t.Helper()
	prefix := "permiso-test:" + rand.Text()[:16] + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		if cc, ok := c.rdb.(*goredis.ClusterClient); ok {
			// Keys of different slots cannot share a DEL, even on one
			// node: delete them one by one, through the cluster client.
			err = cc.ForEachMaster(ctx, func(ctx context.Context, node *goredis.Client) error {
				iter := node.Scan(ctx, 0, prefix+"*", 500).Iterator()
				for iter.Next(ctx) {
					if err := cc.Del(ctx, iter.Val()).Err(); err != nil {
						return err
					}
				}
				return iter.Err()
			})
		} else {
			_, err = deletePrefix(ctx, c.rdb, prefix)
		}
		if err != nil {
			t.Errorf("cleaning up %s*: %v", prefix, err)
		}
	})
	return prefix
}

// deletePrefix removes every key starting with prefix (SCAN + DEL).
func deletePrefix(ctx context.Context, rdb goredis.UniversalClient, prefix string) (int, error) {
	n := 0
	iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := rdb.Del(ctx, batch...).Err(); err != nil {
				return n, err
			}
			n += len(batch)
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return n, err
	}
	if len(batch) > 0 {
		if err := rdb.Del(ctx, batch...).Err(); err != nil {
			return n, err
		}
		n += len(batch)
	}
	return n, nil
}

// testRevocations opens the test server and returns it with a key prefix
// of this test's own and revocations under that prefix.
func testRevocations(t *testing.T) (*Client, string, *Revocations) {
	t.Helper()
	c := openTestClient(t)
	prefix := testPrefix(t, c)
	return c, prefix, NewRevocations(c, prefix)
}

func TestRevocationKeysAndTTL(t *testing.T) {
	t.Parallel()
	c, prefix, r := testRevocations(t)
	// Freeze the store's clock: TTLs are computed from it alone.
	now := time.Now()
	r.now = func() time.Time { return now }
	ctx := t.Context()

	pttl := func(key string) time.Duration {
		t.Helper()
		d, err := c.rdb.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatalf("PTTL %s: %v", key, err)
		}
		return d
	}
	get := func(key string) string {
		t.Helper()
		v, err := c.rdb.Get(ctx, key).Result()
		if err != nil {
			t.Fatalf("GET %s: %v", key, err)
		}
		return v
	}
	within := func(name string, got, lo, hi time.Duration) {
		t.Helper()
		if got <= lo || got > hi {
			t.Errorf("%s: PTTL = %v, want in (%v, %v]", name, got, lo, hi)
		}
	}

	if err := r.RevokeToken(ctx, "j1", now.Add(90*time.Second)); err != nil {
		t.Fatal(err)
	}
	key := prefix + "revoked:jti:j1"
	if v := get(key); v != "1" {
		t.Errorf("%s = %q, want 1", key, v)
	}
	within("jti", pttl(key), 85*time.Second, 90*time.Second)

	// An expiry in the past stores for one second, never forever.
	if err := r.RevokeSession(ctx, "s1", now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	key = prefix + "revoked:sid:s1"
	if v := get(key); v != "1" {
		t.Errorf("%s = %q, want 1", key, v)
	}
	within("past sid", pttl(key), 0, time.Second)

	// A key left without a TTL (by hand, or an older release) gets one.
	key = prefix + "revoked:jti:j2"
	if err := c.rdb.Set(ctx, key, "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.RevokeToken(ctx, "j2", now.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	within("jti without TTL", pttl(key), 5*time.Second, 10*time.Second)

	// Subject and global cut-offs: the value is the cut-off in unix
	// milliseconds, rounded up; the cut-off only moves forward and the TTL
	// only grows.
	cutoff := time.Unix(1_900_000_000, 900_000_000)
	steps := []struct {
		cutoff    time.Time
		exp       time.Duration
		wantValue int64
		lo, hi    time.Duration
	}{
		{cutoff, time.Minute, 1_900_000_000_900, 55 * time.Second, time.Minute},
		{cutoff.Add(-time.Hour), 2 * time.Minute, 1_900_000_000_900, 115 * time.Second, 2 * time.Minute},
		{cutoff.Add(time.Hour + 400*time.Microsecond), 10 * time.Second, 1_900_003_600_901, 115 * time.Second, 2 * time.Minute},
	}
	for _, kind := range []struct {
		key    string
		revoke func(cutoff, exp time.Time) error
	}{
		{prefix + "revoked:subms:u1", func(cutoff, exp time.Time) error { return r.RevokeSubjectBefore(ctx, "u1", cutoff, exp) }},
		{prefix + "revoked:allms", func(cutoff, exp time.Time) error { return r.RevokeAllBefore(ctx, cutoff, exp) }},
	} {
		for i, st := range steps {
			if err := kind.revoke(st.cutoff, now.Add(st.exp)); err != nil {
				t.Fatal(err)
			}
			if v := get(kind.key); v != strconv.FormatInt(st.wantValue, 10) {
				t.Errorf("step %d: %s = %q, want %d", i, kind.key, v, st.wantValue)
			}
			within(kind.key+" step "+strconv.Itoa(i), pttl(kind.key), st.lo, st.hi)
		}
	}
}

// TestIsRevokedOneRoundTrip counts what reaches the network: IsRevoked must
// be a single pipeline, whatever it finds.
func TestIsRevokedOneRoundTrip(t *testing.T) {
	t.Parallel()
	shared := openTestClient(t)
	c := openClient(t, testdb.RedisURL(t), Options{})
	h := testredis.RoundTrips{IgnoreHandshakes: true}
	c.rdb.AddHook(&h)
	r := NewRevocations(c, testPrefix(t, shared))
	ctx := t.Context()
	now := time.Now()
	if err := r.RevokeSubjectBefore(ctx, "sub", now, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := r.RevokeSession(ctx, "sid", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		jti, sid, sub string
		iat           time.Time
		want          bool
	}{
		{"none", "none", "none", now, false},
		{"none", "sid", "none", now, true},
		{"none", "", "sub", now.Add(-time.Hour), true},
		{"none", "", "sub", now.Add(time.Hour), false},
	} {
		h.Reset()
		got, err := r.IsRevoked(ctx, tc.jti, tc.sid, tc.sub, tc.iat)
		if err != nil || got != tc.want {
			t.Errorf("IsRevoked(%+v) = %v, %v; want %v", tc, got, err, tc.want)
		}
		if s, p := h.Single.Load(), h.Pipelines.Load(); s != 0 || p != 1 {
			t.Errorf("IsRevoked(%+v): %d single commands and %d pipelines, want 0 and 1", tc, s, p)
		}
	}
	// The global cut-off is read in the same pipeline.
	if err := r.RevokeAllBefore(ctx, now, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	h.Reset()
	if got, err := r.IsRevoked(ctx, "none", "", "other", now.Add(-time.Hour)); err != nil || !got {
		t.Errorf("IsRevoked after RevokeAllBefore = %v, %v; want true", got, err)
	}
	if s, p := h.Single.Load(), h.Pipelines.Load(); s != 0 || p != 1 {
		t.Errorf("IsRevoked with the global cut-off: %d single commands and %d pipelines, want 0 and 1", s, p)
	}
}

// TestRevocationsUnreachable checks that a dead Redis gives EUNAVAILABLE
// errors, promptly, for reads and writes alike.
func TestRevocationsUnreachable(t *testing.T) {
	t.Parallel()
	c := openClient(t, "redis://127.0.0.1:1/0", Options{
		DialTimeout:  200 * time.Millisecond,
		Timeout:      200 * time.Millisecond,
		MaxRetries:   -1,
		DialAttempts: 1,
	})
	r := NewRevocations(c, "permiso-test:unreachable:")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	now := time.Now()

	revoked, err := r.IsRevoked(ctx, "jti", "sid", "sub", now)
	if code := permiso.ErrorCode(err); code != permiso.EUNAVAILABLE {
		t.Fatalf("IsRevoked: err = %v (code %q), want EUNAVAILABLE", err, code)
	}
	if revoked {
		t.Error("IsRevoked reported revoked along with an error")
	}
	if msg := permiso.ErrorMessage(err); msg != "revocation store unavailable" {
		t.Errorf("caller-safe message = %q", msg)
	}
	for name, err := range map[string]error{
		"RevokeToken":         r.RevokeToken(ctx, "jti", now.Add(time.Minute)),
		"RevokeSession":       r.RevokeSession(ctx, "sid", now.Add(time.Minute)),
		"RevokeSubjectBefore": r.RevokeSubjectBefore(ctx, "sub", now, now.Add(time.Minute)),
	} {
		if code := permiso.ErrorCode(err); code != permiso.EUNAVAILABLE {
			t.Errorf("%s: err = %v (code %q), want EUNAVAILABLE", name, err, code)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("failing took %v; want it prompt", d)
	}
}

// TestQueueIsRevokedSharesPipeline shows the revocation lookups riding in a
// caller's pipeline next to its own commands (a rate-limit counter).
func TestQueueIsRevokedSharesPipeline(t *testing.T) {
	t.Parallel()
	c, prefix, r := testRevocations(t)
	ctx := t.Context()
	now := time.Now()
	if err := r.RevokeToken(ctx, "j", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	pipe := c.rdb.Pipeline()
	incr := pipe.Incr(ctx, prefix+"counter")
	pipe.Expire(ctx, prefix+"counter", time.Minute)
	revokedJ := r.QueueIsRevoked(ctx, pipe, "j", "", "", now)
	revokedK := r.QueueIsRevoked(ctx, pipe, "k", "s", "u", now)
	if _, err := pipe.Exec(ctx); err != nil && err != goredis.Nil {
		t.Fatal(err)
	}
	if n, err := incr.Result(); err != nil || n != 1 {
		t.Errorf("INCR = %d, %v", n, err)
	}
	if ok, err := revokedJ(); err != nil || !ok {
		t.Errorf("revoked j = %v, %v; want true", ok, err)
	}
	if ok, err := revokedK(); err != nil || ok {
		t.Errorf("revoked k = %v, %v; want false", ok, err)
	}
}

func BenchmarkIsRevoked(b *testing.B) {
	c := openTestClient(b)
	sharedstatetest.BenchmarkIsRevoked(b, NewRevocations(c, testPrefix(b, c)), time.Now)
}

// TestSessionPrefix: with WithSessionPrefix (CACHE_SESSION_PREFIX) the
// revocations of whole sessions live under the session prefix, the others
// under the token prefix, and IsRevoked reads both.
func TestSessionPrefix(t *testing.T) {
	t.Parallel()
	c := openTestClient(t)
	tokens, sessions := testPrefix(t, c), testPrefix(t, c)
	r := NewRevocations(c, tokens).WithSessionPrefix(sessions)
	ctx := t.Context()
	exp := time.Now().Add(time.Minute)
	if err := r.RevokeSession(ctx, "sid-1", exp); err != nil {
		t.Fatal(err)
	}
	if err := r.RevokeToken(ctx, "jti-1", exp); err != nil {
		t.Fatal(err)
	}
	// The session revocation is also written where earlier releases kept
	// it (under the token prefix), for upgrades and rolling deploys.
	for key, want := range map[string]int64{
		sessions + "revoked:sid:sid-1": 1, tokens + "revoked:sid:sid-1": 1,
		tokens + "revoked:jti:jti-1": 1, sessions + "revoked:jti:jti-1": 0,
	} {
		if n, err := c.rdb.Exists(ctx, key).Result(); err != nil || n != want {
			t.Errorf("EXISTS %s = %d, %v; want %d", key, n, err, want)
		}
	}
	if v, err := r.IsRevoked(ctx, "other", "sid-1", "sub", time.Now()); err != nil || !v {
		t.Errorf("token of the revoked session: %v, %v", v, err)
	}
	// A session revoked by an earlier release (token prefix only) is
	// still revoked after the upgrade.
	old := NewRevocations(c, tokens)
	if err := old.RevokeSession(ctx, "sid-old", exp); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.rdb.Exists(ctx, sessions+"revoked:sid:sid-old").Result(); n != 0 {
		t.Fatal("the old-release store wrote under the session prefix")
	}
	if v, err := r.IsRevoked(ctx, "other", "sid-old", "sub", time.Now()); err != nil || !v {
		t.Errorf("session revoked before the upgrade: %v, %v; want revoked", v, err)
	}
}

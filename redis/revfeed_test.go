package redis

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testclock"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testredis"
	"github.com/permiso/permiso/sharedstatetest"
)

// feedBound is the bound of docs/architecture.md, "Revocation feed": the
// default REVOCATION_FEED_MAX_LAG_MS.
const feedBound = time.Second

// startFeed gives r a feed with opts, starts it, stops it when t ends and
// waits until it is live.
func startFeed(t testing.TB, r *Revocations, opts FeedOptions) *Revocations {
	t.Helper()
	r.WithFeed(opts)
	stop := r.StartFeed()
	t.Cleanup(stop)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := r.WaitFeed(ctx); err != nil {
		t.Fatalf("feed not live: %v (%+v)", err, r.FeedStats())
	}
	return r
}

// The store with a feed obeys the same contract as the lookup alone.
func TestRevocationsFeed(t *testing.T) {
	c := openTestClient(t)
	sharedstatetest.RunRevocation(t, func(t *testing.T) (permiso.RevocationStore, *testclock.Clock) {
		return startFeed(t, NewRevocations(c, testPrefix(t, c)), FeedOptions{}), testclock.Real()
	})
}

// Two instances (two clients, two feeds, one prefix): a revocation on one
// is effective on the other within the bound.
func TestRevocationFeedTwoInstances(t *testing.T) {
	shared := openTestClient(t)
	sharedstatetest.RunRevocationPropagation(t, feedBound, func(t *testing.T) (permiso.RevocationStore, permiso.RevocationStore) {
		prefix := testPrefix(t, shared)
		a := startFeed(t, NewRevocations(openClient(t, testdb.RedisURL(t), Options{}), prefix), FeedOptions{})
		b := startFeed(t, NewRevocations(openClient(t, testdb.RedisURL(t), Options{}), prefix), FeedOptions{})
		return a, b
	})
}

// TestRevocationFeedCluster: the same on a three-master Redis Cluster, and
// a resync reads the revocations held by every master.
func TestRevocationFeedCluster(t *testing.T) {
	t.Parallel()
	url := clusterURL(startCluster(t))
	sharedstatetest.RunRevocationPropagation(t, feedBound, func(t *testing.T) (permiso.RevocationStore, permiso.RevocationStore) {
		prefix := "permiso-test:cluster:" + t.Name() + ":"
		a := startFeed(t, NewRevocations(openClient(t, url, Options{}), prefix), FeedOptions{})
		b := startFeed(t, NewRevocations(openClient(t, url, Options{}), prefix), FeedOptions{})
		return a, b
	})
	t.Run("ResyncEveryMaster", func(t *testing.T) {
		t.Parallel()
		c := openClient(t, url, Options{})
		w := NewRevocations(c, "permiso-test:cluster-resync:")
		ctx := t.Context()
		exp := time.Now().Add(time.Minute)
		var jtis []string
		for i := range 64 {
			jti := "jti-" + string(rune('a'+i%26)) + time.Now().Format("150405.000000000")
			jtis = append(jtis, jti)
			if err := w.RevokeToken(ctx, jti, exp); err != nil {
				t.Fatal(err)
			}
		}
		// The keys are spread over the masters.
		masters := mastersHolding(t, c, "permiso-test:cluster-resync:")
		// The keys of a fresh instance's resync: all of them, from memory.
		r := startFeed(t, NewRevocations(openClient(t, url, Options{}), "permiso-test:cluster-resync:"), FeedOptions{})
		for _, j := range jtis {
			if v, err := r.IsRevoked(ctx, j, "", "", time.Now()); err != nil || !v {
				t.Errorf("%s after a resync: %v, %v", j, v, err)
			}
		}
		t.Logf("keys on %d of 3 masters; %d entries in memory", masters, r.FeedStats().Entries)
	})
}

// TestFeedIsRevokedNoRoundTrip: with a live feed, a bearer check (alone or
// in a check batch) sends nothing to Redis.
func TestFeedIsRevokedNoRoundTrip(t *testing.T) {
	t.Parallel()
	shared := openTestClient(t)
	prefix := testPrefix(t, shared)
	c := openClient(t, testdb.RedisURL(t), Options{})
	var h getHook
	c.rdb.AddHook(&h)
	r := startFeed(t, NewRevocations(c, prefix), FeedOptions{})
	ctx := t.Context()
	now := time.Now()
	if err := r.RevokeSession(ctx, "sid", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	checker := NewChecker(NewLimiter(c, prefix), r)
	h.gets.Store(0)
	for i := range 100 {
		sid := "sid"
		if i%2 == 1 {
			sid = "other"
		}
		if got, err := r.IsRevoked(ctx, "jti", sid, "sub", now); err != nil || got != (i%2 == 0) {
			t.Fatalf("IsRevoked(%s) = %v, %v", sid, got, err)
		}
		b := checker.Batch()
		res := b.IsRevoked("jti", sid, "sub", now)
		b.Exec(ctx)
		if got, err := res(); err != nil || got != (i%2 == 0) {
			t.Fatalf("batch IsRevoked(%s) = %v, %v", sid, got, err)
		}
	}
	if n := h.gets.Load(); n != 0 {
		t.Errorf("%d GETs sent for 200 checks on a live feed, want 0", n)
	}
}

// getHook counts the GET commands sent in pipelines (the lookups of
// IsRevoked).
type getHook struct{ gets atomic.Int64 }

func (h *getHook) DialHook(next goredis.DialHook) goredis.DialHook          { return next }
func (h *getHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }

func (h *getHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		for _, c := range cmds {
			if c.Name() == "get" {
				h.gets.Add(1)
			}
		}
		return next(ctx, cmds)
	}
}

// TestFeedDown: a feed whose Redis has gone answers "revoked" from memory,
// and for anything else fails closed (EUNAVAILABLE, without a call) or,
// with Lookup, tries Redis (and fails, Redis being gone) once the bound has
// passed.
func TestFeedDown(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t, 0)
	opts := Options{DialTimeout: 100 * time.Millisecond, Timeout: 200 * time.Millisecond, MaxRetries: -1, DialAttempts: 1}
	url := "redis://" + srv.Addr + "/0"
	closed := startFeed(t, NewRevocations(openClient(t, url, opts), "p:"), FeedOptions{})
	lookup := startFeed(t, NewRevocations(openClient(t, url, opts), "p:"), FeedOptions{Lookup: true})
	ctx := t.Context()
	now := time.Now()
	if err := closed.RevokeToken(ctx, "gone", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	waitRevoked(t, lookup, "gone")

	srv.Kill()
	killed := time.Now()
	for closed.FeedStats().Live || lookup.FeedStats().Live {
		if time.Since(killed) > 10*feedBound {
			t.Fatalf("feeds still live %v after Redis was killed", time.Since(killed))
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("feeds stale %v after Redis was killed (bound %v)", time.Since(killed), feedBound)
	for name, r := range map[string]*Revocations{"fail": closed, "lookup": lookup} {
		if v, err := r.IsRevoked(ctx, "gone", "", "", now); err != nil || !v {
			t.Errorf("%s: revoked token on a stale feed: %v, %v; want revoked, from memory", name, v, err)
		}
	}
	start := time.Now()
	v, err := closed.IsRevoked(ctx, "other", "", "", now)
	if v || !errors.Is(err, errFeedStale) || permiso.ErrorCode(err) != permiso.EUNAVAILABLE {
		t.Errorf("fail: IsRevoked = %v, %v; want the stale-feed EUNAVAILABLE", v, err)
	}
	t.Logf("fail closed answered in %v", time.Since(start))
	v, err = lookup.IsRevoked(ctx, "other", "", "", now)
	if v || permiso.ErrorCode(err) != permiso.EUNAVAILABLE || errors.Is(err, errFeedStale) {
		t.Errorf("lookup: IsRevoked = %v, %v; want the lookup's EUNAVAILABLE", v, err)
	}

	// Redis back (empty: no persistence): both resync and are live again,
	// and memory still holds what was revoked before.
	srv.Restart(t)
	for _, r := range []*Revocations{closed, lookup} {
		wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		if err := r.WaitFeed(wctx); err != nil {
			t.Fatalf("feed not live after Redis came back: %v", err)
		}
		cancel()
		if v, err := r.IsRevoked(ctx, "gone", "", "", now); err != nil || !v {
			t.Errorf("revoked token after Redis came back empty: %v, %v", v, err)
		}
	}
}

// TestFeedStaleLookup: a feed that has stopped (stale) with Lookup set
// answers from Redis per request, correctly, while Redis is up.
func TestFeedStaleLookup(t *testing.T) {
	t.Parallel()
	c := openTestClient(t)
	prefix := testPrefix(t, c)
	r := NewRevocations(c, prefix).WithFeed(FeedOptions{Lookup: true, MaxLag: 50 * time.Millisecond})
	stop := r.StartFeed()
	if err := r.WaitFeed(t.Context()); err != nil {
		t.Fatal(err)
	}
	stop()
	// Another instance revokes: this one's feed no longer hears it.
	w := NewRevocations(c, prefix).WithFeed(FeedOptions{})
	if err := w.RevokeSession(t.Context(), "sid", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	if v, err := r.IsRevoked(t.Context(), "jti", "sid", "", time.Now()); err != nil || !v {
		t.Errorf("stale feed with lookup: %v, %v; want revoked (looked up)", v, err)
	}
	if v, err := r.IsRevoked(t.Context(), "jti", "other", "", time.Now()); err != nil || v {
		t.Errorf("stale feed with lookup: %v, %v; want not revoked", v, err)
	}
	// The same through a check batch: the lookup rides in its pipeline.
	b := NewChecker(NewLimiter(c, prefix), r).Batch()
	revoked, other := b.IsRevoked("jti", "sid", "", time.Now()), b.IsRevoked("jti", "other", "", time.Now())
	b.Exec(t.Context())
	if v, err := revoked(); err != nil || !v {
		t.Errorf("batch on a stale feed with lookup: %v, %v; want revoked", v, err)
	}
	if v, err := other(); err != nil || v {
		t.Errorf("batch on a stale feed with lookup: %v, %v; want not revoked", v, err)
	}
}

// TestFeedResyncAfterReconnect: an instance cut off from Redis (through a
// proxy) misses a revocation and the trimming of its event; once it is
// reconnected it resyncs from the keys and holds the revocation.
func TestFeedResyncAfterReconnect(t *testing.T) {
	t.Parallel()
	shared := openTestClient(t)
	prefix := testPrefix(t, shared)
	p := startProxy(t, shared.rdb.(*goredis.Client).Options().Addr)
	opts := Options{DialTimeout: 100 * time.Millisecond, Timeout: 200 * time.Millisecond, MaxRetries: -1, DialAttempts: 1}
	a := startFeed(t, NewRevocations(openClient(t, "redis://"+p.addr+"/0", opts), prefix), FeedOptions{})
	b := startFeed(t, NewRevocations(openClient(t, testdb.RedisURL(t), Options{}), prefix), FeedOptions{})
	ctx := t.Context()
	resyncs := a.FeedStats().Resyncs

	p.down()
	for a.FeedStats().Live {
		time.Sleep(5 * time.Millisecond)
	}
	if err := b.RevokeToken(ctx, "while-down", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// The event is trimmed away: only the key tells.
	if err := shared.rdb.XTrimMaxLen(ctx, prefix+"revoked:feed", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.IsRevoked(ctx, "while-down", "", "", time.Now()); !errors.Is(err, errFeedStale) {
		t.Errorf("cut-off instance: %v, want the stale-feed error", err)
	}
	p.up(t)
	up := time.Now()
	waitRevoked(t, a, "while-down")
	t.Logf("revocation made while disconnected effective %v after reconnection; resyncs %d -> %d",
		time.Since(up), resyncs, a.FeedStats().Resyncs)
	if a.FeedStats().Resyncs <= resyncs {
		t.Error("no resync after reconnection")
	}
}

// TestFeedGap: events trimmed before they were read make the reader
// resync (readFeed reports the gap).
func TestFeedGap(t *testing.T) {
	t.Parallel()
	c := openTestClient(t)
	prefix := testPrefix(t, c)
	r := NewRevocations(c, prefix).WithFeed(FeedOptions{})
	w := NewRevocations(c, prefix).WithFeed(FeedOptions{})
	ctx := t.Context()
	if err := w.RevokeToken(ctx, "first", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	cur, err := r.resync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cur, err = r.readFeed(ctx, cur); err != nil {
		t.Fatalf("read without a gap: %v", err)
	}
	if err := w.RevokeToken(ctx, "trimmed", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := c.rdb.XTrimMaxLen(ctx, prefix+"revoked:feed", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := w.RevokeToken(ctx, "after", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.readFeed(ctx, cur); !errors.Is(err, errFeedGap) {
		t.Fatalf("read over trimmed events: %v, want the gap", err)
	}
	// A stream recreated (Redis lost its data) is a reset.
	if cur, err = r.resync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.rdb.Del(ctx, prefix+"revoked:feed").Err(); err != nil {
		t.Fatal(err)
	}
	if err := w.RevokeToken(ctx, "recreated", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.readFeed(ctx, cur); !errors.Is(err, errFeedReset) {
		t.Fatalf("read of a recreated stream: %v, want the reset", err)
	}
}

// TestFeedPrunesExpired: expired entries leave memory.
func TestFeedPrunesExpired(t *testing.T) {
	t.Parallel()
	c := openTestClient(t)
	r := NewRevocations(c, testPrefix(t, c)).WithFeed(FeedOptions{})
	r.feed.sweep = 50 * time.Millisecond
	stop := r.StartFeed()
	t.Cleanup(stop)
	if err := r.WaitFeed(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	past := time.Now().Add(-time.Hour) // kept the minimum, one second
	if err := r.RevokeToken(ctx, "short", past); err != nil {
		t.Fatal(err)
	}
	if err := r.RevokeSession(ctx, "short", past); err != nil {
		t.Fatal(err)
	}
	if n := r.FeedStats().Entries; n != 2 {
		t.Fatalf("entries = %d, want 2", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.FeedStats().Entries != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("entries = %d ten seconds later, want 0", r.FeedStats().Entries)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v, err := r.IsRevoked(ctx, "short", "short", "", time.Now()); err != nil || v {
		t.Errorf("expired: %v, %v", v, err)
	}
}

func waitRevoked(t *testing.T, r *Revocations, jti string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		v, err := r.IsRevoked(t.Context(), jti, "", "", time.Now())
		if err == nil && v {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not revoked: %v, %v (%+v)", jti, v, err, r.FeedStats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkIsRevokedFeed is BenchmarkIsRevoked answered from a live feed.
func BenchmarkIsRevokedFeed(b *testing.B) {
	c := openTestClient(b)
	sharedstatetest.BenchmarkIsRevoked(b, startFeed(b, NewRevocations(c, testPrefix(b, c)), FeedOptions{}), time.Now)
}

// proxy forwards TCP connections to a Redis server; down cuts every
// connection and refuses new ones until up.
type proxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), target: target}
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", p.target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
}

func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) up(t *testing.T) {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.serve(ln)
}

package redis

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testclock"
	"github.com/permiso/permiso/internal/testredis"
	"github.com/permiso/permiso/sharedstatetest"
)

// newTestChecker returns the sharedstatetest constructor of checkers over c,
// each under its own key prefix.
func newTestChecker(c *Client) sharedstatetest.NewChecker {
	return func(t *testing.T) (permiso.Checker, permiso.RateLimiter, permiso.RevocationStore, *testclock.Clock) {
		prefix := testPrefix(t, c)
		l, r := NewLimiter(c, prefix+"rate:"), NewRevocations(c, prefix+"token:")
		return NewChecker(l, r), l, r, testclock.Real()
	}
}

// TestCheckerFeed: the checker suite (run over plain revocations by
// TestSuites) with the revocation lookups answered by a live
// feed (docs/architecture.md, "Revocation feed").
func TestCheckerFeed(t *testing.T) {
	t.Parallel()
	c := openTestClient(t)
	sharedstatetest.RunChecker(t, func(t *testing.T) (permiso.Checker, permiso.RateLimiter, permiso.RevocationStore, *testclock.Clock) {
		prefix := testPrefix(t, c)
		l := NewLimiter(c, prefix+"rate:")
		r := startFeed(t, NewRevocations(c, prefix+"token:"), FeedOptions{})
		return NewChecker(l, r), l, r, testclock.Real()
	})
}

// TestCheckerFeedRevocationsInOneBatch: revocation checks answered by a
// live feed keep their own answers in a batch of more of them than the
// batch stores inline (localBuf), revoked and not, in any order.
func TestCheckerFeedRevocationsInOneBatch(t *testing.T) {
	t.Parallel()
	c := openTestClient(t)
	r := startFeed(t, NewRevocations(c, testPrefix(t, c)+"token:"), FeedOptions{})
	checker := NewChecker(NewLimiter(c, testPrefix(t, c)+"rate:"), r)
	ctx := context.Background()
	now := time.Now()
	if err := r.RevokeSession(ctx, "sid-revoked", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitFeed(ctx); err != nil {
		t.Fatal(err)
	}
	b := checker.Batch()
	want := []bool{true, false, false, true, false, true}
	var answers []func() (bool, error)
	for i, revoked := range want {
		sid := "sid-live"
		if revoked {
			sid = "sid-revoked"
		}
		answers = append(answers, b.IsRevoked("jti-"+string(rune('a'+i)), sid, "sub", now))
	}
	b.Exec(ctx)
	for i, answer := range answers {
		if got, err := answer(); err != nil || got != want[i] {
			t.Errorf("check %d: %v, %v; want %v", i, got, err, want[i])
		}
	}
}

// TestCheckerOneRoundTrip shows one round trip per request (docs/abuse-resistance.md) on a single server: a request's
// per-IP limits, a client's two limits and a token's three revocation
// lookups travel as one pipeline, and a server that forgot the limiter
// script (SCRIPT FLUSH: a restart or failover) costs one extra call for
// that check, with the same answers.
func TestCheckerOneRoundTrip(t *testing.T) {
	t.Parallel()
	c := openTestClient(t)
	counter := &testredis.RoundTrips{}
	c.rdb.AddHook(counter)
	ck := newTestChecker(c)
	checker, _, rev, _ := ck(t)
	ctx := context.Background()
	now := time.Now()
	if err := rev.RevokeSession(ctx, "sid-1", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	run := func() (permiso.LimitResult, []permiso.LimitResult, bool) {
		b := checker.Batch()
		ip := b.Allow("ip:api:127.0.0.1", permiso.Limit{Count: 100, Period: time.Minute})
		cl := b.AllowAll([]string{"client:{c1}:minute", "client:{c1}:hour"},
			[]permiso.Limit{{Count: 10, Period: time.Minute}, {Count: 100, Period: time.Hour}})
		rv := b.IsRevoked("jti-1", "sid-1", "sub-1", now)
		b.Exec(ctx)
		r1, err := ip()
		if err != nil {
			t.Fatal(err)
		}
		r2, err := cl()
		if err != nil {
			t.Fatal(err)
		}
		r3, err := rv()
		if err != nil {
			t.Fatal(err)
		}
		return r1, r2, r3
	}
	run() // loads the script if this server has never seen it
	counter.Reset()
	ip, cl, revoked := run()
	if s, p, n := counter.Single.Load(), counter.Pipelines.Load(), counter.Commands.Load(); s != 0 || p != 1 || n != 6 {
		t.Errorf("one batch sent %d single commands and %d pipelines of %d commands; want 0 and 1 of 6 (2 scripts, 4 GETs: jti, sid, subject, global)", s, p, n)
	}
	if !ip.Allowed || ip.Remaining != 98 || len(cl) != 2 || cl[0].Remaining != 8 || !revoked {
		t.Errorf("answers: ip %+v, client %+v, revoked %v", ip, cl, revoked)
	}

	if err := c.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	ip, cl, revoked = run()
	if !ip.Allowed || ip.Remaining != 97 || cl[0].Remaining != 7 || !revoked {
		t.Errorf("after SCRIPT FLUSH: ip %+v, client %+v, revoked %v", ip, cl, revoked)
	}
}

// TestCheckerUnreachable: with Redis gone every check of a batch reports
// EUNAVAILABLE (the callers fail closed), none panics or hangs.
func TestCheckerUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := openClient(t, "redis://"+addr+"/0", Options{})
	checker := NewChecker(NewLimiter(c, "x:"), NewRevocations(c, "y:"))
	b := checker.Batch()
	ip := b.Allow("k", permiso.Limit{Count: 1, Period: time.Minute})
	all := b.AllowAll([]string{"a{t}", "b{t}"}, []permiso.Limit{{Count: 1, Period: time.Minute}, {Count: 1, Period: time.Hour}})
	rv := b.IsRevoked("j", "s", "u", time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b.Exec(ctx)
	if _, err := ip(); permiso.ErrorCode(err) != permiso.EUNAVAILABLE {
		t.Errorf("Allow: %v, want EUNAVAILABLE", err)
	}
	if _, err := all(); permiso.ErrorCode(err) != permiso.EUNAVAILABLE {
		t.Errorf("AllowAll: %v, want EUNAVAILABLE", err)
	}
	if v, err := rv(); v || permiso.ErrorCode(err) != permiso.EUNAVAILABLE {
		t.Errorf("IsRevoked: %v, %v, want EUNAVAILABLE", v, err)
	}
}

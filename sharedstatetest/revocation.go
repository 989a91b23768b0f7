package sharedstatetest

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testclock"
)

// NewRevocationStore returns a fresh, empty store for one test, and the clock
// it runs on. It is called once per subtest (sometimes more), from parallel
// subtests, so each call must return a store isolated from every other (its
// own instance, or its own key prefix) and register its own cleanup with
// t.Cleanup.
type NewRevocationStore func(t *testing.T) (permiso.RevocationStore, *testclock.Clock)

// RunRevocation runs the conformance suite for permiso.RevocationStore.
// Subtests run in parallel. Besides the obligations written on the
// interface, the suite requires that:
//   - a revocation is never shortened: revoking the same jti, sid or subject
//     again with an earlier expiresAt keeps the later one;
//   - an expiresAt in the past still stores the entry for at least one
//     second, without error, and never forever;
//   - revoking an empty jti, sid or subject fails with EINVALID (an empty sid
//     would otherwise revoke every token that has no session), and IsRevoked
//     ignores empty identifiers;
//   - cut-offs (subject and global) are exact to the millisecond: a token
//     issued before the cut-off, even in its own second or millisecond, is
//     revoked, and one issued at a whole millisecond at or after it is not;
//   - the global cut-off (RevokeAllBefore) catches every token whatever its
//     identifiers, never moves back and expires like the others.
func RunRevocation(t *testing.T, newStore NewRevocationStore) {
	t.Helper()
	runSuite(t, newStore, []conformance[permiso.RevocationStore]{
		{"UnknownTokenNotRevoked", testUnknownNotRevoked},
		{"RevokeTokenOnlyThatJTI", testRevokeToken},
		{"RevokeSession", testRevokeSession},
		{"RevokeSubjectBeforeSubSecond", testSubjectSubSecond},
		{"RevokeSubjectBeforeNeverMovesBack", testSubjectNeverMovesBack},
		{"RevokeAllBeforeEverySubject", testAllEverySubject},
		{"RevokeAllBeforeSubSecond", testAllSubSecond},
		{"RevokeAllBeforeNeverMovesBack", testAllNeverMovesBack},
		{"RevokeAllBeforeExpiry", testAllExpiry},
		{"SubjectsIsolated", testSubjectsIsolated},
		{"EmptyIdentifiers", testEmptyIdentifiers},
		{"Expiry", testExpiry},
		{"Concurrent", testConcurrent},
	}, "StoresIsolated", testStoresIsolated)
}

// id returns a random identifier with a readable label, so that a store that
// leaks state between tests cannot pass by accident.
func id(label string) string {
	return label + "-" + rand.Text()[:12]
}

func revoked(t *testing.T, s permiso.RevocationStore, jti, sid, sub string, iat time.Time) bool {
	t.Helper()
	ok, err := s.IsRevoked(t.Context(), jti, sid, sub, iat)
	if err != nil {
		t.Fatalf("IsRevoked(%q, %q, %q, %v): %v", jti, sid, sub, iat, err)
	}
	return ok
}

func wantRevoked(t *testing.T, s permiso.RevocationStore, want bool, jti, sid, sub string, iat time.Time) {
	t.Helper()
	if got := revoked(t, s, jti, sid, sub, iat); got != want {
		t.Errorf("IsRevoked(jti=%q, sid=%q, sub=%q, iat=%v) = %v, want %v", jti, sid, sub, iat.UTC(), got, want)
	}
}

func revokeToken(t *testing.T, s permiso.RevocationStore, jti string, exp time.Time) {
	t.Helper()
	if err := s.RevokeToken(t.Context(), jti, exp); err != nil {
		t.Fatalf("RevokeToken(%q): %v", jti, err)
	}
}

func revokeSession(t *testing.T, s permiso.RevocationStore, sid string, exp time.Time) {
	t.Helper()
	if err := s.RevokeSession(t.Context(), sid, exp); err != nil {
		t.Fatalf("RevokeSession(%q): %v", sid, err)
	}
}

func revokeSubject(t *testing.T, s permiso.RevocationStore, sub string, cutoff, exp time.Time) {
	t.Helper()
	if err := s.RevokeSubjectBefore(t.Context(), sub, cutoff, exp); err != nil {
		t.Fatalf("RevokeSubjectBefore(%q, %v): %v", sub, cutoff, err)
	}
}

func revokeAll(t *testing.T, s permiso.RevocationStore, cutoff, exp time.Time) {
	t.Helper()
	if err := s.RevokeAllBefore(t.Context(), cutoff, exp); err != nil {
		t.Fatalf("RevokeAllBefore(%v): %v", cutoff, err)
	}
}

// subSecondCases are issue times around a cut-off at base+frac (base a
// whole second) and whether the cut-off revokes them: everything before the
// cut-off, in its own second and millisecond included, and nothing from the
// next whole millisecond at or after it on.
func subSecondCases(base time.Time, frac time.Duration) []struct {
	iat  time.Time
	want bool
} {
	cutoff := base.Add(frac)
	after := permiso.RevocationCutoff(cutoff) // first whole millisecond at or after it
	return []struct {
		iat  time.Time
		want bool
	}{
		{base.Add(-10 * time.Minute), true},
		{base.Add(-time.Second), true},
		{base.Add(-time.Millisecond), true},
		{base, frac > 0}, // the cut-off's own second, before it
		{cutoff.Add(-time.Millisecond), true},
		{cutoff.Add(-time.Nanosecond), true},
		{cutoff.Truncate(time.Millisecond).Add(-time.Millisecond), true},
		{after, false},
		{after.Add(time.Millisecond), false},
		{base.Add(time.Second), false},
		{base.Add(time.Hour), false},
	}
}

// subSecondFracs are cut-offs at the start of a second, inside it on a
// whole millisecond (what permiso.RevocationCutoff returns) and between
// two milliseconds (which a store rounds up, never down).
var subSecondFracs = []time.Duration{0, 700 * time.Millisecond, 700*time.Millisecond + 400*time.Microsecond}

func testUnknownNotRevoked(t *testing.T, s permiso.RevocationStore, c *testclock.Clock) {
	now := c.Now()
	wantRevoked(t, s, false, id("jti"), id("sid"), id("sub"), now)
	wantRevoked(t, s, false, id("jti"), "", id("sub"), now.Add(-time.Hour))
	wantRevoked(t, s, false, id("jti"), "", id("sub"), time.Unix(0, 0))
}

func testRevokeToken(t *testing.T, s permiso.RevocationStore, c *testclock.Clock) {
	now := c.Now()
	jti, other, sid, sub := id("jti"), id("jti"), id("sid"), id("sub")
	revokeToken(t, s, jti, now.Add(time.Hour))
	wantRevoked(t, s, true, jti, sid, sub, now)
	wantRevoked(t, s, true, jti, "", id("sub"), now)
	// Same session and subject, another jti: untouched.
	wantRevoked(t, s, false, other, sid, sub, now)
	// Revoking again is harmless.
	revokeToken(t, s, jti, now.Add(time.Hour))
	wantRevoked(t, s, true, jti, sid, sub, now)
}

func testRevokeSession(t *testing.T, s permiso.RevocationStore, c *testclock.Clock) {
	now := c.Now()
	sid, otherSid, sub := id("sid"), id("sid"), id("sub")
	revokeSession(t, s, sid, now.Add(time.Hour))
	for range 3 {
		wantRevoked(t, s, true, id("jti"), sid, sub, now)
	}
	wantRevoked(t, s, true, id("jti"), sid, id("sub"), now.Add(time.Minute))
	wantRevoked(t, s, false, id("jti"), otherSid, sub, now)
	// A token without a session (a service token) is not caught.
	wantRevoked(t, s, false, id("jti"), "", sub, now)
}

func testSubjectSubSecond(t *testing.T, s permiso.RevocationStore, c *testclock.Clock) {
	now := c.Now()
	exp := now.Add(time.Hour)
	for _, frac := range subSecondFracs {
		t.Run(fmt.Sprintf("cutoff+%v", frac), func(t *testing.T) {
			sub := id("sub")
			base := now.Truncate(time.Second).Add(-time.Hour)
			revokeSubject(t, s, sub, base.Add(frac), exp)
			for _, tc := range subSecondCases(base, frac) {
				wantRevoked(t, s, tc.want, id("jti"), id("sid"), sub, tc.iat)
				// Another subject is never caught.
				wantRevoked(t, s, false, id("jti"), id("sid"), id("sub"), tc.iat)
			}
		})
	}
}

func testSubjectNeverMovesBack(t *testing.T, s permiso.RevocationStore, c *testclock.Clock) {
	now := c.Now()
	exp := now.Add(time.Hour)
	sub := id("sub")
	cutoff := now.Truncate(time.Second).Add(-time.Minute)
	revokeSubject(t, s, sub, cutoff, exp)
	revokeSubject(t, s, sub, cutoff.Add(-30*time.Minute), exp)
	wantRevoked(t, s, true, id("jti"), "", sub, cutoff.Add(-time.Millisecond))
	wantRevoked(t, s, true, id("jti"), "", sub, cutoff.Add(-10*time.Minute))
	wantRevoked(t, s, false, id("jti"), "", sub, cutoff)

	// A later cutoff moves it forward, by as little as a millisecond.
	later := cutoff.Add(30 * time.Second)
	revokeSubject(t, s, sub, later, exp)
	wantRevoked(t, s, true, id("jti"), "", sub, later.Add(-time.Millisecond))
	wantRevoked(t, s, false, id("jti"), "", sub, later)
	revokeSubject(t, s, sub, later.Add(time.Millisecond), exp)
	wantRevoked(t, s, true, id("jti"), "", sub, later)
	wantRevoked(t, s, false, id("jti"), "", sub, later.Add(time.Millisecond))
}

func testAllEverySubject(t *testing.T, s permiso.RevocationStore, c *testclock.Clock) {
	now := c.Now()
	cutoff := permiso.RevocationCutoff(now.Add(-time.Minute))
	revokeAll(t, s, cutoff, now.Add(time.Hour))
	before, after := cutoff.Add(-time.Millisecond), cutoff
	for _, tc := range []struct{ name, jti, sid, sub string }{
		{"user token", id("jti"), id("sid"), id("user")},
		{"service token", id("jti"), "", permiso.ClientRevocationSubject(id("client"))},
		{"jti only", id("jti"), "", ""},
		{"sid only", "", id("sid"), ""},
		{"subject only", "", "", id("sub")},
	} {
		if got := revoked(t, s, tc.jti, tc.sid, tc.sub, before); !got {
			t.Errorf("%s issued before the global cut-off: not revoked", tc.name)
		}
		if got := revoked(t, s, tc.jti, tc.sid, tc.sub, after); got {
			t.Errorf("%s issued at the global cut-off: revoked", tc.name)
		}
	}
	// No identifier at all is no token.
	wantRevoked(t, s, false, "", "", "", before)
	// The other rules still apply after the global cut-off.
	jti, sid, sub := id("jti"), id("sid"), id("sub")
	revokeToken(t, s, jti, now.Add(time.Hour))
	revokeSession(t, s, sid, now.Add(time.Hour))
	revokeSubject(t, s, sub, now, now.Add(time.Hour))
	wantRevoked(t, s, true, jti, "", "", after)
	wantRevoked(t, s, true, "", sid, "", after)
	wantRevoked(t, s, true, "", "", sub, after)
}

func testAllSubSecond(t *testing.T, s permiso.RevocationStore, c *testclock.Clock) {
	now := c.Now()
	base := now.Truncate(time.Second).Add(-time.Hour)
	// One store has one global cut-off: each case moves it forward (a
	// minute later each time) before checking around it.
	for i, frac := range subSecondFracs {
		base := base.Add(time.Duration(i) * time.Minute)
		t.Run(fmt.Sprintf("cutoff+%v", frac), func(t *testing.T) {
			revokeAll(t, s, base.Add(frac), now.Add(time.Hour))
			for _, tc := range subSecondCases(base, frac) {
				wantRevoked(t, s, tc.want, id("jti"), id("sid"), id("sub"), tc.iat)
				wantRevoked(t, s, tc.want, id("jti"), "", permiso.ClientRevocationSubject(id("client")), tc.iat)
			}
		})
	}
}

func testAllNeverMovesBack(t *testing.T, s permiso.RevocationStore, c *testclock.Clock) {
	now := c.Now()
	exp := now.Add(time.Hour)
	cutoff := now.Truncate(time.Second).Add(-time.Minute)
	revokeAll(t, s, cutoff, exp)
	revokeAll(t, s, cutoff.Add(-30*time.Minute), exp)
	wantRevoked(t, s, true, id("jti"), "", id("sub"), cutoff.Add(-time.Millisecond))
	wantRevoked(t, s, false, id("jti"), "", id("sub"), cutoff)
	later := cutoff.Add(time.Millisecond)
	revokeAll(t, s, later, exp)
	wantRevoked(t, s, true, id("jti"), "", id("sub"), cutoff)
	wantRevoked(t, s, false, id("jti"), "", id("sub"), later)
}

// testAllExpiry: the global cut-off is forgotten when its expiresAt has
// passed, and a second call with an earlier one does not shorten it. A
// real clock sleeps about four seconds.
func testAllExpiry(t *testing.T, s permiso.RevocationStore, c *testclock.Clock) {
	now := c.Now()
	cutoff := now.Truncate(time.Second)
	iat := cutoff.Add(-30 * time.Minute)
	revokeAll(t, s, cutoff, now.Add(3*time.Second))
	revokeAll(t, s, cutoff.Add(-time.Hour), now.Add(-time.Hour))
	wantRevoked(t, s, true, id("jti"), "", id("sub"), iat)
	c.Advance(2 * time.Second)
	wantRevoked(t, s, true, id("jti"), "", id("sub"), iat)
	c.Advance(2 * time.Second)
	wantRevoked(t, s, false, id("jti"), "", id("sub"), iat)
}

func testSubjectsIsolated(t *testing.T, s permiso.RevocationStore, c *testclock.Clock) {
	now := c.Now()
	sub, other := id("sub"), id("sub")
	revokeSubject(t, s, sub, now, now.Add(time.Hour))
	iat := now.Add(-time.Minute)
	wantRevoked(t, s, true, id("jti"), "", sub, iat)
	wantRevoked(t, s, false, id("jti"), "", other, iat)
	// A subject that is a prefix of another is not confused with it.
	wantRevoked(t, s, false, id("jti"), "", sub+"x", iat)
	wantRevoked(t, s, false, id("jti"), "", sub[:len(sub)-1], iat)
}

func testEmptyIdentifiers(t *testing.T, s permiso.RevocationStore, c *testclock.Clock) {
	ctx := t.Context()
	now := c.Now()
	exp := now.Add(time.Hour)
	check := func(name string, err error) {
		t.Helper()
		if code := permiso.ErrorCode(err); code != permiso.EINVALID {
			t.Errorf("%s with an empty identifier: err = %v (code %q), want EINVALID", name, err, code)
		}
	}
	check("RevokeToken", s.RevokeToken(ctx, "", exp))
	check("RevokeSession", s.RevokeSession(ctx, "", exp))
	check("RevokeSubjectBefore", s.RevokeSubjectBefore(ctx, "", now, exp))
	wantRevoked(t, s, false, id("jti"), "", id("sub"), now.Add(-time.Hour))
	wantRevoked(t, s, false, "", "", "", now.Add(-time.Hour))

	// Empty identifiers in IsRevoked are skipped, the others still count.
	sid := id("sid")
	revokeSession(t, s, sid, exp)
	wantRevoked(t, s, true, "", sid, "", now)
}

// testExpiry checks every time-dependent obligation with two clock moves,
// so a real clock sleeps about four seconds in all.
func testExpiry(t *testing.T, s permiso.RevocationStore, c *testclock.Clock) {
	now := c.Now()
	past := now.Add(-time.Hour)
	cutoff := now.Truncate(time.Second)
	iatOld := cutoff.Add(-30 * time.Minute)

	short, long, pastJTI := id("jti"), id("jti"), id("jti")
	shortSid, longSid := id("sid"), id("sid")
	shortSub, longSub := id("sub"), id("sub")
	revokeToken(t, s, short, now.Add(time.Second))
	revokeToken(t, s, long, now.Add(3*time.Second))
	revokeToken(t, s, pastJTI, past) // stored for one second, no error
	revokeSession(t, s, shortSid, now.Add(time.Second))
	revokeSession(t, s, longSid, now.Add(3*time.Second))
	revokeSubject(t, s, shortSub, cutoff, now.Add(time.Second))
	revokeSubject(t, s, longSub, cutoff, now.Add(3*time.Second))

	// Never shortened: a second call with an earlier expiry keeps the later.
	keptJTI, keptSid := id("jti"), id("sid")
	revokeToken(t, s, keptJTI, now.Add(3*time.Second))
	revokeToken(t, s, keptJTI, now.Add(time.Second))
	revokeSession(t, s, keptSid, now.Add(3*time.Second))
	revokeSession(t, s, keptSid, past)
	// The cutoff survives as long as the longest-lived call wants it, in
	// either order, and never moves back.
	extSub, shrinkSub := id("sub"), id("sub")
	revokeSubject(t, s, extSub, cutoff, now.Add(time.Second))
	revokeSubject(t, s, extSub, cutoff.Add(-time.Hour), now.Add(3*time.Second))
	revokeSubject(t, s, shrinkSub, cutoff.Add(-time.Hour), now.Add(3*time.Second))
	revokeSubject(t, s, shrinkSub, cutoff, now.Add(time.Second))

	type check struct {
		name           string
		jti, sid, sub  string
		at0, at2, at4s bool // revoked now, after 2 s, after 4 s
	}
	checks := []check{
		{"short jti", short, "", "", true, false, false},
		{"long jti", long, "", "", true, true, false},
		{"past jti", pastJTI, "", "", true, false, false},
		{"short sid", "", shortSid, "", true, false, false},
		{"long sid", "", longSid, "", true, true, false},
		{"short sub", "", "", shortSub, true, false, false},
		{"long sub", "", "", longSub, true, true, false},
		{"jti not shortened", keptJTI, "", "", true, true, false},
		{"sid not shortened", "", keptSid, "", true, true, false},
		{"sub extended", "", "", extSub, true, true, false},
		{"sub not shortened", "", "", shrinkSub, true, true, false},
	}
	verify := func(when string, want func(check) bool) {
		t.Helper()
		for _, ck := range checks {
			if got := revoked(t, s, ck.jti, ck.sid, ck.sub, iatOld); got != want(ck) {
				t.Errorf("%s: %s: IsRevoked = %v, want %v", when, ck.name, got, want(ck))
			}
		}
	}
	verify("at once", func(ck check) bool { return ck.at0 })
	// The cutoff that outlived the earlier call is still the later one.
	wantRevoked(t, s, true, "", "", extSub, cutoff.Add(-time.Second))
	wantRevoked(t, s, true, "", "", shrinkSub, cutoff.Add(-time.Second))

	c.Advance(2 * time.Second)
	verify("after 2s", func(ck check) bool { return ck.at2 })
	wantRevoked(t, s, true, "", "", extSub, cutoff.Add(-time.Second))
	wantRevoked(t, s, true, "", "", shrinkSub, cutoff.Add(-time.Second))

	c.Advance(2 * time.Second)
	verify("after 4s", func(ck check) bool { return ck.at4s })
}

func testConcurrent(t *testing.T, s permiso.RevocationStore, c *testclock.Clock) {
	const workers, rounds = 16, 40
	ctx := t.Context()
	now := c.Now()
	exp := now.Add(time.Hour)
	sub := id("sub")
	base := now.Truncate(time.Second).Add(-24 * time.Hour)
	// Cutoffs base+0s .. base+(workers*rounds-1)s, revoked in random order
	// from all workers: the survivor must be the latest.
	offsets := mrand.Perm(workers * rounds)
	prefix := id("c")

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				jti := fmt.Sprintf("%s-%d-%d", prefix, w, r)
				sid := fmt.Sprintf("%s-s-%d-%d", prefix, w, r%4)
				if err := s.RevokeToken(ctx, jti, exp); err != nil {
					t.Errorf("RevokeToken: %v", err)
					return
				}
				if r%4 == 0 {
					if err := s.RevokeSession(ctx, sid, exp); err != nil {
						t.Errorf("RevokeSession: %v", err)
						return
					}
				}
				cut := base.Add(time.Duration(offsets[w*rounds+r]) * time.Second)
				if err := s.RevokeSubjectBefore(ctx, sub, cut, exp); err != nil {
					t.Errorf("RevokeSubjectBefore: %v", err)
					return
				}
				ok, err := s.IsRevoked(ctx, jti, "", id("sub"), now)
				if err != nil || !ok {
					t.Errorf("IsRevoked(%s) = %v, %v; want true", jti, ok, err)
				}
				ok, err = s.IsRevoked(ctx, jti+"-never", "", id("sub"), now)
				if err != nil || ok {
					t.Errorf("IsRevoked(never revoked) = %v, %v; want false", ok, err)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	last := base.Add(time.Duration(workers*rounds-1) * time.Second)
	wantRevoked(t, s, true, "", "", sub, last.Add(-time.Second))
	wantRevoked(t, s, false, "", "", sub, last)
	for w := range workers {
		sid := fmt.Sprintf("%s-s-%d-%d", prefix, w, 0)
		wantRevoked(t, s, true, id("jti"), sid, "", now)
		sid = fmt.Sprintf("%s-s-%d-%d", prefix, w, 1)
		wantRevoked(t, s, false, id("jti"), sid, "", now)
	}
}

func testStoresIsolated(t *testing.T, a, b permiso.RevocationStore, c *testclock.Clock) {
	now := c.Now()
	exp := now.Add(time.Hour)
	jti, sid, sub := id("jti"), id("sid"), id("sub")
	revokeToken(t, a, jti, exp)
	revokeSession(t, a, sid, exp)
	revokeSubject(t, a, sub, now, exp)
	iat := now.Add(-time.Minute)
	wantRevoked(t, a, true, jti, "", "", iat)
	wantRevoked(t, a, true, "", sid, "", iat)
	wantRevoked(t, a, true, "", "", sub, iat)
	wantRevoked(t, b, false, jti, sid, sub, iat)
	// Nor does a global cut-off of one store reach the other.
	revokeAll(t, a, now, exp)
	wantRevoked(t, a, true, id("jti"), "", id("sub"), iat)
	wantRevoked(t, b, false, id("jti"), "", id("sub"), iat)
}

// BenchmarkIsRevoked measures IsRevoked on a store holding a few thousand
// revocations, with a mix of revoked and clean tokens checked from parallel
// goroutines. It makes no timing assertions. Backend packages call it from
// their own BenchmarkIsRevoked.
func BenchmarkIsRevoked(b *testing.B, s permiso.RevocationStore, now func() time.Time) {
	ctx := context.Background()
	t0 := now()
	exp := t0.Add(time.Hour)
	const n = 2048
	prefix := id("bench")
	for i := range n {
		if err := s.RevokeToken(ctx, fmt.Sprintf("%s-jti-%d", prefix, i), exp); err != nil {
			b.Fatal(err)
		}
		if i%8 == 0 {
			if err := s.RevokeSession(ctx, fmt.Sprintf("%s-sid-%d", prefix, i), exp); err != nil {
				b.Fatal(err)
			}
			if err := s.RevokeSubjectBefore(ctx, fmt.Sprintf("%s-sub-%d", prefix, i), t0, exp); err != nil {
				b.Fatal(err)
			}
		}
	}
	type probe struct{ jti, sid, sub string }
	probes := make([]probe, 2*n)
	for k := range probes {
		// Half the jtis checked are revoked, half are not.
		probes[k] = probe{
			jti: fmt.Sprintf("%s-jti-%d", prefix, k),
			sid: fmt.Sprintf("%s-sid-%d", prefix, k%n),
			sub: fmt.Sprintf("%s-sub-%d", prefix, k%n),
		}
	}
	iat := t0.Add(-time.Minute)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := mrand.IntN(len(probes))
		for pb.Next() {
			p := probes[i%len(probes)]
			i++
			if _, err := s.IsRevoked(ctx, p.jti, p.sid, p.sub, iat); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

package sharedstatetest

import (
	"testing"
	"time"

	"github.com/permiso/permiso"
)

// NewRevocationPair returns two stores that share one revocation state the
// way two instances of a deployment do (the same Redis and key prefix,
// each with its own connection and in-memory state), both ready to answer.
// Each call returns a pair isolated from every other pair.
type NewRevocationPair func(t *testing.T) (a, b permiso.RevocationStore)

// RunRevocationPropagation checks the bound of docs/architecture.md,
// "Revocation feed": a revocation made on one instance is effective on the
// other within bound (the requirement states 1 s), and at once on the
// instance that made it (read-your-writes). For each kind of revocation it
// revokes on a, checks a, then polls b until it reports the token revoked,
// and logs the delay it measured. The bound is a correctness obligation of
// the feed, not a performance figure.
func RunRevocationPropagation(t *testing.T, bound time.Duration, newPair NewRevocationPair) {
	t.Helper()
	type kind struct {
		name   string
		revoke func(t *testing.T, s permiso.RevocationStore, now time.Time) (jti, sid, sub string, iat time.Time)
	}
	kinds := []kind{
		{"Token", func(t *testing.T, s permiso.RevocationStore, now time.Time) (string, string, string, time.Time) {
			jti := id("jti")
			revokeToken(t, s, jti, now.Add(time.Minute))
			return jti, id("sid"), id("sub"), now
		}},
		{"Session", func(t *testing.T, s permiso.RevocationStore, now time.Time) (string, string, string, time.Time) {
			sid := id("sid")
			revokeSession(t, s, sid, now.Add(time.Minute))
			return id("jti"), sid, id("sub"), now
		}},
		{"SubjectBefore", func(t *testing.T, s permiso.RevocationStore, now time.Time) (string, string, string, time.Time) {
			sub := id("sub")
			cutoff := permiso.RevocationCutoff(now)
			revokeSubject(t, s, sub, cutoff, now.Add(time.Minute))
			return id("jti"), id("sid"), sub, cutoff.Add(-time.Millisecond)
		}},
		{"AllBefore", func(t *testing.T, s permiso.RevocationStore, now time.Time) (string, string, string, time.Time) {
			cutoff := permiso.RevocationCutoff(now)
			revokeAll(t, s, cutoff, now.Add(time.Minute))
			return id("jti"), id("sid"), id("sub"), cutoff.Add(-time.Millisecond)
		}},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			a, b := newPair(t)
			now := time.Now()
			start := time.Now()
			jti, sid, sub, iat := k.revoke(t, a, now)
			written := time.Since(start)
			wantRevoked(t, a, true, jti, sid, sub, iat)
			if revoked(t, b, id("jti"), id("sid"), id("sub"), iat) && k.name != "AllBefore" {
				t.Fatal("an unrelated token is revoked on the other instance")
			}
			start = time.Now()
			for !revoked(t, b, jti, sid, sub, iat) {
				if time.Since(start) > bound {
					t.Fatalf("%s: not effective on the other instance %v after the write returned (bound %v)", k.name, time.Since(start), bound)
				}
				time.Sleep(time.Millisecond)
			}
			t.Logf("%s: write took %v; effective on the other instance %v after it returned (bound %v)",
				k.name, written, time.Since(start), bound)
		})
	}
}

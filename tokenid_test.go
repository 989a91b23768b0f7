package permiso_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// TestNewTokenID: a jti is a UUIDv7 (RFC 9562 §5.7) whose timestamp is the
// issue time in milliseconds, and TokenIssuedAt reads that millisecond
// back from it and the whole-second iat.
func TestNewTokenID(t *testing.T) {
	base := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	seen := map[string]bool{}
	for _, off := range []time.Duration{0, time.Millisecond, 456*time.Millisecond + 789*time.Microsecond, 999*time.Millisecond + 999*time.Microsecond} {
		at := base.Add(off)
		for range 50 {
			jti := permiso.NewTokenID(at)
			if seen[jti] {
				t.Fatalf("NewTokenID repeated %s", jti)
			}
			seen[jti] = true
			u, err := uuid.Parse(jti)
			if err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 || u.String() != jti {
				t.Fatalf("NewTokenID(%v) = %q: not a canonical UUIDv7 (%v, version %d, variant %v)", at, jti, err, u.Version(), u.Variant())
			}
			iat := at.Truncate(time.Second) // what the iat claim keeps
			if got, want := permiso.TokenIssuedAt(jti, iat), at.Truncate(time.Millisecond); !got.Equal(want) {
				t.Errorf("TokenIssuedAt(NewTokenID(%v), %v) = %v, want %v", at, iat, got, want)
			}
		}
	}
}

// TestTokenIssuedAtFallsBackToTheIatSecond: without a UUIDv7 of the iat
// second in the jti, the issue time is the start of the iat second, the
// earliest the token can have been issued (fail closed against a cut-off).
func TestTokenIssuedAtFallsBackToTheIatSecond(t *testing.T) {
	iat := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, tc := range []struct{ name, jti string }{
		{"UUIDv4", uuid.NewString()},
		{"UUIDv7 of the second before", permiso.NewTokenID(iat.Add(-time.Millisecond))},
		{"UUIDv7 of the next second", permiso.NewTokenID(iat.Add(time.Second))},
		{"UUIDv7 far away", permiso.NewTokenID(iat.Add(-24 * time.Hour))},
		{"not a UUID", "jti-123"},
		{"empty", ""},
		{"UUIDv7 without dashes", uuidWithoutDashes(permiso.NewTokenID(iat.Add(5 * time.Millisecond)))},
	} {
		if got := permiso.TokenIssuedAt(tc.jti, iat); !got.Equal(iat) {
			t.Errorf("%s: TokenIssuedAt(%q, %v) = %v, want the iat second", tc.name, tc.jti, iat, got)
		}
	}
	// A fractional iat (another issuer's) is taken at the start of its
	// second, never later.
	if got := permiso.TokenIssuedAt("", iat.Add(700*time.Millisecond)); !got.Equal(iat) {
		t.Errorf("TokenIssuedAt with a fractional iat = %v, want %v", got, iat)
	}
}

func uuidWithoutDashes(s string) string {
	out := make([]byte, 0, len(s))
	for i := range len(s) {
		if s[i] != '-' {
			out = append(out, s[i])
		}
	}
	return string(out)
}

// TestRevocationCutoffSubSecond: a cut-off taken at now revokes every token
// issued before now, in the same second and the same millisecond included,
// and no token issued from the cut-off on; both as TokenIssuedAt reads
// tokens made by NewTokenID and for tokens known only by their iat second.
func TestRevocationCutoffSubSecond(t *testing.T) {
	sec := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, now := range []time.Time{
		sec,
		sec.Add(500 * time.Millisecond),
		sec.Add(500*time.Millisecond + 1),
		sec.Add(999*time.Millisecond + 999*time.Microsecond),
	} {
		cutoff := permiso.RevocationCutoff(now)
		if cutoff.Before(now) || cutoff.Sub(now) >= time.Millisecond || !cutoff.Equal(cutoff.Truncate(time.Millisecond)) {
			t.Fatalf("RevocationCutoff(%v) = %v: want the first whole millisecond at or after it", now, cutoff)
		}
		revoked := func(issued time.Time) bool {
			jti := permiso.NewTokenID(issued)
			return permiso.TokenIssuedAt(jti, issued.Truncate(time.Second)).Before(cutoff)
		}
		for _, before := range []time.Time{now.Add(-time.Nanosecond), now.Add(-time.Millisecond), sec, sec.Add(-time.Second)} {
			if !before.Before(now) {
				continue
			}
			if !revoked(before) {
				t.Errorf("cut-off at %v: a token issued at %v (before it) survives", now, before)
			}
		}
		for _, after := range []time.Time{cutoff, cutoff.Add(time.Millisecond), cutoff.Add(time.Second)} {
			if revoked(after) {
				t.Errorf("cut-off at %v (%v): a token issued at %v is refused", now, cutoff, after)
			}
		}
		// A token known only by its iat second fails closed in the
		// cut-off's own second: refused when that second starts before
		// the cut-off.
		old := permiso.TokenIssuedAt("legacy", now)
		if want := now.Truncate(time.Second).Before(cutoff); old.Before(cutoff) != want {
			t.Errorf("cut-off at %v: a token without a UUIDv7 jti of that second: revoked = %v, want %v", now, old.Before(cutoff), want)
		}
	}
}

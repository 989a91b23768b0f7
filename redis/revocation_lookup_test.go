package redis

import (
	"context"
	"testing"
	"time"
)

// A lookup that fails must not hide another lookup of the same
// pipeline that says revoked.
func TestIsRevokedPartialFailure(t *testing.T) {
	c := openTestClient(t)
	r := NewRevocations(c, testPrefix(t, c))
	ctx := context.Background()
	now := time.Now()
	if err := r.RevokeSession(ctx, "sid-1", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// A jti key of the wrong type makes its GET fail (WRONGTYPE), and with
	// it the pipeline's Exec.
	if err := c.rdb.HSet(ctx, r.jtiKey("jti-1"), "x", "y").Err(); err != nil {
		t.Fatal(err)
	}
	revoked, err := r.IsRevoked(ctx, "jti-1", "sid-1", "", now)
	if err != nil || !revoked {
		t.Fatalf("IsRevoked = %v, %v; want revoked (the sid lookup succeeded)", revoked, err)
	}
	// Nothing says revoked: the failure is reported.
	if revoked, err := r.IsRevoked(ctx, "jti-1", "sid-2", "", now); err == nil || revoked {
		t.Fatalf("IsRevoked = %v, %v; want the lookup error", revoked, err)
	}
}

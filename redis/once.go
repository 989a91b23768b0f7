package redis

import (
	"context"
	"time"

	"github.com/permiso/permiso"
)

// Once is the Redis permiso.OnceStore: one SET NX PX per claim, so the
// instances sharing the server agree on who claimed a key first.
type Once struct {
	c      *Client
	prefix string
}

var _ permiso.OnceStore = (*Once)(nil)

// NewOnce returns the once-store over c whose keys start with prefix
// followed by "once:".
func NewOnce(c *Client, prefix string) *Once { return &Once{c: c, prefix: prefix} }

// Claim sets prefix+"once:"+key with NX and a TTL of ttl.
func (o *Once) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if key == "" || ttl < time.Millisecond {
		return false, permiso.Invalid("a once key and a ttl of at least a millisecond are required")
	}
	ok, err := o.c.rdb.SetNX(ctx, o.prefix+"once:"+key, 1, ttl).Result()
	if err != nil {
		return false, permiso.Wrap(permiso.EUNAVAILABLE, "once store unavailable", err)
	}
	return ok, nil
}

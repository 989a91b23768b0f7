package permiso

import (
	"context"
	"time"
)

// OnceStore remembers keys that may be used only once, for a while: a
// one-time password's time step (docs/mfa.md), shared by every instance
// when it is Redis, in process otherwise (package inprocess).
type OnceStore interface {
	// Claim records key for ttl and reports whether this call was the
	// first to claim it among all callers of all instances: of concurrent
	// claims of a live key exactly one returns true. A key is claimable
	// again once ttl has passed. An empty key or a ttl under a millisecond
	// is EINVALID; a store that cannot answer returns EUNAVAILABLE (the
	// caller must then refuse the code: fail closed).
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

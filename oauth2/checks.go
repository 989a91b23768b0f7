package oauth2

import (
	"context"

	"github.com/permiso/permiso"
)

// LimitCheck is a rate limit that the caller of the service (the HTTP
// layer: RATE_LIMIT_API and the endpoint's own per-IP limit) wants counted
// together with the service's own checks for the request: the token's
// revocation state, a client's own limits. All of them go to the shared
// state in one batch, one Redis round trip (SPEC §7). The caller attaches
// its checks to the request's context with WithLimits and reads the
// outcome from the same values afterwards; whatever the service did not
// get to run, the caller runs with RunLimits.
type LimitCheck struct {
	Key   string
	Limit permiso.Limit
	// FailOpen lets the request go on when the check cannot be made
	// (RATE_LIMIT_API: reads stay available while Redis is down); other
	// checks fail closed.
	FailOpen bool

	// Ran, Result and Err are the outcome, set once the check ran.
	Ran    bool
	Result permiso.LimitResult
	Err    error
}

// Stops reports whether the check's outcome stops the request: refused,
// or unavailable and not FailOpen. It is false before the check ran.
func (c *LimitCheck) Stops() bool {
	if !c.Ran {
		return false
	}
	if c.Err != nil {
		return !c.FailOpen
	}
	return !c.Result.Allowed
}

type limitsKey struct{}

// WithLimits returns a context whose first check batch (Authenticate,
// Token, Introspect or RunLimits) also counts checks, once.
func WithLimits(ctx context.Context, checks ...*LimitCheck) context.Context {
	if len(checks) == 0 {
		return ctx
	}
	return context.WithValue(ctx, limitsKey{}, checks)
}

// pendingLimits returns the checks of ctx that have not run yet.
func pendingLimits(ctx context.Context) []*LimitCheck {
	all, _ := ctx.Value(limitsKey{}).([]*LimitCheck)
	var out []*LimitCheck
	for _, c := range all {
		if !c.Ran {
			out = append(out, c)
		}
	}
	return out
}

// RunLimits runs the checks of ctx that have not run yet, in one batch,
// for a request that reached no other check. It returns what a batch
// returns: see checkBatch.
func (s *Service) RunLimits(ctx context.Context) error {
	return s.checkBatch(ctx, nil)
}

// checkBatch sends one batch: the request's pending limit checks (see
// WithLimits) and whatever queue adds (the caller reads its own results
// after checkBatch returns). It returns an error only for the pending
// checks, so that the service stops before doing the work they guard:
// ErrRateLimited (429 with Retry-After) when one refused the request,
// EUNAVAILABLE when one could not be made and does not fail open. The
// caller of the service reads the details from its LimitCheck values.
func (s *Service) checkBatch(ctx context.Context, queue func(b permiso.CheckBatch)) error {
	pending := pendingLimits(ctx)
	if len(pending) == 0 && queue == nil {
		return nil
	}
	b := s.checks.Batch()
	results := make([]func() (permiso.LimitResult, error), len(pending))
	for i, c := range pending {
		results[i] = b.Allow(c.Key, c.Limit)
	}
	if queue != nil {
		queue(b)
	}
	b.Exec(ctx)
	var refused *permiso.LimitResult
	var failed error
	for i, c := range pending {
		c.Result, c.Err = results[i]()
		c.Ran = true
		switch {
		case c.Err != nil && !c.FailOpen && failed == nil:
			failed = c.Err
		case c.Err == nil && !c.Result.Allowed && (refused == nil || c.Result.RetryAfter > refused.RetryAfter):
			r := c.Result
			refused = &r
		}
	}
	switch {
	case refused != nil:
		return ErrRateLimited.WithRateLimit(*refused)
	case failed != nil:
		return permiso.Wrap(permiso.EUNAVAILABLE, "Rate limits cannot be checked right now", failed)
	}
	return nil
}

// allowAll counts a request under a client's own limits in a batch with
// the request's pending limit checks.
func (s *Service) allowAll(ctx context.Context, keys []string, limits []permiso.Limit) ([]permiso.LimitResult, error) {
	var res func() ([]permiso.LimitResult, error)
	err := s.checkBatch(ctx, func(b permiso.CheckBatch) {
		res = b.AllowAll(keys, limits)
	})
	if err != nil {
		return nil, err
	}
	return res()
}

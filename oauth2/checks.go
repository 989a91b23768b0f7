package oauth2

import (
	"context"

	"github.com/permiso/permiso"
)

// RunLimits sends the checks of limits that have not been sent yet, in
// one batch, for a request that reached no other check. It returns what
// a batch returns: see checkBatch.
func (s *Service) RunLimits(ctx context.Context, limits *permiso.Limits) error {
	return s.checkBatch(ctx, limits, nil)
}

// checkBatch sends one batch: the request's limit checks that have not
// been sent (limits, passed by the caller of the service; nil for none)
// and whatever queue adds (the caller reads its own results after
// checkBatch returns). It returns an error only for the request's limits,
// so that the service stops before doing the work they guard:
// ErrRateLimited (429 with Retry-After) when one refused the request,
// EUNAVAILABLE when one could not be made and does not fail open. The
// caller of the service reads the details from limits.
func (s *Service) checkBatch(ctx context.Context, limits *permiso.Limits, queue func(b permiso.CheckBatch)) error {
	if !limits.Pending() && queue == nil {
		return nil
	}
	b := s.checks.Batch()
	record := limits.Queue(b)
	if queue != nil {
		queue(b)
	}
	b.Exec(ctx)
	if record == nil {
		return nil
	}
	record()
	c, stops := limits.Verdict()
	switch {
	case !stops:
		return nil
	case c.Err != nil:
		return permiso.Wrap(permiso.EUNAVAILABLE, "Rate limits cannot be checked right now", c.Err)
	}
	return ErrRateLimited.WithRateLimit(c.Result)
}

// allowAll counts a request under a client's own limits in a batch with
// the request's limit checks. They are leased (permiso.CheckBatch
// AllowAllLeased; docs/abuse-resistance.md, "Leases"): with Redis, most
// requests of a busy client are answered from the instance's lease.
func (s *Service) allowAll(ctx context.Context, limits *permiso.Limits, keys []string, lims []permiso.Limit) ([]permiso.LimitResult, error) {
	var res func() ([]permiso.LimitResult, error)
	err := s.checkBatch(ctx, limits, func(b permiso.CheckBatch) {
		res = b.AllowAllLeased(keys, lims)
	})
	if err != nil {
		return nil, err
	}
	return res()
}

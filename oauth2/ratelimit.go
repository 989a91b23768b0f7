package oauth2

import (
	"context"
	"time"

	"github.com/permiso/permiso"
)

// ClientRateLimitKeys returns the rate-limiter keys of a service client's
// own limits: "client:{<client_id>}:minute" and "client:{<client_id>}:hour".
// The braces are a Redis Cluster hash tag: both keys live in one slot, so
// one script counts a request in both atomically (permiso.RateLimiter
// AllowAll). The limiter puts them under CACHE_RATE_LIMIT_PREFIX.
func ClientRateLimitKeys(clientID string) (minute, hour string) {
	return "client:{" + clientID + "}:minute", "client:{" + clientID + "}:hour"
}

// clientLimits are the limits of c: rate_limit_per_minute per minute and
// rate_limit_per_hour per hour; 0 (or less) disables either.
func clientLimits(c *permiso.ServiceClient) (minute, hour permiso.Limit) {
	if c.RateLimitPerMinute > 0 {
		minute = permiso.Limit{Count: c.RateLimitPerMinute, Period: time.Minute}
	}
	if c.RateLimitPerHour > 0 {
		hour = permiso.Limit{Count: c.RateLimitPerHour, Period: time.Hour}
	}
	return minute, hour
}

// allowClient counts a client-credentials request against the client's
// own limits (docs/api.md, "Service clients": rate_limit_per_minute and rate_limit_per_hour are
// enforced), in one atomic step for both; with Redis, from the instance's
// lease of both when it has requests left (docs/abuse-resistance.md,
// "Leases"). The client was authenticated (and found active) first, so a
// lease never serves a disabled or deleted client. It returns the tighter of the
// two results for the RateLimit-* headers, or rate_limit_exceeded (429,
// Retry-After) when either is exhausted. Limiter errors are returned as
// they are: the token request fails closed with 503. The request's limit
// checks (limits) travel in the same batch; record (the client
// authentication's usage count) runs once they have admitted the request.
func (s *Service) allowClient(ctx context.Context, c *permiso.ServiceClient, record func(), meta RequestMeta, limits *permiso.Limits) (*permiso.LimitResult, error) {
	minute, hour := clientLimits(c)
	if s.deps.Limiter == nil || (minute.Disabled() && hour.Disabled()) || c.ClientID == "" {
		// Nothing of the client's own; the request's limit checks
		// still run before the grant goes on.
		if err := s.checkBatch(ctx, limits, nil); err != nil {
			return nil, err
		}
		record()
		return nil, nil
	}
	mk, hk := ClientRateLimitKeys(c.ClientID)
	res, err := s.allowAll(ctx, limits, []string{mk, hk}, []permiso.Limit{minute, hour})
	if err != nil {
		return nil, err
	}
	record()
	// Which limit the headers show: a Reset alone cannot tell (a minute
	// limit's is a minute and up to two slots).
	res[0].Period, res[1].Period = time.Minute, time.Hour
	tight := Tightest(res...)
	if tight == nil {
		return nil, nil
	}
	if !tight.Allowed {
		s.audit(ctx, meta, permiso.AuditEvent{ActorType: "client", ActorID: ptr(c.ClientID),
			Action: ActionRateLimited, Result: "failure",
			Details: map[string]any{"limit": tight.Limit, "retry_after_seconds": int((tight.RetryAfter + time.Second - 1) / time.Second)}})
		return nil, ErrRateLimited.WithDescription("The client's rate limit is exceeded").WithRateLimit(*tight)
	}
	return tight, nil
}

// ClientRateLimits reports the live state of a service client's own
// limits without counting a request (GET /service-clients/{id}/rate-limit):
// minute for rate_limit_per_minute, hour for rate_limit_per_hour. A
// disabled limit (0) reports Allowed with Limit 0. Without a limiter both
// are zero LimitResults with Allowed set.
func (s *Service) ClientRateLimits(ctx context.Context, c permiso.ServiceClient) (minute, hour permiso.LimitResult, err error) {
	ml, hl := clientLimits(&c)
	minute, hour = permiso.LimitResult{Allowed: true}, permiso.LimitResult{Allowed: true}
	if s.deps.Limiter == nil {
		return minute, hour, nil
	}
	mk, hk := ClientRateLimitKeys(c.ClientID)
	if minute, err = s.deps.Limiter.Peek(ctx, mk, ml); err != nil {
		return permiso.LimitResult{}, permiso.LimitResult{}, err
	}
	if hour, err = s.deps.Limiter.Peek(ctx, hk, hl); err != nil {
		return permiso.LimitResult{}, permiso.LimitResult{}, err
	}
	return minute, hour, nil
}

// Tightest returns the most restrictive of several limit results, the one
// to show in RateLimit-* headers: a refusing one before any allowing one
// (the longest RetryAfter among refusals, then the fewest remaining: an
// all-or-nothing refusal refuses every limit with the same RetryAfter,
// and the spent one is the one to show), else the one with the fewest
// remaining requests (the longest Reset on a tie). Results of disabled
// limits (Limit 0) are ignored; nil when nothing remains.
func Tightest(results ...permiso.LimitResult) *permiso.LimitResult {
	var best *permiso.LimitResult
	for i := range results {
		r := &results[i]
		if r.Limit <= 0 {
			continue
		}
		switch {
		case best == nil:
		case !r.Allowed && best.Allowed:
		case r.Allowed != best.Allowed:
			continue
		case !r.Allowed && (r.RetryAfter > best.RetryAfter || r.RetryAfter == best.RetryAfter && r.Remaining < best.Remaining):
		case r.Allowed && (r.Remaining < best.Remaining || r.Remaining == best.Remaining && r.Reset > best.Reset):
		default:
			continue
		}
		best = r
	}
	if best == nil {
		return nil
	}
	c := *best
	return &c
}

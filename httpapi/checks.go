package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/oauth2"
)

// How the per-IP limits reach the shared state (SPEC §7: at most one Redis
// round trip for all revocation and rate-limit checks of a request).
//
// dispatch attaches RATE_LIMIT_API to a routed API request as a pending
// check, and the route adds its own (RATE_LIMIT_LOGIN, _REGISTER, or the
// grant's limit at the token endpoint). The pending checks then travel in
// the first batch the request makes: with the bearer token's revocation
// lookups (guard), with a service client's own limits (client
// credentials), with the introspected token's revocation lookups. Routes
// that make no batch of their own run the pending checks before their
// handler. Either way settleLimits then reads the outcome: RateLimit-*
// headers, and 429 or 503 before the route does anything else.

// pendingLimit is one per-IP limit check of a request.
type pendingLimit struct {
	kind  limitKind
	check *oauth2.LimitCheck
}

type pendingKey struct{}

func pendingFrom(ctx context.Context) []pendingLimit {
	p, _ := ctx.Value(pendingKey{}).([]pendingLimit)
	return p
}

// addLimit returns r with the per-IP limit of kind attached as a pending
// check (RATE_LIMIT_API fails open, the others closed). Without a limiter,
// or when the limit is disabled, r is returned as it is.
func (s *server) addLimit(r *http.Request, kind limitKind) *http.Request {
	lim := s.limitOf(kind)
	if s.limiter == nil || lim.Disabled() {
		return r
	}
	ctx := r.Context()
	prev := pendingFrom(ctx)
	all := make([]pendingLimit, 0, len(prev)+1)
	all = append(all, prev...)
	all = append(all, pendingLimit{kind: kind, check: &oauth2.LimitCheck{
		Key: limitKey(kind, ClientIP(ctx)), Limit: lim, FailOpen: kind == limitAPI,
	}})
	checks := make([]*oauth2.LimitCheck, len(all))
	for i, p := range all {
		checks[i] = p.check
	}
	ctx = context.WithValue(ctx, pendingKey{}, all)
	return r.WithContext(oauth2.WithLimits(ctx, checks...))
}

// settleLimits runs the request's pending checks that have not run yet
// (one batch), puts the tightest outcome in the RateLimit-* headers and,
// when a check stops the request, answers it (429 with Retry-After, or
// 503 when a fail-closed limit cannot be checked) in the endpoint's
// envelope and returns false.
func (s *server) settleLimits(w http.ResponseWriter, r *http.Request, oauth bool) bool {
	pending := pendingFrom(r.Context())
	if len(pending) == 0 {
		return true
	}
	for _, p := range pending {
		if !p.check.Ran {
			s.runPending(r.Context(), pending)
			break
		}
	}
	var refused *pendingLimit
	var failed error
	for i, p := range pending {
		c := p.check
		switch {
		case c.Err != nil:
			if !c.FailOpen && failed == nil {
				failed = c.Err
			}
		case !c.Result.Allowed:
			if refused == nil || c.Result.RetryAfter > refused.check.Result.RetryAfter {
				refused = &pending[i]
			}
			fallthrough
		default:
			setRateLimitHeaders(w, c.Result, c.Limit)
		}
	}
	switch {
	case refused != nil:
		res := refused.check.Result
		// The refusal's own figures, whatever the other limits show.
		setRateLimitHeaders(w, res, refused.check.Limit)
		w.Header().Set("Retry-After", ceilSeconds(res.RetryAfter, 1))
		if s.limited != nil {
			s.limited(string(refused.kind))
		}
		var err error = errRateLimited
		if oauth {
			err = oauth2.ErrRateLimited.WithRateLimit(res)
		}
		writeLimitError(w, r, oauth, err)
		return false
	case failed != nil:
		writeLimitError(w, r, oauth, permiso.Wrap(permiso.EUNAVAILABLE, "rate limiter unavailable", failed))
		return false
	}
	return true
}

// runPending runs the checks that have not run yet: through the token
// service's batch (the same state as its own checks) when there is one.
func (s *server) runPending(ctx context.Context, pending []pendingLimit) {
	if s.auth != nil {
		_ = s.auth.RunLimits(ctx) // the outcome is read from the checks
		return
	}
	for _, p := range pending {
		if c := p.check; !c.Ran {
			c.Result, c.Err = s.limiter.Allow(ctx, c.Key, c.Limit)
			c.Ran = true
		}
	}
}

// ownLimits marks a route handler that settles the request's limits
// itself, after it has queued its own checks (the token and introspection
// endpoints): handle does not settle them before it.
type ownLimits struct{ http.Handler }

// limited is a route with its own per-IP limit (s.limit): it adds the
// limit to the request's pending checks and settles them all, in one
// batch, before h runs. handle does not settle them again.
type limited struct {
	s    *server
	kind limitKind
	h    http.Handler
}

func (l limited) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r = l.s.addLimit(r, l.kind)
	if l.s.settleLimits(w, r, oauthKind(l.kind)) {
		l.h.ServeHTTP(w, r)
	}
}

// limit gives a public route the per-IP limit of kind, counted in one
// batch with RATE_LIMIT_API before h runs (and before it reads the body).
// It fails closed: when the limiter is unreachable the request gets 503
// without reaching h.
func (s *server) limit(kind limitKind, h http.Handler) http.Handler {
	return limited{s: s, kind: kind, h: h}
}

// settled wraps a public route so that its pending limits are settled
// before it runs.
func (s *server) settled(h http.Handler) http.Handler {
	switch v := h.(type) {
	case ownLimits:
		return v.Handler
	case limited:
		return v
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.settleLimits(w, r, s.isOAuthPath(r.URL.Path)) {
			h.ServeHTTP(w, r)
		}
	})
}

// isOAuthPath reports whether path is one of the OAuth endpoints, whose
// errors use the RFC 6749 envelope.
func (s *server) isOAuthPath(path string) bool {
	return strings.HasPrefix(path, s.apiPrefix()+"/auth/")
}

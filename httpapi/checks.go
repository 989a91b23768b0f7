package httpapi

import (
	"context"
	"net/http"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/oauth2"
)

// How the per-IP limits reach the shared state (docs/abuse-resistance.md,
// "One round trip per request": at most one Redis round trip for all
// revocation and rate-limit checks of a request).
//
// Every routed request gets its limit batch, a permiso.Limits built from
// its route's access entry when the route is served (requestLimits):
// RATE_LIMIT_API under API_V1_PREFIX, then the route's own per-IP limit
// (access.limit: RATE_LIMIT_LOGIN, _REGISTER, ...). The batch is a value
// passed as an argument, never a context value: to the bearer check of a
// guarded route (guard → oauth2.Service.Authenticate), or, for a route
// whose access entry says it settles its own limits (access.settlesLimits:
// the token and introspection endpoints), to its handler, which adds the
// grant's limit and passes the batch to its service call (Token,
// Introspect, ...), where the checks travel with the service's own
// (revocation lookups, a client's own limits). Public routes that make no
// batch of their own send theirs before their handler runs. Either way
// handle then settles the batch (settleLimits): checks nobody sent go out
// now, and the outcome gives the RateLimit-* headers, and 429 or 503
// before anything is answered. What a route does with its limits is read
// from its access entry, never from the type of its handler, so no
// middleware around a handler can change it.

// requestLimits builds the limit batch of a request to a route with the
// access entry a.
func (s *server) requestLimits(r *http.Request, a access) *permiso.Limits {
	// The batch's storage is the request's reqInfo, made for this request
	// alone: no allocation of its own.
	var limits *permiso.Limits
	if info := infoFrom(r.Context()); info != nil {
		info.limits = permiso.Limits{}
		limits = &info.limits
	} else {
		limits = new(permiso.Limits) // not behind requestID (direct use in tests)
	}
	if s.isAPIPath(r.URL.Path) {
		s.addLimit(limits, r, limitAPI)
	}
	if a.limit != "" {
		s.addLimit(limits, r, a.limit)
	}
	return limits
}

// addLimit puts the per-IP limit of kind into limits (RATE_LIMIT_API
// fails open, the others closed). Without a limiter, or when the limit is
// disabled, nothing is added.
func (s *server) addLimit(limits *permiso.Limits, r *http.Request, kind limitKind) {
	lim := s.limitOf(kind)
	if s.limiter == nil || lim.Disabled() {
		return
	}
	limits.Add(permiso.LimitCheck{Name: string(kind), Key: limitKey(kind, ClientIP(r.Context())), Limit: lim,
		FailOpen: kind == limitAPI, Leased: kind == limitAPI})
}

// settleLimits sends the checks of limits that nobody has sent (one
// batch), puts the tightest outcome in the RateLimit-* headers and, when a
// check stops the request, answers it (429 with Retry-After, or 503 when
// a fail-closed limit cannot be checked) in the endpoint's envelope and
// returns false.
func (s *server) settleLimits(w http.ResponseWriter, r *http.Request, limits *permiso.Limits, oauth bool) bool {
	if limits.Pending() {
		s.runLimits(r.Context(), limits)
	}
	for _, c := range limits.Checks() {
		if c.Ran && c.Err == nil {
			setRateLimitHeaders(w, c.Result, c.Limit)
		}
	}
	c, stops := limits.Verdict()
	switch {
	case !stops:
		return true
	case c.Err != nil:
		writeLimitError(w, r, oauth, permiso.Wrap(permiso.EUNAVAILABLE, "rate limiter unavailable", c.Err))
		return false
	}
	res := c.Result
	// The refusal's own figures, whatever the other limits show.
	setRateLimitHeaders(w, res, c.Limit)
	w.Header().Set("Retry-After", ceilSeconds(res.RetryAfter, 1))
	if s.limited != nil {
		s.limited(c.Name)
	}
	var err error = errRateLimited
	if oauth {
		err = oauth2.ErrRateLimited.WithRateLimit(res)
	}
	writeLimitError(w, r, oauth, err)
	return false
}

// runLimits sends the checks nobody sent: through the token service's
// batch (the same state as its own checks) when there is one.
func (s *server) runLimits(ctx context.Context, limits *permiso.Limits) {
	if s.auth != nil {
		_ = s.auth.RunLimits(ctx, limits) // the outcome is read from limits
		return
	}
	b := permiso.SequentialChecker(s.limiter, nil).Batch()
	if record := limits.Queue(b); record != nil {
		b.Exec(ctx)
		record()
	}
}

// settlingHandler serves a route whose access entry says it settles its
// own limits (access.settlesLimits). It gets the request's limit batch as
// an argument, passes it to the service call that sends the request's
// first batch of checks, and returns the reply to write. handleSettling
// settles the batch after it returns, sending whatever nobody sent, and
// writes the reply only when the limits admit the request: no such
// handler, and no middleware around one, can answer before the limits
// are settled or skip them.
type settlingHandler func(r *http.Request, limits *permiso.Limits) reply

// reply writes the answer of a settlingHandler.
type reply func(w http.ResponseWriter)

// oauthReply answers err in the RFC 6749 envelope.
func oauthReply(r *http.Request, err error) reply {
	return func(w http.ResponseWriter) { writeOAuth(w, r, err) }
}

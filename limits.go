package permiso

// LimitCheck is one rate limit of a request's limit batch (Limits) and,
// once the batch was sent, its outcome.
type LimitCheck struct {
	// Name names the limit for metrics ("api", "login", ...).
	Name  string
	Key   string
	Limit Limit
	// FailOpen lets the request go on when the check cannot be made
	// (RATE_LIMIT_API: reads stay available while Redis is down); other
	// checks fail closed.
	FailOpen bool
	// Leased lets a shared checker answer the check from requests this
	// instance counted ahead, in a block (RATE_LIMIT_API:
	// docs/abuse-resistance.md, "Leases"), instead of one round trip.
	Leased bool

	// Ran, Result and Err are the outcome, set once the check was sent.
	Ran    bool
	Result LimitResult
	Err    error
}

// Stops reports whether the check's outcome stops the request: refused,
// or not made and not FailOpen. It is false before the check ran.
func (c LimitCheck) Stops() bool {
	switch {
	case !c.Ran:
		return false
	case c.Err != nil:
		return !c.FailOpen
	}
	return !c.Result.Allowed
}

// Limits is the limit batch of one request: the rate limits its route
// wants counted (the per-IP limits of the HTTP layer: RATE_LIMIT_API and
// the route's own), sent together with whatever else the request checks
// (the bearer token's revocation state, a service client's own limits) in
// one CheckBatch: one Redis round trip for the whole request
// (docs/abuse-resistance.md, "One round trip per request").
//
// The route builds it and passes it explicitly, as an argument, to the
// service call that sends the request's first batch (oauth2.Service
// Authenticate, Token, Introspect, ...); the service queues the checks
// that have not been sent (Queue) and stops before doing the work they
// guard when one stops the request (Verdict). The route then settles what
// it holds: checks nobody sent are sent now, and the outcome decides the
// answer (429, 503, the RateLimit-* headers). A nil *Limits holds nothing.
// A Limits belongs to one request and is used by one goroutine at a time.
type Limits struct {
	checks []LimitCheck
}

// Add puts a check into the batch; it has not run.
func (l *Limits) Add(c LimitCheck) {
	c.Ran, c.Result, c.Err = false, LimitResult{}, nil
	l.checks = append(l.checks, c)
}

// Pending reports whether a check has not been sent yet.
func (l *Limits) Pending() bool {
	if l == nil {
		return false
	}
	for _, c := range l.checks {
		if !c.Ran {
			return true
		}
	}
	return false
}

// Queue queues every check that has not been sent in b, and returns the
// function that records their outcomes, to be called once b.Exec has run.
// It returns nil when nothing was queued.
func (l *Limits) Queue(b CheckBatch) func() {
	if !l.Pending() {
		return nil
	}
	var idx []int
	var results []func() (LimitResult, error)
	for i, c := range l.checks {
		if !c.Ran {
			idx = append(idx, i)
			if c.Leased {
				results = append(results, b.AllowLeased(c.Key, c.Limit))
			} else {
				results = append(results, b.Allow(c.Key, c.Limit))
			}
		}
	}
	return func() {
		for j, i := range idx {
			c := &l.checks[i]
			c.Result, c.Err = results[j]()
			c.Ran = true
		}
	}
}

// Checks returns the checks and their outcomes, in the order they were
// added.
func (l *Limits) Checks() []LimitCheck {
	if l == nil {
		return nil
	}
	return append([]LimitCheck(nil), l.checks...)
}

// Verdict returns the check that stops the request, if any: among the
// refusals the one with the longest RetryAfter (the first on a tie), or
// else the first fail-closed check that could not be made. Checks that
// have not run decide nothing.
func (l *Limits) Verdict() (LimitCheck, bool) {
	if l == nil {
		return LimitCheck{}, false
	}
	var refused, failed *LimitCheck
	for i := range l.checks {
		c := &l.checks[i]
		switch {
		case !c.Stops():
		case c.Err != nil:
			if failed == nil {
				failed = c
			}
		case refused == nil || c.Result.RetryAfter > refused.Result.RetryAfter:
			refused = c
		}
	}
	switch {
	case refused != nil:
		return *refused, true
	case failed != nil:
		return *failed, true
	}
	return LimitCheck{}, false
}

package permiso

import (
	"context"
	"time"
)

// CheckBatch queues rate-limit and revocation checks and sends them
// together: against Redis, one pipelined round trip for all of them
// (docs/abuse-resistance.md, "One round trip per request": at most one
// Redis round trip for all revocation and rate-limit checks). Each queue method returns a function that reports
// the check's outcome once Exec has run; calling it before Exec is a bug.
// The outcomes are exactly those of the corresponding RateLimiter and
// RevocationStore methods: a batch changes how checks travel, never what
// they decide. A batch is used by one goroutine, once.
type CheckBatch interface {
	// Allow queues RateLimiter.Allow(key, limit).
	Allow(key string, limit Limit) func() (LimitResult, error)
	// AllowLeased is Allow for a limit that may be counted ahead, in
	// blocks of requests this instance then spends without asking again
	// (docs/abuse-resistance.md, "Leases"): it never admits more than
	// limit.Count in any window of limit.Period, across instances, but may
	// refuse earlier while other instances hold unspent requests, and its
	// Remaining and Reset are approximate. A checker without round trips
	// to save makes it Allow.
	AllowLeased(key string, limit Limit) func() (LimitResult, error)
	// AllowAll queues RateLimiter.AllowAll(keys, limits).
	AllowAll(keys []string, limits []Limit) func() ([]LimitResult, error)
	// AllowAllLeased is AllowAll for limits that may be counted ahead
	// together, as AllowLeased counts one (a service client's minute and
	// hour limits): a lease counts its requests in every key or in none,
	// never admits more than any limit's count in any window of its
	// period, across instances, and is never taken from a refusal.
	// Limits whose lease would hold one request (one of the counts below
	// 2 × LimitSlots) are counted exactly, as AllowAll. A checker without
	// round trips to save makes it AllowAll.
	AllowAllLeased(keys []string, limits []Limit) func() ([]LimitResult, error)
	// IsRevoked queues RevocationStore.IsRevoked(jti, sid, subject,
	// issuedAt): the jti, the session, the subject's cut-off and the
	// global cut-off, all in the same batch.
	IsRevoked(jti, sid, subject string, issuedAt time.Time) func() (bool, error)
	// Exec sends every queued check. Failures are reported by each
	// check's function, not by Exec: one failed check does not hide the
	// answers of the others.
	Exec(ctx context.Context)
}

// Checker starts check batches over one rate limiter and one revocation
// store.
type Checker interface {
	Batch() CheckBatch
}

// SequentialChecker is the Checker for stores without a cheaper way to
// send several checks: Exec runs the queued checks one after the other, in
// the order they were queued. It suits the in-process stores, where a
// check costs no round trip.
func SequentialChecker(l RateLimiter, r RevocationStore) Checker {
	return seqChecker{l: l, r: r}
}

type seqChecker struct {
	l RateLimiter
	r RevocationStore
}

func (c seqChecker) Batch() CheckBatch { return &seqBatch{c: c} }

type seqBatch struct {
	c    seqChecker
	runs []func(ctx context.Context)
}

// unconfigured reports a check queued on a checker without the store it
// needs.
var unconfigured = Errorf(EINTERNAL, "check batch: store not configured")

// queue appends call to the batch (or, when the store it needs is not
// configured, the unconfigured error) and returns the function that
// reports its outcome.
func queue[T any](b *seqBatch, configured bool, call func(context.Context) (T, error)) func() (T, error) {
	var res T
	var err error
	b.runs = append(b.runs, func(ctx context.Context) {
		if !configured {
			err = unconfigured
			return
		}
		res, err = call(ctx)
	})
	return func() (T, error) { return res, err }
}

func (b *seqBatch) Allow(key string, limit Limit) func() (LimitResult, error) {
	return queue(b, b.c.l != nil, func(ctx context.Context) (LimitResult, error) { return b.c.l.Allow(ctx, key, limit) })
}

func (b *seqBatch) AllowLeased(key string, limit Limit) func() (LimitResult, error) {
	return b.Allow(key, limit)
}

func (b *seqBatch) AllowAll(keys []string, limits []Limit) func() ([]LimitResult, error) {
	return queue(b, b.c.l != nil, func(ctx context.Context) ([]LimitResult, error) { return b.c.l.AllowAll(ctx, keys, limits) })
}

func (b *seqBatch) AllowAllLeased(keys []string, limits []Limit) func() ([]LimitResult, error) {
	return b.AllowAll(keys, limits)
}

func (b *seqBatch) IsRevoked(jti, sid, subject string, issuedAt time.Time) func() (bool, error) {
	return queue(b, b.c.r != nil, func(ctx context.Context) (bool, error) {
		return b.c.r.IsRevoked(ctx, jti, sid, subject, issuedAt)
	})
}

func (b *seqBatch) Exec(ctx context.Context) {
	for _, run := range b.runs {
		run(ctx)
	}
	b.runs = nil
}

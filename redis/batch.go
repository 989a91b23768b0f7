package redis

import (
	"context"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/permiso/permiso"
)

// Checker is the permiso.Checker over Redis: a batch of rate-limit and
// revocation checks is one pipeline, so a request's limits and its token's
// revocation state cost one round trip together (docs/abuse-resistance.md). The checks are
// the same ones Limiter and Revocations run one by one (the same script,
// the same GETs), so they decide exactly the same.
//
// On a single server or Sentinel the pipeline is one round trip. On Redis
// Cluster go-redis splits it by node and sends the parts concurrently: one
// round trip per node concerned, in parallel. The limiter script is sent
// as EVALSHA; when a server does not know it yet (NOSCRIPT: a restart, a
// failover, a new node) that one check is re-run with the full script.
//
// Leased limits (AllowLeased: RATE_LIMIT_API; AllowAllLeased: a service
// client's own limits) are answered from this checker's leases when one
// has requests left, without a command: see leases.
type Checker struct {
	lim    *Limiter
	rev    *Revocations
	leases *leases
}

var _ permiso.Checker = (*Checker)(nil)

// NewChecker returns the checker over l and r, which must use the same
// Redis client.
func NewChecker(l *Limiter, r *Revocations) *Checker {
	return &Checker{lim: l, rev: r, leases: newLeases()}
}

// Batch starts a batch.
func (c *Checker) Batch() permiso.CheckBatch {
	return &batch{c: c}
}

type batch struct {
	c *Checker
	// pipe is made when the first command is queued: a batch answered
	// from leases and the revocation feed alone needs none.
	pipe    goredis.Pipeliner
	queued  int
	scripts []*scriptCheck
	// local are the revocation checks answered in memory, at Exec; the
	// first two (a bearer's and an introspected token's) are stored in
	// localBuf, so that such a check costs one allocation, its answer.
	local    []localRevocation
	localBuf [2]localRevocation
}

// localRevocation is one revocation check answered from the feed's
// memory (Revocations.IsRevoked) when the batch runs.
type localRevocation struct {
	jti, sid, subject string
	issuedAt          time.Time
	revoked           bool
	err               error
}

// scriptCheck is one queued run of limitScript.
type scriptCheck struct {
	// keys are the Redis keys (prefixed), userKeys the callers'.
	keys     []string
	userKeys []string
	args     []any
	limits   []permiso.Limit
	cmd      *goredis.Cmd
	res      []permiso.LimitResult
	err      error
	// lease is set on the run that takes a lease of userKeys (want
	// requests, sent at sent).
	lease *leaseRun
}

type leaseRun struct {
	want  int
	sent  time.Time
	owner *lease
	// give is what the run gives back of the lease's expired blocks.
	give []giveBack
}

// pipeline returns the batch's pipeline, made on first use.
func (b *batch) pipeline() goredis.Pipeliner {
	if b.pipe == nil {
		b.pipe = b.c.lim.rdb.Pipeline()
	}
	return b.pipe
}

func (b *batch) queueScript(want int, keys []string, limits []permiso.Limit, gives []giveBack) *scriptCheck {
	full, args := b.c.lim.scriptArgs(want, want > 1, keys, limits, gives)
	sc := &scriptCheck{keys: full, userKeys: keys, args: args, limits: limits}
	sc.cmd = limitScript.EvalSha(context.Background(), b.pipeline(), full, args...)
	b.queued++
	b.scripts = append(b.scripts, sc)
	return sc
}

// Allow queues Limiter.Allow: a disabled limit admits without a call.
func (b *batch) Allow(key string, limit permiso.Limit) func() (permiso.LimitResult, error) {
	if limit.Disabled() {
		return func() (permiso.LimitResult, error) { return permiso.LimitResult{Allowed: true}, nil }
	}
	sc := b.queueScript(1, []string{key}, []permiso.Limit{limit}, nil)
	return func() (permiso.LimitResult, error) {
		if sc.err != nil {
			return permiso.LimitResult{}, sc.err
		}
		return sc.res[0], nil
	}
}

// AllowAll queues Limiter.AllowAll.
func (b *batch) AllowAll(keys []string, limits []permiso.Limit) func() ([]permiso.LimitResult, error) {
	if err := permiso.CheckLimitKeys(keys, limits); err != nil {
		return func() ([]permiso.LimitResult, error) { return nil, err }
	}
	sc := b.queueScript(1, keys, limits, nil)
	return func() ([]permiso.LimitResult, error) { return sc.res, sc.err }
}

// AllowLeased spends a request of key's lease, or queues the run that
// takes the next lease (see leases).
func (b *batch) AllowLeased(key string, limit permiso.Limit) func() (permiso.LimitResult, error) {
	if limit.Disabled() {
		return func() (permiso.LimitResult, error) { return permiso.LimitResult{Allowed: true}, nil }
	}
	res := b.allowLeased([]string{key}, []permiso.Limit{limit})
	return func() (permiso.LimitResult, error) {
		r, err := res()
		if err != nil {
			return permiso.LimitResult{}, err
		}
		return r[0], nil
	}
}

// AllowAllLeased is AllowAll answered from the lease of keys together
// (see leases): a lease counts its requests in every key at once, all or
// nothing. Limits whose lease would hold one request (one of the counts
// below 2 × permiso.LimitSlots) are not leased: they are AllowAll, exact per
// request.
func (b *batch) AllowAllLeased(keys []string, limits []permiso.Limit) func() ([]permiso.LimitResult, error) {
	if err := permiso.CheckLimitKeys(keys, limits); err != nil {
		return func() ([]permiso.LimitResult, error) { return nil, err }
	}
	if leaseCap(limits) == 1 {
		return b.AllowAll(keys, limits)
	}
	return b.allowLeased(keys, limits)
}

// allowLeased spends a request of the lease of keys, or queues the run
// that takes the next one.
func (b *batch) allowLeased(keys []string, limits []permiso.Limit) func() ([]permiso.LimitResult, error) {
	now := time.Now()
	res, ok, want, give, owner := b.c.leases.take(keys, limits, now)
	if ok {
		return func() ([]permiso.LimitResult, error) { return res, nil }
	}
	sc := b.queueScript(want, keys, limits, give)
	sc.lease = &leaseRun{want: want, sent: now, owner: owner, give: give}
	return func() ([]permiso.LimitResult, error) { return sc.res, sc.err }
}

// IsRevoked queues Revocations.IsRevoked: answered from memory with a
// live feed (nothing is queued), else looked up in the pipeline.
func (b *batch) IsRevoked(jti, sid, subject string, issuedAt time.Time) func() (bool, error) {
	if jti == "" && sid == "" && subject == "" {
		return func() (bool, error) { return false, nil }
	}
	if f := b.c.rev.feed; f != nil && f.started.Load() {
		if f.live() || !f.opts.Lookup {
			// Answered from memory when Exec runs, so that a revocation
			// made between queueing and Exec counts; a feed gone stale
			// meanwhile is handled there by IsRevoked itself.
			if b.local == nil {
				b.local = b.localBuf[:0]
			}
			i := len(b.local)
			b.local = append(b.local, localRevocation{jti: jti, sid: sid, subject: subject, issuedAt: issuedAt})
			// By index: a third check moves the slice.
			return func() (bool, error) { return b.local[i].revoked, b.local[i].err }
		}
		// Stale, with lookups: memory's "revoked" still wins.
		b.queued++
		lookup := b.c.rev.QueueIsRevoked(context.Background(), b.pipeline(), jti, sid, subject, issuedAt)
		return func() (bool, error) {
			if v, _ := f.mem.IsRevoked(context.Background(), jti, sid, subject, issuedAt); v {
				return true, nil
			}
			return lookup()
		}
	}
	b.queued++
	return b.c.rev.QueueIsRevoked(context.Background(), b.pipeline(), jti, sid, subject, issuedAt)
}

// Exec sends the pipeline. Each check reads its own command's answer; an
// absent key (goredis.Nil) is an answer, not a failure.
//
// A batch whose request has ended (its client went away) is not sent:
// every check fails with ctx's error, and a lease run gives what it was
// to give back to the next run (leases.unsend). A batch that gives back
// requests is sent once this is decided, whatever becomes of ctx: were it
// dropped while waiting for a connection, the instance could not tell
// whether Redis gave them back, and could give them back only never (they
// would count for the rest of their period) or perhaps twice (admitting
// more than the limit). Any other batch stops waiting when ctx ends: a
// run that never reached Redis counted nothing.
func (b *batch) Exec(ctx context.Context) {
	for i := range b.local {
		c := &b.local[i]
		c.revoked, c.err = b.c.rev.IsRevoked(ctx, c.jti, c.sid, c.subject, c.issuedAt)
	}
	if b.queued == 0 {
		return
	}
	if err := ctx.Err(); err != nil {
		for _, cmd := range b.pipe.Cmds() {
			cmd.SetErr(err)
		}
		b.pipe.Discard()
		for _, sc := range b.scripts {
			sc.err = limiterUnavailable(err)
			if sc.lease != nil {
				b.c.leases.unsend(sc.lease.owner, sc.lease.want, sc.lease.give)
			}
		}
		return
	}
	sent := ctx
	for _, sc := range b.scripts {
		if sc.lease != nil && sc.lease.give != nil {
			sent = context.WithoutCancel(ctx)
		}
	}
	_, _ = b.pipe.Exec(sent)
	for _, sc := range b.scripts {
		err := sc.cmd.Err()
		var v []int64
		if goredis.HasErrorPrefix(err, "NOSCRIPT") {
			// Run sends EVALSHA and falls back to EVAL, which loads it.
			v, err = limitScript.Run(sent, b.c.lim.rdb, sc.keys, sc.args...).Int64Slice()
		} else if err == nil {
			v, err = sc.cmd.Int64Slice()
		}
		var r scriptReply
		if err != nil {
			err = limiterUnavailable(err)
		} else {
			r, err = decodeLimits(v, sc.limits)
		}
		switch {
		case err != nil:
			sc.err = err
			if sc.lease != nil {
				// Perhaps counted, perhaps not: what it gave back is
				// not given again (that could admit more than the
				// limit), and what it was granted is not spent.
				b.c.leases.abandon(sc.lease.owner, sc.lease.want)
			}
		case sc.lease != nil:
			sc.res = b.c.leases.record(ctx, sc.userKeys, sc.limits, sc.lease.want, sc.lease.sent, sc.lease.owner, r)
		default:
			sc.res = r.results
		}
	}
}

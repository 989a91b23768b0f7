package redis

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/inprocess"
)

// This file is the pushed revocation feed (docs/architecture.md,
// "Revocation feed"): every instance holds the revocation state in memory,
// fed by a Redis stream, so that a bearer check makes no network call.
//
// Writes stay durable in Redis (the keys of Revocations, with their TTL)
// and, once the key is written, append one event to the stream
// <token prefix>revoked:feed (XADD MAXLEN ~ FeedOptions.MaxLen). Each
// instance runs one goroutine that
//
//  1. resyncs: reads the stream's last id (the position) first, then SCANs
//     every revocation key (every master of a Redis Cluster) into memory;
//     since a key is always written before its event is appended, a
//     revocation whose event is at or before the position has its key seen
//     by the scan, and one after it is read from the stream next;
//  2. reads the stream from that position with XREAD BLOCK, applying each
//     event; a read that answers (with entries or after the block time)
//     proves the state complete as of the moment it was sent;
//  3. resyncs again after any failure (a dropped connection, a timeout), a
//     gap (events trimmed before they were read, see cursor), a stream
//     recreated (fewer entries-added than read) or a lost state marker
//     (WithRestore: Redis came back without its data).
//
// The state is fresh while the last such proof was sent at most MaxLag
// ago. A stale feed still answers "revoked" from memory (revocations only
// grow); otherwise a bearer check fails with EUNAVAILABLE (fail closed) or,
// with FeedOptions.Lookup, asks Redis per request as without the feed.

// FeedOptions configure Revocations.WithFeed.
type FeedOptions struct {
	// MaxLag is the bound (REVOCATION_FEED_MAX_LAG_MS, default 1 s): the
	// in-memory state answers alone while its last proof of completeness
	// was sent at most MaxLag ago.
	MaxLag time.Duration
	// Lookup makes a bearer check on a stale feed ask Redis, per request
	// (REVOCATION_FEED_STALE=lookup); otherwise it fails with
	// EUNAVAILABLE (REVOCATION_FEED_STALE=fail, the default).
	Lookup bool
	// MaxLen is the approximate number of events the stream keeps (0 =
	// 100000). An instance that falls further behind resyncs.
	MaxLen int64
	// Logger receives the feed's state changes; nil logs nothing.
	Logger *slog.Logger
}

// Defaults of FeedOptions.
const (
	defaultFeedMaxLag = time.Second
	defaultFeedMaxLen = 100_000
	// feedReadCount is the most events one XREAD returns.
	feedReadCount = 1000
	// feedSweepInterval is how often expired entries are pruned from memory
	// (reads ignore them before that).
	feedSweepInterval = 10 * time.Second
	// noTTL is how long an entry found in Redis without a TTL is held (the
	// lookup would hold it forever; every write gives one a TTL).
	noTTL = 24 * time.Hour
)

// errFeedStale is a bearer check's answer while the feed is stale and
// FeedOptions.Lookup is off: fail closed (503, Retry-After), or open with
// REVOCATION_FAIL_OPEN.
var errFeedStale = permiso.Errorf(permiso.EUNAVAILABLE, "revocation feed is stale")

// feed is the in-memory revocation state and what keeps it fresh.
type feed struct {
	opts  FeedOptions
	key   string
	now   func() time.Time
	mem   *inprocess.Revocations
	block time.Duration
	sweep time.Duration

	base  time.Time             // reference of the monotonic readings
	fresh atomic.Pointer[stamp] // when the last proof was sent; nil = none yet

	events  atomic.Uint64
	resyncs atomic.Uint64

	started atomic.Bool
}

// FeedStats are counters of the feed, for metrics and tests.
type FeedStats struct {
	Live    bool          // the state answers alone (fresh within MaxLag)
	Lag     time.Duration // since the last proof of completeness was sent; -1 before the first
	Events  uint64        // events applied from the stream
	Resyncs uint64        // full resyncs completed
	Entries int           // entries held in memory (expired ones until pruned)
}

// WithFeed makes r keep the revocation state in memory, fed by the stream
// (see the top of this file), once StartFeed runs. Until the first resync
// completes the feed is stale. It must be called before r is used.
func (r *Revocations) WithFeed(opts FeedOptions) *Revocations {
	opts.MaxLag = cmp.Or(max(opts.MaxLag, 0), defaultFeedMaxLag)
	opts.MaxLen = cmp.Or(max(opts.MaxLen, 0), defaultFeedMaxLen)
	opts.Logger = cmp.Or(opts.Logger, slog.New(slog.DiscardHandler))
	// A read blocks for a tenth of the bound (at most 100 ms), so a live
	// feed renews its proof about ten times within it: a proof is at most
	// two reads old when it is renewed, and an overloaded host (slow
	// scheduling, a busy Redis) still has most of the bound to spare
	// before the feed turns stale (docs/architecture.md, "Revocation
	// feed").
	block := max(min(opts.MaxLag/10, 100*time.Millisecond), time.Millisecond)
	r.feed = &feed{
		opts:  opts,
		key:   r.feedKey(),
		now:   func() time.Time { return r.now() },
		mem:   inprocess.NewRevocations(inprocess.WithNow(func() time.Time { return r.now() })),
		block: block,
		sweep: feedSweepInterval,
		base:  time.Now(),
	}
	return r
}

// stamp is a moment read from both clocks: the monotonic one (immune to
// clock steps) and the wall clock (which, unlike Linux's monotonic clock,
// keeps running while the host is suspended).
type stamp struct{ mono, wall int64 }

func (f *feed) stamp() stamp {
	now := time.Now()
	return stamp{mono: int64(now.Sub(f.base)), wall: now.UnixNano()}
}

// lag returns the time since the last proof, or -1 before the first: the
// longer of the two clocks' readings, so that neither a suspended host nor
// a wall clock stepped back makes a proof look younger than it is (a wall
// clock stepped forward can only make the feed stale early).
func (f *feed) lag() time.Duration {
	p := f.fresh.Load()
	if p == nil {
		return -1
	}
	now := f.stamp()
	return time.Duration(max(now.mono-p.mono, now.wall-p.wall, 0))
}

func (f *feed) live() bool {
	l := f.lag()
	return l >= 0 && l <= f.opts.MaxLag
}

// FeedStats reports the feed's state; the zero value without WithFeed.
func (r *Revocations) FeedStats() FeedStats {
	f := r.feed
	if f == nil {
		return FeedStats{}
	}
	return FeedStats{Live: f.live(), Lag: f.lag(), Events: f.events.Load(),
		Resyncs: f.resyncs.Load(), Entries: f.mem.Len()}
}

// check answers a bearer check from memory when it can: decided is false
// when the feed is stale and FeedOptions.Lookup asks for a lookup, and
// when the feed has never been started (an admin command: the store
// behaves as without a feed).
func (f *feed) check(jti, sid, subject string, issuedAt time.Time) (revoked, decided bool, err error) {
	if !f.started.Load() {
		return false, false, nil
	}
	// The in-memory store never fails.
	if v, _ := f.mem.IsRevoked(context.Background(), jti, sid, subject, issuedAt); v {
		// Revocations only grow until they expire: "revoked" holds even
		// from a stale state.
		return true, true, nil
	}
	switch {
	case f.live():
		return false, true, nil
	case f.opts.Lookup:
		return false, false, nil
	default:
		return false, true, errFeedStale
	}
}

// Event kinds on the stream, and the fields of an event.
const (
	evJTI = "jti"
	evSID = "sid"
	evSub = "sub"
	evAll = "all"
)

// event is one revocation as the stream carries it: kind, identifier
// (empty for evAll), value (the cut-off in unix milliseconds, or 1) and
// TTL in milliseconds. The TTL is relative, so the receiver's deadline
// does not depend on the writer's clock (it starts when the event is
// applied: later, never earlier, than in Redis).
type event struct {
	kind, id string
	value    int64
	ttl      int64
}

// apply puts e into memory.
func (f *feed) apply(e event) {
	ctx := context.Background()
	until := f.now().Add(time.Duration(e.ttl) * time.Millisecond)
	// The in-memory store rejects only empty identifiers, which no writer
	// sends.
	switch e.kind {
	case evJTI:
		_ = f.mem.RevokeToken(ctx, e.id, until)
	case evSID:
		_ = f.mem.RevokeSession(ctx, e.id, until)
	case evSub:
		_ = f.mem.RevokeSubjectBefore(ctx, e.id, time.UnixMilli(e.value), until)
	case evAll:
		_ = f.mem.RevokeAllBefore(ctx, time.UnixMilli(e.value), until)
	}
}

// decodeEvent reads a stream entry; ok is false for one it cannot read.
func decodeEvent(m goredis.XMessage) (e event, ok bool) {
	s := func(k string) string { v, _ := m.Values[k].(string); return v }
	e.kind, e.id = s("k"), s("id")
	v, err1 := strconv.ParseInt(s("v"), 10, 64)
	ttl, err2 := strconv.ParseInt(s("ttl"), 10, 64)
	e.value, e.ttl = v, ttl
	switch {
	case err1 != nil || err2 != nil:
		return e, false
	case e.kind == evAll:
		return e, true
	case e.kind == evJTI || e.kind == evSID || e.kind == evSub:
		return e, e.id != ""
	}
	return e, false
}

// feedKey is the stream's key.
func (r *Revocations) feedKey() string { return r.prefix + "revoked:feed" }

// publish appends e to the stream, after its key is written. Every store
// publishes, with a feed or without (an admin command, an instance with
// REVOCATION_FEED=false), so that the instances that read the feed hear
// every revocation.
func (r *Revocations) publish(ctx context.Context, e event) error {
	maxLen := int64(defaultFeedMaxLen)
	if r.feed != nil {
		maxLen = r.feed.opts.MaxLen
	}
	err := r.rdb.XAdd(ctx, &goredis.XAddArgs{
		Stream: r.feedKey(), MaxLen: maxLen, Approx: true,
		Values: []any{"k", e.kind, "id", e.id, "v", e.value, "ttl", e.ttl},
	}).Err()
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// StartFeed starts the feed's goroutine (WithFeed must have been called)
// and returns the function that stops it and waits for it. It does not
// wait for the first resync: WaitFeed does.
func (r *Revocations) StartFeed() (stop func()) {
	f := r.feed
	if !f.started.CompareAndSwap(false, true) {
		panic("redis: StartFeed called twice")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.runFeed(ctx)
	}()
	return sync.OnceFunc(func() {
		cancel()
		<-done
	})
}

// WaitFeed waits until the feed is live or ctx ends.
func (r *Revocations) WaitFeed(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !r.feed.live() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// runFeed is the feed's loop, until ctx ends.
func (r *Revocations) runFeed(ctx context.Context) {
	f := r.feed
	var cur cursor // cur.pos "" = a resync is needed
	var failing error
	report := func(err error) {
		if err != nil && failing == nil {
			f.opts.Logger.Error("revocation feed interrupted: once it is older than max_lag, bearer checks not answered from memory fail with 503 or look up Redis (REVOCATION_FEED_STALE)",
				"error", err.Error(), "max_lag", f.opts.MaxLag.String(), "lookup", f.opts.Lookup)
		} else if err == nil && failing != nil {
			f.opts.Logger.Warn("revocation feed resynced and live again")
		}
		failing = err
	}
	lastSweep := time.Now()
	for ctx.Err() == nil {
		if cur.pos == "" {
			c, err := r.resync(ctx)
			report(err)
			if err != nil {
				sleepCtx(ctx, f.block)
				continue
			}
			cur = c
		}
		c, err := r.readFeed(ctx, cur)
		if err != nil {
			if ctx.Err() == nil {
				report(err)
				sleepCtx(ctx, f.block)
			}
			cur = cursor{}
			continue
		}
		cur = c
		if time.Since(lastSweep) >= f.sweep {
			f.mem.Sweep()
			lastSweep = time.Now()
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// errFeedGap, errFeedReset and errStateMissing make the loop resync.
var (
	errFeedGap      = errors.New("revocation feed: events were trimmed before they were read")
	errFeedReset    = errors.New("revocation feed: the stream was recreated (Redis lost its data?)")
	errStateMissing = errors.New("revocation feed: the state marker is missing (Redis lost its data?)")
	errFeedOldRedis = errors.New("revocation feed: the server does not report entries-added (XINFO STREAM, Redis 7.0 or later)")
)

// cursor is where a reader stands in the stream: the id of the last event
// it has (pos) and how many events the stream had ever taken up to it
// (seen, XINFO STREAM entries-added). The stream is trimmed from its
// oldest end only (nothing else deletes from it), so entries-added minus
// length is how many of the oldest events are gone: while that is at
// most seen, nothing after pos has been trimmed.
type cursor struct {
	pos  string
	seen int64
}

// checkStream reports a gap or a reset for a reader at c that has since
// read n more events, from XINFO STREAM of the stream (info) taken after
// the read.
func checkStream(c cursor, n int64, info *goredis.XInfoStream) error {
	switch {
	case info.Length > 0 && info.EntriesAdded == 0:
		return errFeedOldRedis
	case info.EntriesAdded < c.seen+n:
		return errFeedReset
	case info.EntriesAdded-info.Length > c.seen:
		return errFeedGap
	}
	return nil
}

// readFeed reads the events after c (blocking up to f.block), applies
// them, checks that none was trimmed before it was read, and renews the
// proof of freshness. It returns the new cursor, or an error that calls
// for a resync.
func (r *Revocations) readFeed(ctx context.Context, c cursor) (cursor, error) {
	f := r.feed
	sent := f.stamp()
	// A dead connection that never answers is cut after the bound: the
	// state is stale by then anyway, and a resync starts over.
	rctx, cancel := context.WithTimeout(ctx, f.block+f.opts.MaxLag+time.Second)
	defer cancel()
	res, err := r.rdb.XRead(rctx, &goredis.XReadArgs{
		Streams: []string{f.key, c.pos}, Count: feedReadCount, Block: f.block,
	}).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return c, err
	}
	// goredis.Nil: the block time passed without an event.
	next := c
	full := false // the read returned all it may: more events may wait
	for _, s := range res {
		full = full || len(s.Messages) >= feedReadCount
		for _, m := range s.Messages {
			if e, ok := decodeEvent(m); ok {
				f.apply(e)
				f.events.Add(1)
			} else {
				f.opts.Logger.Error("revocation feed: unreadable event ignored", "id", m.ID)
			}
			next.pos = m.ID
			next.seen++
		}
	}
	pipe := r.rdb.Pipeline()
	infoCmd := pipe.XInfoStream(rctx, f.key)
	var stateCmd *goredis.IntCmd
	if r.restore != nil {
		stateCmd = pipe.Exists(rctx, r.stateKey())
	}
	_, _ = pipe.Exec(rctx)
	info, err := infoCmd.Result()
	switch {
	case err == nil:
		if err := checkStream(c, next.seen-c.seen, info); err != nil {
			return c, err
		}
	case isNoSuchKey(err) && c.seen == 0:
		// No revocation has been written yet.
	case isNoSuchKey(err):
		return c, errFeedReset
	default:
		return c, err
	}
	if stateCmd != nil {
		n, err := stateCmd.Result()
		if err != nil {
			return c, err
		}
		if n == 0 {
			return c, errStateMissing
		}
	}
	if !full {
		// Nothing appended before the read was sent is left unread.
		f.fresh.Store(&sent)
	}
	return next, nil
}

func isNoSuchKey(err error) bool { return err != nil && strings.Contains(err.Error(), "no such key") }

// resync rebuilds the in-memory state from the keys in Redis (merged into
// what memory holds: a revocation is never forgotten early) and returns
// the cursor to read from. The cursor is read first (see the top of this
// file).
func (r *Revocations) resync(ctx context.Context) (cursor, error) {
	f := r.feed
	sent := f.stamp()
	cur := cursor{pos: "0-0"}
	info, err := r.rdb.XInfoStream(ctx, f.key).Result()
	switch {
	case err == nil:
		if info.Length > 0 && info.EntriesAdded == 0 {
			return cursor{}, errFeedOldRedis
		}
		cur = cursor{pos: info.LastGeneratedID, seen: info.EntriesAdded}
	case isNoSuchKey(err):
	default:
		return cursor{}, err
	}
	if r.restore != nil {
		if err := r.EnsureState(ctx); err != nil {
			return cursor{}, err
		}
	}
	if err := r.scanAll(ctx); err != nil {
		return cursor{}, err
	}
	f.resyncs.Add(1)
	f.fresh.Store(&sent)
	return cur, nil
}

// scanAll reads every revocation key into memory: on Redis Cluster from
// every master (SCAN sees one node's keys).
func (r *Revocations) scanAll(ctx context.Context) error {
	if cc, ok := r.rdb.(*goredis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			return r.scanNode(ctx, c)
		})
	}
	return r.scanNode(ctx, r.rdb)
}

// scanNode reads the revocation keys of one node: SCAN, then GET and PTTL
// of each batch in one pipeline.
func (r *Revocations) scanNode(ctx context.Context, c goredis.Cmdable) error {
	patterns := []string{r.prefix + "revoked:*"}
	if r.sessionPrefix != r.prefix {
		patterns = append(patterns, r.sessionPrefix+"revoked:sid:*")
	}
	for _, pattern := range patterns {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
			if len(keys) == 1000 {
				if err := r.loadKeys(ctx, c, keys); err != nil {
					return err
				}
				keys = keys[:0]
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		if err := r.loadKeys(ctx, c, keys); err != nil {
			return err
		}
	}
	return nil
}

// keyEvent maps a revocation key onto its event kind and identifier; ok is
// false for the other keys (the stream, the state marker, the cut-offs of
// releases that kept seconds).
func (r *Revocations) keyEvent(key string) (kind, id string, ok bool) {
	if sid, found := strings.CutPrefix(key, r.sessionPrefix+"revoked:sid:"); found {
		return evSID, sid, sid != ""
	}
	rest, found := strings.CutPrefix(key, r.prefix+"revoked:")
	if !found {
		return "", "", false
	}
	switch {
	case rest == "allms":
		return evAll, "", true
	case strings.HasPrefix(rest, "jti:"):
		return evJTI, rest[len("jti:"):], len(rest) > len("jti:")
	case strings.HasPrefix(rest, "sid:"):
		return evSID, rest[len("sid:"):], len(rest) > len("sid:")
	case strings.HasPrefix(rest, "subms:"):
		return evSub, rest[len("subms:"):], len(rest) > len("subms:")
	}
	return "", "", false
}

func (r *Revocations) loadKeys(ctx context.Context, c goredis.Cmdable, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	type read struct {
		kind, id string
		get      *goredis.StringCmd
		pttl     *goredis.DurationCmd
	}
	pipe := c.Pipeline()
	var reads []read
	for _, k := range keys {
		kind, id, ok := r.keyEvent(k)
		if !ok {
			continue
		}
		reads = append(reads, read{kind: kind, id: id, get: pipe.Get(ctx, k), pttl: pipe.PTTL(ctx, k)})
	}
	if len(reads) == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return err
	}
	for _, rd := range reads {
		v, err := rd.get.Result()
		if errors.Is(err, goredis.Nil) {
			continue // expired since the SCAN
		}
		if err != nil {
			return err
		}
		ttl, err := rd.pttl.Result()
		if err != nil {
			return err
		}
		switch {
		case ttl == -1:
			ttl = noTTL
		case ttl < 0:
			continue
		}
		e := event{kind: rd.kind, id: rd.id, value: 1, ttl: ttl.Milliseconds()}
		if rd.kind == evSub || rd.kind == evAll {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				// The lookup reports such an entry as an internal error;
				// it cannot be held as a cut-off.
				r.feed.opts.Logger.Error("revocation feed: malformed cut-off ignored", "kind", rd.kind, "id", rd.id)
				continue
			}
			e.value = n
		}
		r.feed.apply(e)
	}
	return nil
}

package redis

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/permiso/permiso"
)

// minTTL is the shortest life of a revocation entry, in milliseconds: even a
// token that has already expired is remembered for one second, and no entry
// is ever stored without a TTL.
const minTTL = 1000

// revokeScript stores a revocation atomically without ever weakening one
// already stored: the value becomes the larger of the stored and the new one
// (for cutoffs: the cutoff never moves back; for jti and sid entries
// the value is always 1), and the TTL the longer of the remaining and the
// new one. A key found without a TTL (PTTL -1) gets the new TTL, so nothing
// is kept forever.
//
// KEYS[1] = key, ARGV[1] = value (integer), ARGV[2] = TTL in milliseconds.
var revokeScript = goredis.NewScript(`
local val = ARGV[1]
local ttl = tonumber(ARGV[2])
local cur = redis.call('GET', KEYS[1])
if cur then
  local c = tonumber(cur)
  if c and c > tonumber(val) then val = cur end
  local left = redis.call('PTTL', KEYS[1])
  if left > ttl then ttl = left end
end
redis.call('SET', KEYS[1], val, 'PX', ttl)
return 1
`)

// Revocations is the permiso.RevocationStore shared by every instance,
// kept in Redis under the token prefix (CACHE_TOKEN_PREFIX) and, for whole
// sessions, the session prefix (CACHE_SESSION_PREFIX; the token prefix
// unless WithSessionPrefix sets it):
//
//	<token prefix>revoked:jti:<jti>        "1"                      one access token
//	<session prefix>revoked:sid:<sid>      "1"                      every token of a session
//	<token prefix>revoked:subms:<subject>  cutoff, unix milliseconds the subject's tokens issued before it
//	<token prefix>revoked:allms            cutoff, unix milliseconds every token issued before it
//	<token prefix>revoked:state            unix milliseconds        the state is whole (WithRestore; no TTL)
//
// Cut-offs are kept in milliseconds, rounded up (a cut-off is a
// permiso.RevocationCutoff, a whole millisecond, so nothing is rounded in
// practice), and compared with the token's issue time as
// permiso.TokenIssuedAt reads it: exact to the millisecond. Releases before
// this rule kept whole seconds under revoked:sub:<subject>; those keys are
// no longer read (the user row's tokens_revoked_before, checked on every
// bearer request, holds the same cut-off), and they expire on their own.
// The global cut-off is one key read by every bearer check, in the same
// pipeline as the others (on Redis Cluster, by the node that holds it).
//
// Every key carries a TTL equal to the remaining life of the tokens it
// revokes, computed from the absolute expiresAt and this process's clock,
// at least one second. Writes go through one Lua script (atomic, never
// weakens an entry). IsRevoked is one pipeline of plain GETs: not MGET,
// whose keys must share a hash slot on Redis Cluster, and not a script,
// which would need hash tags to keep the keys of one token on one slot. On a
// single server or Sentinel the pipeline is one round trip; on a cluster
// go-redis sends one batch to each node concerned, concurrently.
//
// Errors from Redis are returned as EUNAVAILABLE *permiso.Error values that
// wrap the driver error; the caller chooses to fail closed (503) or open
// (REVOCATION_FAIL_OPEN).
type Revocations struct {
	rdb           goredis.UniversalClient
	prefix        string
	sessionPrefix string
	now           func() time.Time

	// Set by WithFeed.
	feed *feed

	// Set by WithRestore.
	restore     SessionRestorer
	logger      *slog.Logger
	restoring   atomic.Bool
	lastAttempt atomic.Int64 // unix nanoseconds of the last restore attempt
}

// SessionRestorer returns the sessions that have ended while their access
// tokens may still be alive, each with the time until which those tokens
// must be refused (oauth2.Service.SessionRevocations, read from the
// database).
type SessionRestorer func(ctx context.Context) (map[string]time.Time, error)

// restoreInterval is the shortest time between two restore attempts of one
// process (a database that is down too is not asked on every request).
const restoreInterval = time.Second

// restoreTimeout bounds one restore.
const restoreTimeout = 30 * time.Second

var _ permiso.RevocationStore = (*Revocations)(nil)

// NewRevocations returns the revocation store over c whose keys all start
// with prefix (CACHE_TOKEN_PREFIX, for example "permiso:token:").
func NewRevocations(c *Client, prefix string) *Revocations {
	return &Revocations{rdb: c.rdb, prefix: prefix, sessionPrefix: prefix, now: time.Now}
}

// WithRestore makes r notice when Redis has lost its data (a restart
// without persistence, a replica promoted empty, FLUSHALL) and rebuild what
// the database knows, before it answers again (docs/deployment.md,
// "Outages"):
//
//   - a marker key, <token prefix>revoked:state, is written once the
//     revocations of ended sessions are in Redis; it has no TTL (revocation
//     entries all have one) and is read in the pipeline of every lookup;
//   - while it is missing every lookup fails with EUNAVAILABLE (fail
//     closed: 503, or open with REVOCATION_FAIL_OPEN) and one restore runs
//     in the background: restore's sessions are written as session
//     revocations, then the marker, in one pipeline, so the marker never
//     reaches a server that did not take the entries before it (a single
//     server or Sentinel master; on Redis Cluster the marker sits on one
//     node and cannot vouch for the others).
//
// Cut-offs need no restore: the users' and clients' own are on their rows
// (checked on every request), and a global revoke-all writes those too.
// Revocations of single access tokens by jti (RFC 7009 on an access token)
// are kept only in Redis and are lost with it. It must be called before r
// is used.
func (r *Revocations) WithRestore(restore SessionRestorer, logger *slog.Logger) *Revocations {
	r.restore = restore
	r.logger = logger
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	return r
}

func (r *Revocations) stateKey() string { return r.prefix + "revoked:state" }

// errStateLost is the answer of a lookup while the revocation state is
// being rebuilt.
var errStateLost = permiso.Errorf(permiso.EUNAVAILABLE, "revocation state is being restored")

// triggerRestore starts a restore in the background unless one is running
// or one started less than restoreInterval ago.
func (r *Revocations) triggerRestore() {
	now := time.Now().UnixNano()
	if last := r.lastAttempt.Load(); now-last < int64(restoreInterval) || !r.restoring.CompareAndSwap(false, true) {
		return
	}
	r.lastAttempt.Store(now)
	go func() {
		defer r.restoring.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), restoreTimeout)
		defer cancel()
		if n, err := r.Restore(ctx); err != nil {
			r.logger.Error("revocation state lost in Redis; restoring it failed, bearer checks keep failing closed",
				"error", err.Error())
		} else {
			r.logger.Warn("revocation state lost in Redis (restarted without its data?); session revocations restored from the database",
				"sessions", n)
		}
	}()
}

// Restore writes the session revocations that WithRestore's restorer
// returns, then the marker, and returns how many sessions it wrote. It
// never weakens an entry already stored.
func (r *Revocations) Restore(ctx context.Context) (int, error) {
	if r.restore == nil {
		return 0, permiso.Errorf(permiso.EINTERNAL, "no restorer configured")
	}
	sessions, err := r.restore(ctx)
	if err != nil {
		return 0, err
	}
	pipe := r.rdb.Pipeline()
	for sid, until := range sessions {
		keys := []string{r.sidKey(sid)}
		if legacy := r.legacySidKey(sid); legacy != "" {
			keys = append(keys, legacy)
		}
		for _, k := range keys {
			revokeScript.Eval(ctx, pipe, []string{k}, 1, r.ttlMillis(until))
		}
	}
	pipe.Set(ctx, r.stateKey(), r.now().UnixMilli(), 0)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, unavailable(err)
	}
	return len(sessions), nil
}

// EnsureState restores the revocation state now unless its marker is in
// Redis (a first start against an empty Redis, or one that lost its data
// while no instance ran), so that the first bearer checks need not wait
// for it.
func (r *Revocations) EnsureState(ctx context.Context) error {
	n, err := r.rdb.Exists(ctx, r.stateKey()).Result()
	if err != nil {
		return unavailable(err)
	}
	if n > 0 {
		return nil
	}
	_, err = r.Restore(ctx)
	return err
}

// WithSessionPrefix puts the revocations of whole sessions under prefix
// (CACHE_SESSION_PREFIX) and returns r.
func (r *Revocations) WithSessionPrefix(prefix string) *Revocations {
	r.sessionPrefix = prefix
	return r
}

func (r *Revocations) jtiKey(jti string) string { return r.prefix + "revoked:jti:" + jti }
func (r *Revocations) sidKey(sid string) string { return r.sessionPrefix + "revoked:sid:" + sid }

// legacySidKey is where releases before CACHE_SESSION_PREFIX kept session
// revocations (under the token prefix), or "" when the two prefixes are
// the same. Session revocations are written to and read from both, so that
// neither an upgrade nor a rolling deploy (old and new instances side by
// side) forgets a logout: an entry lives no longer than the tokens it
// revokes, so the legacy key can go one release after every instance
// writes the new one.
func (r *Revocations) legacySidKey(sid string) string {
	if r.sessionPrefix == r.prefix {
		return ""
	}
	return r.prefix + "revoked:sid:" + sid
}
func (r *Revocations) subKey(sub string) string { return r.prefix + "revoked:subms:" + sub }
func (r *Revocations) allKey() string           { return r.prefix + "revoked:allms" }

// cutoffMillis is cutoff in Unix milliseconds, rounded up.
func cutoffMillis(cutoff time.Time) int64 {
	return permiso.RevocationCutoff(cutoff).UnixMilli()
}

// ttlMillis returns the TTL of an entry that must last until expiresAt:
// the remaining time rounded up to the millisecond, at least minTTL.
func (r *Revocations) ttlMillis(expiresAt time.Time) int64 {
	d := expiresAt.Sub(r.now())
	ms := int64((d + time.Millisecond - 1) / time.Millisecond)
	return max(ms, minTTL)
}

func unavailable(err error) error {
	return permiso.Wrap(permiso.EUNAVAILABLE, "revocation store unavailable", err)
}

// revoke stores e under keys (one Lua script each), then appends e to the
// feed's stream (revfeed.go): the key first, so that a resync that read the
// stream's position before its scan never misses a revocation whose event
// it will not read (revfeed.go). With a feed the revocation is also held
// in memory at once (read-your-writes), whatever Redis answers: holding
// it can only refuse more.
func (r *Revocations) revoke(ctx context.Context, e event, keys ...string) error {
	if r.feed != nil {
		r.feed.apply(e)
	}
	for _, key := range keys {
		if err := revokeScript.Run(ctx, r.rdb, []string{key}, e.value, e.ttl).Err(); err != nil {
			return unavailable(err)
		}
	}
	return r.publish(ctx, e)
}

// revocation is the event of a revocation of kind until expiresAt.
func (r *Revocations) revocation(kind, id string, value int64, expiresAt time.Time) event {
	return event{kind: kind, id: id, value: value, ttl: r.ttlMillis(expiresAt)}
}

// RevokeToken revokes one access token by jti until expiresAt (at least one
// second from now). Revoking it again never shortens the revocation.
func (r *Revocations) RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error {
	if jti == "" {
		return permiso.Invalid("revocation needs a jti")
	}
	return r.revoke(ctx, r.revocation(evJTI, jti, 1, expiresAt), r.jtiKey(jti))
}

// RevokeSession revokes every access token carrying sid until expiresAt (at
// least one second from now). Revoking it again never shortens the
// revocation.
func (r *Revocations) RevokeSession(ctx context.Context, sid string, expiresAt time.Time) error {
	if sid == "" {
		return permiso.Invalid("revocation needs a session id")
	}
	keys := []string{r.sidKey(sid)}
	if legacy := r.legacySidKey(sid); legacy != "" {
		keys = []string{legacy, r.sidKey(sid)}
	}
	return r.revoke(ctx, r.revocation(evSID, sid, 1, expiresAt), keys...)
}

// RevokeSubjectBefore revokes every token of subject issued before cutoff
// (kept in milliseconds, rounded up), remembered until expiresAt (at least
// one second from now). It is atomic: concurrent calls keep the latest
// cutoff and the longest TTL.
func (r *Revocations) RevokeSubjectBefore(ctx context.Context, subject string, cutoff, expiresAt time.Time) error {
	if subject == "" {
		return permiso.Invalid("revocation needs a subject")
	}
	return r.revoke(ctx, r.revocation(evSub, subject, cutoffMillis(cutoff), expiresAt), r.subKey(subject))
}

// RevokeAllBefore revokes every token issued before cutoff, whatever its
// subject (kept in milliseconds, rounded up), remembered until expiresAt
// (at least one second from now). Atomic like RevokeSubjectBefore.
func (r *Revocations) RevokeAllBefore(ctx context.Context, cutoff, expiresAt time.Time) error {
	return r.revoke(ctx, r.revocation(evAll, "", cutoffMillis(cutoff), expiresAt), r.allKey())
}

// IsRevoked reports whether the token is revoked by its jti, its sid (when
// not empty), its subject's cutoff or the global cutoff. With a feed
// (WithFeed) it answers from memory, without a call, while the feed is
// live (and "revoked" from memory even when it is not); otherwise, and on
// a stale feed with FeedOptions.Lookup, in one pipelined round trip.
// Empty identifiers are skipped; with all three empty the answer is false
// without a call.
func (r *Revocations) IsRevoked(ctx context.Context, jti, sid, subject string, issuedAt time.Time) (bool, error) {
	if jti == "" && sid == "" && subject == "" {
		return false, nil
	}
	if r.feed != nil {
		if revoked, decided, err := r.feed.check(jti, sid, subject, issuedAt); decided {
			return revoked, err
		}
	}
	pipe := r.rdb.Pipeline()
	result := r.QueueIsRevoked(ctx, pipe, jti, sid, subject, issuedAt)
	_, execErr := pipe.Exec(ctx)
	// Exec reports the first failed command, but the others may have
	// answered: a positive "revoked" from any of them wins over the error.
	revoked, err := result()
	if revoked {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if execErr != nil && !errors.Is(execErr, goredis.Nil) {
		return false, unavailable(execErr)
	}
	return false, nil
}

// QueueIsRevoked adds the lookups of IsRevoked to pipe without sending
// them, so that a caller can check revocation and rate limits in the same
// round trip (docs/abuse-resistance.md). After pipe.Exec, the returned function reports what
// IsRevoked would have; it must not be called before. Exec returns
// goredis.Nil when a key is absent, which is not an error here: the
// returned function inspects each command itself.
func (r *Revocations) QueueIsRevoked(ctx context.Context, pipe goredis.Pipeliner, jti, sid, subject string, issuedAt time.Time) func() (bool, error) {
	var jtiCmd, sidCmd, legacyCmd, subCmd *goredis.StringCmd
	if jti != "" {
		jtiCmd = pipe.Get(ctx, r.jtiKey(jti))
	}
	if sid != "" {
		sidCmd = pipe.Get(ctx, r.sidKey(sid))
		if legacy := r.legacySidKey(sid); legacy != "" {
			legacyCmd = pipe.Get(ctx, legacy)
		}
	}
	if subject != "" {
		subCmd = pipe.Get(ctx, r.subKey(subject))
	}
	allCmd := pipe.Get(ctx, r.allKey())
	var stateCmd *goredis.IntCmd
	if r.restore != nil {
		stateCmd = pipe.Exists(ctx, r.stateKey())
	}
	return func() (bool, error) {
		// Any positive answer wins over another lookup's error: revoked is
		// the safe answer.
		var firstErr error
		fail := func(err error) {
			if firstErr == nil {
				firstErr = err
			}
		}
		for _, cmd := range []*goredis.StringCmd{jtiCmd, sidCmd, legacyCmd} {
			if cmd == nil {
				continue
			}
			switch err := cmd.Err(); {
			case err == nil:
				return true, nil
			case !errors.Is(err, goredis.Nil):
				fail(unavailable(err))
			}
		}
		for _, cmd := range []*goredis.StringCmd{subCmd, allCmd} {
			if cmd == nil {
				continue
			}
			v, err := cmd.Result()
			switch {
			case err == nil:
				cutoff, perr := strconv.ParseInt(v, 10, 64)
				if perr != nil {
					// A corrupt entry is a bug; report it, never pass it.
					fail(permiso.Wrap(permiso.EINTERNAL, "revocation store holds a malformed entry", perr))
					continue
				}
				if issuedAt.Before(time.UnixMilli(cutoff)) {
					return true, nil
				}
			case !errors.Is(err, goredis.Nil):
				fail(unavailable(err))
			}
		}
		if stateCmd != nil {
			switch n, err := stateCmd.Result(); {
			case err != nil:
				fail(unavailable(err))
			case n == 0:
				// Redis has lost the revocations: nothing it says "not
				// revoked" can be believed until they are restored.
				r.triggerRestore()
				fail(errStateLost)
			}
		}
		return false, firstErr
	}
}

package redis

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testredis"
	"github.com/permiso/permiso/sharedstatetest"
)

// TestLeasesAcrossInstances: three instances (three checkers, each with
// its own leases) share one limiter key; together they never admit more
// than the limit (docs/abuse-resistance.md, "Leases").
func TestLeasesAcrossInstances(t *testing.T) {
	t.Parallel()
	c := openTestClient(t)
	l := NewLimiter(c, testPrefix(t, c))
	rev := NewRevocations(c, testPrefix(t, c))
	var hook testredis.RoundTrips
	c.rdb.AddHook(&hook)
	sharedstatetest.LeasedWithinLimit(t, NewChecker(l, rev), NewChecker(l, rev), NewChecker(l, rev))
	t.Logf("%d scripts sent for 1201 leased requests", hook.Single.Load()+hook.Commands.Load())
	hook.Reset()
	// A service client's minute and hour limits, leased together.
	sharedstatetest.LeasedTogetherWithinLimits(t, l, NewChecker(l, rev), NewChecker(l, rev), NewChecker(l, rev))
	t.Logf("%d scripts sent for 2 x 1201 requests under a client's two limits", hook.Single.Load()+hook.Commands.Load())
}

// TestClientLeaseLifetime: a lease of a client's minute and hour limits
// (leases, with the replies of limitScript as Redis sends them) is spent
// only within one slot of the minute limit, one second, not one of the
// hour's (a minute: its requests would be spent after they left the
// minute's window); never beyond what Redis granted; not at all once the
// limits changed (an admin lowered them); and what it did not spend is
// given back, in both keys' slots. Its size is one slot's share of the
// tighter limit.
func TestClientLeaseLifetime(t *testing.T) {
	t.Parallel()
	keys := []string{"client:{c}:minute", "client:{c}:hour"}
	limits := []permiso.Limit{{Count: 6000, Period: time.Minute}, {Count: 600, Period: time.Hour}}
	if got := leaseCap(limits); got != 10 {
		t.Errorf("leaseCap = %d, want 10 (600/hour over 60 slots)", got)
	}
	if got := leaseSlot(limits); got != time.Second {
		t.Errorf("leaseSlot = %v, want 1s (the minute limit's slot)", got)
	}
	ls := newLeases()
	now := time.Now()
	reply := func(granted int) scriptReply {
		return scriptReply{granted: granted, ends: []int64{100_000_000, 120_000_000},
			results: []permiso.LimitResult{{Allowed: true, Limit: 6000, Remaining: 6000 - granted, Reset: time.Minute},
				{Allowed: true, Limit: 600, Remaining: 600 - granted, Reset: time.Hour}}}
	}
	if _, ok, want, _, _ := ls.take(keys, limits, now); ok || want != 1 {
		t.Fatalf("first take: ok %v, want %d; want a run for 1", ok, want)
	}
	ls.record(t.Context(), keys, limits, 4, now, nil, reply(4))
	for i := range 3 {
		res, ok, _, _, _ := ls.take(keys, limits, now.Add(999*time.Millisecond))
		if !ok || len(res) != 2 || res[1].Remaining != 596+2-i {
			t.Fatalf("take %d within the slot: %+v, %v; want a leased request", i, res, ok)
		}
	}
	if _, ok, _, _, _ := ls.take(keys, limits, now.Add(999*time.Millisecond)); ok {
		t.Fatal("a fourth request spent from a lease of four (one spent by the request that took it)")
	}

	ls.record(t.Context(), keys, limits, 4, now, nil, reply(4))
	_, ok, _, give, _ := ls.take(keys, limits, now.Add(time.Second))
	if ok {
		t.Fatal("a lease spent one second after it was taken: its requests may have left the minute's window")
	}
	if len(give) != 2 || give[0] != (giveBack{end: 100_000_000, n: 3}) || give[1] != (giveBack{end: 120_000_000, n: 3}) {
		t.Errorf("give back = %+v; want the 3 unspent requests in both keys' slots", give)
	}

	ls.record(t.Context(), keys, limits, 4, now, nil, reply(4))
	lowered := []permiso.Limit{{Count: 6000, Period: time.Minute}, {Count: 300, Period: time.Hour}}
	if _, ok, want, _, _ := ls.take(keys, lowered, now); ok || want != 1 {
		t.Errorf("after the limit was lowered: ok %v, want %d; want an exact run", ok, want)
	}

	ls = newLeases()
	ls.record(t.Context(), keys, limits, 4, now, nil, scriptReply{granted: 0, ends: []int64{0, 0},
		results: []permiso.LimitResult{{Limit: 6000}, {Limit: 600, RetryAfter: time.Minute}}})
	if _, ok, _, _, _ := ls.take(keys, limits, now); ok {
		t.Error("a refusal was leased")
	}
}

// testLimiter returns the test client, a limiter under a prefix of this
// test's own, and that prefix.
func testLimiter(t *testing.T) (*Client, *Limiter, string) {
	c := openTestClient(t)
	prefix := testPrefix(t, c)
	return c, NewLimiter(c, prefix), prefix
}

// TestLimiterMemoryPerKey: the Redis memory of a limit key does not grow
// with the limit's count or the requests it admitted (docs/abuse-
// resistance.md, "Algorithm: sliding window of slots"): at most
// permiso.LimitSlots + 1 slots and the summary field, whatever the limit.
// The log of earlier versions held one sorted-set member per admitted
// request.
func TestLimiterMemoryPerKey(t *testing.T) {
	t.Parallel()
	c, l, prefix := testLimiter(t)
	ctx := t.Context()
	usage := func(key string) (fields, bytes int64) {
		t.Helper()
		fields, err := c.rdb.HLen(ctx, prefix+key).Result()
		if err != nil {
			t.Fatal(err)
		}
		bytes, err = c.rdb.MemoryUsage(ctx, prefix+key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return fields, bytes
	}
	// Requests spread over every slot of a short period (the slots are
	// what a key holds), under limits 1,000 times apart.
	for _, count := range []int{100, 100_000} {
		lim := permiso.Limit{Count: count, Period: 300 * time.Millisecond}
		key := fmt.Sprint("ip:api:", count)
		requests := 0
		for start := time.Now(); time.Since(start) < 2*lim.Period; requests++ {
			if _, err := l.Allow(ctx, key, lim); err != nil {
				t.Fatal(err)
			}
		}
		fields, bytes := usage(key)
		if fields > permiso.LimitSlots+2 {
			t.Errorf("limit %d: %d fields after %d requests, want at most %d", count, fields, requests, permiso.LimitSlots+2)
		}
		t.Logf("limit %d per %v: %d requests, %d fields, MEMORY USAGE %d bytes", count, lim.Period, requests, fields, bytes)
	}
	// One hour of a client allowed 100,000 requests an hour: 5,000
	// requests hold the size of one slot, as 5 do.
	hour := permiso.Limit{Count: 100_000, Period: time.Hour}
	var sizes []int64
	for i, n := range []int{5, 5_000} {
		key := fmt.Sprint("client:{c", i, "}:hour")
		pipe := c.rdb.Pipeline()
		full, args := l.scriptArgs(1, false, []string{key}, []permiso.Limit{hour}, nil)
		for range n {
			limitScript.Run(ctx, pipe, full, args...)
		}
		if _, err := pipe.Exec(ctx); err != nil && err != goredis.Nil {
			t.Fatal(err)
		}
		fields, bytes := usage(key)
		if r, err := l.Peek(ctx, key, hour); err != nil || r.Remaining != hour.Count-n {
			t.Fatalf("after %d requests: %+v, %v", n, r, err)
		}
		sizes = append(sizes, bytes)
		t.Logf("%d requests under %d per hour: %d fields, MEMORY USAGE %d bytes", n, hour.Count, fields, bytes)
	}
	if sizes[1] > sizes[0]+16 {
		t.Errorf("MEMORY USAGE grew from %d to %d bytes with the requests counted", sizes[0], sizes[1])
	}
}

// TestLimiterConvertsLog: a key left by the sorted-set log of earlier
// versions is converted on first use, its requests still counted.
func TestLimiterConvertsLog(t *testing.T) {
	t.Parallel()
	c, l, prefix := testLimiter(t)
	ctx := context.Background()
	now := time.Now()
	key := "ip:login:192.0.2.9"
	for i := range 3 {
		if err := c.rdb.ZAdd(ctx, prefix+key, goredis.Z{Score: float64(now.Add(time.Duration(i-3) * time.Second).UnixMicro()), Member: fmt.Sprint(i)}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	lim := permiso.Limit{Count: 5, Period: time.Minute}
	r, err := l.Allow(ctx, key, lim)
	if err != nil || !r.Allowed || r.Remaining != 1 {
		t.Fatalf("Allow on a logged key = %+v, %v; want allowed, 1 remaining", r, err)
	}
	if typ, err := c.rdb.Type(ctx, prefix+key).Result(); err != nil || typ != "hash" {
		t.Errorf("TYPE = %q, %v; want hash", typ, err)
	}
}

// TestRefusedLeaseRunSpendsOwnLease: when two requests of one instance
// found no lease left and both asked Redis, and the lease of one took the
// room so that Redis refused the other, the refused one waits for that
// reply and spends one of its requests instead of refusing a request the
// instance has counted (docs/abuse-resistance.md, "Leases").
func TestRefusedLeaseRunSpendsOwnLease(t *testing.T) {
	t.Parallel()
	keys := []string{"client:{c}:minute", "client:{c}:hour"}
	limits := []permiso.Limit{{Count: 6000, Period: time.Minute}, {Count: 600, Period: time.Hour}}
	ls := newLeases()
	now := time.Now()
	granted := func(n int) scriptReply {
		return scriptReply{granted: n, ends: []int64{100_000_000, 120_000_000},
			results: []permiso.LimitResult{{Allowed: true, Limit: 6000, Remaining: 10, Reset: time.Minute},
				{Allowed: true, Limit: 600, Remaining: 10, Reset: time.Hour}}}
	}
	refusal := scriptReply{granted: 0, ends: []int64{0, 0},
		results: []permiso.LimitResult{{Limit: 6000, RetryAfter: time.Second}, {Limit: 600, RetryAfter: time.Second}}}
	ls.record(t.Context(), keys, limits, 1, now, nil, granted(1))
	_, okA, _, _, ownerA := ls.take(keys, limits, now)
	_, okB, _, _, ownerB := ls.take(keys, limits, now)
	if okA || okB || ownerA == nil || ownerA != ownerB {
		t.Fatalf("two takes without a lease left: ok %v %v, owners %p %p; want two runs of one lease", okA, okB, ownerA, ownerB)
	}
	done := make(chan []permiso.LimitResult)
	go func() { done <- ls.record(t.Context(), keys, limits, 2, now, ownerB, refusal) }()
	for waiting := false; !waiting; {
		select {
		case res := <-done:
			t.Fatalf("refused run answered %+v while the instance's other run was in flight; want it to wait for that", res)
		default:
		}
		runtime.Gosched()
		ls.mu.Lock()
		waiting = ownerA.changed != nil
		ls.mu.Unlock()
	}
	ls.record(t.Context(), keys, limits, 2, now, ownerA, granted(4))
	if res := <-done; len(res) != 2 || !res[0].Allowed || !res[1].Allowed {
		t.Fatalf("refused run after the instance's own lease took the room: %+v; want admitted from that lease", res)
	}
	for i := range 3 {
		_, ok, _, _, _ := ls.take(keys, limits, now)
		if ok != (i < 2) {
			t.Fatalf("take %d: ok %v; the lease of 4 had 2 left after the two requests", i, ok)
		}
	}
}

// leasedKey is one key of a leased per-IP limit (RATE_LIMIT_API,
// 6000/minute: leases of up to 100), counted through a checker of its
// own over the test Redis.
type leasedKey struct {
	l        *Limiter
	ck       *Checker
	key      string
	limit    permiso.Limit
	admitted int
}

func newLeasedKey(t *testing.T) *leasedKey {
	c := openTestClient(t)
	prefix := testPrefix(t, c)
	l := NewLimiter(c, prefix)
	return &leasedKey{l: l, ck: NewChecker(l, NewRevocations(c, prefix)),
		key: "ip:api:192.0.2.1", limit: permiso.Limit{Count: 6000, Period: time.Minute}}
}

// exec queues a request of the key in each of batches, all before the
// first is sent (requests arriving together), then sends them one after
// the other. It returns the first check's error.
func (k *leasedKey) exec(ctx context.Context, batches ...permiso.CheckBatch) error {
	res := make([]func() (permiso.LimitResult, error), len(batches))
	for i, b := range batches {
		res[i] = b.AllowLeased(k.key, k.limit)
	}
	var first error
	for i, b := range batches {
		b.Exec(ctx)
		r, err := res[i]()
		if err == nil && r.Allowed {
			k.admitted++
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// counted is the key's count in Redis.
func (k *leasedKey) counted(t *testing.T) int {
	t.Helper()
	r, err := k.l.Peek(t.Context(), k.key, k.limit)
	if err != nil {
		t.Fatal(err)
	}
	return k.limit.Count - r.Remaining
}

// leased is what the checker's lease of the key holds unspent.
func (k *leasedKey) leased() int {
	k.ck.leases.mu.Lock()
	defer k.ck.leases.mu.Unlock()
	return k.ck.leases.m[k.key].left()
}

// TestEndedRequestKeepsLeaseGiveBack: a request that ended before its
// batch was sent (its client hung up) sends nothing, and the unspent
// requests of an expired lease that its run was to give back stay with
// the instance for the next run: Redis then counts exactly the requests
// admitted and those the live lease holds (docs/abuse-resistance.md,
// "Leases"). Were they dropped with the unsent run, they would count for
// the rest of the period: a flood of requests whose clients hang up
// would spend a whole IP's budget with a fraction of its requests.
func TestEndedRequestKeepsLeaseGiveBack(t *testing.T) {
	t.Parallel()
	k := newLeasedKey(t)
	// Leases of 1, 2 and 4 (each spent before its slot ran out): 7
	// counted, 4 admitted, 3 leased.
	for range 4 {
		if err := k.exec(t.Context(), k.ck.Batch()); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := k.counted(t), k.admitted+k.leased(); got != want || k.leased() == 0 {
		t.Fatalf("counted %d, want %d admitted + %d leased", got, k.admitted, k.leased())
	}
	// The lease's slot runs out with its requests unspent.
	k.ck.leases.mu.Lock()
	for i := range k.ck.leases.m[k.key].blocks {
		k.ck.leases.m[k.key].blocks[i].expires = time.Now()
	}
	k.ck.leases.mu.Unlock()

	ended, cancel := context.WithCancel(t.Context())
	cancel()
	before := k.counted(t)
	if err := k.exec(ended, k.ck.Batch()); err == nil {
		t.Fatal("a batch of an ended request was answered")
	}
	if got := k.counted(t); got != before {
		t.Fatalf("an ended request's batch changed the count: %d, was %d", got, before)
	}
	if err := k.exec(t.Context(), k.ck.Batch()); err != nil {
		t.Fatal(err)
	}
	if got, want := k.counted(t), k.admitted+k.leased(); got != want {
		t.Errorf("after an ended request: counted %d, want %d admitted + %d leased (the expired lease's requests not given back)", got, k.admitted, k.leased())
	}
}

// TestOneLeaseRunAtATime: while a run taking a lease of a key is in
// flight, the instance's other requests of the key that find no lease
// left ask Redis for one request each, not for a lease each: requests
// arriving together count at most one lease ahead of those admitted
// (docs/abuse-resistance.md, "Leases"). With a lease each, ten requests
// at once would count ten leases, and a busy IP's unspent leases alone
// could fill its RATE_LIMIT_API.
func TestOneLeaseRunAtATime(t *testing.T) {
	t.Parallel()
	k := newLeasedKey(t)
	// Leases of 1, 2 and 4, spent one request after the other.
	for range 7 {
		if err := k.exec(t.Context(), k.ck.Batch()); err != nil {
			t.Fatal(err)
		}
	}
	// Ten requests find no lease left at once.
	batches := make([]permiso.CheckBatch, 10)
	for i := range batches {
		batches[i] = k.ck.Batch()
	}
	if err := k.exec(t.Context(), batches...); err != nil {
		t.Fatal(err)
	}
	if k.admitted != 17 {
		t.Fatalf("admitted %d; want 17", k.admitted)
	}
	// The next lease, of 8 (the one of 4 was spent in time), less the
	// request that took it.
	if ahead := k.counted(t) - k.admitted; ahead != 7 {
		t.Errorf("%d requests counted ahead of those admitted; want one lease's 7", ahead)
	}
}

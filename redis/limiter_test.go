package redis

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/permiso/permiso"
)

// evalshaMicros returns the calls and microseconds Redis counted for
// EVALSHA so far (INFO commandstats).
func evalshaMicros(tb testing.TB, c *Client) (calls, usec float64) {
	tb.Helper()
	info, err := c.rdb.Info(tb.Context(), "commandstats").Result()
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.Lines(info) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:")
		if !ok {
			continue
		}
		for kv := range strings.SplitSeq(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "calls":
				calls, _ = strconv.ParseFloat(v, 64)
			case "usec":
				usec, _ = strconv.ParseFloat(v, 64)
			}
		}
	}
	return calls, usec
}

// fillSlots writes, in the layout of the previous release (slot fields
// only), n requests in each of the 60 slots ending at or before the
// current one of lim: a key whose window is full of live slots.
func fillSlots(tb testing.TB, c *Client, key string, lim permiso.Limit, n int) {
	tb.Helper()
	slot := lim.Slot().Microseconds()
	cur := (time.Now().UnixMicro()/slot + 1) * slot
	args := make([]any, 0, 2*permiso.LimitSlots)
	for k := range permiso.LimitSlots {
		args = append(args, strconv.FormatInt(cur-int64(k)*slot, 10), n)
	}
	if err := c.rdb.HSet(tb.Context(), key, args...).Err(); err != nil {
		tb.Fatal(err)
	}
	if err := c.rdb.PExpire(tb.Context(), key, lim.Period+lim.Slot()).Err(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkLimiterHotClient is a client's minute and hour limits
// (AllowAll, one script) for one client whose windows hold a live slot in
// each of their 60 slots: the limiter's cost on a client-credentials
// token for a client served thousands of tokens a second
// (docs/benchmarks.md, "Where the time goes"). "admitted" counts each
// request; "refused" finds the client at its hour limit. redis-µs/op is
// the script's time inside Redis (INFO commandstats), meaningful on a
// Redis server no other client uses during the run.
func BenchmarkLimiterHotClient(b *testing.B) {
	for _, tc := range []struct {
		name  string
		count int
	}{{"admitted", 1 << 30}, {"refused", permiso.LimitSlots * 100}} {
		b.Run(tc.name, func(b *testing.B) {
			c := openTestClient(b)
			prefix := testPrefix(b, c)
			l := NewLimiter(c, prefix)
			keys := []string{"client:{bench}:minute", "client:{bench}:hour"}
			limits := []permiso.Limit{{Count: 1 << 30, Period: time.Minute}, {Count: tc.count, Period: time.Hour}}
			for i, k := range keys {
				fillSlots(b, c, prefix+k, limits[i], 100)
			}
			ctx := b.Context()
			if _, err := l.AllowAll(ctx, keys, limits); err != nil {
				b.Fatal(err)
			}
			calls0, usec0 := evalshaMicros(b, c)
			b.ResetTimer()
			for b.Loop() {
				r, err := l.AllowAll(ctx, keys, limits)
				if err != nil {
					b.Fatal(err)
				}
				if r[1].Allowed != (tc.name == "admitted") {
					b.Fatalf("%s: %+v", tc.name, r)
				}
			}
			b.StopTimer()
			calls1, usec1 := evalshaMicros(b, c)
			if calls1 > calls0 {
				b.ReportMetric((usec1-usec0)/(calls1-calls0), "redis-µs/op")
			}
		})
	}
}

// clockedScript is src with the Redis server's clock (TIME) replaced by
// the last ARGV, so that a test runs it at the times it chooses.
func clockedScript(t *testing.T, src string) *goredis.Script {
	t.Helper()
	const clock = "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
	if !strings.Contains(src, clock) {
		t.Fatal("the limit script no longer reads TIME as this test expects")
	}
	return goredis.NewScript(strings.Replace(src, clock, "local now = tonumber(ARGV[#ARGV])\n", 1))
}

// previousLimitScript is the limit script of the release before the
// summary field, which reads every slot of a key on every run.
func previousLimitScript(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("testdata/limitscript-previous.lua")
	if err != nil {
		t.Fatal(err)
	}
	return string(src)
}

// slotFields returns the slot fields of the hash at key, and checks that
// its summary field, when it has one, sums them up (docs/abuse-
// resistance.md, "Algorithm: sliding window of slots").
func slotFields(t *testing.T, c *Client, key string) map[string]string {
	t.Helper()
	h, err := c.rdb.HGetAll(t.Context(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	sum, summary := h["0"], strings.Fields(h["0"])
	delete(h, "0")
	if sum == "" {
		return h
	}
	var total, oldest, newest int64
	for f, v := range h {
		e, _ := strconv.ParseInt(f, 10, 64)
		n, _ := strconv.ParseInt(v, 10, 64)
		total += n
		if oldest == 0 || e < oldest {
			oldest = e
		}
		newest = max(newest, e)
	}
	if len(summary) != 4 || summary[0] != fmt.Sprint(total) || summary[1] != fmt.Sprint(oldest) || summary[2] != fmt.Sprint(newest) {
		t.Fatalf("%s: summary %q, slots %v (total %d, oldest %d, newest %d)", key, sum, h, total, oldest, newest)
	}
	return h
}

// TestLimitScriptAsPreviousRelease runs limitScript and the previous
// release's script on two copies of the same keys, at the same simulated
// times, through random requests, peeks, AllowAll, leases with their give
// backs, limits lowered and periods changed: both must give the same
// replies (admitted or not, used, reset, retry-after, granted, slot) and
// leave the same slots. Some steps run the previous script on both copies,
// as a release of each kind does during a rolling upgrade.
func TestLimitScriptAsPreviousRelease(t *testing.T) {
	t.Parallel()
	c := openTestClient(t)
	ctx := t.Context()
	prev := previousLimitScript(t)
	cur, old := clockedScript(t, limitScriptSrc), clockedScript(t, prev)
	lc, lo := NewLimiter(c, testPrefix(t, c)), NewLimiter(c, testPrefix(t, c))
	seed := time.Now().UnixNano()
	rnd := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("seed %d", seed)
	keys := []string{"client:{c}:minute", "client:{c}:hour"}
	limits := []permiso.Limit{{Count: 6, Period: time.Minute}, {Count: 20, Period: time.Hour}}
	now := time.Now().UnixMicro()
	var lastEnd int64
	counts := map[string]int{}
	for step := range 3000 {
		switch r := rnd.IntN(100); {
		case r < 50:
			now += rnd.Int64N(1_500_000)
		case r < 80:
			now += rnd.Int64N(20_000_000)
		case r < 95:
			now += rnd.Int64N(70_000_000)
		case r < 98:
			now += rnd.Int64N(2 * time.Hour.Microseconds())
		default:
			// exactly on a slot's end, where a slot leaves the window
			now = (now/1_000_000 + 1) * 1_000_000
		}
		switch r := rnd.IntN(100); {
		case r < 3:
			limits[0].Count = 2 + rnd.IntN(8)
		case r < 5:
			limits[0].Period = []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute}[rnd.IntN(3)]
		case r < 6:
			limits[1].Count = 10 + rnd.IntN(20)
		}
		want, lease, ks, ls := 1, false, keys, limits
		var gives []giveBack
		switch r := rnd.IntN(100); {
		case r < 40:
			ks, ls = keys[:1], limits[:1]
		case r < 55:
			want = 0
			ks, ls = keys[:1], limits[:1]
		case r < 70:
			want, lease, ks, ls = 1+rnd.IntN(4), true, keys[:1], limits[:1]
			if rnd.IntN(2) == 0 {
				gives = []giveBack{{end: lastEnd, n: 1 + rnd.IntN(3)}}
			}
		}
		script := cur
		if rnd.IntN(100) < 5 {
			script = old
		}
		fc, ac := lc.scriptArgs(want, lease, ks, ls, gives)
		fo, ao := lo.scriptArgs(want, lease, ks, ls, gives)
		vc, err := script.Run(ctx, c.rdb, fc, append(ac, now)...).Int64Slice()
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		vo, err := old.Run(ctx, c.rdb, fo, append(ao, now)...).Int64Slice()
		if err != nil {
			t.Fatalf("step %d, previous script: %v", step, err)
		}
		if fmt.Sprint(vc) != fmt.Sprint(vo) {
			t.Fatalf("step %d (want %d, lease %v, gives %v, limits %v): reply %v, previous release %v", step, want, lease, gives, ls, vc, vo)
		}
		if vc[2] > 0 {
			lastEnd = vc[6]
		}
		counts[fmt.Sprintf("allowed=%d granted>0=%v", vc[0], vc[2] > 0)]++
		for i := range ks {
			sc, so := slotFields(t, c, fc[i]), slotFields(t, c, fo[i])
			if fmt.Sprint(sc) != fmt.Sprint(so) {
				t.Fatalf("step %d: %s holds %v, previous release %v", step, ks[i], sc, so)
			}
			// Redis's own expiry runs on its clock, not this test's.
			c.rdb.Persist(ctx, fc[i])
			c.rdb.Persist(ctx, fo[i])
		}
	}
	t.Logf("replies: %v", counts)
}

// TestLimiterReadsPreviousLayout: a key written by the previous release
// (its slots only, no summary field) is read whole once, and its summary
// written: the same requests count, from then on without reading every
// slot. A key the previous release touches again loses its summary (that
// release drops field 0 as a slot that ended long ago) and is read whole
// again: either release may serve a key during a rolling upgrade.
func TestLimiterReadsPreviousLayout(t *testing.T) {
	t.Parallel()
	c, l, prefix := testLimiter(t)
	ctx := t.Context()
	lim := permiso.Limit{Count: 1000, Period: time.Minute}
	key := "client:{old}:minute"
	slot := lim.Slot().Microseconds()
	cur := (time.Now().UnixMicro()/slot + 1) * slot
	live := 0
	var args []any
	for k, n := range map[int64]int{0: 7, 5: 11, 30: 13, 58: 17, 61: 19, 90: 23} {
		args = append(args, strconv.FormatInt(cur-k*slot, 10), n)
		if k < 60 {
			live += n
		}
	}
	if err := c.rdb.HSet(ctx, prefix+key, args...).Err(); err != nil {
		t.Fatal(err)
	}
	r, err := l.Peek(ctx, key, lim)
	if err != nil || r.Remaining != lim.Count-live {
		t.Fatalf("Peek = %+v, %v; want %d remaining", r, err, lim.Count-live)
	}
	h := slotFields(t, c, prefix+key)
	if len(h) != 4 {
		t.Errorf("slots %v, want the 4 in the window", h)
	}
	if s, err := c.rdb.HGet(ctx, prefix+key, "0").Result(); err != nil || !strings.HasPrefix(s, fmt.Sprint(live, " ", cur-58*slot, " ", cur, " ")) {
		t.Errorf("summary = %q, %v; want %d requests from %d to %d", s, err, live, cur-58*slot, cur)
	}
	if r, err := l.Allow(ctx, key, lim); err != nil || r.Remaining != lim.Count-live-1 {
		t.Fatalf("Allow = %+v, %v; want %d remaining", r, err, lim.Count-live-1)
	}
	// The previous release counts one more.
	full, sargs := l.scriptArgs(1, false, []string{key}, []permiso.Limit{lim}, nil)
	if err := goredis.NewScript(previousLimitScript(t)).Run(ctx, c.rdb, full, sargs...).Err(); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.rdb.HExists(ctx, prefix+key, "0").Result(); err != nil || ok {
		t.Errorf("HEXISTS field 0 after the previous release = %v, %v; want it dropped", ok, err)
	}
	if r, err := l.Allow(ctx, key, lim); err != nil || r.Remaining != lim.Count-live-3 {
		t.Fatalf("Allow after the previous release = %+v, %v; want %d remaining", r, err, lim.Count-live-3)
	}
	slotFields(t, c, prefix+key)
}

// TestLimiterRepairsCorruptKeys: a limit key whose summary, slots or type
// were not written by the script (by hand, or corrupt) is read whole and
// repaired, never trusted: a summary claiming slots far apart would make
// the script walk millions of slots and block the Redis every instance
// shares (docs/abuse-resistance.md, "Algorithm: sliding window of slots").
// The requests the real slots hold still count; a key of a foreign type
// starts over.
func TestLimiterRepairsCorruptKeys(t *testing.T) {
	t.Parallel()
	c, l, prefix := testLimiter(t)
	ctx := t.Context()
	lim := permiso.Limit{Count: 20, Period: time.Minute}
	slot := lim.Slot().Microseconds()
	allow := func(key string, remaining int, what string) {
		t.Helper()
		r, err := l.Allow(ctx, key, lim)
		if err != nil || !r.Allowed || r.Remaining != remaining {
			t.Fatalf("%s: Allow = %+v, %v; want admitted with %d remaining", what, r, err, remaining)
		}
		slotFields(t, c, prefix+key)
	}
	// Three requests counted, then the summary replaced.
	summaries := map[string]func(u, o, w, p int64) string{
		"oldest slot far back":   func(u, o, w, p int64) string { return fmt.Sprint(u, " ", o-100_000*slot, " ", w, " ", p) },
		"newest slot far ahead":  func(u, o, w, p int64) string { return fmt.Sprint(u, " ", o, " ", w+100_000*slot, " ", p) },
		"oldest slot 1":          func(u, o, w, p int64) string { return fmt.Sprint(u, " ", 1, " ", w, " ", p) },
		"slots not aligned":      func(u, o, w, p int64) string { return fmt.Sprint(u, " ", o+1, " ", w, " ", p) },
		"oldest after newest":    func(u, o, w, p int64) string { return fmt.Sprint(u, " ", w+slot, " ", w, " ", p) },
		"total beyond 2^53":      func(u, o, w, p int64) string { return fmt.Sprint("99999999999999999999 ", o, " ", w, " ", p) },
		"not a summary":          func(u, o, w, p int64) string { return "garbage" },
		"total without its slot": func(u, o, w, p int64) string { return fmt.Sprint(u, " 0 0 ", p) },
	}
	for name, corrupt := range summaries {
		key := "corrupt:" + strings.ReplaceAll(name, " ", "-")
		for n := range 3 {
			allow(key, lim.Count-n-1, name+": before")
		}
		var u, o, w, p int64
		s, err := c.rdb.HGet(ctx, prefix+key, "0").Result()
		if _, serr := fmt.Sscan(s, &u, &o, &w, &p); err != nil || serr != nil {
			t.Fatalf("%s: summary %q: %v %v", name, s, err, serr)
		}
		if err := c.rdb.HSet(ctx, prefix+key, "0", corrupt(u, o, w, p)).Err(); err != nil {
			t.Fatal(err)
		}
		allow(key, lim.Count-4, name)
	}
	// Slots that are not numbers are dropped; the real one still counts.
	key := "corrupt:fields"
	allow(key, lim.Count-1, "fields: before")
	if err := c.rdb.HSet(ctx, prefix+key, "0", "garbage", "abc", "5", strconv.FormatInt((time.Now().UnixMicro()/slot+1)*slot, 10)+"9", "x").Err(); err != nil {
		t.Fatal(err)
	}
	allow(key, lim.Count-2, "fields")
	// A key of another type is not a limit's: it starts over.
	for _, kind := range []string{"string", "list", "set"} {
		key := "corrupt:type:" + kind
		var err error
		switch kind {
		case "string":
			err = c.rdb.Set(ctx, prefix+key, "x", 0).Err()
		case "list":
			err = c.rdb.RPush(ctx, prefix+key, "x").Err()
		case "set":
			err = c.rdb.SAdd(ctx, prefix+key, "x").Err()
		}
		if err != nil {
			t.Fatal(err)
		}
		allow(key, lim.Count-1, kind)
	}
}

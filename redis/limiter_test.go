package redis

import (
	"strconv"
	"strings"
	"testing"
	"time"

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

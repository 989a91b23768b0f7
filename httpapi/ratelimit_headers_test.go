package httpapi

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/permiso/permiso"
)

// TestRateLimitHeadersFormatted holds setRateLimitHeaders, which formats
// the four RateLimit-* headers (docs/abuse-resistance.md) into one buffer,
// to what each header says on its own: the limit, the remaining count,
// the reset in whole seconds rounded up, and the policy "N;w=seconds"
// (draft-ietf-httpapi-ratelimit-headers), for small, large and rounded
// values. Each header is a value of its own: adding to one leaves the
// others as they were.
func TestRateLimitHeadersFormatted(t *testing.T) {
	for _, c := range []struct {
		res permiso.LimitResult
		lim permiso.Limit
	}{
		{permiso.LimitResult{Allowed: true, Limit: 60, Remaining: 59, Reset: 500 * time.Millisecond}, permiso.Limit{Count: 60, Period: time.Minute}},
		{permiso.LimitResult{Allowed: true, Limit: 1000, Remaining: 0, Reset: 0}, permiso.Limit{Count: 1000, Period: time.Minute}},
		{permiso.LimitResult{Allowed: false, Limit: 100000, Remaining: 0, Reset: 59*time.Minute + time.Nanosecond}, permiso.Limit{Count: 100000, Period: time.Hour}},
		{permiso.LimitResult{Allowed: true, Limit: 1 << 30, Remaining: 1<<30 - 1, Reset: 2 * time.Second}, permiso.Limit{Count: 1 << 30, Period: 0}},
		{permiso.LimitResult{Allowed: true, Limit: 9, Remaining: -1, Reset: -time.Second}, permiso.Limit{Count: 9, Period: 1500 * time.Millisecond}},
	} {
		w := httptest.NewRecorder()
		setRateLimitHeaders(w, c.res, c.lim)
		want := http.Header{
			"Ratelimit-Limit":     {strconv.Itoa(c.res.Limit)},
			"Ratelimit-Remaining": {strconv.Itoa(c.res.Remaining)},
			"Ratelimit-Reset":     {strconv.FormatInt(max(int64((c.res.Reset+time.Second-1)/time.Second), 0), 10)},
			"Ratelimit-Policy":    {strconv.Itoa(c.lim.Count) + ";w=" + strconv.FormatInt(max(int64((c.lim.Period+time.Second-1)/time.Second), 1), 10)},
		}
		if got := w.Header(); !reflect.DeepEqual(got, want) {
			t.Fatalf("%+v %+v:\n got %v\nwant %v", c.res, c.lim, got, want)
		}
		w.Header().Add(hdrRateLimit, "x")
		if got := w.Header()[keyRateRemaining]; len(got) != 1 || got[0] != want[keyRateRemaining][0] {
			t.Fatalf("Ratelimit-Remaining after adding to Ratelimit-Limit: %q", got)
		}
	}
}

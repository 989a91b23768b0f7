// Package testwait waits, in tests, for what a background goroutine,
// another process or another instance does. The bound is how long a test
// gives up after, never a speed requirement: a condition that can come
// true by itself later (an expiring cache entry) needs a bound below that
// time, so that only the awaited cause can meet it.
package testwait

import (
	"testing"
	"time"
)

// Poll is the interval between two evaluations of a condition.
const Poll = 10 * time.Millisecond

// Until evaluates cond every Poll until it holds; if it still does not
// after within, the test fails naming what it waited for.
func Until(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", within, what)
		}
		time.Sleep(Poll)
	}
}

package memory_test

import (
	"testing"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/cachetest"
	"github.com/permiso/permiso/internal/testclock"
	"github.com/permiso/permiso/memory"
)

// TestChecker runs the checker suite over the in-process stores with
// permiso.SequentialChecker, the checker cmd/permiso uses without Redis.
func TestChecker(t *testing.T) {
	cachetest.RunChecker(t, func(t *testing.T) (permiso.Checker, permiso.RateLimiter, permiso.RevocationStore, *testclock.Clock) {
		c := fakeClock()
		l := memory.NewLimiter(memory.WithNow(c.Now))
		r := memory.NewRevocations(memory.WithNow(c.Now))
		return permiso.SequentialChecker(l, r), l, r, c
	})
}

package inprocess_test

import (
	"testing"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/testclock"
	"github.com/permiso/permiso/sharedstatetest"
)

// TestChecker runs the checker suite over the in-process stores with
// permiso.SequentialChecker, the checker cmd/permiso uses without Redis.
func TestChecker(t *testing.T) {
	sharedstatetest.RunChecker(t, func(t *testing.T) (permiso.Checker, permiso.RateLimiter, permiso.RevocationStore, *testclock.Clock) {
		c := fakeClock()
		l := inprocess.NewLimiter(inprocess.WithNow(c.Now))
		r := inprocess.NewRevocations(inprocess.WithNow(c.Now))
		return permiso.SequentialChecker(l, r), l, r, c
	})
}

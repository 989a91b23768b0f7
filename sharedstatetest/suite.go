package sharedstatetest

import (
	"testing"

	"github.com/permiso/permiso/internal/testclock"
)

// conformance is one subtest of a conformance suite, on a fresh S and its clock.
type conformance[S any] struct {
	name string
	fn   func(t *testing.T, s S, c *testclock.Clock)
}

// runSuite runs each check in a parallel subtest on its own S from newS,
// then isolated, named isolatedName, on two of them (a and b, with a's
// clock): what one records must not show in the other.
func runSuite[S any](t *testing.T, newS func(*testing.T) (S, *testclock.Clock), checks []conformance[S],
	isolatedName string, isolated func(t *testing.T, a, b S, c *testclock.Clock)) {
	t.Helper()
	for _, tc := range checks {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, c := newS(t)
			tc.fn(t, s, c)
		})
	}
	t.Run(isolatedName, func(t *testing.T) {
		t.Parallel()
		a, c := newS(t)
		b, _ := newS(t)
		isolated(t, a, b, c)
	})
}

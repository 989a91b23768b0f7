// Package testrace runs the concurrent calls of the race tests: the
// stores', the token service's and the migrators' checks that of calls
// made at once the right number win.
package testrace

import "sync"

// All runs try(0), ..., try(n-1) at once and returns their errors, by
// index, once every call has returned.
func All(n int, try func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = try(i) })
	}
	wg.Wait()
	return errs
}

package argon2id

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/permiso/permiso/internal/testwait"
)

// TestReturnMemoryAfterHashing: once the hasher has been idle for
// Options.ReturnMemoryAfter after a burst, the memory of its hashes goes
// back to the operating system (docs/benchmarks.md,
// "Memory"); a hasher without the option never does.
func TestReturnMemoryAfterHashing(t *testing.T) {
	h := New(Options{Params: TestParams(), Concurrency: 2, ReturnMemoryAfter: 20 * time.Millisecond})
	var freed atomic.Int32
	h.idle.free = func() { freed.Add(1) }
	burst := func() {
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				if _, err := h.Hash(t.Context(), "Correct-Horse-1"); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	burst()
	testwait.Until(t, 10*time.Second, "memory returned after the first burst", func() bool { return freed.Load() >= 1 })
	burst()
	testwait.Until(t, 10*time.Second, "memory returned after the second burst", func() bool { return freed.Load() >= 2 })
	t.Logf("memory returned %d times after two bursts", freed.Load())
	if New(Options{Params: TestParams()}).idle != nil {
		t.Error("a hasher without ReturnMemoryAfter returns memory")
	}
}

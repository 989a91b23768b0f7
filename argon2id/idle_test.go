package argon2id

import (
	"runtime"
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

// TestHashMemoryCollectedBeforeSlotReturns: the memory of a finished hash
// is garbage collected before its slot is given back, so the next hash
// never allocates its memory on top of the last one's and the heap of
// password checks stays within PASSWORD_HASH_CONCURRENCY ×
// PASSWORD_HASH_MEMORY_KIB (docs/benchmarks.md, "Memory"). Not parallel:
// other tests' hashes would count in the heap.
func TestHashMemoryCollectedBeforeSlotReturns(t *testing.T) {
	p := TestParams()
	p.Memory = collectAbove
	h := New(Options{Params: p, Concurrency: 1})
	cost := uint64(p.Memory) * 1024
	encoded, err := h.Hash(t.Context(), "Correct-Horse-1")
	if err != nil {
		t.Fatal(err)
	}
	heapAfter := func(what string) {
		t.Helper()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc >= cost {
			t.Errorf("after %s: heap holds %d bytes, at least the hash's %d: its memory was not collected", what, ms.HeapAlloc, cost)
		}
		t.Logf("after %s: heap %d bytes (hash memory %d)", what, ms.HeapAlloc, cost)
	}
	heapAfter("Hash")
	if ok, _, err := h.Verify(t.Context(), "Correct-Horse-1", encoded); err != nil || !ok {
		t.Fatalf("Verify = %v, %v", ok, err)
	}
	heapAfter("Verify")
}

package argon2id

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// workMeter replaces derive and adds up memory × passes of every call.
type workMeter struct {
	mu   sync.Mutex
	work uint64
}

func (m *workMeter) install(h *Hasher) {
	real := h.derive
	h.derive = func(p, s []byte, ti, mem uint32, th uint8, k uint32) []byte {
		m.mu.Lock()
		m.work += uint64(ti) * uint64(mem)
		m.mu.Unlock()
		return real(p, s, ti, mem, th, k)
	}
}

func (m *workMeter) take() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.work
	m.work = 0
	return w
}

// Verifying a weaker (imported) hash costs at least a current
// verification, as the dummy for unknown users does; an unreadable hash
// costs the same too; and a stored hash may not ask for far more memory
// than the current parameters (finding 10).
func TestVerifyCostsAtLeastCurrent(t *testing.T) {
	ctx := context.Background()
	cur := Params{Memory: 256, Time: 4, Parallelism: 1, SaltLen: 16, KeyLen: 32}
	weakParams := Params{Memory: 256, Time: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}
	weak, err := New(Options{Params: weakParams}).Hash(ctx, "pw")
	if err != nil {
		t.Fatal(err)
	}
	h := New(Options{Params: cur})
	var m workMeter
	m.install(h)
	full := uint64(cur.Memory) * uint64(cur.Time)

	if err := h.VerifyDummy(ctx, "pw"); err != nil {
		t.Fatal(err)
	}
	if w := m.take(); w != full {
		t.Fatalf("dummy work %d, want %d", w, full)
	}
	ok, rehash, err := h.Verify(ctx, "pw", weak)
	if err != nil || !ok || !rehash {
		t.Fatalf("Verify(weak) = %v, %v, %v", ok, rehash, err)
	}
	if w := m.take(); w < full {
		t.Fatalf("verifying a weak hash cost %d, less than a current verification (%d)", w, full)
	}
	if ok, _, _ := h.Verify(ctx, "wrong", weak); ok {
		t.Fatal("wrong password verified")
	}
	if w := m.take(); w < full {
		t.Fatalf("a wrong password against a weak hash cost %d < %d", w, full)
	}

	// Unreadable: an error (so callers can log it), but only after the
	// same work as a verification.
	_, _, err = h.Verify(ctx, "pw", "not-a-hash")
	if !errors.Is(err, ErrInvalidHash) {
		t.Fatalf("Verify(garbage) error %v", err)
	}
	if w := m.take(); w != full {
		t.Fatalf("an unreadable hash cost %d, want %d", w, full)
	}

	// Memory far above the current parameters: refused without deriving it.
	huge := encode(Params{Memory: h.MaxStoredMemory() + 1024, Time: 1, Parallelism: 1}, make([]byte, 16), make([]byte, 32))
	_, _, err = h.Verify(ctx, "pw", huge)
	if !errors.Is(err, ErrInvalidHash) {
		t.Fatalf("Verify(huge memory) error %v, want ErrInvalidHash", err)
	}
	if w := m.take(); w != full {
		t.Fatalf("a hash with hostile memory cost %d of work, want only the dummy's %d", w, full)
	}
}

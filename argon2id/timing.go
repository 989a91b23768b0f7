package argon2id

import (
	"context"
	"fmt"
)

// MaxStoredMemoryFactor bounds the memory cost accepted from a stored hash
// relative to the current parameters: at most this many times the larger
// of the current and the default memory cost. One hostile or corrupted row
// cannot make every verification of it allocate up to MaxMemoryKiB (1 GiB).
const MaxStoredMemoryFactor = 4

// MaxStoredMemory is the largest memory cost, in KiB, that this Hasher
// accepts from a stored hash.
func (h *Hasher) MaxStoredMemory() uint32 {
	return MaxStoredMemoryFactor * max(h.params.Memory, DefaultParams().Memory)
}

func (h *Hasher) checkStoredMemory(p Params) error {
	if m := h.MaxStoredMemory(); p.Memory > m {
		return fmt.Errorf("%w: memory cost %d KiB above the accepted %d KiB", ErrInvalidHash, p.Memory, m)
	}
	return nil
}

// dummyWork costs one verification with the current parameters (the
// dummy hash), for a stored hash that cannot be used: an unreadable hash
// answers no faster than any other account.
func (h *Hasher) dummyWork(ctx context.Context, password string) error {
	_, _, err := h.Verify(ctx, password, h.dummy)
	return err
}

// pad runs, in the slot already held, the work by which a verification of
// a hash with parameters p falls short of one with the current parameters.
// Argon2id's cost grows with memory × passes, so the shortfall is made up
// by passes over the current memory:
//
//	ceil((cur.Memory*cur.Time - p.Memory*p.Time) / cur.Memory)
//
// Hashes at least as costly as the current parameters get no padding. The
// result is discarded.
func (h *Hasher) pad(password string, p Params) {
	cur := h.params
	want := uint64(cur.Memory) * uint64(cur.Time)
	have := uint64(p.Memory) * uint64(p.Time)
	if have >= want {
		return
	}
	passes := (want - have + uint64(cur.Memory) - 1) / uint64(cur.Memory)
	h.derive([]byte(password), h.padSalt(), uint32(passes), cur.Memory, cur.Parallelism, cur.KeyLen)
}

// padSalt is a fixed salt of the current length for padding work.
func (h *Hasher) padSalt() []byte {
	return make([]byte, h.params.SaltLen)
}

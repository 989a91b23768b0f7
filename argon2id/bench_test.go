package argon2id

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkHashSettings hashes one password with a few settings of
// PASSWORD_HASH_MEMORY_KIB and PASSWORD_HASH_ITERATIONS, from OWASP's
// minimum to the default and above, and reports logins per second on one
// core (docs/benchmarks.md, "Password hashing"). A login costs one
// verification, which costs what one hash costs.
func BenchmarkHashSettings(b *testing.B) {
	for _, s := range []struct{ memory, time uint32 }{
		{19456, 2}, {47104, 2}, {65536, 3}, {65536, 4}, {131072, 4},
	} {
		p := DefaultParams()
		p.Memory, p.Time = s.memory, s.time
		h := New(Options{Params: p, Concurrency: 1})
		b.Run(fmt.Sprintf("m=%d,t=%d", s.memory, s.time), func(b *testing.B) {
			for b.Loop() {
				if _, err := h.Hash(context.Background(), "correct horse battery staple"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
		})
	}
}

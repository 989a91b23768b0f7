package main

import (
	"testing"

	"github.com/permiso/permiso/config"
)

// The tests run many servers in one process: the limit of one server's
// configuration is not the process's.
func init() { setMemoryLimit = func(int64) int64 { return 0 } }

// TestMemoryLimit: the soft memory limit is the base plus one Argon2id
// memory per hash that may run at once (docs/benchmarks.md, "Memory").
func TestMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		concurrency, kib int
		want             int64
	}{
		{1, 65536, 64<<20 + 64<<20},
		{4, 65536, 64<<20 + 4*64<<20},
		{2, 19456, 64<<20 + 2*19456<<10},
	} {
		cfg := config.Config{PasswordHashConcurrency: tc.concurrency, PasswordHashMemoryKiB: tc.kib}
		if got := memoryLimit(cfg); got != tc.want {
			t.Errorf("memoryLimit(concurrency %d, %d KiB) = %d, want %d", tc.concurrency, tc.kib, got, tc.want)
		}
	}
}

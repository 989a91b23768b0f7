package main

import (
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/permiso/permiso/config"
)

// memoryBase is what permiso serve needs besides password hashing: the
// runtime, the caches, the pools and the requests in flight. An idle
// server is resident in well under half of it (docs/benchmarks.md,
// "Memory").
const memoryBase = 64 << 20

// returnHashMemoryAfter is how long the hasher stays idle before the
// memory of its last hashes goes back to the operating system
// (argon2id.Options.ReturnMemoryAfter).
const returnHashMemoryAfter = 5 * time.Second

// setMemoryLimit is debug.SetMemoryLimit; the tests, which run many
// servers in one process, keep their process's limit.
var setMemoryLimit = debug.SetMemoryLimit

// memoryLimit is the soft memory limit of permiso serve derived from the
// configuration: memoryBase plus, for each password hash that may run at
// once (PASSWORD_HASH_CONCURRENCY), its Argon2id memory
// (PASSWORD_HASH_MEMORY_KIB). The garbage collector works harder as the
// heap nears it, so the memory of finished hashes is reclaimed before the
// heap grows past what the configuration allows at once.
func memoryLimit(cfg config.Config) int64 {
	return memoryBase + int64(cfg.PasswordHashConcurrency)*int64(cfg.PasswordHashMemoryKiB)<<10
}

// applyMemoryLimit sets memoryLimit as the process's soft memory limit,
// unless GOMEMLIMIT (the Go runtime's own setting, read from the process
// environment) is set, which wins.
func applyMemoryLimit(cfg config.Config, logger *slog.Logger) {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		logger.Info("memory limit from GOMEMLIMIT", "GOMEMLIMIT", v)
		return
	}
	limit := memoryLimit(cfg)
	setMemoryLimit(limit)
	logger.Info("memory limit derived from the configuration", "bytes", limit,
		"password_hash_concurrency", cfg.PasswordHashConcurrency, "password_hash_memory_kib", cfg.PasswordHashMemoryKiB)
}

// returnStartupMemory gives the heap that starting left free back to the
// operating system, once, before the server takes requests. Startup
// (migrations, a first signing key, the route table, the pools) makes
// several MiB of garbage, and the runtime's background scavenger returns
// such pages only gradually, so an idle server would stay resident at
// its startup peak for minutes (docs/benchmarks.md, "Memory").
func returnStartupMemory() { debug.FreeOSMemory() }

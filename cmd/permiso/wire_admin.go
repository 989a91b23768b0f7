package main

import (
	"context"
	"sync"
	"time"

	"github.com/permiso/permiso/audit"
	"github.com/permiso/permiso/config"
)

// auditRetention is AUDIT_RETENTION_DAYS as a duration (0 keeps events
// forever).
func auditRetention(cfg config.Config) time.Duration {
	if cfg.AuditRetentionDays <= 0 {
		return 0
	}
	return time.Duration(cfg.AuditRetentionDays) * 24 * time.Hour
}

// startAdminJobs starts the periodic jobs of serve: audit events
// older than AUDIT_RETENTION_DAYS are pruned at start and then hourly. The
// returned function stops them and waits, so nothing runs once the
// database closes.
func startAdminJobs(ctx context.Context, a *app) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		audit.RunPruner(ctx, a.db, auditRetention(a.cfg), audit.DefaultPruneInterval, a.logger, nil)
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

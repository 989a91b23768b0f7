package audit

import (
	"context"
	"log/slog"
	"time"

	"github.com/permiso/permiso"
)

// DefaultPruneInterval is how often RunPruner deletes old events.
const DefaultPruneInterval = time.Hour

// Prune deletes the events that occurred more than retention before now
// and returns how many. A retention of zero or less keeps everything
// (AUDIT_RETENTION_DAYS=0).
func Prune(ctx context.Context, store permiso.AuditStore, retention time.Duration, now time.Time) (int, error) {
	if retention <= 0 {
		return 0, nil
	}
	return store.DeleteAuditEventsBefore(ctx, now.Add(-retention))
}

// RunPruner prunes at once and then every interval (DefaultPruneInterval
// when zero) until ctx is done (AUDIT_RETENTION_DAYS; docs/audit.md). Every
// instance may run it: deleting is idempotent. now is the clock (time.Now
// when nil).
func RunPruner(ctx context.Context, store permiso.AuditStore, retention, interval time.Duration, logger *slog.Logger, now func() time.Time) {
	if retention <= 0 {
		return
	}
	permiso.SetDefault(&interval, DefaultPruneInterval)
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := Prune(ctx, store, retention, now())
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Error("audit pruning failed", "error", err)
		case n > 0:
			logger.Info("audit events pruned", "deleted", n, "retention", retention.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

package permiso

import (
	"context"
	"time"
)

// AuditGrouping says which columns CountAuditEvents groups by. With none
// set it returns one row: the number of matching events.
type AuditGrouping struct {
	// Day groups by the UTC calendar day of occurred_at.
	Day bool
	// Action and Result group by those columns.
	Action bool
	Result bool
	// Actor groups by actor_type and actor_id.
	Actor bool
}

// AuditCount is the number of events of one group. Fields the grouping
// does not use are zero.
type AuditCount struct {
	Day       time.Time // midnight UTC of the day
	Action    string
	Result    string
	ActorType string
	ActorID   string
	Count     int
}

// ReportStore computes the figures of the admin API from the data itself
// (docs/api.md, "Admin": every figure is real).
type ReportStore interface {
	// CountAuditEvents counts the events matching f (Offset and Limit are
	// ignored), grouped as g says, ordered by day, action, result,
	// actor_type, actor_id.
	CountAuditEvents(ctx context.Context, f AuditFilter, g AuditGrouping) ([]AuditCount, error)
	// CountAuditActors counts the distinct non-null actor ids among the
	// events matching f.
	CountAuditActors(ctx context.Context, f AuditFilter) (int, error)
	// ClearExpiredLocks resets the lockout mirror of users whose lock
	// ended at or before now (locked_until = NULL, failed_login_attempts
	// = 0) and returns how many users changed.
	ClearExpiredLocks(ctx context.Context, now time.Time) (int, error)
}

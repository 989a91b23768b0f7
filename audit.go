package permiso

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// AuditEvent records one security-relevant action (SPEC §5.2 "Audit").
type AuditEvent struct {
	ID         uuid.UUID
	OccurredAt time.Time
	ActorType  string // "user", "client", "system", "anonymous"
	ActorID    *string
	Action     string // e.g. "login.success", "token.reuse_detected"
	TargetType *string
	TargetID   *string
	Result     string // "success" or "failure"
	IPAddress  *string
	UserAgent  *string
	RequestID  *string
	Details    map[string]any
}

// AuditFilter selects and pages audit events, newest first (occurred_at
// desc, id desc).
type AuditFilter struct {
	Action string // exact action, or a prefix ending in '.' ("login.")
	// Actions, when not empty, admits only events whose action matches
	// one of them (each exact, or a prefix ending in '.'); it combines with
	// Action by AND.
	Actions []string
	ActorID string
	// Subject admits events whose actor_id or target_id equals it (every
	// event about a user, whoever did it).
	Subject string
	Result  string
	Since   *time.Time
	Until   *time.Time
	Offset  int
	Limit   int
}

// AuditStore persists audit events.
type AuditStore interface {
	// AppendAuditEvents writes a batch in one transaction (IDs generated
	// when zero).
	AppendAuditEvents(ctx context.Context, events []AuditEvent) error
	ListAuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, int, error)
	// DeleteAuditEventsBefore prunes events older than t.
	DeleteAuditEventsBefore(ctx context.Context, t time.Time) (int, error)
}

// Auditor records audit events. Implementations batch writes off the
// request path and Record never fails the request; it waits only when the
// queue of events to write is full, for a bounded time (docs/audit.md).
type Auditor interface {
	Record(ctx context.Context, e AuditEvent)
}

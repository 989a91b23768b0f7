package permiso

import (
	"context"
	"net/netip"
	"time"

	"github.com/google/uuid"
)

// AuditEvent records one security-relevant action (docs/security-model.md, "Audit").
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

// RequestMeta describes the request behind a call: the client's address,
// its User-Agent and the request id. The services put it into the audit
// events and sessions they write. Every value is storable as it is: the
// HTTP layer parses the address, takes only a sane request id and cleans
// the User-Agent (docs/security-model.md, "Untrusted bytes").
type RequestMeta struct {
	IP        netip.Addr
	UserAgent string
	RequestID string
}

// Stamp fills the IP address, user agent and request id of e from m,
// where e has none yet.
func (m RequestMeta) Stamp(e *AuditEvent) {
	if e.IPAddress == nil && m.IP.IsValid() {
		ip := m.IP.String()
		e.IPAddress = &ip
	}
	if e.UserAgent == nil && m.UserAgent != "" {
		ua := m.UserAgent
		e.UserAgent = &ua
	}
	if e.RequestID == nil && m.RequestID != "" {
		id := m.RequestID
		e.RequestID = &id
	}
}

type requestMetaKey struct{}

// ContextWithRequestMeta returns ctx carrying m, for the service methods
// that take no RequestMeta parameter and still record what they do
// (oauth2.Service.Revoke, Logout, RevokeAllForUser, RevokeOtherSessions,
// Unlock, CheckCurrentPassword). A service that got m explicitly passes it
// on this way to the services it calls.
func ContextWithRequestMeta(ctx context.Context, m RequestMeta) context.Context {
	return context.WithValue(ctx, requestMetaKey{}, m)
}

// RequestMetaFrom returns the RequestMeta of ctx (ContextWithRequestMeta),
// or the zero value.
func RequestMetaFrom(ctx context.Context) RequestMeta {
	m, _ := ctx.Value(requestMetaKey{}).(RequestMeta)
	return m
}

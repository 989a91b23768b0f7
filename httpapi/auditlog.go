package httpapi

import (
	"net/http"

	"github.com/permiso/permiso"
)

// auditTarget names what an audited action was done to.
type auditTarget struct {
	Type string // "user", "role", "scope", "service_client", "session", ...
	ID   string
}

// record writes an audit event for the request, for the one change made by
// the HTTP layer itself, maintenance cleanup; every other change is
// recorded by the service that makes it (docs/api.md, "Audit log":
// who, what, target, IP, user agent, request id, result). The actor is the
// authenticated principal, or anonymous. It never fails the request: the
// Auditor batches, and makes every value storable, so a hostile user agent
// is recorded cleaned (docs/audit.md).
func (s *server) record(r *http.Request, action, result string, target auditTarget, details map[string]any) {
	if s.audit == nil {
		return
	}
	ctx := r.Context()
	e := permiso.AuditEvent{
		ActorType: "anonymous",
		Action:    action,
		Result:    result,
		Details:   details,
	}
	if p, ok := principalFrom(ctx); ok {
		var id string
		switch {
		case p.User != nil:
			e.ActorType, id = "user", p.User.ID.String()
		case p.Client != nil:
			e.ActorType, id = "client", p.Client.ClientID
		}
		e.ActorID = &id
	}
	if target.Type != "" {
		e.TargetType = &target.Type
	}
	if target.ID != "" {
		e.TargetID = &target.ID
	}
	if ip := ClientIP(ctx); ip.IsValid() {
		v := ip.String()
		e.IPAddress = &v
	}
	if ua := userAgent(r); ua != "" {
		e.UserAgent = &ua
	}
	if id := RequestID(ctx); id != "" {
		e.RequestID = &id
	}
	s.audit.Record(ctx, e)
}

package httpapi

import (
	"errors"
	"net/http"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
)

// auditTarget names what an audited action was done to.
type auditTarget struct {
	Type string // "user", "role", "scope", "service_client", "session", ...
	ID   string
}

// record writes an audit event for the request (docs/api.md, "Audit log":
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

// audited records a mutation: success, or failure with the error code,
// and reason "delegation" for a refusal of the delegation rule.
func (s *server) audited(r *http.Request, action string, target auditTarget, err error, details map[string]any) {
	result := "success"
	if err != nil {
		result = "failure"
		if details == nil {
			details = map[string]any{}
		}
		details["error"] = string(permiso.ErrorCode(err))
		if errors.Is(err, identity.ErrDelegation) {
			details["reason"] = reasonDelegation
		}
	}
	s.record(r, action, result, target, details)
}

// reasonDelegation is the audit reason of a refusal by the delegation
// rule, as package identity writes it.
const reasonDelegation = "delegation"

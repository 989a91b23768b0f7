package identity

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// Audit (docs/security-model.md, "Audit"). Every change the service makes
// to users, roles, scopes and service clients is recorded here, by the
// service that made it, with the actor and the request behind it
// (Actor.Request): its result, and for a failure the error code and, for
// a refusal of the delegation rule, reason "delegation". The HTTP layer
// records nothing of it.

// Audit actions of the identity service (docs/security-model.md, "Audit").
const (
	ActionUserRegister         = "user.register"
	ActionUserCreate           = "user.create"
	ActionUserUpdate           = "user.update"
	ActionUserDelete           = "user.delete"
	ActionUserRoles            = "user.roles"
	ActionUserUnlock           = "user.unlock"
	ActionPasswordChange       = "password.change"
	ActionPasswordReset        = "password.reset"
	ActionPasswordResetRequest = "password.reset_request"
	ActionEmailVerify          = "email.verify"
	ActionEmailVerifyRequest   = "email.verify_request"
	ActionRoleCreate           = "role.create"
	ActionRoleUpdate           = "role.update"
	ActionRoleDelete           = "role.delete"
	ActionRoleScopes           = "role.scopes"
	ActionScopeCreate          = "scope.create"
	ActionScopeUpdate          = "scope.update"
	ActionScopeDelete          = "scope.delete"
)

// ReasonDelegation is the audit reason (details.reason) of a refusal by
// the delegation rule.
const ReasonDelegation = "delegation"

// target names what an audited action was done to; an empty id names a
// kind only (a creation that failed).
type target struct {
	typ, id string
}

func userTarget(id uuid.UUID) target  { return target{"user", id.String()} }
func roleTarget(id uuid.UUID) target  { return target{"role", id.String()} }
func scopeTarget(id uuid.UUID) target { return target{"scope", id.String()} }

// createdTarget is the target of a creation or of a mailed token's
// confirmation: the row of type typ with id, or no row in particular
// (the type alone) when err says there is none.
func createdTarget(typ string, id uuid.UUID, err error) target {
	if err != nil {
		return target{typ: typ}
	}
	return target{typ, id.String()}
}

// anonymous is the actor of a public request (registration, mailed
// tokens): nobody signed in, the request's metadata only.
func anonymous(req permiso.RequestMeta) Actor { return Actor{Request: req} }

// record writes an audit event: action on tgt by actor with result. It
// never fails the call: the Auditor batches and makes every value
// storable (docs/audit.md).
func (s *Service) record(ctx context.Context, actor Actor, action, result string, tgt target, details map[string]any) {
	if s.deps.Audit == nil {
		return
	}
	e := permiso.AuditEvent{ActorType: "anonymous", Action: action, Result: result, Details: details}
	switch {
	case actor.UserID != uuid.Nil:
		id := actor.UserID.String()
		e.ActorType, e.ActorID = "user", &id
	case actor.ClientID != "":
		id := actor.ClientID
		e.ActorType, e.ActorID = "client", &id
	}
	if tgt.typ != "" {
		e.TargetType = &tgt.typ
	}
	if tgt.id != "" {
		e.TargetID = &tgt.id
	}
	actor.Request.Stamp(&e)
	s.deps.Audit.Record(ctx, e)
}

// audited records the outcome of a change: success when err is nil, else
// failure with the error's code, and reason "delegation" when the
// delegation rule refused it.
func (s *Service) audited(ctx context.Context, actor Actor, action string, tgt target, err error, details map[string]any) {
	result := "success"
	if err != nil {
		result = "failure"
		if details == nil {
			details = map[string]any{}
		}
		details["error"] = string(permiso.ErrorCode(err))
		if errors.Is(err, ErrDelegation) {
			details["reason"] = ReasonDelegation
		}
	}
	s.record(ctx, actor, action, result, tgt, details)
}

// withRequest returns ctx carrying the request's metadata for the
// services the identity service calls and that record what they do
// (Sessions, Lockout: session.revoke_all, login.unlock, ...).
func withRequest(ctx context.Context, actor Actor) context.Context {
	return permiso.ContextWithRequestMeta(ctx, actor.Request)
}

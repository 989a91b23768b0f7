package sqlstore

import "strings"

// Messages are the caller-visible words of a refusal about one kind of
// row. Every backend answers with these (the HTTP layer passes them on),
// so the same request gets the same message on SQLite and PostgreSQL.
type Messages struct {
	NotFound string // no such row
	Exists   string // a unique value is taken
	InUse    string // the row is still referenced (ON DELETE RESTRICT)
}

// The messages of each kind of row.
var (
	UserMessages             = Messages{NotFound: "User not found", Exists: "Username or email already exists"}
	RoleMessages             = Messages{NotFound: "Role not found", Exists: "Role name already exists", InUse: "Role is assigned to users"}
	ScopeMessages            = Messages{NotFound: "Scope not found", Exists: "Scope name already exists", InUse: "Scope is assigned to roles"}
	ClientMessages           = Messages{NotFound: "Service client not found", Exists: "Client ID already exists"}
	SessionMessages          = Messages{NotFound: "Session not found", Exists: "Session already exists"}
	RefreshTokenMessages     = Messages{NotFound: "Refresh token not found", Exists: "Refresh token already exists"}
	ActionTokenMessages      = Messages{NotFound: "Token not found", Exists: "Token already exists"}
	AuditEventMessages       = Messages{Exists: "Audit event already exists"}
	SigningKeyMessages       = Messages{NotFound: "Signing key not found", Exists: "Signing key already exists"}
	UsernameTakenMessage     = "Username already exists"
	EmailTakenMessage        = "Email already exists"
	ReferenceMissingMessage  = "a referenced resource does not exist"
	PasswordChangedMessage   = "The password was changed meanwhile"
	RefreshTokenSpentMessage = "Refresh token already used or revoked"
	GraceSpentMessage        = "Refresh token not rotated within the grace window, its retry already spent, or its replacement used"
)

// MessagesFor returns the messages of the kind of row named by what ("user",
// "service client", ...); an unknown name gets generic messages built from
// it ("<What> not found").
func MessagesFor(what string) Messages {
	switch what {
	case "user", "users", "user role", "user roles":
		return UserMessages
	case "role", "roles", "role scope", "role scopes":
		return RoleMessages
	case "scope", "scopes":
		return ScopeMessages
	case "service client", "service clients", "service client scope", "service client scopes":
		return ClientMessages
	case "session", "sessions":
		return SessionMessages
	case "refresh token", "refresh tokens":
		return RefreshTokenMessages
	case "action token", "action tokens":
		return ActionTokenMessages
	case "signing key", "signing keys":
		return SigningKeyMessages
	}
	w := strings.ToUpper(what[:min(1, len(what))]) + what[min(1, len(what)):]
	return Messages{NotFound: w + " not found", Exists: w + " already exists", InUse: w + " is still in use"}
}

// Package identity is the domain logic of accounts: registration, profile
// and administrative updates of users, password changes with history and
// policy, password reset and email verification by mailed single-use
// tokens, roles and scopes, and the permission check. It is transport-
// agnostic: httpapi calls it and maps its *permiso.Error values to HTTP,
// and it is tested on a real SQLite store.
//
// Which routes a caller may call is decided before a call reaches this
// package (the access rules of httpapi, docs/security-model.md). What this
// package decides are the rules that depend on the data: a
// non-administrator changes profile fields only, an administrator cannot
// disable or delete their own account, built-in roles and scopes cannot be
// renamed or deleted, and the delegation rule (Delegation): an
// administrator who is neither a superuser nor a holder of role admin hands
// on only the roles and scopes it holds, and acts only on users, roles,
// scopes and service clients that hold nothing it lacks; only a superuser
// acts on a superuser or grants or revokes superuser. The rule is exported
// so that the HTTP layer (service clients, sessions) and the token
// revocation of package oauth2 apply the same one.
//
// Every input is validated completely before anything is written, and every
// problem is reported at once (permiso.Invalid with one FieldError per
// broken rule).
package identity

// Package identity is the domain logic of accounts: registration, profile
// and administrative updates of users, password changes with history and
// policy, password reset and email verification by mailed single-use
// tokens, roles and scopes, and the permission check. It is transport-
// agnostic: httpapi calls it and maps its *permiso.Error values to HTTP,
// and it is tested on a real SQLite store.
//
// Who may call what is decided before a call reaches this package (the
// access rules of httpapi, docs/security-model.md). What this package
// enforces on top are the rules that depend on the data: a non-administrator
// changes profile fields only, an administrator cannot disable or delete
// their own account, only a superuser grants or revokes superuser, built-in
// roles and scopes cannot be renamed or deleted.
//
// Every input is validated completely before anything is written, and every
// problem is reported at once (permiso.Invalid with one FieldError per
// broken rule).
package identity

// Package importer carries an installation of the original Python
// service over into permiso (`permiso import --from DATABASE_URL`,
// docs/migrating.md).
//
// Read takes one consistent snapshot of the original's PostgreSQL
// database through pgx. NewPlan maps its rows onto permiso's (users with
// their Argon2id hashes, roles, scopes, service clients with their secret
// hashes, and the links between them), checks every value against
// permiso's rules and compares the result with what the target store
// already holds: roles and scopes are matched by name (the original's
// "admin" becomes permiso's seeded "admin"), everything else by id, and
// only what is missing is planned. A value that cannot be carried over is
// reported by table, id and column, and then nothing is written. Apply
// writes the plan through permiso.ImportStore, one transaction per batch,
// so the import works whatever the target's backend is. Sessions and
// refresh tokens are not carried over: users log in again.
package importer

// Package permiso holds the domain of the permiso authentication server:
// its entities (users, roles, scopes, service clients, refresh tokens,
// sessions, audit events, signing keys), the interfaces that storage and
// cache adapters implement, and the error model shared by every layer.
//
// The package imports nothing from this repository. Adapters (sqlite,
// postgres, redis, memory, argon2id) implement the interfaces declared here
// and never import each other; cmd/permiso wires them together.
package permiso

// Package storetest is the storage conformance suite: one behavioural test
// of permiso.Store that every backend (sqlite, postgres) runs, in the spirit
// of Dex's storage/conformance. A backend passes when its driver errors map
// to permiso's sentinels, its transactions hold under concurrency, and its
// times, orders and cascades are the ones docs/data-model.md describes.
//
// Times written by the suite are truncated to microseconds, the resolution
// PostgreSQL keeps; stores must return every time in time.UTC.
package storetest

import (
	"testing"

	"github.com/permiso/permiso"
)

// test is one conformance check against a fresh store.
type test struct {
	name string
	run  func(h *harness)
}

// Run runs the conformance suite. newStore must return a fresh, migrated
// store holding only the seed data (roles and scopes of migration 2), and
// register its own cleanup with t.Cleanup; it is called once per subtest,
// and subtests run in parallel.
//
// Beyond what the interface comments state, the suite pins down these
// choices so that every backend makes the same ones:
//   - Create* and Update* return the stored entity as the matching Get
//     would (roles with scopes, clients with scopes, users with roles).
//     Update* write what the callback leaves, UpdatedAt included: the
//     store does not stamp it. Create* generate a zero ID.
//   - Foreign keys: an unknown referenced id on insert (role, scope, user,
//     session) is ErrNotFound; deleting a referenced role or scope is
//     ErrConflict; a unique violation is ErrAlreadyExists. Caller-visible
//     messages (permiso.ErrorMessage) never carry SQL or driver text.
//   - Search filters are case-insensitive substring matches in which '%'
//     and '_' are literal characters.
//   - A time equal to an expiry is expired (Session.Active semantics);
//     UserStats/SessionStats CreatedSince is inclusive; SessionStats counts
//     each session once: revoked, else expired, else active.
//   - UseRefreshToken on an unknown hash is ErrNotFound; a refused rotation
//     writes nothing, including when the replacement cannot be inserted.
//   - RevokeRefreshFamily and RevokeSession keep the revoked_at and reason
//     of tokens that were already revoked.
func Run(t *testing.T, newStore func(t *testing.T) permiso.Store) {
	t.Helper()
	var all []test
	all = append(all, miscTests...)
	all = append(all, userTests...)
	all = append(all, roleTests...)
	all = append(all, clientTests...)
	all = append(all, tokenTests...)
	all = append(all, sessionTests...)
	all = append(all, actionTokenTests...)
	all = append(all, auditTests...)
	all = append(all, reportTests...)
	all = append(all, keyTests...)
	all = append(all, raceTests...)
	all = append(all, importTests...)
	all = append(all, roundTripTests...)
	all = append(all, oidcTests...)
	all = append(all, mfaTests...)
	all = append(all, mfaTokenTests...)
	for _, tc := range all {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(newHarness(t, newStore(t)))
		})
	}
}

package httpapi

import (
	"testing"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/testwire"
)

// testMFAKeyFill fills the MFA_ENCRYPTION_KEY of the test servers.
const testMFAKeyFill = 0x5a

// testMFADeps configures multi-factor enrollment on store with an
// in-process once-store.
func testMFADeps(t testing.TB, store permiso.MFAStore) identity.MFADeps {
	t.Helper()
	return identity.MFADeps{Store: store, Box: testwire.Box(t, testMFAKeyFill), Once: inprocess.NewOnce(), Issuer: "permiso"}
}

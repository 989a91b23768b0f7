package httpapi

import (
	"bytes"
	"testing"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/mfa"
)

// testMFAKey is the MFA_ENCRYPTION_KEY of the test servers.
var testMFAKey = bytes.Repeat([]byte{0x5a}, mfa.KeySize)

// testMFADeps configures multi-factor enrollment on store with an
// in-process once-store.
func testMFADeps(t testing.TB, store permiso.MFAStore) identity.MFADeps {
	t.Helper()
	box, err := mfa.NewBox(testMFAKey)
	if err != nil {
		t.Fatal(err)
	}
	return identity.MFADeps{Store: store, Box: box, Once: inprocess.NewOnce(), Issuer: "permiso"}
}

package httpapi

import (
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testwire"
	"github.com/permiso/permiso/jwt"
)

// testIssuer is the discovery issuer of the test servers' OpenID Connect
// provider.
const testIssuer = "https://auth.example.com"

// testIDSigner returns an ES256 signer of ID tokens (quick to generate)
// whose keys live in ks.
func testIDSigner(t testing.TB, ks permiso.KeyStore) *jwt.Signer {
	t.Helper()
	return testwire.ES256(t, testIssuer, ks, 24*time.Hour, nil)
}

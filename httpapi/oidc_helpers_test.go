package httpapi

import (
	"context"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/jwt"
)

// testIssuer is the discovery issuer of the test servers' OpenID Connect
// provider.
const testIssuer = "https://auth.example.com"

// testIDSigner returns an ES256 signer of ID tokens (quick to generate)
// whose keys live in ks.
func testIDSigner(t *testing.T, ctx context.Context, ks permiso.KeyStore) *jwt.Signer {
	t.Helper()
	s, err := jwt.New(ctx, jwt.Options{Algorithm: jwt.ES256, Issuer: testIssuer, Keys: ks, MaxTokenLifetime: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

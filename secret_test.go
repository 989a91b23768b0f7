package permiso

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// TestHashTokenIsHexSHA256 holds HashToken to the hex SHA-256 of the
// token's bytes on both sides of its stack buffer (64 bytes): the stored
// form of refresh tokens, client secrets and action tokens
// (docs/security-model.md) must not depend on a token's length.
func TestHashTokenIsHexSHA256(t *testing.T) {
	for n := 0; n <= 130; n++ {
		token := strings.Repeat("x", n)
		sum := sha256.Sum256([]byte(token))
		if got, want := HashToken(token), hex.EncodeToString(sum[:]); got != want {
			t.Fatalf("HashToken of %d bytes = %s, want %s", n, got, want)
		}
	}
}

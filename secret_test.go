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

// TestEqualTokenHash: the bytes HashTokenTo writes compare equal
// (EqualTokenHash) exactly to the string HashToken gives, and to no other
// stored hash: not one that differs in one byte, is upper case, shorter,
// longer or empty.
func TestEqualTokenHash(t *testing.T) {
	for _, secret := range []string{"", "s", strings.Repeat("k", 43), strings.Repeat("z", 100)} {
		var h TokenHash
		HashTokenTo(&h, secret)
		stored := HashToken(secret)
		if string(h[:]) != stored || !EqualTokenHash(&h, stored) {
			t.Fatalf("HashTokenTo(%q) = %s, HashToken %s", secret, h[:], stored)
		}
		flipped := []byte(stored)
		flipped[len(flipped)-1] ^= 1
		for _, other := range []string{string(flipped), strings.ToUpper(stored), stored[:63], stored + "0", "", HashToken(secret + "x")} {
			if EqualTokenHash(&h, other) {
				t.Fatalf("EqualTokenHash(%s, %q) = true", stored, other)
			}
		}
	}
}

package permiso

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
)

// NewOpaqueToken returns a new random token of 256 bits, base64url-encoded
// without padding (43 characters). Refresh tokens, client secrets and
// mailed action tokens are all of this kind.
func NewOpaqueToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand never fails on supported platforms (Go 1.24+ panics
		// internally instead); keep the contract explicit.
		panic("permiso: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashToken returns the hex SHA-256 of a high-entropy token or secret: the
// only form in which refresh tokens, client secrets and action tokens are
// stored. A fast hash is enough for 256-bit random values (no slow KDF).
func HashToken(token string) string {
	var out TokenHash
	HashTokenTo(&out, token)
	return string(out[:])
}

// TokenHash is HashToken's hex SHA-256 as bytes (HashTokenTo), for a
// caller that only compares it (EqualTokenHash): it can stay on the
// caller's stack, where HashToken's string is one allocation.
type TokenHash [2 * sha256.Size]byte

// HashTokenTo writes the bytes of HashToken(token) to out.
func HashTokenTo(out *TokenHash, token string) {
	// Copied into a buffer on the stack: the conversion []byte(token)
	// allocates for any token longer than 32 bytes, and secrets and
	// tokens are 43.
	var in [64]byte
	sum := sha256.Sum256(append(in[:0], token...))
	hex.Encode(out[:], sum[:])
}

// EqualHash compares two hashes in constant time.
func EqualHash(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// EqualTokenHash is EqualHash(string(h[:]), stored): a constant-time
// compare.
func EqualTokenHash(h *TokenHash, stored string) bool {
	return subtle.ConstantTimeCompare(h[:], []byte(stored)) == 1
}

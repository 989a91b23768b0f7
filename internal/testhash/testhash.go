// Package testhash makes password hashes as the original service stored
// them, for the tests of the import (docs/migrating.md).
package testhash

import (
	"crypto/rand"
	"encoding/base64"
	"testing"

	"golang.org/x/crypto/argon2"
)

// Original hashes secret as the original service did: Argon2id with
// m=65536, t=3, p=1, a 16-byte salt and a 32-byte hash, in the PHC form
// argon2-cffi (under passlib) writes: unpadded standard base64.
func Original(t testing.TB, secret string) string {
	t.Helper()
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		t.Fatal(err)
	}
	key := argon2.IDKey([]byte(secret), salt, 3, 65536, 1, 32)
	return "$argon2id$v=19$m=65536,t=3,p=1$" + base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(key)
}

// Package testhash makes password hashes as the original service stored
// them, for the tests of the import (docs/migrating.md), and holds
// password verifications in flight, for the tests of the lockout
// (docs/abuse-resistance.md, "Lockout").
package testhash

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"testing"

	"golang.org/x/crypto/argon2"

	"github.com/permiso/permiso/oauth2"
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

// Gated is a password hasher with every verification held at the gate
// until Release is closed; Entered reports each one as it arrives. It
// keeps logins in flight, so that concurrency is certain, not likely.
type Gated struct {
	oauth2.Hasher
	Entered chan struct{}
	Release chan struct{}
}

// NewGated gates the verifications of h (which may be set later).
func NewGated(h oauth2.Hasher) *Gated {
	return &Gated{Hasher: h, Entered: make(chan struct{}), Release: make(chan struct{})}
}

// Verify reports its call on Entered, waits for Release to be closed,
// then verifies with the hasher.
func (h *Gated) Verify(ctx context.Context, password, encoded string) (bool, bool, error) {
	h.Entered <- struct{}{}
	<-h.Release
	return h.Hasher.Verify(ctx, password, encoded)
}

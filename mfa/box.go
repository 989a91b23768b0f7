package mfa

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the size of an MFA_ENCRYPTION_KEY: AES-256.
const KeySize = 32

// ErrSealed is returned by Open when no key opens a sealed secret (a wrong
// or missing key, or a value altered in the database). Its text names no
// key and no secret.
var ErrSealed = errors.New("mfa: the sealed secret cannot be opened with the configured keys")

// Box seals factor secrets with AES-256-GCM under the current key and
// opens what any of the current or previous keys sealed, so that keys can
// be rotated: set the new key, list the old one in
// MFA_PREVIOUS_ENCRYPTION_KEYS, and re-seal (Box.Current says whether a
// value needs it).
//
// A sealed value is text: "v1.<key id>.<base64url(nonce || ciphertext)>",
// the key id being the first 8 hex digits of the key's SHA-256 (it picks
// the key without trying each, and reveals nothing of it). The caller's
// additional data (the user's id and the factor's kind) is authenticated,
// so a sealed secret copied to another user's row does not open.
type Box struct {
	current string
	aeads   map[string]cipher.AEAD
}

// NewBox returns a box sealing under current and opening under current and
// previous. Every key must be KeySize bytes.
func NewBox(current []byte, previous ...[]byte) (*Box, error) {
	b := &Box{aeads: map[string]cipher.AEAD{}}
	for i, k := range append([][]byte{current}, previous...) {
		if len(k) != KeySize {
			return nil, fmt.Errorf("mfa: encryption key %d is %d bytes, want %d", i, len(k), KeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		id := keyID(k)
		if i == 0 {
			b.current = id
		}
		if _, dup := b.aeads[id]; !dup {
			b.aeads[id] = aead
		}
	}
	return b, nil
}

func keyID(k []byte) string {
	sum := sha256.Sum256(k)
	return hex.EncodeToString(sum[:4])
}

// Seal encrypts plain under the current key, binding aad.
func (b *Box) Seal(plain, aad []byte) (string, error) {
	aead := b.aeads[b.current]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	ct := aead.Seal(nonce, nonce, plain, aad)
	return "v1." + b.current + "." + base64.RawURLEncoding.EncodeToString(ct), nil
}

// Open decrypts a value Seal produced under any configured key with the
// same aad. Any failure is ErrSealed.
func (b *Box) Open(sealed string, aad []byte) ([]byte, error) {
	parts := strings.Split(sealed, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return nil, ErrSealed
	}
	aead, ok := b.aeads[parts[1]]
	if !ok {
		return nil, ErrSealed
	}
	ct, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(ct) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrSealed
	}
	plain, err := aead.Open(nil, ct[:aead.NonceSize()], ct[aead.NonceSize():], aad)
	if err != nil {
		return nil, ErrSealed
	}
	return plain, nil
}

// Current reports whether sealed was sealed under the current key (a
// rekey leaves such values alone).
func (b *Box) Current(sealed string) bool {
	return strings.HasPrefix(sealed, "v1."+b.current+".")
}

// AAD is the additional data a factor secret is sealed with: its user and
// kind.
func AAD(userID string, kind Kind) []byte {
	return []byte("permiso-mfa:" + userID + ":" + string(kind))
}

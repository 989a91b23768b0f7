package mfa

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// RecoveryCodeCount is how many recovery codes a set holds.
const RecoveryCodeCount = 10

// recoveryAlphabet is Crockford's base32 alphabet in lower case (no i, l,
// o, u): 5 bits a character, nothing to confuse when read aloud or typed.
const recoveryAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// NewRecoveryCodes returns n fresh codes, each 16 random characters of
// recoveryAlphabet (80 bits) shown as four groups: "xxxx-xxxx-xxxx-xxxx".
func NewRecoveryCodes(n int) ([]string, error) {
	out := make([]string, n)
	raw := make([]byte, 16)
	for i := range out {
		if _, err := rand.Read(raw); err != nil {
			return nil, err
		}
		var sb strings.Builder
		for j, r := range raw {
			if j > 0 && j%4 == 0 {
				sb.WriteByte('-')
			}
			sb.WriteByte(recoveryAlphabet[r&31])
		}
		out[i] = sb.String()
	}
	return out, nil
}

// NormalizeRecoveryCode folds what a user typed to the canonical form:
// lower case, without spaces or dashes, with the characters Crockford
// base32 reads as others (o→0, i and l→1) mapped. It returns "" for
// anything that cannot be a code.
func NormalizeRecoveryCode(s string) string {
	var sb strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r == '-' || r == ' ':
			continue
		case r == 'o':
			r = '0'
		case r == 'i' || r == 'l':
			r = '1'
		}
		if !strings.ContainsRune(recoveryAlphabet, r) {
			return ""
		}
		sb.WriteRune(r)
	}
	if sb.Len() != 16 {
		return ""
	}
	return sb.String()
}

// HashRecoveryCode is what is stored of a code: the hex SHA-256 of the
// normalized code, prefixed with its user's id. A fast hash suffices
// because a code carries 80 random bits (as for client secrets,
// docs/security-model.md); no key is involved, so rotating
// MFA_ENCRYPTION_KEY leaves recovery codes working. It returns "" for
// input that is not a code.
func HashRecoveryCode(userID, code string) string {
	n := NormalizeRecoveryCode(code)
	if n == "" {
		return ""
	}
	sum := sha256.Sum256([]byte("permiso-recovery:" + userID + ":" + n))
	return hex.EncodeToString(sum[:])
}

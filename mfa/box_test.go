package mfa

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

// TestBoxRotation: a value sealed under a key that became previous still
// opens and is not current; after re-sealing it is current.
func TestBoxRotation(t *testing.T) {
	aad := AAD("u1", KindTOTP)
	oldBox, err := NewBox(key(1))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := oldBox.Seal([]byte("secret"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "secret") {
		t.Fatal("plaintext visible in sealed value")
	}
	box, err := NewBox(key(2), key(1))
	if err != nil {
		t.Fatal(err)
	}
	got, err := box.Open(sealed, aad)
	if err != nil || string(got) != "secret" {
		t.Fatalf("Open under previous key: %q, %v", got, err)
	}
	if box.Current(sealed) {
		t.Error("value under previous key reported current")
	}
	resealed, _ := box.Seal(got, aad)
	if !box.Current(resealed) {
		t.Error("re-sealed value not current")
	}
	if _, err := oldBox.Open(resealed, aad); !errors.Is(err, ErrSealed) {
		t.Errorf("old box opened a value of the new key: %v", err)
	}
}

// TestBoxRefuses: another user's additional data, an unknown key, a
// tampered or malformed value all fail with ErrSealed.
func TestBoxRefuses(t *testing.T) {
	box, _ := NewBox(key(1))
	sealed, _ := box.Seal([]byte("secret"), AAD("u1", KindTOTP))
	other, _ := NewBox(key(3))
	tampered := sealed[:len(sealed)-2] + "AA"
	if tampered == sealed {
		tampered = sealed[:len(sealed)-2] + "BB"
	}
	for name, tc := range map[string]struct {
		b   *Box
		v   string
		aad []byte
	}{
		"other user": {box, sealed, AAD("u2", KindTOTP)},
		"other key":  {other, sealed, AAD("u1", KindTOTP)},
		"tampered":   {box, tampered, AAD("u1", KindTOTP)},
		"malformed":  {box, "v1.x", AAD("u1", KindTOTP)},
		"empty":      {box, "", AAD("u1", KindTOTP)},
		"not base64": {box, strings.Join(strings.Split(sealed, ".")[:2], ".") + ".!!!", AAD("u1", KindTOTP)},
	} {
		if _, err := tc.b.Open(tc.v, tc.aad); !errors.Is(err, ErrSealed) {
			t.Errorf("%s: got %v, want ErrSealed", name, err)
		}
	}
	if _, err := NewBox(make([]byte, 16)); err == nil {
		t.Error("16-byte key accepted")
	}
}

func TestRecoveryCodes(t *testing.T) {
	codes, err := NewRecoveryCodes(RecoveryCodeCount)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if len(c) != 19 || NormalizeRecoveryCode(c) == "" || seen[c] {
			t.Fatalf("bad or repeated code %q", c)
		}
		seen[c] = true
		h := HashRecoveryCode("u1", c)
		if h == "" || strings.Contains(h, NormalizeRecoveryCode(c)) {
			t.Fatalf("hash %q", h)
		}
		typed := strings.ToUpper(strings.ReplaceAll(c, "-", " "))
		if HashRecoveryCode("u1", typed) != h {
			t.Errorf("typed form %q hashes differently", typed)
		}
		if HashRecoveryCode("u2", c) == h {
			t.Error("hash does not depend on the user")
		}
	}
	for _, bad := range []string{"", "abc", "0000-0000-0000-000u", "0000-0000-0000-00000"} {
		if HashRecoveryCode("u1", bad) != "" {
			t.Errorf("%q hashed", bad)
		}
	}
}

package mfa

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"strings"
	"testing"
	"time"
)

// TestTOTPRFC6238Vectors checks every test vector of RFC 6238 Appendix B
// (8 digits; the seed is the ASCII key repeated to the hash's size).
func TestTOTPRFC6238Vectors(t *testing.T) {
	seeds := map[string][]byte{
		"SHA1":   []byte("12345678901234567890"),
		"SHA256": []byte("12345678901234567890123456789012"),
		"SHA512": []byte("1234567890123456789012345678901234567890123456789012345678901234"),
	}
	hashes := map[string]func() hash.Hash{"SHA1": sha1.New, "SHA256": sha256.New, "SHA512": sha512.New}
	vectors := []struct {
		unix int64
		alg  string
		want string
	}{
		{59, "SHA1", "94287082"}, {59, "SHA256", "46119246"}, {59, "SHA512", "90693936"},
		{1111111109, "SHA1", "07081804"}, {1111111109, "SHA256", "68084774"}, {1111111109, "SHA512", "25091201"},
		{1111111111, "SHA1", "14050471"}, {1111111111, "SHA256", "67062674"}, {1111111111, "SHA512", "99943326"},
		{1234567890, "SHA1", "89005924"}, {1234567890, "SHA256", "91819424"}, {1234567890, "SHA512", "93441116"},
		{2000000000, "SHA1", "69279037"}, {2000000000, "SHA256", "90698825"}, {2000000000, "SHA512", "38618901"},
		{20000000000, "SHA1", "65353130"}, {20000000000, "SHA256", "77737706"}, {20000000000, "SHA512", "47863826"},
	}
	for _, v := range vectors {
		got := HOTP(hashes[v.alg], seeds[v.alg], uint64(v.unix/30), 8)
		if got != v.want {
			t.Errorf("T=%d %s: got %s, want %s", v.unix, v.alg, got, v.want)
		}
	}
}

// TestTOTPCheck: the 6-digit SHA-1 code is accepted in its step and one
// step either side, not two; the replay key names the step it matched.
func TestTOTPCheck(t *testing.T) {
	seed := []byte("12345678901234567890")
	at := time.Unix(1111111109, 0)
	code := "081804" // the low 6 digits of the RFC's 8-digit SHA-1 value
	var f TOTP
	for _, tc := range []struct {
		d      time.Duration
		ok     bool
		replay string
	}{
		{0, true, "totp:37037036"},
		{30 * time.Second, true, "totp:37037036"},
		{-30 * time.Second, true, "totp:37037036"},
		{61 * time.Second, false, ""},
		{-61 * time.Second, false, ""},
	} {
		key, ok := f.Check(seed, code, at.Add(tc.d))
		if ok != tc.ok || key != tc.replay {
			t.Errorf("at %+v: got (%q, %v), want (%q, %v)", tc.d, key, ok, tc.replay, tc.ok)
		}
	}
	for _, bad := range []string{"", "08180", "0818045", "08180a", "081805", "-81804"} {
		if _, ok := f.Check(seed, bad, at); ok {
			t.Errorf("code %q accepted", bad)
		}
	}
	if _, ok := f.Check(nil, code, at); ok {
		t.Error("empty secret accepted")
	}
	if f.ReplayWindow() < 3*TOTPPeriod {
		t.Errorf("replay window %v shorter than the acceptance window", f.ReplayWindow())
	}
}

func TestOTPAuthURI(t *testing.T) {
	u := OTPAuthURI("Acme Corp", "ada@example.com", []byte("12345678901234567890"))
	for _, want := range []string{"otpauth://totp/Acme%20Corp:ada@example.com?", "secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "issuer=Acme+Corp", "digits=6", "period=30"} {
		if !strings.Contains(u, want) {
			t.Errorf("%s lacks %s", u, want)
		}
	}
}

// TestQRSVG: the QR code of an otpauth URI is an SVG with dark modules
// and carries no readable text of the URI.
func TestQRSVG(t *testing.T) {
	uri := OTPAuthURI("permiso", "ada", []byte("12345678901234567890"))
	svg, err := QRSVG(uri)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(svg, `<svg xmlns="http://www.w3.org/2000/svg"`) || !strings.HasSuffix(svg, "</svg>") || !strings.Contains(svg, "h1v1h-1z") {
		t.Fatalf("not an SVG QR code: %.200s", svg)
	}
	if strings.Contains(svg, "GEZDGNBV") || strings.Contains(svg, "<script") {
		t.Error("SVG carries the secret as text or a script")
	}
}

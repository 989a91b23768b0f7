package mfa

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"hash"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// TOTP parameters (RFC 6238 §4, and the defaults every authenticator
// app accepts): HMAC-SHA-1, 6 digits, 30-second steps from the Unix epoch,
// one step of clock drift either way, a 160-bit secret (RFC 4226 §4
// recommends 160 bits).
const (
	TOTPDigits     = 6
	TOTPPeriod     = 30 * time.Second
	TOTPSkew       = 1
	TOTPSecretSize = 20
)

// b32 is the unpadded base32 of otpauth URIs.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// TOTP is the RFC 6238 factor with the parameters above. Its zero value is
// ready to use.
type TOTP struct{}

var _ Factor = TOTP{}

// Kind is KindTOTP.
func (TOTP) Kind() Kind { return KindTOTP }

// AMR is "otp" (RFC 8176 §2).
func (TOTP) AMR() string { return "otp" }

// ReplayWindow covers every step a code is accepted in, plus one.
func (TOTP) ReplayWindow() time.Duration { return (2*TOTPSkew + 2) * TOTPPeriod }

// Check accepts a 6-digit code for the step of now or one step either
// side. Every candidate is computed and compared in constant time, so the
// time taken does not depend on which step (if any) matched. The replay
// key is the matched step: a code stays spent for its step even if the
// same digits come round again.
func (TOTP) Check(secret []byte, code string, now time.Time) (string, bool) {
	code = strings.TrimSpace(code)
	if len(code) != TOTPDigits || len(secret) == 0 {
		return "", false
	}
	for _, c := range code {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	step := now.Unix() / int64(TOTPPeriod/time.Second)
	matched := int64(-1)
	for d := int64(-TOTPSkew); d <= TOTPSkew; d++ {
		want := HOTP(sha1.New, secret, uint64(step+d), TOTPDigits)
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			matched = step + d
		}
	}
	if matched < 0 {
		return "", false
	}
	return "totp:" + strconv.FormatInt(matched, 10), true
}

// HOTP is RFC 4226 §5.3: the dynamically truncated HMAC of counter under
// key, as a zero-padded decimal of digits digits. RFC 6238 TOTP is HOTP of
// the time step; its Appendix B vectors also use SHA-256 and SHA-512,
// hence the hash parameter.
func HOTP(h func() hash.Hash, key []byte, counter uint64, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	m := hmac.New(h, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	s := strconv.FormatUint(uint64(bin%mod), 10)
	return strings.Repeat("0", digits-len(s)) + s
}

// NewTOTPSecret returns a fresh random secret.
func NewTOTPSecret() ([]byte, error) {
	b := make([]byte, TOTPSecretSize)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, nil
}

// EncodeSecret is the secret as authenticator apps take it: unpadded
// base32.
func EncodeSecret(secret []byte) string { return b32.EncodeToString(secret) }

// OTPAuthURI is the key URI of the de-facto "otpauth" format
// (github.com/google/google-authenticator/wiki/Key-Uri-Format) that QR
// codes carry: otpauth://totp/Issuer:account?secret=...&issuer=...
func OTPAuthURI(issuer, account string, secret []byte) string {
	label := url.PathEscape(issuer) + ":" + url.PathEscape(account)
	q := url.Values{}
	q.Set("secret", EncodeSecret(secret))
	q.Set("issuer", issuer)
	q.Set("algorithm", "SHA1")
	q.Set("digits", strconv.Itoa(TOTPDigits))
	q.Set("period", strconv.Itoa(int(TOTPPeriod/time.Second)))
	return "otpauth://totp/" + label + "?" + q.Encode()
}

// Package testjwt reads, for tests, the segments of a compact JWS (RFC 7515
// §7.1) without verifying its signature: the claims a test checks, or the
// header and payload a test tampers with. Verifying is the concern of the
// jwt package's own tests and of go-jose in the e2e tests.
package testjwt

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// Header and Payload are the indexes of a compact JWS's segments.
const (
	Header  = 0
	Payload = 1
)

// Decode decodes segment i (Header or Payload) of the compact JWS token
// into v, a JSON number into an any as a json.Number. It fails the test
// when token is not three segments, or the segment not base64url (RFC
// 7515 §2, unpadded) JSON that fits v.
func Decode(tb testing.TB, token string, i int, v any) {
	tb.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		tb.Fatalf("not a compact JWS (%d segments): %.40q...", len(parts), token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		tb.Fatalf("JWS segment %d is not base64url: %v", i, err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		tb.Fatalf("JWS segment %d: %v", i, err)
	}
}

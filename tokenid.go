package permiso

import (
	"crypto/rand"
	"encoding/binary"
	"time"

	"github.com/google/uuid"
)

// Revocation cut-offs ("every token issued before T is dead") are exact to
// the millisecond, although the iat claim of a JWT is whole seconds (a
// NumericDate, RFC 7519 §2, kept an integer so that resource servers
// verifying our tokens with the shared secret read it unchanged):
//
//   - every access token's jti is a UUIDv7 (RFC 9562 §5.7) made by
//     NewTokenID from the token's own issue time, so its first 48 bits are
//     that time in Unix milliseconds; the jti is signed with the rest of
//     the token, so it cannot be changed;
//   - TokenIssuedAt reads the issue time back: the jti's millisecond when
//     it lies within the iat second, else the start of the iat second (a
//     token without such a jti, from an older release, is taken to be as
//     old as it can be, so a cut-off in its second catches it: fail
//     closed);
//   - RevocationCutoff rounds the moment of a revocation up to the next
//     whole millisecond, and a token is revoked when its issue time is
//     before the cut-off.
//
// So a token issued before the revocation is always caught (its
// millisecond is at most its real issue time, which is before the cut-off),
// and a token issued at or after the cut-off never is (its millisecond is
// at least the cut-off, a whole millisecond). A token issued in the
// fraction of a millisecond between the revocation and its rounded cut-off
// was issued concurrently with the revocation and is refused, the safe
// side. docs/security-model.md, "Sessions and tokens after account events".

// NewTokenID returns a new jti for a token issued at at: a UUIDv7 whose
// 48-bit timestamp is at in Unix milliseconds and whose other 74 bits are
// random (RFC 9562 §5.7), so that TokenIssuedAt can read the issue time to
// the millisecond.
func NewTokenID(at time.Time) string {
	var u uuid.UUID
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails (Go 1.24)
	ms := uint64(at.UnixMilli())
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	u[6] = 0x70 | u[6]&0x0f // version 7
	u[8] = 0x80 | u[8]&0x3f // variant 10 (RFC 9562 §4.1)
	return u.String()
}

// TokenIssuedAt returns the issue time of an access token with this jti
// and iat (whole seconds): the millisecond in the jti when the jti is a
// UUIDv7 whose time lies within the iat second (as NewTokenID makes it),
// else iat itself, the earliest instant the token can have been issued.
// Compared with a cut-off (issue time before cut-off means revoked), the
// fallback fails closed: a token of the cut-off's own second is refused.
func TokenIssuedAt(jti string, iat time.Time) time.Time {
	sec := iat.Truncate(time.Second)
	if len(jti) != 36 {
		return sec
	}
	u, err := uuid.Parse(jti)
	if err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 {
		return sec
	}
	ms := int64(binary.BigEndian.Uint64(u[:8]) >> 16)
	at := time.UnixMilli(ms).In(iat.Location())
	if at.Before(sec) || !at.Before(sec.Add(time.Second)) {
		return sec
	}
	return at
}

// RevocationCutoff returns the cut-off of a revocation made at now: now
// rounded up to a whole millisecond, the resolution of TokenIssuedAt. Every
// token issued before now is caught by it, and every token issued from the
// cut-off on is not. Stores keep it exactly (PostgreSQL keeps
// microseconds, SQLite nanoseconds, Redis milliseconds).
func RevocationCutoff(now time.Time) time.Time {
	t := now.Truncate(time.Millisecond)
	if t.Before(now) {
		t = t.Add(time.Millisecond)
	}
	return t
}

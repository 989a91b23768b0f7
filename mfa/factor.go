package mfa

import (
	"context"
	"time"
)

// Kind names a factor; it is the kind column of mfa_factors.
type Kind string

// KindTOTP is the time-based one-time password of RFC 6238.
const KindTOTP Kind = "totp"

// Factor is one kind of second factor. Sign-in asks the user's enrolled
// factors to check what the user presented, and records the factor's AMR
// value (RFC 8176) in the tokens it issues. A WebAuthn passkey is another
// implementation: its Check verifies an assertion against the stored
// credential, its AMR is "hwk" (or "swk"), and sign-in does not change.
type Factor interface {
	// Kind names the factor.
	Kind() Kind
	// AMR is the authentication-method reference (RFC 8176 §2) that a
	// sign-in completed with this factor adds next to "pwd".
	AMR() string
	// Check verifies response against the factor's plaintext secret at
	// now. On success it returns a replay key: a value that must be
	// accepted at most once per user (the caller records it in the shared
	// state for as long as ReplayWindow). A failure returns ok false and
	// says nothing about why.
	Check(secret []byte, response string, now time.Time) (replayKey string, ok bool)
	// ReplayWindow is how long a replay key must be remembered.
	ReplayWindow() time.Duration
}

// OnceKey is the OnceStore key under which a factor's replay key is
// claimed for a user: one format for enrollment and sign-in, so that a
// code accepted by one is refused by the other (docs/mfa.md, "TOTP").
func OnceKey(userID, replayKey string) string {
	return "mfa:" + userID + ":" + replayKey
}

// Claimer records a key once for a while: permiso.OnceStore, shared by
// every instance when it is Redis.
type Claimer interface {
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Verify opens the user's sealed secret of factor f (sealed under the
// stored kind), checks response at now, and claims the accepted replay
// key in once: a code is accepted at most once per user, on any instance,
// by enrollment and sign-in alike (docs/mfa.md, "TOTP"). A secret that
// does not open is ErrSealed; a claim that fails is the store's error
// (the caller refuses the code: fail closed).
func (b *Box) Verify(ctx context.Context, once Claimer, f Factor, userID string, stored Kind, sealed, response string, now time.Time) (bool, error) {
	secret, err := b.Open(sealed, AAD(userID, stored))
	if err != nil {
		return false, err
	}
	key, ok := f.Check(secret, response, now)
	if !ok {
		return false, nil
	}
	return once.Claim(ctx, OnceKey(userID, key), f.ReplayWindow())
}

package mfa

import "time"

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

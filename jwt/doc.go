// Package jwt issues and verifies permiso's access tokens: JWTs (RFC 7519)
// in the JWT access token profile of RFC 9068, signed as compact JWS
// (RFC 7515) with one pinned algorithm (RFC 7518 §3, RFC 8037 for EdDSA).
//
// A [Signer] implements [permiso.TokenSigner]. It signs with one current key
// and verifies with every key of its own key set, chosen only by the JWS
// "kid" header (RFC 7515 §4.1.4), never by anything else the token carries:
//
//   - HS256, HS384, HS512: the configured secret (JWT_SECRET_KEY) is the HMAC
//     key, used as given, so resource servers that share the secret verify
//     tokens unchanged. Previous secrets (JWT_PREVIOUS_SECRET_KEYS) still
//     verify but never sign. The kid of a secret is the base64url encoding of
//     the first 8 bytes of its SHA-256 digest, which identifies the secret
//     without revealing it.
//   - RS256 (RSA 3072), ES256 (P-256), EdDSA (Ed25519): keys are generated on
//     first use and kept in a [permiso.KeyStore] (PKCS#8 and PKIX DER). The
//     kid is the stored key's ID; keys generated here use their RFC 7638 JWK
//     thumbprint (SHA-256) as ID. [Signer.Rotate] makes a new signing key and
//     retires the others, which keep verifying, and stay published in the
//     JWK Set ([Signer.JWKS], RFC 7517 §5), until the longest-lived token they
//     may have signed has expired.
//
// Verification follows the JWT BCP (RFC 8725): the algorithm is pinned to
// the configured one (§3.1), the key type must match it (§2.1 algorithm
// confusion), typ must be "at+jwt" (§3.11, RFC 9068 §4), and iss, aud, exp,
// iat and jti are required (§3.8, §3.9, RFC 9068 §2.2). Every failure is a
// [permiso.EINVALIDTOKEN] error whose message is either "Token has expired"
// or "Invalid token"; the library's reason is kept as the wrapped cause for
// logs only.
package jwt

package jwt

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"slices"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/permiso/permiso"
)

var _ permiso.IDTokenSigner = (*Signer)(nil)

// IDTokenAlgorithm returns the algorithm of the ID tokens the signer signs.
func (s *Signer) IDTokenAlgorithm() string { return s.alg }

// SignIDToken implements [permiso.IDTokenSigner] (OpenID Connect Core 1.0
// §2, §3.1.3.6). An HS* signer refuses: ID tokens are verified by relying
// parties with the published keys, never with a shared secret.
func (s *Signer) SignIDToken(_ context.Context, c permiso.IDTokenClaims) (string, error) {
	if s.isHMAC() {
		return "", errors.New("jwt: ID tokens need an asymmetric algorithm")
	}
	if c.Subject == "" || len(c.Audience) == 0 || !c.ExpiresAt.After(c.IssuedAt) {
		return "", errors.New("jwt: an ID token needs sub, aud and an exp after iat")
	}
	k := s.keySet().current
	claims := map[string]any{}
	for name, v := range c.Claims {
		claims[name] = v
	}
	// The registered claims win over anything in Claims.
	claims["iss"] = s.issuer
	claims["sub"] = c.Subject
	if len(c.Audience) == 1 {
		claims["aud"] = c.Audience[0]
	} else {
		claims["aud"] = slices.Clone(c.Audience)
	}
	claims["exp"] = c.ExpiresAt.Unix()
	claims["iat"] = c.IssuedAt.Unix()
	if !c.AuthTime.IsZero() {
		claims["auth_time"] = c.AuthTime.Unix()
	}
	if c.Nonce != "" {
		claims["nonce"] = c.Nonce
	}
	if len(c.AMR) > 0 {
		claims["amr"] = slices.Clone(c.AMR)
	}
	if c.ACR != "" {
		claims["acr"] = c.ACR
	}
	if c.AuthorizedParty != "" {
		claims["azp"] = c.AuthorizedParty
	}
	if c.SessionID != "" {
		claims["sid"] = c.SessionID
	}
	if c.AccessToken != "" {
		claims["at_hash"] = AccessTokenHash(s.alg, c.AccessToken)
	}
	t := gojwt.NewWithClaims(s.method, gojwt.MapClaims(claims))
	t.Header["typ"] = "JWT"
	t.Header["kid"] = k.kid
	out, err := t.SignedString(k.signing)
	if err != nil {
		return "", fmt.Errorf("jwt: sign ID token: %w", err)
	}
	return out, nil
}

// AccessTokenHash is the at_hash of an access token (OpenID Connect Core
// 1.0 §3.1.3.6): the base64url of the left half of its hash with the hash
// function of the ID token's algorithm (SHA-256 for RS256 and ES256,
// SHA-512 for EdDSA with Ed25519, as relying-party libraries compute it).
func AccessTokenHash(alg, accessToken string) string {
	var h hash.Hash
	switch alg {
	case EdDSA, HS512:
		h = sha512.New()
	default:
		h = sha256.New()
	}
	h.Write([]byte(accessToken))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// KeySets publishes the keys of several signers (the access-token signer
// and, when it is a different one, the ID-token signer) as one JWK Set.
type KeySets []*Signer

// JWKS returns the union of the signers' JWK Sets, each key once.
func (ks KeySets) JWKS() []byte {
	set := jsonWebKeySet{Keys: []jsonWebKey{}}
	seen := map[string]bool{}
	for _, s := range ks {
		var one jsonWebKeySet
		if err := json.Unmarshal(s.JWKS(), &one); err != nil {
			panic("jwt: JWKS: " + err.Error()) // our own document
		}
		for _, k := range one.Keys {
			if !seen[k.Kid] {
				seen[k.Kid] = true
				set.Keys = append(set.Keys, k)
			}
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		panic("jwt: marshal JWKS: " + err.Error())
	}
	return b
}

// Algorithms returns the access-token signer's algorithm (the first
// signer's), as [Signer.Algorithms] does.
func (ks KeySets) Algorithms() []string {
	if len(ks) == 0 {
		return nil
	}
	return ks[0].Algorithms()
}

// VerifyIDTokenHint checks an ID token that permiso issued, given back as
// id_token_hint (OpenID Connect RP-Initiated Logout 1.0 §2): its
// signature with one of our keys of the pinned algorithm, typ JWT and its
// issuer. Its expiry is not checked: the specification asks the OP to
// accept expired hints. It returns the claims.
func (s *Signer) VerifyIDTokenHint(ctx context.Context, token string) (permiso.IDTokenHint, error) {
	fail := func(cause error) (permiso.IDTokenHint, error) {
		return permiso.IDTokenHint{}, permiso.Wrap(permiso.EINVALIDTOKEN, "Invalid id_token_hint", cause)
	}
	if s.isHMAC() || len(token) > maxTokenLength {
		return fail(errors.New("not an ID token of this signer"))
	}
	p := gojwt.NewParser(gojwt.WithValidMethods([]string{s.alg}), gojwt.WithoutClaimsValidation(), gojwt.WithStrictDecoding())
	var c gojwt.MapClaims
	_, err := p.ParseWithClaims(token, &c, func(t *gojwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != "JWT" {
			return nil, errors.New("typ header is not JWT")
		}
		if _, ok := t.Header["crit"]; ok {
			return nil, errors.New("crit header not supported")
		}
		kid, _ := t.Header["kid"].(string)
		k := s.lookup(kid)
		if k == nil {
			s.reloadOnMiss(ctx)
			k = s.lookup(kid)
		}
		if k == nil || t.Method == nil || t.Method.Alg() != k.alg {
			return nil, errors.New("unknown kid")
		}
		return k.verifying, nil
	})
	if err != nil {
		return fail(err)
	}
	if iss, _ := c.GetIssuer(); iss != s.issuer {
		return fail(errors.New("other issuer"))
	}
	sub, _ := c.GetSubject()
	aud, _ := c.GetAudience()
	sid, _ := c["sid"].(string)
	return permiso.IDTokenHint{Subject: sub, Audience: []string(aud), SessionID: sid}, nil
}

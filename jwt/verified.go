package jwt

import (
	"slices"
	"strings"
	"sync"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/permiso/permiso"
)

// DefaultVerifiedCacheSize is Options.VerifiedCacheSize when it is zero.
const DefaultVerifiedCacheSize = 4096

// verifiedCache remembers the access tokens Verify accepted
// (docs/security-model.md, "The cache of verified tokens"): the key is the
// whole compact token, the value its decoded claims and the key that
// verified its signature. It is a memo of the parse and the signature
// check only, which depend on nothing but the token's bytes and the key:
// every check that depends on the time or on the key set is made again on
// every hit (verifiedCache.get), and an entry is never used at or after
// the token's exp. Only tokens that passed every check are stored, so
// nothing a caller sends can fill it with anything but tokens this server
// signed. It holds at most max entries.
type verifiedCache struct {
	max int

	mu sync.RWMutex
	m  map[string]*verifiedEntry
}

// verifiedEntry is one verified token. claims and access are never
// modified once stored; get returns a copy of access.
type verifiedEntry struct {
	claims verifiedClaims
	access permiso.AccessClaims
	kid    string
	key    *key
}

// verifiedClaims are cached claims as the validator reads them: their
// dates converted once, not on every hit.
type verifiedClaims struct {
	*claims
	exp, iat, nbf *gojwt.NumericDate
}

// GetExpirationTime implements [gojwt.Claims].
func (c verifiedClaims) GetExpirationTime() (*gojwt.NumericDate, error) { return c.exp, nil }

// GetIssuedAt implements [gojwt.Claims].
func (c verifiedClaims) GetIssuedAt() (*gojwt.NumericDate, error) { return c.iat, nil }

// GetNotBefore implements [gojwt.Claims].
func (c verifiedClaims) GetNotBefore() (*gojwt.NumericDate, error) { return c.nbf, nil }

func newVerifiedCache(max int) *verifiedCache {
	if max <= 0 {
		return nil
	}
	return &verifiedCache{max: max, m: make(map[string]*verifiedEntry)}
}

// verifiedHit returns the claims of a token Verify accepted before, when
// that token still passes every check that can change without the token
// changing: the key named by its kid is still the very key that verified
// it and still live (lookup: a key set reloaded, rotated or expired since
// makes a miss), and the claims pass the same validator as the parser's
// (exp, nbf and iat against the current time with the leeway, iss, aud,
// and claims.Validate). An entry is not used at or after the token's exp
// (the leeway after it is the full verification's to grant). Anything else
// is a miss, and Verify verifies the token from scratch.
func (s *Signer) verifiedHit(token string) (permiso.AccessClaims, bool) {
	if s.verified == nil {
		return permiso.AccessClaims{}, false
	}
	s.verified.mu.RLock()
	e := s.verified.m[token]
	s.verified.mu.RUnlock()
	if e == nil {
		return permiso.AccessClaims{}, false
	}
	if !s.now().Before(e.access.ExpiresAt) || s.lookup(e.kid) != e.key ||
		e.key.alg != s.alg || s.validator.Validate(e.claims) != nil {
		s.verified.mu.Lock()
		if s.verified.m[token] == e {
			delete(s.verified.m, token)
		}
		s.verified.mu.Unlock()
		return permiso.AccessClaims{}, false
	}
	return cloneAccessClaims(e.access), true
}

// remember stores a token Verify has just accepted, with its claims and
// the key that verified it. When the cache is full it first drops the
// entries whose token has expired, then, if that freed less than a
// quarter of it, arbitrary entries down to three quarters: a cost paid
// once per max/4 new tokens, never on a hit.
func (s *Signer) remember(token string, c *claims, access permiso.AccessClaims, k *key) {
	vc := s.verified
	now := s.now()
	if vc == nil || k == nil || !now.Before(access.ExpiresAt) {
		return // no cache, or a token the leeway still accepts after its exp
	}
	// The cached claims must not share memory with what Verify returns.
	cc := *c
	cc.Audience = slices.Clone(c.Audience)
	cc.Scopes, cc.AMR, cc.Roles = slices.Clone(c.Scopes), slices.Clone(c.AMR), slices.Clone(c.Roles)
	cc.IsSuperuser, cc.IsTrusted = cloneBool(c.IsSuperuser), cloneBool(c.IsTrusted)
	e := &verifiedEntry{access: cloneAccessClaims(access), kid: k.kid, key: k,
		claims: verifiedClaims{claims: &cc, exp: cc.ExpiresAt.jwt(), iat: cc.IssuedAt.jwt(), nbf: cc.NotBefore.jwt()}}
	vc.mu.Lock()
	defer vc.mu.Unlock()
	if len(vc.m) >= vc.max {
		for t, old := range vc.m {
			if !now.Before(old.access.ExpiresAt) {
				delete(vc.m, t)
			}
		}
		for t := range vc.m {
			if len(vc.m) <= vc.max*3/4 {
				break
			}
			delete(vc.m, t)
		}
	}
	vc.m[strings.Clone(token)] = e
}

// cloneAccessClaims returns c with its own copies of the lists and of the
// flags, so that no caller can change what another request is given.
func cloneAccessClaims(c permiso.AccessClaims) permiso.AccessClaims {
	c.Audience, c.Scopes = slices.Clone(c.Audience), slices.Clone(c.Scopes)
	c.AMR, c.Roles = slices.Clone(c.AMR), slices.Clone(c.Roles)
	c.IsSuperuser, c.IsTrusted = cloneBool(c.IsSuperuser), cloneBool(c.IsTrusted)
	return c
}

func cloneBool(p *bool) *bool {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

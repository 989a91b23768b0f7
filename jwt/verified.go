package jwt

import (
	"slices"
	"strings"
	"sync"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/slab"
)

// DefaultVerifiedCacheSize is Options.VerifiedCacheSize when it is zero.
const DefaultVerifiedCacheSize = 4096

// verifiedCacheBytes bounds the heap the cache of verified tokens may hold,
// as estimated by entryCost, whatever the number of entries: a token near
// the size bound with lists of many short names costs tens of kilobytes.
const verifiedCacheBytes = 8 << 20

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
	max      int
	maxBytes int

	mu    sync.RWMutex
	m     map[string]*verifiedEntry
	bytes int // the sum of the entries' cost
}

// verifiedEntry is one verified token. claims and access are never
// modified once stored; get returns a copy of access.
type verifiedEntry struct {
	claims verifiedClaims
	access permiso.AccessClaims
	kid    string
	key    *key
	cost   int // entryCost
}

// entryCost estimates the heap an entry holds: the token twice (the map
// key and the decoded strings of its payload, at most its length), a
// string header in each of the two copies of the claims and in the copy
// a hit returns per list element, and a fixed part for the structs and
// the map slot. It is meant to be above the measured figures
// (docs/security-model.md, "The cache of verified tokens").
func entryCost(token string, c permiso.AccessClaims) int {
	n := len(c.Audience) + len(c.Scopes) + len(c.AMR) + len(c.Roles)
	return 2*len(token) + 48*n + 1024
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
	return &verifiedCache{max: max, maxBytes: verifiedCacheBytes, m: make(map[string]*verifiedEntry)}
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
	// One clock read for the token's expiry and its key's.
	if now := s.now(); !now.Before(e.access.ExpiresAt) || s.lookupAt(e.kid, now) != e.key ||
		e.key.alg != s.alg || s.validator.Validate(e.claims) != nil {
		s.verified.mu.Lock()
		if s.verified.m[token] == e {
			s.verified.drop(token, e)
		}
		s.verified.mu.Unlock()
		return permiso.AccessClaims{}, false
	}
	return cloneAccessClaims(e.access), true
}

// drop removes entry e of token; vc.mu is held for writing.
func (vc *verifiedCache) drop(token string, e *verifiedEntry) {
	delete(vc.m, token)
	vc.bytes -= e.cost
}

// full reports whether an entry of cost does not fit; vc.mu is held.
func (vc *verifiedCache) full(cost int) bool {
	return len(vc.m) >= vc.max || vc.bytes+cost > vc.maxBytes
}

// remember stores a token Verify has just accepted, with its claims and
// the key that verified it. When the cache is full (max entries, or
// maxBytes of estimated heap) it first drops the entries whose token has
// expired, then, if that freed less than a quarter of it, arbitrary
// entries down to three quarters of both bounds: a cost paid once per
// quarter of new tokens, never on a hit. A token whose entry alone would
// take more than a sixty-fourth of maxBytes is not stored (it is verified
// in full each time).
func (s *Signer) remember(token string, c *claims, access permiso.AccessClaims, k *key) {
	vc := s.verified
	now := s.now()
	if vc == nil || k == nil || !now.Before(access.ExpiresAt) {
		return // no cache, or a token the leeway still accepts after its exp
	}
	cost := entryCost(token, access)
	if cost > vc.maxBytes/64 {
		return
	}
	// The cached claims must not share memory with what Verify returns.
	cc := *c
	cc.Audience = slices.Clone(c.Audience)
	cc.Scopes, cc.AMR, cc.Roles = slices.Clone(c.Scopes), slices.Clone(c.AMR), slices.Clone(c.Roles)
	cc.IsSuperuser, cc.IsTrusted = cloneBool(c.IsSuperuser), cloneBool(c.IsTrusted)
	e := &verifiedEntry{access: cloneAccessClaims(access), kid: k.kid, key: k, cost: cost,
		claims: verifiedClaims{claims: &cc, exp: cc.ExpiresAt.jwt(), iat: cc.IssuedAt.jwt(), nbf: cc.NotBefore.jwt()}}
	vc.mu.Lock()
	defer vc.mu.Unlock()
	if old := vc.m[token]; old != nil {
		vc.drop(token, old) // verified again: the new entry replaces it
	}
	if vc.full(cost) {
		for t, old := range vc.m {
			if !now.Before(old.access.ExpiresAt) {
				vc.drop(t, old)
			}
		}
		for t, old := range vc.m {
			if len(vc.m) <= vc.max*3/4 && vc.bytes+cost <= vc.maxBytes*3/4 {
				break
			}
			vc.drop(t, old)
		}
	}
	vc.m[strings.Clone(token)] = e
	vc.bytes += cost
}

// cloneAccessClaims returns c with its own copies of the lists and of the
// flags, so that no caller can change what another request is given.
func cloneAccessClaims(c permiso.AccessClaims) permiso.AccessClaims {
	// The four lists in one allocation and the two booleans in another:
	// a cache hit copies them on every request.
	strs := make(slab.Slab[string], 0, len(c.Audience)+len(c.Scopes)+len(c.AMR)+len(c.Roles))
	c.Audience, c.Scopes = strs.Slice(c.Audience), strs.Slice(c.Scopes)
	c.AMR, c.Roles = strs.Slice(c.AMR), strs.Slice(c.Roles)
	slab.Copy(0, &c.IsSuperuser, &c.IsTrusted)
	return c
}

func cloneBool(p *bool) *bool {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

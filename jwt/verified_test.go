package jwt

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/permiso/permiso"
)

// cached reports whether tok is in s's cache of verified tokens.
func cached(s *Signer, tok string) bool {
	s.verified.mu.RLock()
	defer s.verified.mu.RUnlock()
	return s.verified.m[tok] != nil
}

// TestVerifiedCacheKeepsEveryCheck warms the cache of verified tokens
// (docs/security-model.md, "The cache of verified tokens") with a token
// and checks that a hit answers what a full verification answers, that
// what it returns is the caller's own, and that tampered tokens, tokens of
// another key, expired tokens and tokens read on a clock set back are
// still refused (RFC 8725 §3).
func TestVerifiedCacheKeepsEveryCheck(t *testing.T) {
	ctx := context.Background()
	s, clk := hs256Signer(t)
	uncachedOpts := testOptions(HS256, nil, clk)
	uncachedOpts.VerifiedCacheSize = -1
	uncached := newTestSigner(t, uncachedOpts)
	tok, err := s.Sign(ctx, fullClaims(clk.Now()))
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if !cached(s, tok) {
		t.Fatal("a verified token is not in the cache")
	}
	if uncached.verified != nil {
		t.Fatal("VerifiedCacheSize -1 made a cache")
	}
	want, err := uncached.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	// A caller changing what it was given changes nothing for the next.
	first.Scopes[0], first.Roles[0], first.AMR[0], first.Audience[0] = "admin:all", "root", "x", "y"
	*first.IsSuperuser, *first.IsTrusted = false, true
	hit, err := s.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(hit, want) {
		t.Fatalf("cache hit = %+v, want %+v", hit, want)
	}

	t.Run("tampered", func(t *testing.T) {
		parts := strings.Split(tok, ".")
		payload, _ := b64.DecodeString(parts[1])
		escalated := strings.Replace(string(payload), `"roles":["user","admin"]`, `"roles":["user","admin","root"]`, 1)
		sig := []byte(parts[2])
		sig[len(sig)/2] ^= 1
		for i, bad := range []string{
			parts[0] + "." + b64.EncodeToString([]byte(escalated)) + "." + parts[2],
			parts[0] + "." + parts[1] + "." + string(sig),
			parts[0] + "." + parts[1] + ".",
			tok + "A",
			" " + tok,
		} {
			if _, err := s.Verify(ctx, bad); err == nil {
				t.Errorf("tampered token %d accepted with the cache warm", i)
			}
			if cached(s, bad) {
				t.Errorf("tampered token %d cached", i)
			}
		}
	})

	t.Run("other key", func(t *testing.T) {
		opts := testOptions(HS256, nil, clk)
		opts.Secret = []byte("another-secret-another-secret-0123456789")
		other := newTestSigner(t, opts)
		foreign, err := other.Sign(ctx, fullClaims(clk.Now()))
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Verify(ctx, foreign)
		wantRejected(t, err, "Invalid token")
		// The same claims and kid under the other key (a forgery of a
		// cached token's signature).
		parts := strings.Split(tok, ".")
		forged := parts[0] + "." + parts[1] + "." + b64.EncodeToString(hs256(opts.Secret)(parts[0]+"."+parts[1]))
		_, err = s.Verify(ctx, forged)
		wantRejected(t, err, "Invalid token")
	})

	t.Run("clock set back", func(t *testing.T) {
		// iat in the future beyond the leeway: refused as a full
		// verification refuses it.
		clk.Advance(-(DefaultLeeway + time.Second))
		defer clk.Advance(DefaultLeeway + time.Second)
		_, err := s.Verify(ctx, tok)
		wantRejected(t, err, "Invalid token")
		_, err = uncached.Verify(ctx, tok)
		wantRejected(t, err, "Invalid token")
	})

	t.Run("expired", func(t *testing.T) {
		if _, err := s.Verify(ctx, tok); err != nil {
			t.Fatal(err) // warm again
		}
		// Within the leeway after exp: not from the cache, still accepted
		// by the full verification, as without a cache.
		clk.Advance(testLifetime)
		if _, err := s.Verify(ctx, tok); err != nil {
			t.Fatalf("at exp, within the leeway: %v", err)
		}
		clk.Advance(DefaultLeeway)
		wantExpired(t, s, tok)
		wantExpired(t, uncached, tok)
		if cached(s, tok) {
			t.Error("an expired token stayed in the cache")
		}
	})
}

// TestVerifiedCacheKeyExpiry checks that a cached token of a key that
// stops verifying (retired by a rotation, then past its expiry) is refused
// as without a cache.
func TestVerifiedCacheKeyExpiry(t *testing.T) {
	ctx := context.Background()
	clk, store := newClock(), newFakeKeyStore()
	c := fullClaims(clk.Now())
	c.ExpiresAt = clk.Now().Add(24 * 10 * time.Minute) // outlives the key
	opts := testOptions(ES256, store, clk)
	opts.MaxTokenLifetime = 24 * time.Hour
	s := newTestSigner(t, opts)
	tok, err := s.Sign(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, tok); err != nil {
		t.Fatalf("retired key, not yet expired: %v", err)
	}
	old := store.get(headerKID(t, tok))
	clk.Advance(old.ExpiresAt.Sub(clk.Now()))
	_, err = s.Verify(ctx, tok)
	wantRejected(t, err, "Invalid token")
}

// TestVerifiedCacheBoundsItsBytes checks that tokens with long lists fill
// the cache up to its byte budget, not up to its count: the estimated heap
// stays within maxBytes, the sum of the entries' costs is what the cache
// counts, and a token whose entry alone would take more than a
// sixty-fourth of the budget is verified but not stored.
func TestVerifiedCacheBoundsItsBytes(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := newTestSigner(t, testOptions(HS256, nil, clk))
	s.verified.maxBytes = 1 << 20
	sign := func(i, roles int) string {
		c := fullClaims(clk.Now())
		c.ID = fmt.Sprintf("jti-%d", i)
		c.Roles = nil
		for r := range roles {
			c.Roles = append(c.Roles, fmt.Sprintf("r%d", r))
		}
		return signVerified(ctx, t, s, c)
	}
	for i := range 200 {
		sign(i, 100)
		s.verified.mu.RLock()
		sum := 0
		for _, e := range s.verified.m {
			sum += e.cost
		}
		n, bytes := len(s.verified.m), s.verified.bytes
		s.verified.mu.RUnlock()
		if sum != bytes {
			t.Fatalf("after %d tokens: the cache counts %d bytes, its entries cost %d", i+1, bytes, sum)
		}
		if bytes > s.verified.maxBytes {
			t.Fatalf("after %d tokens: %d bytes cached in %d entries, budget %d", i+1, bytes, n, s.verified.maxBytes)
		}
	}
	if n := len(s.verified.m); n >= 200 || n == 0 {
		t.Errorf("%d of 200 large tokens cached: want the byte budget to bound them, not the count", n)
	}
	big := sign(1000, 1000)
	if cached(s, big) {
		t.Error("a token whose entry exceeds a sixty-fourth of the budget was stored")
	}
}

// TestVerifiedCacheIsBounded checks that the cache never holds more than
// VerifiedCacheSize tokens, and that expired ones go first.
func TestVerifiedCacheIsBounded(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	opts := testOptions(HS256, nil, clk)
	opts.VerifiedCacheSize = 8
	s := newTestSigner(t, opts)
	sign := func(i int, lifetime time.Duration) string {
		c := fullClaims(clk.Now())
		c.ID = fmt.Sprintf("jti-%d", i)
		c.ExpiresAt = clk.Now().Add(lifetime)
		return signVerified(ctx, t, s, c)
	}
	var short []string
	for i := range 8 {
		short = append(short, sign(i, time.Minute))
	}
	clk.Advance(time.Minute + DefaultLeeway)
	sign(100, 10*time.Minute)
	for i := range 20 {
		sign(200+i, 10*time.Minute)
		if n := len(s.verified.m); n > 8 {
			t.Fatalf("%d tokens cached, want at most 8", n)
		}
	}
	for i, tok := range short {
		if cached(s, tok) {
			t.Errorf("expired token %d still cached", i)
		}
	}
	var errs int
	for _, tok := range short {
		if _, err := s.Verify(ctx, tok); permiso.ErrorCode(err) != permiso.EINVALIDTOKEN {
			errs++
		}
	}
	if errs != 0 {
		t.Errorf("%d expired tokens not refused", errs)
	}
}

// TestVerifiedCacheHitsShareNothing: what a cache hit returns is the
// request's own: writing into its lists and flags, or appending to a
// list, changes neither the cached claims nor the next hit's.
func TestVerifiedCacheHitsShareNothing(t *testing.T) {
	ctx := context.Background()
	s, clk := hs256Signer(t)
	tok := signVerified(ctx, t, s, fullClaims(clk.Now()))
	first, err := s.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := s.Verify(ctx, tok)
	first.Audience[0], first.Scopes[0], first.AMR[0], first.Roles[0] = "x", "x", "x", "x"
	first.Scopes = append(first.Scopes, "appended")
	first.Audience = append(first.Audience, "appended")
	*first.IsSuperuser, *first.IsTrusted = false, true
	got, err := s.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || got.Scopes[0] == "x" || !*got.IsSuperuser {
		t.Errorf("a hit after writing into another:\n got %+v\nwant %+v", got, want)
	}
}

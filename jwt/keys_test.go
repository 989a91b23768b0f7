package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/permiso/permiso"
)

func jwksKIDs(t testing.TB, s *Signer) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(s.JWKS(), &set); err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	kids := make([]string, 0, len(set.Keys))
	for _, k := range set.Keys {
		kids = append(kids, k.KeyID)
	}
	return kids
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRotation(t *testing.T) {
	ctx := context.Background()
	for _, alg := range []string{ES256, EdDSA, RS256} {
		t.Run(alg, func(t *testing.T) {
			s, store, clk := storeSigner(t, alg)
			// A second instance sharing the store, started before the rotation.
			peer := newTestSigner(t, testOptions(alg, store, clk))
			if n := len(store.all()); n != 1 {
				t.Fatalf("store has %d keys after two New, want 1 (the second reuses it)", n)
			}
			before := mustSign(ctx, t, s, fullClaims(clk.Now()))
			oldKID := headerKID(t, before)
			if kids := jwksKIDs(t, s); !equalStrings(kids, []string{oldKID}) {
				t.Fatalf("JWKS kids = %v, want [%s]", kids, oldKID)
			}

			clk.Advance(time.Minute)
			rotatedAt := clk.Now()
			newKID, err := s.Rotate(ctx)
			if err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			if newKID == oldKID || newKID == "" {
				t.Fatalf("Rotate returned %q (old %q)", newKID, oldKID)
			}
			old := store.get(oldKID)
			wantExpiry := rotatedAt.Add(testLifetime + DefaultLeeway + DefaultReloadInterval)
			if old.RetiredAt == nil || !old.RetiredAt.Equal(rotatedAt) || old.ExpiresAt == nil || !old.ExpiresAt.Equal(wantExpiry) {
				t.Fatalf("old key retired %v, expires %v; want %v, %v", old.RetiredAt, old.ExpiresAt, rotatedAt, wantExpiry)
			}

			after := mustSign(ctx, t, s, fullClaims(clk.Now()))
			if kid := headerKID(t, after); kid != newKID {
				t.Fatalf("token after Rotate has kid %s, want %s", kid, newKID)
			}
			for name, tok := range map[string]string{"before": before, "after": after} {
				if _, err := s.Verify(ctx, tok); err != nil {
					t.Errorf("token %s Rotate: %v", name, err)
				}
			}
			if kids := jwksKIDs(t, s); !equalStrings(kids, []string{newKID, oldKID}) {
				t.Fatalf("JWKS kids = %v, want [%s %s]", kids, newKID, oldKID)
			}

			// The peer learns the new key on the first unknown kid.
			if _, err := peer.Verify(ctx, after); err != nil {
				t.Fatalf("peer verifying the new key's token: %v", err)
			}
			peerTok := mustSign(ctx, t, peer, fullClaims(clk.Now()))
			if kid := headerKID(t, peerTok); kid != newKID {
				t.Errorf("peer signs with %s after reloading, want %s", kid, newKID)
			}

			// The old key is published until its expiry, then dropped,
			// and its tokens no longer find a key.
			clk.Advance(wantExpiry.Sub(clk.Now()) - time.Second)
			if kids := jwksKIDs(t, s); len(kids) != 2 {
				t.Fatalf("JWKS just before expiry = %v", kids)
			}
			clk.Advance(time.Second)
			if kids := jwksKIDs(t, s); !equalStrings(kids, []string{newKID}) {
				t.Fatalf("JWKS after expiry = %v, want [%s]", kids, newKID)
			}
			_, err = s.Verify(ctx, before)
			// Invalid (unknown kid), not merely expired: the key lookup
			// fails before the claims are looked at.
			wantRejected(t, err, "Invalid token")
			if err := s.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			if kids := jwksKIDs(t, s); !equalStrings(kids, []string{newKID}) {
				t.Fatalf("JWKS after reload = %v", kids)
			}
		})
	}
}

// TestUnknownKIDReloadIsRateLimited checks that tokens with made-up kids
// make at most one store read per interval.
func TestUnknownKIDReloadIsRateLimited(t *testing.T) {
	ctx := context.Background()
	s, store, clk := storeSigner(t, ES256)
	base := store.listCalls()
	toks := make([]string, 50)
	for i := range toks {
		h := map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": fmt.Sprintf("garbage-%d", i)}
		toks[i] = craft(t, h, validPayload(clk.Now()), func(string) []byte { return make([]byte, 64) })
	}
	errs := make([]error, len(toks))
	var wg sync.WaitGroup
	for i, tok := range toks {
		wg.Go(func() { _, errs[i] = s.Verify(ctx, tok) })
	}
	wg.Wait()
	for _, err := range errs {
		wantRejected(t, err, "Invalid token")
	}
	if n := store.listCalls() - base; n != 1 {
		t.Fatalf("%d store reads for 50 unknown kids, want 1", n)
	}
	clk.Advance(missReloadInterval - time.Second)
	h := map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": "garbage"}
	tok := craft(t, h, validPayload(clk.Now()), func(string) []byte { return make([]byte, 64) })
	_, _ = s.Verify(ctx, tok)
	if n := store.listCalls() - base; n != 1 {
		t.Fatalf("%d store reads within the interval, want 1", n)
	}
	clk.Advance(time.Second)
	_, _ = s.Verify(ctx, tok)
	if n := store.listCalls() - base; n != 2 {
		t.Fatalf("%d store reads after the interval, want 2", n)
	}
	// Missing kids never reach the store.
	delete(h, "kid")
	clk.Advance(missReloadInterval)
	_, err := s.Verify(ctx, craft(t, h, validPayload(clk.Now()), nil))
	wantRejected(t, err, "Invalid token")
	if n := store.listCalls() - base; n != 2 {
		t.Fatalf("a token without kid read the store")
	}
}

func TestNewUsesStoredKeyOfItsAlgorithm(t *testing.T) {
	ctx := context.Background()
	es, store, clk := storeSigner(t, ES256)
	ed := newTestSigner(t, testOptions(EdDSA, store, clk))
	if n := len(store.all()); n != 2 {
		t.Fatalf("store has %d keys, want one per algorithm", n)
	}
	for _, k := range store.all() {
		if k.CreatedAt.Location() != time.UTC || k.RetiredAt != nil || k.ExpiresAt != nil {
			t.Errorf("stored key %+v", k)
		}
		if _, err := x509.ParsePKCS8PrivateKey(k.PrivateKey); err != nil {
			t.Errorf("private key is not PKCS#8: %v", err)
		}
		if _, err := x509.ParsePKIXPublicKey(k.PublicKey); err != nil {
			t.Errorf("public key is not PKIX: %v", err)
		}
	}
	if len(jwksKIDs(t, es)) != 1 || len(jwksKIDs(t, ed)) != 1 || jwksKIDs(t, es)[0] == jwksKIDs(t, ed)[0] {
		t.Errorf("JWKS: ES256 %v, EdDSA %v", jwksKIDs(t, es), jwksKIDs(t, ed))
	}
	// A restarted instance signs with the stored key.
	es2 := newTestSigner(t, testOptions(ES256, store, clk))
	tok := mustSign(ctx, t, es2, fullClaims(clk.Now()))
	if _, err := es.Verify(ctx, tok); err != nil {
		t.Errorf("restarted instance's token: %v", err)
	}
}

func TestNewRejectsMislabelledStoredKey(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privDER, _ := x509.MarshalPKCS8PrivateKey(priv)
	pubDER, _ := x509.MarshalPKIXPublicKey(priv.Public())
	store := newFakeKeyStore()
	if _, err := store.CreateSigningKey(ctx, permiso.SigningKey{
		ID: "mislabelled", Algorithm: RS256, PrivateKey: privDER, PublicKey: pubDER, CreatedAt: clk.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(ctx, testOptions(RS256, store, clk)); err == nil {
		t.Fatal("New accepted an EC key labelled RS256")
	}
}

// TestConcurrentUse runs Sign, Verify, JWKS, Reload and Rotate at once
// (meaningful under -race).
func TestConcurrentUse(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, store, clk := storeSigner(t, ES256)
	peer := newTestSigner(t, testOptions(ES256, store, clk))
	go peer.Run(ctx, time.Millisecond)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				tok, err := s.Sign(ctx, fullClaims(clk.Now()))
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Verify(ctx, tok); err != nil {
					t.Error(err)
					return
				}
				_ = peer.JWKS()
				_, _ = peer.Verify(ctx, tok)
			}
		}()
	}
	for range 3 {
		if _, err := s.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	cancel()
	if n := len(jwksKIDs(t, s)); n != 4 {
		t.Errorf("JWKS has %d keys after 3 rotations, want 4", n)
	}
}

package jwt

import (
	"context"
	"crypto"
	"crypto/sha512"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/permiso/permiso"
)

var allAlgorithms = []string{HS256, HS384, HS512, RS256, ES256, EdDSA}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, alg := range allAlgorithms {
		t.Run(alg, func(t *testing.T) {
			s, _, clk := storeSigner(t, alg)
			in := fullClaims(clk.Now())
			tok := mustSign(ctx, t, s, in)
			got, err := s.Verify(ctx, tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := in
			want.ExpiresAt = in.ExpiresAt.Truncate(time.Second)
			want.IssuedAt = in.IssuedAt.Truncate(time.Second)
			want.NotBefore = in.NotBefore.Truncate(time.Second)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Verify returned\n%+v\nwant\n%+v", got, want)
			}
			for _, ts := range []time.Time{got.ExpiresAt, got.IssuedAt, got.NotBefore} {
				if ts.Location() != time.UTC {
					t.Errorf("time %v is not UTC", ts)
				}
			}
			if a := s.Algorithms(); !reflect.DeepEqual(a, []string{alg}) {
				t.Errorf("Algorithms() = %v", a)
			}
			// A token stays valid up to its expiry plus the leeway.
			clk.Advance(testLifetime + DefaultLeeway - time.Second)
			if _, err := s.Verify(ctx, tok); err != nil {
				t.Errorf("Verify within leeway: %v", err)
			}
			clk.Advance(2 * time.Second)
			wantExpired(t, s, tok)
		})
	}
}

// TestTokenShape checks the exact header and claims written (docs/oauth.md,
// RFC 9068 §2).
func TestTokenShape(t *testing.T) {
	ctx := context.Background()
	s, clk := hs256Signer(t)
	tok := mustSign(ctx, t, s, fullClaims(clk.Now()))
	header := decodeSegment(t, tok, 0)
	wantHeader := map[string]string{"alg": `"HS256"`, "typ": `"at+jwt"`, "kid": `"` + hmacKID(testSecret) + `"`}
	if len(header) != len(wantHeader) {
		t.Errorf("header = %v", header)
	}
	for k, v := range wantHeader {
		if string(header[k]) != v {
			t.Errorf("header %s = %s, want %s", k, header[k], v)
		}
	}
	now := clk.Now().Unix()
	want := map[string]string{
		"iss":          `"https://auth.example.com"`,
		"sub":          `"2b1f7a2e-6a55-4c8e-9d1e-0c3b8e0f4a11"`,
		"aud":          `["https://api.example.com"]`,
		"exp":          jsonInt(now + int64(testLifetime/time.Second)),
		"iat":          jsonInt(now),
		"nbf":          jsonInt(now),
		"jti":          `"jti-0001"`,
		"client_id":    `"client-abc"`,
		"scope":        `"read:profile write:profile"`,
		"scopes":       `["read:profile","write:profile"]`,
		"type":         `"access"`,
		"sid":          `"sid-0001"`,
		"amr":          `["pwd","otp"]`,
		"roles":        `["user","admin"]`,
		"username":     `"alice"`,
		"email":        `"alice@example.com"`,
		"is_superuser": `true`,
		"is_trusted":   `false`,
	}
	payload := decodeSegment(t, tok, 1)
	if len(payload) != len(want) {
		t.Errorf("payload has %d claims, want %d: %v", len(payload), len(want), payload)
	}
	for k, v := range want {
		if string(payload[k]) != v {
			t.Errorf("claim %s = %s, want %s", k, payload[k], v)
		}
	}
	// The same claims always give the same token.
	tok2, err := s.Sign(ctx, fullClaims(clk.Now()))
	if err != nil || tok2 != tok {
		t.Errorf("signing twice differs: %v", err)
	}

	// A minimal service token: optional claims are omitted; defaults
	// (iss, aud, iat, nbf, jti) are filled in.
	svc, err := s.Sign(ctx, permiso.AccessClaims{
		Subject:   "client-abc",
		ExpiresAt: clk.Now().Add(time.Minute),
		Type:      permiso.TokenTypeService,
	})
	if err != nil {
		t.Fatal(err)
	}
	payload = decodeSegment(t, svc, 1)
	for _, k := range []string{"client_id", "scope", "sid", "roles", "email", "is_superuser", "is_trusted"} {
		if v, ok := payload[k]; ok {
			t.Errorf("claim %s = %s, want omitted", k, v)
		}
	}
	if string(payload["scopes"]) != "[]" {
		t.Errorf("scopes = %s, want []", payload["scopes"])
	}
	if string(payload["aud"]) != `["https://api.example.com","https://other.example.com"]` {
		t.Errorf("aud = %s", payload["aud"])
	}
	if string(payload["iat"]) != jsonInt(now) || string(payload["nbf"]) != jsonInt(now) {
		t.Errorf("iat = %s, nbf = %s, want %d", payload["iat"], payload["nbf"], now)
	}
	got, err := s.Verify(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID == "" || got.Issuer != testIssuer || got.Scopes != nil || got.Roles != nil || got.IsTrusted != nil {
		t.Errorf("service claims = %+v", got)
	}
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestIndependentVerification verifies our tokens with go-jose, using the
// published JWK Set (or, for HS256, the raw secret).
func TestIndependentVerification(t *testing.T) {
	ctx := context.Background()
	algs := map[string]jose.SignatureAlgorithm{HS256: jose.HS256, RS256: jose.RS256, ES256: jose.ES256, EdDSA: jose.EdDSA}
	for alg, joseAlg := range algs {
		t.Run(alg, func(t *testing.T) {
			s, _, clk := storeSigner(t, alg)
			claims := fullClaims(clk.Now())
			tok := mustSign(ctx, t, s, claims)
			jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{joseAlg})
			if err != nil {
				t.Fatalf("go-jose parse: %v", err)
			}
			h := jws.Signatures[0].Header
			if h.Algorithm != alg || h.ExtraHeaders["typ"] != "at+jwt" || h.KeyID == "" {
				t.Fatalf("header = %+v", h)
			}
			var verifyKey any
			if alg == HS256 {
				verifyKey = testSecret
				if string(s.JWKS()) != `{"keys":[]}` {
					t.Errorf("JWKS = %s, want an empty set", s.JWKS())
				}
			} else {
				var set jose.JSONWebKeySet
				if err := json.Unmarshal(s.JWKS(), &set); err != nil {
					t.Fatalf("go-jose cannot read JWKS %s: %v", s.JWKS(), err)
				}
				keys := set.Key(h.KeyID)
				if len(set.Keys) != 1 || len(keys) != 1 {
					t.Fatalf("JWKS has %d keys, %d with kid %s", len(set.Keys), len(keys), h.KeyID)
				}
				k := keys[0]
				if k.Algorithm != alg || k.Use != "sig" || !k.IsPublic() || !k.Valid() {
					t.Fatalf("JWK = %+v", k)
				}
				// Generated keys are named by their RFC 7638 thumbprint.
				tp, err := k.Thumbprint(crypto.SHA256)
				if err != nil {
					t.Fatal(err)
				}
				if b64.EncodeToString(tp) != h.KeyID {
					t.Errorf("kid %s is not the thumbprint %s", h.KeyID, b64.EncodeToString(tp))
				}
				verifyKey = k
			}
			payload, err := jws.Verify(verifyKey)
			if err != nil {
				t.Fatalf("go-jose verify: %v", err)
			}
			var got map[string]any
			if err := json.Unmarshal(payload, &got); err != nil {
				t.Fatal(err)
			}
			if got["sub"] != claims.Subject || got["jti"] != claims.ID {
				t.Errorf("payload = %v", got)
			}
			// A tampered payload fails go-jose too.
			parts := strings.Split(tok, ".")
			bad := parts[0] + "." + b64.EncodeToString([]byte(strings.Replace(string(payload), "alice", "mallory", 1))) + "." + parts[2]
			if jws, err := jose.ParseSignedCompact(bad, []jose.SignatureAlgorithm{joseAlg}); err == nil {
				if _, err := jws.Verify(verifyKey); err == nil {
					t.Error("go-jose verified a tampered token")
				}
			}
		})
	}
}

// validPayload is a hand-written payload that an HS256 test signer accepts.
func validPayload(now time.Time) map[string]any {
	return map[string]any{
		"iss":      testIssuer,
		"sub":      "user-1",
		"aud":      []string{testAudience},
		"exp":      now.Add(10 * time.Minute).Unix(),
		"iat":      now.Unix(),
		"nbf":      now.Unix(),
		"jti":      "jti-1",
		"type":     "access",
		"scope":    "read:profile",
		"scopes":   []string{"read:profile"},
		"username": "alice",
	}
}

func validHeader() map[string]any {
	return map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": hmacKID(testSecret)}
}

// TestSignHMACIsGojwt holds Sign's reused HMACs (signHMAC) to gojwt's
// SigningMethodHMAC.Sign: for each HS* algorithm, tokens signed one after
// the other and from several goroutines at once carry the signature gojwt
// computes over their signing input with the secret.
func TestSignHMACIsGojwt(t *testing.T) {
	ctx := context.Background()
	for _, alg := range []string{HS256, HS384, HS512} {
		t.Run(alg, func(t *testing.T) {
			s, _, clk := storeSigner(t, alg)
			check := func(tok string) error {
				i := strings.LastIndexByte(tok, '.')
				want, err := gojwt.GetSigningMethod(alg).Sign(tok[:i], testSecret)
				if err != nil {
					return err
				}
				if got := tok[i+1:]; got != b64.EncodeToString(want) {
					return fmt.Errorf("signature %s, gojwt's %s", got, b64.EncodeToString(want))
				}
				return nil
			}
			var wg sync.WaitGroup
			errs := make(chan error, 8*50)
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := range 50 {
						c := fullClaims(clk.Now())
						c.ID = fmt.Sprintf("jti-%d-%d", g, n)
						tok, err := s.Sign(ctx, c)
						if err == nil {
							err = check(tok)
						}
						if err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	ctx := context.Background()
	s, clk := hs256Signer(t)
	now := clk.Now()
	good := hs256(testSecret)

	type mutate func(h, p map[string]any)
	cases := []struct {
		name   string
		mutate mutate
		sign   func(string) []byte
		want   string // "" = accepted
		cause  string // in the wrapped cause (for logs)
	}{
		{"valid", func(h, p map[string]any) {}, good, "", ""},
		{"typ application/at+jwt", func(h, p map[string]any) { h["typ"] = "application/AT+JWT" }, good, "", ""},
		{"aud as a string", func(h, p map[string]any) { p["aud"] = "https://other.example.com" }, good, "", ""},
		{"aud among others", func(h, p map[string]any) { p["aud"] = []string{"x", testAudience} }, good, "", ""},
		{"expired within leeway", func(h, p map[string]any) { p["exp"] = now.Add(-20 * time.Second).Unix() }, good, "", ""},
		{"only scope string", func(h, p map[string]any) { delete(p, "scopes") }, good, "", ""},
		{"alg none", func(h, p map[string]any) { h["alg"] = "none" }, nil, "Invalid token", "signing method none is invalid"},
		{"alg none with signature", func(h, p map[string]any) { h["alg"] = "none" }, good, "Invalid token", "signing method none is invalid"},
		{"alg None", func(h, p map[string]any) { h["alg"] = "None" }, nil, "Invalid token", "signing method (alg) is unavailable"},
		{"wrong alg HS384", func(h, p map[string]any) { h["alg"] = "HS384" }, hmacSign(sha512.New384, testSecret), "Invalid token", "signing method HS384 is invalid"},
		{"wrong alg HS512", func(h, p map[string]any) { h["alg"] = "HS512" }, hmacSign(sha512.New, testSecret), "Invalid token", "signing method HS512 is invalid"},
		{"missing alg", func(h, p map[string]any) { delete(h, "alg") }, good, "Invalid token", "signing method (alg) is unspecified"},
		{"missing kid", func(h, p map[string]any) { delete(h, "kid") }, good, "Invalid token", "kid header missing"},
		{"empty kid", func(h, p map[string]any) { h["kid"] = "" }, good, "Invalid token", "kid header missing"},
		{"numeric kid", func(h, p map[string]any) { h["kid"] = 7 }, good, "Invalid token", "kid header missing"},
		{"unknown kid", func(h, p map[string]any) { h["kid"] = "unknown" }, good, "Invalid token", "unknown kid"},
		{"missing exp", func(h, p map[string]any) { delete(p, "exp") }, good, "Invalid token", "exp claim is required"},
		{"null exp", func(h, p map[string]any) { p["exp"] = nil }, good, "Invalid token", "exp claim is required"},
		{"string exp", func(h, p map[string]any) { p["exp"] = "4102444800" }, good, "Invalid token", "date claim must be a number"},
		{"missing iat", func(h, p map[string]any) { delete(p, "iat") }, good, "Invalid token", "iat claim is required"},
		{"missing jti", func(h, p map[string]any) { delete(p, "jti") }, good, "Invalid token", "jti claim is required"},
		{"missing sub", func(h, p map[string]any) { delete(p, "sub") }, good, "Invalid token", "sub claim is required"},
		{"expired", func(h, p map[string]any) { p["exp"] = now.Add(-DefaultLeeway - time.Second).Unix() }, good, "Token has expired", "token is expired"},
		{"nbf in the future", func(h, p map[string]any) { p["nbf"] = now.Add(2 * time.Minute).Unix() }, good, "Invalid token", "token is not valid yet"},
		{"iat in the future", func(h, p map[string]any) { p["iat"] = now.Add(2 * time.Minute).Unix() }, good, "Invalid token", "token used before issued"},
		{"wrong iss", func(h, p map[string]any) { p["iss"] = "https://evil.example.com" }, good, "Invalid token", "invalid issuer"},
		{"missing iss", func(h, p map[string]any) { delete(p, "iss") }, good, "Invalid token", "iss claim is required"},
		{"wrong aud", func(h, p map[string]any) { p["aud"] = []string{"https://evil.example.com"} }, good, "Invalid token", "invalid audience"},
		{"missing aud", func(h, p map[string]any) { delete(p, "aud") }, good, "Invalid token", "aud claim is required"},
		{"typ JWT", func(h, p map[string]any) { h["typ"] = "JWT" }, good, "Invalid token", "typ header"},
		{"missing typ", func(h, p map[string]any) { delete(h, "typ") }, good, "Invalid token", "typ header"},
		{"crit header", func(h, p map[string]any) { h["crit"] = []string{"exp"}; h["exp"] = 1 }, good, "Invalid token", "crit header"},
		{"type refresh", func(h, p map[string]any) { p["type"] = "refresh" }, good, "Invalid token", "type claim"},
		{"missing type", func(h, p map[string]any) { delete(p, "type") }, good, "Invalid token", "type claim"},
		{"another secret", func(h, p map[string]any) {}, hs256([]byte("another-secret-another-secret-another-secret")), "Invalid token", "signature is invalid"},
		{"another secret and its kid", func(h, p map[string]any) {
			h["kid"] = hmacKID([]byte("another-secret-another-secret-another-secret"))
		}, hs256([]byte("another-secret-another-secret-another-secret")), "Invalid token", "unknown kid"},
		{"empty signature", func(h, p map[string]any) {}, nil, "Invalid token", "signature is invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, p := validHeader(), validPayload(now)
			tc.mutate(h, p)
			tok := craft(t, h, p, tc.sign)
			got, err := s.Verify(ctx, tok)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got.Subject != "user-1" || !reflect.DeepEqual(got.Scopes, []string{"read:profile"}) {
					t.Fatalf("claims = %+v", got)
				}
				return
			}
			wantRejected(t, err, tc.want)
			if !strings.Contains(err.Error(), tc.cause) {
				t.Errorf("error %q does not name the cause %q", err, tc.cause)
			}
			var e *permiso.Error
			if !errors.As(err, &e) || e.Unwrap() == nil {
				t.Errorf("error %v has no wrapped cause", err)
			}
		})
	}
}

func TestVerifyRejectsTamperingAndGarbage(t *testing.T) {
	ctx := context.Background()
	s, clk := hs256Signer(t)
	tok := mustSign(ctx, t, s, fullClaims(clk.Now()))
	parts := strings.Split(tok, ".")
	payload, _ := b64.DecodeString(parts[1])
	header, _ := b64.DecodeString(parts[0])
	escalated := strings.Replace(string(payload), `"roles":["user","admin"]`, `"roles":["user","admin","root"]`, 1)
	if escalated == string(payload) {
		t.Fatal("test payload not found")
	}
	sig := []byte(parts[2])
	sig[len(sig)/2] ^= 1 // still base64url, different bytes
	bad := []string{
		parts[0] + "." + b64.EncodeToString([]byte(escalated)) + "." + parts[2],
		parts[0] + "." + parts[1] + "." + string(sig),
		parts[0] + "." + parts[1] + ".",
		parts[0] + "." + parts[1],
		tok + ".",
		tok + "=",
		tok + "A",
		" " + tok,
		b64.EncodeToString([]byte(strings.Replace(string(header), "at+jwt", "JWT", 1))) + "." + parts[1] + "." + parts[2],
		"", ".", "..", "...", "a.b.c", "Bearer " + tok, "null", "{}",
		"eyJhbGciOiJub25lIn0.e30.",
		strings.Repeat("a", 100000),
		strings.Repeat("eyJ.", 1000),
		parts[0] + "." + parts[1] + "." + parts[2] + "." + parts[2] + "." + parts[2], // JWE-like
	}
	for i, b := range bad {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			_, err := s.Verify(ctx, b)
			wantRejected(t, err, "Invalid token")
		})
	}
	if _, err := s.Verify(ctx, tok); err != nil {
		t.Fatalf("original token: %v", err)
	}
}

// TestAlgorithmConfusion signs HS256 tokens with the RS256 signer's public
// key material as HMAC secret (RFC 8725 §2.1); none may verify.
func TestAlgorithmConfusion(t *testing.T) {
	ctx := context.Background()
	s, store, clk := storeSigner(t, RS256)
	real := mustSign(ctx, t, s, fullClaims(clk.Now()))
	kid := headerKID(t, real)
	der := store.get(kid).PublicKey
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	for _, secret := range [][]byte{der, pemBytes, s.JWKS()} {
		for _, alg := range []string{"HS256", "RS256"} {
			h := map[string]any{"alg": alg, "typ": "at+jwt", "kid": kid}
			tok := craft(t, h, validPayload(clk.Now()), hs256(secret))
			_, err := s.Verify(ctx, tok)
			wantRejected(t, err, "Invalid token")
		}
	}
	// alg none against an asymmetric signer.
	h := map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid}
	_, err := s.Verify(ctx, craft(t, h, validPayload(clk.Now()), nil))
	wantRejected(t, err, "Invalid token")

	// An HS256 signer does not accept the RS256 token, nor the reverse.
	hs := newTestSigner(t, testOptions(HS256, nil, clk))
	_, err = hs.Verify(ctx, real)
	wantRejected(t, err, "Invalid token")
	hsTok := mustSign(ctx, t, hs, fullClaims(clk.Now()))
	_, err = s.Verify(ctx, hsTok)
	wantRejected(t, err, "Invalid token")

	// A token of another RS256 key set, and one of an ES256 signer sharing
	// the store, are foreign.
	other := newTestSigner(t, testOptions(ES256, store, clk))
	esTok := mustSign(ctx, t, other, fullClaims(clk.Now()))
	_, err = s.Verify(ctx, esTok)
	wantRejected(t, err, "Invalid token")
	if len(store.all()) != 2 {
		t.Errorf("store has %d keys, want one RS256 and one ES256", len(store.all()))
	}
}

func TestPreviousSecrets(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	oldOpts := testOptions(HS256, nil, clk)
	oldOpts.Secret = testPrevious
	old := newTestSigner(t, oldOpts)
	oldTok := mustSign(ctx, t, old, fullClaims(clk.Now()))

	opts := testOptions(HS256, nil, clk)
	opts.PreviousSecrets = [][]byte{testPrevious}
	s := newTestSigner(t, opts)
	if _, err := s.Verify(ctx, oldTok); err != nil {
		t.Fatalf("token of the previous secret: %v", err)
	}
	newTok := mustSign(ctx, t, s, fullClaims(clk.Now()))
	if kid := headerKID(t, newTok); kid != hmacKID(testSecret) || kid == hmacKID(testPrevious) {
		t.Fatalf("new token kid = %s, want the current secret's", kid)
	}
	jws, err := jose.ParseSignedCompact(newTok, []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify(testSecret); err != nil {
		t.Errorf("new token does not verify with the current secret: %v", err)
	}
	if _, err := jws.Verify(testPrevious); err == nil {
		t.Error("new token verifies with the previous secret")
	}
	// The old signer, which does not know the new secret, rejects it.
	_, err = old.Verify(ctx, newTok)
	wantRejected(t, err, "Invalid token")
	// Without the previous secret, old tokens fail.
	plain := newTestSigner(t, testOptions(HS256, nil, clk))
	_, err = plain.Verify(ctx, oldTok)
	wantRejected(t, err, "Invalid token")
	// A previous secret's token with the current kid fails (the kid selects
	// the key; no other key is tried).
	h := validHeader()
	_, err = s.Verify(ctx, craft(t, h, validPayload(clk.Now()), hs256(testPrevious)))
	wantRejected(t, err, "Invalid token")

	if _, err := s.Rotate(ctx); permiso.ErrorCode(err) != permiso.EINVALID || !strings.Contains(err.Error(), "JWT_PREVIOUS_SECRET_KEYS") {
		t.Errorf("Rotate for HS256 = %v", err)
	}
	if err := s.Reload(ctx); err != nil {
		t.Errorf("Reload for HS256 = %v", err)
	}
}

// TestNextSecretsRollingRotation walks the two-phase rotation of
// docs/deployment.md over three configurations that coexist during the
// rolling restarts: before (old signs), phase 1 (old signs, new in
// NextSecrets), phase 2 (new signs, old in PreviousSecrets). Every pair
// that coexists accepts each other's tokens; only skipping phase 1 makes
// an instance refuse a token.
func TestNextSecretsRollingRotation(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	oldKey, newKey := testPrevious, testSecret

	beforeOpts := testOptions(HS256, nil, clk)
	beforeOpts.Secret = oldKey
	before := newTestSigner(t, beforeOpts)

	phase1Opts := testOptions(HS256, nil, clk)
	phase1Opts.Secret, phase1Opts.NextSecrets = oldKey, [][]byte{newKey}
	phase1 := newTestSigner(t, phase1Opts)

	phase2Opts := testOptions(HS256, nil, clk)
	phase2Opts.Secret, phase2Opts.PreviousSecrets = newKey, [][]byte{oldKey}
	phase2 := newTestSigner(t, phase2Opts)

	sign := func(s *Signer) string {
		t.Helper()
		tok := mustSign(ctx, t, s, fullClaims(clk.Now()))
		return tok
	}
	// A next secret never signs.
	if kid := headerKID(t, sign(phase1)); kid != hmacKID(oldKey) {
		t.Errorf("phase 1 signs with kid %s, want the current (old) secret's %s", kid, hmacKID(oldKey))
	}
	if kid := headerKID(t, sign(phase2)); kid != hmacKID(newKey) {
		t.Errorf("phase 2 signs with kid %s, want the new secret's %s", kid, hmacKID(newKey))
	}
	// Pairs that coexist during the restarts: before+phase 1 (first
	// rolling restart), phase 1+phase 2 (second rolling restart).
	for _, pair := range []struct {
		name string
		a, b *Signer
	}{{"before/phase 1", before, phase1}, {"phase 1/phase 2", phase1, phase2}} {
		for _, dir := range []struct {
			from, to *Signer
			what     string
		}{{pair.a, pair.b, "a->b"}, {pair.b, pair.a, "b->a"}} {
			if _, err := dir.to.Verify(ctx, sign(dir.from)); err != nil {
				t.Errorf("%s %s: token refused: %v", pair.name, dir.what, err)
			}
		}
	}
	// The one-step rotation (new key signs while another instance has not
	// heard of it) is what phase 1 prevents.
	_, err := before.Verify(ctx, sign(phase2))
	wantRejected(t, err, "Invalid token")
}

func TestHMACKIDDoesNotRevealSecret(t *testing.T) {
	kid := hmacKID(testSecret)
	if len(kid) != 11 || strings.Contains(string(testSecret), kid) {
		t.Errorf("kid = %q", kid)
	}
	if hmacKID(testSecret) != kid || hmacKID(testPrevious) == kid {
		t.Error("kid is not a stable function of the secret")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	cases := map[string]func(o *Options){
		"unsupported algorithm": func(o *Options) { o.Algorithm = "none" },
		"lower-case algorithm":  func(o *Options) { o.Algorithm = "hs256" },
		"PS256":                 func(o *Options) { o.Algorithm = "PS256" },
		"short secret":          func(o *Options) { o.Secret = []byte("short") },
		"empty previous secret": func(o *Options) { o.PreviousSecrets = [][]byte{nil} },
		"empty next secret":     func(o *Options) { o.NextSecrets = [][]byte{{}} },
		"no issuer":             func(o *Options) { o.Issuer = "" },
		"empty audience value":  func(o *Options) { o.Audience = []string{""} },
		"leeway too large":      func(o *Options) { o.Leeway = 10 * time.Minute },
		"negative lifetime":     func(o *Options) { o.MaxTokenLifetime = -time.Second },
		"RS256 without store":   func(o *Options) { o.Algorithm, o.Keys = RS256, nil },
		"ES256 without lifetime": func(o *Options) {
			o.Algorithm, o.Keys, o.MaxTokenLifetime = ES256, newFakeKeyStore(), 0
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			o := testOptions(HS256, nil, clk)
			mutate(&o)
			if _, err := New(ctx, o); err == nil {
				t.Fatal("New succeeded")
			}
		})
	}
}

func TestSignRejectsBadClaims(t *testing.T) {
	ctx := context.Background()
	s, clk := hs256Signer(t)
	cases := map[string]func(c *permiso.AccessClaims){
		"other issuer":       func(c *permiso.AccessClaims) { c.Issuer = "https://evil.example.com" },
		"foreign audience":   func(c *permiso.AccessClaims) { c.Audience = []string{"https://evil.example.com"} },
		"no subject":         func(c *permiso.AccessClaims) { c.Subject = "" },
		"refresh type":       func(c *permiso.AccessClaims) { c.Type = "refresh" },
		"no expiry":          func(c *permiso.AccessClaims) { c.ExpiresAt = time.Time{} },
		"expiry before iat":  func(c *permiso.AccessClaims) { c.ExpiresAt = c.IssuedAt.Add(-time.Minute) },
		"too long lifetime":  func(c *permiso.AccessClaims) { c.ExpiresAt = c.IssuedAt.Add(testLifetime + time.Second) },
		"scope with a space": func(c *permiso.AccessClaims) { c.Scopes = []string{"read profile"} },
		"empty scope":        func(c *permiso.AccessClaims) { c.Scopes = []string{""} },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			c := fullClaims(clk.Now())
			mutate(&c)
			if tok, err := s.Sign(ctx, c); err == nil {
				t.Fatalf("Sign succeeded: %s", tok)
			}
		})
	}
}

func TestLeewayOption(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	o := testOptions(HS256, nil, clk)
	o.Leeway = -1 // none
	s := newTestSigner(t, o)
	tok := mustSign(ctx, t, s, fullClaims(clk.Now()))
	clk.Advance(testLifetime)
	wantExpired(t, s, tok)
}

// TestIssueTimeToTheMillisecond: a token signed without a jti gets a
// UUIDv7 of its issue time (permiso.NewTokenID) while iat stays an integer
// number of seconds (RFC 7519 §2 NumericDate, what resource servers
// verifying with the shared secret read); Verify returns the issue time to
// the millisecond from that jti. A jti that is not a UUIDv7 of the iat
// second leaves the issue time at the iat second.
func TestIssueTimeToTheMillisecond(t *testing.T) {
	ctx := context.Background()
	s, clk := hs256Signer(t)
	issued := clk.Now().Truncate(time.Second).Add(734*time.Millisecond + 512*time.Microsecond)

	in := fullClaims(issued)
	in.ID = ""
	tok := mustSign(ctx, t, s, in)
	payload := decodeSegment(t, tok, 1)
	if got, want := string(payload["iat"]), jsonInt(issued.Unix()); got != want {
		t.Errorf("iat = %s, want the integer %s", got, want)
	}
	var jti string
	if err := json.Unmarshal(payload["jti"], &jti); err != nil {
		t.Fatal(err)
	}
	if got, want := permiso.TokenIssuedAt(jti, issued.Truncate(time.Second)), issued.Truncate(time.Millisecond); !got.Equal(want) {
		t.Errorf("jti %s carries %v, want %v", jti, got, want)
	}
	got, err := s.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if want := issued.Truncate(time.Millisecond); !got.IssuedAt.Equal(want) || got.IssuedAt.Location() != time.UTC {
		t.Errorf("Verify: IssuedAt = %v, want %v in UTC", got.IssuedAt, want)
	}

	// A jti of our own choosing that is not a UUIDv7 of that second.
	for _, id := range []string{"jti-0001", permiso.NewTokenID(issued.Add(-time.Second))} {
		in.ID = id
		tok, err = s.Sign(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		got, err = s.Verify(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		if want := issued.Truncate(time.Second); !got.IssuedAt.Equal(want) {
			t.Errorf("jti %q: IssuedAt = %v, want the iat second %v", id, got.IssuedAt, want)
		}
	}
}

package jwt

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/permiso/permiso"
)

// FuzzVerify checks that arbitrary strings never panic and never verify:
// only the exact tokens the signers issued do.
func FuzzVerify(f *testing.F) {
	ctx := context.Background()
	clk := newClock()
	hs := newTestSigner(f, testOptions(HS256, nil, clk))
	es := newTestSigner(f, testOptions(ES256, newFakeKeyStore(), clk))
	hsTok := mustSign(ctx, f, hs, fullClaims(clk.Now()))
	esTok := mustSign(ctx, f, es, fullClaims(clk.Now()))
	issued := map[string]bool{hsTok: true, esTok: true}
	for _, tok := range []string{hsTok, esTok} {
		parts := strings.Split(tok, ".")
		f.Add(parts[0] + "." + parts[1] + ".")
		f.Add(parts[0] + "." + parts[1] + "." + parts[2][1:])
		f.Add(tok + "=")
		f.Add(strings.ToUpper(tok))
	}
	f.Add("")
	f.Add("..")
	f.Add("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.e30.")
	f.Add(craft(f, map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": hmacKID(testSecret)}, validPayload(clk.Now()), nil))
	f.Fuzz(func(t *testing.T, s string) {
		for _, signer := range []*Signer{hs, es} {
			_, err := signer.Verify(ctx, s)
			if err == nil {
				if !issued[s] {
					t.Fatalf("Verify accepted %q", s)
				}
				continue
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "invalid_token: Invalid token") && !strings.HasPrefix(msg, "invalid_token: Token has expired") {
				t.Fatalf("unexpected error %v", err)
			}
		}
	})
}

func BenchmarkSignVerify(b *testing.B) {
	ctx := context.Background()
	for _, alg := range []string{HS256, ES256} {
		b.Run(alg, func(b *testing.B) {
			s, _, clk := storeSigner(b, alg)
			c := fullClaims(clk.Now())
			b.ReportAllocs()
			for b.Loop() {
				tok, err := s.Sign(ctx, c)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzVerifyIDTokenHint: only ID tokens the signer issued are accepted as
// id_token_hint; access tokens of the same key are not (typ), and nothing
// panics.
func FuzzVerifyIDTokenHint(f *testing.F) {
	ctx := context.Background()
	es, _, clk := storeSigner(f, ES256)
	now := clk.Now()
	idTok, err := es.SignIDToken(ctx, permiso.IDTokenClaims{Subject: "u1", Audience: []string{"rp"},
		IssuedAt: now, ExpiresAt: now.Add(time.Minute), SessionID: "s1", AccessToken: "at"})
	if err != nil {
		f.Fatal(err)
	}
	access := mustSign(ctx, f, es, fullClaims(now))
	f.Add(idTok)
	f.Add(access)
	parts := strings.Split(idTok, ".")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.e30.")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := es.VerifyIDTokenHint(ctx, s)
		if err == nil && s != idTok {
			t.Fatalf("VerifyIDTokenHint accepted %q", s)
		}
		if s == idTok && (err != nil || h.Subject != "u1" || h.SessionID != "s1" || len(h.Audience) != 1 || h.Audience[0] != "rp") {
			t.Fatalf("the issued ID token: %+v, %v", h, err)
		}
	})
}

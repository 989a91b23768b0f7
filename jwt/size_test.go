package jwt

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/permiso/permiso"
)

// TestSignRefusesTokensVerifyWouldRefuse: Sign issues no token longer than
// Verify reads (docs/security-model.md, "Token size"): with ever more long
// scopes, every token it issues verifies, and the first that would be too
// long is refused with a caller-safe validation error.
func TestSignRefusesTokensVerifyWouldRefuse(t *testing.T) {
	ctx := context.Background()
	es, _, _ := storeSigner(t, ES256)
	hs, _ := hs256Signer(t)
	for _, s := range []*Signer{hs, es} {
		t.Run(s.alg, func(t *testing.T) {
			c := fullClaims(newClock().Now())
			issued := 0
			for n := 1; n <= 400; n++ {
				c.Scopes = append(c.Scopes, fmt.Sprintf("abcdefghijklmnopqrst:r%03d%s", n, strings.Repeat("x", 46)))
				tok, err := s.Sign(ctx, c)
				if err != nil {
					if permiso.ErrorCode(err) != permiso.EINVALID {
						t.Fatalf("%d scopes: %v, want a validation error", len(c.Scopes), err)
					}
					if issued == 0 {
						t.Fatal("refused the first token")
					}
					t.Logf("%s: %d scopes issued, %d refused", s.alg, issued, len(c.Scopes))
					return
				}
				if len(tok) > maxTokenLength {
					t.Fatalf("%d scopes: issued a token of %d bytes", len(c.Scopes), len(tok))
				}
				if _, err := s.Verify(ctx, tok); err != nil {
					t.Fatalf("%d scopes: the issued token (%d bytes) does not verify: %v", len(c.Scopes), len(tok), err)
				}
				issued = len(c.Scopes)
			}
			t.Fatal("400 long scopes fit in a token: the bound is not reached")
		})
	}
}

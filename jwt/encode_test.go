package jwt

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/permiso/permiso"
)

// TestAppendJSONIsMarshal holds claims.appendJSON, the payload encoder of
// Sign, to the bytes json.Marshal writes, for claims with every field,
// with none of the optional ones, and with strings json.Marshal escapes.
func TestAppendJSONIsMarshal(t *testing.T) {
	now := newClock().Now()
	full := fullClaims(now)
	sparse := permiso.AccessClaims{Issuer: testIssuer, Subject: "svc", Type: permiso.TokenTypeService, ID: "j"}
	odd := fullClaims(now)
	odd.Username = "a<b>&c\"d\\e\u2028f\x01g\ufffdé😀\xff"
	odd.Email = "<script>@example.com"
	odd.Audience = []string{"x", "é", ""}
	odd.Roles = []string{"\t", "r"}
	empty := fullClaims(now)
	empty.Scopes, empty.AMR, empty.Roles = nil, []string{}, []string{}
	for name, c := range map[string]permiso.AccessClaims{"full": full, "sparse": sparse, "odd": odd, "empty": empty} {
		t.Run(name, func(t *testing.T) { wantSameJSON(t, newClaims(c)) })
	}
	// nil lists that newClaims never leaves nil are written as
	// json.Marshal writes them too.
	wantSameJSON(t, &claims{})
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("alice", "alice@example.com", "read:profile")
	f.Add("<&>", "\u2028\u2029", "\x00\x7f\xff")
	f.Fuzz(func(t *testing.T, user, email, scope string) {
		c := fullClaims(newClock().Now())
		c.Username, c.Email, c.ClientID = user, email, scope
		c.Roles = []string{scope, user}
		wantSameJSON(t, newClaims(c))
	})
}

func wantSameJSON(t *testing.T, c *claims) {
	t.Helper()
	want, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.appendJSON(nil); !bytes.Equal(got, want) {
		t.Fatalf("appendJSON\n got %s\nwant %s", got, want)
	}
}

// TestSignIsSignedString: Sign writes the very token gojwt's SignedString
// writes for the same claims and key (deterministic signatures: HS256,
// EdDSA), so the cached header and appendJSON change nothing on the wire.
func TestSignIsSignedString(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	for _, s := range []*Signer{
		newTestSigner(t, testOptions(HS256, nil, clk)),
		newTestSigner(t, testOptions(EdDSA, newFakeKeyStore(), clk)),
	} {
		t.Run(s.alg, func(t *testing.T) {
			c := fullClaims(clk.Now())
			got, err := s.Sign(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			k := s.keySet().current
			tok := gojwt.NewWithClaims(s.method, newClaims(c))
			tok.Header["typ"] = HeaderType
			tok.Header["kid"] = k.kid
			want, err := tok.SignedString(k.signing)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("Sign\n got %s\nwant %s", got, want)
			}
			if _, err := s.Verify(ctx, got); err != nil {
				t.Fatal(err)
			}
		})
	}
}

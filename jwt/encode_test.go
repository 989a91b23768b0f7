package jwt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/jsonappend/jsonappendtest"
)

// TestAppendJSONIsMarshal holds claims.appendJSON, the payload encoder of
// Sign, to the bytes json.Marshal writes, for claims with every field,
// with none of the optional ones, and with strings json.Marshal escapes.
func TestAppendJSONIsMarshal(t *testing.T) {
	now := newClock().Now()
	full := fullClaims(now)
	sparse := permiso.AccessClaims{Issuer: testIssuer, Subject: "svc", Type: permiso.TokenTypeService, ID: "j"}
	odd := fullClaims(now)
	odd.Username = jsonappendtest.Odd
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
	jsonappendtest.Same(t, c, (*claims).appendJSON)
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
			got := mustSign(ctx, t, s, c)
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

// TestClaimDecodingAsJSON: the date and audience claims decode as
// json.Unmarshal decodes them (the fast paths of UnmarshalJSON change
// nothing), for numbers, out-of-range numbers and values of other types.
func TestClaimDecodingAsJSON(t *testing.T) {
	for _, in := range []string{`0`, `-1`, `1.5`, `1e3`, `1E+3`, `-0`, `1e400`, `-1e400`, `1e12`, `1700000000.999`,
		`"1"`, `true`, `{}`, `[1]`} {
		var got numericDate
		gotErr := got.UnmarshalJSON([]byte(in))
		want, wantErr := dateAsBefore([]byte(in))
		if (gotErr == nil) != (wantErr == nil) || !got.t.Equal(want) {
			t.Errorf("date %s: %v, %v; want %v, %v", in, got.t, gotErr, want, wantErr)
		}
	}
	for _, in := range []string{`"a"`, `["a","b"]`, `[]`, `null`, `1`, `{}`, `["a",1]`, `[null]`, `"\u00e9"`} {
		var got audience
		gotErr := got.UnmarshalJSON([]byte(in))
		var one string
		var many []string
		want, ok := audience(nil), false
		switch {
		case in == "null":
			ok = true
		case json.Unmarshal([]byte(in), &one) == nil:
			want, ok = audience{one}, true
		case json.Unmarshal([]byte(in), &many) == nil:
			want, ok = audience(many), true
		}
		if (gotErr == nil) != ok || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("aud %s: %q, %v; want %q (ok %v)", in, got, gotErr, want, ok)
		}
	}
}

// dateAsBefore is numericDate.UnmarshalJSON as it was, through
// json.Unmarshal alone.
func dateAsBefore(b []byte) (time.Time, error) {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return time.Time{}, err
	}
	if math.IsNaN(f) || math.Abs(f) > maxNumericDate {
		return time.Time{}, errors.New("date claim out of range")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

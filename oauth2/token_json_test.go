package oauth2

import (
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/jsonappend/jsonappendtest"
)

// TestTokenResponseAppendJSONIsMarshal holds TokenResponse.AppendJSON, the
// encoder of every token answer (RFC 6749 §5.1), to the bytes json.Marshal
// writes: a client-credentials answer (no refresh token, RFC 6749 §4.4.3),
// every member set, empty members omitted, strings json.Marshal escapes,
// and RateLimit, which is never part of the body.
func TestTokenResponseAppendJSONIsMarshal(t *testing.T) {
	odd := jsonappendtest.Odd
	jsonappendtest.IsMarshal(t, map[string]TokenResponse{
		"empty": {},
		"client credentials": {AccessToken: "eyJhbGciOiJIUzI1NiJ9.e30.c2ln", TokenType: "Bearer", ExpiresIn: 3600,
			Scope: "read:users write:users", RateLimit: &permiso.LimitResult{Allowed: true, Limit: 1000, Remaining: 7, Reset: time.Second}},
		"full": {AccessToken: "a.b.c", TokenType: "Bearer", ExpiresIn: 900, Scope: "openid profile",
			RefreshToken: "r", SessionID: "0b1f7a2e-0000-4000-8000-000000000000", IDToken: "i.d.t"},
		"negative":        {AccessToken: "a", TokenType: "Bearer", ExpiresIn: -1},
		"odd":             {AccessToken: odd, TokenType: odd, Scope: odd, RefreshToken: odd, SessionID: odd, IDToken: odd},
		"no scope at all": {AccessToken: "a", TokenType: "Bearer", ExpiresIn: 60},
	}, TokenResponse.AppendJSON)
}

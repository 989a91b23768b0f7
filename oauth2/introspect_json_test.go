package oauth2

import (
	"testing"

	"github.com/permiso/permiso/internal/jsonappend/jsonappendtest"
)

// TestIntrospectionAppendJSONIsMarshal holds Introspection.AppendJSON, the
// encoder of every introspection answer (RFC 7662 §2.2), to the bytes
// json.Marshal writes: inactive (only "active"), every member set, and
// strings json.Marshal escapes.
func TestIntrospectionAppendJSONIsMarshal(t *testing.T) {
	odd := jsonappendtest.Odd
	jsonappendtest.IsMarshal(t, map[string]Introspection{
		"inactive": {},
		"full": {Active: true, Scope: "read:profile write:profile", ClientID: "client-1", Username: "alice",
			TokenType: "access_token", Exp: 1765000000, Iat: 1764999000, Nbf: -1, Sub: "0b1f7a2e",
			Aud: []string{"permiso", "other"}, Iss: "https://auth.example.com", Jti: "j", Sid: "s"},
		"odd":       {Active: true, Scope: odd, Username: odd, Sub: odd, Aud: []string{odd, ""}, Iss: odd},
		"empty aud": {Active: true, Aud: []string{}},
	}, Introspection.AppendJSON)
}

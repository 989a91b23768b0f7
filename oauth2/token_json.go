package oauth2

import "github.com/permiso/permiso/internal/jsonappend"

// AppendJSON appends the bytes json.Marshal writes for r, without
// reflection: every token answer (RFC 6749 §5.1) is encoded by it
// (TestTokenResponseAppendJSONIsMarshal holds the two equal). RateLimit is
// not part of the body.
func (r TokenResponse) AppendJSON(b []byte) []byte {
	b = jsonappend.StringField(b, `{"access_token":`, r.AccessToken, false)
	b = jsonappend.StringField(b, `,"token_type":`, r.TokenType, false)
	b = jsonappend.IntField(b, `,"expires_in":`, int64(r.ExpiresIn), false)
	b = jsonappend.StringField(b, `,"scope":`, r.Scope, true)
	b = jsonappend.StringField(b, `,"refresh_token":`, r.RefreshToken, true)
	b = jsonappend.StringField(b, `,"session_id":`, r.SessionID, true)
	b = jsonappend.StringField(b, `,"id_token":`, r.IDToken, true)
	return append(b, '}')
}

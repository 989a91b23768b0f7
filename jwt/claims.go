package jwt

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/jsonappend"
)

// claims is the JSON payload of an access token (RFC 9068 §2.2 plus the
// original service's claims, docs/oauth.md). Field order, and so the encoding, is
// fixed by the struct.
type claims struct {
	Issuer      string       `json:"iss"`
	Subject     string       `json:"sub"`
	Audience    audience     `json:"aud"`
	ExpiresAt   *numericDate `json:"exp,omitempty"`
	IssuedAt    *numericDate `json:"iat,omitempty"`
	NotBefore   *numericDate `json:"nbf,omitempty"`
	ID          string       `json:"jti"`
	ClientID    string       `json:"client_id,omitempty"`
	Scope       string       `json:"scope,omitempty"`
	Scopes      []string     `json:"scopes"`
	Type        string       `json:"type"`
	SessionID   string       `json:"sid,omitempty"`
	AMR         []string     `json:"amr,omitempty"` // RFC 8176 methods of the session's sign-in (RFC 9068 §2.2.3.1)
	Roles       []string     `json:"roles,omitempty"`
	Username    string       `json:"username"`
	Email       string       `json:"email,omitempty"`
	IsSuperuser *bool        `json:"is_superuser,omitempty"`
	IsTrusted   *bool        `json:"is_trusted,omitempty"`
}

var _ gojwt.ClaimsValidator = (*claims)(nil)

// newClaims converts domain claims to their JSON form. Times are truncated
// to whole seconds: NumericDate is written as an integer (RFC 7519 §2).
func newClaims(c permiso.AccessClaims) *claims {
	scopes := c.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return &claims{
		Issuer:      c.Issuer,
		Subject:     c.Subject,
		Audience:    audience(c.Audience),
		ExpiresAt:   newNumericDate(c.ExpiresAt),
		IssuedAt:    newNumericDate(c.IssuedAt),
		NotBefore:   newNumericDate(c.NotBefore),
		ID:          c.ID,
		ClientID:    c.ClientID,
		Scope:       strings.Join(c.Scopes, " "),
		Scopes:      scopes,
		Type:        c.Type,
		SessionID:   c.SessionID,
		AMR:         c.AMR,
		Roles:       c.Roles,
		Username:    c.Username,
		Email:       c.Email,
		IsSuperuser: c.IsSuperuser,
		IsTrusted:   c.IsTrusted,
	}
}

// accessClaims converts verified claims to the domain form, in UTC. Empty
// lists are nil. IssuedAt is permiso.TokenIssuedAt(jti, iat): to the
// millisecond when the jti is a UUIDv7 of the iat second, else iat. The scopes array is authoritative; a token with only the
// RFC 9068 "scope" string has its scopes split from it.
func (c *claims) accessClaims() permiso.AccessClaims {
	scopes := c.Scopes
	if scopes == nil {
		scopes = strings.Fields(c.Scope)
	}
	out := permiso.AccessClaims{
		Issuer:      c.Issuer,
		Subject:     c.Subject,
		Audience:    nilIfEmpty([]string(c.Audience)),
		ExpiresAt:   c.ExpiresAt.time(),
		IssuedAt:    permiso.TokenIssuedAt(c.ID, c.IssuedAt.time()),
		NotBefore:   c.NotBefore.time(),
		ID:          c.ID,
		ClientID:    c.ClientID,
		Scopes:      nilIfEmpty(scopes),
		Type:        c.Type,
		SessionID:   c.SessionID,
		AMR:         nilIfEmpty(c.AMR),
		Roles:       nilIfEmpty(c.Roles),
		Username:    c.Username,
		Email:       c.Email,
		IsSuperuser: c.IsSuperuser,
		IsTrusted:   c.IsTrusted,
	}
	return out
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// Validate implements [gojwt.ClaimsValidator]. It runs after the signature
// and the registered claims have been checked, and requires what the
// library leaves optional: iat and jti (RFC 9068 §2.2), sub, and a token
// kind that is a bearer token ("access" or "service"; docs/oauth.md).
func (c *claims) Validate() error {
	switch {
	case c.IssuedAt == nil:
		return errors.New("iat claim is required")
	case c.ID == "":
		return errors.New("jti claim is required")
	case c.Subject == "":
		return errors.New("sub claim is required")
	case c.Type != permiso.TokenTypeAccess && c.Type != permiso.TokenTypeService:
		return errors.New("type claim is not a bearer token kind")
	}
	return nil
}

// GetExpirationTime implements [gojwt.Claims].
func (c *claims) GetExpirationTime() (*gojwt.NumericDate, error) {
	return c.ExpiresAt.jwt(), nil
}

// GetIssuedAt implements [gojwt.Claims].
func (c *claims) GetIssuedAt() (*gojwt.NumericDate, error) { return c.IssuedAt.jwt(), nil }

// GetNotBefore implements [gojwt.Claims].
func (c *claims) GetNotBefore() (*gojwt.NumericDate, error) { return c.NotBefore.jwt(), nil }

// GetIssuer implements [gojwt.Claims].
func (c *claims) GetIssuer() (string, error) { return c.Issuer, nil }

// GetSubject implements [gojwt.Claims].
func (c *claims) GetSubject() (string, error) { return c.Subject, nil }

// GetAudience implements [gojwt.Claims].
func (c *claims) GetAudience() (gojwt.ClaimStrings, error) {
	return gojwt.ClaimStrings(c.Audience), nil
}

// audience is the "aud" claim. It is always written as an array; when read,
// a single string is accepted too (RFC 7519 §4.1.3).
type audience []string

// UnmarshalJSON accepts a string or an array of strings. An array (what
// Sign writes) is decoded as one at once: it can never be a string.
func (a *audience) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*a = nil
		return nil
	}
	var one string
	if len(b) > 0 && b[0] != '[' && json.Unmarshal(b, &one) == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("aud claim must be a string or an array of strings")
	}
	*a = many
	return nil
}

// numericDate is a NumericDate (RFC 7519 §2): seconds since the epoch. It
// is written as an integer, independently of the golang-jwt package's
// global TimePrecision, and read from any JSON number.
type numericDate struct{ t time.Time }

func newNumericDate(t time.Time) *numericDate {
	if t.IsZero() {
		return nil
	}
	return &numericDate{t.Truncate(time.Second).UTC()}
}

// MarshalJSON writes whole seconds.
func (d numericDate) MarshalJSON() ([]byte, error) {
	return strconv.AppendInt(nil, d.t.Unix(), 10), nil
}

// maxNumericDate bounds accepted dates (year ~33658) so that conversions
// cannot overflow.
const maxNumericDate = 1e12

// UnmarshalJSON reads a JSON number (not a string). The decoder has
// checked b's grammar: a number is read with strconv.ParseFloat, as
// encoding/json reads one into a float64, anything else goes through
// json.Unmarshal (and fails the same way as before).
func (d *numericDate) UnmarshalJSON(b []byte) error {
	var f float64
	var err error
	if len(b) > 0 && (b[0] == '-' || '0' <= b[0] && b[0] <= '9') {
		f, err = strconv.ParseFloat(string(b), 64)
	} else {
		err = json.Unmarshal(b, &f)
	}
	if err != nil {
		return errors.New("date claim must be a number")
	}
	if math.IsNaN(f) || math.Abs(f) > maxNumericDate {
		return errors.New("date claim out of range")
	}
	sec, frac := math.Modf(f)
	d.t = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	return nil
}

func (d *numericDate) time() time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.t
}

func (d *numericDate) jwt() *gojwt.NumericDate {
	if d == nil {
		return nil
	}
	return &gojwt.NumericDate{Time: d.t}
}

// appendJSON appends the JSON encoding of c to b: the bytes json.Marshal
// writes for c (fields in struct order, the same omitempty rules, the same
// string escaping), without reflection, since every issued token pays for
// it. TestAppendJSONIsMarshal holds the two equal.
func (c *claims) appendJSON(b []byte) []byte {
	b = jsonappend.StringField(b, `{"iss":`, c.Issuer, false)
	b = jsonappend.StringField(b, `,"sub":`, c.Subject, false)
	b = jsonappend.StringsField(b, `,"aud":`, c.Audience, false)
	b = appendNumericDate(b, `,"exp":`, c.ExpiresAt)
	b = appendNumericDate(b, `,"iat":`, c.IssuedAt)
	b = appendNumericDate(b, `,"nbf":`, c.NotBefore)
	b = jsonappend.StringField(b, `,"jti":`, c.ID, false)
	b = jsonappend.StringField(b, `,"client_id":`, c.ClientID, true)
	b = jsonappend.StringField(b, `,"scope":`, c.Scope, true)
	b = jsonappend.StringsField(b, `,"scopes":`, c.Scopes, false)
	b = jsonappend.StringField(b, `,"type":`, c.Type, false)
	b = jsonappend.StringField(b, `,"sid":`, c.SessionID, true)
	b = jsonappend.StringsField(b, `,"amr":`, c.AMR, true)
	b = jsonappend.StringsField(b, `,"roles":`, c.Roles, true)
	b = jsonappend.StringField(b, `,"username":`, c.Username, false)
	b = jsonappend.StringField(b, `,"email":`, c.Email, true)
	b = appendBoolField(b, `,"is_superuser":`, c.IsSuperuser)
	b = appendBoolField(b, `,"is_trusted":`, c.IsTrusted)
	return append(b, '}')
}

// appendBoolField appends name and *v, or nothing when v is nil.
func appendBoolField(b []byte, name string, v *bool) []byte {
	if v == nil {
		return b
	}
	return strconv.AppendBool(append(b, name...), *v)
}

func appendNumericDate(b []byte, name string, d *numericDate) []byte {
	if d == nil {
		return b
	}
	return strconv.AppendInt(append(b, name...), d.t.Unix(), 10)
}

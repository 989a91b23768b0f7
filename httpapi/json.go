package httpapi

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// errTooLarge is the error for a request body over Options.MaxBodyBytes.
var errTooLarge = permiso.Errorf(codeTooLarge, "Request body too large")

// decodeJSON decodes the request body, a single JSON value, into v.
// Unknown object fields are ignored (docs/api.md). Every failure is a caller
// error ready for writeError: 413 request_too_large when the body exceeds
// the limit, 422 validation_error (with details) when the body is empty,
// malformed, has trailing data or has a value of the wrong type, or holds
// a string that is not valid Unicode (jsonUnicode).
func decodeJSON(r *http.Request, v any) error {
	if r.Body == nil || r.Body == http.NoBody {
		return permiso.Invalid("Request body is required",
			permiso.FieldError{Field: "body", Message: "a JSON body is required"})
	}
	body, err := readBody(r, nil)
	if err != nil {
		return bodyError(err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	// Exactly one value: anything but whitespace after it is an error.
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err == nil:
		return permiso.Invalid("Request body must be a single JSON value",
			permiso.FieldError{Field: "body", Message: "unexpected data after the JSON value"})
	default:
		return bodyError(err)
	}
	if !jsonUnicode(body) {
		return errNotUnicode
	}
	return nil
}

// errNotUnicode is the answer to a JSON body holding a string that is not
// valid Unicode (docs/security-model.md, "Untrusted bytes"): the same
// 422 as for malformed JSON.
var errNotUnicode = permiso.Invalid("Malformed JSON",
	permiso.FieldError{Field: "body", Message: "a string is not valid Unicode (invalid UTF-8 or an unpaired surrogate escape)"})

// jsonUnicode reports whether every string of the JSON text b is valid
// Unicode as sent: b is valid UTF-8 and no \u escape is one half of a
// UTF-16 surrogate pair without the other (RFC 8259 §8.2). encoding/json
// would silently turn either into U+FFFD, so the value stored would not
// be the one sent. b is a JSON text the decoder accepted (or, where it is
// not, the decoder's error follows): a backslash is then always inside a
// string and starts an escape.
func jsonUnicode(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for {
		i := bytes.IndexByte(b, '\\')
		if i < 0 || i+1 >= len(b) {
			return true
		}
		if b[i+1] != 'u' {
			b = b[i+2:] // a one-character escape, \\ included
			continue
		}
		r, ok := hex4(b[i+2:])
		b = b[i+2:]
		switch {
		case !ok:
		case utf16.IsSurrogate(r) && r < 0xdc00: // a high half: a low one must follow
			if len(b) < 10 || b[4] != '\\' || b[5] != 'u' {
				return false
			}
			low, ok := hex4(b[6:])
			if !ok || low < 0xdc00 || low > 0xdfff {
				return false
			}
			b = b[10:]
		case utf16.IsSurrogate(r): // a low half alone
			return false
		}
	}
}

// hex4 reads the four hexadecimal digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// bodyError turns an error from reading or decoding a request body into a
// caller error. Form parsing (r.ParseForm) can use it as well.
func bodyError(err error) error {
	var (
		maxErr    *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		invalid   *json.InvalidUnmarshalError
	)
	switch {
	case errors.As(err, &maxErr):
		return errTooLarge
	case errors.Is(err, io.EOF):
		return permiso.Invalid("Request body is required",
			permiso.FieldError{Field: "body", Message: "a JSON body is required"})
	case errors.As(err, &syntaxErr):
		return permiso.Invalid("Malformed JSON",
			permiso.FieldError{Field: "body", Message: fmt.Sprintf("malformed JSON at offset %d", syntaxErr.Offset)})
	case errors.Is(err, io.ErrUnexpectedEOF):
		return permiso.Invalid("Malformed JSON",
			permiso.FieldError{Field: "body", Message: "unexpected end of JSON"})
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return permiso.Invalid("Request validation failed",
			permiso.FieldError{Field: field, Message: "must be of type " + jsonTypeName(typeErr)})
	case errors.As(err, &invalid):
		// A programming error: v is not a non-nil pointer.
		return err
	default:
		// Reading the body failed (client went away, bad chunking).
		return permiso.Wrap(permiso.EINVALID, "Could not read request body", err)
	}
}

func jsonTypeName(e *json.UnmarshalTypeError) string {
	if e.Type == nil {
		return "a different type"
	}
	switch e.Type.Kind().String() {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "integer"
	case "float32", "float64":
		return "number"
	case "slice", "array":
		return "array"
	case "map", "struct":
		return "object"
	}
	return e.Type.String()
}

// timestamp formats t as RFC 3339 in UTC with a "Z" suffix, the format of
// every time value in responses (docs/api.md: RFC 3339 UTC with Z).
func timestamp(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// appendTimestamp appends timestamp(t) as a JSON string (its characters
// need no escaping) without making the string.
func appendTimestamp(b []byte, t time.Time) []byte {
	b = t.UTC().AppendFormat(append(b, '"'), time.RFC3339Nano)
	return append(b, '"')
}

// appendUUID appends id.String() as a JSON string (hexadecimal digits and
// hyphens) without making the string.
func appendUUID(b []byte, id uuid.UUID) []byte {
	b = append(b, '"')
	b = hex.AppendEncode(b, id[:4])
	b = hex.AppendEncode(append(b, '-'), id[4:6])
	b = hex.AppendEncode(append(b, '-'), id[6:8])
	b = hex.AppendEncode(append(b, '-'), id[8:10])
	b = hex.AppendEncode(append(b, '-'), id[10:])
	return append(b, '"')
}

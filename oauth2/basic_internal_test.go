package oauth2

import (
	"encoding/base64"
	"strings"
	"testing"
)

// decodeBasicCases are Basic credentials around the bound of the stack
// buffers (basicOnStack), padded and not, and malformed ones.
var decodeBasicCases = []string{
	"", "=", "====", "YQ", "YQ=", "YQ==", "YWI=", "YWJj", "Y W J j", "YWJj\n", "????", "YWJj====",
	base64.StdEncoding.EncodeToString([]byte("hot-client:" + strings.Repeat("s", 43))),
	strings.Repeat("A", basicOnStack-4) + "YQ==",
	strings.Repeat("A", basicOnStack),
	strings.Repeat("A", basicOnStack-1) + "=",
	strings.Repeat("A", basicOnStack+4),
	strings.Repeat("A", basicOnStack+1),
}

// TestDecodeBasicIsDecodeString holds decodeBasic to what it replaces,
// on both sides of basicOnStack.
func TestDecodeBasicIsDecodeString(t *testing.T) {
	for _, s := range decodeBasicCases {
		sameAsDecodeString(t, s)
	}
}

func FuzzDecodeBasic(f *testing.F) {
	for _, s := range decodeBasicCases {
		f.Add(s)
	}
	f.Fuzz(sameAsDecodeString)
}

func sameAsDecodeString(t *testing.T, s string) {
	t.Helper()
	got, err := decodeBasic(s)
	raw, wantErr := base64.StdEncoding.DecodeString(s)
	if (err != nil) != (wantErr != nil) || err == nil && got != string(raw) {
		t.Fatalf("decodeBasic(%q) = %q, %v; DecodeString gives %q, %v", s, got, err, raw, wantErr)
	}
}

package permiso_test

import (
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/permiso/permiso"
)

func TestRedirectURIProblem(t *testing.T) {
	ok := []string{
		"https://app.example.com/callback",
		"https://app.example.com:8443/cb?x=1",
		"http://127.0.0.1:53123/callback", // RFC 8252 §7.3
		"http://[::1]:8080/cb",
		"https://app.example.com:65535/cb",
	}
	bad := []string{
		"",
		"/relative",
		"app.example.com/cb",
		"http://app.example.com/cb",       // http off loopback
		"http://localhost:8080/cb",        // RFC 8252 §8.3
		"https://app.example.com/cb#x",    // fragment, RFC 6749 §3.1.2
		"https://app.example.com/cb#",     // empty fragment
		"https://*.example.com/cb",        // wildcard
		"https://user:pw@example.com/",    // user information
		"javascript:alert(1)",             // not http(s)
		"com.example.app:/oauth2redirect", // private-use schemes: not supported yet
		"https://app.example.com/a b",
		"https://app.example.com/\x00",
		"https://" + strings.Repeat("a", permiso.MaxRedirectURILength) + ".com/",
		// Only 127.0.0.1 and [::1] as loopback (RFC 8252 §7.3, docs/oidc.md).
		"http://127.0.0.2/cb",
		"http://127.9.9.9/cb",
		"http://[::ffff:127.0.0.1]:9/cb",
		"http://[0:0:0:0:0:0:0:1]/cb",
		"http://[::1%25lo]/cb",
		"http://2130706433/cb",
		// The canonical form exact matching compares.
		"https://example.com:99999/cb",
		"https://example.com:0/cb",
		"https://example.com:080/cb",
		"HTTPS://example.com/cb",
		"https://EXAMPLE.COM/cb",
		"Http://127.0.0.1/cb",
		"https://example.com/a\\b",
		"https://example.com\\@evil.com/cb",
	}
	for _, u := range ok {
		if p := permiso.RedirectURIProblem(u); p != "" {
			t.Errorf("RedirectURIProblem(%q) = %q, want none", u, p)
		}
	}
	for _, u := range bad {
		if permiso.RedirectURIProblem(u) == "" {
			t.Errorf("RedirectURIProblem(%q) accepted it", u)
		}
	}
}

func TestHasRedirectURIIsExact(t *testing.T) {
	c := permiso.ServiceClient{RedirectURIs: []string{"https://app.example.com/cb"}}
	for uri, want := range map[string]bool{
		"https://app.example.com/cb":       true,
		"https://app.example.com/cb/":      false,
		"https://app.example.com/cb?x=1":   false,
		"https://APP.example.com/cb":       false,
		"https://app.example.com:443/cb":   false,
		"https://app.example.com/cb/../cb": false,
		"https://app.example.com/cb#":      false,
		"":                                 false,
		"https://app.example.com/cbextra":  false,
		"https://app.example.com.evil/cb":  false,
	} {
		if got := c.HasRedirectURI(uri); got != want {
			t.Errorf("HasRedirectURI(%q) = %v, want %v", uri, got, want)
		}
	}
}

func TestVerifyPKCE(t *testing.T) {
	// RFC 7636 Appendix B.
	const appendixB = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	if got := permiso.S256Challenge(appendixB); got != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Fatalf("S256Challenge(RFC 7636 Appendix B) = %s", got)
	}
	challenge := permiso.S256Challenge(appendixB)
	for _, tc := range []struct {
		name, challenge, verifier string
		want                      bool
	}{
		{"match", challenge, appendixB, true},
		{"wrong verifier", challenge, appendixB[:42] + "x", false},
		{"plain (challenge = verifier) refused", appendixB, appendixB, false},
		{"short verifier", permiso.S256Challenge("abc"), "abc", false},
		{"verifier with a space", permiso.S256Challenge(appendixB[:42] + " "), appendixB[:42] + " ", false},
		{"long verifier", permiso.S256Challenge(strings.Repeat("a", 129)), strings.Repeat("a", 129), false},
		{"empty", "", "", false},
		{"challenge not base64url", strings.Repeat("!", 43), appendixB, false},
	} {
		if got := permiso.VerifyPKCE(tc.challenge, tc.verifier); got != tc.want {
			t.Errorf("%s: VerifyPKCE = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// FuzzRedirectURIProblem: any accepted redirect URI is an absolute http(s)
// URL without fragment, user information, wildcard or whitespace, and
// http only on a loopback address.
func FuzzRedirectURIProblem(f *testing.F) {
	for _, s := range []string{"https://a.example/cb", "http://127.0.0.1:8080/cb", "http://[::1]/", "http://localhost/",
		"https://a.example/cb#x", "https://u@a.example/", "https://*.a.example/", "javascript:x", "", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if permiso.RedirectURIProblem(s) != "" {
			return
		}
		u, err := url.Parse(s)
		if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || strings.ContainsAny(s, "# \t\r\n*") {
			t.Fatalf("accepted %q", s)
		}
		if u.Scheme != "https" {
			ip := net.ParseIP(u.Hostname())
			if u.Scheme != "http" || ip == nil || !ip.IsLoopback() {
				t.Fatalf("accepted %q", s)
			}
		}
	})
}

// FuzzVerifyPKCE: only the verifier whose S256 hash is the challenge
// matches.
func FuzzVerifyPKCE(f *testing.F) {
	f.Add("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, verifier, challenge string) {
		if permiso.VerifyPKCE(challenge, verifier) && permiso.S256Challenge(verifier) != challenge {
			t.Fatalf("verifier %q matched challenge %q", verifier, challenge)
		}
		if permiso.ValidCodeVerifier(verifier) && !permiso.VerifyPKCE(permiso.S256Challenge(verifier), verifier) {
			t.Fatalf("verifier %q does not match its own challenge", verifier)
		}
	})
}

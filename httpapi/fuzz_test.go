package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/permiso/permiso"
)

// FuzzClientAddr checks the X-Forwarded-For / X-Real-IP parser: it never
// panics, an untrusted peer always wins, and any other answer is the peer
// or a valid address that appears in the headers.
func FuzzClientAddr(f *testing.F) {
	f.Add("127.0.0.1:1", "1.2.3.4, 198.51.100.7, 10.0.0.9", "", "203.0.113.1")
	f.Add("[::1]:1", "[2001:db8::1]:443,garbage", "x", "::ffff:1.2.3.4")
	f.Add("203.0.113.9:5555", "127.0.0.1", "10.0.0.1", "")
	f.Add("10.0.0.1:1", ",,, ,", "", "fe80::1%eth0")
	trusted := []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("10.0.0.0/8"),
	}
	f.Fuzz(func(t *testing.T, remote, xff1, xff2, realIP string) {
		peer := parseHostAddr(remote)
		peerTrusted := isTrusted(trusted, peer)
		var xff []string
		for _, v := range []string{xff1, xff2} {
			if v != "" {
				xff = append(xff, v)
			}
		}
		got := clientAddr(trusted, peer, peerTrusted, xff, realIP)
		if !peerTrusted {
			if got != peer {
				t.Fatalf("untrusted peer %v, got %v", peer, got)
			}
			return
		}
		if got == peer {
			return
		}
		if !got.IsValid() || got.Zone() != "" || got.Is4In6() {
			t.Fatalf("got invalid or non-canonical address %v", got)
		}
		// The answer must be one of the header entries.
		found := parseHeaderAddr(realIP) == got
		for _, e := range strings.Split(strings.Join(xff, ","), ",") {
			if parseHeaderAddr(e) == got {
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("address %v not in the headers %q / %q", got, xff, realIP)
		}
	})
}

// FuzzDecodeJSON checks that any body gives either success or a 4xx
// caller error, never a panic or an internal error.
func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"name":"a","count":1}`))
	f.Add([]byte(`{"name":1}`))
	f.Add([]byte(`[`))
	f.Add([]byte(``))
	f.Add([]byte(`{"name":"a"} x`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(bytes.NewReader(body)), 256)
		var v echoRequest
		err := decodeJSON(r, &v)
		if err == nil {
			return
		}
		code := permiso.ErrorCode(err)
		if code != permiso.EINVALID && code != codeTooLarge {
			t.Fatalf("decodeJSON(%q) = %v (code %q)", body, err, code)
		}
	})
}

// FuzzWholeQuery checks the query-string rule (query.go): a query string
// that url.ParseQuery cannot parse whole is 400 bad_request, any other
// reaches the route; nothing else happens.
func FuzzWholeQuery(f *testing.F) {
	for _, q := range []string{"", "a=1&b=2", "search=%zz", "a=1;b=2", "a" + strings.Repeat("&a", 10_000), "%", "a=%ff%00", "&&=&"} {
		f.Add(q)
	}
	h := NewServer(Deps{Options: testOptions()})
	f.Fuzz(func(t *testing.T, q string) {
		r := httptest.NewRequest(http.MethodGet, "/health/live", nil)
		r.URL.RawQuery = q
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		_, err := url.ParseQuery(q)
		switch {
		case err == nil && w.Code != http.StatusOK:
			t.Fatalf("query %q parses, but the answer is %d: %s", q, w.Code, w.Body)
		case err != nil && (w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"bad_request"`)):
			t.Fatalf("query %q does not parse (%v), but the answer is %d: %s", q, err, w.Code, w.Body)
		}
	})
}

// FuzzParseForm holds parseForm to url.ParseQuery: the same values, and
// an error exactly when url.ParseQuery has one (readParams answers any
// error alike). The seeds are TestParseFormIsParseQuery's.
func FuzzParseForm(f *testing.F) {
	for _, form := range parseFormCases {
		f.Add(form)
	}
	f.Add("a=%FF")
	f.Add("a=\xff")
	f.Add("%C0%80=b&c=d")
	f.Fuzz(func(t *testing.T, form string) {
		sameAsParseQuery(t, form)
		// readForm refuses exactly the forms url.ParseQuery reads whole
		// with a name or value that is not valid UTF-8.
		want, wantErr := url.ParseQuery(form)
		valid := true
		for k, vs := range want {
			valid = valid && utf8.ValidString(k)
			for _, v := range vs {
				valid = valid && utf8.ValidString(v)
			}
		}
		got, err := readForm(form)
		switch {
		case wantErr != nil:
			if err != errMalformed {
				t.Fatalf("readForm(%q): %v, url.ParseQuery's %v", form, err, wantErr)
			}
		case !valid:
			if err != errNotUnicodeParam {
				t.Fatalf("readForm(%q) = %q, %v: not valid UTF-8", form, got, err)
			}
		case err != nil || !reflect.DeepEqual(got, want):
			t.Fatalf("readForm(%q) = %q, %v; url.ParseQuery's %q", form, got, err, want)
		}
	})
}

// FuzzJSONUnicode holds jsonUnicode to encoding/json: a JSON string
// literal is refused exactly when decoding it makes a U+FFFD that was
// not sent (inputs that send one, raw or escaped, are skipped).
func FuzzJSONUnicode(f *testing.F) {
	for _, s := range notUnicodeStrings {
		f.Add(s[1 : len(s)-1])
	}
	for _, s := range []string{"plain", `\ud83d\ude00`, `\\ud800`, `\\\ud800`, `\ud800\\udc00`, `\ud800\udbff`, `\ud800\`, "\xf4\x90\x80\x80", "\U0001F600"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.Contains(strings.ToLower(s), "fffd") || strings.ContainsRune(s, utf8.RuneError) {
			return
		}
		b := []byte(`"` + s + `"`)
		var v string
		if json.Unmarshal(b, &v) != nil {
			return
		}
		if got, want := jsonUnicode(b), !strings.ContainsRune(v, utf8.RuneError); got != want {
			t.Fatalf("jsonUnicode(%q) = %v, decoded %q", b, got, v)
		}
	})
}

// FuzzReadString checks the filter rule (adminquery.go): a value comes
// back trimmed, storable (valid UTF-8 without NUL) and within the bound,
// or the parameter is named in exactly one error and "" comes back.
func FuzzReadString(f *testing.F) {
	for _, s := range []string{"", "alice", " spaced ", "\xff", "a\x00b", "\xc0\x80", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		const max = 100
		var errs queryErrs
		got := readString(url.Values{"search": {s}}, "search", max, &errs)
		switch {
		case len(errs) == 0:
			if got != strings.TrimSpace(s) || len(got) > max || !permiso.ValidIdentifier(got) {
				t.Fatalf("readString(%q) = %q without an error", s, got)
			}
		case len(errs) != 1 || errs[0].Field != "search" || got != "":
			t.Fatalf("readString(%q) = %q, errors %v", s, got, errs)
		}
	})
}

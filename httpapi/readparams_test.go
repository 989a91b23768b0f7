package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// TestReadParamsContentTypes holds what readParams accepts (RFC 6749 §3.2:
// application/x-www-form-urlencoded; JSON only where allowed): the media
// type is compared without case and without its parameters, whether it is
// written exactly as clients send it or not.
func TestReadParamsContentTypes(t *testing.T) {
	for _, c := range []struct {
		contentType, body string
		allowJSON         bool
		want              error // nil: grant_type=x read
	}{
		{"application/x-www-form-urlencoded", "grant_type=x", false, nil},
		{"application/x-www-form-urlencoded; charset=UTF-8", "grant_type=x", false, nil},
		{"Application/X-WWW-Form-Urlencoded", "grant_type=x", false, nil},
		{" application/x-www-form-urlencoded ", "grant_type=x", false, nil},
		{"application/x-www-form-urlencoded", "grant_type=x", true, nil},
		{"application/json", `{"grant_type":"x"}`, true, nil},
		{"application/json; charset=utf-8", `{"grant_type":"x"}`, true, nil},
		{"application/json", `{"grant_type":"x"}`, false, errFormRequired},
		{"text/plain", "grant_type=x", false, errFormRequired},
		{"text/plain", "grant_type=x", true, errFormOrJSON},
		{"", "grant_type=x", false, errFormRequired},
		{"application/x-www-form-urlencodedx", "grant_type=x", false, errFormRequired},
	} {
		r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(c.body))
		if c.contentType != "" {
			r.Header.Set("Content-Type", c.contentType)
		}
		params, err := readParams(r, c.allowJSON)
		switch {
		case c.want != nil && err != c.want: // the same error, not one with its code (oauth2.Error.Is)
			t.Errorf("%q (JSON allowed: %v): error %v, want %v", c.contentType, c.allowJSON, err, c.want)
		case c.want == nil && (err != nil || params.Get("grant_type") != "x"):
			t.Errorf("%q (JSON allowed: %v): %v, %v; want grant_type=x", c.contentType, c.allowJSON, params, err)
		}
	}
}

// TestReadParamsBodies: readParams reads the whole form, whatever the
// declared Content-Length (exact, none, shorter than the body) and
// however long the form, into buffers it reuses (formBuffers): each
// request gets its own form, never what an earlier one left.
func TestReadParamsBodies(t *testing.T) {
	long := "token=" + strings.Repeat("x", 3000) + "&token_type_hint=access_token"
	huge := "token=" + strings.Repeat("y", maxPooledForm+10)
	for _, c := range []struct {
		body   string
		length int64 // -1: unknown
	}{
		{long, int64(len(long))}, {"token=a", 7}, {"token=b", -1}, {long, -1}, {"token=c", 7},
		{"token=dd&x=1", 3}, {huge, int64(len(huge))}, {"token=e", 7}, {"", 0}, {"token=f", 7},
	} {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/auth/introspect", strings.NewReader(c.body))
		r.Header.Set("Content-Type", contentTypeForm)
		r.ContentLength = c.length
		got, err := readParams(r, true)
		want, _ := url.ParseQuery(c.body)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("readParams of %d bytes (Content-Length %d) = %.80q, %v", len(c.body), c.length, got, err)
		}
	}
}

// parseFormCases are forms parseForm splits itself and forms it leaves to
// url.ParseQuery: escapes (valid and not), '+', ';', empty pairs, keys
// and values without '=', repeated keys, and more pairs than
// maxPlainFormParams.
var parseFormCases = []string{
	"", "&", "&&", "=", "==", "a", "a=", "=b", "a=b", "a=b&", "&a=b", "a=b&&c=d", "a=1&a=2&a=", "a=b=c",
	"token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_-&token_type_hint=access_token",
	"grant_type=client_credentials&scope=read:users", "a=%41", "a=%zz", "a=%", "a+b=c+d", "a=1;b=2", ";",
	"a=b&c", "\xff=\x00", "a=\xe2\x82", strings.Repeat("a=1&", maxPlainFormParams-1) + "b=2",
	strings.Repeat("a=1&", maxPlainFormParams) + "b=2", strings.Repeat("&", 20_000),
}

// TestParseFormIsParseQuery: parseForm gives url.ParseQuery's values, and
// fails exactly where it fails.
func TestParseFormIsParseQuery(t *testing.T) {
	for _, form := range parseFormCases {
		sameAsParseQuery(t, form)
	}
}

func sameAsParseQuery(t *testing.T, form string) {
	t.Helper()
	want, wantErr := url.ParseQuery(form)
	got, err := parseForm(form)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("parseForm(%q): error %v, url.ParseQuery's %v", form, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("parseForm(%q) = %q, url.ParseQuery's %q", form, got, want)
	}
	// The same into a formScratch of formScratches, which earlier forms
	// used: none of their parameters is left in it.
	sc := getFormScratch()
	got, err = parseFormIn(form, sc)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("parseFormIn(%q): error %v, url.ParseQuery's %v", form, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("parseFormIn(%q) = %q, url.ParseQuery's %q", form, got, want)
	}
	sc.release()
	if sc = getFormScratch(); len(sc.values) != 0 || sc.firsts != ([maxScratchParams]string{}) {
		t.Fatalf("a formScratch of formScratches holds %q, %q", sc.values, sc.firsts)
	}
	sc.release()
}

package httpapi

import (
	"bufio"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// The header keys the middleware chain and the OAuth handlers read with
// headerValue, which does not canonicalize them (docs/benchmarks.md, "The
// middleware chain").
var headerValueKeys = []string{headerRequestID, "User-Agent", "X-Forwarded-Proto", "X-Forwarded-For",
	"X-Real-Ip", "Authorization", "Content-Type"}

// TestHeaderKeysCanonical: every key read with headerValue is in
// canonical form, so headerValue answers what Header.Get answers, for
// headers as net/http reads them off the wire in any case.
func TestHeaderKeysCanonical(t *testing.T) {
	var raw strings.Builder
	raw.WriteString("GET / HTTP/1.1\r\nHost: x\r\n")
	for _, k := range headerValueKeys {
		if c := http.CanonicalHeaderKey(k); c != k {
			t.Errorf("%q is not canonical (%q): headerValue would miss it", k, c)
		}
		raw.WriteString(strings.ToLower(k) + ": v-" + k + "\r\n")
	}
	raw.WriteString("\r\n")
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw.String())))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range headerValueKeys {
		if got, want := headerValue(r.Header, k), r.Header.Get(k); got != want || got != "v-"+k {
			t.Errorf("headerValue(%q) = %q, Header.Get = %q", k, got, want)
		}
	}
	if got := headerValue(r.Header, "X-Absent"); got != "" {
		t.Errorf("absent header: %q", got)
	}
}

// TestParseHostAddrEitherForm holds parseHostAddr, which tries the
// "ip:port" form first when the text looks like one, to the order it had
// (a bare address first): the two forms never both parse.
func TestParseHostAddrEitherForm(t *testing.T) {
	bareFirst := func(s string) netip.Addr {
		s = strings.TrimSpace(s)
		if s == "" || len(s) > 64 {
			return netip.Addr{}
		}
		if a, err := netip.ParseAddr(s); err == nil {
			return a.Unmap().WithZone("")
		}
		if ap, err := netip.ParseAddrPort(s); err == nil {
			return ap.Addr().Unmap().WithZone("")
		}
		if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
			if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
				return a.Unmap().WithZone("")
			}
		}
		return netip.Addr{}
	}
	for _, s := range []string{
		"127.0.0.1:40000", "127.0.0.1", " 10.1.2.3 ", "10.1.2.3:0", "10.1.2.3:65536", "10.1.2.3:",
		"::1", "[::1]:443", "[::1]", "::ffff:10.0.0.1", "[::ffff:10.0.0.1]:80", "fe80::1%eth0",
		"[fe80::1%eth0]:80", "[10.0.0.1]:80", "2001:db8::1:80", "1:2", ":80", "[", "]", "[]:80",
		"host:80", "garbage", "", "1.2.3.4:5:6", "[::1]:80:90",
	} {
		if got, want := parseHostAddr(s), bareFirst(s); got != want {
			t.Errorf("parseHostAddr(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestNewRequestID: the ids made for requests are random version 4 UUIDs
// (RFC 9562 §5.4) in their text form, as uuid.NewString made them.
func TestNewRequestID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		s := newRequestID()
		id, err := uuid.Parse(s)
		if err != nil || id.String() != s || id.Version() != 4 || id.Variant() != uuid.RFC4122 {
			t.Fatalf("%q: %v, version %d, variant %v", s, err, id.Version(), id.Variant())
		}
		if seen[s] {
			t.Fatalf("%q made twice", s)
		}
		seen[s] = true
	}
}

// TestDispatchRoutesOnce: a route without wildcards is served from the
// ServeMux's first lookup, one with wildcards by the ServeMux itself; the
// handler sees the same pattern and path values either way, as a bare
// ServeMux gives them, and path cleaning still redirects.
func TestDispatchRoutesOnce(t *testing.T) {
	routes := func(mux *http.ServeMux) {
		show := func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(r.Pattern + "|" + r.PathValue("v") + "|" + r.PathValue("rest")))
		}
		mux.HandleFunc("GET /t/static", show)
		mux.HandleFunc("GET /t/{v}", show)
		mux.HandleFunc("GET /t/{v}/more/{rest...}", show)
		mux.HandleFunc("POST /t/static", show)
	}
	bare := http.NewServeMux()
	routes(bare)
	s := newTestServer(t, testOptions(), nil, routes)
	for _, c := range []struct{ method, path string }{
		{"GET", "/t/static"}, {"HEAD", "/t/static"}, {"POST", "/t/static"}, {"GET", "/t/x"},
		{"GET", "/t/x/more/a/b"}, {"GET", "/t/./static"}, {"GET", "/t//x"},
	} {
		got := s.do(httptest.NewRequest(c.method, c.path, nil))
		want := httptest.NewRecorder()
		bare.ServeHTTP(want, httptest.NewRequest(c.method, c.path, nil))
		if got.Code != want.Code || got.Body.String() != want.Body.String() ||
			got.Header().Get("Location") != want.Header().Get("Location") {
			t.Errorf("%s %s: %d %q %q, the ServeMux %d %q %q", c.method, c.path, got.Code, got.Body,
				got.Header().Get("Location"), want.Code, want.Body, want.Header().Get("Location"))
		}
	}
}

// TestGuardCallerInRequestInfo: guard hands the admitted caller to the
// route's handler in the request's reqInfo (docs/benchmarks.md, "The
// middleware chain"): a user's guarded route sees the user, not as an
// administrator; a public route of the same server sees no caller, and a
// refused bearer reaches no handler.
func TestGuardCallerInRequestInfo(t *testing.T) {
	e := newServedEnv(t, nil)
	s := e.h.(*server)
	show := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := principalFrom(r.Context())
		name := ""
		if ok && p.User != nil {
			name = p.User.Username
		}
		_, _ = fmt.Fprintf(w, "%t %q %t", ok, name, actingAsAdmin(r.Context()))
	})
	s.handle("GET /api/v1/test/guarded", accessUser, show)
	s.handle("GET /api/v1/test/public", accessPublic, show)
	tok := e.login(t).AccessToken
	get := func(path, bearer string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if bearer != "" {
			r.Header.Set("Authorization", "Bearer "+bearer)
		}
		return e.send(r)
	}
	for _, c := range []struct{ path, bearer, want string }{
		{"/api/v1/test/guarded", tok, `true "hot-user" false`},
		{"/api/v1/test/public", tok, `false "" false`},
		{"/api/v1/test/public", "", `false "" false`},
	} {
		if w := get(c.path, c.bearer); w.Code != http.StatusOK || w.Body.String() != c.want {
			t.Errorf("%s: %d %s, want %s", c.path, w.Code, w.Body, c.want)
		}
	}
	if w := get("/api/v1/test/guarded", tok+"x"); w.Code != http.StatusUnauthorized {
		t.Errorf("a bad bearer: %d %s", w.Code, w.Body)
	}
}

// TestRequestMediaType: the media types recognised without parsing are
// what mime.ParseMediaType makes of them, and any other Content-Type is
// parsed as before.
func TestRequestMediaType(t *testing.T) {
	for _, ct := range []string{contentTypeForm, contentTypeJSON, "", "Application/X-WWW-Form-Urlencoded",
		"application/x-www-form-urlencoded; charset=utf-8", "application/json;charset=UTF-8", "text/plain",
		"application/x-www-form-urlencoded;", "multipart/form-data; boundary=x", "bad/", ";"} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		want, _, _ := mime.ParseMediaType(ct)
		if got := requestMediaType(r); got != want {
			t.Errorf("%q: %q, mime.ParseMediaType %q", ct, got, want)
		}
	}
}

// appendedAnswer is a jsonAppender of n bytes of c, as a JSON string.
type appendedAnswer struct {
	c byte
	n int
}

func (a appendedAnswer) AppendJSON(b []byte) []byte {
	b = append(b, '"')
	b = append(b, strings.Repeat(string(a.c), a.n)...)
	return append(b, '"')
}

// TestWriteJSONReusedBuffers: answers encoded into writeJSON's reused
// buffers are each written whole and as they are, whatever was encoded
// into the buffer before (longer, shorter, past the size kept for reuse).
func TestWriteJSONReusedBuffers(t *testing.T) {
	var written []*httptest.ResponseRecorder
	answers := []appendedAnswer{{'a', 3000}, {'b', 10}, {'c', 1023}, {'d', maxPooledJSON + 10}, {'e', 1}, {'f', 700}}
	for range 3 {
		for _, a := range answers {
			w := httptest.NewRecorder()
			writeJSON(w, http.StatusOK, a)
			written = append(written, w)
		}
	}
	for i, w := range written {
		a := answers[i%len(answers)]
		want := string(a.AppendJSON(nil)) + "\n"
		if w.Body.String() != want || w.Header().Get("Content-Length") != strconv.Itoa(len(want)) {
			t.Errorf("answer %d (%c × %d): %d bytes, Content-Length %s", i, a.c, a.n, w.Body.Len(), w.Header().Get("Content-Length"))
		}
	}
}

// TestRequestInfoPerRequest: each request's reqInfo (stored with its
// status writer) is its own: concurrent requests through one server see
// their own id, as sent in their X-Request-Id, and their own client
// address.
func TestRequestInfoPerRequest(t *testing.T) {
	s := newTestServer(t, testOptions(), nil, func(mux *http.ServeMux) {
		mux.HandleFunc("GET /t/info", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(RequestID(r.Context()) + " " + ClientIP(r.Context()).String()))
		})
	})
	done := make(chan error, 50)
	for i := range 50 {
		go func() {
			r := httptest.NewRequest(http.MethodGet, "/t/info", nil)
			r.RemoteAddr = "127.0.0.1:1234" // a trusted proxy (testOptions)
			ip := netip.AddrFrom4([4]byte{10, 0, byte(i / 256), byte(i % 256)}).String()
			r.Header.Set("X-Forwarded-For", ip)
			w := s.do(r)
			if want := w.Header().Get(headerRequestID) + " " + ip; w.Body.String() != want {
				done <- fmt.Errorf("handler saw %q, want %q", w.Body, want)
				return
			}
			done <- nil
		}()
	}
	for range 50 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

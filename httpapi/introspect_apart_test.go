package httpapi

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestServedIntrospectionsKeepApart serves introspections by the service
// client at once, over the server configured as scripts/bench.sh runs it:
// with HTTP Basic and with the credentials in the form, of active tokens,
// of a token that is not one, with a wrong secret and with no caller. Each
// answer, served among the others, is byte for byte what the same request
// is answered alone: the form is parsed into pooled storage
// (formScratch) and the answer encoded into a pooled buffer, and neither
// may carry one request's parameters or answer into another's. An answer
// carries Cache-Control: no-store and Pragma: no-cache (RFC 6749 §5.1)
// with the security headers; an inactive token's is exactly
// {"active":false}; a failed client authentication is 401 with its
// WWW-Authenticate challenge (RFC 6749 §5.2).
func TestServedIntrospectionsKeepApart(t *testing.T) {
	t.Run("memory", func(t *testing.T) { introspectionsKeepApart(t, newServedEnv(t, nil)) })
	t.Run("redis", func(t *testing.T) { introspectionsKeepApart(t, newServedEnv(t, hotRedis(t))) })
}

func introspectionsKeepApart(t *testing.T, e *hotEnv) {
	type answer struct {
		code                           int
		body, cache, pragma, challenge string
		headers                        []string
	}
	serve := func(r *http.Request) answer {
		w := e.send(r)
		var names []string
		for k := range w.Header() {
			names = append(names, k)
		}
		slices.Sort(names)
		return answer{w.Code, w.Body.String(), w.Header().Get("Cache-Control"), w.Header().Get("Pragma"),
			strings.Join(w.Header().Values("WWW-Authenticate"), ", "), names}
	}
	var requests []func() *http.Request
	for range 3 {
		tok := e.login(t).AccessToken
		requests = append(requests,
			func() *http.Request { return e.introspect(tok) },
			func() *http.Request {
				return formRequest("/api/v1/auth/introspect", url.Values{"token": {tok},
					"client_id": {hotClient}, "client_secret": {e.secret}, "token_type_hint": {"access_token"}})
			})
	}
	inactive := func() *http.Request { return e.introspect("a.b.c") }
	wrongSecret := func() *http.Request {
		r := formRequest("/api/v1/auth/introspect", url.Values{"token": {"a.b.c"}})
		r.SetBasicAuth(hotClient, e.secret+"x")
		return r
	}
	noCaller := func() *http.Request { return formRequest("/api/v1/auth/introspect", url.Values{"token": {"a.b.c"}}) }
	requests = append(requests, inactive, wrongSecret, noCaller)

	want := make([]answer, len(requests))
	for i, req := range requests {
		want[i] = serve(req())
	}
	headers := []string{"Cache-Control", "Content-Length", "Content-Security-Policy", "Content-Type",
		"Cross-Origin-Opener-Policy", "Pragma", "Referrer-Policy", "X-Content-Type-Options", "X-Frame-Options", "X-Request-Id"}
	for i, a := range want[:len(want)-3] {
		if a.code != http.StatusOK || !strings.Contains(a.body, `"active":true`) || a.cache != "no-store" ||
			a.pragma != "no-cache" || !slices.Equal(a.headers, headers) {
			t.Fatalf("introspection %d: %+v", i, a)
		}
	}
	if a := want[len(want)-3]; a.code != http.StatusOK || a.body != "{\"active\":false}\n" || a.cache != "no-store" ||
		a.pragma != "no-cache" || !slices.Equal(a.headers, headers) {
		t.Fatalf("inactive token: %+v", a)
	}
	for _, a := range want[len(want)-2:] {
		if a.code != http.StatusUnauthorized || !strings.Contains(a.body, `"invalid_client"`) ||
			!strings.Contains(a.challenge, `Basic realm="permiso"`) || a.cache != "no-store" || a.pragma != "no-cache" {
			t.Fatalf("unauthenticated client: %+v", a)
		}
	}

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for n := range 40 {
				i := (g + n) % len(requests)
				if got := serve(requests[i]()); got.code != want[i].code || got.body != want[i].body ||
					got.cache != want[i].cache || got.pragma != want[i].pragma || got.challenge != want[i].challenge ||
					!slices.Equal(got.headers, want[i].headers) {
					t.Errorf("request %d among others: %+v; alone: %+v", i, got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
}

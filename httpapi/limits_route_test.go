package httpapi

import (
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/permiso/permiso"
)

// TestRouteLimitsHoldThroughMiddleware: what a route does with its
// request's limits is read from its access entry, never from the type of
// its handler. A route with its own per-IP limit and a route that settles
// its own limits, each wrapped in an extra middleware, refuse the request
// beyond the limit with 429 before their work is done; and a settling
// handler that never passes its batch to a service still cannot answer
// beyond the limit: the route settles the batch before writing its reply.
func TestRouteLimitsHoldThroughMiddleware(t *testing.T) {
	s := abuseServer(t, nil, func(o *Options) {
		o.RateLimits = RateLimits{Login: permiso.Limit{Count: 2, Period: time.Minute}, API: permiso.Limit{Count: 1000, Period: time.Minute}}
	}).(*server)
	// One extra middleware of each kind: it marks the answers it wrote.
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Wrapped", "yes")
			next.ServeHTTP(w, r)
		})
	}
	wrapSettling := func(next settlingHandler) settlingHandler {
		return func(r *http.Request, limits *permiso.Limits) reply {
			answer := next(r, limits)
			return func(w http.ResponseWriter) {
				w.Header().Set("X-Wrapped", "yes")
				answer(w)
			}
		}
	}
	ok := func(w http.ResponseWriter) { writeNoStore(w, http.StatusOK, map[string]string{"message": "done"}) }
	var limitedWork, settlingWork, forgetfulWork atomic.Int32

	s.handle("POST /api/v1/test/limited", accessLimited(limitLogin), wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limitedWork.Add(1)
		ok(w)
	})))
	// As the token endpoint does: it adds its limit to the batch and
	// passes the batch to the service call, which stops before the work.
	s.handleSettling("POST /api/v1/test/settling", accessSettling, wrapSettling(func(r *http.Request, limits *permiso.Limits) reply {
		s.addLimit(limits, r, limitLogin)
		if err := s.auth.RunLimits(r.Context(), limits); err != nil {
			return oauthReply(r, err)
		}
		settlingWork.Add(1)
		return ok
	}))
	// A handler that forgets its batch: it works, but cannot answer.
	s.handleSettling("POST /api/v1/test/forgetful", accessSettling, wrapSettling(func(r *http.Request, limits *permiso.Limits) reply {
		s.addLimit(limits, r, limitLogin)
		forgetfulWork.Add(1)
		return ok
	}))

	for _, tc := range []struct {
		path, ip string
		work     *atomic.Int32
		worked   int32 // after the three requests
	}{
		{"/api/v1/test/limited", "198.51.100.21", &limitedWork, 2},
		{"/api/v1/test/settling", "198.51.100.22", &settlingWork, 2},
		{"/api/v1/test/forgetful", "198.51.100.23", &forgetfulWork, 3},
	} {
		for i, want := range []int{200, 200, 429} {
			w := postForm(s, tc.path, url.Values{}, tc.ip)
			if w.Code != want {
				t.Fatalf("%s request %d: %d %s, want %d", tc.path, i+1, w.Code, w.Body, want)
			}
			wrapped := w.Header().Get("X-Wrapped") == "yes"
			if want == 200 {
				wantHeaders(t, w, "2", []string{"1", "0"}[i])
				if !wrapped {
					t.Errorf("%s request %d: the middleware did not run", tc.path, i+1)
				}
				continue
			}
			if wrapped || w.Header().Get("Retry-After") == "" || decodeBody(t, w)["error"] != "rate_limit_exceeded" {
				t.Errorf("%s beyond the limit: %v %s, want the route's 429 and no reply of the handler", tc.path, w.Header(), w.Body)
			}
		}
		if n := tc.work.Load(); n != tc.worked {
			t.Errorf("%s: the handler worked %d times, want %d", tc.path, n, tc.worked)
		}
	}
}

// TestAccessEntryDeclaresSettling: a route that settles its own limits
// says so in its access entry, and is registered as such; a mismatch is
// refused when the route is registered, so it cannot go unnoticed.
func TestAccessEntryDeclaresSettling(t *testing.T) {
	s := abuseServer(t, nil, nil).(*server)
	refused := func(what string, register func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s was registered", what)
			}
		}()
		register()
	}
	refused("a settling access entry with a plain handler", func() {
		s.handle("POST /api/v1/test/a", accessSettling, http.NotFoundHandler())
	})
	refused("a settling handler without a settling access entry", func() {
		s.handleSettling("POST /api/v1/test/b", accessPublic, func(*http.Request, *permiso.Limits) reply { return nil })
	})
	var settling []string
	for _, rt := range s.routes {
		if rt.Access.settlesLimits {
			settling = append(settling, rt.Pattern)
		}
	}
	want := []string{"POST /api/v1/auth/token", "POST /api/v1/auth/refresh", "POST /api/v1/auth/service-token", "POST /api/v1/auth/introspect",
		"POST /api/v1/oauth2/authorize"}
	if len(settling) != len(want) {
		t.Fatalf("routes settling their own limits: %v, want %v", settling, want)
	}
	for i := range want {
		if settling[i] != want[i] {
			t.Errorf("routes settling their own limits: %v, want %v", settling, want)
		}
	}
}

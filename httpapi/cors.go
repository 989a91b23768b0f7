package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/permiso/permiso"
)

// CORS is the cross-origin policy (ALLOWED_ORIGINS, ALLOWED_METHODS,
// ALLOWED_HEADERS, ALLOW_CREDENTIALS), applied by the cors middleware
// (Fetch Standard, "CORS protocol").
type CORS struct {
	// AllowedOrigins are origins (scheme://host[:port]) or "*"; empty
	// disables CORS (no cross-origin access).
	AllowedOrigins []string
	// AllowedMethods are the methods preflights allow; "*" allows the one
	// requested.
	AllowedMethods []string
	// AllowedHeaders are the request headers preflights allow; "*" allows
	// the ones requested (echoed: a literal "*" would not cover
	// Authorization, and means nothing with credentials).
	AllowedHeaders []string
	// AllowCredentials sends Access-Control-Allow-Credentials: true. It is
	// never combined with the "*" origin: a wildcard origin switches it
	// off here whatever the configuration says.
	AllowCredentials bool
	// MaxAge is how long browsers may cache a preflight (0 = 10 minutes).
	MaxAge time.Duration
}

// corsExposed are the response headers cross-origin scripts may read.
const corsExposed = "X-Request-Id, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, RateLimit-Policy, Retry-After, WWW-Authenticate"

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// cors answers CORS preflights before routing and authentication, and
// adds the CORS headers to actual requests from allowed origins:
//
//   - every response carries Vary: Origin (preflights also vary on the
//     requested method and headers), so caches never serve one origin's
//     answer to another;
//   - an allowed origin gets Access-Control-Allow-Origin: <origin>, or "*"
//     when every origin is allowed and credentials are not;
//     Access-Control-Allow-Credentials: true never goes with "*";
//   - a preflight (OPTIONS with Origin and Access-Control-Request-Method)
//     from an allowed origin is answered 204 with the allowed methods and
//     headers and Access-Control-Max-Age; from any other origin 403
//     forbidden, without CORS headers;
//   - requests from other origins, and requests without Origin, pass
//     through unchanged (the browser withholds the response from a
//     foreign script).
//
// Without ALLOWED_ORIGINS the middleware is not installed.
func (s *server) cors(next http.Handler) http.Handler {
	c := s.opts.CORS
	if len(c.AllowedOrigins) == 0 {
		return next
	}
	wildcard := contains(c.AllowedOrigins, "*")
	creds := c.AllowCredentials && !wildcard
	anyMethod := contains(c.AllowedMethods, "*")
	anyHeader := contains(c.AllowedHeaders, "*")
	methods := strings.Join(c.AllowedMethods, ", ")
	headers := strings.Join(c.AllowedHeaders, ", ")
	maxAge := c.MaxAge
	if maxAge <= 0 {
		maxAge = 10 * time.Minute
	}
	maxAgeStr := strconv.Itoa(int(maxAge / time.Second))
	allowed := func(origin string) bool {
		if wildcard {
			return true
		}
		for _, o := range c.AllowedOrigins {
			if strings.EqualFold(o, origin) {
				return true
			}
		}
		return false
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		reqMethod := r.Header.Get("Access-Control-Request-Method")
		preflight := r.Method == http.MethodOptions && origin != "" && reqMethod != ""
		if preflight {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
		}
		if origin == "" || !allowed(origin) {
			if preflight {
				writeError(w, r, errOriginNotAllowed)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if wildcard && !creds {
			h.Set("Access-Control-Allow-Origin", "*")
		} else {
			h.Set("Access-Control-Allow-Origin", origin)
		}
		if creds {
			h.Set("Access-Control-Allow-Credentials", "true")
		}
		if !preflight {
			h.Set("Access-Control-Expose-Headers", corsExposed)
			next.ServeHTTP(w, r)
			return
		}
		if anyMethod {
			h.Set("Access-Control-Allow-Methods", reqMethod)
		} else {
			h.Set("Access-Control-Allow-Methods", methods)
		}
		if anyHeader {
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
				h.Set("Access-Control-Allow-Headers", req)
			}
		} else if headers != "" {
			h.Set("Access-Control-Allow-Headers", headers)
		}
		h.Set("Access-Control-Max-Age", maxAgeStr)
		w.WriteHeader(http.StatusNoContent)
	})
}

var errOriginNotAllowed = permiso.Errorf(permiso.EFORBIDDEN, "Origin not allowed")

// allowedHosts refuses requests whose Host header is not in ALLOWED_HOSTS
// with 400 (docs/abuse-resistance.md, "Host allow-list"), before anything else looks at them. The host is
// compared without its port, case-insensitively, without a trailing dot;
// "*.example.com" matches every subdomain of example.com (not example.com
// itself); "*" or an empty list allows any host.
//
// The health endpoints and METRICS_PATH are exempt: container health
// checks (127.0.0.1:8000), load balancers and Prometheus (app:8000) reach
// an instance by an address, not by the public host name, and those
// endpoints build no links from the Host header. nginx still restricts
// who reaches METRICS_PATH from outside (deploy/nginx/nginx.conf).
func (s *server) allowedHosts(next http.Handler) http.Handler {
	hosts := s.opts.AllowedHosts
	if len(hosts) == 0 || contains(hosts, "*") {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.isOperational(r.URL.Path) || hostAllowed(hosts, hostName(r.Host)) {
			next.ServeHTTP(w, r)
			return
		}
		writeJSON(w, http.StatusBadRequest, errorBody{
			Error:            "invalid_host",
			ErrorDescription: "Invalid host header",
			RequestID:        requestIDFor(w, r),
		})
	})
}

// isOperational reports whether path is a health endpoint or the metrics
// path, which any Host may reach (allowedHosts).
func (s *server) isOperational(path string) bool {
	path = strings.TrimSuffix(path, "/")
	return path == "/health" || strings.HasPrefix(path, "/health/") ||
		(s.metrics != nil && s.opts.MetricsPath != "" && path == strings.TrimSuffix(s.opts.MetricsPath, "/"))
}

// hostName returns the host of a Host header without the port, in lower
// case, without a trailing dot; IPv6 literals keep no brackets.
func hostName(host string) string {
	host = strings.TrimSpace(host)
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			host = host[1:i]
		}
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.Count(host, ":") == 1 {
		host = host[:i]
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

func hostAllowed(patterns []string, host string) bool {
	if host == "" {
		return false
	}
	for _, p := range patterns {
		p = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(p)), ".")
		if p = strings.Trim(p, "[]"); p == host {
			return true
		}
		if suffix, ok := strings.CutPrefix(p, "*"); ok && strings.HasPrefix(suffix, ".") &&
			len(host) > len(suffix) && strings.HasSuffix(host, suffix) {
			return true
		}
	}
	return false
}

package httpapi

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/uuid"
)

const headerRequestID = "X-Request-Id"

// statusWriter records the status, the body size and the matched route
// pattern of a response. The outermost middleware creates it and the
// access log reuses it.
type statusWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
	pattern     string
	// info is the request's reqInfo, which requestID fills: the two are
	// made per request together, in one allocation.
	info reqInfo
}

func (w *statusWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.ResponseWriter.WriteHeader(code)
	// 1xx informational responses (except 101) may precede the real one.
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.status = code
		w.wroteHeader = true
	}
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// recoverPanics turns a panic in any later handler into a JSON 500
// internal_error without internals, logged once with the request id and the
// stack. If the response had already started, the connection is aborted
// instead, so that the client never takes a truncated response for a
// complete one (docs/abuse-resistance.md).
func (s *server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			// The request-id middleware runs inside this one; it sets the
			// response header before calling on.
			id := sw.Header().Get(headerRequestID)
			s.logger.LogAttrs(r.Context(), slog.LevelError, "panic serving request",
				slog.String("request_id", id),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.String("panic", fmt.Sprint(v)),
				slog.String("stack", string(debug.Stack())),
			)
			if sw.wroteHeader {
				panic(http.ErrAbortHandler)
			}
			// Drop whatever the handler had set (cookies, redirects,
			// encodings); keep the request id and the security headers.
			h := sw.Header()
			for k := range h {
				if !keepOnPanic[k] {
					delete(h, k)
				}
			}
			writeInternalError(sw, r)
		}()
		next.ServeHTTP(sw, r)
	})
}

// keepOnPanic lists the response headers that survive a panic.
var keepOnPanic = map[string]bool{
	headerRequestID:              true,
	"X-Content-Type-Options":     true,
	"X-Frame-Options":            true,
	"Referrer-Policy":            true,
	"Cross-Origin-Opener-Policy": true,
	"Content-Security-Policy":    true,
	"Strict-Transport-Security":  true,
}

// validRequestID reports whether id is a sane request id to take from a
// trusted proxy: 1 to 128 characters of [A-Za-z0-9._-].
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// requestID gives every request an id: the X-Request-Id header when the
// socket peer is a trusted proxy and the value is sane (validRequestID:
// only [A-Za-z0-9._-], so it is storable as it is), otherwise a new UUID.
// The id is set on the response and stored in the context with the peer's
// address and trust and the cleaned User-Agent (cleanUserAgent): the
// boundary where the recorded free text of a request is made storable
// (docs/security-model.md, "Untrusted bytes").
func (s *server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer := parseHostAddr(r.RemoteAddr)
		var info *reqInfo
		if sw, ok := w.(*statusWriter); ok {
			info = &sw.info // behind recoverPanics, as NewServer chains them
		} else {
			info = new(reqInfo)
		}
		*info = reqInfo{
			peer:        peer,
			peerTrusted: isTrusted(s.opts.TrustedProxies, peer),
			clientIP:    peer,
			logger:      s.logger,
			userAgent:   cleanUserAgent(r),
		}
		if info.peerTrusted {
			if id := headerValue(r.Header, headerRequestID); validRequestID(id) {
				info.id = id
			}
		}
		if info.id == "" {
			info.id = newRequestID()
		}
		// The header's value slice is the one of info: one allocation
		// less per request. Its capacity is its length, so Header.Add
		// copies rather than writing into it.
		info.idHeader[0] = info.id
		w.Header()[headerRequestID] = info.idHeader[:]
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
		info.copy = r
		next.ServeHTTP(w, r)
	})
}

// requestInfo returns r with its reqInfo: the one requestID stored, or,
// when r did not come through requestID (direct use in tests), a new one
// with the socket peer, its trust, the logger and the cleaned User-Agent.
func (s *server) requestInfo(r *http.Request) (*http.Request, *reqInfo) {
	if info := infoFrom(r.Context()); info != nil {
		return r, info
	}
	peer := parseHostAddr(r.RemoteAddr)
	info := &reqInfo{peer: peer, peerTrusted: isTrusted(s.opts.TrustedProxies, peer), clientIP: peer,
		logger: s.logger, userAgent: cleanUserAgent(r)}
	return r.WithContext(context.WithValue(r.Context(), infoKey{}, info)), info
}

// newRequestID returns a new random (version 4) UUID as text, as
// uuid.NewString does, with one allocation (the text) instead of two.
func newRequestID() string {
	var id uuid.UUID
	_, _ = rand.Read(id[:])       // crypto/rand.Read never fails (Go 1.24)
	id[6] = (id[6] & 0x0f) | 0x40 // version 4
	id[8] = (id[8] & 0x3f) | 0x80 // variant RFC 4122 (RFC 9562 §4.1)
	return id.String()
}

// headerValue is h.Get(key) for a key already in canonical form
// (http.CanonicalHeaderKey(key) == key, held by TestHeaderKeysCanonical):
// the map is read directly instead of canonicalizing the key again on
// every request. net/http stores received headers under their canonical
// keys.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// clientIP stores the client's address (see clientAddr) in the request
// context, where ClientIP reads it.
func (s *server) clientIP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, info := s.requestInfo(r)
		info.clientIP = clientAddrFromRequest(s.opts.TrustedProxies, info.peer, info.peerTrusted, r)
		next.ServeHTTP(w, r)
	})
}

// Security header values (docs/security-model.md) and those of JSON
// answers. The slices are shared by every response; their capacity
// equals their length, so Header.Add copies instead of writing into them.
var (
	hdrNosniff = []string{"nosniff"}
	hdrDeny    = []string{"DENY"}
	hdrNoRef   = []string{"no-referrer"}
	hdrCOOP    = []string{"same-origin"}
	hdrHSTS    = []string{"max-age=31536000; includeSubDomains"}
	hdrAPICSP  = []string{APIContentSecurityPolicy}
	// Of JSON answers (writeJSON, writeNoStore).
	hdrJSON    = []string{"application/json"}
	hdrNoStore = []string{"no-store"}
	hdrNoCache = []string{"no-cache"}
)

// APIContentSecurityPolicy is the Content-Security-Policy of every
// response by default: JSON needs no resources and must not be framed.
// Handlers that serve HTML (the documentation pages) replace it with their
// own policy by setting the header before writing.
const APIContentSecurityPolicy = "default-src 'none'; frame-ancestors 'none'"

// securityHeaders sets the security headers on every response.
// Strict-Transport-Security is sent only when the request came over TLS,
// or through a trusted proxy that reports X-Forwarded-Proto: https.
func (s *server) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-Content-Type-Options"] = hdrNosniff
		h["X-Frame-Options"] = hdrDeny
		h["Referrer-Policy"] = hdrNoRef
		h["Cross-Origin-Opener-Policy"] = hdrCOOP
		h["Content-Security-Policy"] = hdrAPICSP
		if r.TLS != nil || s.forwardedHTTPS(r) {
			h["Strict-Transport-Security"] = hdrHSTS
		}
		next.ServeHTTP(w, r)
	})
}

// forwardedHTTPS reports whether a trusted proxy says the client connected
// over HTTPS. With several comma-separated values, the first (the hop
// nearest the client) decides.
func (s *server) forwardedHTTPS(r *http.Request) bool {
	v := headerValue(r.Header, "X-Forwarded-Proto")
	if v == "" {
		return false
	}
	trusted := false
	if info := infoFrom(r.Context()); info != nil {
		trusted = info.peerTrusted
	} else {
		trusted = isTrusted(s.opts.TrustedProxies, parseHostAddr(r.RemoteAddr))
	}
	if !trusted {
		return false
	}
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	return strings.EqualFold(strings.TrimSpace(v), "https")
}

// limitBody caps request bodies at Options.MaxBodyBytes. A declared
// Content-Length over the limit is refused at once; a longer body without
// one fails when read, and decodeJSON turns that into 413.
func (s *server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		max := s.opts.MaxBodyBytes
		if r.ContentLength > max {
			w.Header().Set("Connection", "close")
			writeError(w, r, errTooLarge)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			// The request is copied, unless it is requestID's own copy
			// (reqInfo.copy), which nothing outside this chain holds.
			if info := infoFrom(r.Context()); info == nil || info.copy != r {
				r2 := new(http.Request)
				*r2 = *r
				r = r2
			}
			// MaxBytesReader tells the server to close the connection when
			// the limit is hit, if it can reach the server's own writer.
			r.Body = http.MaxBytesReader(unwrapWriter(w), r.Body, max)
		}
		next.ServeHTTP(w, r)
	})
}

func unwrapWriter(w http.ResponseWriter) http.ResponseWriter {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
}

// accessLog writes one structured record per request, after the response,
// with the route pattern (never only the raw path) for aggregation. A
// request whose handler panics is logged with status 500, which the
// recovery middleware then writes; one whose client went away, with the
// 499 clientClosed wrote.
func (s *server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, ok := w.(*statusWriter)
		if !ok {
			sw = &statusWriter{ResponseWriter: w}
		}
		start := time.Now()
		completed := false
		defer func() {
			status := sw.status
			if !completed && !sw.wroteHeader {
				status = http.StatusInternalServerError
			} else if status == 0 {
				status = http.StatusOK
			}
			elapsed := time.Since(start)
			if s.observe != nil {
				s.observe(sw.pattern, r.Method, status, elapsed)
			}
			// The record's attributes are built only when it is written
			// (LOG_LEVEL=info or lower): the address as text allocates.
			if !s.logger.Enabled(r.Context(), slog.LevelInfo) {
				return
			}
			info := infoFrom(r.Context())
			var id, ip string
			if info != nil {
				id = info.id
				if info.clientIP.IsValid() {
					ip = info.clientIP.String()
				}
			}
			s.logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("method", r.Method),
				slog.String("route", sw.pattern),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Int64("bytes", sw.bytes),
				slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
				slog.String("request_id", id),
				slog.String("client_ip", ip),
				slog.String("user_agent", userAgent(r)),
			)
		}()
		next.ServeHTTP(sw, r)
		completed = true
	})
}

// Package httpapi is permiso's HTTP layer: NewServer returns one
// http.Handler with every route (listed in routes.go) behind a fixed
// middleware chain, and all error responses go through one writer that maps
// the domain's error codes to HTTP statuses in a single table.
//
// The middleware chain, outermost first:
//
//  1. panic recovery: a JSON 500 internal_error without internals, the panic
//     logged once with the request id and stack;
//  2. request id: X-Request-Id from a trusted proxy, otherwise a new UUID,
//     always echoed in the response and available as RequestID(ctx);
//  3. client IP: the socket peer, or for a trusted proxy the rightmost
//     untrusted X-Forwarded-For entry (then X-Real-IP), as ClientIP(ctx);
//  4. security headers on every response (HSTS only over TLS or behind a
//     trusted TLS-terminating proxy);
//  5. body size limit (413 request_too_large);
//  6. a structured access log, one record per request;
//  7. the Host allow-list (ALLOWED_HOSTS, 400 invalid_host; cors.go);
//  8. CORS: preflights answered here, before routing and authentication
//     (cors.go);
//  9. RATE_LIMIT_API for every request under the API prefix (limit.go);
//     the endpoint limits (login, register, refresh, service token) are
//     attached at route registration with s.limit, or chosen after
//     parsing the grant on the token endpoint.
//
// Trailing slashes are optional on every route: one trailing slash is
// stripped before the request reaches the ServeMux. Unknown routes and wrong
// methods get JSON 404 and 405 envelopes.
//
// The package never reads the environment: cmd/permiso maps its
// configuration into Options and passes everything in Deps.
package httpapi

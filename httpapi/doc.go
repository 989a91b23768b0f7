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
//  9. the route (access.go): the query string parsed whole, the request's
//     limit batch built from the route's access entry (RATE_LIMIT_API
//     under the API prefix and the route's own per-IP limit; the token
//     endpoint adds its grant's after parsing), the bearer check, and the
//     batch settled before any answer (checks.go).
//
// A handler parses the request, calls one service method (package
// identity, oauth2 or reports) and writes the answer; management handlers
// return their errors (handlerFunc), which are written once.
//
// Trailing slashes are optional on every route: one trailing slash is
// stripped before the request reaches the ServeMux. Unknown routes and wrong
// methods get JSON 404 and 405 envelopes.
//
// The package never reads the environment: cmd/permiso maps its
// configuration into Options and passes everything in Deps.
package httpapi

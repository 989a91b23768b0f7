package httpapi

import (
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/oauth2"
)

// limitKind names one of the configured per-IP rate limits
// (RATE_LIMIT_LOGIN, _REGISTER, _REFRESH, _SERVICE_TOKEN, _API).
type limitKind string

// The per-IP rate limits (docs/abuse-resistance.md).
const (
	limitLogin        limitKind = "login"
	limitRegister     limitKind = "register"
	limitRefresh      limitKind = "refresh"
	limitServiceToken limitKind = "service_token"
	limitAPI          limitKind = "api"
	// limitAccountMail counts the anonymous requests that send mail
	// (password reset, email verification) at the RATE_LIMIT_REGISTER
	// rate, under keys of their own; limitAccountToken counts the
	// confirmations of mailed tokens at the RATE_LIMIT_LOGIN rate.
	limitAccountMail  limitKind = "account_mail"
	limitAccountToken limitKind = "account_token"
)

// RateLimits are the per-client-IP limits (docs/abuse-resistance.md); a zero Limit is
// disabled. cmd/permiso fills them from RATE_LIMIT_*.
type RateLimits struct {
	// Login: password grants and POST /auth/change-password; also, counted
	// apart, the confirmations of mailed tokens (password reset, email
	// verification).
	Login permiso.Limit
	// Register: POST /users/register; also, counted apart, the requests
	// that send a password-reset or verification mail.
	Register permiso.Limit
	// Refresh: refresh_token grants (/auth/token and /auth/refresh).
	Refresh permiso.Limit
	// ServiceToken: client_credentials grants (/auth/token and
	// /auth/service-token).
	ServiceToken permiso.Limit
	// API: every request under API_V1_PREFIX, on top of the others.
	API permiso.Limit
}

func (s *server) limitOf(kind limitKind) permiso.Limit {
	l := s.opts.RateLimits
	switch kind {
	case limitLogin, limitAccountToken:
		return l.Login
	case limitRegister, limitAccountMail:
		return l.Register
	case limitRefresh:
		return l.Refresh
	case limitServiceToken:
		return l.ServiceToken
	case limitAPI:
		return l.API
	}
	return permiso.Limit{}
}

// oauthKind reports whether a limit guards an OAuth endpoint, whose 429
// and 503 use the RFC 6749 envelope (docs/oauth.md).
func oauthKind(kind limitKind) bool {
	return kind == limitLogin || kind == limitRefresh || kind == limitServiceToken
}

// grantLimit is the per-IP limit of a token request's grant: /auth/token
// serves three grants, so its limit is chosen after parsing.
func grantLimit(grantType string) limitKind {
	switch grantType {
	case oauth2.GrantRefreshToken:
		return limitRefresh
	case oauth2.GrantClientCredentials:
		return limitServiceToken
	default:
		return limitLogin
	}
}

// limitKey is the limiter key of a client address under kind:
// "ip:<kind>:<address>". IPv6 clients are counted per /64, the smallest
// block a site is normally given (RFC 6177), so that one host cannot
// multiply its budget by cycling through its own addresses.
func limitKey(kind limitKind, ip netip.Addr) string {
	addr := "unknown"
	switch {
	case ip.Is4() || ip.Is4In6():
		addr = ip.Unmap().String()
	case ip.Is6():
		p, _ := ip.WithZone("").Prefix(64)
		addr = p.String()
	}
	return "ip:" + string(kind) + ":" + addr
}

// errRateLimited is the management API's 429 (docs/api.md).
var errRateLimited = permiso.Errorf(permiso.ERATELIMIT, "Too many requests; retry later")

// checkLimit counts the request under the per-IP limit of kind, sets the
// RateLimit-* headers and, when refused, returns the 429 error to write:
// an *oauth2.Error for OAuth endpoints, a permiso ERATELIMIT otherwise. A
// limiter failure (Redis unreachable) returns an EUNAVAILABLE error: the
// caller fails closed. Disabled limits and a nil limiter admit everything.
func (s *server) checkLimit(w http.ResponseWriter, r *http.Request, kind limitKind) error {
	lim := s.limitOf(kind)
	if s.limiter == nil || lim.Disabled() {
		return nil
	}
	res, err := s.limiter.Allow(r.Context(), limitKey(kind, ClientIP(r.Context())), lim)
	if err != nil {
		return err
	}
	setRateLimitHeaders(w, res, lim)
	if res.Allowed {
		return nil
	}
	w.Header().Set("Retry-After", ceilSeconds(res.RetryAfter, 1))
	if s.limited != nil {
		s.limited(string(kind))
	}
	if oauthKind(kind) {
		return oauth2.ErrRateLimited.WithRateLimit(res)
	}
	return errRateLimited
}

// writeLimitError writes what checkLimit returned, in the envelope of the
// endpoint. A limiter failure is a 503 with Retry-After: 1, not logged per
// request: the Redis client logs the outage once per interval and counts
// it (redis.Options.Logger).
func writeLimitError(w http.ResponseWriter, r *http.Request, oauth bool, err error) {
	if clientClosed(w, r, err) {
		return
	}
	unavailable := permiso.ErrorCode(err) == permiso.EUNAVAILABLE
	switch {
	case oauth && unavailable:
		w.Header().Set("Retry-After", "1")
		writeNoStore(w, http.StatusServiceUnavailable, oauthErrorBody{Error: oauth2.ErrTemporarilyUnavailable.Code,
			ErrorDescription: "Rate limits cannot be checked right now; retry shortly"})
	case oauth:
		writeOAuth(w, r, err)
	case unavailable:
		writeError(w, r, permiso.Errorf(permiso.EUNAVAILABLE, "Rate limits cannot be checked right now; retry shortly"))
	default:
		writeError(w, r, err)
	}
}

// apiLimitUnrouted applies RATE_LIMIT_API to an API request that matches
// no route (it is answered 404 or 405; routed requests count the limit in
// their batch, checks.go). It fails open: when the limiter is unreachable
// the request goes on. It writes the 429 and returns false when the
// request must stop.
func (s *server) apiLimitUnrouted(w http.ResponseWriter, r *http.Request) bool {
	if s.limiter == nil || s.opts.RateLimits.API.Disabled() || !s.isAPIPath(r.URL.Path) {
		return true
	}
	err := s.checkLimit(w, r, limitAPI)
	if err == nil || permiso.ErrorCode(err) == permiso.EUNAVAILABLE {
		return true
	}
	writeLimitError(w, r, false, err)
	return false
}

// isOAuthPath reports whether path is one of the OAuth endpoints, whose
// errors use the RFC 6749 envelope.
func (s *server) isOAuthPath(path string) bool {
	return strings.HasPrefix(path, s.apiPrefix()+"/auth/")
}

// isPagePath reports whether path is a hosted page of the browser flow,
// which answers errors with the error page rather than JSON.
func (s *server) isPagePath(path string) bool {
	switch strings.TrimPrefix(path, s.apiPrefix()) {
	case pathAuthorize, pathConsent, pathEndSession, pathPassword, pathMFA, pathMFAEnroll:
		return true
	}
	return false
}

func (s *server) apiPrefix() string {
	if s.opts.APIV1Prefix == "/" {
		return ""
	}
	return s.opts.APIV1Prefix
}

// isAPIPath reports whether path is under API_V1_PREFIX. With the API
// mounted at the root, everything but the operational endpoints (/,
// /health*, discovery, documentation, metrics) is API.
func (s *server) isAPIPath(path string) bool {
	if p := s.apiPrefix(); p != "" {
		return path == p || strings.HasPrefix(path, p+"/")
	}
	switch {
	case path == "/", path == "/health", strings.HasPrefix(path, "/health/"),
		strings.HasPrefix(path, "/.well-known/"):
		return false
	case s.opts.DocsURL != "" && strings.TrimSuffix(path, "/") == s.opts.DocsURL:
		return false
	}
	return true
}

// Response headers of the rate limits (docs/abuse-resistance.md). They
// follow draft-ietf-httpapi-ratelimit-headers (RateLimit-Limit,
// RateLimit-Remaining, RateLimit-Reset in delta seconds, RateLimit-Policy
// "N;w=seconds"); 429 responses add Retry-After (RFC 9110 §10.2.3).
// Header names are case-insensitive; these are spelled as net/http
// canonicalizes them (and sends them), so that setting them on every
// limited request does not build the canonical name each time.
const (
	hdrRateLimit     = "Ratelimit-Limit"
	hdrRateRemaining = "Ratelimit-Remaining"
	hdrRateReset     = "Ratelimit-Reset"
	hdrRatePolicy    = "Ratelimit-Policy"
)

// setRateLimitHeaders describes res on the response. When several limits
// apply to one request (the API-wide limit, the endpoint's, a client's
// own), the headers show the tightest: a refusal wins, then the fewest
// remaining requests.
func setRateLimitHeaders(w http.ResponseWriter, res permiso.LimitResult, lim permiso.Limit) {
	if res.Limit <= 0 {
		return
	}
	// The map is written under the canonical keys directly: Header.Set
	// would canonicalize (and allocate) each key on every response.
	h := w.Header()
	if prev := h[keyRateRemaining]; len(prev) > 0 && res.Allowed {
		if n, err := strconv.Atoi(prev[0]); err == nil && n <= res.Remaining {
			return
		}
	}
	// The four values are formatted into one buffer and become one
	// string, cut into the four; the four header slices share one array,
	// each with a capacity of one (an append to one copies it). Two
	// allocations per response rather than up to eight.
	var buf [4*20 + 3]byte
	b := strconv.AppendInt(buf[:0], int64(res.Limit), 10)
	limitEnd := len(b)
	b = strconv.AppendInt(b, int64(res.Remaining), 10)
	remainingEnd := len(b)
	b = strconv.AppendInt(b, secondsUp(res.Reset, 0), 10)
	resetEnd := len(b)
	b = strconv.AppendInt(b, int64(lim.Count), 10)
	b = strconv.AppendInt(append(b, ";w="...), secondsUp(lim.Period, 1), 10)
	s := string(b)
	v := &[4]string{s[:limitEnd], s[limitEnd:remainingEnd], s[remainingEnd:resetEnd], s[resetEnd:]}
	h[keyRateLimit] = v[0:1:1]
	h[keyRateRemaining] = v[1:2:2]
	h[keyRateReset] = v[2:3:3]
	h[keyRatePolicy] = v[3:4:4]
}

// The canonical forms of the rate-limit header names, the keys
// http.Header stores them under.
var (
	keyRateLimit     = http.CanonicalHeaderKey(hdrRateLimit)
	keyRateRemaining = http.CanonicalHeaderKey(hdrRateRemaining)
	keyRateReset     = http.CanonicalHeaderKey(hdrRateReset)
	keyRatePolicy    = http.CanonicalHeaderKey(hdrRatePolicy)
)

// setClientRateLimitHeaders shows a service client's own limit (from the
// token pipeline) when it is tighter than what the headers show.
func setClientRateLimitHeaders(w http.ResponseWriter, res *permiso.LimitResult) {
	if res == nil {
		return
	}
	period := res.Period
	if period == 0 {
		period = time.Minute
		if res.Reset > 2*time.Minute || res.RetryAfter > 2*time.Minute {
			period = time.Hour
		}
	}
	setRateLimitHeaders(w, *res, permiso.Limit{Count: res.Limit, Period: period})
}

// ceilSeconds formats d in whole seconds, rounded up, at least floor.
func ceilSeconds(d time.Duration, floor int64) string {
	return strconv.FormatInt(secondsUp(d, floor), 10)
}

// secondsUp is d in whole seconds, rounded up, at least floor.
func secondsUp(d time.Duration, floor int64) int64 {
	return max(int64((d+time.Second-1)/time.Second), floor)
}

// tokenRateLimitHeaders adds a service client's own limit, from the
// token pipeline's response or error, to the headers.
func tokenRateLimitHeaders(w http.ResponseWriter, resp oauth2.TokenResponse, err error) {
	if err == nil {
		setClientRateLimitHeaders(w, resp.RateLimit)
		return
	}
	var oe *oauth2.Error
	if errors.As(err, &oe) && oe.RateLimit != nil {
		setClientRateLimitHeaders(w, oe.RateLimit)
	}
}

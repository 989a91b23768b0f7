package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/oauth2"
)

// reqInfo is the per-request state that the middleware chain shares. One
// value is created per request by the request-id middleware and filled in
// place by the later ones, so the chain copies the request only once.
type reqInfo struct {
	id          string
	peer        netip.Addr // socket peer
	peerTrusted bool       // peer is in Options.TrustedProxies
	clientIP    netip.Addr
	logger      *slog.Logger
	// userAgent is the User-Agent header made storable (cleanUserAgent).
	userAgent string
	// idHeader holds id as the X-Request-Id response header's value.
	idHeader [1]string
	// principal is the authenticated caller of a request that guard
	// admitted (principalFrom), and asAdmin says whether as an
	// administrator (actingAsAdmin); guard sets both before the route's
	// handler runs. principal is nil on public routes.
	principal *oauth2.Principal
	asAdmin   bool
	// limits holds the request's limit batch (requestLimits), which is
	// passed as an argument, never read from here.
	limits permiso.Limits
	// copy is the copy of the request that requestID made to carry this
	// info, which no one else holds: limitBody sets its body limit on it
	// rather than copying it again.
	copy *http.Request
}

type infoKey struct{}

func infoFrom(ctx context.Context) *reqInfo {
	info, _ := ctx.Value(infoKey{}).(*reqInfo)
	return info
}

// RequestID returns the id of the request that ctx belongs to, as sent in
// the X-Request-Id response header, or "" outside a request.
func RequestID(ctx context.Context) string {
	if info := infoFrom(ctx); info != nil {
		return info.id
	}
	return ""
}

// ClientIP returns the address of the client that sent the request ctx
// belongs to: the socket peer, or the address reported by a trusted proxy.
// It returns the zero netip.Addr outside a request or when the peer
// address is unknown.
func ClientIP(ctx context.Context) netip.Addr {
	if info := infoFrom(ctx); info != nil {
		return info.clientIP
	}
	return netip.Addr{}
}

// maxUserAgentBytes bounds the User-Agent recorded with sessions, refresh
// tokens and audit events; real ones are far shorter.
const maxUserAgentBytes = 512

// cleanUserAgent is the request's User-Agent as it is recorded: free text
// that is only recorded, so it is made storable on every backend
// (permiso.CleanText: invalid UTF-8 replaced, NUL removed, at most
// maxUserAgentBytes) and never fails the request (docs/security-model.md,
// "Untrusted bytes").
func cleanUserAgent(r *http.Request) string {
	return permiso.CleanText(headerValue(r.Header, "User-Agent"), maxUserAgentBytes)
}

// userAgent returns the request's cleaned User-Agent, as the request-id
// middleware stored it.
func userAgent(r *http.Request) string {
	if info := infoFrom(r.Context()); info != nil {
		return info.userAgent
	}
	return cleanUserAgent(r)
}

// loggerFrom returns the server's logger for the request, falling back to
// slog.Default() when ctx does not come through NewServer's chain.
func loggerFrom(ctx context.Context) *slog.Logger {
	if info := infoFrom(ctx); info != nil && info.logger != nil {
		return info.logger
	}
	return slog.Default()
}

package httpapi

import (
	"context"
	"log/slog"
	"net/netip"
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

// loggerFrom returns the server's logger for the request, falling back to
// slog.Default() when ctx does not come through NewServer's chain.
func loggerFrom(ctx context.Context) *slog.Logger {
	if info := infoFrom(ctx); info != nil && info.logger != nil {
		return info.logger
	}
	return slog.Default()
}

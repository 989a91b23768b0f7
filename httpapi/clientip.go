package httpapi

import (
	"net/http"
	"net/netip"
	"strings"
)

// parseHostAddr parses a socket address ("ip:port", "[ip6]:port") or a
// bare IP, as found in RemoteAddr. IPv4 addresses mapped into IPv6 are
// unmapped so that IPv4 prefixes match them, and IPv6 zones are dropped.
func parseHostAddr(s string) netip.Addr {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 64 {
		return netip.Addr{}
	}
	// A socket address ("ip:port", "[ip6]:port") and a bare address
	// never both parse (ParseAddrPort wants an IPv6 host in brackets), so
	// the order of the two attempts does not change the result; trying
	// the likelier form first spares the other's error, which allocates,
	// on every request (RemoteAddr has a port, a forwarded address not).
	withPort := s[0] == '[' || strings.Count(s, ":") == 1
	for range 2 {
		if withPort {
			if ap, err := netip.ParseAddrPort(s); err == nil {
				return ap.Addr().Unmap().WithZone("")
			}
		} else if a, err := netip.ParseAddr(s); err == nil {
			return a.Unmap().WithZone("")
		}
		withPort = !withPort
	}
	// A bracketed IPv6 address without a port: "[::1]".
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap().WithZone("")
		}
	}
	return netip.Addr{}
}

// parseHeaderAddr parses an address reported in X-Forwarded-For or
// X-Real-IP like parseHostAddr, but refuses zoned IPv6 addresses, which no
// proxy reports for a remote client.
func parseHeaderAddr(s string) netip.Addr {
	if strings.IndexByte(s, '%') >= 0 {
		return netip.Addr{}
	}
	return parseHostAddr(s)
}

// isTrusted reports whether a lies in one of the trusted prefixes.
func isTrusted(trusted []netip.Prefix, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr determines the client's address.
//
// A peer that is not a trusted proxy is the client, whatever its headers
// say. Behind a trusted proxy, X-Forwarded-For (all its header lines, in
// order) is walked from the right, skipping trusted proxies; the first
// untrusted address is the client. Entries left of it were written by the
// client and are never believed. An unparseable entry stops the walk and
// the last trusted hop (the one that forwarded the garbage) is taken. When
// every entry is trusted, the leftmost one is the client. Without
// X-Forwarded-For, a valid X-Real-IP set by the trusted proxy is used.
func clientAddr(trusted []netip.Prefix, peer netip.Addr, peerTrusted bool, xff []string, xRealIP string) netip.Addr {
	if !peerTrusted {
		return peer
	}
	last := peer // the nearest hop known to be a trusted proxy's report
	seen := false
	for i := len(xff) - 1; i >= 0; i-- {
		line := xff[i]
		for {
			var entry string
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				entry, line = line[j+1:], line[:j]
			} else {
				entry, line = line, ""
			}
			if strings.TrimSpace(entry) == "" {
				if line == "" {
					break
				}
				continue // tolerate "a,,b" and trailing commas
			}
			seen = true
			a := parseHeaderAddr(entry)
			if !a.IsValid() {
				return last
			}
			if !isTrusted(trusted, a) {
				return a
			}
			last = a
			if line == "" {
				break
			}
		}
	}
	if seen {
		return last
	}
	if a := parseHeaderAddr(xRealIP); a.IsValid() {
		return a
	}
	return peer
}

// clientAddrFromRequest applies clientAddr to r's headers.
func clientAddrFromRequest(trusted []netip.Prefix, peer netip.Addr, peerTrusted bool, r *http.Request) netip.Addr {
	if !peerTrusted {
		return peer
	}
	return clientAddr(trusted, peer, true, r.Header["X-Forwarded-For"], headerValue(r.Header, "X-Real-Ip"))
}

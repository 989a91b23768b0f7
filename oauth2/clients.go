package oauth2

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/permiso/permiso"
)

// NewClientSecret returns a new service-client secret (256 random bits,
// base64url) and the hash to store (hex SHA-256). The secret is shown to
// the administrator once and never stored.
func NewClientSecret() (secret, hash string) {
	secret = permiso.NewOpaqueToken()
	return secret, permiso.HashToken(secret)
}

// ParseAllowedIPs parses a client's allowed_ips: a comma-separated list of
// IP addresses and CIDR prefixes ("10.0.0.0/8, 192.0.2.7, 2001:db8::/32").
// Spaces around entries and empty entries are ignored. Addresses become
// single-address prefixes; IPv4-mapped IPv6 addresses are unmapped; zones
// are refused. Prefixes are masked ("10.1.2.3/8" is 10.0.0.0/8). An
// unparsable entry is an error naming it; at request time such a list
// allows no address at all (fail closed).
func ParseAllowedIPs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if strings.Contains(entry, "%") {
			return nil, fmt.Errorf("allowed_ips: %q: zones are not allowed", entry)
		}
		if strings.Contains(entry, "/") {
			p, err := netip.ParsePrefix(entry)
			if err != nil {
				return nil, fmt.Errorf("allowed_ips: %q is not an IP address or CIDR prefix", entry)
			}
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(entry)
		if err != nil {
			return nil, fmt.Errorf("allowed_ips: %q is not an IP address or CIDR prefix", entry)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

package webhook

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// internalRanges are the addresses a callback may not reach unless its
// host is allow-listed: what net.IP's predicates miss (shared address
// space used by carriers and clouds, benchmarking, reserved, NAT64, which
// can embed any IPv4 address) besides what they cover.
var internalRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

// Internal reports whether ip is loopback, private, link-local (cloud
// metadata services live at 169.254.169.254), unspecified, multicast or
// another range that is not the public internet.
func Internal(ip net.IP) bool {
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return true
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return true
	}
	a = a.Unmap()
	for _, p := range internalRanges {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parsePattern compiles one ASSAY_WEBHOOK_ALLOW entry into a host matcher.
func parsePattern(p string) (func(host string) bool, error) {
	p = strings.ToLower(strings.TrimSpace(p))
	switch {
	case p == "":
		return nil, fmt.Errorf("empty host pattern")
	case p == "*":
		return func(string) bool { return true }, nil
	case isAddr(p):
		want, _ := netip.ParseAddr(p)
		return func(host string) bool {
			a, err := netip.ParseAddr(host)
			return err == nil && a.Unmap() == want.Unmap()
		}, nil
	case strings.Contains(p, "/"):
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR range", p)
		}
		return func(host string) bool {
			a, err := netip.ParseAddr(host)
			return err == nil && prefix.Contains(a.Unmap())
		}, nil
	case strings.HasPrefix(p, "*."):
		suffix := p[1:] // ".example.com"
		if strings.ContainsAny(suffix[1:], "*") {
			return nil, fmt.Errorf("%q: only a leading *. is allowed", p)
		}
		return func(host string) bool { return strings.HasSuffix(host, suffix) && len(host) > len(suffix) }, nil
	case strings.ContainsAny(p, "*:"):
		return nil, fmt.Errorf("%q: use a host name, *.domain, an IP address or a CIDR range (no port)", p)
	default:
		return func(host string) bool { return host == p }, nil
	}
}

func isAddr(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

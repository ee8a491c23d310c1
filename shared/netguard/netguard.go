// Package netguard decides which network addresses photopipe may connect
// to on behalf of a client (a photo's source, a callback target): public
// unicast addresses, and private or reserved ones only where an operator
// allows them. The check runs in net.Dialer.Control, on the address about
// to be dialled, so names, redirects and DNS rebinding cannot get around it.
package netguard

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
)

// blockedNetworks are the ranges nothing may be dialled in unless
// Policy.Allowed lets them: addresses that reach this host, its
// private networks or its cloud's metadata service, and addresses that are
// not unicast on the public internet (IANA special-purpose registries).
// IPv4-mapped, IPv4-translated, NAT64 and 6to4 addresses are judged by the
// IPv4 address they carry (see embeddedIPv4), so they are not listed.
var blockedNetworks = mustPrefixes(
	// IPv4
	"0.0.0.0/8",       // "this network"; 0.0.0.0 reaches the local host
	"10.0.0.0/8",      // private (RFC 1918)
	"100.64.0.0/10",   // carrier-grade NAT (RFC 6598)
	"127.0.0.0/8",     // loopback
	"169.254.0.0/16",  // link-local, cloud metadata (169.254.169.254)
	"172.16.0.0/12",   // private (RFC 1918)
	"192.0.0.0/24",    // IETF protocol assignments
	"192.0.2.0/24",    // documentation (TEST-NET-1)
	"192.88.99.0/24",  // 6to4 relay anycast (deprecated)
	"192.168.0.0/16",  // private (RFC 1918)
	"198.18.0.0/15",   // benchmarking
	"198.51.100.0/24", // documentation (TEST-NET-2)
	"203.0.113.0/24",  // documentation (TEST-NET-3)
	"224.0.0.0/4",     // multicast
	"240.0.0.0/4",     // reserved, and the broadcast address 255.255.255.255
	// IPv6
	"::/128",         // unspecified
	"::1/128",        // loopback
	"::/96",          // IPv4-compatible (deprecated)
	"64:ff9b:1::/48", // local-use NAT64 (RFC 8215)
	"100::/64",       // discard-only
	"2001::/23",      // IETF protocol assignments, Teredo included
	"2001:db8::/32",  // documentation
	"3fff::/20",      // documentation (RFC 9637)
	"5f00::/16",      // segment routing SIDs (RFC 9602)
	"fc00::/7",       // unique local (private)
	"fe80::/10",      // link-local
	"fec0::/10",      // site-local (deprecated)
	"ff00::/8",       // multicast
)

// Prefixes of IPv6 ranges that carry an IPv4 address, with the byte offset
// of that address.
var (
	nat64Prefix          = netip.MustParsePrefix("64:ff9b::/96")    // RFC 6052: last 4 bytes
	ipv4TranslatedPrefix = netip.MustParsePrefix("::ffff:0:0:0/96") // RFC 2765: last 4 bytes
	sixToFourPrefix      = netip.MustParsePrefix("2002::/16")       // RFC 3056: bytes 2..5
)

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// BlockedError is an address a Policy refuses to connect to.
type BlockedError struct {
	Addr   netip.Addr
	Reason string
}

func (e *BlockedError) Error() string {
	if !e.Addr.IsValid() {
		return fmt.Sprintf("address is not allowed (%s)", e.Reason)
	}
	return fmt.Sprintf("address %s is not allowed (%s)", e.Addr, e.Reason)
}

// ParseNetworks reads CIDR ranges ("10.1.0.0/16", "fd00::/8") and single
// addresses ("127.0.0.2") as prefixes.
func ParseNetworks(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, s := range ss {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		errs = append(errs, fmt.Errorf("%q is neither a CIDR range nor an IP address", s))
	}
	return out, errors.Join(errs...)
}

// Policy decides which addresses may be dialled. The zero Policy allows
// public unicast addresses only.
type Policy struct {
	// Allowed are ranges that may be dialled although they are private or
	// reserved (loopback in tests, an intranet server).
	Allowed []netip.Prefix
}

// Check returns a *BlockedError unless addr may be connected to: a public
// unicast address, or one inside an allowed network. IPv4 carried inside
// an IPv6 address is judged as itself, so ::ffff:127.0.0.1 is loopback.
func (p Policy) Check(addr netip.Addr) error {
	addr = addr.WithZone("")
	if !addr.IsValid() {
		return &BlockedError{Addr: addr, Reason: "not an IP address"}
	}
	if p.allows(addr) {
		return nil
	}
	if v4, ok := embeddedIPv4(addr); ok {
		if p.allows(v4) {
			return nil
		}
		if reason, blocked := blockedReason(v4); blocked {
			return &BlockedError{Addr: addr, Reason: reason + " (" + v4.String() + " inside IPv6)"}
		}
		return nil
	}
	if reason, blocked := blockedReason(addr); blocked {
		return &BlockedError{Addr: addr, Reason: reason}
	}
	return nil
}

func (p Policy) allows(addr netip.Addr) bool {
	for _, n := range p.Allowed {
		if n.Contains(addr) {
			return true
		}
	}
	return false
}

// embeddedIPv4 returns the IPv4 address an IPv6 address stands for:
// IPv4-mapped (::ffff:a.b.c.d), IPv4-translated, NAT64 (64:ff9b::a.b.c.d)
// and 6to4 (2002:aabb:ccdd::). A NAT64 gateway or a 6to4 relay would
// forward the connection to that IPv4 address.
func embeddedIPv4(addr netip.Addr) (netip.Addr, bool) {
	if addr.Is4() {
		return netip.Addr{}, false
	}
	if addr.Is4In6() {
		return addr.Unmap(), true
	}
	b := addr.As16()
	switch {
	case nat64Prefix.Contains(addr), ipv4TranslatedPrefix.Contains(addr):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case sixToFourPrefix.Contains(addr):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return netip.Addr{}, false
}

// blockedReason says why addr (IPv4, or IPv6 that carries no IPv4) is
// refused.
func blockedReason(addr netip.Addr) (string, bool) {
	switch {
	case addr.IsLoopback():
		return "loopback", true
	case addr.IsUnspecified():
		return "unspecified", true
	case addr.IsPrivate():
		return "private network", true
	case addr.IsLinkLocalUnicast(), addr.IsLinkLocalMulticast():
		return "link-local", true
	case addr.IsMulticast(), addr.IsInterfaceLocalMulticast():
		return "multicast", true
	}
	for _, n := range blockedNetworks {
		if n.Contains(addr) {
			return "reserved range " + n.String(), true
		}
	}
	return "", false
}

// Control is a net.Dialer Control hook: it runs after DNS, on the very
// address about to be connected to (every redirect and every resolved
// address included), and before the connection is attempted. So a name
// that resolves to a private address, or is re-pointed there after a
// first check (DNS rebinding), is refused all the same. Only TCP is
// allowed. The dialer's error wraps the *BlockedError.
func (p Policy) Control(network, address string, _ syscall.RawConn) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return &BlockedError{Reason: "network " + network + " is not TCP"}
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &BlockedError{Reason: fmt.Sprintf("%q is not an IP address and port", address)}
	}
	return p.Check(ap.Addr())
}

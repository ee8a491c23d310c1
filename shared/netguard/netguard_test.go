package netguard

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPolicyCheck(t *testing.T) {
	t.Parallel()
	allow := func(ss ...string) []netip.Prefix {
		p, err := ParseNetworks(ss)
		require.NoError(t, err)
		return p
	}
	cases := []struct {
		addr    string
		allowed []netip.Prefix
		ok      bool
	}{
		// IPv4 that never leaves the host or its networks.
		{addr: "127.0.0.1"},
		{addr: "127.255.255.254"},
		{addr: "0.0.0.0"},
		{addr: "0.1.2.3"},
		{addr: "10.0.0.1"},
		{addr: "10.255.255.255"},
		{addr: "172.16.0.1"},
		{addr: "172.31.255.255"},
		{addr: "192.168.1.1"},
		{addr: "169.254.169.254"}, // cloud metadata
		{addr: "169.254.0.1"},
		{addr: "100.64.0.1"}, // carrier-grade NAT
		{addr: "100.100.100.200"},
		{addr: "100.127.255.255"},
		{addr: "224.0.0.1"},
		{addr: "239.255.255.250"},
		{addr: "255.255.255.255"},
		{addr: "240.0.0.1"},
		{addr: "192.0.0.8"},
		{addr: "192.0.2.1"},
		{addr: "192.88.99.1"},
		{addr: "198.18.0.1"},
		{addr: "198.51.100.7"},
		{addr: "203.0.113.9"},
		// IPv6.
		{addr: "::"},
		{addr: "::1"},
		{addr: "fe80::1"},
		{addr: "fe80::1%eth0"},
		{addr: "fc00::1"},
		{addr: "fd12:3456::1"},
		{addr: "fd00:ec2::254"}, // AWS metadata over IPv6
		{addr: "fec0::1"},
		{addr: "ff02::1"},
		{addr: "ff05::2"},
		{addr: "2001:db8::1"},
		{addr: "2001::1"}, // Teredo
		{addr: "100::1"},
		{addr: "3fff::1"},
		{addr: "5f00::1"},
		{addr: "64:ff9b:1::a00:1"},
		{addr: "::127.0.0.1"}, // IPv4-compatible
		// IPv4 inside IPv6 is judged as itself.
		{addr: "::ffff:127.0.0.1"},
		{addr: "::ffff:169.254.169.254"},
		{addr: "::ffff:10.0.0.1"},
		{addr: "::ffff:0.0.0.0"},
		{addr: "::ffff:0:a00:1"},     // IPv4-translated 10.0.0.1
		{addr: "64:ff9b::7f00:1"},    // NAT64 127.0.0.1
		{addr: "64:ff9b::a9fe:a9fe"}, // NAT64 169.254.169.254
		{addr: "2002:7f00:1::1"},     // 6to4 127.0.0.1
		{addr: "2002:c0a8:101::1"},   // 6to4 192.168.1.1
		{addr: "::ffff:8.8.8.8", ok: true},
		{addr: "64:ff9b::808:808", ok: true},
		{addr: "2002:808:808::1", ok: true},
		// The public internet, right beside the refused ranges.
		{addr: "8.8.8.8", ok: true},
		{addr: "1.1.1.1", ok: true},
		{addr: "93.184.215.14", ok: true},
		{addr: "100.63.255.255", ok: true},
		{addr: "100.128.0.0", ok: true},
		{addr: "172.15.255.255", ok: true},
		{addr: "172.32.0.0", ok: true},
		{addr: "192.169.0.1", ok: true},
		{addr: "223.255.255.255", ok: true},
		{addr: "2606:4700:4700::1111", ok: true},
		{addr: "2a00:1450:4001::1", ok: true},
		// The allow-list opens exactly its ranges.
		{addr: "127.0.0.1", allowed: allow("127.0.0.0/8"), ok: true},
		{addr: "::ffff:127.0.0.1", allowed: allow("127.0.0.0/8"), ok: true},
		{addr: "::1", allowed: allow("127.0.0.0/8")},
		{addr: "10.0.0.1", allowed: allow("127.0.0.0/8")},
		{addr: "127.0.0.2", allowed: allow("127.0.0.2"), ok: true},
		{addr: "127.0.0.1", allowed: allow("127.0.0.2")},
		{addr: "10.1.2.3", allowed: allow("10.1.0.0/16"), ok: true},
		{addr: "10.2.0.1", allowed: allow("10.1.0.0/16")},
		{addr: "fd00::1", allowed: allow("fd00::/8"), ok: true},
		{addr: "fc00::1", allowed: allow("fd00::/8")},
		{addr: "::1", allowed: allow("::1"), ok: true},
	}
	for _, tc := range cases {
		name := tc.addr
		if tc.allowed != nil {
			name += " allowing " + tc.allowed[0].String()
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			addr, err := netip.ParseAddr(tc.addr)
			require.NoError(t, err)
			err = Policy{Allowed: tc.allowed}.Check(addr)
			if tc.ok {
				require.NoError(t, err)
				return
			}
			var blocked *BlockedError
			require.ErrorAs(t, err, &blocked)
			require.NotEmpty(t, blocked.Reason)
		})
	}
}

func TestControlChecksTheDialledAddress(t *testing.T) {
	t.Parallel()
	p := Policy{}
	for _, tc := range []struct {
		network, address string
		ok               bool
	}{
		{"tcp", "169.254.169.254:80", false},
		{"tcp4", "10.0.0.1:443", false},
		{"tcp6", "[fe80::1%lo]:80", false},
		{"tcp6", "[::ffff:127.0.0.1]:80", false},
		{"tcp", "metadata.google.internal:80", false}, // never a name: dialled addresses are resolved
		{"udp", "8.8.8.8:53", false},
		{"unix", "/var/run/docker.sock", false},
		{"tcp", "8.8.8.8:443", true},
		{"tcp6", "[2606:4700:4700::1111]:443", true},
	} {
		err := p.Control(tc.network, tc.address, nil)
		if tc.ok {
			require.NoError(t, err, tc.address)
			continue
		}
		var blocked *BlockedError
		require.ErrorAs(t, err, &blocked, "%s %s", tc.network, tc.address)
	}
}

func TestParseNetworks(t *testing.T) {
	t.Parallel()
	got, err := ParseNetworks([]string{" 127.0.0.0/8", "10.1.2.3/16", "127.0.0.2", "fd00::/8", "::1", ""})
	require.NoError(t, err)
	want := []string{"127.0.0.0/8", "10.1.0.0/16", "127.0.0.2/32", "fd00::/8", "::1/128"}
	require.Len(t, got, len(want))
	for i, p := range got {
		require.Equal(t, want[i], p.String())
	}
	_, err = ParseNetworks([]string{"10.0.0.0/33", "localhost", "fe80::1%eth0", "192.168.0.0/16"})
	require.Error(t, err)
	for _, bad := range []string{"10.0.0.0/33", "localhost", "fe80::1%eth0"} {
		require.Contains(t, err.Error(), bad)
	}
	require.NotContains(t, err.Error(), "192.168.0.0/16")
}

package fetch

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/event"
)

// loopback is the allow-list of clients made by newClient.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// guardLoopback is a safety net under the check being tested: whatever the
// check decides, the client never connects beyond loopback, so a broken
// check fails the test instead of sending traffic to 10.x or 169.254.x.
func guardLoopback(tb testing.TB, c *Client) {
	tb.Helper()
	check := c.dialer.Control
	c.dialer.Control = func(network, address string, rc syscall.RawConn) error {
		if err := check(network, address, rc); err != nil {
			return err
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !ap.Addr().Unmap().IsLoopback() {
			tb.Errorf("the address check let the client connect to %s", address)
			return errors.New("test safety net: only loopback may be dialled")
		}
		return nil
	}
}

// counted serves "image" on l and counts the requests that reached it.
func counted(tb testing.TB, l net.Listener) (string, *atomic.Int32) {
	tb.Helper()
	var hits atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, "image")
	})}
	go func() { _ = srv.Serve(l) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String(), &hits
}

func listen(tb testing.TB, addr string) net.Listener {
	tb.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Skipf("cannot listen on %s here: %v", addr, err)
	}
	return l
}

func TestFetchRefusesBlockedAddresses(t *testing.T) {
	t.Parallel()
	v4, v4hits := counted(t, listen(t, "127.0.0.1:0"))
	port := v4[strings.LastIndex(v4, ":")+1:]
	v6, v6hits := counted(t, listen(t, "[::1]:0"))

	// The same server answers when its range is allowed: what follows is
	// refused for its address alone.
	got, err := fetchAll(t.Context(), newClient(t), v4+"/photo.jpg")
	require.NoError(t, err)
	require.Equal(t, "image", string(got))
	v4hits.Store(0)

	for _, url := range []string{
		v4 + "/photo.jpg",
		"http://localhost:" + port + "/photo.jpg", // a name resolving to loopback
		"http://[::ffff:127.0.0.1]:" + port + "/photo.jpg",
		"http://[::ffff:7f00:1]:" + port + "/photo.jpg",
		"http://0.0.0.0:" + port + "/photo.jpg",
		"http://127.0.0.2:" + port + "/photo.jpg",
		"https://127.0.0.1:" + port + "/photo.jpg",
		v6 + "/photo.jpg",
		// Never connected to: the check refuses them before the connection
		// (and the safety net would fail the test otherwise).
		"http://169.254.169.254/latest/meta-data/iam/security-credentials/",
		"http://[fd00:ec2::254]/latest/meta-data/",
		"http://[::ffff:169.254.169.254]/latest/meta-data/",
		"http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
		"http://100.100.100.200/latest/meta-data/",
		"http://10.0.0.1/photo.jpg",
		"http://172.16.5.4:8080/photo.jpg",
		"http://192.168.1.1/photo.jpg",
		"http://[fe80::1]/photo.jpg",
		"http://[fc00::1]/photo.jpg",
		"http://224.0.0.1/photo.jpg",
		"http://255.255.255.255/photo.jpg",
	} {
		t.Run(url, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, func(c *Config) { c.AllowedNetworks = nil })
			_, err := c.Fetch(t.Context(), url)
			requireFailure(t, err, event.CodeBlockedAddress, false)
			require.Contains(t, err.Error(), "not allowed")
		})
	}
	t.Cleanup(func() {
		require.Zero(t, v4hits.Load(), "no refused request reached the IPv4 server")
		require.Zero(t, v6hits.Load(), "no refused request reached the IPv6 server")
	})
}

func TestFetchChecksEveryRedirect(t *testing.T) {
	t.Parallel()
	target, targetHits := counted(t, listen(t, "127.0.0.2:0"))
	v6, v6hits := counted(t, listen(t, "[::1]:0"))
	for _, to := range []string{
		target + "/photo.jpg",
		v6 + "/photo.jpg",
		"http://[::ffff:127.0.0.2]:" + target[strings.LastIndex(target, ":")+1:] + "/photo.jpg",
		"http://169.254.169.254/latest/meta-data/",
		"http://192.168.0.1/admin",
	} {
		t.Run(to, func(t *testing.T) {
			t.Parallel()
			// Only the first server's address is allowed.
			from := serve(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, to, http.StatusFound)
			})
			c := newClient(t, func(c *Config) { c.AllowedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} })
			_, err := c.Fetch(t.Context(), from+"/start")
			requireFailure(t, err, event.CodeBlockedAddress, false)
		})
	}
	t.Cleanup(func() {
		require.Zero(t, targetHits.Load(), "no redirect reached 127.0.0.2")
		require.Zero(t, v6hits.Load(), "no redirect reached ::1")
	})
}

func TestFetchAllowsConfiguredNetwork(t *testing.T) {
	t.Parallel()
	url, hits := counted(t, listen(t, "127.0.0.2:0"))
	c := newClient(t, func(c *Config) { c.AllowedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")} })
	got, err := fetchAll(t.Context(), c, url+"/photo.jpg")
	require.NoError(t, err)
	require.Equal(t, "image", string(got))
	require.Equal(t, int32(1), hits.Load())
}

// TestFetchResistsDNSRebinding points a name at an allowed address, then
// at a refused one: the second download is refused although the name is
// the same, because the check is on the address dialled, not the name.
func TestFetchResistsDNSRebinding(t *testing.T) {
	t.Parallel()
	url, hits := counted(t, listen(t, "127.0.0.1:0"))
	port := url[strings.LastIndex(url, ":")+1:]
	var mu sync.Mutex
	answer := netip.MustParseAddr("127.0.0.1")
	resolver := fakeDNS(t, func(name string, qtype uint16) []netip.Addr {
		mu.Lock()
		defer mu.Unlock()
		if qtype != dnsTypeA || name != "photos.rebind.test." {
			return nil
		}
		return []netip.Addr{answer}
	})
	c := newClient(t, func(c *Config) { c.AllowedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} })
	c.dialer.Resolver = resolver

	got, err := fetchAll(t.Context(), c, "http://photos.rebind.test:"+port+"/photo.jpg")
	require.NoError(t, err)
	require.Equal(t, "image", string(got))

	mu.Lock()
	answer = netip.MustParseAddr("127.0.0.2") // the attacker re-points the name
	mu.Unlock()
	c.http.CloseIdleConnections()
	_, err = c.Fetch(t.Context(), "http://photos.rebind.test:"+port+"/photo.jpg")
	requireFailure(t, err, event.CodeBlockedAddress, false)
	require.Contains(t, err.Error(), "127.0.0.2")
	require.Equal(t, int32(1), hits.Load())
}

func TestClientIgnoresProxyEnvironment(t *testing.T) {
	t.Parallel()
	// A proxy would dial the source itself, out of reach of the check.
	tr, ok := newClient(t).http.Transport.(*http.Transport)
	require.True(t, ok)
	require.Nil(t, tr.Proxy, "HTTP_PROXY and friends are not used")
}

// dnsTypeA is the DNS question type of IPv4 addresses.
const dnsTypeA = 1

// fakeDNS is a DNS server on loopback that answers A and AAAA questions
// with answer(name, type), and a resolver that asks only it.
func fakeDNS(tb testing.TB, answer func(name string, qtype uint16) []netip.Addr) *net.Resolver {
	tb.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := dnsAnswer(buf[:n], answer); resp != nil {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	}()
	server := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", server)
	}}
}

// dnsAnswer builds the response to a one-question query.
func dnsAnswer(q []byte, answer func(string, uint16) []netip.Addr) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	var name strings.Builder
	i := 12
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if i+1+l > len(q) {
			return nil
		}
		name.Write(q[i+1 : i+1+l])
		name.WriteByte('.')
		i += 1 + l
	}
	if i+5 > len(q) {
		return nil
	}
	question := q[12 : i+5]
	qtype := binary.BigEndian.Uint16(q[i+1 : i+3])
	addrs := answer(strings.ToLower(name.String()), qtype)
	resp := append([]byte{}, q[0:2]...)           // id
	resp = append(resp, 0x81, 0x80, 0, 1)         // response, recursion; one question
	resp = binary.BigEndian.AppendUint16(resp, 0) // answers, set below
	resp = append(resp, 0, 0, 0, 0)               // no authority, no additional
	resp = append(resp, question...)
	count := 0
	for _, a := range addrs {
		if (qtype == dnsTypeA) != a.Is4() {
			continue
		}
		resp = append(resp, 0xC0, 12) // the question's name
		resp = binary.BigEndian.AppendUint16(resp, qtype)
		resp = append(resp, 0, 1, 0, 0, 0, 0) // class IN, TTL 0
		raw := a.AsSlice()
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(raw)))
		resp = append(resp, raw...)
		count++
	}
	binary.BigEndian.PutUint16(resp[6:8], uint16(count))
	return resp
}

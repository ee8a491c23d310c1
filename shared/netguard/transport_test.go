package netguard_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/netguard"
)

func TestTransportDialsOnlyAllowedAddresses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(srv.Close)

	tr, _ := netguard.Policy{}.Transport(time.Second, time.Second, 1)
	require.Nil(t, tr.Proxy, "no proxy from the environment")
	_, err := (&http.Client{Transport: tr}).Get(srv.URL)
	var blocked *netguard.BlockedError
	require.True(t, errors.As(err, &blocked), "loopback is refused by default: %v", err)

	tr, _ = netguard.Policy{Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}.Transport(time.Second, time.Second, 1)
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
}

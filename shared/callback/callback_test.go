package callback_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/callback"
)

func TestSignAndVerify(t *testing.T) {
	t.Parallel()
	secret, body := []byte("It's a Secret to Everybody"), []byte("Hello, World!")
	// The same vector as GitHub's webhook documentation: receivers can
	// check their code against it.
	sig := callback.Sign(secret, body)
	require.Equal(t, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", sig)
	require.True(t, callback.Verify(secret, body, sig))
	for name, tc := range map[string]struct {
		secret, body []byte
		header       string
	}{
		"other secret":   {[]byte("guess"), body, sig},
		"other body":     {secret, []byte("Hello, World?"), sig},
		"no prefix":      {secret, body, sig[len("sha256="):]},
		"other prefix":   {secret, body, "sha1=" + sig[len("sha256="):]},
		"not hex":        {secret, body, "sha256=zz"},
		"empty":          {secret, body, ""},
		"truncated":      {secret, body, sig[:len(sig)-2]},
		"upper-case hex": {secret, body, "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17"},
	} {
		ok := callback.Verify(tc.secret, tc.body, tc.header)
		if name == "upper-case hex" {
			require.True(t, ok, "hex is case-insensitive")
			continue
		}
		require.False(t, ok, name)
	}
}

package storemaster

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRealStoreMaster(t *testing.T) {
	t.Parallel()
	const path = "../../../../../shared/data/retailpulse/StoreMasterAssignment.csv"
	if _, err := os.Stat(path); err != nil {
		t.Skip("store master sample not present")
	}
	s, err := Load(path)
	require.NoError(t, err)
	require.Equal(t, 4944, s.Len())
	require.True(t, s.Known("RP00001"))
	require.False(t, s.Known("S00339218"))
}

func TestParse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, csv string
		known     []string
		unknown   []string
		err       string
	}{
		{"snake header, CRLF, quoted comma", "area_code,store_name,store_id\r\n1,\"A, B STORE\",S1\r\n2,C,S2\r\n", []string{"S1", "S2"}, []string{"A, B STORE"}, ""},
		{"camel header with BOM", "\xEF\xBB\xBFAreaCode,StoreName,StoreID\n1,X,RP9\n", []string{"RP9"}, []string{"\xEF\xBB\xBFRP9"}, ""},
		{"no id column", "a,b\n1,2\n", nil, nil, "no store_id"},
		{"bad quoting", "store_id,name\nS1,\"unterminated\n", nil, nil, "line"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := Parse(strings.NewReader(tc.csv))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			for _, id := range tc.known {
				require.True(t, s.Known(id), id)
			}
			for _, id := range tc.unknown {
				require.False(t, s.Known(id), id)
			}
		})
	}
}

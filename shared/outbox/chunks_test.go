package outbox

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/database"
)

func TestChunks(t *testing.T) {
	t.Parallel()
	rows := func(topics string) []database.OutboxMessage {
		out := make([]database.OutboxMessage, len(topics))
		for i, c := range topics {
			out[i].Topic = string(c)
		}
		return out
	}
	cases := []struct {
		name   string
		topics string
		size   int
		want   []chunk
	}{
		{"none", "", 3, nil},
		{"one run within size", "aaa", 3, []chunk{{0, 3}}},
		{"split by size", "aaaaaaa", 3, []chunk{{0, 3}, {3, 6}, {6, 7}}},
		{"split by topic", "aabba", 5, []chunk{{0, 2}, {2, 4}, {4, 5}}},
		{"both", "aaaab", 2, []chunk{{0, 2}, {2, 4}, {4, 5}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, chunks(rows(tc.topics), tc.size))
		})
	}
}

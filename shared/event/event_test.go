package event

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTopicsAreTypeNames(t *testing.T) {
	t.Parallel()
	require.Equal(t, "PhotoRequested", TopicPhotoRequested)
	require.Equal(t, "PhotoDownloaded", TopicPhotoDownloaded)
	require.Equal(t, "ThumbnailCreated", TopicThumbnailCreated)
	require.Equal(t, "PhotoFailed", TopicPhotoFailed)
	require.Equal(t, TopicPhotoFailed, Topic(PhotoFailed{}))
}

func TestWireShapeIsVersionedSnakeCase(t *testing.T) {
	t.Parallel()
	e := PhotoRequested{Header: NewHeader("p1", 2), URL: "http://x/a.jpg", Renditions: []string{"thumb"}}
	b, err := json.Marshal(e)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	require.EqualValues(t, SchemaVersion, m["version"])
	require.Equal(t, "p1", m["photo_id"])
	require.EqualValues(t, 2, m["attempt"])
	require.NotEmpty(t, m["event_id"])
	require.NotEmpty(t, m["occurred_at"])
	require.Equal(t, "http://x/a.jpg", m["url"])

	var back PhotoRequested
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, e.Head().EventID, back.EventID)
}

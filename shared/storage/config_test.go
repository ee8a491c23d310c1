package storage_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/envconfig"
	"github.com/photopipe/photopipe/shared/storage"
)

func load(vars map[string]string) (storage.Config, error) {
	r := envconfig.New(func(k string) string { return vars[k] })
	c := storage.LoadConfig(r)
	if err := r.Err(); err != nil {
		return c, err
	}
	return c, c.Validate()
}

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := load(nil)
	require.NoError(t, err)
	require.Equal(t, storage.BackendLocal, c.Backend)
	require.Equal(t, "./var/storage", c.Dir)
	require.Equal(t, "us-east-1", c.S3.Region)
	require.Equal(t, storage.PathStyleAuto, c.S3.PathStyle)
	require.Equal(t, 60*time.Second, c.S3.ConnectTimeout)
}

func TestLoadConfigS3(t *testing.T) {
	t.Parallel()
	c, err := load(map[string]string{
		"STORAGE_BACKEND": "S3", "S3_ENDPOINT": "http://minio:9000", "S3_REGION": "eu-west-1",
		"S3_BUCKET": "photos", "S3_ACCESS_KEY_ID": "id", "S3_SECRET_ACCESS_KEY": "secret",
		"S3_SESSION_TOKEN": "token", "S3_PATH_STYLE": "yes", "S3_CONNECT_TIMEOUT": "5s",
	})
	require.NoError(t, err)
	require.Equal(t, storage.Config{Backend: storage.BackendS3, Dir: "./var/storage", S3: storage.S3Config{
		Endpoint: "http://minio:9000", Region: "eu-west-1", Bucket: "photos", AccessKeyID: "id",
		SecretAccessKey: "secret", SessionToken: "token", PathStyle: storage.PathStyleOn, ConnectTimeout: 5 * time.Second,
	}}, c)

	// No keys means the IAM role: valid.
	_, err = load(map[string]string{"STORAGE_BACKEND": "s3", "S3_ENDPOINT": "https://s3.amazonaws.com", "S3_BUCKET": "b", "S3_PATH_STYLE": "false"})
	require.NoError(t, err)
}

func TestLoadConfigReportsEveryProblem(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		vars map[string]string
		want []string
	}{
		{"unknown backend", map[string]string{"STORAGE_BACKEND": "ftp"}, []string{"STORAGE_BACKEND"}},
		{"s3 without settings", map[string]string{"STORAGE_BACKEND": "s3"}, []string{"S3_ENDPOINT", "S3_BUCKET"}},
		{"bad s3 settings", map[string]string{
			"STORAGE_BACKEND": "s3", "S3_ENDPOINT": "minio:9000", "S3_BUCKET": "b", "S3_ACCESS_KEY_ID": "id",
			"S3_PATH_STYLE": "sometimes", "S3_CONNECT_TIMEOUT": "0s",
		}, []string{"S3_ENDPOINT", "S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY", "S3_PATH_STYLE", "S3_CONNECT_TIMEOUT"}},
		{"endpoint with a path", map[string]string{"STORAGE_BACKEND": "s3", "S3_ENDPOINT": "http://minio:9000/photos", "S3_BUCKET": "b"}, []string{"S3_ENDPOINT"}},
		{"malformed timeout", map[string]string{"S3_CONNECT_TIMEOUT": "soon"}, []string{"S3_CONNECT_TIMEOUT"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(tc.vars)
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w+":")
			}
		})
	}
}

func TestOpenChoosesTheBackend(t *testing.T) {
	t.Parallel()
	s, err := storage.Open(t.Context(), storage.Config{Backend: storage.BackendLocal, Dir: t.TempDir()})
	require.NoError(t, err)
	require.IsType(t, &storage.Local{}, s)
	require.NoError(t, s.Close())

	s, err = storage.Open(t.Context(), storage.Config{Backend: storage.BackendS3, S3: s3Config(t)})
	require.NoError(t, err)
	require.IsType(t, &storage.S3{}, s)
	require.NoError(t, s.Close())

	_, err = storage.Open(t.Context(), storage.Config{Backend: storage.BackendS3})
	require.ErrorContains(t, err, "S3_BUCKET:")
}

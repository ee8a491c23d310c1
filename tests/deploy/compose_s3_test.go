package deploy

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
)

// loadProfile loads docker-compose.yml like loadProject, with profiles
// enabled and env as the only environment (what `.env` or the shell holds).
func loadProfile(t *testing.T, profiles []string, env ...string) *types.Project {
	t.Helper()
	root := repoRoot(t)
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, composeFile)},
		cli.WithWorkingDirectory(root),
		cli.WithEnv(env),
		cli.WithProfiles(profiles),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	require.NoError(t, err)
	p, err := opts.LoadProject(t.Context())
	require.NoError(t, err, "compose-go rejected %s with profiles %v", composeFile, profiles)
	return p
}

// TestComposeDefaultStorageIsTheVolume: without the s3 profile there is no
// MinIO, the services use the local backend on the shared volume and do not
// wait for a bucket.
func TestComposeDefaultStorageIsTheVolume(t *testing.T) {
	p := loadProject(t)
	require.NotContains(t, p.ServiceNames(), "minio")
	require.NotContains(t, p.ServiceNames(), "minio-init")
	for _, name := range appServices {
		svc := service(t, p, name)
		require.Equal(t, "local", env(t, svc, "STORAGE_BACKEND"), name)
		// compose-go keeps the reference; `required: false` is what lets
		// docker compose start the service without the s3 profile.
		if d, ok := svc.DependsOn["minio-init"]; ok {
			require.False(t, d.Required, "%s must not need MinIO by default", name)
		}
	}
}

// TestComposeS3Profile: with the s3 profile and STORAGE_BACKEND=s3 every
// service stores in the MinIO bucket, which a one-shot service creates
// before any of them starts, with credentials that match MinIO's.
func TestComposeS3Profile(t *testing.T) {
	p := loadProfile(t, []string{"s3"}, "STORAGE_BACKEND=s3")

	minio := service(t, p, "minio")
	require.True(t, strings.HasPrefix(minio.Image, "minio/minio:RELEASE."), "MinIO pinned to a release, got %s", minio.Image)
	require.Equal(t, []string{"s3"}, minio.Profiles)
	require.Equal(t, types.ShellCommand{"server", "/data", "--console-address", ":9001"}, minio.Command)
	require.NotNil(t, minio.HealthCheck)
	require.Equal(t, types.HealthCheckTest{"CMD", "mc", "ready", "local"}, minio.HealthCheck.Test)
	require.Equal(t, []string{"9001"}, publishedPorts(minio), "only the console is published; services reach the API inside the network")
	require.Empty(t, minio.ContainerName)
	requireVolumeMount(t, minio, "minio-data", "/data")
	require.Contains(t, p.Volumes, "minio-data")
	user, password := env(t, minio, "MINIO_ROOT_USER"), env(t, minio, "MINIO_ROOT_PASSWORD")
	require.GreaterOrEqual(t, len(password), 8, "MinIO refuses root passwords shorter than 8 characters")

	initSvc := service(t, p, "minio-init")
	require.True(t, strings.HasPrefix(initSvc.Image, "minio/mc:RELEASE."), "mc pinned to a release, got %s", initSvc.Image)
	require.Equal(t, []string{"s3"}, initSvc.Profiles)
	require.Contains(t, []string{"", "no"}, initSvc.Restart, "a one-shot init container must not be restarted")
	require.Equal(t, types.ServiceConditionHealthy, initSvc.DependsOn["minio"].Condition)
	script := strings.Join(initSvc.Entrypoint, " ")
	require.Contains(t, script, "mc alias set photopipe http://minio:9000")
	require.Contains(t, script, `mc mb --ignore-existing "photopipe/$S3_BUCKET"`, "the bucket is created idempotently")
	require.Contains(t, script, `$MINIO_ROOT_USER`, "$$ in the file reaches the shell as $")
	require.Equal(t, user, env(t, initSvc, "MINIO_ROOT_USER"))
	require.Equal(t, password, env(t, initSvc, "MINIO_ROOT_PASSWORD"))
	bucket := env(t, initSvc, "S3_BUCKET")

	known := knownSettings(t)
	for _, name := range appServices {
		t.Run(name, func(t *testing.T) {
			svc := service(t, p, name)
			require.Equal(t, "s3", env(t, svc, "STORAGE_BACKEND"))
			ep, err := url.Parse(env(t, svc, "S3_ENDPOINT"))
			require.NoError(t, err)
			require.Equal(t, "http", ep.Scheme)
			require.Equal(t, "minio", ep.Hostname(), "S3_ENDPOINT must use the compose service name")
			require.Equal(t, "9000", ep.Port(), "MinIO's S3 API port")
			require.Equal(t, bucket, env(t, svc, "S3_BUCKET"), "the bucket minio-init creates")
			require.Equal(t, user, env(t, svc, "S3_ACCESS_KEY_ID"))
			require.Equal(t, password, env(t, svc, "S3_SECRET_ACCESS_KEY"))
			require.Equal(t, "true", env(t, svc, "S3_PATH_STYLE"), "MinIO behind a service name needs path-style URLs")
			env(t, svc, "S3_REGION")
			d, ok := svc.DependsOn["minio-init"]
			require.True(t, ok, "must wait for the bucket")
			require.Equal(t, types.ServiceConditionCompletedSuccessfully, d.Condition)
			require.False(t, d.Required, "optional, so the default stack starts without the s3 profile")
			for k := range svc.Environment {
				require.True(t, known[k], "%s sets %s, which no service reads", name, k)
			}
		})
	}

	// Overrides reach every service and MinIO alike.
	p = loadProfile(t, []string{"s3"}, "STORAGE_BACKEND=s3", "S3_BUCKET=pics", "MINIO_ROOT_USER=admin", "MINIO_ROOT_PASSWORD=longsecret")
	require.Equal(t, "pics", env(t, service(t, p, "minio-init"), "S3_BUCKET"))
	for _, name := range appServices {
		svc := service(t, p, name)
		require.Equal(t, "pics", env(t, svc, "S3_BUCKET"))
		require.Equal(t, "admin", env(t, svc, "S3_ACCESS_KEY_ID"))
		require.Equal(t, "longsecret", env(t, svc, "S3_SECRET_ACCESS_KEY"))
	}
	require.Equal(t, "admin", env(t, service(t, p, "minio"), "MINIO_ROOT_USER"))
}

// TestComposeSetsOnlyKnownSettings catches a misspelt variable in the
// default stack, which a service would silently ignore.
func TestComposeSetsOnlyKnownSettings(t *testing.T) {
	p := loadProject(t)
	known := knownSettings(t)
	for _, name := range appServices {
		for k := range service(t, p, name).Environment {
			require.True(t, known[k], "%s sets %s, which no service reads", name, k)
		}
	}
}

// TestComposeWorkerHost: on a host that runs only workers, the shared
// servers come from the environment, the way docs/DEPLOYMENT.md describes.
func TestComposeWorkerHost(t *testing.T) {
	p := loadProfile(t, nil,
		"AMQP_URL=amqp://pp:pw@mq-1:5672/,amqp://pp:pw@mq-2:5672/",
		"DATABASE_URL=postgres://pp:pw@db:5432/photopipe?sslmode=require",
		"STORAGE_BACKEND=s3", "S3_ENDPOINT=https://s3.eu-west-1.amazonaws.com", "S3_REGION=eu-west-1",
		"S3_BUCKET=photos", "S3_ACCESS_KEY_ID=AKIAEXAMPLE", "S3_SECRET_ACCESS_KEY=secretexample")
	for _, name := range workers {
		svc := service(t, p, name)
		require.Equal(t, "amqp://pp:pw@mq-1:5672/,amqp://pp:pw@mq-2:5672/", env(t, svc, "AMQP_URL"))
		require.Equal(t, "postgres://pp:pw@db:5432/photopipe?sslmode=require", env(t, svc, "DATABASE_URL"))
		require.Equal(t, "https://s3.eu-west-1.amazonaws.com", env(t, svc, "S3_ENDPOINT"))
		require.Equal(t, "eu-west-1", env(t, svc, "S3_REGION"))
		require.Equal(t, "photos", env(t, svc, "S3_BUCKET"))
		require.Equal(t, "AKIAEXAMPLE", env(t, svc, "S3_ACCESS_KEY_ID"))
		require.Equal(t, "secretexample", env(t, svc, "S3_SECRET_ACCESS_KEY"))
	}
}

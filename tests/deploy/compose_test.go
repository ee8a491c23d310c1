package deploy

import (
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
)

const (
	composeFile = "docker-compose.yml"
	dockerfile  = "deployments/Dockerfile"
)

var (
	// appServices are the Go services built from deployments/Dockerfile.
	appServices = []string{"ingest-api", "downloader", "resizer", "recorder"}
	// workers must be horizontally scalable (`docker compose up --scale resizer=3`).
	workers = []string{"downloader", "resizer", "recorder"}
	// publishers are the only services allowed to publish host ports.
	publishers = []string{"rabbitmq", "postgres", "ingest-api"}
)

// loadProject loads docker-compose.yml exactly as `docker compose` would
// (schema validation, interpolation, normalisation, consistency checks, path
// resolution), but without the caller's environment or a .env file, so the
// result does not depend on the machine running the test.
func loadProject(t *testing.T) *types.Project {
	t.Helper()
	root := repoRoot(t)
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, composeFile)},
		cli.WithWorkingDirectory(root),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	require.NoError(t, err)
	project, err := opts.LoadProject(t.Context())
	require.NoError(t, err, "compose-go rejected %s", composeFile)
	return project
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	svc, err := p.GetService(name)
	require.NoError(t, err, "service %q missing from %s", name, composeFile)
	return svc
}

func env(t *testing.T, svc types.ServiceConfig, key string) string {
	t.Helper()
	v, ok := svc.Environment[key]
	require.True(t, ok, "%s: environment %s not set", svc.Name, key)
	require.NotNil(t, v, "%s: environment %s has no value", svc.Name, key)
	require.NotEmpty(t, *v, "%s: environment %s is empty", svc.Name, key)
	return *v
}

func duration(d *types.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return time.Duration(*d)
}

func publishedPorts(svc types.ServiceConfig) []string {
	var out []string
	for _, p := range svc.Ports {
		out = append(out, p.Published)
	}
	return out
}

func TestComposeServicesExist(t *testing.T) {
	p := loadProject(t)
	require.Equal(t, "photopipe", p.Name)
	names := p.ServiceNames()
	for _, want := range []string{"rabbitmq", "postgres", "storage-init", "ingest-api", "downloader", "resizer", "recorder"} {
		require.Contains(t, names, want)
	}
	for _, vol := range []string{"storage", "pg-data", "rabbitmq-data"} {
		require.Contains(t, p.Volumes, vol, "named volume %q not declared", vol)
	}
}

func TestComposeRabbitMQ(t *testing.T) {
	svc := service(t, loadProject(t), "rabbitmq")
	require.Contains(t, svc.Image, "rabbitmq:3.13")
	require.Contains(t, svc.Image, "management")
	require.ElementsMatch(t, []string{"5672", "15672"}, publishedPorts(svc))
	require.NotNil(t, svc.HealthCheck)
	require.Equal(t, types.HealthCheckTest{"CMD", "rabbitmq-diagnostics", "-q", "ping"}, svc.HealthCheck.Test)
	require.Equal(t, 5*time.Second, duration(svc.HealthCheck.Interval))
	require.NotNil(t, svc.HealthCheck.Retries)
	require.EqualValues(t, 20, *svc.HealthCheck.Retries)
	requireVolumeMount(t, svc, "rabbitmq-data", "/var/lib/rabbitmq")
}

func TestComposePostgres(t *testing.T) {
	svc := service(t, loadProject(t), "postgres")
	require.Equal(t, "postgres:16", svc.Image)
	require.Equal(t, "postgres", env(t, svc, "POSTGRES_USER"))
	require.Equal(t, "postgres", env(t, svc, "POSTGRES_PASSWORD"))
	require.Equal(t, "photopipe", env(t, svc, "POSTGRES_DB"))
	require.Equal(t, []string{"5432"}, publishedPorts(svc))
	require.NotNil(t, svc.HealthCheck)
	require.Contains(t, strings.Join(svc.HealthCheck.Test, " "), "pg_isready -U postgres -d photopipe")
	requireVolumeMount(t, svc, "pg-data", "/var/lib/postgresql/data")
}

func TestComposeStorageInit(t *testing.T) {
	svc := service(t, loadProject(t), "storage-init")
	require.Equal(t, "busybox:1.36", svc.Image)
	require.Contains(t, strings.Join(svc.Command, " "), "chown -R 65532:65532 /data")
	require.Empty(t, svc.Ports)
	require.Contains(t, []string{"", "no"}, svc.Restart, "a one-shot init container must not be restarted")
	requireVolumeMount(t, svc, "storage", "/data")
}

func TestComposeAppServices(t *testing.T) {
	p := loadProject(t)
	root := repoRoot(t)
	pg := service(t, p, "postgres")

	for _, name := range appServices {
		t.Run(name, func(t *testing.T) {
			svc := service(t, p, name)

			// Image built from the shared Dockerfile with the right SERVICE arg.
			require.NotNil(t, svc.Build, "service must be built, not pulled")
			ctxDir := svc.Build.Context
			if !filepath.IsAbs(ctxDir) {
				ctxDir = filepath.Join(p.WorkingDir, ctxDir)
			}
			require.Equal(t, root, filepath.Clean(ctxDir), "build context must be the repo root")
			require.Equal(t, dockerfile, filepath.ToSlash(svc.Build.Dockerfile))
			arg, ok := svc.Build.Args["SERVICE"]
			require.True(t, ok, "build arg SERVICE missing")
			require.NotNil(t, arg)
			require.Equal(t, name, *arg)

			// Health: the binary's own `healthcheck` subcommand (no curl in distroless).
			hc := svc.HealthCheck
			require.NotNil(t, hc)
			require.False(t, hc.Disable)
			require.Equal(t, types.HealthCheckTest{"CMD", "/app", "healthcheck"}, hc.Test)
			require.Contains(t, strings.Join(hc.Test, " "), "healthcheck")
			require.Equal(t, 5*time.Second, duration(hc.Interval))
			require.Equal(t, 3*time.Second, duration(hc.Timeout))
			require.Equal(t, 10*time.Second, duration(hc.StartPeriod))
			require.NotNil(t, hc.Retries)
			require.EqualValues(t, 10, *hc.Retries)

			// Start order.
			for dep, cond := range map[string]string{
				"rabbitmq":     types.ServiceConditionHealthy,
				"postgres":     types.ServiceConditionHealthy,
				"storage-init": types.ServiceConditionCompletedSuccessfully,
			} {
				d, ok := svc.DependsOn[dep]
				require.True(t, ok, "must depend on %s", dep)
				require.Equal(t, cond, d.Condition, "depends_on %s", dep)
			}

			// Room for SHUTDOWN_TIMEOUT (30 s in the workers) and the
			// exit after it; Docker's default is 10 s.
			require.NotNil(t, svc.StopGracePeriod, "stop_grace_period")
			require.GreaterOrEqual(t, duration(svc.StopGracePeriod), 35*time.Second, "stop_grace_period")

			requireVolumeMount(t, svc, "storage", "/data")
			require.Equal(t, types.RestartPolicyUnlessStopped, svc.Restart)
			require.Empty(t, svc.ContainerName, "container_name prevents scaling and parallel stacks")

			// Environment (x-common-env anchor) and its consistency with the
			// rabbitmq/postgres services.
			amqp, err := url.Parse(env(t, svc, "AMQP_URL"))
			require.NoError(t, err)
			require.Equal(t, "amqp", amqp.Scheme)
			require.Equal(t, "rabbitmq", amqp.Hostname(), "AMQP_URL must use the compose service name")
			require.Equal(t, "5672", amqp.Port())

			db, err := url.Parse(env(t, svc, "DATABASE_URL"))
			require.NoError(t, err)
			require.Equal(t, "postgres", db.Scheme)
			require.Equal(t, "postgres", db.Hostname(), "DATABASE_URL must use the compose service name")
			require.Equal(t, "5432", db.Port())
			require.Equal(t, env(t, pg, "POSTGRES_USER"), db.User.Username())
			pw, _ := db.User.Password()
			require.Equal(t, env(t, pg, "POSTGRES_PASSWORD"), pw)
			require.Equal(t, "/"+env(t, pg, "POSTGRES_DB"), db.Path)
			require.Equal(t, "disable", db.Query().Get("sslmode"))

			require.Equal(t, "/data", env(t, svc, "STORAGE_DIR"))
			require.Equal(t, "json", env(t, svc, "LOG_FORMAT"))
			require.Equal(t, ":8081", env(t, svc, "HEALTH_ADDR"))
		})
	}
}

func TestComposeIngestAPIPublishes8080(t *testing.T) {
	svc := service(t, loadProject(t), "ingest-api")
	require.Equal(t, ":8080", env(t, svc, "HTTP_ADDR"))
	require.Len(t, svc.Ports, 1)
	require.Equal(t, "8080", svc.Ports[0].Published)
	require.EqualValues(t, 8080, svc.Ports[0].Target)
	require.Equal(t, "tcp", svc.Ports[0].Protocol)
}

func TestComposeWorkersAreScalable(t *testing.T) {
	p := loadProject(t)
	for _, name := range workers {
		t.Run(name, func(t *testing.T) {
			svc := service(t, p, name)
			require.Empty(t, svc.ContainerName, "container_name breaks --scale")
			require.Empty(t, svc.Ports, "published ports break --scale")
			require.NotContains(t, svc.Environment, "HTTP_ADDR")
		})
	}
}

func TestComposeOnlyExpectedServicesPublishPorts(t *testing.T) {
	p := loadProject(t)
	for name, svc := range p.Services {
		if len(svc.Ports) > 0 {
			require.Contains(t, publishers, name, "service %s must not publish host ports", name)
		}
		require.Empty(t, svc.ContainerName, "service %s: no container_name anywhere", name)
	}
}

// TestComposeBuildArgsNameServiceDirs guards against a typo in a SERVICE build
// arg: the Dockerfile builds ./services/${SERVICE}.
func TestComposeBuildArgsNameServiceDirs(t *testing.T) {
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "services")); os.IsNotExist(err) {
		t.Skip("services/ does not exist yet")
	}
	p := loadProject(t)
	for _, name := range appServices {
		svc := service(t, p, name)
		require.NotNil(t, svc.Build)
		require.NotNil(t, svc.Build.Args["SERVICE"])
		require.DirExists(t, filepath.Join(root, "services", *svc.Build.Args["SERVICE"]))
	}
}

func requireVolumeMount(t *testing.T, svc types.ServiceConfig, source, target string) {
	t.Helper()
	i := slices.IndexFunc(svc.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Target == target
	})
	require.GreaterOrEqual(t, i, 0, "%s: nothing mounted at %s", svc.Name, target)
	v := svc.Volumes[i]
	require.Equal(t, types.VolumeTypeVolume, v.Type, "%s: %s must be a named volume", svc.Name, target)
	require.Equal(t, source, v.Source)
	require.False(t, v.ReadOnly, "%s: %s must be writable", svc.Name, target)
}

package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

const (
	goImage      = "golang:1.26-bookworm"
	runtimeImage = "gcr.io/distroless/static-debian12:nonroot"
)

// parseDockerfile parses deployments/Dockerfile with BuildKit's own parser and
// instruction decoder (the code `docker build` runs), failing on any parse
// error, parser warning or build-check (lint) warning.
func parseDockerfile(t *testing.T) []instructions.Stage {
	t.Helper()
	res, err := parser.Parse(bytes.NewReader(readRepoFile(t, dockerfile)))
	require.NoError(t, err)
	for _, w := range res.Warnings {
		t.Errorf("parser warning: %s (%s)", w.Short, bytes.Join(w.Detail, []byte(" ")))
	}

	var lints []string
	lint := linter.New(&linter.Config{
		Warn: func(rule, _, _, msg string, loc []parser.Range) {
			lints = append(lints, fmt.Sprintf("%s: %s %v", rule, msg, loc))
		},
	})
	stages, _, err := instructions.Parse(res.AST, lint)
	require.NoError(t, err)
	require.Empty(t, lints, "BuildKit build checks")

	// RUN flags (--mount=...) are only decoded on expansion.
	identity := func(word string) (string, error) { return word, nil }
	for _, s := range stages {
		for _, r := range commands[*instructions.RunCommand](s) {
			require.NoError(t, r.Expand(identity), "stage %s: %s", s.Name, r.String())
		}
	}
	return stages
}

func stageNamed(t *testing.T, stages []instructions.Stage, name string) instructions.Stage {
	t.Helper()
	i, ok := instructions.HasStage(stages, name)
	require.True(t, ok, "no stage named %q", name)
	return stages[i]
}

func commands[T instructions.Command](s instructions.Stage) []T {
	var out []T
	for _, c := range s.Commands {
		if v, ok := c.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// index returns the position of the first command in s matching pred, or -1.
func index(s instructions.Stage, pred func(instructions.Command) bool) int {
	return slices.IndexFunc(s.Commands, pred)
}

func TestDockerfileText(t *testing.T) {
	text := string(readRepoFile(t, dockerfile))
	for _, want := range []string{
		"ARG SERVICE",
		"CGO_ENABLED=0",
		"GOOS=linux",
		"-trimpath",
		`-ldflags="-s -w"`,
		"-o /out/app ./services/${SERVICE}",
		"FROM " + goImage,
		"FROM " + runtimeImage,
		"distroless/static",
		"go mod download",
	} {
		require.True(t, strings.Contains(text, want), "%s does not contain %q", dockerfile, want)
	}
}

func TestDockerfileStages(t *testing.T) {
	stages := parseDockerfile(t)
	require.GreaterOrEqual(t, len(stages), 2, "multi-stage build expected")

	t.Run("build", func(t *testing.T) {
		build := stageNamed(t, stages, "build")
		require.Equal(t, goImage, build.BaseName)

		args := commands[*instructions.ArgCommand](build)
		argIdx := index(build, func(c instructions.Command) bool {
			a, ok := c.(*instructions.ArgCommand)
			return ok && slices.ContainsFunc(a.Args, func(kv instructions.KeyValuePairOptional) bool { return kv.Key == "SERVICE" })
		})
		require.NotEmpty(t, args)
		require.GreaterOrEqual(t, argIdx, 0, "ARG SERVICE must be declared in the build stage")

		runs := commands[*instructions.RunCommand](build)
		goBuild := slices.IndexFunc(runs, func(r *instructions.RunCommand) bool {
			return strings.Contains(strings.Join(r.CmdLine, " "), "go build")
		})
		require.GreaterOrEqual(t, goBuild, 0, "no RUN go build")
		mounts := instructions.GetMounts(runs[goBuild])
		require.True(t, slices.ContainsFunc(mounts, func(m *instructions.Mount) bool {
			return m.Type == instructions.MountTypeCache && m.Target == "/root/.cache/go-build"
		}), "go build should use a cache mount for the Go build cache")
		cmd := strings.Join(runs[goBuild].CmdLine, " ")
		for _, want := range []string{"CGO_ENABLED=0", "GOOS=linux", "-trimpath", `-ldflags="-s -w"`, "-o /out/app", "./services/${SERVICE}"} {
			require.Contains(t, cmd, want)
		}

		// Layer caching: module download happens before the sources are
		// copied and before SERVICE is declared (shared by all four images).
		download := index(build, func(c instructions.Command) bool {
			r, ok := c.(*instructions.RunCommand)
			return ok && strings.Contains(strings.Join(r.CmdLine, " "), "go mod download")
		})
		copySrc := index(build, func(c instructions.Command) bool {
			cp, ok := c.(*instructions.CopyCommand)
			return ok && cp.From == "" && slices.Equal(cp.SourcePaths, []string{"."})
		})
		require.GreaterOrEqual(t, download, 0, "no RUN go mod download")
		require.GreaterOrEqual(t, copySrc, 0, "no COPY . . in the build stage")
		require.Less(t, download, copySrc, "go mod download must precede COPY . .")
		require.Less(t, download, argIdx, "go mod download must precede ARG SERVICE")
	})

	t.Run("runtime", func(t *testing.T) {
		final := stages[len(stages)-1]
		require.Equal(t, runtimeImage, final.BaseName)
		require.True(t, strings.HasPrefix(final.BaseName, "gcr.io/distroless/static"))

		copies := commands[*instructions.CopyCommand](final)
		require.Len(t, copies, 1, "the runtime image holds only the binary")
		require.Equal(t, "build", copies[0].From)
		require.Equal(t, []string{"/out/app"}, copies[0].SourcePaths)
		require.Equal(t, "/app", copies[0].DestPath)

		users := commands[*instructions.UserCommand](final)
		require.Len(t, users, 1)
		require.Equal(t, "nonroot:nonroot", users[0].User)

		eps := commands[*instructions.EntrypointCommand](final)
		require.Len(t, eps, 1)
		require.False(t, eps[0].PrependShell, "exec form required: distroless has no shell")
		require.Equal(t, []string{"/app"}, eps[0].CmdLine)

		require.Empty(t, commands[*instructions.RunCommand](final), "distroless has no shell to RUN")
	})
}

// TestDockerignore checks .dockerignore with the matcher BuildKit uses:
// build junk stays out, everything the Go workspace needs stays in.
func TestDockerignore(t *testing.T) {
	patterns, err := ignorefile.ReadAll(bytes.NewReader(readRepoFile(t, ".dockerignore")))
	require.NoError(t, err)
	pm, err := patternmatcher.New(patterns)
	require.NoError(t, err)

	for _, tc := range []struct {
		path     string
		excluded bool
	}{
		{"bin/ingest-api", true},
		{"var/storage/x.jpg", true},
		{".git/HEAD", true},
		{".cache/go-build/00/abc", true},
		{"resizer.test", true},
		{"services/resizer/resizer.test", true},

		{"go.work", false},
		{"go.work.sum", false},
		{"shared/go.mod", false},
		{"shared/go.sum", false},
		{"shared/config/config.go", false},
		{"services/ingest-api/main.go", false},
		{"services/resizer/go.mod", false},
		{"tests/e2e/go.mod", false},
		{"tests/deploy/go.mod", false},
		{"deployments/Dockerfile", false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			got, err := pm.MatchesOrParentMatches(tc.path)
			require.NoError(t, err)
			require.Equal(t, tc.excluded, got)
		})
	}
}

// TestWorkspaceFitsImage cross-checks go.work against the image: every
// workspace module must reach the build context (the Dockerfile copies all
// go.mod files it finds), and the go directives must be buildable by the
// golang:1.26 builder image (which runs with GOTOOLCHAIN=local).
func TestWorkspaceFitsImage(t *testing.T) {
	root := repoRoot(t)
	workPath := filepath.Join(root, "go.work")
	data, err := os.ReadFile(workPath)
	if os.IsNotExist(err) {
		t.Skip("go.work does not exist yet")
	}
	require.NoError(t, err)
	work, err := modfile.ParseWork(workPath, data, nil)
	require.NoError(t, err)

	patterns, err := ignorefile.ReadAll(bytes.NewReader(readRepoFile(t, ".dockerignore")))
	require.NoError(t, err)
	pm, err := patternmatcher.New(patterns)
	require.NoError(t, err)

	imageGo := strings.TrimSuffix(strings.TrimPrefix(goImage, "golang:"), "-bookworm") // "1.26"
	requireGoLine := func(file, v string) {
		t.Helper()
		require.True(t, v == imageGo || strings.HasPrefix(v, imageGo+"."),
			"%s: go %s cannot be built by %s", file, v, goImage)
	}
	if work.Go != nil {
		requireGoLine("go.work", work.Go.Version)
	}

	for _, use := range work.Use {
		rel := filepath.ToSlash(filepath.Clean(use.Path))
		t.Run(rel, func(t *testing.T) {
			gomod := filepath.Join(root, filepath.FromSlash(rel), "go.mod")
			modData, err := os.ReadFile(gomod)
			require.NoError(t, err, "go.work uses %s but it has no go.mod", rel)
			excluded, err := pm.MatchesOrParentMatches(rel + "/go.mod")
			require.NoError(t, err)
			require.False(t, excluded, "%s/go.mod is excluded by .dockerignore", rel)

			mf, err := modfile.ParseLax(gomod, modData, nil)
			require.NoError(t, err)
			if mf.Go != nil {
				requireGoLine(rel+"/go.mod", mf.Go.Version)
				if work.Go != nil {
					require.GreaterOrEqual(t, semver.Compare("v"+work.Go.Version, "v"+mf.Go.Version), 0,
						"go.work says go %s but %s/go.mod needs go %s (run `go work use`)", work.Go.Version, rel, mf.Go.Version)
				}
			}
		})
	}
}

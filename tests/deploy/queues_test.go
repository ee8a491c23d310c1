package deploy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// queuesByService returns the RabbitMQ queues each service consumes, read
// from the sources the services declare them from (shared/bus/topology.go:
// Subscriptions, the service names; shared/event: Topic(&X{}) makes topic
// "X") and the queue naming rule (ARCHITECTURE.md: "<topic>_<service>",
// but the downloader's PhotoRequested queue is AMQP_PHOTO_PROCESSOR_QUEUE).
func queuesByService(t *testing.T) map[string][]string {
	t.Helper()
	root := repoRoot(t)
	fset := token.NewFileSet()
	topo, err := parser.ParseFile(fset, filepath.Join(root, "shared/bus/topology.go"), nil, parser.SkipObjectResolution)
	require.NoError(t, err)

	services := map[string]string{} // Go constant -> service name
	var subs *ast.CompositeLit
	ast.Inspect(topo, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range spec.Names {
			if i >= len(spec.Values) {
				continue
			}
			if lit, ok := spec.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				services[name.Name], _ = strconv.Unquote(lit.Value)
			}
			if name.Name == "Subscriptions" {
				subs, _ = spec.Values[i].(*ast.CompositeLit)
			}
		}
		return true
	})
	require.NotNil(t, subs, "var Subscriptions not found in shared/bus/topology.go")
	topics := eventTopics(t, filepath.Join(root, "shared/event"))

	out := map[string][]string{}
	for _, el := range subs.Elts {
		pair, ok := el.(*ast.CompositeLit)
		require.True(t, ok, "Subscriptions element is not a literal")
		require.Len(t, pair.Elts, 2)
		sel, ok := pair.Elts[0].(*ast.SelectorExpr)
		require.True(t, ok, "topic is not event.TopicX")
		topic, ok := topics[sel.Sel.Name]
		require.True(t, ok, "%s is not defined as Topic(&X{}) in shared/event", sel.Sel.Name)
		id, ok := pair.Elts[1].(*ast.Ident)
		require.True(t, ok, "service is not a constant")
		svc, ok := services[id.Name]
		require.True(t, ok, "service constant %s not found", id.Name)
		queue := topic + "_" + svc
		if topic == "PhotoRequested" && svc == "downloader" {
			queue = settingDefault(t, "AMQP_PHOTO_PROCESSOR_QUEUE")
		}
		out[svc] = append(out[svc], queue)
	}
	return out
}

// eventTopics maps each TopicX variable of package event to its topic:
// TopicX = Topic(&X{}) is "X".
func eventTopics(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	require.NoError(t, err)
	fset := token.NewFileSet()
	out := map[string]string{}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			spec, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, name := range spec.Names {
				if i >= len(spec.Values) || !strings.HasPrefix(name.Name, "Topic") {
					continue
				}
				call, ok := spec.Values[i].(*ast.CallExpr)
				if !ok || len(call.Args) != 1 {
					continue
				}
				if fn, ok := call.Fun.(*ast.Ident); !ok || fn.Name != "Topic" {
					continue
				}
				if u, ok := call.Args[0].(*ast.UnaryExpr); ok {
					if cl, ok := u.X.(*ast.CompositeLit); ok {
						if typ, ok := cl.Type.(*ast.Ident); ok {
							out[name.Name] = typ.Name
						}
					}
				}
			}
			return true
		})
	}
	return out
}

func TestQueuesByServiceReadsTheTopology(t *testing.T) {
	q := queuesByService(t)
	require.Equal(t, []string{"photo-processor"}, q["downloader"])
	require.Equal(t, []string{"PhotoDownloaded_resizer"}, q["resizer"])
	require.Contains(t, q["recorder"], "ThumbnailCreated_recorder")
	require.Contains(t, q["recorder"], "PhotoFailed_recorder")
	require.NotContains(t, q, "ingest-api", "ingest-api consumes nothing")
}

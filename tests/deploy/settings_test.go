package deploy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

var settingName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// readerMethods are the envconfig.Reader methods that read a variable.
var readerMethods = map[string]bool{"String": true, "Int": true, "Bool": true, "Duration": true, "Bytes": true, "List": true}

var (
	settingsOnce sync.Once
	settings     map[string]bool
	defaults     map[string]string // string defaults: r.String("NAME", "default")
	settingsErr  error
)

// knownSettings returns every environment variable a service reads: the
// first argument of each envconfig.Reader call (r.String("AMQP_URL", ...))
// in the non-test Go sources of services/ and shared/, found by parsing
// them. A deployment file that sets anything else sets a typo.
func knownSettings(t *testing.T) map[string]bool {
	t.Helper()
	root := repoRoot(t)
	settingsOnce.Do(func() {
		settings = map[string]bool{}
		defaults = map[string]string{}
		fset := token.NewFileSet()
		for _, dir := range []string{"services", "shared"} {
			err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
					return err
				}
				f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
				if err != nil {
					return err
				}
				ast.Inspect(f, func(n ast.Node) bool {
					call, ok := n.(*ast.CallExpr)
					if !ok || len(call.Args) == 0 {
						return true
					}
					sel, ok := call.Fun.(*ast.SelectorExpr)
					if !ok || !readerMethods[sel.Sel.Name] {
						return true
					}
					lit, ok := call.Args[0].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						return true
					}
					if name, err := strconv.Unquote(lit.Value); err == nil && settingName.MatchString(name) {
						settings[name] = true
						if def, ok := call.Args[len(call.Args)-1].(*ast.BasicLit); ok && def.Kind == token.STRING && len(call.Args) == 2 {
							defaults[name], _ = strconv.Unquote(def.Value)
						}
					}
					return true
				})
				return nil
			})
			if err != nil {
				settingsErr = err
				return
			}
		}
	})
	require.NoError(t, settingsErr)
	return settings
}

// TestKnownSettingsFindsTheSettings guards the scanner itself: it must see
// settings of every kind and every place (shared packages and services).
func TestKnownSettingsFindsTheSettings(t *testing.T) {
	known := knownSettings(t)
	for _, name := range []string{
		"AMQP_URL", "AMQP_PREFETCH", "DATABASE_URL", "DB_MAX_OPEN_CONNS", "STORAGE_BACKEND", "STORAGE_DIR",
		"S3_ENDPOINT", "S3_BUCKET", "S3_PATH_STYLE", "HTTP_ADDR", "HEALTH_ADDR", "WORKERS", "DOWNLOAD_MAX_BYTES",
		"MAX_PIXELS", "LOG_FORMAT",
	} {
		require.True(t, known[name], "%s not found by the scanner", name)
	}
	require.False(t, known["NOT_A_SETTING"])
	require.Equal(t, "photo-processor", settingDefault(t, "AMQP_PHOTO_PROCESSOR_QUEUE"))
}

// settingDefault returns the literal string default of a setting.
func settingDefault(t *testing.T, name string) string {
	t.Helper()
	knownSettings(t)
	def, ok := defaults[name]
	require.True(t, ok, "no string default found for %s", name)
	return def
}
